"""The animated WebP writer: Pillow reads it back frame by frame, and it is no larger than
Pillow's own animated encoding of the same frames."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from pipeline.webp import METHOD, encode_animation


def gradient(shift: int, *, width: int = 160, height: int = 90) -> np.ndarray:
    ramp = np.linspace(0, 255, width)[None, :, None] * np.ones((height, 1, 3))
    ramp[..., 1] = np.linspace(0, 255, height)[:, None]
    return np.roll(ramp, shift, axis=1).astype(np.uint8)


def test_frames_decode_in_order_with_their_duration() -> None:
    shifts = [0, 20, 40, 20]
    data = encode_animation(shifts, gradient, duration_ms=125, loop=0)
    with Image.open(io.BytesIO(data)) as animation:
        assert animation.format == "WEBP"
        assert animation.n_frames == 4
        assert animation.info["loop"] == 0
        for index, shift in enumerate(shifts):
            animation.seek(index)
            decoded = np.asarray(animation.convert("RGB")).astype(int)
            expected = gradient(shift)
            assert animation.info["duration"] == 125
            assert decoded.shape == expected.shape
            assert np.abs(decoded - expected).mean() < 3.0  # lossy, quality 80


def sway(frames: int = 20) -> list[int]:
    """Shifts of a sine sway, as the parallax preview makes them (most come twice)."""
    return [round(30 * math.sin(2 * math.pi * index / frames)) for index in range(frames)]


def test_a_repeated_frame_is_rendered_once() -> None:
    rendered: list[int] = []

    def render(shift: int) -> np.ndarray:
        rendered.append(shift)
        return gradient(shift)

    encode_animation([0, 30, 0, 30], render, duration_ms=100)
    assert sorted(rendered) == [0, 30]


def test_no_larger_than_pillows_own_animation_of_the_same_frames() -> None:
    shifts = sway()
    data = encode_animation(shifts, gradient, duration_ms=120, quality=80)
    frames = [Image.fromarray(gradient(shift)) for shift in shifts]
    reference = io.BytesIO()  # Pillow's defaults for all else (key frames every 3-5)
    pillow = {"duration": 120, "quality": 80, "method": METHOD}
    frames[0].save(reference, format="WEBP", save_all=True, append_images=frames[1:], **pillow)
    assert len(data) <= len(reference.getvalue())
    with Image.open(io.BytesIO(data)) as animation:
        assert animation.n_frames == len(shifts)
        for index in range(animation.n_frames):
            animation.seek(index)
            animation.load()
            assert animation.info["duration"] == 120


def test_a_loop_count_is_written() -> None:
    data = encode_animation(range(0, 30, 10), gradient, duration_ms=80, loop=3)
    with Image.open(io.BytesIO(data)) as animation:
        assert animation.n_frames == 3
        assert animation.info["loop"] == 3


@pytest.mark.parametrize(
    ("frames", "options", "message"),
    [
        ([], {}, "at least one frame"),
        ([gradient(0), gradient(0, width=80)], {}, "of one size"),
        ([gradient(0).astype(np.float32)], {}, "uint8"),
        ([gradient(0)[..., 0]], {}, "(H, W, 3)"),
        ([gradient(0)], {"duration_ms": -1}, "duration_ms"),
        ([gradient(0)], {"quality": 101}, "quality"),
        ([gradient(0)], {"loop": 70000}, "loop"),
    ],
)
def test_bad_input_is_refused_with_the_allowed_range(
    frames: list[np.ndarray], options: dict[str, int], message: str
) -> None:
    settings = {"duration_ms": 100, **options}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        encode_animation(range(len(frames)), frames.__getitem__, **settings)
