"""`strata process`: the whole photo-realistic job from a file, and every bad input."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.scenes import make_scene
from daemon.cli import main
from pipeline.io import save_gray16_png

SEED_FIELDS = [
    "id",
    "status",
    "mode",
    "input_filename",
    "num_layers",
    "painterly_style",
    "painterly_strength",
    "painterly_seed",
    "output_dir",
    "result_manifest",
    "error_message",
    "created_at",
    "started_at",
    "completed_at",
    "processing_time",
]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A 4-surface scene as a JPEG with its exact depth map beside it."""
    scene = make_scene(num_surfaces=4, seed=2, width=320, height=240)
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "beach.jpg"
    Image.fromarray(np.round(scene.image * 255).astype(np.uint8)).save(path, quality=95)
    save_gray16_png(folder / "beach.depth.png", scene.nearness)
    return path


def process(*args: str | Path) -> int:
    return main(["process", *map(str, args)])


def test_writes_every_output_spec_lists(photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert process(photo, "--out", out) == 0
    job = out / "beach"
    names = {p.name for p in job.iterdir()}
    layers = [
        "Layer_1_background.png",
        "Layer_2_midground.png",
        "Layer_3_midground.png",
        "Layer_4_foreground.png",
    ]
    assert (
        set(layers)
        | {
            "depth.png",
            "preview.png",
            "parallax.webp",
            "manifest.json",
            "source.jpg",
            "settings.yaml",
            "beach.depth.png",
            "viewer.html",  # exports: [html], the default
        }
        == names
    )
    for name in layers:
        with Image.open(job / name) as image:
            assert image.mode == "RGBA"
            assert image.size == (320, 240)
    with Image.open(job / "Layer_1_background.png") as background:
        assert np.asarray(background)[..., 3].min() == 255
    with Image.open(job / "depth.png") as depth:
        assert depth.mode in {"I;16", "I;16B", "I"}
        assert np.asarray(depth).max() > 255
    with Image.open(job / "parallax.webp") as animation:
        assert animation.n_frames > 1
    assert (job / "source.jpg").read_bytes() == photo.read_bytes()
    assert photo.exists(), "process leaves the input where it is"
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temporary folder left"

    manifest = json.loads((job / "manifest.json").read_text())
    for key in [
        "schema_version",
        "job_id",
        "mode",
        "source",
        "canvas",
        "settings",
        "models",
        "layer_count",
        "layers",
        "timings",
        "created_at",
        "completed_at",
        "processing_time",
        "strata_version",
    ]:
        assert key in manifest, key
    assert manifest["schema_version"] == 1
    assert manifest["source"]["width"] == 320
    assert len(manifest["source"]["sha256"]) == 64
    assert manifest["layer_count"] == 4
    assert sum(layer["coverage"] for layer in manifest["layers"]) == pytest.approx(1.0, abs=1e-3)
    # the scene's surfaces sit at evenly spaced depths: so do the layers' mean disparities
    assert [layer["parallax"] for layer in manifest["layers"]] == pytest.approx(
        [0, 1 / 3, 2 / 3, 1], abs=0.02
    )
    assert manifest["layers"][0]["filled_fraction"] > 0.05
    ranges = [layer["depth_range"] for layer in manifest["layers"]]
    assert ranges[0][0] == 0.0
    assert ranges[-1][1] == 1.0
    # whole surfaces at separate depths: the ranges follow each other without overlap
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))
    for stage in ("decode", "depth", "layers", "fill", "write", "total"):
        assert stage in manifest["timings"]
    assert "num_layers: 4" in (job / "settings.yaml").read_text()


def test_second_run_takes_the_next_name_and_json_has_seed_fields(
    photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert process(photo, "--out", out) == 0
    capsys.readouterr()
    assert process(photo, "--out", out, "--json", "--set", "num_layers=3") == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report)[: len(SEED_FIELDS)] == SEED_FIELDS
    assert report["status"] == "completed"
    assert report["num_layers"] == 3
    assert report["output_dir"] == str(out / "beach-2")
    assert report["result_manifest"]["layer_count"] == 3


