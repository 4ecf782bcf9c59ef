"""The painterly stage on tiny random-weight SD1.5 models loaded through the product's path.

The models are built once per module (tests/tiny_models.py), saved to a tmp folder, and
loaded by :func:`pipeline.stylize.stylize` with ``from_pretrained`` like real ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionInpaintPipeline
from loguru import logger
from pydantic import ValidationError
from tiny_models import (
    TINY_SD_NATIVE_SIDE,
    build_tiny_controlnet,
    build_tiny_lcm_lora,
    build_tiny_sd15,
    build_tiny_taesd,
    install_in_hub_cache,
)

from config.errors import ModelNotAvailableError, PipelineError, SettingsError, StrataError
from config.model import Device, JobSettings, ModelSettings, Structure
from pipeline.models import ModelCache, model_dtype
from pipeline.styles import CURATED, build_prompt, known_styles, normalize_style
from pipeline.stylize import (
    StylizeResult,
    alignment_score,
    depth_boundaries,
    diffusion_size,
    get_controlnet,
    get_img2img_pipeline,
    get_taesd,
    plan_steps,
    resize_image,
    restore_detail,
    stylize,
)

H, W = 40, 64  # the canvas: diffused at 32 × 48 (short side native, long side ≤ 1.5×)
FAST_STEPS = JobSettings(steps=4)  # quality mode, short: 4 × 0.5 = 2 steps


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelSettings:
    root = tmp_path_factory.mktemp("painterly-models")
    return ModelSettings(
        img2img=str(build_tiny_sd15(root / "sd15")),
        controlnet=str(build_tiny_controlnet(root / "controlnet")),
        lcm_lora=str(build_tiny_lcm_lora(root / "lcm-lora")),
        taesd=str(build_tiny_taesd(root / "taesd")),
        device=Device.CPU,
    )


@pytest.fixture(scope="module")
def warm_cache() -> ModelCache:
    """One worker's cache, shared by the tests that do not look at loading."""
    return ModelCache()


