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
    return stereo.psnr(stereo.render_view(layers, shifts), pair.right, masks.scored)


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
    assert not (masks.scored & masks.revealed).any()
    assert 0.75 < masks.scored.mean() < 0.95
    assert 0.01 < masks.revealed.mean() < 0.15
    assert not masks.scored[:, -int(pair.disparity.min()) :].any()  # pushed out of the left view


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
    warp = stereo.psnr(stereo.pixel_warp(pair), pair.right, masks.scored)
    flat = stereo.psnr(stereo.flat_plane(pair), pair.right, masks.scored)
    assert warp > 25.0
    assert warp > flat + 8.0


# --- the two protocols ---------------------------------------------------------------------------


def test_the_protocols_differ_in_the_four_documented_choices() -> None:
    equal, issue = stereo.EQUAL_ASSEMBLY, stereo.ISSUE
    assert (equal, issue) == stereo.PROTOCOLS
    assert (equal.name, issue.name) == ("equal assembly", "issue")
    assert (equal.peer_middle_fill, issue.peer_middle_fill) == (True, False)
    assert (equal.mask, issue.mask) == ("seen", "left of max disparity")
    assert (equal.whole_pixel_flat, issue.whole_pixel_flat) == (False, True)
    assert (equal.warp, issue.warp) == ("sample", "splat")


def test_strata_layers_are_made_once_for_both_protocols_and_each_peers_twice() -> None:
    both = list(stereo.PROTOCOLS)
    assert stereo.assemblies("strata", both) == [(True, both)]
    for name in stereo.PEERS:
        assert stereo.assemblies(name, both) == [
            (True, [stereo.EQUAL_ASSEMBLY]),
            (False, [stereo.ISSUE]),
        ]


def test_the_issue_protocols_peers_fill_under_the_background_only(
    pair: stereo.StereoPair, kmeans_layers: list[Layer]
) -> None:
    depth = stereo.depth_estimate(pair.disparity, "full")
    labels = stereo.labels_from_cuts(depth.nearness, stereo.kmeans_cuts(depth.nearness, 4))
    bare = stereo.METHODS["k-means"](pair.left, depth, 4, middle_fill=False)
    assert len(bare) == len(kmeans_layers) == 4
    background, filled_background = bare[0], kmeans_layers[0]
    assert (background.alpha == 1.0).all()
    assert np.array_equal(background.filled, labels > 1)  # filled behind everything nearer
    assert np.array_equal(background.rgb, filled_background.rgb)
    for k, (layer, filled) in enumerate(zip(bare[1:], kmeans_layers[1:], strict=True), start=2):
        own = labels == k
        assert not layer.filled.any()  # no fill in a middle (or the nearest) layer
        assert np.array_equal(layer.alpha, own.astype(np.float32))
        assert (layer.rgb[~own] == 0.0).all()
        if k < 4:  # equal assembly fills each middle layer behind nearer ones, in its margin
            assert filled.filled.any()
            assert (filled.alpha[filled.filled] == 1.0).all()
            assert not (filled.filled & own).any()
    for a, b in zip(stereo.shown_weights(bare), stereo.shown_weights(kmeans_layers), strict=True):
        assert np.array_equal(a, b)  # the same pixels shown, so the same shifts


def test_the_issue_mask_scores_every_pixel_left_of_width_minus_the_largest_disparity(
    pair: stereo.StereoPair, masks: stereo.Masks
) -> None:
    full = stereo.load_motorcycle()
    height, width = full.known.shape
    assert stereo.right_edge_cut(full) == 60
    scored = stereo.scored_mask(full, stereo.ISSUE)
    assert scored.shape == (height, width)
    assert scored[:, : width - 60].all()  # every row, revealed and unknown pixels included
    assert not scored[:, width - 60 :].any()
    half = stereo.scored_masks(pair, stereo.ISSUE)
    assert stereo.right_edge_cut(pair) == 30
    assert (half.scored & half.revealed).any()
    assert np.array_equal(half.revealed, masks.revealed)  # the revealed mask is shared
    inside = np.zeros_like(half.scored)
    inside[stereo.BORDER : -stereo.BORDER, stereo.BORDER : -stereo.BORDER] = True
    only_unknown = inside & ~masks.scored & ~masks.revealed  # only unknown disparities land
    assert (half.scored & only_unknown).any()
    assert half.scored[:, : stereo.BORDER].all()  # no border at the frame's edge


