"""Where models come from: device choice, offline-first loading, and the warm cache.

Strata never downloads during a job. Every ``from_pretrained`` goes through
:func:`load_pretrained`, which looks only in the local Hugging Face cache (or a local
folder) and turns a miss into one :class:`~config.errors.ModelNotAvailableError` that
names the model, where it looked, and the command that fetches it.

Importing this module imports neither torch nor ``huggingface_hub``: the hub reads
``HF_HUB_OFFLINE`` once, at its import, so :func:`offline_environment` must be able to run
after this module is imported and before the hub is.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from threading import RLock
from typing import Any, TypeVar

from config.errors import ModelNotAvailableError
from config.model import Device, ModelSettings

T = TypeVar("T")


def resolve_device(preference: Device) -> str:
    """``auto`` = cuda > mps > cpu. Imports torch lazily: the daemon's parent never does."""
    import torch

    if preference is Device.AUTO:
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    return preference.value


def model_dtype(role: str, device: str) -> Any:
    """The torch dtype the model of ``role`` (one of :data:`ROLES`) runs in on ``device``.

    The one dtype policy: every model file loads its weights in this dtype and puts it in
    its cache key beside the device.

    - Diffusion roles (img2img, controlnet, inpaint, lcm_lora, taesd): fp16 where the
      accelerator has fast half precision (CUDA, MPS); bfloat16 on a CPU whose oneDNN
      supports it (AVX512-BF16/AMX), half the memory of fp32 and about twice its speed for
      the SD 1.5 UNet; fp32 otherwise.
    - Depth: fp16 on CUDA; fp32 elsewhere (a CPU runs fp16 slowly, and MPS fp16 is not
      reliably faster for the depth model).
    """
    import torch

    if role not in ROLE_KINDS:
        raise ValueError(f"role {role!r} is invalid: allowed {', '.join(ROLES)}.")
    kind = device.split(":", maxsplit=1)[0]
    if ROLE_KINDS[role] is ModelKind.DEPTH:
        return torch.float16 if kind == "cuda" else torch.float32
    if kind in {"cuda", "mps"}:
        return torch.float16
    if kind == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return torch.float32


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment *now* (not at import time).

    Same rules as ``huggingface_hub``: ``HF_HUB_CACHE`` > ``HUGGINGFACE_HUB_CACHE`` >
    ``$HF_HOME/hub`` > ``$XDG_CACHE_HOME/huggingface/hub`` > ``~/.cache/huggingface/hub``.
    """
    env = os.environ
    explicit = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    home = env.get("HF_HOME") or os.path.join(xdg, "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


_TRUE = frozenset({"1", "ON", "YES", "TRUE"})


def is_offline() -> bool:
    """True when this process must not reach the Hugging Face hub (env read now)."""
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return constants.HF_HUB_OFFLINE or any(f.strip().upper() in _TRUE for f in flags)


def looks_like_path(model_id: str) -> bool:
    """``/x``, ``./x``, ``~/x``, ``a/b/c`` or an existing folder: never a hub id (``org/name``)."""
    if Path(model_id).expanduser().is_dir():
        return True
    return (
        model_id.startswith(("/", "./", "../", "~", "."))
        or "\\" in model_id
        or model_id.count("/") > 1
    )


_OFFLINE_LOCK = RLock()


@contextmanager
def hub_offline() -> Iterator[None]:
    """Switch ``huggingface_hub`` to offline mode while loading.

    ``local_files_only=True`` is not enough: with the hub online, transformers still sends
    requests while loading from the cache (the hub's agent registry for its user-agent
    header, a HEAD for ``adapter_config.json`` with 5 retries: 25 s without a network). The
    hub reads ``HF_HUB_OFFLINE`` once at import, so the flag is set on its module here and
    restored afterwards.
    """
    from huggingface_hub import constants

    with _OFFLINE_LOCK:
        previous = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = True
        try:
            yield
        finally:
            constants.HF_HUB_OFFLINE = previous


def load_pretrained(loader: Callable[..., T], model_id: str, *, role: str, **kwargs: Any) -> T:
    """Call ``loader(model_id, local_files_only=True, **kwargs)``; a miss is a clear error.

    ``model_id`` is a Hugging Face id or a local folder. Hub ids are looked up in
    :func:`hf_cache_dir` (passed as ``cache_dir`` unless the caller gives one), so the
    environment at call time decides where, and nothing is ever downloaded.
    """
    local = Path(model_id).expanduser()
    is_folder = local.is_dir()
    source = str(local) if is_folder else model_id
    if not is_folder and not looks_like_path(model_id):
        kwargs.setdefault("cache_dir", str(hf_cache_dir()))
    try:
        with hub_offline():
            return loader(source, local_files_only=True, **kwargs)
    except (OSError, ValueError) as exc:
        if is_folder:
            where = f"the folder {local}"
        elif looks_like_path(model_id):
            where = f"{local}, which is not an existing folder"
        else:
            where = f"the Hugging Face cache at {kwargs.get('cache_dir', hf_cache_dir())}"
        raise ModelNotAvailableError(
            f"The {role} model {model_id!r} is not available locally (looked in {where}).",
            hint=_missing_model_hint(role),
        ) from exc


def _missing_model_hint(role: str) -> str:
    """What to do about a missing model; for depth, also the way that needs no model."""
    hint = (
        "Run `strata models pull` to fetch the configured models, or set "
        f"`models.{role}` to a local folder."
    )
    if role == "depth":
        hint += (
            " Or put a depth map beside the photo (<stem>.depth.png, .depth.tif or "
            ".depth.npy): a job with its own depth map runs without any model."
        )
    return hint


class ModelCache:
    """Loaded models kept warm for the life of a worker process, keyed by what built them."""

    def __init__(self) -> None:
        self._models: dict[Hashable, Any] = {}
        self._lock = RLock()  # re-entrant: one model may be built from another cached one

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        with self._lock:
            if key not in self._models:
                self._models[key] = build()
            model: T = self._models[key]
            return model

    def __contains__(self, key: Hashable) -> bool:
        return key in self._models

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


TORCHVISION_ADVICE = "requires torchvision (not installed); falling back to"
"""The start of transformers' warning for an image processor that falls back to its PIL twin."""
TRANSFORMERS_IMPORT_LOGGER = "transformers.utils.import_utils"


