"""Thin parts the depth map lost, given back to the body they hang from by colour."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.strays import settle_strays

SHAPE = (120, 160)
WALL = np.array([0.55, 0.4, 0.3], np.float32)
BODY = np.array([0.3, 0.75, 0.7], np.float32)
THIN = 8  # a depth map at half the canvas's resolution loses structures up to 8 px wide


def _wall(seed: int) -> np.ndarray:
    """A textured wall: smooth colour blotches plus sensor noise."""
    rng = np.random.default_rng(seed)
    blotches = cv2.resize(rng.normal(0, 0.06, (12, 16, 3)).astype(np.float32), SHAPE[::-1])
    noise = rng.normal(0, 0.01, (*SHAPE, 3)).astype(np.float32)
    return np.clip(WALL + blotches + noise, 0, 1)


def _disc() -> np.ndarray:
    body = np.zeros(SHAPE, np.uint8)
    cv2.circle(body, (60, 70), 22, 1, -1)
    return body > 0


def _stick(width: int = 3) -> np.ndarray:
    """A stick from the disc's rim up and to the right, ``width`` px wide, 35 px long."""
    stick = np.zeros(SHAPE, np.uint8)
    cv2.line(stick, (75, 54), (100, 25), 1, width)
    return (stick > 0) & ~_disc()


def _scene(part: np.ndarray, colour: np.ndarray, *, seed: int = 0) -> np.ndarray:
    image = _wall(seed)
    rng = np.random.default_rng(seed + 1)
    for mask in (_disc(), part):
        image[mask] = colour + rng.normal(0, 0.01, (int(mask.sum()), 3))
    return np.clip(image, 0, 1).astype(np.float32)


def _lost_labels() -> np.ndarray:
    """The labels a coarse depth map leaves: the disc in front, the stick on the wall."""
    labels = np.ones(SHAPE, np.uint8)
    labels[_disc()] = 2
    return labels


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_a_stick_the_depth_lost_goes_back_to_the_body_it_hangs_from() -> None:
    stick = _stick()
    image = _scene(stick, BODY)
    labels = _lost_labels()
    claimed = settle_strays(image, labels, num_layers=2, thin=THIN)
    truth = _disc() | stick
    assert _iou(labels == 2, truth) < 0.9  # the wrong answer the step starts from
    assert _iou(claimed == 2, truth) > 0.97
    assert (claimed[~truth] == 1).all()  # not a pixel of the wall moves


def test_a_wall_with_nothing_hanging_on_it_keeps_every_label() -> None:
    for seed in range(3):
        image = _scene(np.zeros(SHAPE, bool), BODY, seed=seed)
        labels = _lost_labels()
        assert (settle_strays(image, labels, num_layers=2, thin=THIN) == labels).all()


def test_a_thin_line_unlike_the_body_stays_on_the_wall() -> None:
    """A dark crack running from the disc: not the wall's colour, but not the body's
    either, so nothing says it hangs from the body."""
    crack = _stick(width=2)
    image = _scene(crack, BODY)
    image[crack] = 0.08
    labels = _lost_labels()
    assert (settle_strays(image, labels, num_layers=2, thin=THIN) == labels).all()


def test_a_broad_patch_of_the_body_colour_is_no_thin_part() -> None:
    """A patch as wide as several thin parts (a shadow, a stain) beside the body stays
    with the surface it lies on, whatever its colour."""
    patch = np.zeros(SHAPE, np.uint8)
    cv2.rectangle(patch, (82, 55), (94, 85), 1, -1)  # 12 px wide: an 8 px square fits
    patch = (patch > 0) & ~_disc()
    image = _scene(patch, BODY)
    labels = _lost_labels()
    assert (settle_strays(image, labels, num_layers=2, thin=THIN) == labels).all()


def test_thin_must_be_a_positive_width() -> None:
    image = _scene(_stick(), BODY)
    with pytest.raises(ValueError, match="thin = 0"):
        settle_strays(image, _lost_labels(), num_layers=2, thin=0)


def _bulged_labels() -> np.ndarray:
    """The labels of a depth map whose edge wandered outwards: the disc's layer takes a
    crescent of wall beside it."""
    labels = np.ones(SHAPE, np.uint8)
    bulge = np.zeros(SHAPE, np.uint8)
    cv2.circle(bulge, (66, 70), 24, 1, -1)
    labels[(bulge > 0) | _disc()] = 2
    return labels


def test_a_patch_of_wall_the_depth_gave_the_body_goes_back_to_the_wall() -> None:
    image = _scene(np.zeros(SHAPE, bool), BODY)
    labels = _bulged_labels()
    settled = settle_strays(image, labels, num_layers=2, thin=THIN)
    assert _iou(labels == 2, _disc()) < 0.85  # the wrong answer the step starts from
    assert _iou(settled == 2, _disc()) > 0.97
    assert (settled[_disc()] == 2).all()  # not a pixel of the body leaves it


def test_a_mark_on_the_body_unlike_the_wall_stays_with_the_body() -> None:
    """A dark band across the disc's rim: not the body's usual colour, and not the wall's
    either, so nothing says it is wall."""
    image = _scene(np.zeros(SHAPE, bool), BODY)
    band = np.zeros(SHAPE, np.uint8)
    cv2.rectangle(band, (76, 60), (84, 80), 1, -1)
    image[(band > 0) & _disc()] = 0.08
    labels = _lost_labels()
    assert (settle_strays(image, labels, num_layers=2, thin=THIN) == labels).all()