def test_the_issue_flat_plane_moves_by_whole_pixels(pair: stereo.StereoPair) -> None:
    shift = round(float(pair.disparity[pair.known].mean()))
    whole = stereo.flat_plane(pair, whole_pixels=True)
    np.testing.assert_allclose(whole[:, :-shift], pair.left[:, shift:], atol=1e-6)
    assert (whole[:, -shift:] == 0.0).all()
    bilinear = stereo.flat_plane(pair)
    assert np.abs(bilinear[:, : -shift - 1] - pair.left[:, shift:-1]).max() > 0.05


def test_the_issue_warp_splats_each_colour_to_the_nearest_pixel() -> None:
    colours = np.linspace(0.1, 0.6, 6, dtype=np.float32)
    left = np.repeat(colours[None, :, None], 3, axis=2)
    disparity = np.array([[0.2, 0.2, 0.2, 1.6, 0.0, 0.0]], np.float32)
    pair = stereo.StereoPair(
        left=left, right=left, disparity=disparity, known=np.ones(disparity.shape, bool)
    )
    view = stereo.pixel_warp(pair, splat=True)
    c = colours.tolist()
    # x=3 lands on 1.4 -> 1 and hides x=1 (0.8 -> 1); nothing lands on 3, which takes the
    # farther side's colour (x=4, d 0, rather than x=2, d 0.2)
    assert view[0, :, 0].tolist() == pytest.approx([c[0], c[3], c[2], c[4], c[4], c[5]])
    assert not np.allclose(stereo.pixel_warp(pair), view)  # the sampled warp differs


def test_each_protocol_renders_its_own_references(pair: stereo.StereoPair) -> None:
    equal = stereo.reference_views(pair, stereo.EQUAL_ASSEMBLY)
    issue = stereo.reference_views(pair, stereo.ISSUE)
    assert np.array_equal(equal["one flat plane"], stereo.flat_plane(pair))
    assert np.array_equal(issue["one flat plane"], stereo.flat_plane(pair, whole_pixels=True))
    assert np.array_equal(equal["per-pixel warp"], stereo.pixel_warp(pair))
    assert np.array_equal(issue["per-pixel warp"], stereo.pixel_warp(pair, splat=True))


# --- the target and the report -------------------------------------------------------------------


def fake_part(strata_db: float, peer_db: float) -> dict[str, Any]:
    rows = [
        {"method": m, "depth": d, "layers": 4, "layers_made": 4, "psnr_db": db, "revealed_db": 10.0}
        for d in stereo.DEPTHS
        for m, db in (
            ("strata", strata_db),
            ("quantiles", peer_db - 1.0),
            ("largest gaps", peer_db - 2.0),
            ("k-means", peer_db),
        )
    ]
    rows += [
        {"method": name, "depth": "true", "layers": None, "psnr_db": 14.0, "revealed_db": 12.0}
        for name in stereo.REFERENCES
    ]
    part: dict[str, Any] = {
        "summary": "a test protocol",
        "scored": "some pixels",
        "rows": rows,
        "scored_share": 0.8,
        "revealed_share": 0.05,
    }
    part["target"] = stereo.target(part)
    return part


def fake_result(strata_db: float, issue_peer_db: float = 18.0) -> dict[str, Any]:
    return {
        "scene": "a test",
        "size": [8, 6],
        "methods": {"strata": "the pipeline"},
        "layer_counts": [4],
        "protocols": {
            "equal assembly": fake_part(strata_db, 18.0),
            "issue": fake_part(strata_db, issue_peer_db),
        },
    }


def test_the_target_needs_half_a_decibel_over_the_best_peer_on_both_depths() -> None:
    assert stereo.target(fake_part(18.5, 18.0))["met"] is True
    missed = stereo.target(fake_part(18.4, 18.0))
    assert missed["met"] is False
    assert missed["depths"]["full"]["best_peer"] == "k-means"
    assert missed["depths"]["low-res"]["margin_db"] == pytest.approx(0.4)
    assert "NOT MET" in stereo.table(fake_result(18.4))


