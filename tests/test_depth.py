"""Depth: the model through the product path (tiny random weights), and raw-map conversion."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tiny_models import build_tiny_depth_anything, install_in_hub_cache
from transformers import DPTImageProcessorPil

from config.errors import InputError, ModelNotAvailableError
from config.model import DepthMapKind, Device, ModelSettings
from pipeline.depth import (
    DepthEstimator,
    PreprocessSpec,
    check_rgb,
    get_depth_estimator,
    nearness_from_raw,
    preprocess,
    preprocess_spec,
)
from pipeline.models import ModelCache, model_dtype

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
# One 8-bit step after normalisation by the smallest std, with a little slack.
ONE_STEP = 1.0 / 255 / min(IMAGENET_STD)


@pytest.fixture(scope="session")
def tiny_depth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_depth_anything(tmp_path_factory.mktemp("models") / "tiny-depth")


@pytest.fixture
def empty_hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "hf-home"
    home.mkdir()
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def photo(height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """Smooth colours, one hard-edged block, a little noise: float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) / max(height, width)
    rgb = np.stack([0.5 + 0.4 * np.sin(6 * xx + c) * np.cos(4 * yy) for c in range(3)], -1)
    rgb[height // 4 : height // 2, width // 3 : width // 2] = (0.9, 0.1, 0.2)
    rgb += rng.normal(0.0, 0.03, rgb.shape).astype(np.float32)
    clipped: np.ndarray = np.clip(rgb, 0.0, 1.0).astype(np.float32)
    return clipped


# --- the model through the product path -----------------------------------------------------


def test_estimate_from_local_folder_gives_nearness_at_canvas_size(tiny_depth: Path) -> None:
    models = ModelSettings(depth=str(tiny_depth), device=Device.CPU)
    estimator = get_depth_estimator(ModelCache(), models)
    rgb = photo(90, 135)

    result = estimator.estimate(rgb)

    assert result.nearness.shape == (90, 135)
    assert result.nearness.dtype == np.float32
    assert 0.0 <= float(result.nearness.min()) <= 0.05
    assert 0.95 <= float(result.nearness.max()) <= 1.0
    assert float(result.nearness.std()) > 0.01  # the input shows through, not a constant
    # 70 px short side (the tiny processor's size), width kept in aspect, multiples of 14
    assert result.native_size == (112, 70)
    raw = estimator.predict(estimator.pixel_values(rgb))
    assert raw.shape == (70, 112)  # native_size is the model's output size, (width, height)
    assert result.source == "model"
    assert result.model == {"id": str(tiny_depth), "revision": "local"}
    assert estimator.kind is DepthMapKind.DISPARITY
    assert estimator.dtype == torch.float32
    assert not estimator.model.training


def test_estimate_is_disparity_min_max_of_the_raw_output(tiny_depth: Path) -> None:
    estimator = DepthEstimator(str(tiny_depth), device="cpu")
    rgb = photo(70, 112)  # already the model's input size: no resizing on either side
    raw = estimator.predict(estimator.pixel_values(rgb))
    expected = (raw - raw.min()) / (raw.max() - raw.min())

    nearness = estimator.estimate(rgb).nearness

    np.testing.assert_allclose(nearness, expected, atol=1e-5)


def test_model_is_loaded_once_per_cache(tiny_depth: Path) -> None:
    models = ModelSettings(depth=str(tiny_depth), device=Device.CPU)
    cache = ModelCache()

    first = get_depth_estimator(cache, models)
    second = get_depth_estimator(cache, models)

    assert second is first
    assert get_depth_estimator(ModelCache(), models) is not first


def test_fallback_to_the_processor_gives_the_same_depth(tiny_depth: Path) -> None:
    estimator = DepthEstimator(str(tiny_depth), device="cpu")
    rgb = photo(120, 180, seed=3)
    fast = estimator.estimate(rgb)

    estimator.spec = None  # as for a processor the fast path does not reproduce
    slow = estimator.estimate(rgb)

    assert slow.native_size == fast.native_size
    np.testing.assert_allclose(slow.nearness, fast.nearness, atol=0.03)


def test_missing_model_fails_fast_offline_with_a_useful_message(
    empty_hf_home: Path, no_network: list[Any]
) -> None:
    models = ModelSettings(depth="nobody/missing-model", device=Device.CPU)

    start = time.perf_counter()
    with pytest.raises(ModelNotAvailableError) as caught:
        get_depth_estimator(ModelCache(), models)
    elapsed = time.perf_counter() - start

    message = str(caught.value)
    assert "nobody/missing-model" in message
    assert str(empty_hf_home / "hub") in message  # where it looked
    assert "strata models pull" in message
    assert "<stem>.depth.png" in caught.value.hint  # the way that needs no model
    assert caught.value.stage == "model"
    assert elapsed < 10.0  # a hang guard: hub retries took ~25 s before the fix
    assert no_network == []


def test_missing_local_folder_names_the_folder(tmp_path: Path, no_network: list[Any]) -> None:
    folder = tmp_path / "no-such-model"
    models = ModelSettings(depth=str(folder), device=Device.CPU)

    with pytest.raises(ModelNotAvailableError) as caught:
        get_depth_estimator(ModelCache(), models)

    assert str(folder) in caught.value.reason
    assert "not an existing folder" in caught.value.reason
    assert no_network == []


def test_hub_id_loads_from_the_cache_with_its_commit_as_revision(
    tiny_depth: Path, empty_hf_home: Path, no_network: list[Any]
) -> None:
    commit = "a" * 40
    install_in_hub_cache(
        tiny_depth, repo_id="strata-test/tiny-depth", cache_dir=empty_hf_home / "hub", commit=commit
    )
    models = ModelSettings(depth="strata-test/tiny-depth", device=Device.CPU)

    result = get_depth_estimator(ModelCache(), models).estimate(photo(70, 112))

    assert result.model == {"id": "strata-test/tiny-depth", "revision": commit}
    assert no_network == []


def test_dtype_and_input_contract() -> None:
    assert model_dtype("depth", "cuda") == torch.float16
    assert model_dtype("depth", "cuda:1") == torch.float16
    assert model_dtype("depth", "cpu") == torch.float32
    assert model_dtype("depth", "mps") == torch.float32
    with pytest.raises(ValueError, match=r"\(height, width, 3\)"):
        check_rgb(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="float32"):
        check_rgb(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"0\.0–1\.0"):
        check_rgb(np.full((4, 4, 3), 255.0, np.float32))
    with pytest.raises(ValueError, match=r"0\.0–1\.0"):
        check_rgb(np.full((4, 4, 3), np.nan, np.float32))


# --- preprocessing equals the processor's ----------------------------------------------------


def real_processor(**overrides: Any) -> DPTImageProcessorPil:
    """Depth-Anything-V2's released preprocessor config."""
    config: dict[str, Any] = {
        "do_resize": True,
        "size": {"height": 518, "width": 518},
        "keep_aspect_ratio": True,
        "ensure_multiple_of": 14,
        "resample": 3,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": IMAGENET_MEAN,
        "image_std": IMAGENET_STD,
        "do_pad": False,
    }
    config.update(overrides)
    return DPTImageProcessorPil(**config)


@pytest.mark.parametrize(
    ("height", "width"),
    [(1155, 1732), (800, 600), (300, 200), (518, 777), (2000, 400)],
    ids=["2MP-down", "portrait-down", "small-up", "near-native", "panorama"],
)
def test_preprocess_equals_the_processor(height: int, width: int) -> None:
    processor = real_processor()
    spec = preprocess_spec(processor)
    assert spec is not None
    as_bytes = np.round(photo(height, width) * 255).astype(np.uint8)
    expected = processor(images=as_bytes, return_tensors="np")["pixel_values"]

    ours = preprocess(as_bytes.astype(np.float32) / 255, spec=spec).numpy()

    assert ours.shape == expected.shape
    difference = np.abs(ours - expected)
    assert float(difference.max()) <= 1.5 * ONE_STEP  # PIL rounds to 8 bits; we do not
    assert float(difference.mean()) <= 0.4 * ONE_STEP


def test_spec_is_read_from_the_processor() -> None:
    spec = preprocess_spec(real_processor())
    assert spec == PreprocessSpec(
        size=(518, 518),
        keep_aspect_ratio=True,
        multiple=14,
        mode="bicubic",
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
    )
    assert preprocess_spec(real_processor(resample=2)) is not None
    assert preprocess_spec(real_processor(do_normalize=False)) == PreprocessSpec(
        size=(518, 518), keep_aspect_ratio=True, multiple=14, mode="bicubic", mean=None, std=None
    )
    # rules the fast path does not reproduce: the processor is used instead
    assert preprocess_spec(real_processor(resample=1)) is None  # lanczos
    assert preprocess_spec(real_processor(do_pad=True, size_divisor=32)) is None
    assert preprocess_spec(real_processor(do_resize=False)) is None


@pytest.mark.parametrize(
    ("width", "height"),
    [(1732, 1155), (1155, 1732), (640, 480), (100, 100), (4000, 500), (37, 1001), (518, 518)],
)
@pytest.mark.parametrize("keep_aspect_ratio", [True, False])
def test_model_input_size_matches_the_processor(
    width: int, height: int, keep_aspect_ratio: bool
) -> None:
    processor = real_processor(keep_aspect_ratio=keep_aspect_ratio)
    spec = preprocess_spec(processor)
    assert spec is not None
    image = np.zeros((height, width, 3), np.uint8)
    expected = processor(images=image, return_tensors="np")["pixel_values"].shape

    ours = preprocess(image.astype(np.float32), spec=spec).shape

    assert tuple(ours) == expected


# --- raw depth maps -> nearness --------------------------------------------------------------


def ramp(height: int, width: int) -> np.ndarray:
    return np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1))


