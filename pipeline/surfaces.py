"""Surfaces: the depth map split into pieces that each follow one smooth surface.

In disparity (nearness), every plane of the world is an affine function of the pixel
coordinates, so a floor or a wall receding across the frame is one smooth surface however
much of the depth range it spans, and an object standing on the floor is another, even
where the two meet with no step in depth (the object rises while the floor recedes).
Layers are then made of whole surfaces (:func:`pipeline.cuts.group_surfaces`, in
:func:`occlusion_order`), so a floor is not sliced into strips by global depth thresholds.

:func:`find_surfaces` fits one quadratic surface (an affine plane plus a little curvature
for lens distortion and model bias) per region, in two stages:

1. **fit** (:func:`_fit_regions`), from small seed cells: neighbouring regions merge,
   cheapest first, while one surface explains both about as well as their own (the
   least-squares cost of the merge, per pixel of the smaller, below ``merge_tolerance``
   squared): the strips of a floor become one floor, two objects a step apart stay two.
   Then, as k-means does with means, every pixel takes the nearby surface that predicts
   it best and every surface is refitted; twice over.
2. **tidy** (:func:`_tidy`): pieces of one surface that a single quadratic cannot follow
   (a model's slow bias) are joined where they continue each other; a peak the blur left
   without a flat top becomes a region (a small object); a region lying on a much larger
   one's surface joins it (the wall seen between spokes); thin structures (a wire, a
   stick) go with the surface they hang from; fragments go to the surface that explains
   them, or stay when none does.

Ramps (where the depth map blurs across an object's edge) belong to no surface; they are
left to :func:`pipeline.edges.assign_ramps`.

:func:`lift_thin`, after :func:`find_surfaces`, joins structures too thin for the depth
map itself (a few of its own pixels: a wheel's rim and spokes, which it reads far behind
their hub) to the body they hang from, and gives their pixels the body's reading.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from pipeline.cuts import nearest_kept

ANALYSIS_SIDE = 384
"""Surfaces are found on the depth map brought down to this longer side: they are large
structures, and their edges are settled at full size by the ramp and edge steps."""
TERMS = 6
"""1, u, v, u², uv, v² of the normalised coordinates u, v in [-1, 1]."""


@dataclass(frozen=True)
class Surfaces:
    """Regions of one depth map and the surface each follows.

    ``regions`` is int32 (H, W): 0 where no surface was fitted (ramps), else 1 … n.
    ``models`` is (n + 1, :data:`TERMS`); row 0 is unused. ``moments`` is (n + 1, 3):
    each region's pixel count, sum and sum of squares of nearness."""

    regions: np.ndarray
    models: np.ndarray
    moments: np.ndarray

    @property
    def count(self) -> int:
        return int(self.models.shape[0] - 1)

    def means(self) -> np.ndarray:
        """Each region's mean nearness (index 0 unused)."""
        mean: np.ndarray = self.moments[:, 1] / np.maximum(self.moments[:, 0], 1.0)
        return mean


def design(shape: tuple[int, int]) -> np.ndarray:
    """The quadratic terms at every pixel of an image of ``shape``: (H, W, TERMS)."""
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width]
    return terms_at(ys, xs, shape)


