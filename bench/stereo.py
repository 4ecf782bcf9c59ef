"""Real stereo novel view: layers of the left photo moved to the right camera, scored
against the real right photo.

    python -m bench.stereo [--smoke] [--json] [--images DIR]

The scene is the Middlebury 2014 "Motorcycle" pair (Scharstein et al., GCPR 2014) as
scikit-image ships it (``skimage.data.stereo_motorcycle``: 741×500, the left and right
views and the left view's true disparity in pixels, 7–60, ``inf`` where unknown, 7 %).

One run measures every method under two protocols (``PROTOCOLS``), ``equal assembly`` and
``issue``, each with its own tables and target line. They share everything but four
choices, each a field of ``BenchProtocol`` that the one code path of its step reads.

Shared by both protocols:

- **Disparity.** Unknown pixels are filled along their row from the farther side: each
  takes the smaller of the nearest known disparities to its left and right (a hole is
  background that a nearer object hides from the other camera). Nearness is this disparity
  min-max normalised (``nearness_from_raw``, kind disparity).
- **Depth kinds.** ``full``: the filled true disparity at full resolution. ``low-res``: it
  shrunk 4× (``INTER_AREA``) and blurred (Gaussian σ 1 px at that size), brought back to
  the canvas by ``nearness_from_raw(..., canvas_size=...)`` as a model's output is. Every
  method gets the same ``DepthEstimate``, the same 8-bit left image and the layer count.
- **Methods** (``METHOD_NOTES``) return ``pipeline.layers.Layer`` objects, farthest first.
  ``strata`` is ``pipeline.stack.build_stack`` with the built-in fill, as
  ``bench/quality.py``'s ``strata`` (and a job) runs it: soft edges and its own fill, the
  same layers under both protocols (made once, scored twice). The peers cut the nearness at
  their own thresholds into a hard label map (empty labels dropped, as Strata drops empty
  layers); their layers have hard 0/1 alpha and an opaque background, Telea-filled
  (radius 5) behind every nearer layer. Their middle layers depend on the protocol.
- **Render.** Each layer moves by one shift: the mean *true* disparity (known pixels only,
  full-resolution pixels) over the pixels it shows in the composite (its alpha times the
  clearness of every nearer layer). The right camera sees a left pixel at ``x - d``, so a
  layer moves left by its shift: colour premultiplied by alpha, bilinear
  (``cv2.warpAffine``), transparent outside the frame; then "over", back to front.
- **References** (a floor and a ceiling, no layer count). ``one flat plane``: the left
  image moved by the mean true disparity. ``per-pixel warp``: the left image moved pixel by
  pixel with the filled disparity, z-buffered (the nearer pixel wins), holes from the
  farther side along the row.
- **Scores.** PSNR (peak 1, RGB) against the real right image. The headline (``psnr_db``)
  is over the protocol's scored mask; ``revealed_db`` is over the same *revealed* mask in
  both: right-view pixels no left pixel lands on, inside the left view's frame and
  ``BORDER`` px inside the frame: what the right camera sees behind the nearer objects, so
  only the layers' fill can get it right (ghosts and halos score here).

The four choices:

=====================  ==============================  =====================================
choice                 ``equal assembly``              ``issue``
=====================  ==============================  =====================================
peers' middle layers   Telea-filled behind nearer      hard masks of their own pixels, no
                       layers within a job's margin    fill (the background alone is filled)
headline mask          *seen*: pixels seen by both     every pixel left of ``width - ceil(max
                       cameras with a known            disparity)`` (60 px at full size),
                       disparity, ``BORDER`` px in     revealed pixels and unknown
                                                       disparities included, no border
flat plane             moved bilinearly by the mean    moved by the mean rounded to whole
                                                       pixels
per-pixel warp         left image sampled bilinearly   each left pixel's colour forward-
                       at ``x + d_right`` (the right   splatted to the nearest pixel of
                       view's disparity, splatted to   ``x - d``
                       the two pixels around ``x-d``)
=====================  ==============================  =====================================

The *seen* mask is the pixels that the forward warp of the left view's known disparities
lands on (each splatted to the two pixels around ``x - d``, so a slanted surface leaves no
cracks); it excludes the strip at the right edge that the shift pushes out of the left
view. The margin of a peer's middle layer under ``equal assembly`` is the one a Strata job
fills: the preview's sway (``PARALLAX_AMPLITUDE`` of the width) times one minus the layer's
parallax (its mean nearness, background 0 … foreground 1), plus 2 px, as ``bench/quality.py``'s
``quantile+telea`` builds them.

``issue`` is the protocol issue 11's figures were measured with (an earlier, uncommitted
harness: strata 17.41 / 17.18, quantiles 17.62 / 17.14, k-means 17.85 / 17.41, flat 13.68,
per-pixel warp 23.54, full / low-res depth at 4 layers). Here it gives the peers and the
references back within 0.1–0.5 dB: k-means 17.97 / 17.45, quantiles 18.15 / 17.07, flat
13.70, warp 23.11 (Strata's own row has moved with the pipeline since).

``equal assembly`` is fairer to the peers. Under ``issue`` Strata's middle layers carry a
fill behind nearer objects and the peers' do not, so wherever a nearer layer moves off a
middle one a peer shows the background's fill (a farther surface) where Strata shows the
middle surface continued; and its headline mask mixes those revealed pixels, and pixels
whose disparity is unknown, into the score. The difference it measures is then partly fill
against no fill, not only cuts against cuts (the peers' revealed rows fall by up to 4 dB,
Strata's do not move). ``equal assembly`` gives every peer the middle-layer fill a job gives
Strata and scores the revealed pixels apart, which lifts the peers' 4-layer rows by
1.3–1.8 dB. (A bilinear move by a fraction of a pixel also blurs a layer a little: the flat
plane at 34.34 px scores 13.82 on the ``issue`` mask, at 34 px 13.70.)

Target (issue 11), under each protocol: Strata at 4 layers ≥ the best peer + 0.5 dB on both
depth kinds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from bench.harness import markdown_table, render_table
from bench.quality import telea
from config.model import DepthMapKind
from pipeline.cuts import layer_parallax
from pipeline.depth import DepthEstimate, nearness_from_raw
from pipeline.fill import fill_hidden
from pipeline.layers import Layer
from pipeline.preview import fill_margins as job_fill_margins
from pipeline.stack import build_stack

LAYER_COUNTS = (2, 3, 4, 5)
SMOKE_COUNTS = (3,)
SMOKE_SCALE = 0.5
DEPTHS = ("full", "low-res")
TARGET_LAYERS = 4
TARGET_MARGIN_DB = 0.5
LOW_RES_FACTOR = 4
LOW_RES_BLUR = 1.0  # Gaussian σ in pixels of the shrunk map
BORDER = 2  # pixels at the frame's edge that the seen and revealed masks never score
GAP_BINS = 256
GAP_MIN_SHARE = 0.0005  # a histogram bin holding less than this share of pixels is empty
KMEANS_LEVELS = 1024
PEERS = ("quantiles", "largest gaps", "k-means")
REFERENCES = ("one flat plane", "per-pixel warp")
VIEW_METHODS = ("strata", "k-means")  # the ones ``--images`` saves, at TARGET_LAYERS


class Method(typing.Protocol):
    """``method(image, depth, count, middle_fill=...) -> layers``, farthest first.
    ``middle_fill``: a peer fills its middle layers behind nearer ones (Strata, which
    always has its own fill, ignores it)."""

    def __call__(
        self, image: np.ndarray, depth: DepthEstimate, count: int, *, middle_fill: bool = True
    ) -> list[Layer]: ...


@dataclass(frozen=True)
class BenchProtocol:
    """How the methods are assembled and scored (see the module's docstring)."""

    name: str
    peer_middle_fill: bool  # the peers' middle layers Telea-filled within a job's margin
    mask: Literal["seen", "left of max disparity"]  # the headline's pixels
    whole_pixel_flat: bool  # the flat plane moves by whole pixels (else bilinearly)
    warp: Literal["sample", "splat"]  # the per-pixel warp samples at x + d_right or splats
    summary: str


EQUAL_ASSEMBLY = BenchProtocol(
    name="equal assembly",
    peer_middle_fill=True,
    mask="seen",
    whole_pixel_flat=False,
    warp="sample",
    summary="every peer's middle layers Telea-filled within a job's margin, as Strata's are; "
    "scored on pixels seen by both cameras, revealed pixels apart; bilinear flat plane; "
    "per-pixel warp samples the left image at x + d_right",
)
ISSUE = BenchProtocol(
    name="issue",
    peer_middle_fill=False,
    mask="left of max disparity",
    whole_pixel_flat=True,
    warp="splat",
    summary="as issue 11 measured it: the peers' middle layers hard masks with no fill "
    "(background filled only); scored on every pixel left of width - max disparity, "
    "revealed and unknown included; flat plane by whole pixels; per-pixel warp splats "
    "colour to the nearest pixel",
)
PROTOCOLS = (EQUAL_ASSEMBLY, ISSUE)


@dataclass(frozen=True)
class StereoPair:
    """A rectified pair and the left view's disparity (pixels: right x = left x - d)."""

    left: np.ndarray  # float32 (H, W, 3) in [0, 1]
    right: np.ndarray  # float32 (H, W, 3) in [0, 1]
    disparity: np.ndarray  # float32 (H, W), finite everywhere (unknown pixels filled)
    known: np.ndarray  # bool (H, W): the true disparity was given, not filled


@dataclass(frozen=True)
class Masks:
    """The right-view pixels each score is taken over, under one protocol."""

    scored: np.ndarray  # bool (H, W): the headline's pixels (the protocol's mask)
    revealed: np.ndarray  # bool (H, W): hidden from the left camera, inside its frame


@dataclass(frozen=True)
class Shot:
    """One method's layers, their shifts and the right view they render."""

    layers: list[Layer]
    shifts: list[float]
    view: np.ndarray
    seconds: float  # making the layers


# --- input -------------------------------------------------------------------------------------


def load_motorcycle(*, scale: float = 1.0) -> StereoPair:
    """The Middlebury 2014 Motorcycle pair shipped with scikit-image, holes filled;
    ``scale`` < 1 shrinks it (disparities scaled with it) for quick checks."""
    from skimage import data

    shipped: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]] = data.stereo_motorcycle
    left, right, disparity = shipped()
    raw = np.asarray(disparity, dtype=np.float32)
    pair = StereoPair(
        left=np.asarray(left, dtype=np.float32) / 255.0,
        right=np.asarray(right, dtype=np.float32) / 255.0,
        disparity=fill_occlusions(raw),
        known=np.isfinite(raw),
    )
    return pair if scale == 1.0 else shrink(pair, scale=scale)


