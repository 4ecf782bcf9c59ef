"""`strata models list` and `strata models pull`, and the registry behind them. No network."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub.errors import LocalEntryNotFoundError
from huggingface_hub.utils import filter_repo_objects
from tiny_models import build_tiny_depth_anything, install_in_hub_cache

from config.errors import ExitCode
from config.model import ModelSettings
from daemon import cli, cmd_models
from pipeline.models import (
    KNOWN_LICENCES,
    ROLES,
    ModelEntry,
    ModelKind,
    PullItem,
    allow_patterns,
    describe_model,
    model_registry,
    pull_plan,
)

DEFAULT_DEPTH = "depth-anything/Depth-Anything-V2-Small-hf"
COMMIT = "c0ffee" + "0" * 34

# The files of stable-diffusion-v1-5/stable-diffusion-v1-5 on the hub.
SD15_REPO_FILES = [
    ".gitattributes",
    "README.md",
    "feature_extractor/preprocessor_config.json",
    "model_index.json",
    "safety_checker/config.json",
    "safety_checker/model.fp16.safetensors",
    "safety_checker/model.safetensors",
    "safety_checker/pytorch_model.bin",
    "safety_checker/pytorch_model.fp16.bin",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "text_encoder/model.fp16.safetensors",
    "text_encoder/model.safetensors",
    "text_encoder/pytorch_model.bin",
    "text_encoder/pytorch_model.fp16.bin",
    "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "unet/config.json",
    "unet/diffusion_pytorch_model.bin",
    "unet/diffusion_pytorch_model.fp16.bin",
    "unet/diffusion_pytorch_model.fp16.safetensors",
    "unet/diffusion_pytorch_model.non_ema.bin",
    "unet/diffusion_pytorch_model.non_ema.safetensors",
    "unet/diffusion_pytorch_model.safetensors",
    "v1-5-pruned-emaonly.ckpt",
    "v1-5-pruned-emaonly.safetensors",
    "v1-5-pruned.ckpt",
    "v1-5-pruned.safetensors",
    "v1-inference.yaml",
    "vae/config.json",
    "vae/diffusion_pytorch_model.bin",
    "vae/diffusion_pytorch_model.fp16.bin",
    "vae/diffusion_pytorch_model.fp16.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
]
SD15_SHARED = {
    "README.md",
    "feature_extractor/preprocessor_config.json",
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "unet/config.json",
    "vae/config.json",
}


@pytest.fixture(autouse=True)
def network_refused(no_network: list[Any]) -> Iterator[list[Any]]:
    """Every test here runs with name lookups and connections refused, and must not try."""
    yield no_network
    assert no_network == [], f"network access attempted: {no_network}"


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face home; the hub cache is ``hf_home / "hub"``."""
    home = tmp_path / "hf-home"
    home.mkdir()
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # no user config file
    for name in list(os.environ):
        if name.startswith("STRATA_"):
            monkeypatch.delenv(name)
    return home


@pytest.fixture(scope="session")
def tiny_depth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_depth_anything(tmp_path_factory.mktemp("models") / "tiny-depth")


