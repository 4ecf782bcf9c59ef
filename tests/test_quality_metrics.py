"""Every quality metric can fail: for each, a plausible wrong stack scores badly, while
the ideal stack (:func:`bench.metrics.true_layers`: every surface's true texture under
its own coverage) scores perfectly. Also the scenes' truths and the merge rule.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import cv2
import numpy as np
import pytest

from bench import quality
from bench.metrics import (
    GHOST_BAND,
    Scores,
    matched_weights,
    own_parallax,
    score,
    soft_iou,
    true_layers,
)
from bench.scenes import FAMILIES, Scene, degrade_depth, make, make_scene
from pipeline.layers import Layer

LEVEL = 1 / 255


def scored(layers: list[Layer], scene: Scene, **options: Any) -> Scores:
    """Every score, the stack moved by a job's parallax rule on the true depth."""
    return score(layers, scene, parallax=own_parallax(layers, scene.nearness), **options)


def scored_made(made: quality.Made, scene: Scene, **options: Any) -> Scores:
    """Every score of a method's stack, moved by its own parallax."""
    return score(made.layers, scene, parallax=made.parallax, **options)


@pytest.fixture(scope="module")
def floor() -> Scene:
    return make("floor", seed=0)


@pytest.fixture(scope="module")
def close() -> Scene:
    return make("close", seed=0)


@pytest.fixture(scope="module")
def ideal_floor(floor: Scene) -> Scores:
    return scored(true_layers(floor), floor)


def objects_mask(scene: Scene) -> np.ndarray:
    """Pixels any object covers at all (the background's hidden region)."""
    covered: np.ndarray = np.any(np.stack(scene.coverage[1:]) > 0, axis=0)
    return covered


def with_background(
    layers: list[Layer], rgb: np.ndarray, alpha: np.ndarray | None = None
) -> list[Layer]:
    first = layers[0]
    alpha = first.alpha if alpha is None else alpha
    return [Layer(rgb=rgb.astype(np.float32), alpha=alpha, filled=first.filled), *layers[1:]]


# --- the scenes --------------------------------------------------------------------------------


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_keeps_its_truths(family: str) -> None:
    scene = make(family, seed=1)
    height, width = scene.nearness.shape
    assert (width, height) == (384, 288)
    assert np.allclose(np.sum(scene.ownership, axis=0), 1.0, atol=1e-5)
    composite = scene.surfaces[0] * scene.coverage[0][..., None]
    for surface, cover in zip(scene.surfaces[1:], scene.coverage[1:], strict=True):
        composite = cover[..., None] * surface + (1 - cover[..., None]) * composite
    assert np.allclose(composite, scene.image, atol=1e-5)
    assert scene.levels == sorted(scene.levels)
    owner = np.argmax(np.stack(scene.ownership), axis=0)
    assert np.array_equal(scene.nearness, np.choose(owner, scene.depths))


def test_the_floor_is_a_ramp_and_objects_stand_on_it(floor: Scene) -> None:
    ramp = floor.depths[0]
    assert ramp[-1].mean() - ramp[0].mean() > 0.7  # the floor spans most of the range
    for index in range(1, len(floor.surfaces)):
        rows = np.nonzero((floor.coverage[index] > 0.5).any(axis=1))[0]
        bottom = int(rows.max())
        level = float(np.median(floor.depths[index]))
        assert abs(float(ramp[bottom].mean()) - level) < 0.04, index  # feet on the floor
    names = {p.name for p in floor.parts}
    assert names == {"stick", "wire"}


def test_parts_are_thin_or_small_and_belong_to_their_object() -> None:
    wall, small = make("wall", seed=0), make("small", seed=0)
    canvas = 384 * 288
    for part in small.parts:
        assert 0.003 <= part.coverage.sum() / canvas <= 0.02
    for part in wall.parts:
        if part.name in ("stick", "spokes"):
            own = (part.coverage > 0.5).astype(np.uint8)
            assert cv2.distanceTransform(own, cv2.DIST_L2, 3).max() <= 2.5  # at most ~4 px wide
        # a part is its surface's: same depth under it
        level = wall.depths[part.surface][part.coverage > 0.5]
        assert np.ptp(level) < 0.05


def test_close_objects_are_005_apart(close: Scene) -> None:
    assert abs(close.levels[2] - close.levels[1] - 0.05) < 0.01
    assert close.groupings(3) == [[[0], [1, 2], [3]]]  # the only acceptable merge
    assert close.groupings(4) == [[[0], [1], [2], [3]]]
    assert close.groupings(5) == [[[0], [1], [2], [3]]]


