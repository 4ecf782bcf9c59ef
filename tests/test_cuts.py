"""Cuts, label maps, speckle removal and empty-layer compaction on hand-made label maps."""

from __future__ import annotations

import numpy as np

from pipeline.cuts import choose_cuts, drop_empty_layers, label_layers, remove_islands


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


def test_empty_layers_are_dropped_and_their_depth_range_merged() -> None:
    labels = np.ones((10, 10), dtype=np.uint8)
    labels[:, 5:] = 3  # layers 2 and 4 of 4 are empty
    cuts = np.array([0.2, 0.4, 0.6])
    compact, kept = drop_empty_layers(labels, cuts)
    assert set(np.unique(compact)) == {1, 2}
    np.testing.assert_array_equal(compact[:, 5:], 2)
    # layer 2 (empty) merges into layer 1 below it, layer 4 (empty) into layer 3
    np.testing.assert_allclose(kept, [0.4])


def test_an_empty_farthest_layer_merges_into_the_one_above() -> None:
    labels = np.full((10, 10), 2, dtype=np.uint8)
    labels[:, 5:] = 3
    compact, kept = drop_empty_layers(labels, np.array([0.3, 0.6]))
    assert set(np.unique(compact)) == {1, 2}
    np.testing.assert_allclose(kept, [0.6])


def test_at_least_two_layers_are_kept() -> None:
    labels = np.full((10, 10), 2, dtype=np.uint8)
    cuts = np.array([0.3, 0.6])
    compact, kept = drop_empty_layers(labels, cuts)
    assert compact is labels
    assert kept is cuts
