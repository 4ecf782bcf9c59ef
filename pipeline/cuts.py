"""Where to cut the depth range into layers, and the label map those cuts give.

A flat layer shown with a parallax moves all its pixels by one shift, so a pixel whose
nearness differs from its layer's mean is drawn out of place by that difference: the
layer's spread of nearness is the error a viewer sees. Cutting a continuous surface (a
floor, a wall) tears it instead: the two sides move apart along the cut. :func:`choose_cuts`
picks the cuts that minimise the sum of both, exactly, by dynamic programming over the
nearness histogram:

- parallax error: per layer, the weighted sum of squared deviations of nearness from the
  layer's mean (1-D k-means' objective), where pixels on steep ramps (the blur a model puts
  across every object edge) weigh little: they belong to no surface;
- tear: per cut level, the share of neighbouring pixel pairs on a continuous surface
  (nearness changing slowly between them) that the level separates, times ``tear_cost``.

Cuts so fall in the gaps between surfaces, a floor is cut, if at all, where objects
stand on it, and a small object at its own depth gets a layer of its own: no floor on
layer area (speckle is the island step's business).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from pipeline.concurrency import map_parallel

MAX_ANALYSIS_SIDE = 512


def choose_cuts(
    nearness: np.ndarray,
    *,
    num_layers: int,
    bins: int = 256,
    tear_cost: float = 0.001,
    ramp_scale: float = 3.0,
    min_share: float = 0.002,
) -> np.ndarray:
    """Return ``num_layers - 1`` ascending nearness thresholds in (0, 1).

    A pixel belongs to layer ``k`` (1-based, 1 = farthest) when exactly ``k - 1``
    thresholds lie below its nearness. ``tear_cost`` is the price, in squared nearness
    per pixel, of a cut across a continuous surface as wide as the image; ``ramp_scale``
    the slope (nearness per image size) above which neighbours are on a ramp, not on one
    surface (a floor spanning the whole depth range below the horizon has slope 2 to 3; an
    object edge blurred by a model ten or more).

    Every layer holds at least ``min_share`` of the canvas where the depth allows it, so
    more layers than surfaces split a surface where that costs least; a depth map with
    fewer distinct levels than layers leaves the rest empty (see :func:`drop_empty_layers`).
    """
    if not 2 <= num_layers <= 16:
        raise ValueError(f"num_layers must be between 2 and 16, got {num_layers}")
    if tear_cost < 0.0:
        raise ValueError(f"tear_cost must be >= 0, got {tear_cost}")
    small = downscale(nearness, MAX_ANALYSIS_SIDE)
    # Read through a slight blur: pixel noise is no structure, and on a flat surface it
    # must neither make neighbours look like a ramp nor offer a tail to cut off.
    smooth = cv2.GaussianBlur(small, (0, 0), 1.0)
    weight = 1.0 / (1.0 + (_slope(smooth) / ramp_scale) ** 2)
    moments = _bin_moments(smooth, weight=weight, bins=bins)
    pixels = np.bincount(_bin_index(small, bins).ravel(), minlength=bins) / small.size
    cut_cost = tear_cost * _tears(smooth, bins=bins, ramp_scale=ramp_scale)
    cut_cost += _centring(moments[0])
    edges = _best_cuts(moments, pixels, cut_cost, num_layers=num_layers, min_share=min_share)
    if edges is None:
        edges = _best_cuts(moments, pixels, cut_cost, num_layers=num_layers, min_share=0.0)
    assert edges is not None  # with no minimum, every split is feasible
    return np.asarray(edges, dtype=np.float64) / bins


def downscale(values: np.ndarray, max_side: int) -> np.ndarray:
    height, width = values.shape
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return values.astype(np.float32, copy=False)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small: np.ndarray = cv2.resize(values.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    return small


def _slope(nearness: np.ndarray) -> np.ndarray:
    """Gradient magnitude in nearness per image size."""
    slope_x = cv2.Sobel(nearness, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    slope_y = cv2.Sobel(nearness, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    magnitude: np.ndarray = np.hypot(slope_x, slope_y) * max(nearness.shape)
    return magnitude


def _bin_index(nearness: np.ndarray, bins: int) -> np.ndarray:
    index: np.ndarray = np.minimum((np.clip(nearness, 0.0, 1.0) * bins).astype(np.intp), bins - 1)
    return index


def _bin_moments(nearness: np.ndarray, *, weight: np.ndarray, bins: int) -> np.ndarray:
    """Per histogram bin, the total ``weight`` of its pixels and their weighted first and
    second moments of nearness, as shares of the canvas: shape (3, bins). (The weight is
    one on a surface and all but zero on a ramp across an object edge.)"""
    index = _bin_index(nearness, bins).ravel()
    values = nearness.ravel().astype(np.float64)
    w = weight.ravel().astype(np.float64) / nearness.size
    return np.stack(
        [
            np.bincount(index, w, minlength=bins),
            np.bincount(index, w * values, minlength=bins),
            np.bincount(index, w * values * values, minlength=bins),
        ]
    )


def _tears(nearness: np.ndarray, *, bins: int, ramp_scale: float) -> np.ndarray:
    """Per inner bin edge ``e`` (1 … bins - 1): how many neighbouring pixel pairs on one
    surface the level ``e / bins`` separates, in image widths (a cut across a floor
    as wide as the image is about 1).

    A horizontal or vertical pair is on one surface when nearness changes between them by
    less than ``ramp_scale`` per image size; it is torn by every level between its two
    values."""
    index = _bin_index(nearness, bins)
    step = ramp_scale / max(nearness.shape)
    counts = np.zeros(bins + 1, dtype=np.int64)
    for a, b, va, vb in (
        (index[:, :-1], index[:, 1:], nearness[:, :-1], nearness[:, 1:]),
        (index[:-1, :], index[1:, :], nearness[:-1, :], nearness[1:, :]),
    ):
        joined = (np.abs(va - vb) < step) & (a != b)
        low, high = np.minimum(a, b)[joined], np.maximum(a, b)[joined]
        # the pair is torn by edges low + 1 … high: +1 at low + 1, -1 at high + 1
        counts += np.bincount(low + 1, minlength=bins + 1)
        counts -= np.bincount(high + 1, minlength=bins + 1)
    torn = np.cumsum(counts)[1:bins]
    result: np.ndarray = torn / float(max(nearness.shape))
    return result


def _centring(weights: np.ndarray, *, sigma: float = 3.0, scale: float = 1e-6) -> np.ndarray:
    """A tie-breaker per inner edge: the smoothed density there, tiny next to any real
    cost, so a cut sits in the middle of a gap rather than on its rim."""
    density = ndimage.gaussian_filter1d(weights, sigma, mode="nearest")
    result: np.ndarray = scale * (density[:-1] + density[1:]) / max(float(density.max()), 1e-12)
    return result


def _best_cuts(
    moments: np.ndarray,
    pixels: np.ndarray,
    cut_cost: np.ndarray,
    *,
    num_layers: int,
    min_share: float,
) -> list[int] | None:
    """The ``num_layers - 1`` inner bin edges minimising parallax error plus cut costs,
    each layer holding at least ``min_share`` of the ``pixels`` (each bin's share of the
    canvas); None where no split can.

    ``spread[i, j]`` is the parallax error of a layer holding bins ``i … j - 1``;
    ``best[k, j]`` the least cost of ``k + 1`` layers covering bins ``0 … j - 1``."""
    bins = moments.shape[1]
    weight, first, second, count = (
        np.concatenate([[0.0], np.cumsum(m)]) for m in (*moments, pixels)
    )
    w = weight[None, :] - weight[:, None]
    s = first[None, :] - first[:, None]
    q = second[None, :] - second[:, None]
    spread = np.where(w > 1e-15, q - s * s / np.maximum(w, 1e-15), 0.0)
    spread = np.maximum(spread, 0.0)
    order = np.arange(bins + 1)
    spread[order[:, None] >= order[None, :]] = np.inf  # a layer holds at least one bin
    spread[(count[None, :] - count[:, None]) < min_share] = np.inf
    entry = np.concatenate([[0.0], cut_cost, [0.0]])  # the cost of a cut at edge i
    best = spread[0][None, :].repeat(num_layers, axis=0)
    back = np.zeros((num_layers, bins + 1), dtype=np.intp)
    for k in range(1, num_layers):
        total = best[k - 1][:, None] + entry[:, None] + spread  # [previous cut, this end]
        back[k] = np.argmin(total, axis=0)
        best[k] = total[back[k], order]
    if not np.isfinite(best[-1, bins]):
        return None
    edges, end = [], bins
    for k in range(num_layers - 1, 0, -1):
        end = int(back[k, end])
        edges.append(end)
    return sorted(edges)


def group_surfaces(moments: np.ndarray, *, num_layers: int) -> list[int]:
    """Split a back-to-front sequence of surfaces into at most ``num_layers`` runs of
    least parallax error; returns each surface's layer, 1 = farthest.

    ``moments`` is (3, n): each surface's pixel count and its sums of nearness and of
    nearness squared, in occlusion order. Whole surfaces go to a layer, so a floor is not
    cut into strips, and layers stay in the order the surfaces occlude each other."""
    count = moments.shape[1]
    layers = min(num_layers, count)
    if layers <= 1:
        return [1] * count
    share = moments / max(float(moments[0].sum()), 1.0)
    edges = _best_cuts(share, share[0], np.zeros(count - 1), num_layers=layers, min_share=0.0)
    assert edges is not None  # one surface per layer at least is always possible
    return [1 + int(np.searchsorted(edges, index, side="right")) for index in range(count)]


def regroup_surfaces(
    layer_of: np.ndarray,
    moments: np.ndarray,
    *,
    occludes: list[tuple[int, int]],
    num_layers: int,
) -> np.ndarray:
    """Move whole surfaces to the layer where they cost least parallax error, as k-means
    moves a point to its nearest mean, while every surface stays in front of those it
    occludes; returns the new ``layer_of``.

    :func:`group_surfaces` keeps one back-to-front sequence, but a surface that only meets
    another (a wall standing on the floor) may go in front of it or behind: a sequence
    forces the far right wall into the background because the floor lies between it and
    the shelf standing on the same floor. ``layer_of`` gives each surface's layer (index 0
    unused), ``moments`` is (n + 1, 3) as :class:`pipeline.surfaces.Surfaces` has them and
    ``occludes`` the ``(front, back)`` pairs whose order must hold. Each layer's largest
    surface stays, so no layer is left with only scraps for the edge steps to take."""
    layer_of = layer_of.copy()
    sums = np.zeros((num_layers + 1, 3))
    np.add.at(sums, layer_of, moments)
    behind = [[b for f, b in occludes if f == r] for r in range(len(layer_of))]
    ahead = [[f for f, b in occludes if b == r] for r in range(len(layer_of))]
    pixels = moments[:, 0].copy()
    pixels[0] = 0.0  # row 0: the pixels of no surface
    anchors = {
        int(np.argmax(np.where(layer_of == k, pixels, -1.0))) for k in range(1, num_layers + 1)
    }
    moved = True
    while moved:
        moved = False
        for region in range(1, len(layer_of)):
            here = int(layer_of[region])
            if pixels[region] <= 0 or region in anchors:
                continue
            low = max((int(layer_of[b]) for b in behind[region]), default=1)
            high = min((int(layer_of[f]) for f in ahead[region]), default=num_layers)
            own = moments[region]
            leaving = _spread(sums[here]) - _spread(sums[here] - own)
            gains = [
                (leaving - (_spread(sums[k] + own) - _spread(sums[k])), k)
                for k in range(low, high + 1)
                if k != here
            ]
            gain, target = max(gains, default=(0.0, here))
            if gain > 1e-12 * max(float(sums[:, 0].sum()), 1.0):
                sums[here] -= own
                sums[target] += own
                layer_of[region] = target
                moved = True
    return layer_of


def _spread(moment: np.ndarray) -> float:
    """The sum of squared deviations from the mean of pixels with these moments."""
    count, first, second = (float(v) for v in moment)
    return second - first * first / count if count > 1e-12 else 0.0


def layer_parallax(nearness: np.ndarray, labels: np.ndarray, *, num_layers: int) -> list[float]:
    """Each layer's suggested parallax: the mean nearness (disparity) of its pixels,
    normalised so the background is 0 and the foreground 1, so an animator's shifts
    follow the depth. Layers are in occlusion order, so a middle layer may move less than
    one behind it (objects standing far back on a floor that comes close); none moves
    less than the background or more than the foreground (clipped to 0 … 1: the
    background is the full canvas and must not slide off it). Evenly spaced where the
    background's and foreground's means do not separate."""
    flat = labels.ravel()
    counts = np.bincount(flat, minlength=num_layers + 1)[1 : num_layers + 1]
    sums = np.bincount(flat, weights=nearness.ravel(), minlength=num_layers + 1)
    means = sums[1 : num_layers + 1] / np.maximum(counts, 1)
    far, near = float(means[0]), float(means[-1])
    if num_layers == 1:
        return [0.0]  # the background alone: it does not move
    if near - far < 1e-6:
        return [k / (num_layers - 1) for k in range(num_layers)]
    return [float(v) for v in np.clip((means - far) / (near - far), 0.0, 1.0)]


def label_layers(nearness: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Label map, uint8, 1 = farthest layer … len(cuts) + 1 = nearest."""
    labels = np.ones(nearness.shape, dtype=np.uint8)
    for cut in cuts:
        labels += nearness > cut
    return labels


