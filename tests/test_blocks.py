"""Reduced grids of whole blocks: each cell is the mean of exactly the pixels it covers."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.blocks import block_any, block_expand, block_mean, grid_shape


def _brute_force(values: np.ndarray, factor: int) -> np.ndarray:
    rows, columns = grid_shape(values.shape, factor)
    return np.array(
        [
            [
                values[y * factor : (y + 1) * factor, x * factor : (x + 1) * factor]
                .astype(np.float64)
                .mean(axis=(0, 1))
                for x in range(columns)
            ]
            for y in range(rows)
        ]
    )


@pytest.mark.parametrize("shape", [(13, 17), (12, 16), (5, 3), (1, 9), (13, 17, 3)])
@pytest.mark.parametrize("factor", [1, 2, 3, 4, 6])
def test_each_cell_is_the_mean_of_its_block_partial_blocks_included(
    shape: tuple[int, ...], factor: int
) -> None:
    values = np.random.default_rng(factor).random(shape, dtype=np.float32)

    grid = block_mean(values, factor)

    assert grid.shape == grid_shape(shape, factor) + shape[2:]
    assert grid.dtype == np.float32
    np.testing.assert_allclose(grid, _brute_force(values, factor), atol=1e-6)


def test_integer_cells_are_rounded_means() -> None:
    values = np.random.default_rng(1).integers(0, 256, (11, 14), dtype=np.uint8)

    grid = block_mean(values, 4)

    assert grid.dtype == np.uint8
    assert np.abs(grid.astype(np.float64) - _brute_force(values, 4)).max() <= 0.5 + 1e-9


def test_a_factor_below_one_is_refused_with_the_allowed_range() -> None:
    with pytest.raises(ValueError, match=r"factor = 0 .* allowed integers ≥ 1"):
        block_mean(np.zeros((4, 4), np.float32), 0)


def test_block_any_finds_a_single_pixel_in_a_partial_block() -> None:
    mask = np.zeros((10, 13), dtype=bool)
    mask[9, 12] = True  # the last pixel, in the partial corner block
    mask[1, 1] = True

    found = block_any(mask, 4)

    assert found.shape == (3, 4)
    assert found.sum() == 2
    assert found[0, 0]
    assert found[2, 3]


@pytest.mark.parametrize("factor", [16, 22, 23, 40])
def test_block_any_finds_a_single_pixel_in_a_large_block(factor: int) -> None:
    """A lone pixel is 1/factor² of its block's mean: large blocks must not round it away."""
    mask = np.zeros((2 * factor + 3, factor + 1), dtype=bool)
    mask[factor + 1, 2] = True

    found = block_any(mask, factor)

    assert found.shape == (3, 2)
    assert found.sum() == 1
    assert found[1, 0]


@pytest.mark.parametrize("factor", [2, 3, 5, 6, 7, 12])
def test_block_expand_gives_each_pixel_its_own_cell(factor: int) -> None:
    """OpenCV's nearest resize by an integer factor repeats cells exactly (no off-by-one
    from the inexact 1/factor) and the canvas may cut the last blocks short."""
    grid = np.random.default_rng(factor).integers(0, 256, (9, 11), dtype=np.uint8)
    shape = (9 * factor - factor // 2, 11 * factor - 1)

    pixels = block_expand(grid, factor, shape)

    expected = np.repeat(np.repeat(grid, factor, axis=0), factor, axis=1)
    np.testing.assert_array_equal(pixels, expected[: shape[0], : shape[1]])
