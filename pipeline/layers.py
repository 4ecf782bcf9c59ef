"""Turn a label map and soft alphas into RGBA layers that recompose the image exactly.

Layers are built back to front. Layer 1 (the background) is opaque and filled everywhere
a nearer layer touches it; each middle layer is filled behind nearer layers within a
margin as wide as the preview's parallax reaches. Every pixel a layer shows in full keeps
the photo's colour. On a layer's soft edge the "over" equation ``I = a·F + (1 - a)·C``
is solved for whichever side it divides by at least one half: the layer's own colour
``F`` where it is mostly opaque, the farther layer's ``C`` where it is mostly clear. The
colours come out unmixed (no fringe of the background rides on the nearer layer, no halo
of the object on the farther one) and recomposition reproduces the image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.blocks import block_any, block_expand
from pipeline.concurrency import Task, TaskGroup
from pipeline.sampling import put_pixels, take_pixels

FillFunction = Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]
"""``fill(image, known, region) -> image`` with the pixels in ``region & ~known`` invented."""

OPAQUE = 0.98
"""A layer's own pixel at least this opaque may serve as a source for its fill."""
CLEAR = 0.02
"""A nearer layer at most this opaque does not hide the pixel beneath it."""
_NONE = np.zeros(0, dtype=np.intp)  # no pixel, as flat indices
COARSE_GROW_STEP = 16
"""Grows wider than this many pixels run on a coarser grid (the exact width never matters
there: it is a fill margin hidden behind a nearer layer)."""


@dataclass(frozen=True)
class Layer:
    rgb: np.ndarray  # float32 (H, W, 3)
    alpha: np.ndarray  # float32 (H, W)
    filled: np.ndarray  # bool (H, W): pixels whose colour was invented

    def visible(self, nearer_alphas: list[np.ndarray]) -> np.ndarray:
        weight = self.alpha.copy()
        for alpha in nearer_alphas:
            weight *= 1.0 - alpha
        return weight


def build_layers(
    image: np.ndarray,
    labels: np.ndarray,
    alphas: list[np.ndarray],
    *,
    fill: FillFunction,
    margins: list[int],
    band: int = 1,
) -> list[Layer]:
    """``alphas[k-2]`` is the coverage of "layer k or nearer"; ``margins[k-1]`` is how far
    layer k is filled behind nearer layers (ignored for the background, filled fully);
    ``band`` how far from a nearer layer the labels may be wrong (:func:`background_sources`)."""
    with LayerBuilder(image, labels, fill=fill, margins=margins, band=band) as builder:
        return builder.finish(alphas)


class LayerBuilder:
    """Builds the layers of a label map. The background's fill, the longest, needs the
    labels only (:func:`background_sources`), so it can run while the caller works out
    the soft alphas that :meth:`finish` takes: :meth:`start` (or entering the builder as
    a context manager) queues it on the shared pool (:mod:`pipeline.concurrency`).
    Making a builder starts nothing.

    Leaving the context manager cancels the fills not started and waits for those running.
    """

    def __init__(
        self,
        image: np.ndarray,
        labels: np.ndarray,
        *,
        fill: FillFunction,
        margins: list[int],
        band: int = 1,
    ) -> None:
        self._image, self._labels, self._fill, self._margins = image, labels, fill, margins
        self._band = band
        self._tasks = TaskGroup()
        self._background: Task[tuple[np.ndarray, np.ndarray]] | None = None

    def start(self) -> LayerBuilder:
        """Queue the background's fill on the shared pool (once); returns the builder."""
        self._background_fill()
        return self

    def _background_fill(self) -> Task[tuple[np.ndarray, np.ndarray]]:
        if self._background is None:
            self._background = self._tasks.submit(self._fill_background)
        return self._background

    def __enter__(self) -> LayerBuilder:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self._tasks.close()

    def finish(self, alphas: list[np.ndarray]) -> list[Layer]:
        """The layers, back to front, given the soft alphas of :func:`pipeline.edges.soft_alpha`."""
        num_layers = len(alphas) + 1
        if len(self._margins) != num_layers:
            raise ValueError(
                f"margins needs one entry per layer ({num_layers}), got {len(self._margins)}"
            )
        image, labels = self._image, self._labels

        def plan_and_fill(k: int) -> tuple[_Plan, np.ndarray]:
            plan = _plan(
                labels == k,
                own=alphas[k - 2],
                nearer=alphas[k - 1] if k < num_layers else None,
                margin=self._margins[k - 1],
                band=self._band,
            )
            return plan, _fill_plan(image, plan, self._fill)

        # Each layer's masks and fill depend only on the alphas (numpy and OpenCV release
        # the GIL): they run beside the background's. The unmixing goes back to front,
        # each layer as soon as its fill is done, while nearer layers' fills still run.
        background = self._background_fill()
        nearer = [self._tasks.submit(plan_and_fill, k) for k in range(2, num_layers + 1)]
        known, rgb = background.result()
        covered = alphas[0] > CLEAR if alphas else np.zeros(labels.shape, dtype=bool)
        plan = _background_plan(labels == 1, known, covered=covered)
        layers = [_finish(image, plan, rgb, beneath=[])]
        for future in nearer:
            plan, rgb = future.result()
            layers.append(_finish(image, plan, rgb, beneath=layers))
        return layers

    def _fill_background(self) -> tuple[np.ndarray, np.ndarray]:
        known = background_sources(self._labels, band=self._band)
        rgb = self._fill(self._image, known, ~known) if not known.all() else self._image.copy()
        return known, rgb


