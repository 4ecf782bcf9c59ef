"""Scores of a layer stack against a synthetic scene's truth (used by the tests and the bench).

Every score is taken on the layers as they are written (8-bit colour and alpha,
:func:`quantised`). A layer's *visible weight* is its alpha times the transparency of
every nearer layer (the share of each pixel it shows).

- **Surface IoU** (:func:`surface_ious`): one number per group of surfaces a correct
  stack of the layer count asked makes (:meth:`bench.scenes.Scene.groupings`): each
  surface its own group when the count is at least the surface count; with fewer layers,
  whole surfaces merged with depth-adjacent ones, in any grouping whose added parallax
  error is within 1.5× of the least (of those, the one this stack matches best is
  scored); a group's truth is the sum of its surfaces' visible shares. Each layer belongs
  to the group that holds most of its visible weight; a group is scored by the soft IoU
  (Σ min / Σ max) of its truth against the summed weight of its layers, so a surface
  split over two layers (more layers than surfaces) is scored as their union. A group
  that no layer is mostly made of scores 0: a small object merged into the background,
  or objects sliced off with a floor strip that outweighs them, have no layer of their own.
- **Part IoU** (:func:`part_ious`): the same, restricted to one thin structure or small
  object (:class:`bench.scenes.Part`) and a 2-px ring around it, without the body it is
  attached to: a stick left in the layer behind its object scores near 0 even when the
  object's IoU is 0.99; a halo of the stick's layer around it lowers it too.
- **Recomposition PSNR** (:func:`psnr`): the layers composited "over", back to front, vs
  the 8-bit image (99 dB when identical).
- **Background opaque**: the background layer's 8-bit alpha is 255 everywhere.
- **Reveal** (:func:`reveal`): the preview's sway, rendered at full size
  (:func:`pipeline.preview.shift_composite`: the foreground moves by ±
  ``PARALLAX_AMPLITUDE`` × width, layer k by the stack's own ``parallax[k]`` of it, as the
  preview moves a job's layers), compared with
  the true render of the shifted scene: every true surface, full texture and coverage,
  moved by the factor of the layer that holds most of it, composited back to front
  (flat layers' parallax is the model both sides follow; the metric scores the fill, not
  the layering's approximation of the depth). *Uncovered* pixels are those where more
  than half of what the shifted stack shows comes from layer pixels that nearer layers
  hid before the shift (the fill the sway reveals). On them:

  - **reveal fill error**: mean absolute RGB error (0–1) against the true render, over
    all uncovered pixels of both shifts;
  - **reveal ghost/halo error**: the same over the uncovered pixels whose source lies
    within :data:`GHOST_BAND` px of the occluder's edge (the edge of the hidden region in
    that layer): where foreground colour copied behind its object shows as a ghost or a
    halo;
  - **view error**: the same over the whole frame (strips of a sliced floor and thin
    parts left behind show here, not in the fill errors);
  - **holes**: pixels the sway truly uncovers (the true render shows a surface there that
    was hidden before the shift) where the stack's layer for that surface, or a nearer
    one, covers less than half the pixel, so a farther layer or nothing shows through;
    plus every pixel whose total coverage is below 1. Counted over both shifts.

  Regions can be handed over (``regions=``), so two stacks with the same layers and
  alphas (Strata's fill and Telea's) are scored on exactly the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bench.scenes import Grouping, Scene
from pipeline.io import to_uint8
from pipeline.layers import Layer, recompose
from pipeline.preview import PARALLAX_AMPLITUDE, shift_composite

GHOST_BAND = 4
"""Uncovered pixels whose source is within this many pixels of the occluder's edge are
where ghosts and halos show."""
PART_RING = 2
"""Part IoU is taken on the part and a ring this many pixels wide around it."""
REVEALED = 0.5
"""A pixel is uncovered when more than this share of what it shows was hidden before."""
HOLE_COVERAGE = 0.5
"""A truly uncovered pixel is a hole when its own layer or nearer ones cover less."""
WHOLE = 0.9
"""A surface is kept whole when one layer holds at least this share of it (holes are
counted for such surfaces only: a surface spread over layers has no one layer to show it)."""
FULL = 1.0 - 0.5 / 255.0
"""Total coverage below this (half an 8-bit level short of 1) is a hole anywhere."""


@dataclass(frozen=True)
class Regions:
    """The uncovered pixels of each shift (−amplitude, +amplitude) and their ghost band."""

    uncovered: list[np.ndarray]  # bool (H, W) per shift
    band: list[np.ndarray]  # bool (H, W) per shift


@dataclass(frozen=True)
class Reveal:
    ghost_error: float  # MAE (0–1) on uncovered pixels near the occluder's edge
    fill_error: float  # MAE (0–1) on all uncovered pixels
    ghost_pixels: int
    fill_pixels: int
    view_error: float  # MAE (0–1) over every pixel of both shifted frames
    holes: int
    regions: Regions


@dataclass(frozen=True)
class Scores:
    ious: list[float]
    parts: list[tuple[str, float]]  # (part name, part IoU)
    psnr: float
    background_opaque: bool
    reveal: Reveal

    @property
    def min_iou(self) -> float:
        return min(self.ious)

    @property
    def min_part_iou(self) -> float | None:
        return min(v for _, v in self.parts) if self.parts else None

    @property
    def parallax_holes(self) -> int:
        return self.reveal.holes


# --- the layers as written --------------------------------------------------------------------


def quantised(layers: list[Layer]) -> list[Layer]:
    """The layers as they are written: 8-bit colour and alpha."""
    return [
        Layer(
            rgb=to_uint8(layer.rgb).astype(np.float32) / 255.0,
            alpha=to_uint8(layer.alpha).astype(np.float32) / 255.0,
            filled=layer.filled,
        )
        for layer in layers
    ]


def visible_weights(layers: list[Layer]) -> list[np.ndarray]:
    """Each layer's visible share: its alpha times the transparency of every nearer layer."""
    return [
        layer.visible([nearer.alpha for nearer in layers[index + 1 :]])
        for index, layer in enumerate(layers)
    ]


