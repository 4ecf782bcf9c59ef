"""Make layer edges follow the photo's edges, not the depth map's blur.

Depth from a model is low-resolution and soft: across every object edge it ramps from the
far surface's value to the near one's over many pixels, and a threshold lands somewhere
in the ramp. Two steps put the boundary where the photo has it:

1. :func:`assign_ramps`: each pixel on a ramp takes the layer of the nearby flat surface
   whose local colour it matches best. Statistics come from flat, pure pixels of each
   layer, so an object's colour never contaminates its neighbour's.
2. :func:`soft_alpha`: on the one-pixel rim each side of a boundary, each pixel's colour
   is projected between the inside and outside colours that the two sides' nearby pixels
   predict for it, which recovers the anti-aliasing as fractional alpha; elsewhere alpha
   is exactly 0 or 1.

Local statistics are box sums read only where they are needed (ramp or rim pixels), and
the wide ones are made on a reduced grid and read at each pixel's cell, so the cost stays
close to a few passes over the image even at 12 MP.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

from pipeline.blocks import block_any, block_expand, block_mean, cell_index
from pipeline.concurrency import map_parallel
from pipeline.io import to_uint8

PURE = 0.999
"""A reduced pixel counts as pure layer-k colour when this share of it is layer k."""
UNEXPLAINED = 8.0
"""A colour this far from a layer's local colour model (squared distance over the local
colour variance, :class:`ColourModel`) is not that layer's: the three channels' spread
about the mean reaches so far with odds under 1 in 10⁴."""
PIXEL_CHUNK = 1 << 18
"""Ramp pixels scored per batch."""
RIDGE = 0.2
"""How strongly a side's colour plane is held flat (px², per pixel of the side): a side
seen along a single line predicts little more than its mean, not an extrapolated slope."""
UNMIXED = 0.08
"""Coverage within this of 0 or 1 is texture the colour planes left over, not a mix."""


class ColourModel(NamedTuple):
    """One layer's local colour statistics in each cell of the reduced grid in use."""

    mean: np.ndarray  # float32 (n, 3): the mean colour of the layer's pure pixels nearby
    weight: np.ndarray  # float32 (n,): 1 / (colour variance + spread)
    has_say: np.ndarray  # bool (n,): the box holds at least half a pixel of the layer


def ramp_mask(
    nearness: np.ndarray, *, ramp_scale: float = 4.0, window: int = 5, rim: float = 0.15
) -> np.ndarray:
    """Pixels on depth ramps: where a soft depth map blurs across an object edge.

    A ramp pixel is steep (nearness spans more than ``ramp_scale`` per image size across
    its ``window``, twice the steepest slope a surface keeps; see :mod:`pipeline.cuts`)
    and in between: its value lies inside that span, more than ``rim`` of it from either
    end. A sharp step is no ramp, so exact depth keeps every pixel its own label, down to
    a one-pixel pole; a blurred step is a ramp across its whole width.
    """
    size = max(nearness.shape)
    square = np.ones((window, window), dtype=np.uint8)
    low = cv2.erode(nearness, square, borderType=cv2.BORDER_REPLICATE)
    high = cv2.dilate(nearness, square, borderType=cv2.BORDER_REPLICATE)
    span = high - low
    steep = span > ramp_scale * (window - 1) / size
    between = np.minimum(nearness - low, high - nearness) > rim * span
    ramps: np.ndarray = steep & between
    return ramps


def ramp_reach(ramps: np.ndarray, *, limit: int = 96) -> int:
    """How far the farthest ramp pixel is from flat ground, plus a little context."""
    if not ramps.any():
        return 0
    distance = cv2.distanceTransform(ramps.astype(np.uint8), cv2.DIST_L2, 3)
    return int(min(limit, math.ceil(float(distance.max())) + 3))


