"""The animated WebP writer: a container libwebp's own decoder reads back frame by frame."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.webp import encode_animation


def gradient(shift: int, *, width: int = 160, height: int = 90) -> np.ndarray:
    ramp = np.linspace(0, 255, width)[None, :, None] * np.ones((height, 1, 3))
    ramp[..., 1] = np.linspace(0, 255, height)[:, None]
    return np.roll(ramp, shift, axis=1).astype(np.uint8)


def test_frames_decode_in_order_with_their_duration() -> None:
    frames = [gradient(0), gradient(20), gradient(40)]
    sequence = [frames[0], frames[1], frames[2], frames[1]]
    data = encode_animation(sequence, duration_ms=125, loop=0)
    with Image.open(io.BytesIO(data)) as animation:
        assert animation.format == "WEBP"
        assert animation.n_frames == 4
        assert animation.info["loop"] == 0
        for index, expected in enumerate(sequence):
            animation.seek(index)
            decoded = np.asarray(animation.convert("RGB")).astype(int)
            assert animation.info["duration"] == 125
            assert decoded.shape == expected.shape
            assert np.abs(decoded - expected).mean() < 3.0  # lossy, quality 80


def test_a_repeated_frame_repeats_its_bitstream() -> None:
    first, second = gradient(0), gradient(30)
    once = encode_animation([first, second], duration_ms=100)
    repeated = encode_animation([first, second, first, second], duration_ms=100)
    assert repeated.count(once[-200:]) == 2  # the tail of the second frame's bitstream
    assert len(repeated) < 2 * len(once)


def test_a_loop_count_and_a_generator_are_accepted() -> None:
    data = encode_animation((gradient(s) for s in range(0, 30, 10)), duration_ms=80, loop=3)
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
        encode_animation(frames, **settings)