@dataclass(frozen=True)
class _Plan:
    """One layer's masks: ``alpha`` its coverage, ``known`` the pixels its fill may read,
    ``wanted`` the pixels the fill must invent, ``hidden`` those of them a nearer layer
    covers; and, as flat pixel indices, the ``restore`` pixels (invented, yet shown in
    full) and the soft ``edge`` to unmix."""

    alpha: np.ndarray
    known: np.ndarray
    wanted: np.ndarray
    hidden: np.ndarray
    restore: np.ndarray
    edge: np.ndarray


def _plan(
    region: np.ndarray, *, own: np.ndarray, nearer: np.ndarray | None, margin: int, band: int
) -> _Plan:
    """A middle or front layer's plan: ``region`` is where it is the nearest surface,
    ``own`` the "this layer or nearer" coverage, ``nearer`` the next layer's (None for
    the front layer), ``margin`` how far it is filled behind nearer layers, ``band`` the
    labels' uncertainty next to them. Every mask is made here, so the layers' plans run
    side by side."""
    covered = nearer > CLEAR if nearer is not None else np.zeros(region.shape, dtype=bool)
    alpha = _limit_to_margin(own, region, covered, margin)
    # The fill reads only pixels clear of nearer layers' rims and of the band where the
    # labels may be wrong (no colour of the nearer object rides along as a ghost).
    known = region & ~grow(covered, band) & (own >= OPAQUE)
    wanted = (alpha > 0) & ~known
    shown = ~covered
    restore = np.flatnonzero(wanted & region & shown & (alpha >= 1.0))
    edge = np.flatnonzero(shown & (alpha > 0) & (alpha < 1))
    return _Plan(alpha, known, wanted, wanted & covered, restore, edge)


def background_sources(labels: np.ndarray, *, band: int = 1) -> np.ndarray:
    """The pixels the background's fill may read, from the labels alone: its own, clear
    of every pixel a nearer layer's soft edge can reach (the alphas are nonzero only on
    nearer layers and the one-pixel rim around them) and of the ``band`` beside that,
    where a soft or displaced depth edge may have left the nearer object's colour."""
    nearer = cv2.dilate((labels >= 2).view(np.uint8), np.ones((3, 3), np.uint8))
    known: np.ndarray = (labels == 1) & ~grow(nearer.view(bool), band)
    return known


def _background_plan(region: np.ndarray, known: np.ndarray, *, covered: np.ndarray) -> _Plan:
    """The background's plan: opaque everywhere, filled wherever it is not ``known``;
    ``covered`` is where the next layer's alpha hides it."""
    wanted = ~known
    restore = np.flatnonzero(wanted & region & ~covered)
    alpha = np.ones(region.shape, dtype=np.float32)
    return _Plan(alpha, known, wanted, wanted & covered, restore, _NONE)


def _fill_plan(image: np.ndarray, plan: _Plan, fill: FillFunction) -> np.ndarray:
    return fill(image, plan.known, plan.wanted) if plan.wanted.any() else image.copy()


def _finish(image: np.ndarray, plan: _Plan, rgb: np.ndarray, *, beneath: list[Layer]) -> Layer:
    """Every pixel the layer shows in full keeps the photo's colour; soft edges are
    unmixed against the finished farther layers. (Colour where the layer is clear is
    left as it is: nothing shows it, and the PNG writer zeroes it.)"""
    # Only pixels the fill invented can differ from the photo: those the layer shows in
    # full (the ring between its fill sources and a nearer layer's rim) get it back.
    pixels, photo = rgb.reshape(-1, 3), image.reshape(-1, 3)
    put_pixels(pixels, plan.restore, take_pixels(photo, plan.restore))
    if beneath and plan.edge.size:
        _unmix_edge(pixels, photo, plan.alpha.reshape(-1), beneath, plan.edge)
    return Layer(rgb=rgb, alpha=plan.alpha.astype(np.float32, copy=False), filled=plan.hidden)


