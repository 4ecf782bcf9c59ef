"""What `strata delete` does with a job's folder: outputs go, originals are never lost.

A job folder holds two kinds of files:

- outputs, which Strata wrote and can write again (the layers, ``depth.png``, previews,
  ``manifest.json``, ``settings.yaml``, exports; ``error.yaml`` in a failed job's folder):
  these are deleted;
- originals, everything else: the photo (``source.<ext>`` in a completed job, under its
  own name in ``outbox/failed/<stem>/``), its sidecar and depth maps, and any file a person
  put there. These go to the system trash; if the trash cannot take one, it stays in
  the job folder and the caller says so. Only ``purge`` destroys them.

Before it goes to the trash, ``source.<ext>`` takes back the photo's own name, so the
trash lists ``beach.jpg``, not ``source.jpg``.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from daemon.lifecycle import ERROR_FILE, MANIFEST_FILE

COMPLETED_OUTPUT_NAMES = frozenset(
    {
        "depth.png",
        "preview.png",
        "parallax.webp",
        MANIFEST_FILE,
        "settings.yaml",
        "stylized.png",
        "layers.psd",
        "layers.ora",
        "scene.glb",
        "viewer.html",
    }
)
LAYER_FILE_PATTERN = "Layer_[0-9]*_*.png"
FAILED_OUTPUT_NAMES = frozenset({ERROR_FILE})
SOURCE_PREFIX = "source."

Trash = Callable[[Path], None]
"""Move one file (or folder) to the system trash; raises ``OSError`` when it cannot."""


def send_to_trash(path: Path) -> None:
    """The system trash through send2trash (Finder's Trash, the freedesktop.org trash)."""
    from send2trash import send2trash

    send2trash(str(path))


class Fate(Enum):
    TRASHED = "trashed"
    KEPT = "kept"
    PURGED = "purged"


@dataclass(frozen=True)
class Disposal:
    """Where one original went, in words a person can follow."""

    name: str
    fate: Fate
    where: Path
    """The trash folder (trashed), the file's path (kept) or where it was (purged)."""
    why: str = ""
    """Kept: why the trash did not take it."""

    def describe(self) -> str:
        if self.fate is Fate.TRASHED:
            return f"{self.name} moved to the system trash ({self.where})"
        if self.fate is Fate.PURGED:
            return f"{self.name} destroyed (--purge), it was {self.where}"
        return f"{self.name} kept at {self.where}: the trash could not take it ({self.why})"


def _is_output(name: str, *, failed: bool) -> bool:
    """True for a file Strata wrote into the job folder (safe to delete)."""
    if failed:
        return name in FAILED_OUTPUT_NAMES
    return name in COMPLETED_OUTPUT_NAMES or fnmatch.fnmatchcase(name, LAYER_FILE_PATTERN)


def dispose(
    folder: Path, *, photo_name: str, failed: bool, purge: bool, trash: Trash = send_to_trash
) -> list[Disposal]:
    """Empty and remove ``folder``: outputs deleted, originals trashed (or purged); returns
    where each original went. A folder with an original the trash refused stays."""
    originals = [p for p in sorted(folder.iterdir()) if not _is_output(p.name, failed=failed)]
    if not failed:
        originals = [_restore_photo_name(p, photo_name) for p in originals]
    disposals = [_dispose_one(p, purge=purge, trash=trash) for p in originals]
    for path in folder.iterdir():
        if _is_output(path.name, failed=failed):
            _remove(path)
    if not any(d.fate is Fate.KEPT for d in disposals):
        shutil.rmtree(folder)
    return disposals


def _restore_photo_name(path: Path, photo_name: str) -> Path:
    """``source.jpg`` back to ``beach.jpg`` when that name is free in the folder."""
    if not path.name.startswith(SOURCE_PREFIX) or not path.is_file():
        return path
    target = path.with_name(photo_name)
    if target.exists() or Path(photo_name).name != photo_name:
        return path
    path.rename(target)
    return target


def _dispose_one(path: Path, *, purge: bool, trash: Trash) -> Disposal:
    if purge:
        _remove(path)
        return Disposal(path.name, Fate.PURGED, path)
    where = trash_folder_for(path)
    try:
        trash(path)
    except OSError as error:
        return Disposal(path.name, Fate.KEPT, path, why=str(error) or type(error).__name__)
    return Disposal(path.name, Fate.TRASHED, where)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def trash_folder_for(path: Path) -> Path:
    """The trash folder a file goes to: the home trash for files on the home volume,
    else the trash at the top of the file's own volume (where the desktop looks too)."""
    home = Path.home()
    if sys.platform == "darwin":
        return home / ".Trash" if _same_volume(path, home) else _mount_point(path) / ".Trashes"
    if sys.platform == "win32":
        return Path("Recycle Bin")
    data_home = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    if _same_volume(path, home):
        return data_home / "Trash" / "files"
    return _mount_point(path) / f".Trash-{os.getuid()}" / "files"


def _same_volume(path: Path, other: Path) -> bool:
    try:
        return path.lstat().st_dev == other.resolve().stat().st_dev
    except OSError:
        return False


def _mount_point(path: Path) -> Path:
    current = path.resolve().parent
    while not current.is_mount() and current != current.parent:
        current = current.parent
    return current