def terms_at(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The quadratic terms at pixels (``ys``, ``xs``) of an image of ``shape``:
    ``ys.shape + (TERMS,)``."""
    height, width = shape
    u = ((xs + 0.5) / width * 2.0 - 1.0).astype(np.float32)
    v = ((ys + 0.5) / height * 2.0 - 1.0).astype(np.float32)
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1)


def find_surfaces(
    nearness: np.ndarray,
    seeds: np.ndarray,
    *,
    ignore: np.ndarray,
    cell: int = 16,
    rounds: int = 2,
    iterations: int = 2,
    reach: int = 4,
    merge_tolerance: float = 0.012,
    min_pixels: int = 16,
    band: float = 0.04,
    join_tolerance: float = 0.025,
    join_share: float = 0.005,
    keep_tolerance: float = 0.05,
    min_share: float = 0.002,
    min_region: int = 64,
) -> Surfaces:
    """Split ``nearness`` into regions that each follow one smooth surface.

    ``seeds`` is any label map to start from (the depth-threshold layers); its pieces
    within ``cell``-pixel squares are the first regions. ``ignore`` marks pixels that
    belong to no surface (ramps). A pixel may move to a surface found within ``reach``
    pixels; regions smaller than ``min_pixels`` are speckle. Two neighbouring regions
    merge when fitting one surface to both costs at most ``merge_tolerance`` (in
    nearness, RMS over the smaller region) more than fitting each its own; pieces meeting
    within ``band`` (a share of the longer side) join where their surfaces differ there by
    at most ``join_tolerance``, if both hold ``join_share`` of the pixels. Regions under
    ``min_share`` of the pixels are fragments: they join a neighbour that predicts them
    within ``keep_tolerance``, and otherwise stay (a small object)."""
    if nearness.shape != seeds.shape or nearness.shape != ignore.shape:
        raise ValueError(
            f"nearness {nearness.shape}, seeds {seeds.shape} and ignore {ignore.shape} "
            "must have one shape"
        )
    terms = design(nearness.shape)
    values = nearness.astype(np.float32)
    first = _connected(
        np.where(ignore, 0, _cells(seeds.astype(np.int32), cell=cell)), min_pixels=min_pixels
    )
    fitted = _fit_regions(
        terms,
        values,
        first,
        ignore=ignore,
        rounds=rounds,
        iterations=iterations,
        reach=reach,
        tolerance=merge_tolerance,
        min_pixels=min_pixels,
    )
    width = max(1, round(band * max(nearness.shape)))
    regions = _tidy(
        terms,
        values,
        fitted,
        ignore=ignore,
        width=width,
        tolerance=join_tolerance,
        keep_tolerance=keep_tolerance,
        join_min=max(min_region, round(join_share * nearness.size)),
        fragment=max(min_region, round(min_share * nearness.size)),
        min_region=min_region,
    )
    models = _fit(terms, values, regions)
    return Surfaces(regions, models, _moments(values, regions))


def _fit_regions(
    terms: np.ndarray,
    values: np.ndarray,
    regions: np.ndarray,
    *,
    ignore: np.ndarray,
    rounds: int,
    iterations: int,
    reach: int,
    tolerance: float,
    min_pixels: int,
) -> np.ndarray:
    """Stage 1 of :func:`find_surfaces`: merge cheapest first, then move pixels to the
    surface that predicts them best and refit, ``rounds`` times."""
    for _ in range(rounds):
        regions = _merge(terms, values, regions, tolerance=tolerance)
        for _ in range(iterations):
            models = _fit(terms, values, regions)
            regions = _reassign(terms, values, regions, models, ignore=ignore, reach=reach)
            regions = _connected(regions, min_pixels=min_pixels)
    return regions


def _tidy(
    terms: np.ndarray,
    values: np.ndarray,
    regions: np.ndarray,
    *,
    ignore: np.ndarray,
    width: int,
    tolerance: float,
    keep_tolerance: float,
    join_min: int,
    fragment: int,
    min_region: int,
) -> np.ndarray:
    """Stage 2 of :func:`find_surfaces`: join continuations, add peaks, adopt regions
    lying on larger ones, give back speckle, follow thin structures and settle fragments."""
    models = _fit(terms, values, regions)
    regions = _join_continuations(
        terms, regions, models, band=width, tolerance=tolerance, min_pixels=join_min
    )
    regions = _add_peaks(
        terms,
        values,
        regions,
        ignore=ignore,
        reach=width,
        tolerance=tolerance,
        min_pixels=min_region,
    )
    regions = _adopt(terms, values, regions, tolerance=tolerance)
    regions = _absorb_small(regions, ignore=ignore, min_pixels=min_region)
    regions = _follow_thin(
        terms, values, regions, ignore=ignore, tolerance=keep_tolerance, min_pixels=fragment
    )
    return _settle_fragments(
        terms, values, regions, reach=width, tolerance=keep_tolerance, min_pixels=fragment
    )


def upsample(surfaces: Surfaces, nearness: np.ndarray) -> np.ndarray:
    """``surfaces.regions`` brought to ``nearness``'s (larger) size: nearest-neighbour,
    then each pixel near a region boundary takes, of its own region and those one analysis
    pixel away on either axis, the one whose surface predicts its nearness best, so edges
    follow the full-size depth rather than the analysis grid."""
    height, width = nearness.shape
    small = surfaces.regions
    if small.shape == (height, width):
        return small
    up = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
    step = math.ceil(max(height / small.shape[0], width / small.shape[1]))
    # pixels near a boundary: found on the analysis grid (one cell each way), then enlarged
    as_float = small.astype(np.float32)  # exact for region numbers below 2**24
    square = np.ones((3, 3), np.uint8)
    boundary = (cv2.dilate(as_float, square) != cv2.erode(as_float, square)).astype(np.uint8)
    edge = cv2.resize(boundary, (width, height), interpolation=cv2.INTER_NEAREST) > 0
    ys, xs = np.nonzero(edge)
    offsets = ((-step, 0), (step, 0), (0, -step), (0, step))
    candidates = [
        up[np.clip(ys + dy, 0, height - 1), np.clip(xs + dx, 0, width - 1)] for dy, dx in offsets
    ]
    own = up[ys, xs]
    contested = np.logical_or.reduce([c != own for c in candidates]) if candidates else own < 0
    ys, xs, own = ys[contested], xs[contested], own[contested]
    candidates = [c[contested] for c in candidates]
    if ys.size == 0:
        return up
    terms = terms_at(ys, xs, (height, width))
    values = nearness[ys, xs]
    best = best_predicting(
        own, candidates, lambda regions: _error(surfaces.models, terms, regions, values)
    )
    up[ys, xs] = best
    return up


def _cells(seeds: np.ndarray, *, cell: int) -> np.ndarray:
    """``seeds`` split further by a grid of ``cell``-pixel squares: first regions small
    enough that none holds much of two surfaces."""
    height, width = seeds.shape
    rows, cols = np.mgrid[0:height, 0:width]
    per_row = (width + cell - 1) // cell
    grid = (rows // cell) * per_row + cols // cell
    result: np.ndarray = np.where(seeds > 0, grid * (int(seeds.max()) + 1) + seeds, 0)
    return result.astype(np.int64)


FLAT = 0.01
"""A region whose nearness varies less than this (standard deviation) is not split."""


def split_widest(surfaces: Surfaces, nearness: np.ndarray, *, count: int) -> Surfaces:
    """Split regions until there are ``count``: each time the one whose spread of
    nearness costs most, in two at its least-error threshold (a receding floor into a
    far and a near part). Used only where more layers are asked than surfaces found."""
    regions = surfaces.regions.copy()
    values = nearness.astype(np.float64)
    while int(regions.max()) < count:
        moments = _moments(values, regions)
        spread = moments[:, 2] - moments[:, 1] ** 2 / np.maximum(moments[:, 0], 1.0)
        spread[0] = 0.0
        widest = int(np.argmax(spread))
        if spread[widest] <= (FLAT * FLAT) * moments[widest, 0]:
            break  # every region is flat: a split would only cut noise
        own = regions == widest
        ordered = np.sort(values[own])
        n = np.arange(1, ordered.size)
        first = np.cumsum(ordered)[:-1]
        total = ordered.sum()
        # between-part variance of each split (maximising it minimises the parts' spread)
        gain = first**2 / n + (total - first) ** 2 / (ordered.size - n)
        threshold = ordered[int(np.argmax(gain))]
        regions[own & (values > threshold)] = int(regions.max()) + 1
    if int(regions.max()) == surfaces.count:
        return surfaces
    terms = design(regions.shape)
    return Surfaces(regions, _fit(terms, nearness, regions), _moments(values, regions))


THIN_NATIVE_PIXELS = 4.0
"""A structure this many of the depth map's own pixels wide or less (or of the analysis
map's, where those are larger) is blurred with what lies behind it (:func:`lift_thin`)."""


def lift_thin(
    surfaces: Surfaces, nearness: np.ndarray, *, thin: float, tolerance: float = 0.05
) -> tuple[Surfaces, np.ndarray]:
    """Structures too thin for the depth map join the body they hang from; returns the
    surfaces (joined and refitted) and ``nearness`` with each joined piece lifted to its
    body's mean.

    A depth map blurs anything a few of its own pixels wide with what lies behind, so a
    wheel's rim and spokes, or a stick on a post, read far behind the hub or post they
    hang from, at the depth of whatever else stands there, and would be grouped with that.
    A connected piece of a region is thin when it is at most ``thin`` pixels wide (twice
    its inscribed radius) and so is every piece of its region (a broad surface's pieces,
    such as the wall seen between spokes, lie on it); one that the surface of a broad
    piece around it predicts within ``tolerance`` lies on that surface (a strip of floor
    the blur round an object raised a little) and joins it as it reads. Any other thin
    piece is a thing in front: it joins the nearest-reading piece its ridge climbs to
    (:func:`_climb`), and that piece the one its own ridge climbs to, up to a piece that
    climbs no further."""
    regions = surfaces.regions
    pieces = _connected(regions, min_pixels=1)
    count = int(pieces.max())
    region_of = np.zeros(count + 1, np.int64)
    region_of[pieces.ravel()] = regions.ravel()
    values = nearness.astype(np.float32)
    moments = _moments(values, pieces)
    means = moments[:, 1] / np.maximum(moments[:, 0], 1.0)
    wide = _piece_widths(pieces, count) > thin
    wide[0] = False
    broad = np.zeros(surfaces.count + 1, bool)
    np.logical_or.at(broad, region_of, wide)
    thin_piece = ~wide & ~broad[region_of]
    thin_piece[0] = False
    terms = design(regions.shape)
    reach = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * math.ceil(thin) + 1,) * 2)
    passable = (pieces == 0) | thin_piece[pieces]
    host = np.arange(count + 1)
    lies_on = region_of.copy()
    for piece in np.flatnonzero(thin_piece):
        own = pieces == piece
        around = np.unique(pieces[cv2.dilate(own.view(np.uint8), reach) > 0])
        errors = {
            int(r): float(np.abs(terms[own] @ surfaces.models[r] - values[own]).mean())
            for r in np.unique(region_of[around[wide[around]]])
        }
        best = min(errors, key=errors.__getitem__, default=0)
        if best and errors[best] <= tolerance:
            lies_on[piece] = best
        else:
            host[piece] = _climb(pieces, own, values, means, passable, tolerance=tolerance)
    root = _roots(host)
    joined = root[pieces] != pieces
    lifted = np.where(joined, means[root[pieces]], values).astype(np.float32)
    merged = _compact(np.where(pieces > 0, lies_on[root[pieces]], 0))
    return Surfaces(merged, _fit(terms, lifted, merged), _moments(lifted, merged)), lifted