def remove_islands(labels: np.ndarray, *, min_pixels: int) -> np.ndarray:
    """Merge connected components smaller than ``min_pixels`` into their surroundings.

    A speckle of one layer inside another (noise in the depth map) becomes part of the
    layer around it, so no layer carries slivers a person would have to clean by hand.
    Each speckle pixel takes the label of the nearest pixel outside every speckle.
    """
    if min_pixels <= 1:
        return labels

    def speckles(value: int) -> np.ndarray | None:
        mask = (labels == value).view(np.uint8)
        # Plain labelling and a bincount: 4x faster than OpenCV's component statistics.
        count, components = cv2.connectedComponents(mask, connectivity=8)
        is_tiny = np.bincount(components.ravel(), minlength=count) < min_pixels
        is_tiny[0] = False  # component 0 is everything that is not ``value``
        if not is_tiny.any():
            return None
        if is_tiny[1:].all():  # the whole layer is speckle
            whole: np.ndarray = mask.view(bool)
            return whole
        tiny: np.ndarray = np.take(is_tiny, np.asarray(components))
        return tiny

    # each layer's components side by side (OpenCV releases the GIL); an absent value has none
    values = range(1, int(labels.max()) + 1)
    found = [mask for mask in map_parallel(speckles, values) if mask is not None]
    if not found:
        return labels
    small = np.logical_or.reduce(found) if len(found) > 1 else found[0]
    if small.all():
        return labels
    return nearest_kept(labels, ~small)


