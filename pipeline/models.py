"""Where models come from: device choice, offline-first loading, and the warm cache.

Strata never downloads during a job. Every ``from_pretrained`` goes through
:func:`load_pretrained`, which looks only in the local Hugging Face cache (or a local
folder) and turns a miss into one :class:`~config.errors.ModelNotAvailableError` that
names the model, where it looked, and the command that fetches it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from pathlib import Path
from threading import Lock
from typing import Any, TypeVar

from config.errors import ModelNotAvailableError
from config.model import Device

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


def hf_cache_dir() -> Path:
    from huggingface_hub.constants import HF_HUB_CACHE

    return Path(HF_HUB_CACHE)


def load_pretrained(loader: Callable[..., T], model_id: str, *, role: str, **kwargs: Any) -> T:
    """Call ``loader(model_id, local_files_only=True, **kwargs)``; a miss is a clear error.

    ``model_id`` is a Hugging Face id or a local folder.
    """
    local = Path(model_id).expanduser()
    source = str(local) if local.is_dir() else model_id
    try:
        return loader(source, local_files_only=True, **kwargs)
    except (OSError, ValueError) as exc:
        where = str(local) if local.is_dir() else f"the Hugging Face cache at {hf_cache_dir()}"
        raise ModelNotAvailableError(
            f"The {role} model {model_id!r} is not available locally (looked in {where}).",
            hint=(
                "Run `strata models pull` to fetch the configured models, or set "
                f"`models.{role}` to a local folder."
            ),
        ) from exc


class ModelCache:
    """Loaded models kept warm for the life of a worker process, keyed by what built them."""

    def __init__(self) -> None:
        self._models: dict[Hashable, Any] = {}
        self._lock = Lock()

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


def offline_environment() -> None:
    """Make every Hugging Face call in this process local-only (set before importing)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
