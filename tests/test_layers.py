"""Layer quality against synthetic scenes with known depth, ownership and hidden background.

Each scene is layered twice: from its exact full-resolution depth, and from blurred,
noisy, quarter-resolution depth like a monocular model gives.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from bench.metrics import Scores, background_errors, quantised, score
from bench.quality import strata, strata_layers
from bench.scenes import Scene, degrade_depth, make_scene
from config.model import DepthMapKind
from pipeline.depth import DepthEstimate, nearness_from_raw
from pipeline.fill import fill_hidden
from pipeline.io import pack_8bit
from pipeline.layers import (
    FillFunction,
    Layer,
    LayerBuilder,
    background_sources,
    build_layers,
    recompose,
)
from pipeline.preview import Parallax, fill_margins, thumbnail
from pipeline.stack import build_stack, label_uncertainty, segment

CASES = [(surfaces, seed) for surfaces in (2, 3, 4, 5) for seed in (0, 1)]


def scene_image(scene: Scene) -> np.ndarray:
    """The scene as an 8-bit photo would decode."""
    return np.round(scene.image * 255.0).astype(np.float32) / 255.0


def depth_estimate(scene: Scene, *, low_resolution: bool, seed: int) -> DepthEstimate:
    raw = degrade_depth(scene.nearness, seed=seed) if low_resolution else scene.nearness
    return DepthEstimate(
        nearness=nearness_from_raw(raw, kind=DepthMapKind.DISPARITY, canvas_size=scene.size),
        native_size=(raw.shape[1], raw.shape[0]),
        source="file",
        model=None,
    )


def telea(image: np.ndarray, known: np.ndarray, region: np.ndarray | None) -> np.ndarray:
    """OpenCV's Telea inpainting, the baseline the built-in fill must beat."""
    painted = (
        cv2.inpaint(
            np.round(image * 255).astype(np.uint8), (~known).astype(np.uint8), 5, cv2.INPAINT_TELEA
        ).astype(np.float32)
        / 255.0
    )
    target = ~known if region is None else region & ~known
    result = image.copy()
    result[target] = painted[target]
    return result


def layered(scene: Scene, depth: DepthEstimate, *, fill: FillFunction | None = None) -> list[Layer]:
    image = scene_image(scene)
    count = len(scene.surfaces)
    if fill is None:
        return strata(image, depth, count)
    return strata_layers(image, depth, count, fill=fill)


def scores_for(surfaces: int, seed: int, *, low_resolution: bool) -> Scores:
    scene = make_scene(num_surfaces=surfaces, seed=seed)
    return score(
        layered(scene, depth_estimate(scene, low_resolution=low_resolution, seed=seed)), scene
    )


@pytest.mark.parametrize(("surfaces", "seed"), CASES)
def test_exact_depth_layers_match_truth(surfaces: int, seed: int) -> None:
    scores = scores_for(surfaces, seed, low_resolution=False)
    assert scores.min_iou >= 0.98, scores.ious
    assert scores.psnr >= 45.0
    assert scores.background_opaque
    assert scores.parallax_holes == 0


@pytest.mark.parametrize(("surfaces", "seed"), CASES)
def test_low_resolution_depth_layers_follow_image_edges(surfaces: int, seed: int) -> None:
    scores = scores_for(surfaces, seed, low_resolution=True)
    assert scores.min_iou >= 0.90, scores.ious
    assert scores.psnr >= 45.0
    assert scores.background_opaque
    assert scores.parallax_holes == 0


@pytest.mark.parametrize("surfaces", [2, 3, 4])
def test_background_fill_and_halo_beat_telea(surfaces: int) -> None:
    scene = make_scene(num_surfaces=surfaces, seed=3)
    depth = depth_estimate(scene, low_resolution=True, seed=3)
    ours = background_errors(quantised(layered(scene, depth))[0].rgb, scene)
    baseline = background_errors(quantised(layered(scene, depth, fill=telea))[0].rgb, scene)
    assert ours[0] < baseline[0], (ours, baseline)
    assert ours[1] < baseline[1], (ours, baseline)


def test_layers_are_nested_full_canvas_and_recompose() -> None:
    scene = make_scene(num_surfaces=4, seed=5)
    layers = layered(scene, depth_estimate(scene, low_resolution=True, seed=5))
    height, width = scene.nearness.shape
    for layer in layers:
        assert layer.rgb.shape == (height, width, 3)
        assert layer.alpha.shape == (height, width)
        assert np.isfinite(layer.rgb).all()
        assert layer.alpha.min() >= 0.0
        assert layer.alpha.max() <= 1.0
    assert (layers[0].alpha == 1.0).all()
    assert not layers[-1].filled.any(), "the nearest layer hides nothing to fill"