def test_sidecar_and_set_apply(photo: Path, tmp_path: Path) -> None:
    photo.with_suffix(".yaml").write_text("num_layers: 2\n")
    out = tmp_path / "out"
    assert process(photo, "--out", out) == 0
    assert json.loads((out / "beach" / "manifest.json").read_text())["layer_count"] == 2
    assert process(photo, "--out", out, "--set", "num_layers=5") == 0
    assert json.loads((out / "beach-2" / "manifest.json").read_text())["layer_count"] == 5


def test_a_photo_with_fewer_depth_planes_gets_fewer_layers(tmp_path: Path) -> None:
    """Two flat surfaces and num_layers 4: no empty layer file, names and manifest agree."""
    folder = tmp_path / "in"
    folder.mkdir()
    photo = folder / "wall.png"
    pixels = np.zeros((120, 160, 3), np.uint8)
    pixels[:, :80] = (40, 90, 160)
    pixels[:, 80:] = (200, 120, 60)
    Image.fromarray(pixels).save(photo)
    nearness = np.full((120, 160), 0.2)
    nearness[:, 80:] = 0.8
    save_gray16_png(folder / "wall.depth.png", nearness)
    out = tmp_path / "out"
    assert process(photo, "--out", out, "--set", "num_layers=4") == 0
    job = out / "wall"
    manifest = json.loads((job / "manifest.json").read_text())
    assert manifest["settings"]["num_layers"] == 4
    assert manifest["layer_count"] == 2
    assert [layer["file"] for layer in manifest["layers"]] == [
        "Layer_1_background.png",
        "Layer_2_foreground.png",
    ]
    assert sorted(p.name for p in job.glob("Layer_*.png")) == [
        "Layer_1_background.png",
        "Layer_2_foreground.png",
    ]
    # each layer's range is the nearness its own pixels hold: two flat planes, 0 and 1
    assert [layer["depth_range"] for layer in manifest["layers"]] == [[0.0, 0.0], [1.0, 1.0]]


