"""Is an inbox file a whole image, or a copy that has not finished?

A header that opens is not enough: a copy that pauses between chunks has a valid header
long before its last byte lands, and the job would fail as "image file is truncated".
:func:`is_complete_image` reads the file to its end, as cheaply as each format allows:

- PNG: every chunk up to ``IEND`` is read and its CRC checked (no pixels are inflated);
- JPEG: decoded at 1/8 scale, which still reads every byte of the entropy-coded data, at
  a fraction of a full decode's cost;
- WebP, TIFF, BMP, HEIC: a full decode of the first frame.

A file over the size or pixel limits is not read here: the job refuses it with a clear
message, and decoding it in the watcher would be the very cost the limits prevent.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image

JPEG_DRAFT_SCALE = 8
_JPEG_FORMATS = frozenset({"JPEG", "MPO"})


def _register_heif() -> None:
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return
    register_heif_opener()


_register_heif()


def is_complete_image(path: Path, *, max_pixels: int, max_bytes: int) -> bool:
    """True when ``path`` holds a whole image (or one too large to check here)."""
    try:
        if path.stat().st_size > max_bytes:
            return True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return _read_to_the_end(image, max_pixels=max_pixels)
    except Exception:  # Pillow raises many kinds for a partial or foreign file
        return False


def _read_to_the_end(image: Image.Image, *, max_pixels: int) -> bool:
    width, height = image.size
    if width <= 0 or height <= 0:
        return False
    if width * height > max_pixels:
        return True
    if image.format == "PNG":
        image.verify()
        return True
    if image.format in _JPEG_FORMATS:
        scaled = (max(1, width // JPEG_DRAFT_SCALE), max(1, height // JPEG_DRAFT_SCALE))
        image.draft(None, scaled)
    image.load()
    return True