def test_disparity_is_kept_and_depth_is_flipped() -> None:
    raw = ramp(4, 6) * 7.0 + 3.0  # any offset and scale

    disparity = nearness_from_raw(raw, kind=DepthMapKind.DISPARITY, canvas_size=(6, 4))
    depth = nearness_from_raw(raw, kind=DepthMapKind.DEPTH, canvas_size=(6, 4))

    np.testing.assert_allclose(disparity, ramp(4, 6), atol=1e-6)
    np.testing.assert_allclose(depth, 1.0 - ramp(4, 6), atol=1e-6)
    assert disparity.dtype == np.float32
    assert depth.dtype == np.float32


def test_eight_and_sixteen_bit_maps_give_the_same_nearness() -> None:
    values = np.arange(256, dtype=np.uint16).reshape(16, 16)
    eight = values.astype(np.uint8)
    sixteen = values * 257  # 0..65535, as a 16-bit PNG of the same picture
    floats = values.astype(np.float64) / 255.0

    results = [
        nearness_from_raw(raw, kind=DepthMapKind.DISPARITY, canvas_size=(16, 16))
        for raw in (eight, sixteen, floats, values.astype(np.int32))
    ]

    for result in results:
        np.testing.assert_allclose(result, values / 255.0, atol=1e-6)
    assert float(results[1].max()) == 1.0


