"""Thin parts the depth map lost: a stick, a rim, a wire that colour shows hanging from a
nearer layer.

A model's depth map is coarse and its edges wander: a structure a few of its pixels wide
reads at the depth of what lies behind it, or is missed outright where the map's edge
moved off it. The labels then put it in the farther layer, where it stays painted into
that layer's picture and shows as a ghost of the object when the layers move.
:func:`claim_thin_parts` gives such a structure to the nearer layer it touches where colour
says it belongs there:

1. each layer's local colour (mean and spread) is estimated from its own pixels twice, the
   second time without the pixels the first estimate does not explain (trimmed
   statistics), so a stick across a wall is not taken for a rougher wall;
2. the pixels their own layer's colour does not explain (:data:`~pipeline.edges.UNEXPLAINED`)
   form pieces, 8-connected;
3. a piece goes to a nearer layer it touches when it is thin (no ``thin``-pixel square fits
   in most of it: a patch of shadow is no stick) and that layer's colour near it explains
   its pixels.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

from pipeline.blocks import block_any, block_expand, block_mean
from pipeline.concurrency import map_parallel
from pipeline.edges import UNEXPLAINED

TRIM = 1.0
"""The second estimate leaves out pixels farther than this from the first: the surface's
typical pixels, not the thin things across it."""
TOUCH = 2
"""A piece within this many pixels of a nearer layer hangs from it."""
BROAD_SHARE = 0.2
"""A piece more than this share of which is broad (holds a ``thin``-pixel square) is a
patch of the surface (a shadow, a stain), not a thin part."""
MIN_PIECE = 3
"""Pieces of fewer pixels are noise or anti-aliasing, the soft edges' business."""
REACH_PER_THIN = 2
"""The local colour statistics reach this many times the widest thin part, so a thin part
is a minority of the pixels around it."""
CELLS_PER_RADIUS = 4
"""The colour statistics are box sums on a grid of about this many cells per radius: local
means are smooth, and a reduced grid costs a fraction of full-resolution sums."""


def claim_thin_parts(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    num_layers: int,
    thin: int,
    spread: float = 0.01,
) -> np.ndarray:
    """``labels`` with each thin piece that a nearer layer's colour explains given to that
    layer (uint8, 1 = farthest). ``thin`` is the widest structure, in pixels, that the depth
    map may have lost. Each layer's own colour is read within ``REACH_PER_THIN * thin``
    pixels, a nearer layer's twice as far, so the far end of a stick still sees its body."""
    if thin < 1:
        raise ValueError(f"thin = {thin!r} is invalid: allowed integers >= 1 (pixels)")
    radius = REACH_PER_THIN * thin
    colours = _Colours.of(image)
    own = _own_distance(colours, labels, num_layers=num_layers, radius=radius, spread=spread)
    unexplained = (own > UNEXPLAINED).view(np.uint8)
    count, pieces = cv2.connectedComponents(unexplained, connectivity=8)
    if count <= 1:
        return labels
    square = np.ones((thin + 1, thin + 1), np.uint8)
    broad = cv2.morphologyEx(unexplained, cv2.MORPH_OPEN, square)
    size = np.bincount(pieces.ravel(), minlength=count)
    broad_pixels = np.bincount(pieces.ravel(), weights=broad.ravel(), minlength=count)
    open_piece = (size >= MIN_PIECE) & (broad_pixels <= BROAD_SHARE * size)
    open_piece[0] = False
    result = labels.copy()
    reach = np.ones((2 * TOUCH + 1, 2 * TOUCH + 1), np.uint8)
    for k in range(num_layers, 1, -1):
        body = cv2.inRange(labels, k, k)
        touching = (cv2.dilate(body, reach) > 0) & (result < k) & open_piece[pieces]
        ids = np.unique(pieces[touching])
        if ids.size == 0:
            continue
        distance, say = colours.distance(body, radius=2 * radius, spread=spread)
        candidate = np.isin(pieces, ids) & (result < k)
        of_piece = pieces[candidate]
        heard = np.bincount(of_piece, weights=say[candidate], minlength=count)
        summed = np.bincount(of_piece, weights=distance[candidate], minlength=count)
        held = np.bincount(of_piece, minlength=count)
        claimed = np.zeros(count, bool)
        claimed[ids] = (heard[ids] >= 0.5 * held[ids]) & (summed[ids] < UNEXPLAINED * heard[ids])
        result[candidate & claimed[pieces]] = k
        open_piece &= ~claimed
    return result


