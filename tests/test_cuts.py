"""Cuts, label maps, speckle removal and empty-layer compaction on hand-made label maps."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from pipeline.cuts import (
    _best_cuts,
    _bin_moments,
    choose_cuts,
    drop_empty_layers,
    label_layers,
    layer_parallax,
    remove_islands,
)
from pipeline.edges import ramp_mask


def test_cuts_fall_in_the_gaps_between_depth_plateaus() -> None:
    nearness = np.zeros((120, 160), dtype=np.float32)
    nearness[:, 40:80] = 0.5
    nearness[:, 80:] = 0.9
    cuts = choose_cuts(nearness, num_layers=3)
    assert 0.0 < cuts[0] < 0.5 < cuts[1] < 0.9
    labels = label_layers(nearness, cuts)
    assert set(np.unique(labels[:, :40])) == {1}
    assert set(np.unique(labels[:, 40:80])) == {2}
    assert set(np.unique(labels[:, 80:])) == {3}


def test_a_small_object_gets_a_layer_of_its_own() -> None:
    # 1.5 % of the canvas at its own depth: a 2.5 % area floor would have merged it.
    rng = np.random.default_rng(0)
    nearness = 0.1 + 0.01 * rng.standard_normal((200, 200)).astype(np.float32)
    nearness[:, 120:] = 0.45
    nearness[20:44, 20:45] = 0.9
    labels = label_layers(nearness, choose_cuts(nearness, num_layers=3))
    assert (labels[22:42, 22:43] == 3).all()
    assert (labels[:, 130:] == 2).all()
    assert (labels[60:, :110] == 1).all()


def test_an_extra_layer_splits_the_deep_surface_not_the_flat_one() -> None:
    # A noisy flat wall and a floor sloping over 0.4-0.9, three layers asked: the floor,
    # whose spread of depth a single shift cannot follow, is split; the wall is not.
    rng = np.random.default_rng(1)
    nearness = 0.2 + 0.02 * rng.standard_normal((120, 160)).astype(np.float32)
    nearness[:, 80:] = np.linspace(0.4, 0.9, 120, dtype=np.float32)[:, None]
    cuts = choose_cuts(nearness, num_layers=3)
    assert 0.2 + 0.02 < cuts[0] <= 0.4  # above the wall's bulk (its noise is speckle)
    assert 0.45 < cuts[1] < 0.85


def test_a_map_with_fewer_levels_than_layers_leaves_the_rest_empty() -> None:
    nearness = np.full((60, 80), 0.2, dtype=np.float32)
    nearness[:, 40:] = 0.8
    labels = label_layers(nearness, choose_cuts(nearness, num_layers=4))
    assert np.unique(labels[:, :40]).size == 1
    assert np.unique(labels[:, 40:]).size == 1
    assert labels[0, 0] != labels[0, 79]


def test_cuts_are_the_exact_minimum_of_parallax_error_plus_tears() -> None:
    rng = np.random.default_rng(2)
    nearness = rng.beta(2.0, 5.0, (64, 64)).astype(np.float32)
    moments = _bin_moments(nearness, weight=np.ones_like(nearness), bins=24)
    cut_cost = rng.uniform(0.0, 2e-3, 23)

    def total(edges: tuple[int, ...]) -> float:
        cost, bounds = 0.0, (0, *edges, 24)
        for start, end in itertools.pairwise(bounds):
            weight, first, second = moments[:, start:end].sum(axis=1)
            cost += second - first * first / weight if weight > 0 else 0.0
        return cost + sum(cut_cost[e - 1] for e in edges)

    found = _best_cuts(moments, moments[0], cut_cost, num_layers=4, min_share=0.0)
    every = [(a, b, c) for a in range(1, 24) for b in range(a + 1, 24) for c in range(b + 1, 24)]
    assert found is not None
    assert total(tuple(found)) <= min(total(edges) for edges in every) + 1e-12


def test_a_sharp_step_and_a_thin_pole_are_not_ramps_but_a_blurred_step_is() -> None:
    nearness = np.full((80, 120), 0.2, dtype=np.float32)
    nearness[:, 60:] = 0.8
    nearness[:, 30:32] = 0.8  # a two-pixel pole, exact depth
    assert not ramp_mask(nearness).any()
    blurred = cv2.GaussianBlur(nearness, (0, 0), 3.0)
    ramps = ramp_mask(blurred)
    assert ramps[:, 56:64].mean() > 0.9
    assert not ramps[:, 10:20].any()
    assert not ramps[:, 90:].any()


def test_speckles_merge_into_the_layer_around_them() -> None:
    labels = np.ones((100, 100), dtype=np.uint8)
    labels[:, 50:] = 2
    labels[20:23, 20:23] = 3  # a 9-pixel speckle inside layer 1
    labels[60:62, 70:72] = 1  # a 4-pixel speckle inside layer 2
    labels[70:90, 5:25] = 3  # a 400-pixel island: an object, kept
    cleaned = remove_islands(labels, min_pixels=20)
    assert cleaned[21, 21] == 1
    assert cleaned[61, 71] == 2
    assert (cleaned[70:90, 5:25] == 3).all()
    untouched = np.ones_like(labels, dtype=bool)
    untouched[20:23, 20:23] = False
    untouched[60:62, 70:72] = False
    np.testing.assert_array_equal(cleaned[untouched], labels[untouched])


def test_a_speckle_takes_the_label_of_its_nearest_neighbour() -> None:
    labels = np.ones((40, 40), dtype=np.uint8)
    labels[:, 20:] = 3
    labels[10:12, 17:19] = 2  # inside layer 1, two pixels from layer 3
    labels[30:32, 23:25] = 2  # inside layer 3, well clear of the boundary
    cleaned = remove_islands(labels, min_pixels=10)
    assert (cleaned[30:32, 23:25] == 3).all()
    assert (cleaned[10:12, 17:19] == 1).all()


def test_empty_layers_are_dropped_and_the_rest_renumbered_in_order() -> None:
    labels = np.ones((10, 10), dtype=np.uint8)
    labels[:, 5:] = 3  # layers 2 and 4 of 4 are empty
    compact = drop_empty_layers(labels, num_layers=4)
    np.testing.assert_array_equal(compact[:, :5], 1)
    np.testing.assert_array_equal(compact[:, 5:], 2)


def test_an_empty_farthest_layer_is_dropped_too() -> None:
    labels = np.full((10, 10), 2, dtype=np.uint8)
    labels[:, 5:] = 3
    compact = drop_empty_layers(labels, num_layers=3)
    assert set(np.unique(compact)) == {1, 2}
    np.testing.assert_array_equal(compact[:, 5:], 2)


def test_at_least_two_layers_are_kept() -> None:
    labels = np.full((10, 10), 2, dtype=np.uint8)
    assert drop_empty_layers(labels, num_layers=3) is labels


def test_a_layers_parallax_is_its_mean_disparity_normalised() -> None:
    nearness = np.full((10, 30), 0.1, dtype=np.float32)
    nearness[:, 10:20] = 0.3  # close behind the background: a small shift
    nearness[:, 20:] = 0.9
    labels = label_layers(nearness, np.array([0.2, 0.5]))
    assert layer_parallax(nearness, labels, num_layers=3) == pytest.approx([0.0, 0.25, 1.0])


def test_one_layer_does_not_move() -> None:
    nearness = np.full((10, 30), 0.4, dtype=np.float32)  # one plane: one layer
    assert layer_parallax(nearness, np.ones((10, 30), np.uint8), num_layers=1) == [0.0]
