"""A painterly job end to end through `pipeline.run`, on tiny random-weight models, and a
photo-realistic job with the diffusion fill backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.scenes import make_scene
from config.model import JobSettings, Mode, ModelSettings
from pipeline import Job, run
from pipeline.io import save_gray16_png
from pipeline.models import ModelCache
from tests.tiny_models import build_tiny_controlnet, build_tiny_sd15, build_tiny_sd_inpaint


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> ModelSettings:
    root = tmp_path_factory.mktemp("models")
    return ModelSettings(
        img2img=str(build_tiny_sd15(root / "sd15")),
        controlnet=str(build_tiny_controlnet(root / "controlnet")),
        inpaint=str(build_tiny_sd_inpaint(root / "inpaint")),
        device="cpu",
    )


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    scene = make_scene(num_surfaces=3, seed=4, width=96, height=64)
    path = tmp_path / "in" / "garden.png"
    path.parent.mkdir()
    Image.fromarray(np.round(scene.image * 255).astype(np.uint8)).save(path)
    save_gray16_png(path.with_name("garden.depth.png"), scene.nearness)
    return path


def composite(folder: Path, count: int) -> np.ndarray:
    names = sorted(folder.glob("Layer_*.png"), key=lambda p: int(p.name.split("_")[1]))
    assert len(names) == count
    result = np.zeros((64, 96, 3))
    for name in names:
        rgba = np.asarray(Image.open(name)).astype(np.float64) / 255.0
        result = rgba[..., 3:] * rgba[..., :3] + (1 - rgba[..., 3:]) * result
    return result


def test_painterly_layers_recompose_to_the_stylized_image(
    photo: Path, tmp_path: Path, tiny_models: ModelSettings
) -> None:
    settings = JobSettings(num_layers=3, strength=0.6, steps=4, seed=3)
    job = Job(
        job_id="p1",
        mode=Mode.PAINTERLY,
        input_path=photo,
        output_root=tmp_path / "out",
        settings=settings,
        models=tiny_models.model_copy(update={"inpaint": None}),
    )
    result = run(job, cache=ModelCache())
    folder = result.output_dir
    assert (folder / "stylized.png").is_file()
    stylized = np.asarray(Image.open(folder / "stylized.png")).astype(np.float64) / 255.0
    source = np.asarray(Image.open(photo)).astype(np.float64) / 255.0
    assert np.abs(stylized - source).mean() > 0.01, "the restyle changed the picture"
    error = composite(folder, 3) - stylized
    assert 10 * np.log10(1 / np.mean(error**2)) >= 40.0
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["mode"] == "painterly"
    assert manifest["models"]["img2img"]["id"] == tiny_models.img2img
    assert 0.0 <= manifest["painterly"]["alignment_score"] <= 1.0
    assert "stylize" in manifest["timings"]


def test_diffusion_fill_backend_is_used_and_recorded(
    photo: Path, tmp_path: Path, tiny_models: ModelSettings
) -> None:
    job = Job(
        job_id="f1",
        mode=Mode.PHOTO_REALISTIC,
        input_path=photo,
        output_root=tmp_path / "out",
        settings=JobSettings(num_layers=3),
        models=tiny_models,
    )
    manifest = run(job, cache=ModelCache()).manifest
    assert manifest["fill"] == {"method": "diffusion", "model": tiny_models.inpaint}
    assert manifest["models"]["inpaint"]["id"] == tiny_models.inpaint
    with Image.open(job.output_root / "garden" / "Layer_1_background.png") as background:
        assert np.asarray(background)[..., 3].min() == 255


def test_inpainting_with_the_img2img_model_shares_its_weights(
    photo: Path, tmp_path: Path, tiny_models: ModelSettings
) -> None:
    from pipeline.stylize import get_img2img_pipeline

    models = tiny_models.model_copy(update={"inpaint": tiny_models.img2img})
    cache = ModelCache()
    job = Job(
        job_id="s1",
        mode=Mode.PAINTERLY,
        input_path=photo,
        output_root=tmp_path / "out",
        settings=JobSettings(num_layers=3, strength=0.5, steps=2),
        models=models,
    )
    manifest = run(job, cache=cache).manifest
    assert manifest["fill"] == {"method": "diffusion", "model": tiny_models.img2img}
    inpainter = cache.get(("inpaint-shared", models.img2img, "cpu"), lambda: None)
    assert inpainter is not None
    assert inpainter.pipe.unet is get_img2img_pipeline(cache, models, "cpu").unet