def _piece_widths(pieces: np.ndarray, count: int) -> np.ndarray:
    """Each piece's width: twice the largest distance from any of its pixels to a pixel
    of another piece (or of none, or the frame's edge), in pixels; index 0 unused."""
    padded = np.pad(pieces, 1, constant_values=-1)
    height, width = pieces.shape
    inner = np.ones(pieces.shape, np.uint8)
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        inner[padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] != pieces] = 0
    # a pixel next to another piece is half a pixel from the boundary
    distance = cv2.distanceTransform(inner, cv2.DIST_L2, 3) + 0.5
    widest = ndimage.maximum(distance, pieces, index=np.arange(count + 1))
    return 2.0 * np.asarray(widest)


def _climb(
    pieces: np.ndarray,
    own: np.ndarray,
    values: np.ndarray,
    means: np.ndarray,
    passable: np.ndarray,
    *,
    tolerance: float,
) -> int:
    """The piece a thin piece hangs from: of the pieces reached by flooding from ``own``
    through ``passable`` pixels (ramps and thin pieces) that read no farther than its mean
    less ``tolerance``, the nearest-reading one, if it reads nearer than the piece."""
    piece = int(pieces[own][0])
    ridge = (passable & (values >= means[piece] - tolerance)).view(np.uint8)
    _, flooded = cv2.connectedComponents(ridge, connectivity=8)
    starts = np.unique(flooded[own & (ridge > 0)])
    along = np.isin(flooded, starts[starts > 0]).view(np.uint8)
    touched = np.unique(pieces[cv2.dilate(along, np.ones((3, 3), np.uint8)) > 0])
    touched = touched[(touched > 0) & (touched != piece)]
    if touched.size == 0:
        return piece
    nearest = int(touched[np.argmax(means[touched])])
    return nearest if means[nearest] > means[piece] else piece