def test_fewer_layers_accept_near_ties_and_refuse_merges_across_wide_gaps() -> None:
    """Three small objects at 0.56, 0.76, 0.90 on a medium one at 0.40: any adjacent
    pair of them may share a layer (each merge costs about as little), but never the
    background with the medium object, nor the medium object with the nearest."""
    small = make("small", seed=0)
    options = small.groupings(4)
    assert len(options) > 1
    assert [[0], [1], [2], [3, 4]] in options
    assert all([0] in grouping for grouping in options)
    assert all([1, 2, 3] not in grouping for grouping in options)


def test_model_like_depth_moves_edges_by_several_pixels() -> None:
    """Thresholded at the midpoint, blurred low-resolution depth keeps an object's edge
    within a pixel; model-like depth spills it into the background by several pixels
    on some sides and falls short of it on others."""
    scene = make_scene(num_surfaces=2, seed=0)  # one object (0.9) on a background (0.1)
    near = scene.nearness > 0.5
    perimeter = float(cv2.Canny(near.astype(np.uint8) * 255, 1, 1).astype(bool).sum())

    def offsets(raw: np.ndarray) -> tuple[float, float]:
        """Mean spill and shortfall, in pixels along the edge."""
        assert raw.shape == (72, 96)
        up = cv2.resize(raw, (384, 288), interpolation=cv2.INTER_LINEAR)
        guess = up > 0.5  # midway between the object (0.9) and the background round it
        return float((guess & ~near).sum()) / perimeter, float((near & ~guess).sum()) / perimeter

    mild = degrade_depth(scene.nearness, bleed=0, displacement=(0.0, 0.0), bias=0.0, seed=0)
    spill, short = offsets(mild)
    assert spill + short < 0.3
    model = degrade_depth(scene.nearness, seed=0)
    spill, short = offsets(model)
    assert spill + short > 2.5  # mean offset along the edge, in pixels
    assert spill > 1.5
    assert short > 0.5
    up = cv2.resize(model, (384, 288), interpolation=cv2.INTER_LINEAR) > 0.5
    outside = cv2.distanceTransform((~near).astype(np.uint8), cv2.DIST_L2, 3)
    assert outside[up & ~near].max() >= 5.0  # one side spills by 5 px or more


# --- IoU -------------------------------------------------------------------------------------


def test_the_ideal_stack_scores_perfectly(ideal_floor: Scores) -> None:
    assert ideal_floor.min_iou > 0.999
    assert ideal_floor.min_part_iou is not None
    assert ideal_floor.min_part_iou > 0.99
    assert ideal_floor.psnr > 60.0
    assert ideal_floor.background_opaque
    assert ideal_floor.reveal.ghost_error < 0.5 * LEVEL
    assert ideal_floor.reveal.fill_error < 0.5 * LEVEL
    assert ideal_floor.reveal.view_error < 0.5 * LEVEL
    assert ideal_floor.reveal.holes == 0
    assert ideal_floor.reveal.fill_pixels > 2000  # the sway uncovers plenty to score


def test_vertical_bands_through_the_job_assembly_score_low_iou(floor: Scene) -> None:
    image = quality.scene_image(floor)
    labels = quality.band_labels(floor.nearness.shape, 4)
    made = quality.assemble(image, labels, nearness=floor.nearness, fill=quality.builtin_fill)
    scores = scored_made(made, floor, count=4)
    assert scores.min_iou < 0.3, scores.ious
    assert scores.min_part_iou is not None
    assert scores.min_part_iou < 0.3
    assert scores.reveal.view_error > 5 * LEVEL
    assert scores.reveal.view_error > 20 * scored(true_layers(floor), floor).reveal.view_error
    # what today's tests checked cannot tell the bands from a good stack:
    assert scores.psnr > 45.0
    assert scores.background_opaque


