"""assign_ramps: ramp pixels take the layer whose colour explains them, and a thin
structure the depth map blurred keeps its layer where the surface behind cannot."""

from __future__ import annotations

import numpy as np

from pipeline.edges import assign_ramps, ramp_reach

SIZE = 96
WALL = np.array([0.5, 0.4, 0.3], np.float32)
RIM = np.array([0.6, 0.9, 0.85], np.float32)


def wheel_on_a_wall() -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """A textured wall (layer 1) and a wheel (layer 2): a hub and, 30 px out, a 2 px rim
    inside a band of ramp pixels, with a 3 px halo outside it that the depth map's blur
    put on the wheel too but that is the wall."""
    rng = np.random.default_rng(7)
    image = WALL + rng.normal(0.0, 0.05, (SIZE, SIZE, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    radius = np.hypot(yy - SIZE / 2, xx - SIZE / 2)
    parts = {
        "hub": radius <= 4,
        "rim": np.abs(radius - 30) <= 1,
        "halo": (radius > 31) & (radius <= 34),
    }
    image[parts["hub"] | parts["rim"]] = RIM
    labels = np.ones((SIZE, SIZE), np.uint8)
    labels[parts["hub"] | parts["rim"] | parts["halo"]] = 2
    ramps = (radius >= 24) & (radius <= 36)
    return np.clip(image, 0.0, 1.0), labels, ramps, parts


def test_a_blurred_rim_unlike_the_wall_keeps_its_layer_with_only_the_wall_in_reach() -> None:
    image, labels, ramps, parts = wheel_on_a_wall()
    reach = ramp_reach(ramps)
    assert reach < 26  # the hub, 30 px in, has no say at the rim: only the wall does
    result = assign_ramps(image, labels, ramps, num_layers=2, reach=reach)
    assert (result[parts["rim"]] == 2).mean() > 0.99


def test_a_halo_the_wall_s_colour_explains_goes_to_the_wall() -> None:
    image, labels, ramps, parts = wheel_on_a_wall()
    result = assign_ramps(image, labels, ramps, num_layers=2, reach=ramp_reach(ramps))
    assert (result[parts["halo"]] == 1).mean() > 0.99
    assert (result[~ramps] == labels[~ramps]).all()  # flat ground keeps its label