def test_a_single_channel_third_axis_is_accepted() -> None:
    raw = ramp(4, 6)[:, :, None]
    result = nearness_from_raw(raw, kind=DepthMapKind.DISPARITY, canvas_size=(6, 4))
    np.testing.assert_allclose(result, ramp(4, 6), atol=1e-6)


def test_non_finite_values_are_farthest_and_do_not_spread() -> None:
    raw = ramp(8, 8) * 10.0 + 5.0
    raw[2, 3] = np.nan
    raw[5, 5] = np.inf
    raw[6, 1] = -np.inf

    for kind in DepthMapKind:
        near = nearness_from_raw(raw, kind=kind, canvas_size=(8, 8))
        assert near[2, 3] == 0.0
        assert near[5, 5] == 0.0
        assert near[6, 1] == 0.0
        finite = np.isfinite(raw)
        assert float(near[finite].min()) == 0.0  # normalised over the finite values
        assert float(near[finite].max()) == 1.0

    upscaled = nearness_from_raw(raw, kind=DepthMapKind.DISPARITY, canvas_size=(32, 32))
    assert np.isfinite(upscaled).all()
    assert float(upscaled.min()) >= 0.0
    assert float(upscaled.max()) <= 1.0


@pytest.mark.parametrize("value", [0.0, 3.5, np.nan])
def test_constant_or_empty_map_gives_zeros(value: float) -> None:
    raw = np.full((5, 5), value, np.float32)
    near = nearness_from_raw(raw, kind=DepthMapKind.DEPTH, canvas_size=(10, 10))
    assert near.shape == (10, 10)
    assert not near.any()


