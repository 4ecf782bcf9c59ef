"""Synthetic scenes with known depth, known ownership and the known hidden background.

Each scene is a stack of surfaces, farthest first. Surface 1 is a textured background that
fills the canvas; the others are textured shapes at distinct depths, drawn with
anti-aliased edges (4×4 supersampled coverage). Because every surface is rendered in full
before it is composited, the truth behind every occluder is known, and so is each
surface's true visible share of every pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SUPERSAMPLE = 4
MIN_VISIBLE_SHARE = 0.03


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # float32 (H, W, 3): the composited photo
    surfaces: list[np.ndarray]  # float32 (H, W, 3) each surface's full texture, farthest first
    coverage: list[np.ndarray]  # float32 (H, W) each surface's own anti-aliased coverage
    ownership: list[np.ndarray]  # float32 (H, W) visible share of each surface; sums to 1
    nearness: np.ndarray  # float32 (H, W) exact depth of the visible surface, 1 = nearest
    levels: list[float]  # each surface's mean nearness

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]


def textured(rng: np.random.Generator, height: int, width: int, base: np.ndarray) -> np.ndarray:
    """A colour gradient, oriented stripes and smooth noise: texture a fill must continue."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(10, 28)
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period)
    stripes = 0.08 * np.sin(phase)[..., None] * rng.uniform(0.5, 1.0, size=3)
    gradient = (xx / width - 0.5)[..., None] * rng.uniform(-0.15, 0.15, size=3)
    noise = rng.normal(0, 1, size=(height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
    noise = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC) * 0.04
    image = base[None, None, :] + stripes + gradient + noise
    result: np.ndarray = np.clip(image, 0.0, 1.0).astype(np.float32)
    return result


def _shape_coverage(
    rng: np.random.Generator, height: int, width: int, kind: str, slot: float
) -> np.ndarray:
    """One anti-aliased shape centred near ``slot`` (0–1 across the width)."""
    s = SUPERSAMPLE
    big = np.zeros((height * s, width * s), dtype=np.uint8)
    cx = (slot + rng.uniform(-0.06, 0.06)) * width * s
    cy = rng.uniform(0.3, 0.7) * height * s
    size = rng.uniform(0.16, 0.26) * min(width, height) * s
    if kind == "disc":
        cv2.circle(big, (int(cx), int(cy)), int(size), 255, -1, lineType=cv2.LINE_8)
    elif kind == "ellipse":
        axes = (int(size * 1.4), int(size * 0.8))
        angle = rng.uniform(0, 180)
        cv2.ellipse(big, (int(cx), int(cy)), axes, angle, 0, 360, 255, -1)
    else:
        count = 7
        angles = np.sort(rng.uniform(0, 2 * np.pi, size=count))
        radii = size * rng.uniform(0.7, 1.3, size=count)
        points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(big, [points.astype(np.int32)], 255)
    coverage = cv2.resize(
        big.astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_AREA
    )
    return np.clip(coverage, 0.0, 1.0)


def make_scene(
    *,
    num_surfaces: int,
    width: int = 384,
    height: int = 288,
    seed: int = 0,
) -> Scene:
    """A scene of ``num_surfaces`` surfaces (2–5), farthest first, reproducible by seed."""
    if not 2 <= num_surfaces <= 5:
        raise ValueError(f"num_surfaces must be 2–5, got {num_surfaces}")
    rng = np.random.default_rng(seed)
    for _attempt in range(100):
        scene = _draw_scene(rng, num_surfaces, width, height)
        if min(float(share.mean()) for share in scene.ownership) >= MIN_VISIBLE_SHARE:
            return scene
    raise RuntimeError(f"no scene with every surface visible for seed {seed}")


def _draw_scene(rng: np.random.Generator, num_surfaces: int, width: int, height: int) -> Scene:
    palette = rng.uniform(0.15, 0.85, size=(num_surfaces, 3)).astype(np.float32)
    levels = list(np.linspace(0.1, 0.9, num_surfaces))
    surfaces = [textured(rng, height, width, palette[i]) for i in range(num_surfaces)]
    kinds = ["disc", "ellipse", "polygon"]
    coverage = [np.ones((height, width), dtype=np.float32)]
    slots = rng.permutation(np.linspace(0.2, 0.8, num_surfaces - 1))
    coverage += [
        _shape_coverage(rng, height, width, kinds[i % len(kinds)], float(slots[i]))
        for i in range(num_surfaces - 1)
    ]
    image = surfaces[0].copy()
    for surface, cover in zip(surfaces[1:], coverage[1:], strict=True):
        image = cover[..., None] * surface + (1 - cover[..., None]) * image
    ownership = []
    remaining = np.ones((height, width), dtype=np.float32)
    for cover in reversed(coverage):
        ownership.append(cover * remaining)
        remaining = remaining * (1 - cover)
    ownership.reverse()
    yy = np.mgrid[0:height, 0:width][0].astype(np.float32) / height
    slopes = [0.04 * (yy - 0.5)] + [0.02 * (yy - 0.5)] * (num_surfaces - 1)
    owner = np.argmax(np.stack(ownership), axis=0)
    nearness = np.choose(owner, [lvl + sl for lvl, sl in zip(levels, slopes, strict=True)])
    return Scene(
        image=image.astype(np.float32),
        surfaces=surfaces,
        coverage=coverage,
        ownership=ownership,
        nearness=nearness.astype(np.float32),
        levels=[float(v) for v in levels],
    )


def degrade_depth(
    nearness: np.ndarray,
    *,
    factor: int = 4,
    blur_sigma: float = 1.0,
    noise: float = 0.01,
    seed: int = 0,
) -> np.ndarray:
    """Quarter-resolution, blurred, noisy depth: what a monocular depth model gives."""
    height, width = nearness.shape
    small = cv2.resize(nearness, (width // factor, height // factor), interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(small, (0, 0), blur_sigma)
    jitter = np.random.default_rng(seed).normal(0, noise, blurred.shape)
    result: np.ndarray = (blurred + jitter).astype(np.float32)
    return result
