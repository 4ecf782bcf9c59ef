"""Where to cut the depth range into layers, and the label map those cuts give.

Cuts fall in gaps of the depth distribution: a smoothed histogram of nearness is the cost
of cutting at each level, and a small dynamic programme picks the ``num_layers - 1`` cheapest
levels that leave every layer at least ``min_area`` of the canvas. Where the depth is one
continuous ramp (no gaps), a weak balance term spreads the cuts evenly by area.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from scipy import ndimage

MAX_ANALYSIS_SIDE = 512
ISLAND_THREADS = 2
"""Layers' connected components are found side by side (OpenCV releases the GIL)."""


def choose_cuts(
    nearness: np.ndarray,
    *,
    num_layers: int,
    bins: int = 256,
    min_area: float = 0.025,
    balance: float = 0.1,
) -> np.ndarray:
    """Return ``num_layers - 1`` ascending nearness thresholds in (0, 1).

    A pixel belongs to layer ``k`` (1-based, 1 = farthest) when exactly ``k - 1``
    thresholds lie below its nearness.
    """
    if not 2 <= num_layers <= 16:
        raise ValueError(f"num_layers must be between 2 and 16, got {num_layers}")
    if not 0.0 <= min_area < 1.0 / num_layers:
        raise ValueError(f"min_area must be in [0, 1/num_layers), got {min_area}")
    plateaus, pixels = _histograms(nearness, bins=bins)
    cost = _cut_cost(plateaus)
    cumulative = np.concatenate([[0.0], np.cumsum(pixels)])
    for area in (min_area, min_area / 4, 0.0):
        picked = _best_cuts(cost, cumulative, num_layers=num_layers, min_area=area, balance=balance)
        if picked is not None:
            return (np.asarray(picked, dtype=np.float64)) / bins
    return np.linspace(0.0, 1.0, num_layers + 1)[1:-1]