def test_upscaled_step_edge_lands_on_the_image_position() -> None:
    # raw 100x50, step at column 30: the edge is at x = 30 raw pixels = 30% of the width.
    raw = np.zeros((50, 100), np.float32)
    raw[:, 30:] = 1.0

    near = nearness_from_raw(raw, kind=DepthMapKind.DISPARITY, canvas_size=(400, 200))

    # Edges aligned, half-pixel centres: the 0.5 crossing is at x = 120.0, between canvas
    # pixels 119 (centre 119.5 -> raw 29.375) and 120 (-> raw 29.625). align_corners would
    # put it at 118.9 and make the profile asymmetric.
    row = near[100]
    np.testing.assert_allclose(row[119], 0.375, atol=1e-6)
    np.testing.assert_allclose(row[120], 0.625, atol=1e-6)
    assert (row[:118] == 0.0).all()
    assert (row[122:] == 1.0).all()
    assert (near == row).all()  # every row the same


def test_downscaled_step_edge_lands_on_the_image_position() -> None:
    raw = np.zeros((200, 400), np.float32)
    raw[:, 120:] = 1.0  # exactly at canvas x = 30
    raw[:, 300:302] = 0.0  # half of canvas pixel 75 (raw 300–303)

    near = nearness_from_raw(raw, kind=DepthMapKind.DISPARITY, canvas_size=(100, 50))

    row = near[25]
    assert (row[:30] == 0.0).all()
    assert (row[30:75] == 1.0).all()
    np.testing.assert_allclose(row[75], 0.5, atol=1e-6)
    assert (row[76:] == 1.0).all()


def test_model_output_with_rounded_aspect_is_stretched_back() -> None:
    # 1732x1155 runs at 770x518: aspect 1.4865 vs 1.4996 (0.9 % off) from the multiple of 14
    raw = np.zeros((518, 770), np.float32)
    raw[:, 385:] = 1.0  # the right half

    near = nearness_from_raw(raw, kind=DepthMapKind.DISPARITY, canvas_size=(1732, 1155))

    assert near.shape == (1155, 1732)
    assert (near[:, :864] == 0.0).all()
    assert (near[:, 868:] == 1.0).all()  # edge at 1732 / 2 = 866


def test_other_aspect_ratio_is_refused_naming_both_sizes() -> None:
    with pytest.raises(InputError, match=r"100x100.*image is 400x200"):
        nearness_from_raw(np.zeros((100, 100)), kind=DepthMapKind.DEPTH, canvas_size=(400, 200))
    # one pixel of rounding is always fine, whatever the size
    near = nearness_from_raw(ramp(3, 4), kind=DepthMapKind.DISPARITY, canvas_size=(4000, 2000))
    assert near.shape == (2000, 4000)


def test_bad_arguments_name_the_value_and_the_range() -> None:
    with pytest.raises(ValueError, match=r"canvas_size = \(0, 10\).*integers ≥ 1"):
        nearness_from_raw(np.zeros((2, 2)), kind=DepthMapKind.DEPTH, canvas_size=(0, 10))
    with pytest.raises(ValueError, match=r"canvas_size = \(10\.0, 10\)"):
        nearness_from_raw(np.zeros((2, 2)), kind=DepthMapKind.DEPTH, canvas_size=(10.0, 10))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"aspect_tolerance = 2"):
        nearness_from_raw(
            np.zeros((2, 2)), kind=DepthMapKind.DEPTH, canvas_size=(2, 2), aspect_tolerance=2
        )
    with pytest.raises(ValueError, match="not a valid DepthMapKind"):
        nearness_from_raw(np.zeros((2, 2)), kind="far", canvas_size=(2, 2))  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"shape \(2, 2, 3\)"):
        nearness_from_raw(np.zeros((2, 2, 3)), kind=DepthMapKind.DEPTH, canvas_size=(2, 2))
    with pytest.raises(InputError, match="type bool"):
        nearness_from_raw(np.zeros((2, 2), bool), kind=DepthMapKind.DEPTH, canvas_size=(2, 2))


def test_a_map_at_the_canvas_size_is_not_resampled() -> None:
    image = ramp(5, 7)
    out = nearness_from_raw(image, kind=DepthMapKind.DISPARITY, canvas_size=(7, 5))
    np.testing.assert_array_equal(out, image)


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
