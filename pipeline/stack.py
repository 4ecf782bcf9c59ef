"""One image's layer stack: the cuts, the label map, the soft alphas and the layers, made
as a job makes them (:func:`build_stack`; the benchmarks use it too).

Segmentation and layer building are interleaved: the background's fill, the longest piece
of work, needs only the labels, so it starts as soon as they are final and runs on a
thread of its own while the soft edges are worked out.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np

from pipeline.cuts import (
    choose_cuts,
    drop_empty_layers,
    label_layers,
    layer_parallax,
    remove_islands,
)
from pipeline.depth import DepthEstimate
from pipeline.edges import assign_ramps, ramp_mask, ramp_reach, soft_alpha
from pipeline.layers import FillFunction, Layer, LayerBuilder
from pipeline.preview import fill_margins
from pipeline.timing import StageTimer

MIN_ISLAND_SHARE = 0.0005
"""Connected pieces of a layer smaller than this share of the canvas merge into their
surroundings (depth-map speckle, not objects)."""


@dataclass(frozen=True)
class Stack:
    cuts: np.ndarray  # nearness thresholds between the layers, ascending
    labels: np.ndarray  # uint8 (H, W): 1 = background … len(cuts) + 1 = foreground
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
            cuts, labels = segment_labels(image, depth, num_layers=num_layers)
            parallax = layer_parallax(depth.nearness, labels, num_layers=cuts.size + 1)
            margins = fill_margins(parallax, image.shape[1])
            # The background's fill needs the labels only: it runs beside the soft edges.
            band = label_uncertainty(depth, canvas_width=image.shape[1])
            builder = running.enter_context(
                LayerBuilder(image, labels, fill=fill, margins=margins, band=band)
            )
            alphas = soft_alpha(image, labels, num_layers=cuts.size + 1)
        with timer.stage("fill"):
            layers = builder.finish(alphas)
    return Stack(cuts, labels, layers, parallax)


def label_uncertainty(depth: DepthEstimate, *, canvas_width: int) -> int:
    """How many canvas pixels from a nearer layer the labels may be wrong: one, where the
    depth map has the canvas's resolution; where it was upsampled, the size of one of its
    pixels on the canvas (a model's edges wander by about that much)."""
    native_width = max(1, depth.native_size[0])
    return max(1, math.ceil(canvas_width / native_width))


def segment(
    image: np.ndarray, depth: DepthEstimate, *, num_layers: int
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Cuts in the depth distribution's gaps, a label map whose edges sit on the image's
    edges, and the soft "layer k or nearer" alphas. Layers left empty are dropped, so
    there may be fewer than ``num_layers``."""
    cuts, labels = segment_labels(image, depth, num_layers=num_layers)
    return cuts, labels, soft_alpha(image, labels, num_layers=cuts.size + 1)


def segment_labels(
    image: np.ndarray, depth: DepthEstimate, *, num_layers: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`segment` without the soft alphas: the cuts and the label map."""
    nearness = depth.nearness

    def ramps_and_reach() -> tuple[np.ndarray, int]:
        ramps = ramp_mask(nearness)
        return ramps, ramp_reach(ramps)

    with ThreadPoolExecutor(max_workers=1) as side:  # two independent reads of the depth
        found = side.submit(ramps_and_reach)
        cuts = choose_cuts(nearness, num_layers=num_layers)
        labels = label_layers(nearness, cuts)
        ramps, reach = found.result()
    labels = assign_ramps(image, labels, ramps, num_layers=num_layers, reach=reach)
    labels = remove_islands(labels, min_pixels=max(4, round(labels.size * MIN_ISLAND_SHARE)))
    labels, cuts = drop_empty_layers(labels, cuts)
    return cuts, labels