def _limit_to_margin(
    alpha: np.ndarray, own_region: np.ndarray, covered: np.ndarray, margin: int
) -> np.ndarray:
    """Keep the layer's alpha only on its own region and ``margin`` pixels around it."""
    if not covered.any():
        return alpha
    extent = grow(own_region, margin) | ~covered
    limited: np.ndarray = np.where(extent, alpha, 0.0).astype(np.float32)
    return limited


def _unmix_edge(
    rgb: np.ndarray, image: np.ndarray, alpha: np.ndarray, beneath: list[Layer], edge: np.ndarray
) -> None:
    """Make ``I = a·F + (1 - a)·C`` hold on the layer's own soft edge.

    ``rgb`` and ``image`` are (N, 3) and ``alpha`` (N,) views of the canvas; ``edge`` holds
    flat pixel indices. Two colours, one equation: where ``a ≥ ½`` the layer's colour ``F``
    is solved, the farther layers' ``C`` being their fill; where ``a < ½`` the farther
    layer on top beneath is given the colour that makes ``C = (I - a·F) / (1 - a)``, ``F``
    being this layer's fill. The divisors stay at or above ½ (noise is amplified at most
    4×); where that layer is itself mostly clear, a rare corner of three layers, ``F`` is
    solved and trusted in proportion to ``a``.
    """
    below_rgb = [layer.rgb.reshape(-1, 3) for layer in beneath]
    # composites[j]: the stack of layers 0..j at these pixels
    composites = [take_pixels(below_rgb[0], edge)]
    unders = [beneath[0].alpha.reshape(-1)[edge]]
    top = np.zeros(edge.size, dtype=np.intp)
    for index, layer in enumerate(beneath[1:], start=1):
        unders.append(layer.alpha.reshape(-1)[edge])
        under = unders[-1][:, None]
        composites.append(
            under * take_pixels(below_rgb[index], edge) + (1.0 - under) * composites[-1]
        )
        top[unders[-1] > 0.0] = index
    top_alpha = np.stack(unders)[top, np.arange(edge.size)]
    a = alpha[edge][:, None]
    colour = take_pixels(image, edge)
    own = take_pixels(rgb, edge)
    push_down = (a[:, 0] < 0.5) & (top_alpha >= 0.5)
    for index in np.unique(top[push_down]):
        pick = push_down & (top == index)
        wanted = (colour[pick] - a[pick] * own[pick]) / (1.0 - a[pick])
        if index == 0:
            solved = wanted
        else:
            a_top = top_alpha[pick][:, None]
            solved = (wanted - (1.0 - a_top) * composites[index - 1][pick]) / a_top
        put_pixels(below_rgb[index], edge[pick], np.clip(solved, 0.0, 1.0))
    solve = ~push_down
    composite = composites[-1][solve]
    solved = (colour[solve] - (1.0 - a[solve]) * composite) / np.maximum(a[solve], 1e-3)
    trust = np.clip((a[solve] - 0.05) / 0.25, 0.0, 1.0)
    own[solve] = trust * np.clip(solved, 0.0, 1.0) + (1.0 - trust) * own[solve]
    put_pixels(rgb, edge, own)
    # Where F had to be clipped over the background alone, the rest of the equation goes
    # to the background's colour C (its divisor 1 - a stays at or above a quarter).
    residual = solve & (top == 0) & (a[:, 0] <= 0.75)
    if residual.any():
        wanted = (colour[residual] - a[residual] * own[residual]) / (1.0 - a[residual])
        put_pixels(below_rgb[0], edge[residual], np.clip(wanted, 0.0, 1.0))


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Pixels within ``pixels`` (Euclidean) of the mask; O(N) whatever the radius."""
    if pixels <= 0:
        return mask
    if pixels <= 2:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
        dilated: np.ndarray = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
        return dilated
    factor = max(1, pixels // COARSE_GROW_STEP)
    if factor > 1:
        return _grow_coarse(mask, pixels, factor)
    outside = np.where(mask, 0, 255).astype(np.uint8)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    grown: np.ndarray = distance <= pixels
    return grown


def _grow_coarse(mask: np.ndarray, pixels: int, factor: int) -> np.ndarray:
    """A wide grow on a ``factor``-times smaller grid (:mod:`pipeline.blocks`): never
    smaller than the exact one, at most ``2 * factor`` pixels larger."""
    blocks = block_any(mask, factor)
    outside = np.where(blocks, 0, 255).astype(np.uint8)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    coarse = (distance <= pixels / factor + 1).astype(np.uint8)
    grown: np.ndarray = block_expand(coarse, factor, mask.shape).astype(bool)
    return grown


def recompose(layers: list[Layer]) -> np.ndarray:
    """Composite the layers back to front with "over"."""
    result = layers[0].rgb.copy()
    for layer in layers[1:]:
        a = layer.alpha[..., None]
        result = a * layer.rgb + (1.0 - a) * result
    return result