# --- IoU ------------------------------------------------------------------------------------------


def soft_iou(weight: np.ndarray, truth: np.ndarray) -> float:
    """Σ min / Σ max of two soft masks (1 when equal, 0 when disjoint)."""
    union = float(np.maximum(weight, truth).sum())
    return float(np.minimum(weight, truth).sum() / max(union, 1e-9))


def matched_weights(truths: list[np.ndarray], weights: list[np.ndarray]) -> list[np.ndarray]:
    """Per truth, the summed weight of the layers mostly made of it (each layer goes to
    the truth it overlaps most); zero for a truth no layer is mostly made of."""
    overlap = np.array([[float((t * w).sum()) for w in weights] for t in truths])
    owner = overlap.argmax(axis=0)
    return [
        sum(
            (w for w, o in zip(weights, owner, strict=True) if o == index),
            np.zeros_like(truths[index]),
        )
        for index in range(len(truths))
    ]


def chosen_grouping(weights: list[np.ndarray], scene: Scene, *, count: int) -> Grouping:
    """Of the groupings a correct stack of ``count`` layers may make, the one these
    layers match best (highest mean surface IoU; the first of equals)."""
    options = scene.groupings(count)
    if len(options) == 1:
        return options[0]
    return max(options, key=lambda grouping: float(np.mean(_ious(weights, scene, grouping))))


def _ious(weights: list[np.ndarray], scene: Scene, grouping: Grouping) -> list[float]:
    truths = scene.group_truths(grouping)
    return [soft_iou(w, t) for w, t in zip(matched_weights(truths, weights), truths, strict=True)]


