"""The real stereo novel-view bench (``bench/stereo.py``): its parts, and that its score
tells a right answer from a wrong one.

The quick checks run on the Motorcycle pair at half size; the full run is marked slow.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from bench import stereo
from pipeline.layers import Layer
from pipeline.preview import PARALLAX_AMPLITUDE


@pytest.fixture(scope="module")
def pair() -> stereo.StereoPair:
    return stereo.load_motorcycle(scale=0.5)


@pytest.fixture(scope="module")
def masks(pair: stereo.StereoPair) -> stereo.Masks:
    return stereo.scored_masks(pair)


@pytest.fixture(scope="module")
def kmeans_layers(pair: stereo.StereoPair) -> list[Layer]:
    depth = stereo.depth_estimate(pair.disparity, "full")
    return stereo.METHODS["k-means"](pair.left, depth, 4)


def seen_psnr(
    layers: list[Layer], shifts: list[float], pair: stereo.StereoPair, masks: stereo.Masks
) -> float:
    return stereo.psnr(stereo.render_view(layers, shifts), pair.right, masks.seen)


# --- input ---------------------------------------------------------------------------------------


def test_occlusion_holes_take_the_farther_neighbour_on_their_row() -> None:
    inf, nan = np.inf, np.nan
    raw = np.array(
        [
            [10.0, inf, inf, 30.0],  # farther on the left
            [40.0, nan, 20.0, 20.0],  # farther on the right
            [inf, 5.0, 9.0, inf],  # an edge has one side only
        ],
        dtype=np.float32,
    )
    filled = stereo.fill_occlusions(raw)
    assert filled.tolist() == [[10, 10, 10, 30], [40, 20, 20, 20], [5, 5, 9, 9]]


def test_a_row_with_no_known_disparity_takes_the_farthest_value() -> None:
    raw = np.array([[np.inf, np.inf], [3.0, 8.0]], dtype=np.float32)
    assert stereo.fill_occlusions(raw).tolist() == [[3, 3], [3, 8]]


def test_the_shipped_pair_is_filled_and_keeps_its_known_values() -> None:
    full = stereo.load_motorcycle()
    assert np.isfinite(full.disparity).all()
    assert 0.85 < full.known.mean() < 0.99
    assert full.disparity[full.known].min() > 5.0
    assert full.left.shape == full.right.shape == (*full.known.shape, 3)


def test_low_res_depth_is_resized_by_the_pipeline_to_the_canvas(pair: stereo.StereoPair) -> None:
    full = stereo.depth_estimate(pair.disparity, "full")
    low = stereo.depth_estimate(pair.disparity, "low-res")
    assert low.nearness.shape == full.nearness.shape == pair.known.shape
    assert low.native_size == (pair.known.shape[1] // 4, pair.known.shape[0] // 4)
    assert 0.0 < np.abs(low.nearness - full.nearness).mean() < 0.05
    with pytest.raises(ValueError, match="unknown depth kind"):
        stereo.depth_estimate(pair.disparity, "exact")


# --- the peers' cuts -----------------------------------------------------------------------------


def sum_of_squares(values: np.ndarray, labels: np.ndarray) -> float:
    return float(
        sum(
            ((values[labels == k] - values[labels == k].mean()) ** 2).sum()
            for k in set(labels.tolist())
        )
    )


def test_kmeans_cuts_give_the_least_within_layer_variance_of_all_partitions() -> None:
    values = np.random.default_rng(3).uniform(0.0, 1.0, 11) ** 2
    ordered = np.sort(values)
    best = min(
        sum_of_squares(
            ordered, np.searchsorted(np.array(ends), np.arange(ordered.size), side="right")
        )
        for ends in itertools.combinations(range(1, ordered.size), 2)
    )
    labels = stereo.labels_from_cuts(values, stereo.kmeans_cuts(values, 3))
    assert labels.max() == 3
    assert sum_of_squares(values, labels) == pytest.approx(best, rel=1e-9)


def test_kmeans_splits_three_clumps_between_them() -> None:
    values = np.array([0.0, 0.1, 0.2, 5.0, 5.1, 9.0, 9.2, 9.4])
    cuts = stereo.kmeans_cuts(values, 3)
    assert 0.2 < cuts[0] <= 5.0
    assert 5.1 < cuts[1] <= 9.0
    assert stereo.labels_from_cuts(values, cuts).tolist() == [1, 1, 1, 2, 2, 3, 3, 3]


def test_largest_gaps_cut_in_the_empty_stretches() -> None:
    values = np.concatenate([np.full(100, 0.1), np.full(100, 0.15), np.full(100, 0.6), [1.0] * 100])
    cuts = stereo.gap_cuts(values, 3)
    assert 0.15 < cuts[0] < 0.6 < cuts[1] < 1.0


def test_quantiles_hold_equal_counts_and_empty_labels_are_dropped() -> None:
    values = np.arange(100.0)
    assert (
        np.bincount(stereo.labels_from_cuts(values, stereo.quantile_cuts(values, 4)))[1:].tolist()
        == [25] * 4
    )
    assert stereo.labels_from_cuts(values, np.array([-5.0, 50.0])).max() == 2


def test_peer_margins_follow_each_layers_mean_depth_as_a_jobs_do() -> None:
    nearness = np.repeat(np.array([[0.0, 0.1, 0.2, 0.9, 1.0]], np.float32), 3, axis=0)
    labels = np.repeat(np.array([[1, 1, 2, 3, 3]], np.int32), 3, axis=0)
    amplitude = PARALLAX_AMPLITUDE * 5  # the layers' parallax: 0, 0.15 / 0.9, 1
    assert stereo.fill_margins(nearness, labels) == [
        int(np.ceil(amplitude)) + 2,
        int(np.ceil((1 - 0.15 / 0.9) * amplitude)) + 2,
        2,
    ]


# --- rendering -----------------------------------------------------------------------------------


def test_a_layer_moves_left_by_its_shift_and_carries_no_colour_where_clear() -> None:
    rgb = np.zeros((3, 20, 3), np.float32)
    rgb[:, 10] = 1.0
    rgb[:, 15] = 0.7  # colour under alpha 0 must not show
    alpha = np.zeros((3, 20), np.float32)
    alpha[:, 10] = 1.0
    background = Layer(
        rgb=np.full((3, 20, 3), 0.2, np.float32),
        alpha=np.ones((3, 20), np.float32),
        filled=np.zeros((3, 20), bool),
    )
    view = stereo.render_view(
        [background, Layer(rgb=rgb, alpha=alpha, filled=alpha < 0)], [0.0, 3.0]
    )
    assert view[1, 7].tolist() == pytest.approx([1.0] * 3)
    assert view[1, 10].tolist() == pytest.approx([0.2] * 3)
    assert view[1, 12].tolist() == pytest.approx([0.2] * 3)
    half = stereo.render_view([background], [0.5])
    assert half[1, -1].tolist() == pytest.approx([0.1] * 3)  # half of it slid out of the frame


def test_layers_at_zero_shift_recompose_the_left_image(
    pair: stereo.StereoPair, kmeans_layers: list[Layer]
) -> None:
    everywhere = np.ones(pair.known.shape, bool)
    assert stereo.psnr(stereo.render_view(kmeans_layers, [0.0] * 4), pair.left, everywhere) > 60.0


def test_the_kmeans_peer_shows_the_kmeans_labels(
    pair: stereo.StereoPair, kmeans_layers: list[Layer]
) -> None:
    nearness = stereo.depth_estimate(pair.disparity, "full").nearness
    labels = stereo.labels_from_cuts(nearness, stereo.kmeans_cuts(nearness, 4))
    for k, shown in enumerate(stereo.shown_weights(kmeans_layers), start=1):
        assert np.array_equal(shown > 0.5, labels == k)


def test_each_layer_moves_by_the_mean_disparity_it_shows(
    pair: stereo.StereoPair, kmeans_layers: list[Layer]
) -> None:
    shifts = stereo.layer_shifts(kmeans_layers, pair.disparity, pair.known)
    assert shifts == sorted(shifts)  # farthest first: smallest disparity first
    owned = [(w > 0.5) & pair.known for w in stereo.shown_weights(kmeans_layers)]
    assert shifts == pytest.approx([pair.disparity[m].mean() for m in owned], abs=1e-3)


def test_the_forward_warp_keeps_the_nearer_pixel() -> None:
    disparity = np.array([[0.0, 0.0, 0.0, 2.0, 0.0]], np.float32)
    warped = stereo.forward_disparity(disparity, np.ones(disparity.shape, bool))
    assert warped[0, 1] == 2.0  # the near pixel at x=3 lands on x=1 and hides the far one
    assert np.isnan(warped[0, 3])  # revealed: nothing lands there


def test_the_masks_are_fixed_parts_of_the_frame(
    pair: stereo.StereoPair, masks: stereo.Masks
) -> None:
    assert not (masks.seen & masks.revealed).any()
    assert 0.75 < masks.seen.mean() < 0.95
    assert 0.01 < masks.revealed.mean() < 0.15
    assert not masks.seen[:, -int(pair.disparity.min()) :].any()  # pushed out of the left view


# --- the score can fail --------------------------------------------------------------------------


def test_layers_shifted_the_wrong_way_score_far_worse(
    pair: stereo.StereoPair, masks: stereo.Masks, kmeans_layers: list[Layer]
) -> None:
    shifts = stereo.layer_shifts(kmeans_layers, pair.disparity, pair.known)
    right = seen_psnr(kmeans_layers, shifts, pair, masks)
    wrong = seen_psnr(kmeans_layers, [-s for s in shifts], pair, masks)
    assert right > 18.0
    assert wrong < right - 5.0


def test_a_nonsense_label_map_scores_far_worse_than_kmeans(
    pair: stereo.StereoPair, masks: stereo.Masks, kmeans_layers: list[Layer]
) -> None:
    height, width = pair.known.shape
    bands = np.repeat((np.arange(width) * 4 // width + 1)[None, :], height, axis=0).astype(np.int32)
    nearness = stereo.depth_estimate(pair.disparity, "full").nearness
    nonsense = stereo.label_layers(pair.left, bands, nearness)
    kmeans = seen_psnr(
        kmeans_layers, stereo.layer_shifts(kmeans_layers, pair.disparity, pair.known), pair, masks
    )
    score = seen_psnr(
        nonsense, stereo.layer_shifts(nonsense, pair.disparity, pair.known), pair, masks
    )
    assert score < kmeans - 3.0


def test_the_per_pixel_warp_beats_one_flat_plane(
    pair: stereo.StereoPair, masks: stereo.Masks
) -> None:
    warp = stereo.psnr(stereo.pixel_warp(pair), pair.right, masks.seen)
    flat = stereo.psnr(stereo.flat_plane(pair), pair.right, masks.seen)
    assert warp > 25.0
    assert warp > flat + 8.0


# --- the target and the report -------------------------------------------------------------------


def fake_result(strata_db: float) -> dict[str, Any]:
    rows = [
        {"method": m, "depth": d, "layers": 4, "layers_made": 4, "psnr_db": db, "revealed_db": 10.0}
        for d in stereo.DEPTHS
        for m, db in (
            ("strata", strata_db),
            ("quantiles", 17.0),
            ("largest gaps", 16.0),
            ("k-means", 18.0),
        )
    ]
    rows += [
        {"method": name, "depth": "true", "layers": None, "psnr_db": 14.0, "revealed_db": 12.0}
        for name in stereo.REFERENCES
    ]
    result: dict[str, Any] = {
        "scene": "a test",
        "size": [8, 6],
        "methods": {"strata": "the pipeline"},
        "rows": rows,
        "layer_counts": [4],
        "seen_share": 0.8,
        "revealed_share": 0.05,
    }
    result["target"] = stereo.target(result)
    return result


def test_the_target_needs_half_a_decibel_over_the_best_peer_on_both_depths() -> None:
    assert stereo.target(fake_result(18.5))["met"] is True
    missed = stereo.target(fake_result(18.4))
    assert missed["met"] is False
    assert missed["depths"]["full"]["best_peer"] == "k-means"
    assert missed["depths"]["low-res"]["margin_db"] == pytest.approx(0.4)
    assert "NOT MET" in stereo.table(fake_result(18.4))
    assert [met for *_, met in stereo.targets(fake_result(18.5))] == [True, True]
    assert [met for *_, met in stereo.targets(None)] == [None, None]


def test_the_table_marks_a_method_that_made_fewer_layers() -> None:
    result = fake_result(18.5)
    result["rows"][0]["layers_made"] = 3
    assert "18.5 (3)" in stereo.table(result)
    assert "| strata | full | 18.5 (3) |" in stereo.section(result)


@pytest.mark.slow
def test_smoke_run_measures_every_method_and_reference() -> None:
    result = stereo.run(smoke=True)
    names = {(r["method"], r["depth"]) for r in result["rows"]}
    assert names == {(m, d) for m in stereo.METHODS for d in stereo.DEPTHS} | {
        (r, "true") for r in stereo.REFERENCES
    }
    assert result["target"]["met"] is None  # no 4-layer rows in a smoke run


# --- the full run --------------------------------------------------------------------------------


@pytest.mark.slow
def test_full_run_every_layer_count_lies_between_the_floor_and_the_ceiling(tmp_path: Any) -> None:
    result = stereo.run(images=tmp_path)
    found = {(r["method"], r["depth"], r["layers"]): r["psnr_db"] for r in result["rows"]}
    flat, warp = found[("one flat plane", "true", None)], found[("per-pixel warp", "true", None)]
    for method in stereo.METHODS:
        for depth in stereo.DEPTHS:
            for count in stereo.LAYER_COUNTS:
                assert flat - 0.5 < found[(method, depth, count)] < warp, (method, depth, count)
    for depth in stereo.DEPTHS:  # more layers approach the per-pixel warp
        assert found[("k-means", depth, 5)] > found[("k-means", depth, 2)] + 1.0
    assert result["target"]["met"] in (True, False)
    assert len(list(tmp_path.glob("strata-full-4-*.png"))) >= 4
