"""Surfaces (pipeline.surfaces) and the layers made of them (pipeline.cuts.group_surfaces):
a floor is one surface however much depth it spans, an object standing on it another."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.cuts import choose_cuts, group_surfaces, label_layers, regroup_surfaces
from pipeline.edges import ramp_mask
from pipeline.surfaces import (
    Surfaces,
    find_surfaces,
    lift_thin,
    occlusion_order,
    split_widest,
)

HEIGHT, WIDTH = 120, 160


def floor_with_objects() -> tuple[np.ndarray, list[np.ndarray]]:
    """A floor receding from 0.9 (bottom row) to 0.1 (top row) and two boxes standing on
    it, each at the floor's nearness along its foot (no depth step there)."""
    rows = np.arange(HEIGHT, dtype=np.float32)[:, None]
    nearness = np.broadcast_to(0.1 + 0.8 * rows / (HEIGHT - 1), (HEIGHT, WIDTH)).copy()
    boxes = []
    for left, foot in ((30, 60), (100, 95)):
        box = np.zeros((HEIGHT, WIDTH), bool)
        box[foot - 35 : foot, left : left + 25] = True
        nearness[box] = nearness[foot - 1, 0]
        boxes.append(box)
    return nearness.astype(np.float32), boxes


def surfaces_of(nearness: np.ndarray, num_layers: int) -> Surfaces:
    seeds = label_layers(nearness, choose_cuts(nearness, num_layers=num_layers))
    return find_surfaces(nearness, seeds, ignore=ramp_mask(nearness))


def main_region(surfaces: Surfaces, mask: np.ndarray) -> tuple[int, float]:
    """The region holding most of ``mask``, and the share of ``mask`` it holds."""
    values, counts = np.unique(surfaces.regions[mask], return_counts=True)
    return int(values[np.argmax(counts)]), float(counts.max() / mask.sum())


def test_a_floor_is_one_surface_and_each_box_on_it_another() -> None:
    nearness, boxes = floor_with_objects()
    surfaces = surfaces_of(nearness, 3)
    floor = ~(boxes[0] | boxes[1])
    floor_region, floor_share = main_region(surfaces, floor)
    box_regions = [main_region(surfaces, box) for box in boxes]
    assert floor_share > 0.98  # the depth thresholds' strips are joined again
    for region, share in box_regions:
        assert share > 0.95
        assert region != floor_region
    assert box_regions[0][0] != box_regions[1][0]


@pytest.mark.parametrize("thickness", [1, 2, 3])
def test_a_thin_wire_goes_with_the_box_it_hangs_from(thickness: int) -> None:
    nearness, boxes = floor_with_objects()
    wire = np.zeros((HEIGHT, WIDTH), np.uint8)
    # from the near box's side, out and up across the floor: diagonal, 36 px long
    cv2.line(wire, (124, 70), (150, 45), 1, thickness)
    wire = wire.astype(bool) & ~boxes[1]
    nearness[wire] = nearness[94, 0]  # the box's depth
    surfaces = surfaces_of(nearness, 3)
    box_region, _ = main_region(surfaces, boxes[1])
    assert np.mean(surfaces.regions[wire] == box_region) > 0.95
    floor_region, floor_share = main_region(surfaces, ~(boxes[0] | boxes[1] | wire))
    assert floor_share > 0.98
    assert floor_region != box_region


def test_the_floor_is_behind_the_boxes_though_its_mean_is_nearer_than_the_far_box() -> None:
    nearness, boxes = floor_with_objects()
    surfaces = surfaces_of(nearness, 3)
    floor_region, _ = main_region(surfaces, ~(boxes[0] | boxes[1]))
    far_box, _ = main_region(surfaces, boxes[0])
    means = surfaces.means()
    assert means[far_box] < means[floor_region]
    order = occlusion_order(surfaces)
    assert order.index(floor_region) < order.index(far_box)


def test_a_wall_seen_between_spokes_is_the_wall() -> None:
    columns = np.arange(WIDTH, dtype=np.float32)[None, :]
    nearness = np.broadcast_to(0.1 + 0.4 * columns / (WIDTH - 1), (HEIGHT, WIDTH)).copy()
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    radius = np.hypot(yy - 60, xx - 80)
    wheel = (np.abs(radius - 40) < 2) | ((radius < 40) & (np.abs(yy - 60) < 1.5))
    wheel |= (radius < 40) & (np.abs(xx - 80) < 1.5)
    nearness[wheel] = 0.9
    surfaces = surfaces_of(nearness.astype(np.float32), 2)
    inside = (radius < 36) & ~wheel & (np.abs(yy - 60) > 4) & (np.abs(xx - 80) > 4)
    outside = (radius > 44) & ~wheel
    wall, _ = main_region(surfaces, outside)
    between, share = main_region(surfaces, inside)
    assert share > 0.95
    assert between == wall