def surface_ious(weights: list[np.ndarray], scene: Scene, *, count: int) -> list[float]:
    """Soft IoU per group of surfaces a correct stack of ``count`` layers makes."""
    return _ious(weights, scene, chosen_grouping(weights, scene, count=count))


def part_ious(weights: list[np.ndarray], scene: Scene, *, count: int) -> list[tuple[str, float]]:
    """Soft IoU of each thin structure or small object, on the part and a
    :data:`PART_RING`-px ring round it (the body it hangs on left out), against the
    layers of its group."""
    grouping = chosen_grouping(weights, scene, count=count)
    truths = scene.group_truths(grouping)
    matched = matched_weights(truths, weights)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * PART_RING + 1, 2 * PART_RING + 1))
    scores = []
    for part in scene.parts:
        group = next(i for i, g in enumerate(grouping) if part.surface in g)
        ring = cv2.dilate((part.coverage > 0.02).astype(np.uint8), kernel).astype(bool)
        body = scene.coverage[part.surface] - part.coverage > 0.02
        region = ring & ~body
        scores.append((part.name, soft_iou(matched[group][region], truths[group][region])))
    return scores


def layer_of_surface(weights: list[np.ndarray], scene: Scene) -> list[int]:
    """Per surface, the index of the layer that holds most of its visible share."""
    return [int(np.argmax(_shares(weights, own))) for own in scene.ownership]


def kept_whole(weights: list[np.ndarray], scene: Scene) -> list[bool]:
    """Per surface, whether one layer holds at least :data:`WHOLE` of its visible share."""
    return [
        float(_shares(weights, own).max()) >= WHOLE * max(float(own.sum()), 1e-9)
        for own in scene.ownership
    ]


def _shares(weights: list[np.ndarray], own: np.ndarray) -> np.ndarray:
    return np.array([float((own * w).sum()) for w in weights])


# --- recomposition ----------------------------------------------------------------------------


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    mse = float(np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10.0 * float(np.log10(1.0 / mse))


# --- reveal -----------------------------------------------------------------------------------


def _move(values: np.ndarray, dx: float, *, border: float = 0.0) -> np.ndarray:
    """``values`` moved ``dx`` pixels to the right (bilinear, as the preview moves them)."""
    matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, 0.0]], dtype=np.float32)
    moved: np.ndarray = cv2.warpAffine(
        values,
        matrix,
        (values.shape[1], values.shape[0]),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border,
    )
    return moved


def _clearances(alphas: list[np.ndarray]) -> list[np.ndarray]:
    """Per layer, the transparency of every nearer layer (1 where nothing hides it)."""
    clear = [np.ones_like(alphas[0])]
    for alpha in reversed(alphas[1:]):
        clear.append(clear[-1] * (1.0 - alpha))
    clear.reverse()
    return clear


def _shown(alphas: list[np.ndarray]) -> list[np.ndarray]:
    """Visible weight of each of these (already moved) alphas, back to front."""
    return [a * c for a, c in zip(alphas, _clearances(alphas), strict=True)]