def _own_distance(
    colours: _Colours, labels: np.ndarray, *, num_layers: int, radius: int, spread: float
) -> np.ndarray:
    """Per pixel, its colour's distance from its own layer's trimmed local colour, within
    ``3 * radius`` of a nearer layer: a thin part is followed that far from its body, and
    the nearer layer's colour reaches ``2 * radius``. Elsewhere, and on the nearest layer,
    0: nothing nearer could claim the pixel."""

    def layer(k: int) -> tuple[np.ndarray, np.ndarray] | None:
        nearer = cv2.inRange(labels, k + 1, 255)
        if not nearer.any():
            return None
        mask = cv2.inRange(labels, k, k)
        first, _ = colours.distance(mask, radius=radius, spread=spread)
        kept = np.where(first <= TRIM, mask, np.uint8(0))
        second, _ = colours.distance(kept, radius=radius, spread=spread)
        return (mask > 0) & _within(nearer, 3 * radius), second

    own = np.zeros(labels.shape, np.float32)
    for found in map_parallel(layer, range(1, num_layers)):
        if found is not None:
            where, distance = found
            np.copyto(own, distance, where=where)
    return own


def _within(mask: np.ndarray, reach: int) -> np.ndarray:
    """The pixels within about ``reach`` (to a cell of the grid it is judged on, a
    ``CELLS_PER_RADIUS``-th of it) of ``mask``'s pixels, as a boolean (H, W)."""
    factor = max(1, reach // (3 * CELLS_PER_RADIUS))
    cells = math.ceil(reach / factor)
    grid = block_any(mask > 0, factor).view(np.uint8)
    near = cv2.dilate(grid, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * cells + 1,) * 2))
    result: np.ndarray = block_expand(near, factor, mask.shape) > 0
    return result


_CHANNEL_SUM = np.ones((1, 3), np.float32)


class _Colours(NamedTuple):
    """The image and each pixel's squared colour, the sums local colour statistics are
    made of."""

    image: np.ndarray  # float32 (H, W, 3)
    power: np.ndarray  # float32 (H, W): |colour|²

    @classmethod
    def of(cls, image: np.ndarray) -> _Colours:
        return cls(image, np.einsum("ijc,ijc->ij", image, image))

    def distance(
        self, mask: np.ndarray, *, radius: int, spread: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per pixel: the squared distance of its colour from the mean colour of ``mask``'s
        pixels (uint8, 255 = in) within about ``radius``, over those pixels' colour
        variance plus ``spread`` (0 where there are none); and whether there are any (the
        layer has a say there)."""
        factor = max(1, radius // CELLS_PER_RADIUS)
        box = (2 * math.ceil(radius / factor) + 1,) * 2

        def local_sum(values: np.ndarray) -> np.ndarray:
            summed: np.ndarray = cv2.boxFilter(
                block_mean(values, factor), -1, box, normalize=False, borderType=cv2.BORDER_CONSTANT
            )
            return summed

        count = local_sum(mask.astype(np.float32)) / 255.0
        held = np.maximum(count, 1e-6)
        mean = local_sum(cv2.bitwise_and(self.image, self.image, mask=mask)) / held[..., None]
        power = local_sum(cv2.bitwise_and(self.power, self.power, mask=mask)) / held
        variance = np.maximum(power - np.einsum("ijc,ijc->ij", mean, mean), 0.0)
        weight = np.where(count * factor * factor >= 0.5, 1.0 / (variance + spread), 0.0)
        difference = cv2.subtract(self.image, block_expand(mean, factor, mask.shape))
        squared = cv2.transform(cv2.multiply(difference, difference), _CHANNEL_SUM)
        weights = block_expand(weight.astype(np.float32), factor, mask.shape)
        return cv2.multiply(squared, weights), weights > 0