OCCLUSION_STEP = 0.04
"""Where two surfaces meet with less of a step in nearness than this, one stands on or
meets the other (an object's foot on a floor, a wall on it): no occlusion a layer order
must keep (:func:`pipeline.cuts.regroup_surfaces`)."""


def occlusions(surfaces: Surfaces, *, band: float = 0.025) -> dict[tuple[int, int], float]:
    """For each pair of regions that meet, ``(front, back)``: how much nearer the front's
    surface is than the back's, on average, where they meet.

    Regions meet where they come within ``band`` of each other (a share of the image's
    longer side: wider than the ramp a model blurs across an edge). Surfaces, not pixels,
    are compared, so a floor is behind the objects standing on it (along an object's foot
    the two agree; along its sides and top the object is nearer) even though the floor's
    mean nearness may exceed theirs."""
    regions = surfaces.regions
    terms = design(regions.shape)
    present = [r for r in range(1, surfaces.count + 1) if surfaces.moments[r, 0] > 0]
    width = max(2, round(band * max(regions.shape)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    near = {r: cv2.dilate((regions == r).astype(np.uint8), kernel) > 0 for r in present}
    steps: dict[tuple[int, int], float] = {}
    for index, a in enumerate(present):
        for b in present[index + 1 :]:
            zone = near[a] & near[b]
            if not zone.any():
                continue
            x = terms[zone]
            step = float(np.mean(x @ surfaces.models[a] - x @ surfaces.models[b]))
            steps[(a, b) if step > 0 else (b, a)] = abs(step)
    return steps


def occlusion_order(
    surfaces: Surfaces, steps: dict[tuple[int, int], float] | None = None
) -> list[int]:
    """The regions back to front: each after every neighbour it stands in front of
    (``steps``, from :func:`occlusions`). Regions with no say between them go farthest
    (least mean) first."""
    steps = occlusions(surfaces) if steps is None else steps
    means = surfaces.means()
    present = [r for r in range(1, surfaces.count + 1) if surfaces.moments[r, 0] > 0]
    behind: dict[int, set[int]] = {r: set() for r in present}  # r: the regions r occludes
    for front, back in steps:
        behind[front].add(back)
    order: list[int] = []
    remaining = set(present)
    while remaining:
        ready = [r for r in remaining if not (behind[r] & remaining)]
        # a cycle (noise along a boundary) is broken by the farthest region
        chosen = min(ready or remaining, key=lambda r: float(means[r]))
        order.append(chosen)
        remaining.remove(chosen)
    return order


def _join_continuations(
    terms: np.ndarray,
    regions: np.ndarray,
    models: np.ndarray,
    *,
    band: int,
    tolerance: float,
    min_pixels: int,
) -> np.ndarray:
    """Join neighbouring regions that continue each other: within ``band`` pixels of
    where they meet, their surfaces differ by at most ``tolerance`` on average.

    One quadratic cannot follow a whole floor under a model's slow bias, but where two
    pieces of it meet, their surfaces agree in value and slope. An object standing on the
    floor agrees in value only along its foot and parts at once (it rises, the floor
    recedes); elsewhere a step in depth separates it."""
    count = int(regions.max()) + 1
    pixels = np.bincount(regions.ravel(), minlength=count)
    big = [r for r in range(1, count) if pixels[r] >= min_pixels]
    distance = {
        r: cv2.distanceTransform((regions != r).astype(np.uint8), cv2.DIST_L2, 3) for r in big
    }
    root = np.arange(count)

    def find(r: int) -> int:
        while root[r] != r:
            r = int(root[r])
        return r

    for a, b in sorted(_neighbours(regions)):
        if a not in distance or b not in distance:
            continue
        near = ((regions == a) & (distance[b] <= band)) | ((regions == b) & (distance[a] <= band))
        x = terms[near]
        gap = float(np.mean(np.abs(x @ models[a] - x @ models[b]))) if x.size else np.inf
        if gap <= tolerance:
            root[find(b)] = find(a)
    roots = np.array([find(r) for r in range(count)])
    return _connected(roots[regions], min_pixels=1)


def _adopt(
    terms: np.ndarray, values: np.ndarray, regions: np.ndarray, *, tolerance: float
) -> np.ndarray:
    """A region lying on a much larger region's surface joins it, touching or not: the
    wall seen between a wheel's spokes, a floor fragment left along a blurred edge.
    Smallest first; the larger region's surface must predict the smaller's pixels within
    ``tolerance`` on average, and be at least four times its size."""
    models = _fit(terms, values, regions)
    count = models.shape[0]
    pixels = np.bincount(regions.ravel(), minlength=count).astype(np.int64)
    flat, x, y = regions.ravel(), terms.reshape(-1, TERMS), values.ravel()
    order = np.argsort(flat, kind="stable")
    starts = np.searchsorted(flat[order], np.arange(count + 1))
    root = np.arange(count)
    for small in sorted(range(1, count), key=lambda r: pixels[r]):
        hosts = np.flatnonzero(pixels >= 4 * pixels[small])
        hosts = hosts[(hosts > 0) & (root[hosts] == hosts)]
        if pixels[small] == 0 or hosts.size == 0:
            continue
        own = order[starts[small] : starts[small + 1]]
        error = np.abs(x[own] @ models[hosts].T - y[own, None]).mean(axis=0)
        best = int(np.argmin(error))
        if error[best] <= tolerance:
            host = int(hosts[best])
            root[small] = host
            pixels[host] += pixels[small]
    for index in range(count):
        while root[root[index]] != root[index]:
            root[index] = root[root[index]]
    return _compact(np.where(regions > 0, root[regions], 0))


def _add_peaks(
    terms: np.ndarray,
    values: np.ndarray,
    regions: np.ndarray,
    *,
    ignore: np.ndarray,
    reach: int,
    tolerance: float,
    min_pixels: int,
) -> np.ndarray:
    """Ramp pixels nearer (or farther) than every surface within ``reach`` by more than
    ``tolerance`` become regions of their own: an object so small or thin that the
    model's blur left it no flat top is a peak, not a slope between two surfaces."""
    models = _fit(terms, values, regions)
    low = np.full(values.shape, np.inf, np.float32)
    high = np.full(values.shape, -np.inf, np.float32)
    for r in range(1, models.shape[0]):
        distance = cv2.distanceTransform((regions != r).astype(np.uint8), cv2.DIST_L2, 3)
        around = ignore & (distance <= reach)
        if not around.any():
            continue
        predicted = terms[around] @ models[r]
        low[around] = np.minimum(low[around], predicted)
        high[around] = np.maximum(high[around], predicted)
    seen = np.isfinite(low)
    peaks = ignore & seen & ((values > high + tolerance) | (values < low - tolerance))
    pieces = _connected(peaks.astype(np.int32), min_pixels=min_pixels)
    if not pieces.any():
        return regions
    result: np.ndarray = np.where(pieces > 0, pieces + int(regions.max()), regions)
    return result.astype(np.int32)


def _follow_thin(
    terms: np.ndarray,
    values: np.ndarray,
    regions: np.ndarray,
    *,
    ignore: np.ndarray,
    tolerance: float,
    min_pixels: int,
    thin: int = 4,
) -> np.ndarray:
    """Thin structures (a wire, a stick, a pole: up to ``thin`` px wide) go with the
    surface they are attached to: every pixel of a thin structure its own surface misses
    by more than ``tolerance`` is claimed by a neighbouring region's surface (one of
    ``min_pixels`` at least) that predicts it within ``tolerance``, and the claim spreads
    along the structure pixel by pixel (8-connected), however long it is.

    A thin part is too narrow to seed a region of its own and farther from its body than
    :func:`_reassign` looks, so without this it stays painted into the surface behind."""
    models = _fit(terms, values, regions)
    height, width = regions.shape
    labels = regions.ravel().copy()
    x, y = terms.reshape(-1, TERMS), values.ravel()
    error = np.where(labels > 0, np.abs(predict(models, terms, regions).ravel() - y), np.inf)
    missed = ((error > tolerance) & ~ignore.ravel()).reshape(regions.shape).astype(np.uint8)
    # only what is thin: a broad patch the surfaces miss (a model's bias) is not a wire
    broad = cv2.morphologyEx(missed, cv2.MORPH_OPEN, np.ones((thin + 1, thin + 1), np.uint8))
    misfit = ((missed > 0) & (broad == 0)).ravel()
    if not misfit.any():
        return regions
    steps = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]

    def neighbours(index: int) -> list[int]:
        row, col = divmod(index, width)
        return [
            (row + dy) * width + col + dx
            for dy, dx in steps
            if 0 <= row + dy < height and 0 <= col + dx < width
        ]

    pixels = np.bincount(labels, minlength=models.shape[0])
    hosts = np.where(pixels[labels] >= min_pixels, labels, 0)  # fragments claim nothing
    fitting = np.where(misfit, 0, hosts).reshape(regions.shape)
    frontier = [  # (misfit pixel, the region of a fitting neighbour)
        (int(index), int(region))
        for dy, dx in steps
        for index, region in zip(
            *_pairs(misfit.reshape(regions.shape), _shifted(fitting, dy, dx)), strict=True
        )
    ]
    while frontier:
        index, region = frontier.pop()
        claim = abs(float(x[index] @ models[region]) - float(y[index]))
        if claim > tolerance or claim >= error[index]:
            continue
        labels[index], error[index] = region, claim
        frontier.extend((n, region) for n in neighbours(index) if misfit[n] and labels[n] != region)
    return labels.reshape(regions.shape)


def _pairs(mask: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flat indices of ``mask``'s pixels where ``labels`` is set, and those labels."""
    index = np.flatnonzero(mask.ravel() & (labels.ravel() > 0))
    return index, labels.ravel()[index]


def _settle_fragments(
    terms: np.ndarray,
    values: np.ndarray,
    regions: np.ndarray,
    *,
    reach: int,
    tolerance: float,
    min_pixels: int,
) -> np.ndarray:
    """Regions under ``min_pixels`` join the larger neighbour (within ``reach``) whose
    surface predicts them best, if it does so within ``tolerance`` on average: a piece of
    floor cut off by noise goes back to the floor. One no neighbour explains stands out
    from everything around it, as a small object does, and stays."""
    models = _fit(terms, values, regions)
    pixels = np.bincount(regions.ravel(), minlength=models.shape[0])
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    root = np.arange(models.shape[0])
    for small in np.flatnonzero((pixels < min_pixels) & (pixels > 0)):
        if small == 0:
            continue
        own = regions == small
        around = np.unique(regions[cv2.dilate(own.astype(np.uint8), kernel) > 0])
        hosts = [int(r) for r in around if r > 0 and pixels[r] >= min_pixels]
        if not hosts:
            continue
        x, y = terms[own], values[own]
        error = [float(np.abs(x @ models[h] - y).mean()) for h in hosts]
        if min(error) <= tolerance:
            root[small] = hosts[int(np.argmin(error))]
    return _compact(np.where(regions > 0, root[regions], 0))


def _compact(regions: np.ndarray) -> np.ndarray:
    """Renumber the regions present 1 … n (0 stays 0); a region may be in pieces."""
    values, inverse = np.unique(regions, return_inverse=True)
    offset = 0 if values[0] == 0 else 1
    result: np.ndarray = (inverse.reshape(regions.shape) + offset).astype(np.int32)
    return result


def _absorb_small(regions: np.ndarray, *, ignore: np.ndarray, min_pixels: int) -> np.ndarray:
    """Regions under ``min_pixels`` (fragments along blurred edges) give their pixels to
    the nearest region that stays."""
    pixels = np.bincount(regions.ravel())
    small = (pixels[regions] < min_pixels) & (regions > 0)
    kept = (regions > 0) & ~small
    if not small.any() or not kept.any():
        return _compact(np.where(small, 0, regions))
    grown = np.where(small & ~ignore, nearest_kept(regions, kept), np.where(small, 0, regions))
    return _compact(grown)


def predict(models: np.ndarray, terms: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Each pixel's nearness as its region's surface predicts it (0 where unfitted)."""
    predicted: np.ndarray = np.einsum("...k,...k->...", terms, models.astype(np.float32)[regions])
    return np.where(regions > 0, predicted, 0.0).astype(np.float32)


def best_predicting(
    own: np.ndarray, candidates: list[np.ndarray], error_of: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Per pixel, of its ``own`` region and each map of ``candidates``, the region with the
    least ``error_of`` (each pixel's error under a map of regions)."""
    best, error = own.copy(), error_of(own)
    for candidate in candidates:
        candidate_error = error_of(candidate)
        better = candidate_error < error
        best[better] = candidate[better]
        error[better] = candidate_error[better]
    return best


def _error(
    models: np.ndarray, terms: np.ndarray, regions: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """How far each region's surface misses its pixel's nearness; infinite for region 0."""
    miss = np.abs(predict(models, terms, regions) - values)
    result: np.ndarray = np.where(regions > 0, miss, np.inf)
    return result


# --- fitting ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Normal:
    """Least-squares sufficient statistics per region: XᵀX (n, T, T), Xᵀy (n, T), yᵀy (n,)
    and the pixel count (n,). Sums of two regions' statistics are their union's."""

    xtx: np.ndarray
    xty: np.ndarray
    yty: np.ndarray
    pixels: np.ndarray


def _normal(terms: np.ndarray, values: np.ndarray, regions: np.ndarray) -> _Normal:
    count = int(regions.max()) + 1
    flat = regions.ravel()
    x = terms.reshape(-1, TERMS).astype(np.float64)
    y = values.ravel().astype(np.float64)
    xtx = np.zeros((count, TERMS, TERMS))
    for i, j in zip(*np.triu_indices(TERMS), strict=True):  # XᵀX is symmetric
        xtx[:, i, j] = xtx[:, j, i] = np.bincount(flat, x[:, i] * x[:, j], count)
    xty = np.stack([np.bincount(flat, x[:, i] * y, count) for i in range(TERMS)], -1)
    return _Normal(
        xtx=xtx,
        xty=xty,
        yty=np.bincount(flat, y * y, count),
        pixels=np.bincount(flat, minlength=count).astype(np.float64),
    )


def _solve(xtx: np.ndarray, xty: np.ndarray) -> np.ndarray:
    """Ridge-regularised solution: a small region's curvature terms stay near zero."""
    ridge = 1e-3 * np.maximum(xtx[..., 0, 0], 1.0)[..., None, None] * np.eye(TERMS)
    ridge[..., 0, 0] = 1e-9
    solved: np.ndarray = np.linalg.solve(xtx + ridge, xty[..., None])[..., 0]
    return solved


def _sse(normal: _Normal, index: int | np.ndarray, model: np.ndarray) -> np.ndarray:
    """Sum of squared residuals of region(s) ``index`` under ``model``."""
    xtx, xty, yty = normal.xtx[index], normal.xty[index], normal.yty[index]
    quad = np.einsum("...i,...ij,...j->...", model, xtx, model)
    result: np.ndarray = np.maximum(yty - 2.0 * np.einsum("...i,...i->...", model, xty) + quad, 0)
    return result


def _fit(terms: np.ndarray, values: np.ndarray, regions: np.ndarray) -> np.ndarray:
    normal = _normal(terms, values, regions)
    models = _solve(normal.xtx, normal.xty)
    models[0] = 0.0
    return models


def _moments(values: np.ndarray, regions: np.ndarray) -> np.ndarray:
    count = int(regions.max()) + 1
    flat, v = regions.ravel(), values.ravel().astype(np.float64)
    return np.stack(
        [
            np.bincount(flat, minlength=count).astype(np.float64),
            np.bincount(flat, v, count),
            np.bincount(flat, v * v, count),
        ],
        axis=-1,
    )


# --- assignment ---------------------------------------------------------------------------------


def _reassign(
    terms: np.ndarray,
    values: np.ndarray,
    regions: np.ndarray,
    models: np.ndarray,
    *,
    ignore: np.ndarray,
    reach: int,
) -> np.ndarray:
    """Each pixel to the best-predicting surface among its own and those ``reach`` pixels
    away at the eight compass points."""
    shifts = [(dy * reach, dx * reach) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    candidates = [_shifted(regions, dy, dx) for dy, dx in shifts if (dy, dx) != (0, 0)]
    best = best_predicting(
        regions, candidates, lambda labels: _error(models, terms, labels, values)
    )
    best[ignore] = 0
    return best


def _shifted(labels: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``labels`` moved by (dy, dx), zero where nothing moved in."""
    height, width = labels.shape
    out = np.zeros_like(labels)
    ys, yd = slice(max(0, -dy), height - max(0, dy)), slice(max(0, dy), height - max(0, -dy))
    xs, xd = slice(max(0, -dx), width - max(0, dx)), slice(max(0, dx), width - max(0, -dx))
    out[yd, xd] = labels[ys, xs]
    return out


def _connected(regions: np.ndarray, *, min_pixels: int) -> np.ndarray:
    """Renumber so each region is one connected piece (4-connected), 1 … n; pieces under
    ``min_pixels`` become 0 (speckle)."""
    out = np.zeros(regions.shape, np.int32)
    next_label = 1
    for index, box in enumerate(ndimage.find_objects(regions), start=1):
        if box is None:
            continue
        mask = (regions[box] == index).astype(np.uint8)
        count, pieces, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
        keep = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= min_pixels) + 1
        renumber = np.zeros(count, np.int32)
        renumber[keep] = np.arange(next_label, next_label + keep.size)
        next_label += keep.size
        view = out[box]
        view[mask > 0] = renumber[pieces[mask > 0]]
    return out


# --- merging ------------------------------------------------------------------------------------


def _neighbours(regions: np.ndarray, *, gap: int = 2) -> set[tuple[int, int]]:
    """Pairs of regions that touch, or face each other across at most ``gap`` pixels of
    unfitted ramp."""
    pairs: set[tuple[int, int]] = set()
    for dy, dx in [(0, d) for d in range(1, gap + 2)] + [(d, 0) for d in range(1, gap + 2)]:
        a = regions[: regions.shape[0] - dy, : regions.shape[1] - dx]
        b = regions[dy:, dx:]
        touching = (a > 0) & (b > 0) & (a != b)
        codes = np.unique(np.minimum(a, b)[touching] * (1 << 20) + np.maximum(a, b)[touching])
        pairs |= {(int(c >> 20), int(c & ((1 << 20) - 1))) for c in codes}
    return pairs


def _merge(
    terms: np.ndarray, values: np.ndarray, regions: np.ndarray, *, tolerance: float
) -> np.ndarray:
    """Merge neighbouring regions, cheapest first, while one surface explains both.

    Cheapest first matters: pieces of one surface join at no cost before any piece of a
    floor is weighed against an object standing on it, and by then each is whole, so the
    crease where they meet costs what it should over the whole object."""
    normal = _normal(terms, values, regions)
    own = _solve(normal.xtx, normal.xty)
    own_sse = _sse(normal, np.arange(normal.pixels.size), own)
    parent = np.arange(normal.pixels.size)
    touching: dict[int, set[int]] = {}
    for a, b in _neighbours(regions):
        touching.setdefault(a, set()).add(b)
        touching.setdefault(b, set()).add(a)
    version = np.zeros(normal.pixels.size, np.int64)

    def costs(a: int, others: list[int]) -> np.ndarray:
        """The price of merging ``a`` with each of ``others`` (one batched solve)."""
        b = np.asarray(others)
        xtx, xty = normal.xtx[a] + normal.xtx[b], normal.xty[a] + normal.xty[b]
        joint = _solve(xtx, xty)
        extra = (
            _sse(normal, np.full(b.size, a), joint)
            - own_sse[a]
            + _sse(normal, b, joint)
            - own_sse[b]
        )
        smaller = np.maximum(np.minimum(normal.pixels[a], normal.pixels[b]), 1.0)
        result: np.ndarray = extra / smaller
        return result

    limit = tolerance * tolerance
    heap = []
    for a, around in touching.items():
        later = sorted(b for b in around if b > a)
        if later:
            heap += [(float(c), a, b, 0, 0) for c, b in zip(costs(a, later), later, strict=True)]
    heapq.heapify(heap)
    while heap:
        price, a, b, version_a, version_b = heapq.heappop(heap)
        if version[a] != version_a or version[b] != version_b:
            continue  # one of them has changed since: a fresh entry is in the heap
        if price > limit:
            break
        # b joins a: pool the statistics, refit, and take over b's neighbours
        for name in ("xtx", "xty", "yty", "pixels"):
            getattr(normal, name)[a] += getattr(normal, name)[b]
        own[a] = _solve(normal.xtx[a], normal.xty[a])
        own_sse[a] = _sse(normal, a, own[a])
        parent[b] = a
        version[a] += 1
        version[b] += 1
        for other in touching.pop(b):
            touching[other].discard(b)
            if other != a:
                touching[other].add(a)
                touching[a].add(other)
        touching[a].discard(b)
        neighbours = sorted(touching[a])
        if neighbours:
            for price_now, other in zip(costs(a, neighbours), neighbours, strict=True):
                first, second = min(a, other), max(a, other)
                entry = (float(price_now), first, second, version[first], version[second])
                heapq.heappush(heap, entry)
    merged = _roots(parent)[regions]
    return _connected(np.where(regions > 0, merged, 0), min_pixels=1)


def _roots(parent: np.ndarray) -> np.ndarray:
    """Each index's root in a union-find ``parent`` array."""
    root = parent.copy()
    for index in range(root.size):
        while root[root[index]] != root[index]:
            root[index] = root[root[index]]
    return root