def test_bad_set_is_a_usage_error(
    photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert process(photo, "--out", tmp_path / "out", "--set", "num_layers=9") == 2
    err = capsys.readouterr().err
    assert "`num_layers` = 9" in err
    assert "--set num_layers" in err
    assert not (tmp_path / "out").exists()


def test_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert process(tmp_path / "nope.jpg", "--out", tmp_path / "out") == 2
    assert "nope.jpg" in capsys.readouterr().err


def _bad_inputs(folder: Path, photo: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a phrase the message must contain)."""
    jpeg = photo.read_bytes()
    cases: dict[str, tuple[Path, str]] = {}

    def add(name: str, filename: str, data: bytes, phrase: str) -> None:
        path = folder / filename
        path.write_bytes(data)
        cases[name] = (path, phrase)

    add("truncated", "truncated.jpg", jpeg[: len(jpeg) // 2], "truncated.jpg")
    add("text", "notes.jpg", b"these are my holiday notes\n" * 20, "notes.jpg")
    add("empty", "empty.jpg", b"", "empty.jpg")
    add("unsupported", "drawing.gif", Image_bytes("GIF"), "drawing.gif")
    return cases


def Image_bytes(fmt: str) -> bytes:  # noqa: N802
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 20, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("case", ["truncated", "text", "empty", "unsupported"])
def test_bad_image_fails_cleanly(
    case: str, photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, phrase = _bad_inputs(photo.parent, photo)[case]
    out = tmp_path / "out"
    assert process(path, "--out", out) == 1
    err = capsys.readouterr().err
    assert phrase in err
    assert "hint:" in err
    assert "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_decompression_bomb_and_oversize_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("L", (12_000, 12_000)).save(bomb)  # 144 MP of zeros: a tiny file
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + b"\0" * (2 * 1024 * 1024))
    config = tmp_path / "c.yaml"
    config.write_text("watch:\n  max_file_size_mb: 1.0\n")
    out = tmp_path / "out"
    assert process(bomb, "--out", out) == 1
    assert "bomb.png" in capsys.readouterr().err
    assert process(big, "--out", out, "--config", config) == 1
    err = capsys.readouterr().err
    assert "big.png" in err
    assert "MiB limit" in err


def test_bad_sidecar_fails_the_job_with_file_and_line(
    photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo.with_suffix(".yaml").write_text("num_layers: 3\nstrength: 2\n")
    assert process(photo, "--out", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "`strength` = 2" in err
    assert "beach.yaml line 2" in err
    assert "a number 0.0–1.0" in err


@pytest.mark.parametrize("value", ["../beach.depth.png", "/etc/passwd", "sub/beach.depth.png"])
def test_depth_map_outside_the_folder_is_refused(
    value: str, photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert process(photo, "--out", tmp_path / "out", "--set", f"depth_map={value}") == 1
    assert "same folder" in capsys.readouterr().err


def test_depth_map_with_wrong_aspect_ratio(
    photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_gray16_png(photo.parent / "beach.depth.png", np.zeros((100, 100), dtype=np.float32))
    assert process(photo, "--out", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "beach.depth.png" in err
    assert "aspect" in err


def test_named_depth_map_is_used(photo: Path, tmp_path: Path) -> None:
    depth = photo.parent / "beach.depth.png"
    depth.rename(photo.parent / "other.depth.png")
    assert process(photo, "--out", tmp_path / "out", "--set", "depth_map=other.depth.png") == 0
    manifest = json.loads((tmp_path / "out" / "beach" / "manifest.json").read_text())
    assert manifest["depth"]["file"] == "other.depth.png"


def test_no_traceback_from_the_real_command(photo: Path, tmp_path: Path) -> None:
    broken = photo.parent / "broken.jpg"
    broken.write_bytes(photo.read_bytes()[:500])
    strata = Path(sys.executable).parent / "strata"
    result = subprocess.run(
        [str(strata), "process", str(broken), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "broken.jpg" in result.stderr
    assert "Traceback" not in result.stderr


def write_photo(path: Path, *, seed: int) -> Path:
    """A small smooth photo with its ``<stem>.depth.png`` beside it (no model needed)."""
    rng = np.random.default_rng(seed)
    small = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
    Image.fromarray(small).resize((160, 120), Image.Resampling.BICUBIC).save(path, quality=92)
    save_gray16_png(
        path.with_name(f"{path.stem}.depth.png"), np.tile(np.linspace(0, 1, 160), (120, 1))
    )
    return path


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """trip/: two photos with depth maps, one sidecar, _defaults.yaml and system clutter."""
    folder = tmp_path / "trip"
    folder.mkdir()
    write_photo(folder / "day1.jpg", seed=1)
    write_photo(folder / "day2.png", seed=2)
    (folder / "day2.yaml").write_text("num_layers: 2\n")
    (folder / "_defaults.yaml").write_text("num_layers: 3\n")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "._day1.jpg").write_bytes(b"\0\5\26\7")
    return folder


def layer_settings(job_folder: Path) -> int:
    manifest = json.loads((job_folder / "manifest.json").read_text())
    assert manifest["source"]["filename"].startswith(job_folder.name)
    return int(manifest["settings"]["num_layers"])


def test_a_folder_is_a_batch_with_its_defaults(photo_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert process(photo_folder, "--out", out) == 0
    assert sorted(p.name for p in (out / "trip").iterdir()) == ["day1", "day2"]
    assert layer_settings(out / "trip" / "day1") == 3  # trip/_defaults.yaml
    assert layer_settings(out / "trip" / "day2") == 2  # its sidecar wins
    assert (out / "trip" / "day1" / "Layer_1_background.png").is_file()


def test_every_file_of_a_folder_on_the_command_line(photo_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    everything = sorted(photo_folder.iterdir())  # what the shell's trip/.* trip/* would give
    assert len(everything) == 8
    assert process(*everything, "--out", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["day1", "day2"]
    assert layer_settings(out / "day1") == 3  # _defaults.yaml beside the photo
    assert layer_settings(out / "day2") == 2
    assert (out / "day2" / "day2.depth.png").is_file()


def test_only_companions_on_the_command_line_is_a_usage_error(
    photo_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    companions = [photo_folder / "day2.yaml", photo_folder / "day1.depth.png"]
    assert process(*companions, "--out", tmp_path / "out") == 2
    assert "No photos to process" in capsys.readouterr().err
