"""The file names Strata reads, as SPEC.md fixes them, and which depth map goes with a
photo. Import-light on purpose: the daemon's watcher and fingerprints use these and
never load an image library."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from config.errors import InputError, SettingsError
from config.model import JobSettings

SUPPORTED_SUFFIXES: Final[frozenset[str]] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".heic", ".heif", ".bmp"}
)
"""Photo file extensions Strata takes (compare lower-cased)."""

DEPTH_SUFFIXES: Final[tuple[str, ...]] = (".png", ".tif", ".tiff", ".npy")
"""Depth map extensions, as in ``<stem>.depth.png``, in the order they are looked for."""

DEPTH_MARK: Final = ".depth"
"""``<stem>.depth.<ext>`` is a depth map, never a job."""


def find_depth_file(image: Path, settings: JobSettings) -> Path | None:
    """The depth map the job uses: ``depth_map`` if set, else ``<stem>.depth.*`` if present.

    A ``depth_map`` may only name a ``*.depth.*`` file in the image's own folder.
    """
    folder = image.parent
    if settings.depth_map is not None:
        name = settings.depth_map
        candidate = folder / name
        if Path(name).name != name or name in {".", ".."} or ".depth." not in name:
            raise SettingsError(
                f"Setting `depth_map` = {name!r} for {image.name} must name a *.depth.* file "
                "in the same folder as the photo.",
                hint=f"Put the depth map beside {image.name} and give its file name only.",
            )
        if not candidate.is_file():
            raise InputError(
                f"The depth map {name} named by `depth_map` for {image.name} does not exist.",
                hint=f"Put {name} beside {image.name}, or remove the `depth_map` setting.",
                stage="depth",
            )
        return candidate
    for suffix in DEPTH_SUFFIXES:
        candidate = folder / f"{image.stem}{DEPTH_MARK}{suffix}"
        if candidate.is_file():
            return candidate
    return None
