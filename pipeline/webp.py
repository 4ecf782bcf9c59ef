"""Animated WebP from frames encoded one by one, side by side.

libwebp's animation encoder (what Pillow's ``save_all`` calls) encodes frame after frame
on one thread, looking for the cheapest difference to the previous frame: at 640 px, 20
parallax frames take ~0.1 s, the longest single step of writing a 2 MP job. Here each
distinct frame is encoded as a still lossy WebP (libwebp releases the GIL, so two frames
encode at once), and the frames are laid out in the animation container as the WebP
container specification describes (a ``VP8X`` header with the animation flag, ``ANIM``,
then one ``ANMF`` chunk per frame, each holding a frame's ``VP8`` bitstream). A frame that
repeats (a sway passes most positions twice) reuses its bitstream. Every frame is a key
frame, so the file is larger than a delta-coded one (~1.7× at 640 px), and any frame
decodes on its own.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from PIL import Image

ENCODE_THREADS = 2
_VP8X_ANIMATION = 0x02
_ANMF_NO_BLEND = 0x02  # each frame replaces the canvas: frames are opaque and full size


def encode_animation(
    frames: Iterable[np.ndarray], *, duration_ms: int, quality: int = 80, loop: int = 0
) -> bytes:
    """An animated WebP of ``frames`` (uint8 (H, W, 3), all one size), each shown for
    ``duration_ms``; ``loop`` 0 repeats forever. The same array object given twice is
    encoded once. Frames are encoded as they arrive, so a generator that renders them
    overlaps its rendering with their encoding."""
    _check_settings(duration_ms=duration_ms, quality=quality, loop=loop)
    order: list[int] = []
    with ThreadPoolExecutor(max_workers=ENCODE_THREADS) as pool:
        encoded: dict[int, Future[bytes]] = {}
        first: np.ndarray | None = None
        for frame in frames:
            first = frame if first is None else first
            _check_frame(frame, like=first)
            if id(frame) not in encoded:
                encoded[id(frame)] = pool.submit(_still_bitstream, frame, quality)
            order.append(id(frame))
        if first is None:
            raise ValueError("an animation needs at least one frame")
        bitstreams = {key: future.result() for key, future in encoded.items()}
    height, width = first.shape[:2]
    chunks = [
        _chunk(b"VP8X", struct.pack("<I", _VP8X_ANIMATION) + _u24(width - 1) + _u24(height - 1)),
        _chunk(b"ANIM", struct.pack("<IH", 0, loop)),  # background colour, loop count
    ]
    frame_header = (
        _u24(0) + _u24(0) + _u24(width - 1) + _u24(height - 1) + _u24(duration_ms)
    ) + bytes([_ANMF_NO_BLEND])
    chunks.extend(_chunk(b"ANMF", frame_header + bitstreams[key]) for key in order)
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _check_settings(*, duration_ms: int, quality: int, loop: int) -> None:
    if not 0 <= duration_ms < 1 << 24:
        raise ValueError(f"duration_ms must be in 0–{(1 << 24) - 1}, got {duration_ms}")
    if not 0 <= quality <= 100:
        raise ValueError(f"quality must be in 0–100, got {quality}")
    if not 0 <= loop < 1 << 16:
        raise ValueError(f"loop must be in 0–65535, got {loop}")


def _check_frame(frame: np.ndarray, *, like: np.ndarray) -> None:
    shape = frame.shape
    if frame.dtype != np.uint8 or len(shape) != 3 or shape[2] != 3 or shape != like.shape:
        raise ValueError(
            f"frames must all be uint8 (H, W, 3) of one size: got {frame.dtype} {shape} "
            f"after {like.shape}"
        )
    if not (1 <= shape[0] <= 16384 and 1 <= shape[1] <= 16384):
        raise ValueError(f"frame size {shape[1]}×{shape[0]}: allowed 1–16384 on a side")


def _still_bitstream(frame: np.ndarray, quality: int) -> bytes:
    """The chunks of a still lossy WebP of ``frame`` (its RIFF header removed)."""
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="WEBP", quality=quality, method=0)
    data = buffer.getvalue()
    # An opaque still is a bare VP8 bitstream: exactly what an ANMF chunk holds.
    if data[:4] != b"RIFF" or data[8:16] != b"WEBPVP8 ":
        raise RuntimeError(f"unexpected WebP layout from the encoder: {data[:16]!r}")
    return data[12:]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    padding = b"\0" if len(payload) % 2 else b""
    return kind + struct.pack("<I", len(payload)) + payload + padding


def _u24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]