def shrink(pair: StereoPair, *, scale: float) -> StereoPair:
    """The pair at ``scale`` (area resampling; a shrunk pixel is known when all of its
    sources are)."""
    height, width = pair.known.shape
    size = (round(width * scale), round(height * scale))

    def area(values: np.ndarray) -> np.ndarray:
        resized: np.ndarray = cv2.resize(values, size, interpolation=cv2.INTER_AREA)
        return resized

    return StereoPair(
        left=area(pair.left),
        right=area(pair.right),
        disparity=area(pair.disparity) * np.float32(size[0] / width),
        known=area(pair.known.astype(np.float32)) >= 0.999,
    )


def fill_occlusions(disparity: np.ndarray) -> np.ndarray:
    """Non-finite disparities filled along the row from the farther side: the smaller of
    the nearest finite values to the left and to the right (a hole is hidden background).
    A row with no finite value takes the map's smallest finite value."""
    values = np.asarray(disparity, dtype=np.float32)
    holes = ~np.isfinite(values)
    _, filled = fill_rows_from_far(values[..., None], np.where(holes, np.nan, values), holes)
    if np.isnan(filled).any():
        filled[np.isnan(filled)] = values[~holes].min() if (~holes).any() else 0.0
    return filled


def fill_rows_from_far(
    values: np.ndarray, disparity: np.ndarray, holes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each ``holes`` pixel of ``values`` (H, W, C) takes the values of the nearest other
    pixel on its row, to the left or the right, whichever has the smaller ``disparity``
    (the farther); returns the values and the disparity so filled (NaN disparity where a
    row has no pixel to take)."""
    left_values, left_disparity = _carry(values, disparity, holes)
    right_values, right_disparity = _carry(values[:, ::-1], disparity[:, ::-1], holes[:, ::-1])
    right_values, right_disparity = right_values[:, ::-1], right_disparity[:, ::-1]
    pick_right = holes & (np.isnan(left_disparity) | (right_disparity < left_disparity))
    out_values = np.where(holes[..., None], left_values, values)
    out_values[pick_right] = right_values[pick_right]
    out_disparity = np.where(holes, left_disparity, disparity).astype(np.float32)
    out_disparity[pick_right] = right_disparity[pick_right]
    return out_values, out_disparity


def _carry(
    values: np.ndarray, disparity: np.ndarray, holes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The values and disparity of the nearest non-hole pixel at or left of each pixel
    (NaN disparity where there is none)."""
    height, width = holes.shape
    columns = np.where(holes, 0, np.arange(width)[None, :])
    source = np.maximum.accumulate(columns, axis=1)
    seen = np.logical_or.accumulate(~holes, axis=1)
    rows = np.arange(height)[:, None]
    carried = np.where(seen, disparity[rows, source], np.nan).astype(np.float32)
    return values[rows, source], carried


def depth_estimate(
    disparity: np.ndarray,
    kind: str,
    *,
    factor: int = LOW_RES_FACTOR,
    blur_sigma: float = LOW_RES_BLUR,
) -> DepthEstimate:
    """The pipeline's depth input for one depth kind: ``full`` the disparity itself,
    ``low-res`` it shrunk ``factor``× and blurred, resized to the canvas by the pipeline."""
    height, width = disparity.shape
    if kind == "full":
        raw = disparity
    elif kind == "low-res":
        size = (width // factor, height // factor)
        small = cv2.resize(disparity, size, interpolation=cv2.INTER_AREA)
        raw = cv2.GaussianBlur(small, (0, 0), blur_sigma)
    else:
        raise ValueError(f"unknown depth kind {kind!r}; choose from {', '.join(DEPTHS)}")
    return DepthEstimate(
        nearness=nearness_from_raw(raw, kind=DepthMapKind.DISPARITY, canvas_size=(width, height)),
        native_size=(raw.shape[1], raw.shape[0]),
        source="file",
        model=None,
    )


# --- the peers' cuts ---------------------------------------------------------------------------


def quantile_cuts(values: np.ndarray, count: int) -> np.ndarray:
    """Thresholds at equal-count quantiles: each layer holds as many pixels."""
    cuts: np.ndarray = np.quantile(values, np.arange(1, count) / count)
    return cuts


def gap_cuts(
    values: np.ndarray,
    count: int,
    *,
    bins: int = GAP_BINS,
    min_share: float = GAP_MIN_SHARE,
) -> np.ndarray:
    """Thresholds in the middle of the ``count - 1`` widest empty stretches of a
    ``bins``-bin histogram over the values' range (a bin with under ``min_share`` of the
    values counts as empty, so speckle does not close a gap). Of stretches as wide, the one
    whose bordering bins hold the fewest values: where there is no gap, the sparsest place."""
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(0)
    histogram, _ = np.histogram(values, bins=bins, range=(low, high))
    occupied = np.flatnonzero(histogram >= min_share * values.size)
    if occupied.size < 2:
        occupied = np.flatnonzero(histogram > 0)
    widths = np.diff(occupied)
    border = histogram[occupied[:-1]] + histogram[occupied[1:]]
    chosen = np.lexsort((border, -widths))[: count - 1]
    middles = (occupied[chosen] + 1 + occupied[chosen + 1]) / 2.0
    cuts: np.ndarray = np.sort(low + middles * (high - low) / bins)
    return cuts


def kmeans_cuts(values: np.ndarray, count: int, *, levels: int = KMEANS_LEVELS) -> np.ndarray:
    """Thresholds of the exact 1-D k-means (least within-layer sum of squares) of the
    values quantised to ``levels`` equal steps, by dynamic programming over the occupied
    levels: deterministic, no initialisation to get wrong. Fewer thresholds when fewer
    levels are occupied than ``count``."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    low, high = float(flat.min()), float(flat.max())
    if high <= low:
        return np.zeros(0)
    step = (high - low) / levels
    index = np.minimum(((flat - low) / step).astype(np.int64), levels - 1)
    weight = np.bincount(index, minlength=levels).astype(np.float64)
    sums = np.bincount(index, weights=flat, minlength=levels)
    squares = np.bincount(index, weights=flat * flat, minlength=levels)
    used = np.flatnonzero(weight > 0)
    starts = best_partition(weight[used], sums[used], squares[used], count=min(count, used.size))
    cuts: np.ndarray = low + used[starts] * step  # the lower edge of each group's first level
    return cuts


def best_partition(
    weight: np.ndarray, sums: np.ndarray, squares: np.ndarray, *, count: int
) -> np.ndarray:
    """Where each of ``count`` contiguous groups of weighted levels starts, after the first
    (indices into the levels), for the least total within-group sum of squares; exact."""
    size = weight.size
    w, s, q = (np.concatenate([[0.0], np.cumsum(a)]) for a in (weight, sums, squares))
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = (q[None, :] - q[:, None]) - (s[None, :] - s[:, None]) ** 2 / (
            w[None, :] - w[:, None]
        )
    first, stop = np.meshgrid(np.arange(size + 1), np.arange(size + 1), indexing="ij")
    cost = np.where(first < stop, np.maximum(spread, 0.0), np.inf)  # [i, j]: levels i … j-1
    best, choices = cost[0], []
    for _ in range(count - 1):
        total = best[:, None] + cost
        choices.append(np.argmin(total, axis=0))
        best = total[choices[-1], np.arange(size + 1)]
    starts = [size]
    for choice in reversed(choices):
        starts.append(int(choice[starts[-1]]))
    return np.asarray(starts[:0:-1], dtype=np.int64)


def labels_from_cuts(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Labels 1 (farthest) … (nearest) of the values between the cuts; empty labels are
    dropped and the rest numbered without gaps."""
    raw = np.digitize(values, np.sort(cuts)).astype(np.int32) + 1
    present = np.unique(raw)
    lookup = np.zeros(int(present.max()) + 1, dtype=np.int32)
    lookup[present] = np.arange(1, present.size + 1, dtype=np.int32)
    labels: np.ndarray = lookup[raw]
    return labels


# --- layers ------------------------------------------------------------------------------------


def strata_layers(
    image: np.ndarray, depth: DepthEstimate, count: int, *, middle_fill: bool = True
) -> list[Layer]:
    """Strata's layers with the built-in fill, as a job (and ``bench/quality.py``) makes them
    (``middle_fill`` is for the peers: Strata always fills its own layers)."""
    del middle_fill
    stack = build_stack(
        image, depth, num_layers=count, fill=lambda i, k, r: fill_hidden(i, k, region=r)
    )
    return stack.layers


def fill_margins(nearness: np.ndarray, labels: np.ndarray) -> list[int]:
    """How far each layer of a label map is filled behind nearer ones, by a Strata job's
    rule (:func:`pipeline.cuts.layer_parallax`, :func:`pipeline.preview.fill_margins`)."""
    parallax = layer_parallax(nearness, labels, num_layers=int(labels.max()))
    return job_fill_margins(parallax, labels.shape[1])


def label_layers(
    image: np.ndarray, labels: np.ndarray, nearness: np.ndarray, *, middle_fill: bool = True
) -> list[Layer]:
    """Hard-mask layers of a label map (1 = farthest): the background opaque and
    Telea-filled behind everything nearer; with ``middle_fill`` (``equal assembly``, as
    ``bench/quality.py``'s ``quantile+telea`` builds them) each middle layer Telea-filled
    behind nearer layers within Strata's margin, without (``issue``) a hard mask of its own
    pixels."""
    count = int(labels.max())
    margins = fill_margins(nearness, labels)
    layers = []
    for k in range(1, count + 1):
        own = labels == k
        nearer = labels > k
        if k == 1:
            behind = nearer
        elif middle_fill:
            behind = nearer & _within(own, margins[k - 1])
        else:
            behind = np.zeros_like(own)
        rgb = telea(image, own) if behind.any() else image.copy()
        rgb[~(own | behind)] = 0.0
        alpha = np.ones(own.shape, np.float32) if k == 1 else (own | behind).astype(np.float32)
        layers.append(Layer(rgb=rgb.astype(np.float32), alpha=alpha, filled=behind))
    return layers


def _within(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Pixels within ``pixels`` (Euclidean) of ``mask``."""
    distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    within: np.ndarray = distance <= pixels
    return within


def peer(cuts_of: Callable[[np.ndarray, int], np.ndarray]) -> Method:
    """A peer: its cuts of the nearness, a hard label map, Telea-filled layers."""

    def method(
        image: np.ndarray, depth: DepthEstimate, count: int, *, middle_fill: bool = True
    ) -> list[Layer]:
        labels = labels_from_cuts(depth.nearness, cuts_of(depth.nearness, count))
        return label_layers(image, labels, depth.nearness, middle_fill=middle_fill)

    return method


METHODS: dict[str, Method] = {
    "strata": strata_layers,
    "quantiles": peer(quantile_cuts),
    "largest gaps": peer(gap_cuts),
    "k-means": peer(kmeans_cuts),
}
METHOD_NOTES = {
    "strata": "pipeline.stack.build_stack with the built-in fill (as a job runs it); the "
    "same layers under both protocols",
    "quantiles": "cuts at equal-count quantiles of the nearness",
    "largest gaps": f"cuts in the widest empty stretches of a {GAP_BINS}-bin nearness "
    f"histogram (bins under {GAP_MIN_SHARE:.2%} of the pixels count as empty; of equal "
    "widths, the sparsest)",
    "k-means": f"exact 1-D k-means of the nearness ({KMEANS_LEVELS} levels, dynamic programming)",
    "peers' layers": "hard label masks; background opaque, Telea r=5 behind all nearer "
    "layers; middle layers Telea r=5 within Strata's fill margin (as quantile+telea) under "
    "equal assembly, hard masks with no fill under issue",
    "one flat plane": "the left image moved by the mean true disparity (bilinearly under "
    "equal assembly, by whole pixels under issue)",
    "per-pixel warp": "the left image moved pixel by pixel with the filled disparity "
    "(z-buffer, holes from the farther side): sampled bilinearly at x + d_right under equal "
    "assembly, colour splatted to the nearest pixel under issue",
}


def assemblies(
    name: str, protocols: Sequence[BenchProtocol]
) -> list[tuple[bool, list[BenchProtocol]]]:
    """The protocols grouped by the layers they give method ``name``: a peer's depend on
    ``peer_middle_fill``, Strata's on nothing (one group, made once)."""
    groups: dict[bool, list[BenchProtocol]] = {}
    for protocol in protocols:
        fill = protocol.peer_middle_fill if name in PEERS else True
        groups.setdefault(fill, []).append(protocol)
    return list(groups.items())


# --- the right view ----------------------------------------------------------------------------


def shown_weights(layers: list[Layer]) -> list[np.ndarray]:
    """How much of each pixel of the composite each layer supplies ("over", back to front)."""
    return [
        layer.visible([nearer.alpha for nearer in layers[index + 1 :]])
        for index, layer in enumerate(layers)
    ]


def layer_shifts(layers: list[Layer], disparity: np.ndarray, known: np.ndarray) -> list[float]:
    """Each layer's mean true disparity over the pixels it shows (known disparities only;
    a layer showing none of them takes the mean over its alpha)."""
    shifts = []
    for layer, shown in zip(layers, shown_weights(layers), strict=True):
        weight = shown * known
        if weight.sum() <= 1e-6:
            weight = layer.alpha + 1e-12
        shifts.append(float((weight * disparity).sum() / weight.sum()))
    return shifts


def render_view(layers: list[Layer], shifts: list[float]) -> np.ndarray:
    """The layers moved left by their shifts (premultiplied, bilinear) and composited back
    to front with "over"; outside the frame is transparent black."""
    height, width = layers[0].alpha.shape
    out: np.ndarray = np.zeros((height, width, 3), np.float32)
    for layer, shift in zip(layers, shifts, strict=True):
        rgba = np.dstack([layer.rgb * layer.alpha[..., None], layer.alpha]).astype(np.float32)
        moved = shift_left(rgba, shift)
        out = moved[..., :3] + (1.0 - moved[..., 3:]) * out
    return out


def shift_left(image: np.ndarray, shift: float) -> np.ndarray:
    """``image`` moved left by ``shift`` pixels (bilinear; zeros come in from the right)."""
    height, width = image.shape[:2]
    matrix = np.array([[1.0, 0.0, -shift], [0.0, 1.0, 0.0]], dtype=np.float32)
    moved: np.ndarray = cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    return moved.reshape(image.shape)


def shoot(
    pair: StereoPair, depth: DepthEstimate, name: str, count: int, *, middle_fill: bool
) -> Shot:
    """Method ``name``'s layers (timed), each layer's shift and the right view."""
    started = time.perf_counter()
    layers = METHODS[name](pair.left, depth, count, middle_fill=middle_fill)
    seconds = time.perf_counter() - started
    shifts = layer_shifts(layers, pair.disparity, pair.known)
    return Shot(layers=layers, shifts=shifts, view=render_view(layers, shifts), seconds=seconds)


def flat_plane(pair: StereoPair, *, whole_pixels: bool = False) -> np.ndarray:
    """The floor: the whole left image as one plane at the mean true disparity (rounded to
    whole pixels with ``whole_pixels``)."""
    plane = Layer(
        rgb=pair.left,
        alpha=np.ones(pair.known.shape, np.float32),
        filled=np.zeros(pair.known.shape, bool),
    )
    shift = float(pair.disparity[pair.known].mean())
    return render_view([plane], [float(round(shift)) if whole_pixels else shift])


def forward_splat(
    disparity: np.ndarray, sources: np.ndarray, values: np.ndarray, *, nearest: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Each ``sources`` pixel of the left view carried to the right view at ``x - d``: to
    the nearest pixel (``nearest``) or to the two pixels around it (so a slanted surface
    leaves no cracks); where several land, the nearest (largest ``d``) wins. Returns the
    right view's ``values`` (H, W, C) and disparity, NaN where nothing lands."""
    height, width = disparity.shape
    column = np.arange(width)[None, :] - disparity
    rows = np.arange(height)[:, None]
    targets, landed, carried = [], [], []
    for target in (np.rint(column),) if nearest else (np.floor(column), np.ceil(column)):
        hits = sources & (target >= 0) & (target <= width - 1)
        targets.append((rows * width + target.astype(np.int64))[hits])
        landed.append(disparity[hits])
        carried.append(values[hits])
    flat, value = np.concatenate(targets), np.concatenate(landed)
    order = np.lexsort((value, flat))  # by pixel, the nearest last
    last = np.ones(order.size, bool)
    last[:-1] = flat[order][1:] != flat[order][:-1]
    winners = order[last]
    out_disparity = np.full(height * width, np.nan, np.float32)
    out_disparity[flat[winners]] = value[winners]
    out_values = np.full((height * width, values.shape[-1]), np.nan, np.float32)
    out_values[flat[winners]] = np.concatenate(carried)[winners]
    return out_values.reshape(height, width, -1), out_disparity.reshape(height, width)


def forward_disparity(disparity: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """The right view's disparity: ``forward_splat`` of the disparity itself to the two
    pixels around ``x - d``; NaN where nothing lands."""
    return forward_splat(disparity, sources, disparity[..., None])[1]


def right_disparity(pair: StereoPair) -> np.ndarray:
    """The right view's disparity everywhere: forward-warped, holes from the farther side."""
    warped = forward_disparity(pair.disparity, np.ones_like(pair.known))
    _, filled = fill_rows_from_far(warped[..., None], warped, np.isnan(warped))
    result: np.ndarray = np.nan_to_num(filled, nan=float(pair.disparity.min()))
    return result


def pixel_warp(pair: StereoPair, *, splat: bool = False) -> np.ndarray:
    """The ceiling: the left image sampled bilinearly at ``x + d_right``, or (``splat``)
    each left pixel's colour forward-splatted to the nearest pixel of ``x - d``, holes
    taking the colour of the farther side along the row."""
    height, width = pair.known.shape
    if splat:
        colour, landed = forward_splat(
            pair.disparity, np.ones_like(pair.known), pair.left, nearest=True
        )
        holes = np.isnan(landed)
        filled, _ = fill_rows_from_far(np.nan_to_num(colour), landed, holes)
        splatted: np.ndarray = filled.astype(np.float32)
        return splatted
    map_x = (np.arange(width)[None, :] + right_disparity(pair)).astype(np.float32)
    map_y = np.repeat(np.arange(height, dtype=np.float32)[:, None], width, axis=1)
    sampled: np.ndarray = cv2.remap(
        pair.left, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return sampled


def reference_views(pair: StereoPair, protocol: BenchProtocol) -> dict[str, np.ndarray]:
    """The floor and the ceiling as ``protocol`` renders them."""
    return {
        "one flat plane": flat_plane(pair, whole_pixels=protocol.whole_pixel_flat),
        "per-pixel warp": pixel_warp(pair, splat=protocol.warp == "splat"),
    }


def right_edge_cut(pair: StereoPair) -> int:
    """The right-edge strip the ``issue`` mask leaves out: the largest disparity, rounded
    up (60 px at full size)."""
    return math.ceil(float(pair.disparity.max()))


def scored_mask(pair: StereoPair, protocol: BenchProtocol, *, border: int = BORDER) -> np.ndarray:
    """The headline's pixels under ``protocol``: *seen* (both cameras, known disparity,
    ``border`` px inside the frame) or every pixel left of ``width - right_edge_cut``."""
    height, width = pair.known.shape
    if protocol.mask == "left of max disparity":
        columns = np.arange(width)[None, :] < width - right_edge_cut(pair)
        left: np.ndarray = np.broadcast_to(columns, (height, width)).copy()
        return left
    seen: np.ndarray = ~np.isnan(forward_disparity(pair.disparity, pair.known)) & _inside(
        pair, border
    )
    return seen


def revealed_mask(pair: StereoPair, *, border: int = BORDER) -> np.ndarray:
    """Right-view pixels no left pixel lands on, inside the left view's frame and ``border``
    px inside the frame (the same under every protocol)."""
    width = pair.known.shape[1]
    landed = ~np.isnan(forward_disparity(pair.disparity, np.ones_like(pair.known)))
    in_left = np.arange(width)[None, :] + right_disparity(pair) <= width - 1
    revealed: np.ndarray = ~landed & in_left & _inside(pair, border)
    return revealed


def _inside(pair: StereoPair, border: int) -> np.ndarray:
    height, width = pair.known.shape
    inside = np.zeros((height, width), bool)
    inside[border : height - border, border : width - border] = True
    return inside


def scored_masks(pair: StereoPair, protocol: BenchProtocol = EQUAL_ASSEMBLY) -> Masks:
    """The headline and revealed masks of the right view under ``protocol``."""
    return Masks(scored=scored_mask(pair, protocol), revealed=revealed_mask(pair))


def mask_label(protocol: BenchProtocol, pair: StereoPair) -> str:
    """What the headline scores, in words."""
    if protocol.mask == "seen":
        return "pixels seen by both cameras"
    cut = right_edge_cut(pair)
    return f"every pixel left of width - {cut} px, revealed and unknown included"


def psnr(rendered: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """PSNR in dB (peak 1) over the mask's pixels, all three channels."""
    error = float(np.mean((rendered[mask] - truth[mask]) ** 2))
    return 99.0 if error <= 1e-10 else 10.0 * float(np.log10(1.0 / error))


def view_scores(view: np.ndarray, pair: StereoPair, masks: Masks) -> dict[str, float]:
    return {
        "psnr_db": round(psnr(view, pair.right, masks.scored), 2),
        "revealed_db": round(psnr(view, pair.right, masks.revealed), 2),
    }


# --- running -----------------------------------------------------------------------------------


def run(
    *,
    smoke: bool = False,
    repeats: int = 1,
    images: Path | None = None,
    protocols: Sequence[BenchProtocol] = PROTOCOLS,
) -> dict[str, Any]:
    """Every method × depth kind × layer count, and the two references, under every
    protocol (``repeats`` does not apply: the scores are deterministic). A method's layers
    are made once for all the protocols that assemble them alike (Strata's: once). ``smoke``:
    half size, 3 layers only. ``images``: a folder for the visual check (``VIEW_METHODS`` at
    ``TARGET_LAYERS``, a subfolder per protocol)."""
    del repeats
    pair = load_motorcycle(scale=SMOKE_SCALE if smoke else 1.0)
    revealed = revealed_mask(pair)
    masks = {p.name: Masks(scored=scored_mask(pair, p), revealed=revealed) for p in protocols}
    counts = SMOKE_COUNTS if smoke else LAYER_COUNTS
    rows: dict[str, list[dict[str, Any]]] = {
        p.name: [
            {"method": name, "depth": "true", "layers": None}
            | view_scores(view, pair, masks[p.name])
            for name, view in reference_views(pair, p).items()
        ]
        for p in protocols
    }
    for kind in DEPTHS:
        depth = depth_estimate(pair.disparity, kind)
        for count in counts:
            for name in METHODS:
                for middle_fill, group in assemblies(name, protocols):
                    shot = shoot(pair, depth, name, count, middle_fill=middle_fill)
                    for protocol in group:
                        row = method_row(
                            shot, pair, masks[protocol.name], kind=kind, count=count, name=name
                        )
                        rows[protocol.name].append(row)
                        if images is not None and count == TARGET_LAYERS and name in VIEW_METHODS:
                            stem = images / slug(protocol.name) / f"{name}-{kind}-{count}"
                            save_views(stem, pair, shot, masks[protocol.name])
    result: dict[str, Any] = {
        "scene": "Middlebury 2014 Motorcycle (skimage.data.stereo_motorcycle)",
        "size": [pair.left.shape[1], pair.left.shape[0]],
        "layer_counts": list(counts),
        "methods": METHOD_NOTES,
        "protocols": {},
    }
    for protocol in protocols:
        part: dict[str, Any] = {
            "summary": protocol.summary,
            "scored": mask_label(protocol, pair),
            "scored_share": round(float(masks[protocol.name].scored.mean()), 4),
            "revealed_share": round(float(revealed.mean()), 4),
            "rows": rows[protocol.name],
        }
        part["target"] = target(part)
        result["protocols"][protocol.name] = part
    return result


def method_row(
    shot: Shot, pair: StereoPair, masks: Masks, *, kind: str, count: int, name: str
) -> dict[str, Any]:
    """One method's row: its right view's scores on ``masks`` and what its layers are."""
    return {
        "method": name,
        "depth": kind,
        "layers": count,
        "layers_made": len(shot.layers),
        **view_scores(shot.view, pair, masks),
        "shifts_px": [round(s, 2) for s in shot.shifts],
        "coverage": [round(float(w.mean()), 3) for w in shown_weights(shot.layers)],
        "seconds": round(shot.seconds, 3),
    }


def slug(name: str) -> str:
    return name.replace(" ", "-")


def save_views(stem: Path, pair: StereoPair, shot: Shot, masks: Masks) -> list[Path]:
    """PNGs for a person: the rendered right view beside the real one, the error ×4 (dimmed
    where not scored), and each layer over grey."""
    error = np.clip(4.0 * np.abs(shot.view - pair.right), 0.0, 1.0)
    error[~(masks.scored | masks.revealed)] *= 0.25
    panels = {"view": np.hstack([shot.view, pair.right]), "error": error}
    for index, layer in enumerate(shot.layers):
        a = layer.alpha[..., None]
        panels[f"layer{index + 1}"] = a * layer.rgb + (1.0 - a) * 0.5
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for key, picture in panels.items():
        path = stem.with_name(f"{stem.name}-{key}.png")
        u8 = np.clip(np.round(picture * 255.0), 0, 255).astype(np.uint8)
        cv2.imwrite(str(path), cv2.cvtColor(u8, cv2.COLOR_RGB2BGR))
        written.append(path)
    return written


# --- the target and the tables -----------------------------------------------------------------


def target(part: dict[str, Any]) -> dict[str, Any]:
    """Strata at ``TARGET_LAYERS`` against the best peer per depth kind, in one protocol's
    rows; ``met`` when ahead by ``TARGET_MARGIN_DB`` on every kind (None when a kind was not
    measured)."""
    psnr_of = {(r["method"], r["depth"], r["layers"]): r["psnr_db"] for r in part["rows"]}
    kinds = {}
    for kind in DEPTHS:
        ours = psnr_of.get(("strata", kind, TARGET_LAYERS))
        peers = {
            p: psnr_of[(p, kind, TARGET_LAYERS)]
            for p in PEERS
            if (p, kind, TARGET_LAYERS) in psnr_of
        }
        if ours is None or not peers:
            continue
        best = max(peers, key=peers.__getitem__)
        kinds[kind] = {
            "strata_db": ours,
            "best_peer": best,
            "best_peer_db": peers[best],
            "margin_db": round(ours - peers[best], 2),
        }
    met = None
    if len(kinds) == len(DEPTHS):
        met = all(k["margin_db"] >= TARGET_MARGIN_DB for k in kinds.values())
    return {"layers": TARGET_LAYERS, "margin_db": TARGET_MARGIN_DB, "depths": kinds, "met": met}


def target_line(name: str, part: dict[str, Any]) -> str:
    """One sentence for protocol ``name``: the target, met or not, and where each depth
    kind stands."""
    goal = part["target"]
    parts = [
        f"{kind} {k['strata_db']} vs {k['best_peer']} {k['best_peer_db']} ({k['margin_db']:+.2f})"
        for kind, k in goal["depths"].items()
    ]
    verdict = {True: "met", False: "NOT MET", None: "not measured"}[goal["met"]]
    where = "; ".join(parts) or f"no {goal['layers']}-layer rows"
    return (
        f"target ({name}): strata at {goal['layers']} layers ≥ best peer + "
        f"{goal['margin_db']} dB on both depths: {verdict} ({where})"
    )


def grid(
    part: dict[str, Any], counts: Sequence[int], key: str = "psnr_db"
) -> tuple[list[str], list[list[object]]]:
    """One protocol's rows as a grid: one row per method and depth kind, one column per
    layer count; a cell carries the number of layers made in brackets when a method made
    fewer than asked."""
    columns = ["method", "depth", *(f"{n} layers" for n in counts)]
    found = {(r["method"], r["depth"], r["layers"]): r for r in part["rows"]}

    def cell(row: dict[str, Any] | None) -> object:
        if row is None:
            return ""
        made = row.get("layers_made", row["layers"])
        return row[key] if made == row["layers"] else f"{row[key]} ({made})"

    rows: list[list[object]] = [
        [name, kind, *(cell(found.get((name, kind, n))) for n in counts)]
        for kind in DEPTHS
        for name in METHODS
    ]
    for name in REFERENCES:
        rows.append([name, "true", *([found[(name, "true", None)][key]] * len(counts))])
    return columns, rows


def table(result: dict[str, Any]) -> str:
    """Every protocol's tables (headline, revealed) and target line, as plain text."""
    blocks = []
    for name, part in result["protocols"].items():
        counts = result["layer_counts"]
        blocks.append(
            f"== protocol {name!r}: {part['summary']}\n\n"
            f"PSNR dB, {part['scored']} ({part['scored_share']:.1%} of the frame):\n"
            f"{render_table(*grid(part, counts))}\n\n"
            f"PSNR dB, pixels revealed behind nearer objects ({part['revealed_share']:.1%}):\n"
            f"{render_table(*grid(part, counts, 'revealed_db'))}\n\n{target_line(name, part)}"
        )
    return "\n\n".join(blocks)


def section(result: dict[str, Any]) -> str:
    """The report's section (markdown): what is measured, every protocol's tables and
    target line."""
    notes = "\n".join(f"- `{name}`: {note}" for name, note in result["methods"].items())
    counts = result["layer_counts"]
    blocks = [
        f"{result['scene']}, {result['size'][0]}×{result['size'][1]}: each method's layers "
        "moved to the right camera (each layer by its mean true disparity) and compared "
        "with the real right photo; PSNR dB, under each of two protocols. Reference rows do "
        "not depend on the layer count; a bracket gives the layers made when fewer than "
        f"asked.\n\n{notes}"
    ]
    for name, part in result["protocols"].items():
        blocks.append(
            f"Protocol `{name}`: {part['summary']}.\n\n"
            f"PSNR dB, {part['scored']} ({part['scored_share']:.1%} of the frame):\n\n"
            f"{markdown_table(*grid(part, counts))}\n\n"
            "Pixels revealed behind nearer objects, where only the fill can be right "
            f"({part['revealed_share']:.1%}):\n\n"
            f"{markdown_table(*grid(part, counts, 'revealed_db'))}\n\n{target_line(name, part)}"
        )
    return "\n\n".join(blocks)


def targets(result: dict[str, Any] | None) -> list[tuple[str, str, str, bool | None]]:
    """Rows for the report's targets table (suite, target, measured, met): one per protocol
    and depth kind (every protocol of ``PROTOCOLS``, not measured where ``result`` lacks
    it)."""
    rows: list[tuple[str, str, str, bool | None]] = []
    parts = result.get("protocols", {}) if result else {}
    for protocol in PROTOCOLS:
        part = parts.get(protocol.name)
        for kind in DEPTHS:
            k = part["target"]["depths"].get(kind) if part else None
            rows.append(
                (
                    "stereo",
                    f"strata at {TARGET_LAYERS} layers ≥ best peer + {TARGET_MARGIN_DB} dB "
                    f"(real stereo pair, {protocol.name} protocol, {kind} depth)",
                    f"{k['strata_db']} vs {k['best_peer']} {k['best_peer_db']} dB"
                    if k
                    else "not measured",
                    k["margin_db"] >= TARGET_MARGIN_DB if k else None,
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stereo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="half size, 3 layers only")
    parser.add_argument("--json", action="store_true", help="print every number as JSON")
    parser.add_argument(
        "--images", type=Path, help="write the 4-layer views here (PNG, a folder per protocol)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = run(smoke=args.smoke, images=args.images)
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    text = json.dumps(result, indent=2) if args.json else table(result)
    print(text if args.json else f"{text}\n({result['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
