"""Quick looks at a layer stack: a side-by-side sheet and an animated parallax loop."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.layers import Layer

PARALLAX_AMPLITUDE = 0.03
"""Largest horizontal shift in the parallax preview, as a share of the canvas width.

The fill margins are derived from it, so the preview never reveals a hole."""

SHEET_HEIGHT = 320
SHEET_GAP = 8
ANIMATION_WIDTH = 640
ANIMATION_FRAMES = 20
ANIMATION_SECONDS = 2.4


def fill_margins(parallax: list[float], canvas_width: int) -> list[int]:
    """How far each layer must be filled behind nearer ones for the preview's parallax;
    ``parallax`` is each layer's relative shift (0 … 1), back to front.

    At the full amplitude, a nearer layer j slides over layer k by
    |parallax_j - parallax_k| · amplitude; two pixels of slack cover rounding in the
    resampling. The nearest layer covers nothing and needs none beyond the slack.
    """
    amplitude = PARALLAX_AMPLITUDE * canvas_width
    return [
        math.ceil(max((abs(p - own) for p in parallax[k + 1 :]), default=0.0) * amplitude) + 2
        for k, own in enumerate(parallax)
    ]


@dataclass(frozen=True)
class Thumbnail:
    """A layer shrunk for the previews: uint8 (h, w, 4) RGBA, colour premultiplied."""

    rgba: np.ndarray

    @property
    def alpha(self) -> np.ndarray:
        return self.rgba[..., 3]


def thumbnail(rgba: np.ndarray, *, width: int = ANIMATION_WIDTH) -> Thumbnail:
    """A layer as written (uint8 RGBA, :func:`pipeline.io.pack_8bit`) shrunk to ``width``
    (never enlarged), premultiplied before shrinking so soft rims neither brighten nor
    darken. The previews are 8-bit images: working on the 8-bit pixels is 4× faster than
    on floats, and they show exactly what the files hold."""
    height, canvas_width = rgba.shape[:2]
    scale = min(1.0, width / canvas_width)
    size = (max(1, round(canvas_width * scale)), max(1, round(height * scale)))
    premultiplied = cv2.cvtColor(rgba, cv2.COLOR_RGBA2mRGBA)
    return Thumbnail(_shrink(premultiplied, size))


def _shrink(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``pixels`` area-averaged down to ``size`` = (width, height).

    Halved while at least twice the size (exact 2×2 means: OpenCV's integer-factor path,
    ~25× faster than a general area resize; an odd last row or column is repeated), then
    one area resize for the rest, as Pillow's ``reducing_gap`` does. The footprint is a
    little wider than one area resize's: a softer, not a different, thumbnail."""
    while pixels.shape[1] >= 2 * size[0] and pixels.shape[0] >= 2 * size[1]:
        odd_rows, odd_columns = pixels.shape[0] % 2, pixels.shape[1] % 2
        if odd_rows or odd_columns:
            pixels = cv2.copyMakeBorder(pixels, 0, odd_rows, 0, odd_columns, cv2.BORDER_REPLICATE)
        half = (pixels.shape[1] // 2, pixels.shape[0] // 2)
        pixels = cv2.resize(pixels, half, interpolation=cv2.INTER_AREA)
    if (pixels.shape[1], pixels.shape[0]) == size:
        return pixels
    shrunk: np.ndarray = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    return shrunk


def contact_sheet(small: list[Thumbnail]) -> np.ndarray:
    """The layers side by side over a checkerboard, farthest left; uint8 RGB."""
    height, width = small[0].alpha.shape
    scale = min(1.0, SHEET_HEIGHT / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    board = _checkerboard(size[1], size[0])
    gap = np.full((size[1], SHEET_GAP, 3), 255, dtype=np.uint8)
    parts: list[np.ndarray] = []
    for thumb in small:
        shrunk = cv2.resize(thumb.rgba, size, interpolation=cv2.INTER_AREA)
        parts.extend([_over(shrunk, board), gap])
    return np.concatenate(parts[:-1], axis=1)


class Parallax:
    """A horizontal parallax sway of a stack's thumbnails: the background stays, each
    nearer layer moves in proportion to its ``parallax`` (0 background … 1 foreground)."""

    def __init__(self, small: list[Thumbnail], parallax: list[float]) -> None:
        width = small[0].alpha.shape[1]
        self.amplitude = PARALLAX_AMPLITUDE * width
        self._background = cv2.cvtColor(small[0].rgba, cv2.COLOR_RGBA2RGB)
        self._factors = parallax[1:]
        self._sprites = [
            _Sprite.of(thumb, reach=math.ceil(self.amplitude * factor) + 1)
            for thumb, factor in zip(small[1:], self._factors, strict=True)
        ]

    def shifts(self, frames: int = ANIMATION_FRAMES) -> list[float]:
        """The foreground's shift in each frame of one loop of a sine sway (most shifts
        come twice: equal values, so a frame can be made once)."""
        return [
            round(self.amplitude * math.sin(2 * math.pi * index / frames), 6)
            for index in range(frames)
        ]

    def render(self, shift: float) -> np.ndarray:
        """The frame with the foreground moved ``shift`` pixels: uint8 RGB."""
        frame = self._background.copy()
        for sprite, factor in zip(self._sprites, self._factors, strict=True):
            if sprite is not None:
                sprite.composite_onto(frame, shift * factor)
        return frame


@dataclass(frozen=True)
class _Sprite:
    """A thumbnail cropped to its visible pixels, widened by the farthest it moves, so
    each frame warps and blends only that box."""

    rgba: np.ndarray
    rows: slice
    columns: slice

    @classmethod
    def of(cls, thumb: Thumbnail, *, reach: int) -> _Sprite | None:
        x, y, w, h = cv2.boundingRect(thumb.alpha)
        if w == 0 or h == 0:
            return None  # an empty layer adds nothing to any frame
        x0, x1 = max(0, x - reach), min(thumb.alpha.shape[1], x + w + reach)
        rows, columns = slice(y, y + h), slice(x0, x1)
        return cls(rgba=np.ascontiguousarray(thumb.rgba[rows, columns]), rows=rows, columns=columns)

    def composite_onto(self, frame: np.ndarray, dx: float) -> None:
        """``frame`` (uint8 RGB) = this sprite moved ``dx`` pixels "over" it."""
        box = frame[self.rows, self.columns]
        box[...] = _over(_warp(self.rgba, dx), box)


def _warp(image: np.ndarray, dx: float) -> np.ndarray:
    matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, 0.0]], dtype=np.float32)
    moved: np.ndarray = cv2.warpAffine(
        image,
        matrix,
        (image.shape[1], image.shape[0]),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return moved


def shift_composite(
    layers: list[Layer], shift: float, parallax: list[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Composite at full size with the foreground moved by ``shift`` pixels and each
    layer by its share ``parallax`` of it.

    Returns the image and its total alpha (1 everywhere when nothing is revealed)."""
    factors = parallax
    image = layers[0].rgb * layers[0].alpha[..., None]
    coverage = layers[0].alpha.copy()
    for layer, factor in zip(layers[1:], factors[1:], strict=True):
        rgb, alpha = _shift(layer.rgb, layer.alpha, shift * factor)
        image = alpha[..., None] * rgb + (1.0 - alpha[..., None]) * image
        coverage = alpha + (1.0 - alpha) * coverage
    return image, coverage


def _shift(rgb: np.ndarray, alpha: np.ndarray, dx: float) -> tuple[np.ndarray, np.ndarray]:
    matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, 0.0]], dtype=np.float32)
    size = (alpha.shape[1], alpha.shape[0])
    premultiplied = rgb * alpha[..., None]
    moved_p = cv2.warpAffine(
        premultiplied,
        matrix,
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    moved_a = cv2.warpAffine(
        alpha, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    moved_rgb = moved_p / np.maximum(moved_a, 1e-6)[..., None]
    return np.clip(moved_rgb, 0.0, 1.0), moved_a


def _checkerboard(height: int, width: int, *, cell: int = 12) -> np.ndarray:
    """uint8 RGB light-grey checks, as image editors show transparency."""
    yy, xx = np.mgrid[0:height, 0:width]
    light = ((yy // cell + xx // cell) % 2).astype(bool)
    shade = np.where(light, np.uint8(242), np.uint8(204))  # 0.95 and 0.8 of white
    return cv2.cvtColor(shade, cv2.COLOR_GRAY2RGB)


def _over(premultiplied: np.ndarray, under: np.ndarray) -> np.ndarray:
    """uint8 premultiplied RGBA "over" uint8 RGB."""
    clear = cv2.cvtColor(cv2.bitwise_not(cv2.extractChannel(premultiplied, 3)), cv2.COLOR_GRAY2RGB)
    shown = cv2.multiply(under, clear, scale=1.0 / 255.0)
    return cv2.add(shown, cv2.cvtColor(premultiplied, cv2.COLOR_RGBA2RGB))