class _DropTorchvisionAdvice(logging.Filter):
    """Drops transformers' "`CLIPImageProcessor` requires torchvision (not installed);
    falling back to `CLIPImageProcessorPil`… Install torchvision…" and nothing else.

    Strata needs no torchvision (the PIL processors are what it uses), and following the
    advice, ``pip install torchvision``, would replace the pinned torch with another build.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return TORCHVISION_ADVICE not in record.getMessage()


def quiet_torchvision_advice() -> None:
    """Silence that one warning (idempotent). Runs when :mod:`pipeline` is imported, so
    before diffusers imports the SD pipelines, whose import is what prints it."""
    library = logging.getLogger(TRANSFORMERS_IMPORT_LOGGER)
    if not any(isinstance(f, _DropTorchvisionAdvice) for f in library.filters):
        library.addFilter(_DropTorchvisionAdvice())


def offline_environment() -> None:
    """Make every Hugging Face call in this process local-only (set before importing)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


# --- the model registry: what `strata models list` shows and `strata models pull` fetches --


class ModelKind(StrEnum):
    """How a role's model is laid out on the hub, which decides the files it needs."""

    DEPTH = "transformers-depth"  # config + weights + image processor
    DIFFUSERS_PIPELINE = "diffusers-pipeline"  # model_index.json + component folders
    DIFFUSERS_MODEL = "diffusers-model"  # one component: config + weights
    LORA = "lora"  # one adapter file


ROLE_KINDS: dict[str, ModelKind] = {
    "depth": ModelKind.DEPTH,
    "img2img": ModelKind.DIFFUSERS_PIPELINE,
    "controlnet": ModelKind.DIFFUSERS_MODEL,
    "inpaint": ModelKind.DIFFUSERS_PIPELINE,
    "lcm_lora": ModelKind.LORA,
    "taesd": ModelKind.DIFFUSERS_MODEL,
}
ROLES: tuple[str, ...] = tuple(ROLE_KINDS)

