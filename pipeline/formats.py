"""The file names Strata reads, as SPEC.md fixes them. Import-light on purpose: the
daemon's watcher classifies names with these and never loads an image library."""

from __future__ import annotations

from typing import Final

SUPPORTED_SUFFIXES: Final[frozenset[str]] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".heic", ".heif", ".bmp"}
)
"""Photo file extensions Strata takes (compare lower-cased)."""

DEPTH_SUFFIXES: Final[tuple[str, ...]] = (".png", ".tif", ".tiff", ".npy")
"""Depth map extensions, as in ``<stem>.depth.png``, in the order they are looked for."""

DEPTH_MARK: Final = ".depth"
"""``<stem>.depth.<ext>`` is a depth map, never a job."""