def test_every_protocol_has_its_target_rows_table_and_line() -> None:
    result = fake_result(18.4, issue_peer_db=17.0)  # misses under equal assembly only
    rows = stereo.targets(result)
    assert len(rows) == len(stereo.PROTOCOLS) * len(stereo.DEPTHS)
    by_protocol = {
        p.name: [r for r in rows if f"{p.name} protocol" in r[1]] for p in stereo.PROTOCOLS
    }
    assert [met for *_, met in by_protocol["equal assembly"]] == [False, False]
    assert [met for *_, met in by_protocol["issue"]] == [True, True]
    assert all(s == "stereo" for s, *_ in rows)
    assert [met for *_, met in stereo.targets(None)] == [None] * 4
    partial = fake_result(18.4)
    del partial["protocols"]["issue"]
    assert [m for _, t, m, _ in stereo.targets(partial) if "issue" in t] == ["not measured"] * 2
    text, markdown = stereo.table(result), stereo.section(result)
    for shown in (text, markdown):
        assert "target (equal assembly): strata at 4 layers" in shown
        assert "target (issue): strata at 4 layers" in shown
        assert shown.count("NOT MET") == 1
    assert "Protocol `equal assembly`" in markdown
    assert "Protocol `issue`" in markdown


def test_the_table_marks_a_method_that_made_fewer_layers() -> None:
    result = fake_result(18.5)
    result["protocols"]["issue"]["rows"][0]["layers_made"] = 3
    assert "18.5 (3)" in stereo.table(result)
    assert "| strata | full | 18.5 (3) |" in stereo.section(result)
    assert "| strata | full | 18.5 |" in stereo.section(result)  # equal assembly's row


@pytest.mark.slow
def test_smoke_run_measures_every_method_and_reference_under_both_protocols(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: dict[tuple[str, bool], int] = {}
    for name, method in list(stereo.METHODS.items()):

        def counted(
            image: np.ndarray,
            depth: Any,
            count: int,
            *,
            middle_fill: bool = True,
            name: str = name,
            method: stereo.Method = method,
        ) -> list[Layer]:
            calls[(name, middle_fill)] = calls.get((name, middle_fill), 0) + 1
            return method(image, depth, count, middle_fill=middle_fill)

        monkeypatch.setitem(stereo.METHODS, name, counted)
    result = stereo.run(smoke=True)
    assert list(result["protocols"]) == ["equal assembly", "issue"]
    kinds = len(stereo.DEPTHS)
    assert calls == {("strata", True): kinds} | {
        (p, fill): kinds for p in stereo.PEERS for fill in (True, False)
    }
    rows = {}
    for name, part in result["protocols"].items():
        names = {(r["method"], r["depth"]) for r in part["rows"]}
        assert names == {(m, d) for m in stereo.METHODS for d in stereo.DEPTHS} | {
            (r, "true") for r in stereo.REFERENCES
        }
        assert part["target"]["met"] is None  # no 4-layer rows in a smoke run
        rows[name] = {(r["method"], r["depth"]): r for r in part["rows"]}
    equal, issue = rows["equal assembly"], rows["issue"]
    for depth in stereo.DEPTHS:
        same = equal[("strata", depth)], issue[("strata", depth)]
        assert same[0]["revealed_db"] == same[1]["revealed_db"]  # one stack, one view
        assert same[0]["shifts_px"] == same[1]["shifts_px"]
        # without a middle fill the peers show the background's fill where a middle layer
        # would continue: worse on the revealed pixels
        assert issue[("k-means", depth)]["revealed_db"] < equal[("k-means", depth)]["revealed_db"]
    assert issue[("one flat plane", "true")] != equal[("one flat plane", "true")]
    assert [met for *_, met in stereo.targets(result)] == [None] * 4


# --- the full run --------------------------------------------------------------------------------


@pytest.mark.slow
def test_full_run_every_layer_count_lies_between_the_floor_and_the_ceiling(tmp_path: Any) -> None:
    result = stereo.run(images=tmp_path)
    for protocol, part in result["protocols"].items():
        found = {(r["method"], r["depth"], r["layers"]): r["psnr_db"] for r in part["rows"]}
        flat = found[("one flat plane", "true", None)]
        warp = found[("per-pixel warp", "true", None)]
        for method in stereo.METHODS:
            for depth in stereo.DEPTHS:
                for count in stereo.LAYER_COUNTS:
                    score = found[(method, depth, count)]
                    assert flat - 0.5 < score < warp, (protocol, method, depth, count)
        if protocol == "equal assembly":  # more (filled) layers approach the per-pixel warp;
            # under issue a peer's unfilled middle layers reveal more background fill as
            # they multiply (k-means 2 -> 5 layers: +0.6 / +0.25 dB)
            for depth in stereo.DEPTHS:
                assert found[("k-means", depth, 5)] > found[("k-means", depth, 2)] + 1.0
        assert part["target"]["met"] in (True, False)
        assert len(list((tmp_path / stereo.slug(protocol)).glob("strata-full-4-*.png"))) >= 4