# Licences of the ids Strata ships as defaults or documents as alternatives (lower-case ids).
KNOWN_LICENCES: dict[str, str] = {
    "depth-anything/depth-anything-v2-small-hf": "Apache-2.0",
    "depth-anything/depth-anything-v2-base-hf": "CC-BY-NC-4.0",
    "depth-anything/depth-anything-v2-large-hf": "CC-BY-NC-4.0",
    "stable-diffusion-v1-5/stable-diffusion-v1-5": "CreativeML OpenRAIL-M",
    "runwayml/stable-diffusion-v1-5": "CreativeML OpenRAIL-M",
    "stable-diffusion-v1-5/stable-diffusion-inpainting": "CreativeML OpenRAIL-M",
    "runwayml/stable-diffusion-inpainting": "CreativeML OpenRAIL-M",
    "lllyasviel/control_v11f1p_sd15_depth": "OpenRAIL",
    "latent-consistency/lcm-lora-sdv1-5": "OpenRAIL++",
    "madebyollin/taesd": "MIT",
}
UNKNOWN_LICENCE = "unknown (see the model card)"

_SD_COMPONENT_WEIGHTS = {
    "unet": "diffusion_pytorch_model",
    "vae": "diffusion_pytorch_model",
    "text_encoder": "model",
}


def _weights(stem: str) -> str:
    """The full-precision safetensors file, the one the loaders read on every device.

    Never diffusers' ``*.fp16.*`` variant: loading those needs ``variant="fp16"`` at every
    ``from_pretrained``, and on a CPU (bfloat16 or fp32) they give weights already rounded
    to half precision. fp16 on a GPU is a cast at load time, so one set serves all devices.
    """
    return f"{stem}.safetensors"


def allow_patterns(kind: ModelKind) -> list[str]:
    """The files `strata models pull` fetches for a model of this kind (fnmatch patterns).

    Only full-precision safetensors weights, configs, tokenizer files and the model card;
    never the single-file ``.ckpt``/``.safetensors`` checkpoints at a repo's root, the
    ``.bin`` duplicates, the fp16 variants, EMA/non-EMA extras or the SD safety checker's
    1.2 GB weights.
    """
    card = ["README.md"]
    if kind is ModelKind.DEPTH:
        return [
            "config.json",
            "preprocessor_config.json",
            "model.safetensors",
            "model-*-of-*.safetensors",
            "model.safetensors.index.json",
            *card,
        ]
    if kind is ModelKind.DIFFUSERS_MODEL:
        return ["config.json", _weights("diffusion_pytorch_model"), *card]
    if kind is ModelKind.LORA:
        return ["pytorch_lora_weights.safetensors", *card]
    components = [f"{name}/{_weights(stem)}" for name, stem in _SD_COMPONENT_WEIGHTS.items()]
    return [
        "model_index.json",
        "scheduler/scheduler_config.json",
        *(f"{name}/config.json" for name in _SD_COMPONENT_WEIGHTS),
        *components,
        "tokenizer/*",
        "feature_extractor/preprocessor_config.json",
        *card,
    ]


def required_files(kind: ModelKind) -> list[tuple[str, ...]]:
    """Files that must be present for a model to count as cached (as loadable by Strata's
    loaders: fp16 variants alone are not); each entry lists alternatives."""
    if kind is ModelKind.DEPTH:
        return [
            ("config.json",),
            ("preprocessor_config.json",),
            ("model.safetensors", "model.safetensors.index.json"),
        ]
    if kind is ModelKind.DIFFUSERS_MODEL:
        return [("config.json",), (_weights("diffusion_pytorch_model"),)]
    if kind is ModelKind.LORA:
        return [("pytorch_lora_weights.safetensors",)]
    files: list[tuple[str, ...]] = [
        ("model_index.json",),
        ("scheduler/scheduler_config.json",),
        ("tokenizer/tokenizer_config.json",),
    ]
    for name, stem in _SD_COMPONENT_WEIGHTS.items():
        files += [(f"{name}/config.json",), (f"{name}/{_weights(stem)}",)]
    return files


