"""Pixels the depth map put in the wrong layer, put back by colour: thin parts it lost to
the surface behind, and patches of that surface it gave to the object in front.

A model's depth map is coarse and its edges wander by a few of its pixels. A structure a
few of its pixels wide (a stick, a cable, a stretch of rim) reads at the depth of what lies
behind it, or is missed outright where the map's edge moved off it: the labels put it in
the farther layer, where it stays painted into that layer's picture and shows as a ghost
of the object when the layers move. Where the edge moved the other way, a patch of the
surface behind comes out in the object's layer and moves with it.

:func:`settle_strays` puts both back where colour is clear about it:

1. each layer's local colour (mean and spread) is estimated from its own pixels without
   those that the colour of its interior (of all its pixels, where it has no interior in
   reach) does not explain: trimmed statistics, so a stick across a wall is not taken for
   a rougher wall; the pixels the trimmed colour does not explain
   (:data:`~pipeline.edges.UNEXPLAINED`) are strays;
2. a thin piece of strays (no ``thin``-pixel square fits in most of it: a shadow is no
   stick) goes to a nearer layer it touches when that layer's colour explains it
   (:func:`claim_thin_parts`);
3. a piece of a layer's strays within ``thin`` pixels of a farther layer goes to that layer
   when the colour of that layer's interior (its pixels farther than ``thin`` from any
   other layer, which no wandering edge reaches) explains the piece
   (:func:`return_patches`). Not its colour near the edge: a piece of the object the
   labels left in the farther layer would explain more of the object there.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

from pipeline.blocks import block_expand, block_mean
from pipeline.concurrency import map_parallel
from pipeline.edges import UNEXPLAINED, local_colour_model
from pipeline.layers import grow

TRIM = 1.0
"""The trimmed colour leaves out pixels farther than this from the untrimmed one: the
surface's typical pixels, not the thin things across it."""
TOUCH = 2
"""A piece within this many pixels of another layer touches it."""
BROAD_SHARE = 0.2
"""A piece more than this share of which is broad (holds a ``thin``-pixel square) is a
patch of the surface (a shadow, a stain), not a thin part."""
MIN_PIECE = 8
"""A piece of fewer pixels is noise, or a run of mixed pixels along an edge: the soft
edges' business."""
REACH_PER_THIN = 2
"""The local colour statistics reach this many times the widest thin part, so a thin part
is a minority of the pixels around it."""
FOLLOW_PER_REACH = 3
"""A thin part is followed this many times the statistics' reach from a nearer layer."""
CELLS_PER_RADIUS = 4
"""The colour statistics are box sums on a grid of about this many cells per radius: local
means are smooth, and a reduced grid costs a fraction of full-resolution sums."""


class LayerColour(NamedTuple):
    """One layer's local colour, read at every pixel."""

    distance: np.ndarray  # float32 (H, W): from its trimmed local colour (0 where it has none)
    say: np.ndarray  # bool (H, W): the layer has pixels within reach
    core_distance: np.ndarray  # float32 (H, W): from the colour of its interior pixels
    core_say: np.ndarray  # bool (H, W): it has interior pixels within reach
    strays: np.ndarray  # bool (H, W): the layer's pixels its trimmed local colour does not explain


def settle_strays(
    image: np.ndarray, labels: np.ndarray, *, num_layers: int, thin: int, spread: float = 0.01
) -> np.ndarray:
    """``labels`` (uint8, 1 = farthest) with the thin parts and patches that colour places
    in another layer moved there. ``thin`` is the widest structure, in pixels, that the
    depth map may have lost, and how far its edges may have wandered; colour statistics
    reach ``REACH_PER_THIN * thin`` pixels."""
    if thin < 1:
        raise ValueError(f"thin = {thin!r} is invalid: allowed integers >= 1 (pixels)")
    colours = _Colours.of(image)
    radius = REACH_PER_THIN * thin

    def colour_of(k: int) -> LayerColour:
        mask = cv2.inRange(labels, k, k)
        interior = np.where(grow(labels != k, thin), np.uint8(0), mask)
        return layer_colour(colours, mask, interior, radius=radius, spread=spread)

    layers = map_parallel(colour_of, range(1, num_layers + 1))
    claimed = claim_thin_parts(labels, layers, thin=thin, follow=FOLLOW_PER_REACH * radius)
    return return_patches(claimed, layers, original=labels, thin=thin)


