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

from pipeline.blocks import block_mean, cell_index
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
    pixels = _Pixels.of(image)
    own = _own_distance(pixels, labels, num_layers=num_layers, radius=radius, spread=spread)
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
        at = np.flatnonzero(np.isin(pieces, ids) & (result < k))
        distance, say = pixels.distance(body, at, radius=2 * radius, spread=spread)
        of_piece = pieces.ravel()[at]
        heard = np.bincount(of_piece, weights=say, minlength=count)
        summed = np.bincount(of_piece, weights=np.where(say, distance, 0.0), minlength=count)
        held = np.bincount(of_piece, minlength=count)
        explained = (heard >= 0.5 * np.maximum(held, 1)) & (
            summed < UNEXPLAINED * np.maximum(heard, 1)
        )
        claimed = np.zeros(count, bool)
        claimed[ids] = explained[ids]
        result.reshape(-1)[at[claimed[of_piece]]] = k
        open_piece &= ~claimed
    return result


def _own_distance(
    pixels: _Pixels, labels: np.ndarray, *, num_layers: int, radius: int, spread: float
) -> np.ndarray:
    """Per pixel, its colour's distance from its own layer's trimmed local colour, within
    ``3 * radius`` of a nearer layer: a thin part is followed that far from its body, and
    the nearer layer's colour reaches ``2 * radius``. Elsewhere, and on the nearest layer,
    0: nothing nearer could claim the pixel."""

    def layer(k: int) -> tuple[np.ndarray, np.ndarray] | None:
        nearer = cv2.inRange(labels, k + 1, 255)
        mask = cv2.inRange(labels, k, k)
        within = cv2.distanceTransform(255 - nearer, cv2.DIST_L2, 3) <= 3 * radius
        at = np.flatnonzero((mask > 0) & within)
        if at.size == 0 or not nearer.any():
            return None
        first, _ = pixels.distance(mask, at, radius=radius, spread=spread)
        kept = np.zeros(labels.size, np.uint8)
        kept[at[first <= TRIM]] = 255
        second, say = pixels.distance(kept.reshape(labels.shape), at, radius=radius, spread=spread)
        return at, np.where(say, second, 0.0)

    own = np.zeros(labels.shape, np.float32)
    for found in map_parallel(layer, range(1, num_layers)):
        if found is not None:
            at, distance = found
            own.reshape(-1)[at] = distance
    return own


class _Pixels(NamedTuple):
    """The image as each pixel's colour, squared colour and count (H, W, 5), the sums that
    local colour statistics are made of."""

    colours: np.ndarray  # float32 (H * W, 3)
    moments: np.ndarray  # float32 (H, W, 5)

    @classmethod
    def of(cls, image: np.ndarray) -> _Pixels:
        power = np.einsum("ijc,ijc->ij", image, image)
        moments = cv2.merge([image, power, np.ones_like(power)])
        return cls(np.ascontiguousarray(image.reshape(-1, 3)), moments)

    def distance(
        self, mask: np.ndarray, at: np.ndarray, *, radius: int, spread: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """For the pixels ``at`` (flat indices): the squared distance of their colour from
        the mean colour of ``mask``'s pixels (uint8, 255 = in) within about ``radius``,
        over those pixels' colour variance plus ``spread``; and whether any such pixel is
        there (the layer has a say)."""
        factor = max(1, radius // CELLS_PER_RADIUS)
        selected = self.moments * (mask[..., None] > 0)
        box = (2 * math.ceil(radius / factor) + 1,) * 2
        sums = cv2.boxFilter(
            block_mean(selected, factor), -1, box, normalize=False, borderType=cv2.BORDER_CONSTANT
        )
        near = np.take(sums.reshape(-1, 5), cell_index(at, shape=mask.shape, factor=factor), axis=0)
        count = np.maximum(near[:, 4], 1e-6)
        mean = near[:, :3] / count[:, None]
        variance = np.maximum(near[:, 3] / count - np.einsum("ij,ij->i", mean, mean), 0.0)
        difference = np.take(self.colours, at, axis=0) - mean
        distance = np.einsum("ij,ij->i", difference, difference) / (variance + spread)
        say: np.ndarray = near[:, 4] * factor * factor >= 0.5
        return distance.astype(np.float32), say