def assign_ramps(
    image: np.ndarray,
    labels: np.ndarray,
    ramps: np.ndarray,
    *,
    num_layers: int,
    reach: int,
    spread: float = 0.01,
    samples_per_reach: int = 6,
) -> np.ndarray:
    """Give each ramp pixel the layer of the nearby surface whose colour it matches.

    A threshold through a blurred depth edge lands somewhere in the ramp, and a middle
    threshold even leaves a ring of a middle layer around a near object. Instead, ramp
    pixels take one of the layers found on flat ground within ``reach`` pixels: the one
    whose local mean colour, scaled by its local colour spread, is closest. A pixel that
    ``labels`` puts on a nearer layer goes to a farther one only where that layer's
    colour explains it (within :data:`UNEXPLAINED`): a rim or a spoke the depth map blurred
    into a ramp, unlike the wall behind it in colour, stays with its wheel even where only
    the wall has flat ground in reach.
    """
    if reach <= 0 or not ramps.any():
        return labels
    # Local means are smooth: statistics on a grid of half the resolution or coarser,
    # read at each ramp pixel's own cell, lose nothing the IoU figures can see
    # (bench/quality) and cost a fraction of full-resolution ones.
    factor = max(2, reach // samples_per_reach)
    small_image = block_mean(image, factor)
    small_power = np.einsum("ijc,ijc->ij", small_image, small_image)
    flat_labels = np.where(ramps, np.uint8(0), labels)
    radius = math.ceil(reach / factor)
    used = np.flatnonzero(block_any(ramps, factor))  # the cells holding a ramp pixel

    def colour_model(k: int) -> ColourModel | None:
        """Layer k's colour model in each cell in use, or None: k has no pure pixel."""
        share = block_mean(cv2.inRange(flat_labels, k, k), factor)
        weight = (share >= round(255 * PURE)).astype(np.float32)
        if not weight.any():
            return None
        spread_weight = cv2.cvtColor(weight, cv2.COLOR_GRAY2RGB)
        weighted = cv2.merge([cv2.multiply(small_image, spread_weight), weight])
        sums = np.take(_box_sum(weighted, radius).reshape(-1, 4), used, axis=0)
        power = np.take(_box_sum(cv2.multiply(small_power, weight), radius), used)
        return local_colour_model(sums, power, spread=spread)

    models = map_parallel(colour_model, range(1, num_layers + 1))
    candidates = [(k, model) for k, model in enumerate(models, start=1) if model is not None]
    if not candidates:
        return labels
    # Ramp pixels in a cell where no layer has a say keep their label.
    heard = np.zeros(small_power.size, dtype=np.uint8)
    heard[used] = np.any([model.has_say for _, model in candidates], axis=0)
    heard_at_pixel = block_expand(heard.reshape(small_power.shape), factor, labels.shape) > 0
    result = labels.copy()
    compared = np.flatnonzero(ramps & heard_at_pixel)
    position = np.zeros(small_power.size, dtype=np.intp)
    position[used] = np.arange(used.size)

    def closest(part: np.ndarray) -> np.ndarray:
        colours = np.take(image.reshape(-1, 3), part, axis=0)
        cells = position[cell_index(part, shape=labels.shape, factor=factor)]
        chosen, distance = _closest_layer(colours, cells, candidates)
        given = np.take(labels, part)
        unexplained = (chosen < given) & (distance > UNEXPLAINED)
        return np.where(unexplained, given, chosen)

    batches = [compared[i : i + PIXEL_CHUNK] for i in range(0, compared.size, PIXEL_CHUNK)]
    for part, chosen in zip(batches, map_parallel(closest, batches), strict=True):
        result.reshape(-1)[part] = chosen
    return result


def _closest_layer(
    colours: np.ndarray,
    cells: np.ndarray,
    candidates: list[tuple[int, ColourModel]],
) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel (its colour and cell), the candidate layer with a say whose colour
    model is closest, ``|c - mean|² / (variance + spread)``, the first of equals, and
    that distance: uint8 layer numbers (0 where none has a say) and float32."""
    best = np.full(colours.shape[0], np.inf, dtype=np.float32)
    chosen = np.zeros(colours.shape[0], dtype=np.uint8)
    distance = np.empty(colours.shape[0], dtype=np.float32)
    for k, model in candidates:
        difference = colours - np.take(model.mean, cells, axis=0)
        np.einsum("ij,ij->i", difference, difference, out=distance)
        distance *= np.take(model.weight, cells)
        better = (distance < best) & np.take(model.has_say, cells)
        np.copyto(best, distance, where=better)
        chosen[better] = k
    return chosen, best


def local_colour_model(sums: np.ndarray, power: np.ndarray, *, spread: float) -> ColourModel:
    """Per cell, from box sums of colour and count ``sums`` (n, 4) and of squared colour
    ``power`` (n,): the layer's :class:`ColourModel` (a say from half a count up)."""
    count = np.maximum(sums[:, 3], np.float32(1e-6))
    mean = (sums[:, :3] / count[:, None]).astype(np.float32)
    variance = np.maximum(power / count - np.einsum("ij,ij->i", mean, mean), 0.0)
    weight = (1.0 / (variance + np.float32(spread))).astype(np.float32)
    return ColourModel(mean=mean, weight=weight, has_say=sums[:, 3] >= 0.5)


def soft_alpha(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    num_layers: int,
    radius: int = 3,
    contrast: float = 0.08,
) -> list[np.ndarray]:
    """Fractional coverage of "layer k or nearer" for k = 2..num_layers, nested.

    On the one-pixel rim each side of a boundary, each pixel's colour is projected onto
    the line between the inside and outside colours at that pixel:
    ``a = <I - B, F - B> / |F - B|²``. Each side's colour there is read off a plane
    fitted to its pixels off the rim within ``radius`` (:func:`_rim_planes`), so a
    textured side (stripes, a gradient) is predicted where the rim pixel is, not at the
    middle of its pixels a few pixels away. Coverage within :data:`UNMIXED` of 0 or 1 is
    taken as 0 or 1. Where the two sides barely differ in colour (``|F - B|`` below
    ``contrast``) the projection means little, so the hard mask is kept in proportion. A
    structure too thin to have pixels off the rim (a wire, a spoke) takes its colour from
    all its pixels in reach, and its purest pixel is full coverage
    (:func:`_relative_to_purest`).

    Returns ``alphas`` with ``alphas[k - 2]`` for layer ``k``, float32 (H, W) in [0, 1],
    and ``alphas[i] >= alphas[i + 1]`` everywhere.
    """
    square = np.ones((3, 3), dtype=np.uint8)
    lowest = cv2.erode(labels, square, borderType=cv2.BORDER_REPLICATE)
    highest = cv2.dilate(labels, square, borderType=cv2.BORDER_REPLICATE)
    rim = np.flatnonzero(lowest != highest)
    settled = lowest == highest
    sums = _rim_planes(
        image, labels, settled=settled, rim=rim, num_layers=num_layers, radius=radius
    )
    # A thin structure (a wire, a spoke) is rim all through: with no settled pixel of its
    # own in reach, its colour is the mean of all its pixels there, rim included.
    loose = _rim_means(image, labels, rim=rim, num_layers=num_layers, radius=radius)
    colours = np.take(image.reshape(-1, 3), rim, axis=0)
    rim_labels = np.take(labels, rim)
    rim_lowest, rim_highest = np.take(lowest, rim), np.take(highest, rim)
    alphas: list[np.ndarray] = []
    for k in range(num_layers, 1, -1):
        alpha = (labels >= k).astype(np.float32)
        on_rim = (rim_lowest < k) & (rim_highest >= k)
        layer_sums = sums[on_rim]
        thin = layer_sums[:, k - 1 :, 3].sum(axis=1) <= 0
        inside = _side(layer_sums[:, k - 1 :], loose[on_rim, k - 1 :])
        outside = _side(layer_sums[:, : k - 1], loose[on_rim, : k - 1])
        hard = (rim_labels[on_rim] >= k).astype(np.float32)
        projected, confidence = _project(colours[on_rim], inside, outside, contrast=contrast)
        if thin.any():
            projected = _relative_to_purest(
                projected,
                thin=thin,
                own=hard > 0,
                at=rim[on_rim],
                shape=labels.shape,
                radius=radius,
            )
        coverage = np.clip(projected, 0.0, 1.0)
        coverage[coverage < UNMIXED] = 0.0
        coverage[coverage > 1.0 - UNMIXED] = 1.0
        alpha.reshape(-1)[rim[on_rim]] = confidence * coverage + (1.0 - confidence) * hard
        if alphas:
            np.maximum(alpha, alphas[-1], out=alpha)
        alphas.append(alpha)
    alphas.reverse()
    return alphas


def _side(settled: np.ndarray, loose: np.ndarray) -> np.ndarray:
    """One side's colour and count sums per rim pixel, (n, 4), from its layers' sums over
    settled pixels, or over all their pixels where no settled one is in reach."""
    summed = settled.sum(axis=1)
    fallback = loose.sum(axis=1)
    result: np.ndarray = np.where(summed[:, 3:] > 0, summed, fallback)
    return result


def _relative_to_purest(
    projected: np.ndarray,
    *,
    thin: np.ndarray,
    own: np.ndarray,
    at: np.ndarray,
    shape: tuple[int, ...],
    radius: int,
) -> np.ndarray:
    """A thin structure's colour is the mean of its pixels, all partly mixed with what
    lies behind, so its purest pixels project beyond 1: each ``thin`` pixel's projection
    is divided by the greatest among the structure's ``own`` pixels within ``radius``
    (where that exceeds 1), so the purest pixel is full coverage and the rest scale with it.
    ``at`` holds the pixels' flat indices in an image of ``shape``."""
    scattered = np.zeros(shape, np.float32)
    scattered.reshape(-1)[at[thin & own]] = projected[thin & own]
    side = 2 * radius + 1
    peaks = cv2.dilate(scattered, np.ones((side, side), np.uint8))
    result = projected.copy()
    result[thin] /= np.maximum(np.take(peaks, at[thin]), 1.0)
    return result


class _RimWindow(NamedTuple):
    """The part of the image within ``radius`` of any rim pixel, and where each rim pixel
    lies in it (flat indices)."""

    rows: slice
    cols: slice
    at: np.ndarray


def _rim_window(rim: np.ndarray, shape: tuple[int, ...], radius: int) -> _RimWindow:
    ys, xs = np.divmod(rim, shape[1])
    y0, y1 = max(0, int(ys[0]) - radius), min(shape[0], int(ys[-1]) + radius + 1)
    x0, x1 = max(0, int(xs.min()) - radius), min(shape[1], int(xs.max()) + radius + 1)
    return _RimWindow(slice(y0, y1), slice(x0, x1), (ys - y0) * (x1 - x0) + (xs - x0))


def _rim_means(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    rim: np.ndarray,
    num_layers: int,
    radius: int,
) -> np.ndarray:
    """Per rim pixel (flat indices ``rim``) and per layer: the sums of colour and count
    over all the layer's pixels within ``radius``. Shape (n, num_layers, 4)."""
    sums = np.zeros((rim.size, num_layers, 4), dtype=np.float32)
    if rim.size == 0:
        return sums
    window = _rim_window(rim, labels.shape, radius)
    crop = image[window.rows, window.cols]
    crop_labels = labels[window.rows, window.cols]
    crop8 = _with_count(crop)  # box sums of 8-bit values are exact integers
    box = (2 * radius + 1, 2 * radius + 1)
    depth = cv2.CV_16U if box[0] * box[1] * 255 <= np.iinfo(np.uint16).max else cv2.CV_32S

    def layer_sums(k: int) -> None:
        weighted = cv2.bitwise_and(crop8, crop8, mask=cv2.inRange(crop_labels, k, k))
        summed = cv2.boxFilter(
            weighted, depth, box, normalize=False, borderType=cv2.BORDER_CONSTANT
        )
        sums[:, k - 1] = np.take(summed.reshape(-1, 4), window.at, axis=0)

    map_parallel(layer_sums, range(1, num_layers + 1))
    sums *= np.float32(1.0 / 255.0)
    return sums


def _rim_planes(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    settled: np.ndarray,
    rim: np.ndarray,
    num_layers: int,
    radius: int,
    ridge: float = RIDGE,
) -> np.ndarray:
    """Per rim pixel (flat indices ``rim``) and per layer: the colour the layer's
    ``settled`` (off-rim) pixels within ``radius`` predict at the rim pixel, times their
    count, and the count; shape (n, num_layers, 4), summable over layers like
    :func:`_rim_means`.

    The prediction is a plane ``colour = c + g_x·dx + g_y·dy`` fitted by least squares
    to those pixels (offsets ``d`` from the rim pixel), read at ``d = 0``; ``ridge``
    holds the slopes towards flat. The settled pixels of a side lie one to a few pixels
    off, so on stripes or a gradient their mean is off by the slope times that distance.
    """
    sums = np.zeros((rim.size, num_layers, 4), dtype=np.float32)
    if rim.size == 0:
        return sums
    window = _rim_window(rim, labels.shape, radius)
    crop8 = _with_count(image[window.rows, window.cols])
    crop_labels = labels[window.rows, window.cols]
    settled8 = settled[window.rows, window.cols].view(np.uint8) * np.uint8(255)
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    flat = np.ones_like(offsets)

    def window_sums(values: np.ndarray, along_x: np.ndarray, along_y: np.ndarray) -> np.ndarray:
        """Σ over each rim pixel's window of ``values(p + d) · along_x[dx] · along_y[dy]``."""
        summed = cv2.sepFilter2D(
            values, cv2.CV_32F, along_x, along_y, borderType=cv2.BORDER_CONSTANT
        )
        return np.take(summed.reshape(summed.shape[0] * summed.shape[1], -1), window.at, axis=0)

    def layer_plane(k: int) -> None:
        # Sums of 8-bit colour and a count of 255 a pixel (see _with_count): both carry
        # the factor 255, so the plane's value is colour in [0, 1].
        mask = cv2.bitwise_and(cv2.inRange(crop_labels, k, k), settled8)  # 0 or 255
        weighted = cv2.bitwise_and(crop8, crop8, mask=mask)
        level = window_sums(weighted, flat, flat)
        along_x = window_sums(weighted, offsets, flat)
        along_y = window_sums(weighted, flat, offsets)
        count = level[:, 3]
        gains = _plane_centre_gains(
            count=count,
            x=along_x[:, 3],
            y=along_y[:, 3],
            xx=window_sums(mask, offsets**2, flat)[:, 0] + ridge * count,
            xy=window_sums(mask, offsets, offsets)[:, 0],
            yy=window_sums(mask, flat, offsets**2)[:, 0] + ridge * count,
        )
        colour = gains[:, :1] * level[:, :3] + gains[:, 1:2] * along_x[:, :3]
        colour += gains[:, 2:] * along_y[:, :3]
        pixels = count / 255.0
        sums[:, k - 1, :3] = np.clip(colour, 0.0, 1.0) * pixels[:, None]
        sums[:, k - 1, 3] = pixels

    map_parallel(layer_plane, range(1, num_layers + 1))
    return sums


def _with_count(image: np.ndarray) -> np.ndarray:
    """8-bit colour and a count channel (255 a pixel), for window sums of colour and count
    in 8-bit passes, which cost about half as much as float ones. (Colour beyond 8 bits of
    precision is rounded: a local colour moves by under 1/510, far below any edge
    contrast.)"""
    return cv2.merge([to_uint8(image), np.full(image.shape[:2], 255, np.uint8)])


def _plane_centre_gains(
    *,
    count: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    xx: np.ndarray,
    xy: np.ndarray,
    yy: np.ndarray,
) -> np.ndarray:
    """The weights ``(w_1, w_x, w_y)`` (n, 3) with which the sums ``Σv, Σv·dx, Σv·dy`` give
    a least-squares plane's value at ``d = 0``: the first row of the inverse of the
    normal matrix ``[[Σ1, Σdx, Σdy], [Σdx, Σdx², Σdxdy], [Σdy, Σdxdy, Σdy²]]`` (any ridge
    already added to ``xx`` and ``yy``), by cofactors. Zero where there is no pixel."""
    count, x, y = (v.astype(np.float64) for v in (count, x, y))
    xx, xy, yy = (v.astype(np.float64) for v in (xx, xy, yy))
    minors = np.stack([xx * yy - xy * xy, y * xy - x * yy, x * xy - y * xx], axis=1)
    determinant = count * minors[:, 0] + x * minors[:, 1] + y * minors[:, 2]
    safe = determinant > 1e-9 * np.maximum(count, 1.0) ** 3
    gains = np.where(safe[:, None], minors / np.where(safe, determinant, 1.0)[:, None], 0.0)
    return gains.astype(np.float32)


def _project(
    colours: np.ndarray,
    inside: np.ndarray,
    outside: np.ndarray,
    *,
    contrast: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Each rim pixel's colour projected between its outside and inside colours (0 at
    the outside's, 1 at the inside's; unclipped) and how far to trust that: 0 where a side
    has no pixel in reach, rising to 1 as the two colours differ by more than ``contrast``."""
    fg = inside[:, :3] / np.maximum(inside[:, 3:], 1e-6)
    bg = outside[:, :3] / np.maximum(outside[:, 3:], 1e-6)
    direction = fg - bg
    power = np.einsum("ij,ij->i", direction, direction)
    along = np.einsum("ij,ij->i", colours - bg, direction)
    projected = (along / np.maximum(power, 1e-8)).astype(np.float32)
    confidence = power / (power + contrast**2)
    both_sides = (inside[:, 3] > 0) & (outside[:, 3] > 0)
    return projected, np.where(both_sides, confidence, 0.0).astype(np.float32)


def _box_sum(values: np.ndarray, radius: int) -> np.ndarray:
    size = (2 * radius + 1, 2 * radius + 1)
    summed: np.ndarray = cv2.boxFilter(
        values, -1, size, normalize=False, borderType=cv2.BORDER_CONSTANT
    )
    return summed