def test_no_halo_of_the_nearer_object_on_the_background() -> None:
    """Right outside a near object, the background layer shows background colours,
    not the object's: compare with the object's own colour."""
    scene = make_scene(num_surfaces=2, seed=7)
    layers = layered(scene, depth_estimate(scene, low_resolution=True, seed=7))
    cover = scene.coverage[1]
    band = (cover > 0.05) & (cover < 0.95)
    background = layers[0].rgb[band]
    to_truth = np.abs(background - scene.surfaces[0][band]).mean()
    to_object = np.abs(background - scene.surfaces[1][band]).mean()
    assert to_truth < 0.5 * to_object


def test_many_ramp_pixels_on_a_coarse_grid() -> None:
    """A large canvas with a soft, low-resolution depth map: hundreds of thousands of ramp
    pixels, each read from the reduced statistics of its own cell."""
    scene = make_scene(num_surfaces=3, seed=2, width=1600, height=1200)
    depth = depth_estimate(scene, low_resolution=True, seed=2)
    depth = DepthEstimate(
        nearness=cv2.GaussianBlur(depth.nearness, (0, 0), 12),
        native_size=(200, 150),
        source="file",
        model=None,
    )
    _cuts, labels, _alphas = segment(scene_image(scene), depth, num_layers=3)
    truth = np.argmax(np.stack(scene.ownership), axis=0) + 1
    assert (labels == truth).mean() > 0.97


def test_parallax_preview_at_rest_shows_the_image() -> None:
    """Frame 0 of the sway has no shift: it must be the photo, soft rims included (a rim
    shrunk without premultiplying shows as a bright seam along every layer edge)."""
    scene = make_scene(num_surfaces=4, seed=6, width=320, height=240)
    layers = layered(scene, depth_estimate(scene, low_resolution=True, seed=6))
    small = [thumbnail(pack_8bit(layer.rgb, layer.alpha)) for layer in layers]
    frame = Parallax(small, [0.0, 0.3, 0.6, 1.0]).render(0.0).astype(np.float32) / 255.0
    assert frame.shape == (240, 320, 3)
    off = np.abs(frame - scene_image(scene)).max(axis=2) > 3 / 255
    assert off.mean() < 0.003  # only where three layers meet in one pixel


def test_recomposition_is_exact_away_from_three_layer_corners() -> None:
    for surfaces, seed in CASES:
        scene = make_scene(num_surfaces=surfaces, seed=seed, width=320, height=240)
        layers = quantised(layered(scene, depth_estimate(scene, low_resolution=True, seed=seed)))
        error = np.abs(recompose(layers) - scene_image(scene)).max(axis=2)
        assert (error > 3 / 255).mean() < 0.003, (surfaces, seed)
        if surfaces <= 3:
            assert error.max() < 0.02, (surfaces, seed)


def background_fill_sources(image: np.ndarray, depth: DepthEstimate, count: int) -> np.ndarray:
    """The pixels a job's background fill is given to read (:func:`build_stack`)."""
    sources: list[np.ndarray] = []

    def spy(image: np.ndarray, known: np.ndarray, region: np.ndarray | None) -> np.ndarray:
        if region is not None and np.array_equal(region, ~known):
            sources.append(known.copy())
        return image.copy()

    build_stack(image, depth, num_layers=count, fill=spy)
    assert len(sources) == 1
    return sources[0]


def test_the_background_is_filled_only_from_pixels_no_soft_edge_reaches() -> None:
    """The background's fill starts before the soft alphas exist: its sources must still
    stay clear of every pixel a nearer layer covers at all."""
    for surfaces, seed in CASES:
        scene = make_scene(num_surfaces=surfaces, seed=seed, width=320, height=240)
        image = scene_image(scene)
        depth = depth_estimate(scene, low_resolution=True, seed=seed)
        _cuts, labels, alphas = segment(image, depth, num_layers=surfaces)
        sources = background_fill_sources(image, depth, surfaces)
        assert sources.any(), (surfaces, seed)
        band = label_uncertainty(depth, canvas_width=image.shape[1])
        assert np.array_equal(sources, background_sources(labels, band=band)), (surfaces, seed)
        assert not (sources & (alphas[0] > 0)).any(), (surfaces, seed)


def test_the_background_fill_runs_while_the_soft_edges_are_worked_out() -> None:
    scene = make_scene(num_surfaces=3, seed=4, width=320, height=240)
    image = scene_image(scene)
    _cuts, labels, alphas = segment(
        image, depth_estimate(scene, low_resolution=False, seed=4), num_layers=3
    )
    background_started = threading.Event()

    def fill(image: np.ndarray, known: np.ndarray, region: np.ndarray | None) -> np.ndarray:
        if region is not None and np.array_equal(region, ~known):
            background_started.set()
        return fill_hidden(image, known, region=region)

    margins = fill_margins([0.0, 0.5, 1.0], image.shape[1])
    with LayerBuilder(image, labels, fill=fill, margins=margins) as builder:
        assert background_started.wait(timeout=30)  # before finish() is given the alphas
        layers = builder.finish(alphas)
    expected = build_layers(image, labels, alphas, fill=fill, margins=margins)
    for got, want in zip(layers, expected, strict=True):
        assert np.array_equal(got.rgb, want.rgb)
        assert np.array_equal(got.alpha, want.alpha)