@dataclass(frozen=True)
class ModelEntry:
    """One configured model as `strata models list` reports it."""

    role: str
    model_id: str | None  # None: the role is not configured
    kind: ModelKind
    source: str  # "hub", "local" or "unset"
    cached: bool  # everything the role needs is on disk (a local folder: it exists)
    missing: tuple[str, ...]  # required files not on disk (hub models only)
    size_bytes: int  # on disk: the repo's cache folder (all revisions) or the local folder
    licence: str
    revision: str | None  # the cached commit, "local" for a folder, None if not cached
    path: Path | None  # the snapshot or local folder
    allow_patterns: tuple[str, ...] = field(default=())

    @property
    def status(self) -> str:
        if self.source == "unset":
            return "-"
        if self.cached:
            return "yes"
        return "partial" if self.path is not None else "no"

    @property
    def non_commercial(self) -> bool:
        return "-NC" in self.licence.upper()

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "id": self.model_id,
            "kind": self.kind.value,
            "source": self.source,
            "cached": self.cached,
            "status": self.status,
            "missing": list(self.missing),
            "size_bytes": self.size_bytes,
            "licence": self.licence,
            "non_commercial": self.non_commercial,
            "revision": self.revision,
            "path": str(self.path) if self.path is not None else None,
            "allow_patterns": list(self.allow_patterns),
        }


def configured_models(models: ModelSettings) -> list[tuple[str, str | None]]:
    """``(role, id)`` for every role in :class:`~config.model.ModelSettings`, in order."""
    return [(role, getattr(models, role)) for role in ROLES]


def repo_cache_folder(model_id: str, *, cache_dir: Path | None = None) -> Path:
    base = cache_dir if cache_dir is not None else hf_cache_dir()
    return base / ("models--" + model_id.replace("/", "--"))


def cached_revision(model_id: str, *, cache_dir: Path | None = None) -> str | None:
    """The commit of ``model_id`` in the cache (``refs/main``, else the only snapshot)."""
    if looks_like_path(model_id):
        return "local"
    folder = repo_cache_folder(model_id, cache_dir=cache_dir)
    ref = folder / "refs" / "main"
    if ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
        if commit:
            return commit
    snapshots = sorted((folder / "snapshots").glob("*")) if (folder / "snapshots").is_dir() else []
    return snapshots[0].name if len(snapshots) == 1 else None


def model_revision(model_id: str, *, cache_dir: Path | None = None) -> str:
    """For the manifest: the cached commit hash if known, else ``"local"``."""
    return cached_revision(model_id, cache_dir=cache_dir) or "local"


def licence_of(model_id: str, *, card: Path | None = None) -> str:
    """The known licence of a default id, else the ``license:`` of a cached model card."""
    known = KNOWN_LICENCES.get(model_id.strip().lower())
    if known is not None:
        return known
    if card is not None and card.is_file():
        found = _card_licence(card.read_text(encoding="utf-8", errors="replace"))
        if found:
            return found
    return UNKNOWN_LICENCE


def _card_licence(text: str) -> str | None:
    match = re.match(r"\A---\s*\n(.*?)\n---", text, flags=re.DOTALL)
    if match is None:
        return None
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("license", "licence") and value.strip():
            return value.strip().strip("'\"")
    return None


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _hub_repo_sizes(cache_dir: Path) -> dict[str, int]:
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound, CorruptedCacheException

    if not cache_dir.is_dir():
        return {}
    try:
        info = scan_cache_dir(cache_dir)
    except (CacheNotFound, CorruptedCacheException, OSError):
        return {}
    return {repo.repo_id: repo.size_on_disk for repo in info.repos if repo.repo_type == "model"}