def strata(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """`strata …` through the real entry point, with only this command registered."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("daemon.cmd_models",))
    return cli.main(argv)


def write_config(path: Path, models: dict[str, str | None]) -> Path:
    lines = ["models:"] + [
        f"  {role}: {'null' if value is None else json.dumps(value)}"
        for role, value in models.items()
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- list --------------------------------------------------------------------------------


def test_list_on_an_empty_cache(
    hf_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert strata(["models", "list"], monkeypatch) == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["ROLE", "MODEL", "CACHED", "SIZE", "LICENCE"]
    rows = {line.split()[0]: line.split() for line in lines[1:7]}
    assert set(rows) == set(ROLES)
    assert rows["depth"][1:4] == [DEFAULT_DEPTH, "no", "-"]
    assert rows["depth"][4] == "Apache-2.0"
    assert "CreativeML OpenRAIL-M" in " ".join(rows["img2img"])
    assert rows["taesd"][-1] == "MIT"
    assert rows["inpaint"][1:3] == ["(not", "set)"]
    assert str(hf_home / "hub") in out
    assert "strata models pull" in out


def test_list_json_on_an_empty_cache(
    hf_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert strata(["models", "list", "--json"], monkeypatch) == 0

    document = json.loads(capsys.readouterr().out)
    assert document["cache_dir"] == str(hf_home / "hub")
    by_role = {entry["role"]: entry for entry in document["models"]}
    assert list(by_role) == list(ROLES)
    depth = by_role["depth"]
    assert depth["id"] == DEFAULT_DEPTH
    assert depth["cached"] is False
    assert depth["status"] == "no"
    assert depth["size_bytes"] == 0
    assert depth["licence"] == "Apache-2.0"
    assert "model.safetensors" in depth["allow_patterns"]
    assert "config.json" in depth["missing"]
    assert by_role["inpaint"]["id"] is None
    assert by_role["inpaint"]["status"] == "-"
    assert by_role["lcm_lora"]["licence"] == "OpenRAIL++"
    assert by_role["controlnet"]["licence"] == "OpenRAIL"


def test_list_with_a_model_in_the_hub_cache(
    hf_home: Path,
    tiny_depth: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    snapshot = install_in_hub_cache(
        tiny_depth, repo_id=DEFAULT_DEPTH, cache_dir=hf_home / "hub", commit=COMMIT
    )
    size = sum(p.stat().st_size for p in tiny_depth.iterdir())
    # a half-finished download: TAESD's config without its weights
    (tiny_depth.parent / "taesd").mkdir(exist_ok=True)
    (tiny_depth.parent / "taesd" / "config.json").write_text("{}", encoding="utf-8")
    install_in_hub_cache(
        tiny_depth.parent / "taesd", repo_id="madebyollin/taesd", cache_dir=hf_home / "hub"
    )

    assert strata(["models", "list", "--json"], monkeypatch) == 0

    by_role = {e["role"]: e for e in json.loads(capsys.readouterr().out)["models"]}
    depth = by_role["depth"]
    assert depth["cached"] is True
    assert depth["status"] == "yes"
    assert depth["missing"] == []
    assert depth["size_bytes"] == size
    assert depth["revision"] == COMMIT
    assert depth["path"] == str(snapshot)
    taesd = by_role["taesd"]
    assert taesd["cached"] is False
    assert taesd["status"] == "partial"
    assert taesd["missing"] == ["diffusion_pytorch_model.safetensors"]

    assert strata(["models", "list"], monkeypatch) == 0
    table = capsys.readouterr().out
    depth_row = next(line for line in table.splitlines() if line.startswith("depth"))
    assert depth_row.split()[2:5] == ["yes", f"{size / 1000:.1f}", "kB"]
    assert next(line for line in table.splitlines() if line.startswith("taesd")).split()[2] == (
        "partial"
    )


def test_list_with_a_local_folder_and_an_unknown_hub_model(
    hf_home: Path,
    tiny_depth: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    card = tmp_path / "card"
    card.mkdir()
    (card / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n# A model\n", "utf-8")
    (card / "config.json").write_text("{}", encoding="utf-8")
    (card / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"0" * 10)
    install_in_hub_cache(card, repo_id="someone/custom-vae", cache_dir=hf_home / "hub")
    config = write_config(
        tmp_path / "strata.yaml",
        {"depth": str(tiny_depth), "taesd": "someone/custom-vae", "inpaint": str(tmp_path / "x")},
    )

    assert strata(["models", "list", "--json", "--config", str(config)], monkeypatch) == 0

    by_role = {e["role"]: e for e in json.loads(capsys.readouterr().out)["models"]}
    depth = by_role["depth"]
    assert depth["source"] == "local"
    assert depth["cached"] is True  # a local folder counts as cached
    assert depth["size_bytes"] == sum(p.stat().st_size for p in tiny_depth.iterdir())
    assert depth["revision"] == "local"
    assert depth["licence"] == "unknown (see the model card)"
    taesd = by_role["taesd"]
    assert taesd["cached"] is False  # fp16 weights alone do not load: not cached
    assert taesd["missing"] == ["diffusion_pytorch_model.safetensors"]
    assert taesd["licence"] == "cc-by-nc-4.0"  # from the cached model card
    assert taesd["non_commercial"] is True
    inpaint = by_role["inpaint"]
    assert inpaint["source"] == "local"
    assert inpaint["cached"] is False
    assert inpaint["status"] == "no"

    assert strata(["models", "list", "--config", str(config)], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "cc-by-nc-4.0 (non-commercial)" in out
    assert "non-commercial" in out.splitlines()[-1]


def test_registry_rejects_unknown_roles() -> None:
    with pytest.raises(ValueError, match=r"'painter'.*allowed depth, img2img"):
        model_registry(ModelSettings(), roles=["painter"])
    with pytest.raises(ValueError, match=r"role = 'x' is invalid"):
        describe_model("x", "a/b")


def test_known_licences_cover_the_defaults() -> None:
    defaults = ModelSettings()
    for role in ROLES:
        model_id = getattr(defaults, role)
        if model_id is not None:
            assert model_id.lower() in KNOWN_LICENCES
    assert KNOWN_LICENCES["depth-anything/depth-anything-v2-large-hf"] == "CC-BY-NC-4.0"
    assert KNOWN_LICENCES["depth-anything/depth-anything-v2-base-hf"] == "CC-BY-NC-4.0"


# --- pull: what would be fetched ---------------------------------------------------------


def selected(patterns: list[str] | tuple[str, ...], files: list[str]) -> set[str]:
    """The files ``snapshot_download(allow_patterns=…)`` would fetch, by the hub's own rule."""
    return set(filter_repo_objects(files, allow_patterns=list(patterns)))


def test_sd15_pull_takes_only_the_needed_weights() -> None:
    fp32 = selected(allow_patterns(ModelKind.DIFFUSERS_PIPELINE), SD15_REPO_FILES)

    assert fp32 == SD15_SHARED | {
        "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors",
    }  # never the fp16 variants: the loaders would not read them


@pytest.mark.parametrize(
    ("kind", "files", "expected"),
    [
        (
            ModelKind.DEPTH,
            [
                "config.json",
                "preprocessor_config.json",
                "model.safetensors",
                "README.md",
                ".gitattributes",
                "pytorch_model.bin",
                "depth_anything_v2_vits.pth",
            ],
            {"config.json", "preprocessor_config.json", "model.safetensors", "README.md"},
        ),
        (
            ModelKind.DIFFUSERS_MODEL,  # lllyasviel/control_v11f1p_sd15_depth
            [
                "config.json",
                "diffusion_pytorch_model.bin",
                "diffusion_pytorch_model.fp16.bin",
                "diffusion_pytorch_model.fp16.safetensors",
                "diffusion_pytorch_model.safetensors",
                "images/control.png",
                "README.md",
            ],
            {"config.json", "diffusion_pytorch_model.safetensors", "README.md"},
        ),
        (
            ModelKind.DIFFUSERS_MODEL,  # madebyollin/taesd
            [
                "config.json",
                "diffusion_pytorch_model.safetensors",
                "diffusion_pytorch_model.bin",
                "taesd_decoder.pth",
                "taesd_encoder.pth",
                "taesd_decoder.safetensors",
            ],
            {"config.json", "diffusion_pytorch_model.safetensors"},
        ),
        (
            ModelKind.LORA,  # latent-consistency/lcm-lora-sdv1-5
            ["pytorch_lora_weights.safetensors", "README.md", "image.png"],
            {"pytorch_lora_weights.safetensors", "README.md"},
        ),
    ],
    ids=["depth", "controlnet", "taesd", "lcm-lora"],
)
def test_each_kind_takes_only_the_needed_files(
    kind: ModelKind, files: list[str], expected: set[str]
) -> None:
    assert selected(allow_patterns(kind), files) == expected


def test_pull_plan_per_role(tiny_depth: Path) -> None:
    plan = pull_plan(ModelSettings())

    assert [item.model_id for item in plan] == [
        DEFAULT_DEPTH,
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "lllyasviel/control_v11f1p_sd15_depth",
        "latent-consistency/lcm-lora-sdv1-5",
        "madebyollin/taesd",
    ]  # inpaint is not set: nothing to fetch
    by_id = {item.model_id: item for item in plan}
    assert by_id[DEFAULT_DEPTH].roles == ("depth",)
    assert by_id[DEFAULT_DEPTH].allow_patterns == tuple(allow_patterns(ModelKind.DEPTH))
    assert by_id["madebyollin/taesd"].allow_patterns == tuple(
        allow_patterns(ModelKind.DIFFUSERS_MODEL)
    )
    assert by_id["latent-consistency/lcm-lora-sdv1-5"].allow_patterns == tuple(
        allow_patterns(ModelKind.LORA)
    )

    shared = ModelSettings(
        depth=str(tiny_depth), inpaint="stable-diffusion-v1-5/stable-diffusion-v1-5"
    )
    plan = pull_plan(shared, roles=["depth", "img2img", "inpaint"])
    assert plan == [
        PullItem(
            "stable-diffusion-v1-5/stable-diffusion-v1-5",
            ("img2img", "inpaint"),
            tuple(allow_patterns(ModelKind.DIFFUSERS_PIPELINE)),
        )
    ]  # the local depth folder is skipped; one download serves both roles


# --- pull: the command (downloads replaced by a recorder) ---------------------------------


def test_pull_downloads_each_configured_repo_once(
    hf_home: Path,
    tiny_depth: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls: list[tuple[PullItem, Path]] = []

    def fake_download(item: PullItem, *, cache_dir: Path) -> str:
        calls.append((item, cache_dir))
        return str(cache_dir / item.model_id)

    monkeypatch.setattr(cmd_models, "download", fake_download)
    config = write_config(tmp_path / "strata.yaml", {"depth": str(tiny_depth)})

    assert strata(["models", "pull", "--config", str(config)], monkeypatch) == 0

    assert [item.model_id for item, _ in calls] == [
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "lllyasviel/control_v11f1p_sd15_depth",
        "latent-consistency/lcm-lora-sdv1-5",
        "madebyollin/taesd",
    ]
    assert all(cache_dir == hf_home / "hub" for _, cache_dir in calls)
    out = capsys.readouterr().out
    assert f"depth: local folder {tiny_depth}, nothing to download." in out


def test_pull_one_role_takes_the_weights_the_loaders_read(
    hf_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[PullItem] = []
    monkeypatch.setattr(
        cmd_models, "download", lambda item, cache_dir: calls.append(item) or "done"
    )

    code = strata(["models", "pull", "--role", "img2img"], monkeypatch)

    assert code == 0
    assert len(calls) == 1
    assert "unet/diffusion_pytorch_model.safetensors" in calls[0].allow_patterns
    assert not [p for p in calls[0].allow_patterns if "fp16" in p]


def test_pull_offers_no_fp16_variant(
    hf_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """fp16-only weights would not load (no loader asks for variant='fp16'): no such flag."""
    with pytest.raises(SystemExit) as caught:
        strata(["models", "pull", "--variant", "fp16"], monkeypatch)
    assert caught.value.code == 2
    assert "unrecognized arguments: --variant" in capsys.readouterr().err


def test_pull_failure_is_one_clear_message_and_the_model_missing_code(
    hf_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_hub(item: PullItem, *, cache_dir: Path) -> str:
        raise LocalEntryNotFoundError("cannot reach the hub")

    monkeypatch.setattr(cmd_models, "download", no_hub)

    code = strata(["models", "pull", "--role", "depth", "--role", "taesd"], monkeypatch)

    assert code == ExitCode.MODEL_MISSING
    err = capsys.readouterr().err
    assert f"{DEFAULT_DEPTH} (depth): cannot reach the Hugging Face hub (no network?)" in err
    assert "madebyollin/taesd (taesd)" in err
    assert "strata: 2 model(s) are not available" in err
    assert "hint:" in err


def test_pull_refuses_in_offline_mode_without_trying(
    hf_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[PullItem] = []
    monkeypatch.setattr(
        cmd_models, "download", lambda item, cache_dir: calls.append(item) or "done"
    )
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    assert strata(["models", "pull"], monkeypatch) == ExitCode.MODEL_MISSING

    assert calls == []
    assert "offline mode is on" in capsys.readouterr().err


def test_pull_reports_a_missing_local_folder(
    hf_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cmd_models, "download", lambda item, cache_dir: "done")
    config = write_config(tmp_path / "strata.yaml", {"depth": str(tmp_path / "gone")})

    code = strata(["models", "pull", "--role", "depth", "--config", str(config)], monkeypatch)

    assert code == ExitCode.MODEL_MISSING
    assert f"the folder {tmp_path / 'gone'} does not exist" in capsys.readouterr().err


def test_list_shows_sizes_in_decimal_units_as_the_hub_does(
    hf_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sizes = {"depth": 512, "img2img": 97_500_000, "controlnet": 2_100_000_000}

    def registry(models: ModelSettings, *, cache_dir: Path) -> list[ModelEntry]:
        entries = [
            describe_model(role, model_id, cache_dir=cache_dir)
            for role, model_id in (("depth", "a/b"), ("img2img", "c/d"), ("controlnet", "e/f"))
        ]
        return [replace(entry, size_bytes=sizes[entry.role]) for entry in entries]

    monkeypatch.setattr(cmd_models, "model_registry", registry)

    assert strata(["models", "list"], monkeypatch) == 0

    table = capsys.readouterr().out.splitlines()[1:4]
    rows = {line.split()[0]: line.split()[3:5] for line in table}
    assert rows == {"depth": ["512", "B"], "img2img": ["97.5", "MB"], "controlnet": ["2.1", "GB"]}