def true_view(scene: Scene, shifts: list[float]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The true render with surface i moved ``shifts[i]`` pixels, and each surface's
    visible weight in it."""
    colour = np.zeros_like(scene.image)
    covers = []
    for surface, cover, dx in zip(scene.surfaces, scene.coverage, shifts, strict=True):
        moved_cover = _move(cover, dx)
        moved_colour = _move(surface * cover[..., None], dx)
        colour = moved_colour + (1.0 - moved_cover[..., None]) * colour
        covers.append(moved_cover)
    return colour, _shown(covers)


def truly_filled(layers: list[Layer], scene: Scene, surface_layers: list[int]) -> list[Layer]:
    """The stack with every pixel a nearer layer hides (even in part) given the true
    colour behind: for layer k, the colour of the nearest surface among those the stack
    puts in layer k or farther (``surface_layers``) that covers the pixel; the backdrop's
    where none does. Alphas and every fully visible pixel stay the stack's own."""
    groups = []  # per layer: premultiplied colour and coverage of its surfaces, composited
    for k in range(len(layers)):
        colour = np.zeros_like(scene.image)
        cover = np.zeros_like(scene.nearness)
        for index, owner in enumerate(surface_layers):
            if owner == k:
                c = scene.coverage[index]
                colour = scene.surfaces[index] * c[..., None] + (1.0 - c[..., None]) * colour
                cover = c + (1.0 - c) * cover
        groups.append((colour, cover))
    behind = scene.surfaces[0].copy()
    clear = _clearances([layer.alpha for layer in layers])
    result = []
    for layer, (colour, cover), shown in zip(layers, groups, clear, strict=True):
        pure = colour / np.maximum(cover, 1e-6)[..., None]
        behind = np.where((cover > 0.0)[..., None], pure, behind)
        rgb = np.where((shown < 1.0 - 1e-3)[..., None], behind, layer.rgb).astype(np.float32)
        result.append(Layer(rgb=rgb, alpha=layer.alpha, filled=layer.filled))
    return result


def _uncovered(
    layers: list[Layer], shifts: list[float], moved_alphas: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The stack's uncovered pixels after moving layer k by ``shifts[k]``, and the ghost
    band among them."""
    alphas = [layer.alpha for layer in layers]
    shown = _shown(moved_alphas)
    revealed = np.zeros_like(alphas[0])
    best = np.zeros_like(alphas[0])
    near_edge = np.zeros(alphas[0].shape, dtype=bool)
    for clear, weight, dx in zip(_clearances(alphas), shown, shifts, strict=True):
        hidden = weight * _move(1.0 - clear, dx)
        inside = (clear < 0.5).astype(np.uint8)
        depth = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
        close = _move(depth, dx, border=1e6) <= GHOST_BAND
        near_edge = np.where(hidden > best, close, near_edge)
        best = np.maximum(best, hidden)
        revealed += hidden
    uncovered = revealed > REVEALED
    return uncovered, uncovered & near_edge


def _holes(
    scene: Scene,
    surface_layers: list[int],
    whole: list[bool],
    surface_shifts: list[float],
    moved_alphas: list[np.ndarray],
) -> np.ndarray:
    """Truly uncovered pixels of a surface kept whole that the stack leaves to a farther
    layer than the surface's."""
    _, true_shown = true_view(scene, surface_shifts)
    true_clear = _clearances(scene.coverage)
    revealed = np.zeros_like(scene.nearness)
    best = np.zeros_like(scene.nearness)
    wanted = np.full(scene.nearness.shape, -1, dtype=np.intp)
    for layer, kept, weight, clear, dx in zip(
        surface_layers, whole, true_shown, true_clear, surface_shifts, strict=True
    ):
        hidden = weight * _move(1.0 - clear, dx)
        wanted = np.where(hidden > best, layer if kept else -1, wanted)
        best = np.maximum(best, hidden)
        revealed += hidden
    # covered[k]: coverage by layer k and every nearer layer after the move
    moved_clear = _clearances(moved_alphas)
    covered = [1.0 - (1.0 - a) * c for a, c in zip(moved_alphas, moved_clear, strict=True)]
    own = np.choose(np.maximum(wanted, 0), covered)
    holes: np.ndarray = (revealed > REVEALED) & (wanted >= 0) & (own < HOLE_COVERAGE)
    return holes


def reveal(
    layers: list[Layer],
    scene: Scene,
    *,
    parallax: list[float],
    regions: Regions | None = None,
) -> Reveal:
    """The sway's reveal scores (module docstring) with each layer moved by its share
    ``parallax`` of the foreground's shift; ``regions`` from another stack with the same
    layers and alphas scores this one on the same pixels."""
    amplitude = PARALLAX_AMPLITUDE * scene.image.shape[1]
    factors = parallax
    weights = visible_weights(layers)
    surface_layers = layer_of_surface(weights, scene)
    whole = kept_whole(weights, scene)
    reference = truly_filled(layers, scene, surface_layers)
    uncovered, bands, errors, views = [], [], [], []
    holes = 0
    for shift in (-amplitude, amplitude):
        layer_shifts = [shift * f for f in factors]
        surface_shifts = [layer_shifts[k] for k in surface_layers]
        image, coverage = shift_composite(layers, shift, parallax)
        expected, _ = shift_composite(reference, shift, parallax)
        errors.append(np.abs(image - expected).mean(axis=2))
        views.append(np.abs(image - true_view(scene, surface_shifts)[0]).mean(axis=2))
        moved = [_move(layer.alpha, dx) for layer, dx in zip(layers, layer_shifts, strict=True)]
        if regions is None:
            found, band = _uncovered(layers, layer_shifts, moved)
            uncovered.append(found)
            bands.append(band)
        hole = _holes(scene, surface_layers, whole, surface_shifts, moved)
        holes += int((hole | (coverage < FULL)).sum())
    if regions is None:
        regions = Regions(uncovered=uncovered, band=bands)
    fill = np.concatenate([e[m] for e, m in zip(errors, regions.uncovered, strict=True)])
    ghost = np.concatenate([e[m] for e, m in zip(errors, regions.band, strict=True)])
    return Reveal(
        ghost_error=float(ghost.mean()) if ghost.size else 0.0,
        fill_error=float(fill.mean()) if fill.size else 0.0,
        ghost_pixels=int(ghost.size),
        fill_pixels=int(fill.size),
        view_error=float(np.mean(views)),
        holes=holes,
        regions=regions,
    )


# --- everything -------------------------------------------------------------------------------


def score(
    layers: list[Layer],
    scene: Scene,
    *,
    parallax: list[float],
    count: int | None = None,
    regions: Regions | None = None,
) -> Scores:
    """Every score of ``layers`` (made for ``count`` layers asked; default: as many as
    there are) against ``scene``; ``parallax`` and ``regions`` as for :func:`reveal`."""
    written = quantised(layers)
    weights = visible_weights(written)
    asked = len(layers) if count is None else count
    return Scores(
        ious=surface_ious(weights, scene, count=asked),
        parts=part_ious(weights, scene, count=asked),
        psnr=psnr(recompose(written), to_uint8(scene.image).astype(np.float32) / 255.0),
        background_opaque=bool((to_uint8(layers[0].alpha) == 255).all()),
        reveal=reveal(written, scene, parallax=parallax, regions=regions),
    )


def true_layers(scene: Scene) -> list[Layer]:
    """The ideal stack: one layer per surface, its full texture under its own coverage
    (every hidden pixel filled with the true surface). It scores IoU 1, no reveal error
    and no holes; the tests spoil it to show each metric failing."""
    return [
        Layer(rgb=surface.copy(), alpha=cover.copy(), filled=np.zeros(cover.shape, dtype=bool))
        for surface, cover in zip(scene.surfaces, scene.coverage, strict=True)
    ]


def own_parallax(layers: list[Layer], nearness: np.ndarray) -> list[float]:
    """A job's parallax rule for any stack: each layer's mean ``nearness`` over its visible
    weight, normalised so the background is 0 and the foreground 1, clipped (evenly spaced where
    the means do not separate), as :func:`pipeline.cuts.layer_parallax` does it."""
    weights = visible_weights(layers)
    means = np.array([float((w * nearness).sum() / max(float(w.sum()), 1e-9)) for w in weights])
    spread = float(means[-1] - means[0])
    if spread < 1e-6:
        return [k / max(len(layers) - 1, 1) for k in range(len(layers))]
    return [float(v) for v in np.clip((means - means[0]) / spread, 0.0, 1.0)]