def nearest_kept(labels: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """``labels`` with every pixel outside ``kept`` given the label of the nearest pixel
    in ``kept`` (Euclidean); ``kept`` must hold a pixel."""
    # Zero pixels of the source are the kept ones; DIST_LABEL_PIXEL numbers them 1, 2, …
    # in raster order and gives every other pixel the number of its nearest kept pixel.
    _, nearest = cv2.distanceTransformWithLabels(
        (~kept).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    kept_labels = np.concatenate([np.zeros(1, labels.dtype), labels[kept]])
    result: np.ndarray = np.take(kept_labels, np.asarray(nearest))
    return result


def _labels_present(labels: np.ndarray, num_layers: int) -> np.ndarray:
    """Which of the labels 1..``num_layers`` hold a pixel."""
    if labels.dtype == np.uint8:  # a histogram, 6x faster than a bincount
        counts = cv2.calcHist([labels], [0], None, [num_layers + 1], [0, num_layers + 1])
        return counts.ravel()[1:] > 0
    present: np.ndarray = np.bincount(labels.ravel(), minlength=num_layers + 1)[1:] > 0
    return present


def drop_empty_layers(labels: np.ndarray, *, num_layers: int) -> np.ndarray:
    """Renumber the layers 1 … n so that none is empty.

    A layer that lived only on depth ramps or in speckles can be left with no pixel once
    edges and islands are settled, and an empty layer file helps nobody. A stack with
    fewer than two layers holding pixels (a flat depth map) is left as it is: a parallax
    needs two layers.
    """
    present = _labels_present(labels, num_layers)
    if present.all() or present.sum() < 2:
        return labels
    renumber = np.zeros(256 if labels.dtype == np.uint8 else present.size + 1, labels.dtype)
    renumber[1 : present.size + 1] = np.cumsum(present).astype(labels.dtype)
    compact: np.ndarray = (
        cv2.LUT(labels, renumber) if labels.dtype == np.uint8 else renumber[labels]
    )
    return compact