def test_more_layers_than_surfaces_are_scored_as_a_union(floor: Scene) -> None:
    """A surface split over two layers (one more layer asked) keeps its IoU."""
    layers = true_layers(floor)
    floor_layer = layers[0]
    top = np.zeros_like(floor_layer.alpha)
    top[: floor.nearness.shape[0] // 2] = 1.0  # the floor's far half in a layer of its own
    split = Layer(rgb=floor_layer.rgb, alpha=top, filled=floor_layer.filled)
    stack = [floor_layer, split, *layers[1:]]
    assert scored(stack, floor, count=5).min_iou > 0.999


def test_fewer_layers_are_scored_against_the_merged_truth(close: Scene) -> None:
    layers = true_layers(close)
    a, b = layers[1], layers[2]
    merged_alpha = b.alpha + (1 - b.alpha) * a.alpha
    merged_rgb = (b.alpha[..., None] * b.rgb + ((1 - b.alpha) * a.alpha)[..., None] * a.rgb) / (
        np.maximum(merged_alpha, 1e-6)[..., None]
    )
    right = [layers[0], Layer(merged_rgb, merged_alpha, a.filled), layers[3]]
    assert scored(right, close, count=3).min_iou > 0.999
    # the far object merged into the background and the close pair kept apart is the
    # wrong merge: the pair's group has two layers, the far object's none
    c = layers[3]
    background = Layer(
        rgb=c.alpha[..., None] * c.rgb + (1 - c.alpha[..., None]) * layers[0].rgb,
        alpha=layers[0].alpha,
        filled=layers[0].filled,
    )
    wrong = [background, a, b]
    assert scored(wrong, close, count=3).min_iou < 0.2


def test_a_thin_part_left_in_the_background_scores_low_part_iou(
    floor: Scene, ideal_floor: Scores
) -> None:
    """The stick painted into the background, its object's layer without it: the
    object's IoU barely moves, the stick's part IoU collapses."""
    stick = next(p for p in floor.parts if p.name == "stick")
    layers = true_layers(floor)
    owner = layers[stick.surface]
    alpha = np.clip(owner.alpha - stick.coverage, 0.0, 1.0)
    painted = stick.coverage[..., None] * owner.rgb + (1 - stick.coverage[..., None]) * (
        layers[0].rgb
    )
    stack = with_background(layers, painted)
    stack[stick.surface] = Layer(rgb=owner.rgb, alpha=alpha, filled=owner.filled)
    scores = scored(stack, floor)
    parts = dict(scores.parts)
    assert scores.ious[stick.surface] > 0.93, scores.ious
    assert parts["stick"] < 0.1, scores.parts
    assert parts["wire"] > 0.99
    assert scores.reveal.view_error > 1.5 * ideal_floor.reveal.view_error


def test_a_small_object_merged_into_the_background_scores_near_zero() -> None:
    small = make("small", seed=0)
    layers = true_layers(small)
    apart = [i for i in range(2, 5) if not (small.coverage[i] * small.coverage[1]).any()]
    tiny = min(apart, key=lambda i: small.coverage[i].sum())  # not in front of another
    t = layers[tiny]
    background = with_background(
        layers, t.alpha[..., None] * t.rgb + (1 - t.alpha[..., None]) * layers[0].rgb
    )[0]
    stack = [background, *(layer for i, layer in enumerate(layers[1:], 1) if i != tiny)]
    scores = scored(stack, small, count=5)
    assert scores.ious[tiny] == 0.0, scores.ious
    assert min(v for (_, v) in scores.parts) == 0.0
    assert sorted(scores.ious)[1] > 0.99  # the others are fine


def test_matching_takes_the_union_of_majority_layers() -> None:
    truth = [np.array([[1.0, 1.0, 0.0, 0.0]]), np.array([[0.0, 0.0, 1.0, 1.0]])]
    weights = [
        np.array([[1.0, 0.0, 0.0, 0.0]]),
        np.array([[0.0, 1.0, 0.0, 0.0]]),
        np.array([[0.0, 0.0, 1.0, 1.0]]),
    ]
    matched = matched_weights(truth, weights)
    assert soft_iou(matched[0], truth[0]) == 1.0
    assert soft_iou(matched[1], truth[1]) == 1.0
    lonely = matched_weights(truth, [np.array([[1.0, 1.0, 1.0, 0.0]]), np.zeros((1, 4))])
    assert soft_iou(lonely[0], truth[0]) == pytest.approx(2 / 3)
    assert soft_iou(lonely[1], truth[1]) == 0.0  # no layer is mostly made of it


# --- reveal ------------------------------------------------------------------------------------


def inside_band(scene: Scene, pixels: int) -> np.ndarray:
    """Pixels inside the objects within ``pixels`` of their outer edge."""
    covered = objects_mask(scene).astype(np.uint8)
    distance = cv2.distanceTransform(covered, cv2.DIST_L2, 3)
    band: np.ndarray = (distance > 0) & (distance <= pixels)
    return band


def test_foreground_copied_behind_its_object_is_a_ghost(floor: Scene, ideal_floor: Scores) -> None:
    """A background whose fill carries the objects' colour GHOST_BAND px in from their
    edge (what a fill that reads the object's rim does) scores a far worse ghost error
    than the true background and than an honest Telea fill of the same hole."""
    layers = true_layers(floor)
    band = inside_band(floor, GHOST_BAND)
    ghosted = np.where(band[..., None], floor.image, layers[0].rgb)
    ghost = scored(with_background(layers, ghosted), floor)
    honest = quality.telea(floor.image, ~objects_mask(floor))
    telea = scored(with_background(layers, honest), floor, regions=ghost.reveal.regions)
    assert ghost.reveal.ghost_error > 15 * LEVEL
    assert ghost.reveal.ghost_error > 30 * ideal_floor.reveal.ghost_error
    assert ghost.reveal.ghost_error > 2.0 * telea.reveal.ghost_error
    assert ghost.min_iou > 0.999  # the layering itself is right


def test_a_wrong_fill_scores_a_large_fill_error(floor: Scene, ideal_floor: Scores) -> None:
    """The hidden background filled with another surface's texture (right layering,
    wrong continuation) scores a far worse fill error than the true background."""
    layers = true_layers(floor)
    other = make("floor", seed=5).surfaces[0]
    wrong = np.where(objects_mask(floor)[..., None], other, layers[0].rgb)
    scores = scored(with_background(layers, wrong), floor)
    assert scores.reveal.fill_error > 15 * LEVEL
    assert scores.reveal.fill_error > 30 * ideal_floor.reveal.fill_error
    assert scores.min_iou > 0.999


def test_telea_scored_on_the_same_regions_uses_the_same_pixels(floor: Scene) -> None:
    image = quality.scene_image(floor)
    depth = quality.depth_for(floor, "exact", seed=0)
    ours = scored_made(quality.strata(image, depth, 4), floor, count=4)
    theirs = scored_made(
        quality.strata_telea(image, depth, 4), floor, count=4, regions=ours.reveal.regions
    )
    assert theirs.reveal.fill_pixels == ours.reveal.fill_pixels
    assert theirs.reveal.ghost_pixels == ours.reveal.ghost_pixels
    alone = scored_made(quality.strata_telea(image, depth, 4), floor, count=4)
    assert alone.reveal.fill_pixels == ours.reveal.fill_pixels  # same alphas anyway


# --- recomposition, opacity, holes -------------------------------------------------------------


def test_a_stack_that_does_not_recompose_scores_low_psnr(floor: Scene) -> None:
    layers = true_layers(floor)
    last = layers[-1]
    perturbed = Layer(rgb=np.clip(last.rgb + 0.1, 0, 1), alpha=last.alpha, filled=last.filled)
    scores = scored([*layers[:-1], perturbed], floor)
    assert scores.psnr < 35.0


def test_a_background_with_a_hole_is_not_opaque_and_has_holes(
    floor: Scene,
) -> None:
    layers = true_layers(floor)
    alpha = np.where(objects_mask(floor), 0.0, 1.0).astype(np.float32)
    scores = scored(with_background(layers, layers[0].rgb, alpha), floor)
    assert not scores.background_opaque
    assert scores.parallax_holes > 500
    nearly = scored(with_background(layers, layers[0].rgb, np.full_like(alpha, 0.99)), floor)
    assert not nearly.background_opaque


def test_a_middle_layer_not_filled_behind_the_nearer_object_has_holes(close: Scene) -> None:
    """Object A continues behind B (0.05 nearer); without A's fill there the sway shows
    the background through A."""
    layers = true_layers(close)
    a, b = layers[1], layers[2]
    hidden = a.alpha * b.alpha > 0.0
    unfilled = Layer(
        rgb=a.rgb, alpha=np.where(hidden, 0.0, a.alpha).astype(np.float32), filled=a.filled
    )
    # evenly spaced parallax: B moves a third of the sway relative to A (by mean
    # disparity they would move 0.07 of it: too little to show much)
    even = [0.0, 1 / 3, 2 / 3, 1.0]
    scores = score([layers[0], unfilled, *layers[2:]], close, parallax=even)
    assert scores.parallax_holes > 200
    assert score(layers, close, parallax=even).parallax_holes == 0
    assert scores.background_opaque  # the old "holes" (total alpha) could not see this


def test_scores_take_the_layers_as_written(floor: Scene) -> None:
    """Colour and alpha are scored as their 8-bit files hold them."""
    layers = true_layers(floor)
    faint = replace(layers[0], alpha=np.full_like(layers[0].alpha, 1.0 - 0.4 / 255))
    assert scored([faint, *layers[1:]], floor).background_opaque