def _missing_in_cache(
    model_id: str, kind: ModelKind, *, cache_dir: Path
) -> tuple[tuple[str, ...], Path | None]:
    from huggingface_hub import try_to_load_from_cache

    missing: list[str] = []
    snapshot: Path | None = None
    for alternatives in required_files(kind):
        hit = None
        for name in alternatives:
            found = try_to_load_from_cache(model_id, name, cache_dir=cache_dir)
            if isinstance(found, str) and Path(found).is_file():
                hit = Path(found)
                break
        if hit is None:
            missing.append(" or ".join(alternatives))
        elif snapshot is None:
            snapshot = hit.parents[len(Path(alternatives[0]).parts) - 1]
    if snapshot is None:
        revision = cached_revision(model_id, cache_dir=cache_dir)
        candidate = repo_cache_folder(model_id, cache_dir=cache_dir) / "snapshots" / str(revision)
        snapshot = candidate if revision and candidate.is_dir() else None
    return tuple(missing), snapshot


def describe_model(
    role: str,
    model_id: str | None,
    *,
    cache_dir: Path | None = None,
    hub_sizes: dict[str, int] | None = None,
) -> ModelEntry:
    """Where ``model_id`` (configured for ``role``) stands on this machine. Never networks."""
    if role not in ROLE_KINDS:
        raise ValueError(f"role = {role!r} is invalid: allowed {', '.join(ROLES)}.")
    kind = ROLE_KINDS[role]
    patterns = tuple(allow_patterns(kind))
    if model_id is None:
        return ModelEntry(role, None, kind, "unset", False, (), 0, "-", None, None, patterns)
    cache_dir = cache_dir if cache_dir is not None else hf_cache_dir()
    if looks_like_path(model_id):
        folder = Path(model_id).expanduser()
        exists = folder.is_dir()
        return ModelEntry(
            role,
            model_id,
            kind,
            "local",
            exists,
            (),
            _folder_size(folder) if exists else 0,
            licence_of(model_id, card=folder / "README.md"),
            "local" if exists else None,
            folder if exists else None,
            (),
        )
    missing, snapshot = _missing_in_cache(model_id, kind, cache_dir=cache_dir)
    sizes = hub_sizes if hub_sizes is not None else _hub_repo_sizes(cache_dir)
    return ModelEntry(
        role,
        model_id,
        kind,
        "hub",
        not missing,
        missing,
        sizes.get(model_id, 0),
        licence_of(model_id, card=snapshot / "README.md" if snapshot else None),
        cached_revision(model_id, cache_dir=cache_dir) if snapshot else None,
        snapshot,
        patterns,
    )


def model_registry(
    models: ModelSettings,
    *,
    cache_dir: Path | None = None,
    roles: Iterable[str] | None = None,
) -> list[ModelEntry]:
    """Every configured role (or only ``roles``) with its cache status, size and licence."""
    wanted = set(roles) if roles is not None else set(ROLES)
    unknown = wanted - set(ROLES)
    if unknown:
        raise ValueError(f"roles {sorted(unknown)} are invalid: allowed {', '.join(ROLES)}.")
    cache_dir = cache_dir if cache_dir is not None else hf_cache_dir()
    sizes = _hub_repo_sizes(cache_dir)
    return [
        describe_model(role, model_id, cache_dir=cache_dir, hub_sizes=sizes)
        for role, model_id in configured_models(models)
        if role in wanted
    ]


@dataclass(frozen=True)
class PullItem:
    """One hub download: a repo and the union of the files its roles need."""

    model_id: str
    roles: tuple[str, ...]
    allow_patterns: tuple[str, ...]


def pull_plan(
    models: ModelSettings,
    *,
    roles: Iterable[str] | None = None,
) -> list[PullItem]:
    """What `strata models pull` downloads: hub ids only (folders and unset roles skipped),
    one item per repo even when several roles share it."""
    wanted = set(roles) if roles is not None else set(ROLES)
    unknown = wanted - set(ROLES)
    if unknown:
        raise ValueError(f"roles {sorted(unknown)} are invalid: allowed {', '.join(ROLES)}.")
    merged: dict[str, tuple[list[str], list[str]]] = {}
    for role, model_id in configured_models(models):
        if role not in wanted or model_id is None or looks_like_path(model_id):
            continue
        item_roles, patterns = merged.setdefault(model_id, ([], []))
        item_roles.append(role)
        for pattern in allow_patterns(ROLE_KINDS[role]):
            if pattern not in patterns:
                patterns.append(pattern)
    return [PullItem(mid, tuple(r), tuple(p)) for mid, (r, p) in merged.items()]
