"""Animated WebP through Pillow's encoder (libwebp's ``WebPAnimEncoder``).

libwebp codes each frame as the cheapest change from the previous one (a sub-rectangle,
blended or not, or a key frame every ``kmin``–``kmax`` frames), so a sway whose background
barely moves costs far less than a file of independent key frames.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

import numpy as np
from PIL import Image

Key = TypeVar("Key", bound=Hashable)

METHOD = 0
"""libwebp's effort, 0 (fastest) … 6 (smallest): a preview is written once per job."""


def encode_animation(
    keys: Sequence[Key],
    render: Callable[[Key], np.ndarray],
    *,
    duration_ms: int,
    quality: int = 80,
    loop: int = 0,
) -> bytes:
    """An animated WebP with one frame per key, ``render(key)`` (uint8 (H, W, 3), all one
    size), each shown for ``duration_ms``; ``loop`` 0 repeats forever. A key given twice
    is rendered once."""
    _check_settings(duration_ms=duration_ms, quality=quality, loop=loop)
    if not keys:
        raise ValueError("an animation needs at least one frame")
    rendered: dict[Key, Image.Image] = {}
    for key in keys:
        if key not in rendered:
            rendered[key] = Image.fromarray(_checked(render(key)))
    frames = [rendered[key] for key in keys]
    sizes = {frame.size for frame in frames}
    if len(sizes) > 1:
        raise ValueError(f"frames must all be of one size: got {sorted(sizes)}")
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        format="WEBP",
        save_all=True,
        append_images=frames[1:],
        duration=duration_ms,
        loop=loop,
        quality=quality,
        method=METHOD,
        kmax=0,  # no key frame after the first: fewer candidates per frame, a smaller file
    )
    return buffer.getvalue()


def _check_settings(*, duration_ms: int, quality: int, loop: int) -> None:
    if not 0 <= duration_ms < 1 << 24:
        raise ValueError(f"duration_ms must be in 0–{(1 << 24) - 1}, got {duration_ms}")
    if not 0 <= quality <= 100:
        raise ValueError(f"quality must be in 0–100, got {quality}")
    if not 0 <= loop < 1 << 16:
        raise ValueError(f"loop must be in 0–65535, got {loop}")


def _checked(frame: np.ndarray) -> np.ndarray:
    shape = frame.shape
    if frame.dtype != np.uint8 or len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"frames must be uint8 (H, W, 3): got {frame.dtype} {shape}")
    if not (1 <= shape[0] <= 16383 and 1 <= shape[1] <= 16383):
        raise ValueError(f"frame size {shape[1]}×{shape[0]}: allowed 1–16383 on a side")
    return frame