def _histograms(
    nearness: np.ndarray, *, bins: int, ramp_scale: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised histograms of nearness: over the depth map's plateaus (where to cut),
    and over all pixels (how large each layer is).

    On the first, pixels on steep ramps (the blur a model puts across every object edge)
    carry little weight: they belong to no surface, and counting them would fill the gaps
    between surfaces. The slope is measured in nearness per image size, so ``ramp_scale = 2``
    keeps a ground plane that spans the depth range over the frame, while a ramp across an
    object edge, ten or more times steeper, all but vanishes.
    """
    small = _downscale(nearness, MAX_ANALYSIS_SIDE)
    size = max(small.shape)
    slope_x = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    slope_y = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    slope = np.hypot(slope_x, slope_y) * size
    weight = 1.0 / (1.0 + (slope / ramp_scale) ** 2)
    plateaus, _ = np.histogram(small, bins=bins, range=(0.0, 1.0), weights=weight)
    pixels, _ = np.histogram(small, bins=bins, range=(0.0, 1.0))
    return _normalised(plateaus), _normalised(pixels.astype(np.float64))


def _normalised(counts: np.ndarray) -> np.ndarray:
    total = float(counts.sum())
    return counts / total if total else np.full(counts.size, 1.0 / counts.size)


def _downscale(values: np.ndarray, max_side: int) -> np.ndarray:
    height, width = values.shape
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return values.astype(np.float32, copy=False)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small: np.ndarray = cv2.resize(values.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    return small


def _cut_cost(histogram: np.ndarray, *, floor: float = 1e-4) -> np.ndarray:
    """Cost of a cut at each inner bin edge: log-compressed local density (a small
    object's peak must count next to a background's huge one), plus a wide term that
    pulls a cut towards the middle of a gap rather than its rim."""
    narrow = ndimage.gaussian_filter1d(histogram, 1.5, mode="nearest")
    wide = ndimage.gaussian_filter1d(histogram, 6.0, mode="nearest")
    density = np.maximum(narrow[:-1], narrow[1:]) + 0.25 * (wide[:-1] + wide[1:]) / 2
    peak = max(float(density.max()), floor)
    result: np.ndarray = np.log1p(density / floor) / np.log1p(peak / floor)
    return result


def _best_cuts(
    cost: np.ndarray,
    cumulative: np.ndarray,
    *,
    num_layers: int,
    min_area: float,
    balance: float,
) -> list[int] | None:
    """Dynamic programme over bin edges; returns edge indices (1..bins-1) or None."""
    bins = cumulative.size - 1
    edges = np.arange(1, bins)
    target = 1.0 / num_layers
    inf = np.inf
    # best[i][e]: min cost of placing cuts 1..i with cut i at edge e (layers 1..i complete)
    best = np.full((num_layers - 1, bins + 1), inf)
    back = np.zeros((num_layers - 1, bins + 1), dtype=np.int64)
    first_area = cumulative[edges]
    ok = first_area >= min_area
    best[0, edges[ok]] = cost[edges[ok] - 1] + balance * (first_area[ok] - target) ** 2
    for i in range(1, num_layers - 1):
        area = cumulative[edges][None, :] - cumulative[edges][:, None]  # [prev, cur]
        feasible = (area >= min_area) & (edges[None, :] > edges[:, None])
        total = best[i - 1, edges][:, None] + balance * (area - target) ** 2
        total = np.where(feasible, total, inf)
        prev = np.argmin(total, axis=0)
        best[i, edges] = total[prev, np.arange(edges.size)] + cost[edges - 1]
        back[i, edges] = edges[prev]
    last_area = 1.0 - cumulative[edges]
    final = best[num_layers - 2, edges] + balance * (last_area - target) ** 2
    final = np.where(last_area >= min_area, final, inf)
    if not np.isfinite(final).any():
        return None
    cut = int(edges[int(np.argmin(final))])
    picked = [cut]
    for i in range(num_layers - 2, 0, -1):
        cut = int(back[i, cut])
        picked.append(cut)
    return sorted(picked)


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

    with ThreadPoolExecutor(max_workers=ISLAND_THREADS) as pool:
        values = range(1, int(labels.max()) + 1)  # an absent value has no component
        found = [mask for mask in pool.map(speckles, values) if mask is not None]
    if not found:
        return labels
    small = np.logical_or.reduce(found) if len(found) > 1 else found[0]
    if small.all():
        return labels
    # Zero pixels of the source are the kept ones; DIST_LABEL_PIXEL numbers them 1, 2, …
    # in raster order and gives every speckle pixel the number of its nearest kept pixel.
    _, nearest = cv2.distanceTransformWithLabels(
        small.astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    kept_labels = np.concatenate([np.zeros(1, labels.dtype), labels[~small]])
    merged: np.ndarray = np.take(kept_labels, np.asarray(nearest))
    return merged


def _labels_present(labels: np.ndarray, num_layers: int) -> np.ndarray:
    """Which of the labels 1..``num_layers`` hold a pixel."""
    if labels.dtype == np.uint8:  # a histogram, 6x faster than a bincount
        counts = cv2.calcHist([labels], [0], None, [num_layers + 1], [0, num_layers + 1])
        return counts.ravel()[1:] > 0
    present: np.ndarray = np.bincount(labels.ravel(), minlength=num_layers + 1)[1:] > 0
    return present


def drop_empty_layers(labels: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber the layers so that none is empty, merging each empty layer's depth range
    into the layer below it (the one above, for the farthest).

    Cuts are chosen on the depth histogram; a layer that lived only on depth ramps or in
    speckles can be left with no pixel once edges and islands are settled, and an empty
    layer file helps nobody. A stack with fewer than two layers holding pixels (a flat
    depth map) is left as it is: a parallax needs two layers.
    """
    present = _labels_present(labels, cuts.size + 1)
    if present.all() or present.sum() < 2:
        return labels, cuts
    layers = np.flatnonzero(present)  # 0-based; cuts[i - 1] is layer i's lower bound
    renumber = np.zeros(256 if labels.dtype == np.uint8 else present.size + 1, labels.dtype)
    renumber[1 : present.size + 1] = np.cumsum(present).astype(labels.dtype)
    compact: np.ndarray = (
        cv2.LUT(labels, renumber) if labels.dtype == np.uint8 else renumber[labels]
    )
    kept: np.ndarray = cuts[layers[1:] - 1]
    return compact, kept
