"""Reduced grids of whole blocks: each cell of a ``factor``-times smaller grid is the mean of
the ``factor`` × ``factor`` block of pixels it covers (:func:`block_mean`, :func:`block_any`),
and a grid read back at every pixel (:func:`block_expand`).

OpenCV's area resize has a fast path for an integer factor that divides the size, and a
general one, ~10× slower, for anything else. A canvas rarely divides evenly, so the whole
blocks take the fast path and only the last, partial row and column of blocks (the mean of
the pixels they hold) the general one.
"""

from __future__ import annotations

import cv2
import numpy as np


def grid_shape(shape: tuple[int, ...], factor: int) -> tuple[int, int]:
    """(rows, columns) of the grid of ``factor``-pixel blocks over an array of ``shape``."""
    return -(-shape[0] // factor), -(-shape[1] // factor)


def block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """The mean of each ``factor`` × ``factor`` block of ``values`` ((H, W) or (H, W, C)),
    as an array of :func:`grid_shape` rows and columns, of the same dtype (integers
    rounded, as OpenCV does). A block cut short by the edge is the mean of its pixels."""
    if factor < 1:
        raise ValueError(f"factor = {factor!r} is invalid: allowed integers ≥ 1.")
    if factor == 1:
        return values
    rows, columns = grid_shape(values.shape, factor)
    grid = np.empty((rows, columns, *values.shape[2:]), dtype=values.dtype)
    for grid_y, pixel_y in _spans(values.shape[0], factor):
        for grid_x, pixel_x in _spans(values.shape[1], factor):
            cells = grid[grid_y, grid_x]
            size = (cells.shape[1], cells.shape[0])
            reduced = cv2.resize(values[pixel_y, pixel_x], size, interpolation=cv2.INTER_AREA)
            cells[...] = reduced.reshape(cells.shape)
    return grid


def block_any(mask: np.ndarray, factor: int) -> np.ndarray:
    """Whether each ``factor`` × ``factor`` block of the boolean ``mask`` holds a True pixel,
    on the grid of :func:`grid_shape`."""
    if factor * factor <= 2 * 255:  # one pixel of 255 survives the rounded 8-bit mean
        full = mask.astype(np.uint8) * np.uint8(255)
    else:
        full = mask.astype(np.float32)
    found: np.ndarray = block_mean(full, factor) > 0
    return found


def cell_index(flat: np.ndarray, *, shape: tuple[int, ...], factor: int) -> np.ndarray:
    """The flat index, on the grid of ``factor``-pixel blocks, of the cell holding each
    pixel (given by its flat index in an array of ``shape``)."""
    rows, columns = np.divmod(flat, shape[1])
    cells: np.ndarray = (rows // factor) * grid_shape(shape, factor)[1] + columns // factor
    return cells


def block_expand(grid: np.ndarray, factor: int, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse direction: a ``grid`` of ``factor``-pixel blocks ((rows, columns) or
    (rows, columns, channels)) read back at every pixel of an array of ``shape`` (each
    cell's value on each pixel of its block)."""
    rows, columns = grid.shape[:2]
    size = (columns * factor, rows * factor)
    pixels: np.ndarray = cv2.resize(grid, size, interpolation=cv2.INTER_NEAREST)
    return pixels[: shape[0], : shape[1]]


def _spans(length: int, factor: int) -> list[tuple[slice, slice]]:
    """Along one axis: (grid cells, pixels) of the whole blocks, then of the partial one."""
    whole = length // factor
    spans = [(slice(0, whole), slice(0, whole * factor))] if whole else []
    if length % factor:
        spans.append((slice(whole, whole + 1), slice(whole * factor, length)))
    return spans