@pytest.fixture(scope="module")
def photo() -> tuple[np.ndarray, np.ndarray]:
    """A photo with a bright square in front of a textured background, and its nearness."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    rgb = np.stack([xx / W, yy / H, 0.5 + 0.1 * rng.standard_normal((H, W))], axis=2)
    nearness = 0.2 + 0.2 * (xx / W)  # a floor receding to the left
    rgb[10:30, 24:48] = (0.9, 0.3, 0.2)
    nearness[10:30, 24:48] = 0.9
    return np.clip(rgb, 0, 1).astype(np.float32), nearness.astype(np.float32)


def run(
    photo: tuple[np.ndarray, np.ndarray],
    models: ModelSettings,
    cache: ModelCache,
    **settings: Any,
) -> StylizeResult:
    rgb, nearness = photo
    job = FAST_STEPS.model_copy(update=settings)
    return stylize(rgb, nearness, settings=job, models=models, cache=cache, device="cpu")


# --- determinism, strength, size ------------------------------------------------------------


def test_same_seed_same_pixels_and_another_seed_differs(
    photo: tuple[np.ndarray, np.ndarray], models: ModelSettings, warm_cache: ModelCache
) -> None:
    first = run(photo, models, warm_cache, seed=7)
    again = run(photo, models, warm_cache, seed=7)
    fresh_worker = run(photo, models, ModelCache(), seed=7)  # models loaded anew
    other = run(photo, models, warm_cache, seed=8)
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.image, fresh_worker.image)
    assert float(np.abs(first.image - other.image).mean()) > 1e-3
    assert first.info["seed"] == 7


def test_strength_zero_returns_the_photo_exactly_and_loads_nothing(
    photo: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    missing = ModelSettings(img2img=str(tmp_path / "absent"), device=Device.CPU)
    cache = ModelCache()
    result = run(photo, missing, cache, strength=0.0)
    np.testing.assert_array_equal(result.image, photo[0])
    assert result.image is not photo[0]
    assert result.image.dtype == np.float32
    assert result.info["steps_run"] == 0
    assert result.info["loaded"] == []
    assert result.info["models"] == {}


def test_tiny_strength_still_runs_one_step(
    photo: tuple[np.ndarray, np.ndarray], models: ModelSettings, warm_cache: ModelCache
) -> None:
    result = run(photo, models, warm_cache, strength=0.01, steps=25)  # 25 × 0.01 < 1
    assert result.info["steps_planned"] == 1
    assert result.info["steps_scheduled"] == 100
    assert 1 <= result.info["steps_run"] <= 2  # PNDM may repeat its first timestep
    assert not np.array_equal(result.image, photo[0])


@pytest.mark.parametrize(
    ("steps", "strength", "max_steps", "expected"),
    [
        (25, 0.5, 1000, (25, 0.5, 12)),
        (25, 1.0, 1000, (25, 1.0, 25)),
        (25, 0.01, 1000, (100, 0.01, 1)),
        (4, 0.5, 50, (4, 0.5, 2)),  # fast mode: LCM's 4 steps × strength
        (4, 0.1, 50, (10, 0.1, 1)),
        (4, 0.001, 50, (50, 0.02, 1)),  # past LCM's 50-step limit: strength rises to 1/50
        (1, 0.3, 1000, (4, 0.3, 1)),
        (10, 0.0, 1000, (10, 0.0, 0)),
    ],
)
def test_plan_steps(
    steps: int, strength: float, max_steps: int, expected: tuple[int, float, int]
) -> None:
    assert plan_steps(steps, strength, max_steps=max_steps) == pytest.approx(expected)


def test_output_is_canvas_size_and_diffusion_at_native_size(
    models: ModelSettings, warm_cache: ModelCache
) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.random((45, 70, 3), dtype=np.float32)
    nearness = rng.random((45, 70), dtype=np.float32)
    result = stylize(
        rgb, nearness, settings=FAST_STEPS, models=models, cache=warm_cache, device="cpu"
    )
    assert result.image.shape == (45, 70, 3)
    assert result.image.dtype == np.float32
    assert result.image.min() >= 0.0
    assert result.image.max() <= 1.0
    w, h = result.info["diffusion_size"]
    assert min(w, h) == TINY_SD_NATIVE_SIDE
    assert w % 8 == 0
    assert h % 8 == 0
    assert result.info["canvas_size"] == [70, 45]


@pytest.mark.parametrize(
    ("size", "native", "expected"),
    [
        ((3024, 4032), 512, (512, 680)),  # 4:3, short side 512
        ((4032, 3024), 512, (680, 512)),
        ((512, 512), 512, (512, 512)),
        ((1000, 4000), 512, (192, 768)),  # panorama: long side capped at 768
        ((200, 300), 512, (512, 768)),  # small canvases are diffused at native size too
    ],
)
def test_diffusion_size(size: tuple[int, int], native: int, expected: tuple[int, int]) -> None:
    assert diffusion_size(*size, native) == expected


# --- prompts --------------------------------------------------------------------------------


@pytest.mark.parametrize("style", known_styles())
def test_each_known_style_has_its_own_curated_prompt(style: str) -> None:
    built = build_prompt(style)
    assert built.key == style
    assert built.prompt == CURATED[style].prompt
    assert "photo" in built.negative_prompt
    others = {build_prompt(s).prompt for s in known_styles() if s != style}
    assert built.prompt not in others


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("Oil Painting", "oil painting"),
        ("  oil   painting ", "oil painting"),
        ("OIL-PAINTING", "oil painting"),
        ("watercolour", "watercolor"),
        ("Ukiyo-e", "ukiyo-e"),
        ("ukiyoe", "ukiyo-e"),
        ("Sumi-e", "ink wash"),
        ("Ink Wash", "ink wash"),
        ("pencil", "pencil sketch"),
        ("Impressionism", "impressionist"),
    ],
)
def test_style_matching_ignores_case_spacing_and_punctuation(written: str, key: str) -> None:
    assert build_prompt(written).key == key
    assert normalize_style(written) in {
        normalize_style(key),
        *map(normalize_style, CURATED[key].aliases),
    }


def test_free_text_style_uses_the_generic_template() -> None:
    built = build_prompt("  neon   cyberpunk mural ")
    assert built.key == "custom"
    assert "neon cyberpunk mural" in built.prompt
    assert built.prompt.startswith("a painting in the style of")
    assert "photo" in built.negative_prompt


def test_info_records_the_prompt_and_models_for_the_manifest(
    photo: tuple[np.ndarray, np.ndarray], models: ModelSettings, warm_cache: ModelCache
) -> None:
    result = run(photo, models, warm_cache, style="Gouache")
    info = result.info
    assert info["prompt"] == build_prompt("gouache").prompt
    assert info["negative_prompt"] == build_prompt("gouache").negative_prompt
    assert info["models"]["img2img"] == {"id": models.img2img, "revision": "local"}
    assert info["models"]["controlnet"]["id"] == models.controlnet
    dtype = str(model_dtype("img2img", "cpu")).removeprefix("torch.")
    assert (info["strength"], info["device"], info["dtype"]) == (0.5, "cpu", dtype)
    # 4 × 0.5 = 2 steps; the model's PNDM scheduler repeats its first PLMS timestep.
    assert info["steps_run"] == 3
    expected = {"load", "prepare", "text_encode", "denoise", "decode", "upscale", "detail"}
    assert expected <= set(info["timings"])
    assert "alignment_score" not in info  # scored once, by the runner, on the layers as cut
    json.dumps(info)  # goes into manifest.json as is


# --- structure ------------------------------------------------------------------------------


def test_controlnet_is_conditioned_on_the_jobs_depth(
    photo: tuple[np.ndarray, np.ndarray], models: ModelSettings, warm_cache: ModelCache
) -> None:
    controlnet = get_controlnet(warm_cache, models, "cpu")  # the same warm model stylize uses
    seen: list[torch.Tensor] = []

    def spy(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        seen.append(kwargs["controlnet_cond"].detach().clone())

    handle = controlnet.register_forward_pre_hook(spy, with_kwargs=True)
    try:
        result = run(photo, models, warm_cache)
    finally:
        handle.remove()
    assert result.info["structure_used"] == "controlnet"
    assert len(seen) == result.info["steps_run"]
    w, h = result.info["diffusion_size"]
    expected = resize_image(photo[1], h, w)
    tolerance = 2.0**-8 if seen[0].dtype == torch.bfloat16 else 1e-6  # bf16: 8-bit mantissa
    for cond in seen:
        assert cond.shape == (2, 3, h, w)  # classifier-free guidance: uncond + cond
        for channel in cond.reshape(-1, h, w):
            np.testing.assert_allclose(channel.float().numpy(), expected, atol=tolerance)


def test_structure_none_runs_plain_img2img(
    photo: tuple[np.ndarray, np.ndarray], models: ModelSettings, warm_cache: ModelCache
) -> None:
    controlnet = get_controlnet(warm_cache, models, "cpu")
    calls: list[int] = []
    handle = controlnet.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        plain = run(photo, models, warm_cache, structure=Structure.NONE)
    finally:
        handle.remove()
    controlled = run(photo, models, warm_cache)
    assert calls == []
    assert plain.info["structure_used"] == "none"
    assert "controlnet" not in plain.info["models"]
    assert not np.array_equal(plain.image, controlled.image)


def test_missing_controlnet_falls_back_to_img2img_with_a_warning(
    photo: tuple[np.ndarray, np.ndarray], models: ModelSettings, tmp_path: Path
) -> None:
    absent = str(tmp_path / "no-controlnet")
    without = models.model_copy(update={"controlnet": absent})
    warnings: list[str] = []
    sink = logger.add(lambda message: warnings.append(str(message)), level="WARNING")
    try:
        result = run(photo, without, ModelCache())
    finally:
        logger.remove(sink)
    assert result.info["structure"] == "controlnet"
    assert result.info["structure_used"] == "none"
    assert absent in result.info["structure_fallback"]
    assert any(absent in w and "strata models pull" in w for w in warnings)
    assert result.image.shape == (H, W, 3)


@pytest.mark.parametrize("missing", ["local-folder", "hub-id"])
def test_missing_img2img_model_is_model_not_available(
    photo: tuple[np.ndarray, np.ndarray], models: ModelSettings, tmp_path: Path, missing: str
) -> None:
    model_id = str(tmp_path / "nothing-here") if missing == "local-folder" else "strata-test/nope"
    with pytest.raises(ModelNotAvailableError) as caught:
        run(photo, models.model_copy(update={"img2img": model_id}), ModelCache())
    assert model_id in str(caught.value)
    assert "strata models pull" in str(caught.value)


def test_hub_ids_load_from_the_cache_and_record_their_commits(
    photo: tuple[np.ndarray, np.ndarray],
    models: ModelSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub = tmp_path / "hf-home" / "hub"
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ids = {}
    for index, role in enumerate(("img2img", "controlnet", "lcm_lora", "taesd")):
        repo_id = f"strata-test/tiny-{role.replace('_', '-')}"
        install_in_hub_cache(
            Path(getattr(models, role)), repo_id=repo_id, cache_dir=hub, commit=f"{index}" * 40
        )
        ids[role] = repo_id
    from_hub = ModelSettings(**ids, device=Device.CPU)
    result = run(photo, from_hub, ModelCache(), fast=True)
    assert result.info["models"] == {
        role: {"id": repo_id, "revision": f"{index}" * 40}
        for index, (role, repo_id) in enumerate(ids.items())
    }


# --- fast mode and the shared UNet ----------------------------------------------------------


def test_fast_mode_runs_lcm_with_the_tiny_decoder(
    photo: tuple[np.ndarray, np.ndarray], models: ModelSettings, warm_cache: ModelCache
) -> None:
    taesd = get_taesd(warm_cache, models, "cpu")
    decodes: list[int] = []
    handle = taesd.decoder.register_forward_pre_hook(lambda *_: decodes.append(1))
    try:
        result = run(photo, models, warm_cache, fast=True)
    finally:
        handle.remove()
    info = result.info
    assert info["scheduler"] == "LCMScheduler"
    assert info["vae"] == "AutoencoderTiny"
    assert decodes == [1]
    assert info["steps_scheduled"] == 4
    assert info["steps_run"] == 2
    assert info["guidance_scale"] == 1.0
    assert info["lora_adapters"] == ["lcm"]
    assert set(info["models"]) == {"img2img", "controlnet", "lcm_lora", "taesd"}
    assert result.image.shape == (H, W, 3)


def _lora_states(unet: Any) -> list[bool]:
    """For each LoRA layer of the UNet: is it active right now?"""
    return [
        not module.disable_adapters
        for module in unet.modules()
        if hasattr(module, "lora_A") and "lcm" in module.lora_A
    ]


def test_lcm_lora_is_active_only_in_fast_jobs(
    photo: tuple[np.ndarray, np.ndarray], models: ModelSettings
) -> None:
    cache = ModelCache()
    before = run(photo, models, cache)
    unet = get_img2img_pipeline(cache, models, "cpu").unet
    during: list[list[bool]] = []
    handle = unet.register_forward_pre_hook(lambda *_: during.append(_lora_states(unet)))
    try:
        fast = run(photo, models, cache, fast=True)
        fast_steps = len(during)
        after = run(photo, models, cache)
    finally:
        handle.remove()
    assert fast.info["lora_adapters"] == ["lcm"]
    assert all(all(states) and states for states in during[:fast_steps])
    assert all(not any(states) for states in during[fast_steps:])
    assert not any(_lora_states(unet))  # left disabled for the fill stage
    np.testing.assert_array_equal(before.image, after.image)


def test_models_load_once_per_worker(
    photo: tuple[np.ndarray, np.ndarray], models: ModelSettings
) -> None:
    cache = ModelCache()
    batch = [run(photo, models, cache, fast=True, seed=seed) for seed in range(3)]
    assert set(batch[0].info["loaded"]) == {"img2img", "controlnet", "lcm_lora", "taesd"}
    for later in batch[1:]:
        assert later.info["loaded"] == []
        assert later.info["timings"]["load"] < 0.05
    assert batch[0].info["timings"]["load"] > 10 * batch[1].info["timings"]["load"]


def test_inpainting_pipeline_shares_the_unet(models: ModelSettings, warm_cache: ModelCache) -> None:
    base = get_img2img_pipeline(warm_cache, models, "cpu")
    inpaint = StableDiffusionInpaintPipeline.from_pipe(base)
    assert inpaint.unet is base.unet
    assert inpaint.vae is base.vae
    assert inpaint.text_encoder is base.text_encoder
    assert get_img2img_pipeline(warm_cache, models, "cpu") is base


# --- input checks ---------------------------------------------------------------------------


def _bad(photo: tuple[np.ndarray, np.ndarray], case: str) -> tuple[Any, Any, JobSettings]:
    rgb, near = photo
    s = FAST_STEPS
    cases: dict[str, tuple[Any, Any, JobSettings]] = {
        "style": (rgb, near, JobSettings(steps=4, style="   ")),
        "rgb 2-D": (rgb[..., 0], near, s),
        "rgb RGBA": (np.zeros((H, W, 4), np.float32), near, s),
        "rgb float64": (rgb.astype(np.float64), near, s),
        "rgb 0-255": (rgb * 255, near, s),
        "rgb NaN": (np.full_like(rgb, np.nan), near, s),
        "rgb list": (rgb.tolist(), near, s),
        "nearness shape": (rgb, near[:-1], s),
        "nearness 3-D": (rgb, np.stack([near] * 3, axis=2), s),
        "nearness range": (rgb, near * 2, s),
    }
    return cases[case]


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("style", SettingsError, r"style must name a style \(e\.g\. 'oil painting'\), got '   '"),
        ("rgb 2-D", PipelineError, r"rgb must have shape \(H, W, 3\), got \(40, 64\)"),
        ("rgb RGBA", PipelineError, r"rgb must have shape \(H, W, 3\), got \(40, 64, 4\)"),
        ("rgb float64", PipelineError, r"rgb must be float32 in \[0, 1\], got float64"),
        ("rgb 0-255", PipelineError, r"rgb values must lie in \[0, 1\], got the range"),
        ("rgb NaN", PipelineError, r"rgb holds NaN"),
        ("rgb list", PipelineError, r"rgb must be a numpy array"),
        ("nearness shape", PipelineError, r"nearness shape \(39, 64\) does not match"),
        ("nearness 3-D", PipelineError, r"nearness must have shape \(H, W\)"),
        ("nearness range", PipelineError, r"nearness values must lie in \[0, 1\]"),
    ],
)
def test_bad_inputs_are_refused_up_front(
    photo: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
    case: str,
    error: type[StrataError],
    message: str,
) -> None:
    rgb, nearness, settings = _bad(photo, case)
    missing = ModelSettings(img2img=str(tmp_path / "never-loaded"), device=Device.CPU)
    with pytest.raises(error, match=message):  # checked before any model is loaded
        stylize(rgb, nearness, settings=settings, models=missing, cache=ModelCache())


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"strength": 1.5}, "strength"),
        ({"strength": -0.1}, "strength"),
        ({"steps": 0}, "steps"),
        ({"seed": -1}, "seed"),
        ({"structure": "sketch"}, "structure"),
    ],
)
def test_out_of_range_settings_never_reach_the_stage(values: dict[str, Any], field: str) -> None:
    """The settings model refuses them (the stage checks only what it cannot)."""
    with pytest.raises(ValidationError, match=field):
        JobSettings(**values)


# --- detail and alignment -------------------------------------------------------------------


def _edge_image(x: int, size: tuple[int, int] = (32, 48)) -> np.ndarray:
    image = np.full((*size, 3), 0.2, np.float32)
    image[:, x:] = 0.8
    return image


def test_alignment_score_counts_boundaries_with_a_painted_edge_nearby() -> None:
    image = _edge_image(20)  # the step lies between columns 19 and 20
    boundaries = np.zeros((32, 48), bool)
    for column, expected in [(19, 1.0), (20, 1.0), (21, 1.0), (25, 0.0), (40, 0.0)]:
        boundaries[:] = False
        boundaries[4:-4, column] = True
        assert alignment_score(image, boundaries) == pytest.approx(expected), column
    boundaries[:] = False
    boundaries[4:-4, 20] = True
    boundaries[4:-4, 40] = True
    assert alignment_score(image, boundaries) == pytest.approx(0.5)
    assert alignment_score(image, np.zeros((32, 48), bool)) == 1.0
    faint = np.where(image > 0.5, 0.25, 0.2).astype(np.float32)  # a 5 % step: not an edge
    assert alignment_score(faint, boundaries) == 0.0
    with pytest.raises(PipelineError, match=r"boundaries must be a mask of shape \(32, 48\)"):
        alignment_score(image, boundaries[:-1])


def test_depth_boundaries_mark_depth_steps_not_slopes() -> None:
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (16, 1))  # 1/63 per pixel
    assert not depth_boundaries(ramp).any()
    step = np.zeros((16, 64), np.float32)
    step[:, 30:] = 0.8
    columns = np.flatnonzero(depth_boundaries(step).any(axis=0))
    assert columns.tolist() == [29, 30]


def test_restore_detail_brings_back_edges_and_keeps_the_paintings_colours() -> None:
    rng = np.random.default_rng(1)
    photo = _edge_image(37, (96, 128)) + 0.05 * rng.standard_normal((96, 128, 1))
    photo = np.clip(photo, 0, 1).astype(np.float32)
    # A "painting" of the photo made at a quarter of the size, then tinted: what the
    # diffusion hands back, upscaled.
    small = resize_image(photo, 24, 32)
    tinted = np.clip(small * np.array([1.0, 0.8, 0.6], np.float32), 0, 1).astype(np.float32)
    painted = resize_image(tinted, 96, 128)
    restored = restore_detail(painted, photo, diffusion_hw=(24, 32))
    assert restored.shape == photo.shape
    assert restored.dtype == np.float32

    def edge_width(image: np.ndarray) -> int:  # pixels the step takes to climb
        row = image[48, :, 0]
        return int(((row > 0.3) & (row < 0.7)).sum())

    assert edge_width(restored) < edge_width(painted)
    # The photo's fine grain is back (half of it), in luminance only.
    grain = photo - resize_image(resize_image(photo, 24, 32), 96, 128)
    back = restored - painted
    flat = np.s_[:, 4:30]
    assert np.corrcoef(back[flat][..., 0].ravel(), grain[flat][..., 0].ravel())[0, 1] > 0.5
    # The painting's colours stay: at the painting's own size the result matches it.
    assert np.abs(resize_image(restored, 24, 32) - tinted).mean() < 0.02
    # Nothing to restore when the canvas is the diffusion size and edges are off.
    same = restore_detail(tinted, small, diffusion_hw=(24, 32), edges=0.0)
    np.testing.assert_array_equal(same, tinted)
