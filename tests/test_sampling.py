"""Sparse reads and writes: the same pixels as numpy's indexing, whole pixels at a time."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.sampling import Points, put_pixels, take_pixels


def _image() -> np.ndarray:
    return np.random.default_rng(0).random((9, 11, 3), dtype=np.float32)


def test_take_pixels_reads_what_indexing_reads() -> None:
    image = _image()
    flat = np.array([0, 17, 98, 17, 5])

    taken = take_pixels(image, flat)

    assert taken.shape == (5, 3)
    np.testing.assert_array_equal(taken, image.reshape(-1, 3)[flat])


def test_put_pixels_writes_only_the_given_pixels() -> None:
    image = _image()
    expected = image.copy()
    flat = np.array([3, 40, 98])
    values = np.arange(9, dtype=np.float64).reshape(3, 3)  # cast like an assignment

    put_pixels(image, flat, values)

    expected.reshape(-1, 3)[flat] = values
    np.testing.assert_array_equal(image, expected)


def test_put_pixels_writes_through_a_flat_view() -> None:
    image = _image()
    rows = image.reshape(-1, 3)

    put_pixels(rows, np.array([2]), np.ones((1, 3), np.float32))

    np.testing.assert_array_equal(image[0, 2], [1.0, 1.0, 1.0])


def test_strided_windows_are_refused() -> None:
    window = _image()[2:5, 3:7]
    with pytest.raises(ValueError, match="C-contiguous"):
        take_pixels(window, np.array([0]))
    with pytest.raises(ValueError, match="C-contiguous"):
        put_pixels(window, np.array([0]), np.zeros((1, 3), np.float32))


def test_points_sample_bilinear_between_pixel_centres() -> None:
    ramp = np.tile(np.arange(8, dtype=np.float32), (4, 1))
    points = Points(np.array([1.5, 6.0]), np.array([2.0, 0.0]))

    np.testing.assert_allclose(points.sample(ramp)[:, 0], [1.5, 6.0])
    np.testing.assert_allclose(points.sample(ramp, scale=0.5)[:, 0], [0.75, 3.0])