def test_two_objects_a_small_step_apart_stay_two_surfaces() -> None:
    nearness = np.full((HEIGHT, WIDTH), 0.1, np.float32)
    a = np.zeros((HEIGHT, WIDTH), bool)
    a[30:90, 30:80] = True
    b = np.zeros_like(a)
    b[40:100, 80:130] = True
    nearness[a], nearness[b] = 0.45, 0.52
    surfaces = surfaces_of(nearness, 3)
    assert main_region(surfaces, a)[0] != main_region(surfaces, b)[0]


def test_more_layers_than_surfaces_split_the_widest_surface_not_a_flat_one() -> None:
    nearness, boxes = floor_with_objects()
    surfaces = surfaces_of(nearness, 3)
    split = split_widest(surfaces, nearness, count=surfaces.count + 1)
    assert split.count == surfaces.count + 1
    for box in boxes:  # the flat boxes keep one region each
        assert main_region(split, box)[1] > 0.95
    floor = ~(boxes[0] | boxes[1])
    assert main_region(split, floor)[1] < 0.7  # the floor is the one cut in two

    flat = Surfaces(
        regions=np.ones((10, 10), np.int32),
        models=np.zeros((2, 6)),
        moments=np.array([[0, 0, 0], [100, 50, 25.0]]),
    )
    assert split_widest(flat, np.full((10, 10), 0.5, np.float32), count=3) is flat


def test_grouping_keeps_the_order_and_merges_where_it_costs_least() -> None:
    def item(pixels: float, mean: float) -> list[float]:
        return [pixels, pixels * mean, pixels * mean * mean]

    # in occlusion order: a floor (mean 0.5, behind everything), objects at 0.3, 0.62, 0.66
    moments = np.array([item(9000, 0.5), item(300, 0.3), item(400, 0.62), item(500, 0.66)]).T
    assert group_surfaces(moments, num_layers=4) == [1, 2, 3, 4]
    assert group_surfaces(moments, num_layers=3) == [1, 2, 3, 3]  # the two close objects
    assert group_surfaces(moments, num_layers=9) == [1, 2, 3, 4]


def test_a_surface_that_only_meets_another_moves_to_the_layer_it_matches() -> None:
    def item(pixels: float, mean: float) -> list[float]:
        return [pixels, pixels * mean, pixels * mean * mean]

    # 1 far wall (0.1), 2 a nearer wall on the right (0.3) that the floor meets, 3 the
    # floor (0.2 … 0.9, mean 0.6), 4 a shelf (0.32) standing on the floor, in front of it
    moments = np.array(
        [[0, 0, 0], item(4000, 0.1), item(2000, 0.3), item(6000, 0.6), item(1000, 0.32)]
    )
    moments[3, 2] += 6000 * 0.04  # the floor's spread
    order = [1, 2, 3, 4]
    layer_of = np.zeros(5, np.uint8)
    layer_of[order] = group_surfaces(moments[order].T, num_layers=3)
    assert list(layer_of[1:]) == [1, 1, 2, 3]  # a sequence: the right wall with the far one
    occludes = [(4, 3), (3, 1), (4, 1), (2, 1)]  # (front, back); the floor only meets wall 2
    regrouped = regroup_surfaces(layer_of, moments, occludes=occludes, num_layers=3)
    assert list(regrouped[1:]) == [1, 3, 2, 3]  # the right wall joins the shelf
    assert all(regrouped[front] >= regrouped[back] for front, back in occludes)

    # where the right wall occludes the floor, the order holds and it stays behind
    held = regroup_surfaces(layer_of, moments, occludes=[*occludes, (3, 2)], num_layers=3)
    assert list(held[1:]) == [1, 1, 2, 3]


def test_regrouping_keeps_each_layer_s_largest_surface() -> None:
    def item(pixels: float, mean: float) -> list[float]:
        return [pixels, pixels * mean, pixels * mean * mean]

    # 1 a wall (0.27); 2 a bench just in front of it (0.28) and 3 a scrap (0.5) in layer 2;
    # 4 an object (0.8). The bench would cost less with the wall, leaving layer 2 a scrap
    moments = np.array(
        [[0, 0, 0], item(5000, 0.27), item(500, 0.28), item(10, 0.5), item(1000, 0.8)]
    )
    layer_of = np.array([0, 1, 2, 2, 3], np.uint8)
    regrouped = regroup_surfaces(layer_of, moments, occludes=[], num_layers=3)
    assert list(regrouped[1:]) == [1, 2, 2, 3]


