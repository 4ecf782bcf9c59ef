"""Scores of a layer stack against a synthetic scene's truth (used by tests and bench)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bench.scenes import Scene
from pipeline.io import to_uint8
from pipeline.layers import Layer, recompose
from pipeline.preview import PARALLAX_AMPLITUDE, shift_composite

HALO_BAND = 6
"""Width in pixels of the band just outside a nearer object where halos show."""


@dataclass(frozen=True)
class Scores:
    ious: list[float]
    psnr: float
    background_opaque: bool
    fill_error: float
    halo_error: float
    parallax_holes: int

    @property
    def min_iou(self) -> float:
        return min(self.ious)


def soft_iou(weight: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.minimum(weight, truth).sum() / max(float(np.maximum(weight, truth).sum()), 1e-9)
    )


def surface_ious(weights: list[np.ndarray], ownership: list[np.ndarray]) -> list[float]:
    """Per true surface, the soft IoU of the layer made for it. A stack with fewer layers
    than surfaces (the pipeline drops layers left empty) is scored surface by surface
    against its best-matching layer, so a merged surface counts against the score."""
    if len(weights) == len(ownership):
        return [soft_iou(w, t) for w, t in zip(weights, ownership, strict=True)]
    return [max(soft_iou(w, t) for w in weights) for t in ownership]


def visible_weights(layers: list[Layer]) -> list[np.ndarray]:
    """Each layer's visible share: its alpha times the transparency of every nearer layer."""
    weights = []
    for index, layer in enumerate(layers):
        weights.append(layer.visible([nearer.alpha for nearer in layers[index + 1 :]]))
    return weights


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


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    mse = float(np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10.0 * float(np.log10(1.0 / mse))


def hidden_regions(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Where the background is hidden by nearer surfaces, and the halo band inside it."""
    covered = np.zeros(scene.nearness.shape, dtype=bool)
    for cover in scene.coverage[1:]:
        covered |= cover > 0.0
    outside = (~covered).astype(np.uint8)
    distance = cv2.distanceTransform(1 - outside, cv2.DIST_L2, 3)
    band = covered & (distance <= HALO_BAND)
    return covered, band


def background_errors(background: np.ndarray, scene: Scene) -> tuple[float, float]:
    """Mean absolute error of a background fill against the true hidden background, over
    the whole hidden region and over the halo band just inside the occluders' edges."""
    covered, band = hidden_regions(scene)
    error = np.abs(background - scene.surfaces[0]).mean(axis=2)
    return float(error[covered].mean()), float(error[band].mean())


def parallax_holes(layers: list[Layer]) -> int:
    """Pixels not fully covered when the stack sways by the preview's amplitude."""
    amplitude = PARALLAX_AMPLITUDE * layers[0].alpha.shape[1]
    holes = 0
    for shift in (-amplitude, amplitude):
        _, coverage = shift_composite(layers, shift)
        holes += int((coverage < 0.999).sum())
    return holes


def score(layers: list[Layer], scene: Scene) -> Scores:
    written = quantised(layers)
    weights = visible_weights(written)
    fill_error, halo_error = background_errors(written[0].rgb, scene)
    return Scores(
        ious=surface_ious(weights, scene.ownership),
        psnr=psnr(recompose(written), to_uint8(scene.image).astype(np.float32) / 255.0),
        background_opaque=bool((to_uint8(layers[0].alpha) == 255).all()),
        fill_error=fill_error,
        halo_error=halo_error,
        parallax_holes=parallax_holes(written),
    )