def claim_thin_parts(
    labels: np.ndarray, layers: list[LayerColour], *, thin: int, follow: int
) -> np.ndarray:
    """Thin pieces of a layer's strays within ``follow`` pixels of a nearer layer that they
    touch, and whose colour that layer explains, moved to it (nearest first)."""
    count = len(layers)
    strays = np.zeros(labels.shape, np.uint8)
    for k in range(1, count):
        np.bitwise_or(strays, layers[k - 1].strays & grow(labels > k, follow), out=strays)
    number, pieces = cv2.connectedComponents(strays, connectivity=8)
    if number <= 1:
        return labels
    broad = cv2.morphologyEx(strays, cv2.MORPH_OPEN, np.ones((thin + 1, thin + 1), np.uint8))
    size = np.bincount(pieces.ravel(), minlength=number)
    broad_pixels = np.bincount(pieces.ravel(), weights=broad.ravel(), minlength=number)
    open_piece = (size >= MIN_PIECE) & (broad_pixels <= BROAD_SHARE * size)
    open_piece[0] = False
    result = labels.copy()
    for k in range(count, 1, -1):
        touching = grow(labels == k, TOUCH) & (result < k) & open_piece[pieces]
        near = layers[k - 1]
        ids = np.unique(pieces[touching])
        claimed = _explained(pieces, ids, near.distance, near.say, result < k)
        result[(result < k) & claimed[pieces]] = k
        open_piece &= ~claimed
    return result


def return_patches(
    labels: np.ndarray, layers: list[LayerColour], *, original: np.ndarray, thin: int
) -> np.ndarray:
    """Pieces of a layer's strays within ``thin`` pixels of a farther layer that they
    touch, and that the colour of its interior explains, moved to it (nearest of the
    farther layers first). Only pixels ``original`` already gave the layer move."""
    result = labels.copy()
    for k in range(2, len(layers) + 1):
        own = (labels == k) & (original == k)
        strays = (layers[k - 1].strays & own & grow(original < k, thin)).view(np.uint8)
        number, pieces = cv2.connectedComponents(strays, connectivity=8)
        if number <= 1:
            continue
        open_piece = np.bincount(pieces.ravel(), minlength=number) >= MIN_PIECE
        open_piece[0] = False
        for j in range(k - 1, 0, -1):
            touching = grow(original == j, TOUCH) & open_piece[pieces]
            far = layers[j - 1]
            ids = np.unique(pieces[touching])
            moved = _explained(pieces, ids, far.core_distance, far.core_say, own)
            result[own & moved[pieces]] = j
            open_piece &= ~moved
    return result


def layer_colour(
    colours: _Colours, mask: np.ndarray, interior: np.ndarray, *, radius: int, spread: float
) -> LayerColour:
    """The local colour of a layer's pixels (``mask``, uint8, 255 = the layer) and its
    strays, trimmed by the colour of its ``interior`` pixels (as ``mask``: those farther
    than the labels' uncertainty from any other layer) where it has any in reach."""
    inner, inside = colours.distance(interior, radius=radius, spread=spread)
    whole, _ = colours.distance(mask, radius=radius, spread=spread)
    kept = np.where(np.where(inside, inner, whole) <= TRIM, mask, np.uint8(0))
    distance, say = colours.distance(kept, radius=radius, spread=spread)
    return LayerColour(distance, say, inner, inside, (distance > UNEXPLAINED) & (mask > 0))


def _explained(
    pieces: np.ndarray,
    ids: np.ndarray,
    distance: np.ndarray,
    say: np.ndarray,
    movable: np.ndarray,
) -> np.ndarray:
    """Per piece number, whether the piece is among ``ids`` and a colour (its ``distance``
    from each pixel, and where it has a ``say``) explains its ``movable`` pixels: it has a
    say at half of them at least, and their mean distance is within :data:`UNEXPLAINED`."""
    explained = np.zeros(int(pieces.max()) + 1, bool)
    ids = ids[ids > 0]
    if ids.size == 0:
        return explained
    candidate = np.isin(pieces, ids) & movable
    of_piece = pieces[candidate]
    length = explained.size
    heard = np.bincount(of_piece, weights=say[candidate], minlength=length)
    summed = np.bincount(of_piece, weights=distance[candidate], minlength=length)
    held = np.bincount(of_piece, minlength=length)
    explained[ids] = (heard[ids] >= 0.5 * held[ids]) & (summed[ids] < UNEXPLAINED * heard[ids])
    return explained


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

        # sums over the pixels in reach (cell means times the cell's pixel count)
        pixels = np.float32(factor * factor)
        count = local_sum(mask.astype(np.float32)) * (pixels / 255.0)
        colour = local_sum(cv2.bitwise_and(self.image, self.image, mask=mask)) * pixels
        power = local_sum(cv2.bitwise_and(self.power, self.power, mask=mask)) * pixels
        model = local_colour_model(
            np.concatenate([colour, count[..., None]], axis=2).reshape(-1, 4),
            power.reshape(-1),
            spread=spread,
        )
        mean = model.mean.reshape(colour.shape)
        weight = np.where(model.has_say, model.weight, 0.0).reshape(count.shape)
        difference = cv2.subtract(self.image, block_expand(mean, factor, mask.shape))
        squared = cv2.transform(cv2.multiply(difference, difference), _CHANNEL_SUM)
        weights = block_expand(weight.astype(np.float32), factor, mask.shape)
        return cv2.multiply(squared, weights), weights > 0