@pytest.mark.parametrize("shape", [(10, 12), (12, 10)])
def test_inputs_of_different_shapes_are_refused(shape: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="one shape"):
        find_surfaces(
            np.zeros((10, 10), np.float32),
            np.ones(shape, np.uint8),
            ignore=np.zeros((10, 10), bool),
        )


def attenuated_wheel() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A wall at 0.3 and, as a coarse depth map blurs them, a wheel whose hub reads 0.9
    while its 3 px rim reads only 0.6 (the blur mixed it with the wall), and a broad post
    that really stands near it, at 0.5."""
    nearness = np.full((HEIGHT, WIDTH), 0.3, np.float32)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    radius = np.hypot(yy - 60, xx - 110)
    parts = {
        "rim": np.abs(radius - 30) <= 1.5,
        "hub": radius <= 5,
        "post": (np.abs(xx - 30) <= 10) & (yy > 20) & (yy < 100),
    }
    nearness[parts["rim"]] = 0.6
    nearness[parts["hub"]] = 0.9
    nearness[parts["post"]] = 0.5
    # the spokes' ridge, the hub's reading falling off towards the rim
    spoke = (np.abs(yy - 60) <= 1) & (radius < 30) & ~parts["hub"]
    nearness[spoke] = 0.9 - 0.3 * (radius[spoke] - 5) / 25
    return nearness, parts


def test_a_thin_rim_the_blur_left_at_a_post_s_depth_joins_its_hub() -> None:
    nearness, parts = attenuated_wheel()
    found = surfaces_of(nearness, 3)
    before_rim, _ = main_region(found, parts["rim"])
    hub_before, _ = main_region(found, parts["hub"])
    assert before_rim != hub_before  # depth alone keeps the rim apart
    lifted_surfaces, lifted = lift_thin(found, nearness, thin=4.0)
    rim, rim_share = main_region(lifted_surfaces, parts["rim"])
    hub, _ = main_region(lifted_surfaces, parts["hub"])
    post, _ = main_region(lifted_surfaces, parts["post"])
    assert rim == hub
    assert rim_share > 0.9
    assert post != hub
    assert np.median(lifted[parts["rim"]]) > 0.8  # grouped by the hub's depth now
    assert np.allclose(lifted[parts["post"]], nearness[parts["post"]])


def test_the_wall_seen_through_a_thin_gap_is_not_lifted() -> None:
    nearness = np.full((HEIGHT, WIDTH), 0.3, np.float32)
    nearness[30:90, 40:120] = 0.8
    gap = np.zeros((HEIGHT, WIDTH), bool)
    gap[30:90, 79:82] = True  # 3 px of wall between two halves of a box
    nearness[gap] = 0.3
    found = surfaces_of(nearness, 2)
    lifted_surfaces, lifted = lift_thin(found, nearness, thin=4.0)
    assert np.allclose(lifted, nearness)
    wall, _ = main_region(lifted_surfaces, nearness < 0.5)
    box, _ = main_region(lifted_surfaces, nearness > 0.5)
    assert wall != box


def test_a_thin_strip_the_floor_s_plane_predicts_joins_the_floor_as_it_reads() -> None:
    """The blur round an object raises a strip of floor beside it a little: depth alone
    makes it a surface of its own, to be grouped with whatever else reads so near."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    nearness = (0.2 + 0.6 * yy / HEIGHT).astype(np.float32)
    box = (np.abs(xx - 60) <= 15) & (yy > 30) & (yy < 90)
    nearness[box] = 0.95
    strip = (xx > 75) & (xx <= 78) & (yy > 40) & (yy < 90)
    nearness[strip] += 0.03
    found = surfaces_of(nearness, 3)
    floor, _ = main_region(found, ~box & ~strip)
    assert main_region(found, strip)[0] != floor
    joined, lifted = lift_thin(found, nearness, thin=4.0)
    assert main_region(joined, strip) == (main_region(joined, ~box & ~strip)[0], 1.0)
    assert main_region(joined, box)[0] != main_region(joined, strip)[0]
    assert np.array_equal(lifted, nearness)
