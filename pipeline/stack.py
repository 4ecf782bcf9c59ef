"""One image's layer stack: the cuts, the label map, the soft alphas and the layers, made
as a job makes them (:func:`build_stack`; the benchmarks use it too).

Segmentation and layer building are interleaved: the background's fill, the longest piece
of work, needs only the labels, so it starts on the shared pool (:mod:`pipeline.concurrency`) as
soon as they are final and runs while the soft edges are worked out.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.cuts import (
    choose_cuts,
    downscale,
    drop_empty_layers,
    group_surfaces,
    label_layers,
    layer_parallax,
    nearest_kept,
    regroup_surfaces,
    remove_islands,
)
from pipeline.depth import DepthEstimate
from pipeline.edges import assign_ramps, ramp_mask, ramp_reach, soft_alpha
from pipeline.layers import FillFunction, Layer, LayerBuilder
from pipeline.preview import fill_margins
from pipeline.strays import settle_strays
from pipeline.surfaces import (
    ANALYSIS_SIDE,
    OCCLUSION_STEP,
    THIN_NATIVE_PIXELS,
    find_surfaces,
    lift_thin,
    occlusion_order,
    occlusions,
    split_widest,
    upsample,
)
from pipeline.timing import StageTimer

MIN_ISLAND_SHARE = 0.0005
"""Connected pieces of a layer smaller than this share of the canvas merge into their
surroundings (depth-map speckle, not objects)."""


@dataclass(frozen=True)
class Stack:
    depth_ranges: list[tuple[float, float]]  # each layer's nearness range, back to front
    labels: np.ndarray  # uint8 (H, W): 1 = background … len(layers) = foreground
    layers: list[Layer]  # back to front
    parallax: list[float]  # each layer's relative shift: 0 background … 1 foreground


def build_stack(
    image: np.ndarray,
    depth: DepthEstimate,
    *,
    num_layers: int,
    fill: FillFunction,
    timer: StageTimer | None = None,
) -> Stack:
    """The layers of ``image`` cut at its ``depth``, as a job makes them; ``timer`` gets
    the stages "layers" (segmentation and soft edges) and "fill" (the rest)."""
    timer = timer if timer is not None else StageTimer(None)
    with ExitStack() as running:
        with timer.stage("layers"):
            ranges, labels = segment_labels(image, depth, num_layers=num_layers)
            parallax = layer_parallax(depth.nearness, labels, num_layers=len(ranges))
            margins = fill_margins(parallax, image.shape[1])
            # The background's fill needs the labels only: it runs beside the soft edges.
            band = label_uncertainty(depth, canvas_width=image.shape[1])
            builder = running.enter_context(
                LayerBuilder(image, labels, fill=fill, margins=margins, band=band)
            ).start()
            alphas = soft_alpha(image, labels, num_layers=len(ranges))
        with timer.stage("fill"):
            layers = builder.finish(alphas)
    return Stack(ranges, labels, layers, parallax)


def label_uncertainty(depth: DepthEstimate, *, canvas_width: int) -> int:
    """How many canvas pixels from a nearer layer the labels may be wrong: one, where the
    depth map has the canvas's resolution; where it was upsampled, the size of one of its
    pixels on the canvas (a model's edges wander by about that much)."""
    native_width = max(1, depth.native_size[0])
    return max(1, math.ceil(canvas_width / native_width))


def segment(
    image: np.ndarray, depth: DepthEstimate, *, num_layers: int
) -> tuple[list[tuple[float, float]], np.ndarray, list[np.ndarray]]:
    """Each layer's depth range, a label map of whole surfaces whose edges sit on the
    image's edges, and the soft "layer k or nearer" alphas. Layers left empty are
    dropped, so there may be fewer than ``num_layers``."""
    ranges, labels = segment_labels(image, depth, num_layers=num_layers)
    return ranges, labels, soft_alpha(image, labels, num_layers=len(ranges))


def segment_labels(
    image: np.ndarray, depth: DepthEstimate, *, num_layers: int
) -> tuple[list[tuple[float, float]], np.ndarray]:
    """:func:`segment` without the soft alphas: each layer's depth range and the label map.

    The depth thresholds of :func:`choose_cuts` only seed the surfaces
    (:mod:`pipeline.surfaces`); layers are made of whole surfaces in occlusion order, so
    a floor is one surface, not strips, and each layer's depth range may overlap another's.
    """
    nearness = depth.nearness
    ramps = ramp_mask(nearness)
    cuts = choose_cuts(nearness, num_layers=num_layers)
    labels, lifted = surface_labels(
        nearness, cuts, num_layers=num_layers, native_width=depth.native_size[0]
    )
    # a thin structure joined to its body reads the body's depth now, but its blurred
    # pixels hold the wall seen around it too: colour places them, as on a ramp
    uncertain = ramps | lifted
    radius = label_uncertainty(depth, canvas_width=nearness.shape[1])
    uncertain |= meeting_edges(labels, nearness, uncertain, radius=radius)
    labels = assign_ramps(
        image, labels, uncertain, num_layers=num_layers, reach=ramp_reach(uncertain)
    )
    # thin parts the depth lost entirely, and patches of the surface behind it took
    thin = math.ceil(THIN_NATIVE_PIXELS * radius)
    labels = settle_strays(image, labels, num_layers=num_layers, thin=thin)
    labels = remove_islands(labels, min_pixels=max(4, round(labels.size * MIN_ISLAND_SHARE)))
    labels = drop_empty_layers(labels, num_layers=num_layers)
    return depth_ranges(nearness, labels), labels


def meeting_edges(
    labels: np.ndarray, nearness: np.ndarray, ramps: np.ndarray, *, radius: int
) -> np.ndarray:
    """The pixels within ``radius`` of a boundary between layers where the depth shows no
    step: less than :data:`~pipeline.surfaces.OCCLUSION_STEP` across it, or, in a map
    brought up from a coarser one (``radius`` > 1), no ramp near it. There two surfaces
    meet (an object's foot on a floor), the depth cannot say where one ends, and colour
    places the boundary, as on a ramp. ``radius`` is how far the labels may be wrong
    (:func:`label_uncertainty`)."""
    square = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    boundary = cv2.erode(labels, square) != cv2.dilate(labels, square)
    no_step = cv2.dilate(nearness, square) - cv2.erode(nearness, square) < OCCLUSION_STEP
    if radius > 1:
        no_step |= cv2.dilate(ramps.view(np.uint8), square) == 0
    result: np.ndarray = boundary & no_step
    return result


def surface_labels(
    nearness: np.ndarray, cuts: np.ndarray, *, num_layers: int, native_width: int
) -> tuple[np.ndarray, np.ndarray]:
    """The label map of whole surfaces grouped into ``num_layers`` layers (uint8, 1 =
    farthest), found on the analysis-size map and brought to ``nearness``'s size; ramp
    pixels take the layer of the nearest surface (:func:`assign_ramps` decides them
    by colour). ``native_width`` is the depth map's own width, before it was brought to
    the canvas: structures a few of its pixels wide go with the body they hang from
    (:func:`pipeline.surfaces.lift_thin`); the second array marks their pixels."""
    small = downscale(nearness, ANALYSIS_SIDE)
    surfaces = find_surfaces(small, label_layers(small, cuts), ignore=ramp_mask(small))
    native_pixel = max(1.0, small.shape[1] / max(1, native_width))  # in analysis pixels
    surfaces, lifted = lift_thin(surfaces, small, thin=THIN_NATIVE_PIXELS * native_pixel)
    surfaces = split_widest(surfaces, lifted, count=num_layers)
    steps = occlusions(surfaces)
    order = occlusion_order(surfaces, steps)
    layer_of = np.zeros(surfaces.count + 1, np.uint8)
    layer_of[order] = group_surfaces(surfaces.moments[order].T, num_layers=num_layers)
    layer_of = regroup_surfaces(
        layer_of,
        surfaces.moments,
        occludes=[pair for pair, step in steps.items() if step > OCCLUSION_STEP],
        num_layers=min(num_layers, len(order)),
    )
    # the full-size map lifted as the analysis map was, so edges are judged alike
    height, width = nearness.shape
    lift = cv2.resize(lifted - small, (width, height), interpolation=cv2.INTER_NEAREST)
    labels = layer_of[upsample(surfaces, nearness + lift)]
    if (labels == 0).any() and labels.any():
        labels = nearest_kept(labels, labels > 0)
    result: np.ndarray = np.maximum(labels, 1).astype(np.uint8)
    return result, lift != 0


def depth_ranges(nearness: np.ndarray, labels: np.ndarray) -> list[tuple[float, float]]:
    """Each layer's range of nearness: the least and greatest of its pixels, so every
    pixel lies in its layer's range (ranges of layers made of whole surfaces overlap
    where a floor runs behind and in front of the objects on it)."""
    ranges = []
    for value in range(1, int(labels.max()) + 1):
        own = nearness[labels == value]
        ranges.append((float(own.min()), float(own.max())) if own.size else (0.0, 0.0))
    return ranges
