"""What a name in the inbox is: a photo (a job), a file that belongs to one, or noise.

Pure functions on names and paths, so the rules SPEC lists are tested without a disk.
"""

from __future__ import annotations

import fnmatch
import unicodedata
from enum import Enum
from pathlib import Path, PurePath

from config.loader import FOLDER_DEFAULTS_NAME, SIDECAR_SUFFIXES
from pipeline.formats import DEPTH_MARK
from pipeline.formats import SUPPORTED_SUFFIXES as IMAGE_SUFFIXES

IGNORED_FILE_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "icon\r"})
IGNORED_FILE_PATTERNS = ("._*", "*.part", "*.crdownload", "*.tmp", ".syncthing.*", "~$*")
IGNORED_FOLDERS = frozenset(
    {".stfolder", ".stversions", "@eadir", "__macosx", ".trashes", ".spotlight-v100"}
)


class Kind(Enum):
    IMAGE = "image"
    SIDECAR = "sidecar"
    DEPTH_MAP = "depth map"
    FOLDER_DEFAULTS = "folder defaults"
    IGNORED = "ignored"


def nfc(text: str) -> str:
    """macOS hands out decomposed (NFD) names; the ledger keys on composed (NFC) ones."""
    return unicodedata.normalize("NFC", text)


def is_ignored_name(name: str) -> bool:
    """Hidden, system, and temporary/partial names (a file being copied or synced)."""
    lowered = name.lower()
    if name.startswith(".") or lowered in IGNORED_FILE_NAMES:
        return True
    return any(fnmatch.fnmatchcase(lowered, pattern) for pattern in IGNORED_FILE_PATTERNS)


def is_ignored_folder(name: str) -> bool:
    return name.startswith(".") or name.lower() in IGNORED_FOLDERS


def is_depth_map_name(name: str) -> bool:
    """``*.depth.*``: never a job, whatever the extension; it belongs to its photo."""
    return DEPTH_MARK + "." in name.lower()


def classify(name: str) -> Kind:
    """The kind of one file name (no folders: see :func:`classify_path`)."""
    if is_ignored_name(name):
        return Kind.IGNORED
    if name == FOLDER_DEFAULTS_NAME:
        return Kind.FOLDER_DEFAULTS
    if is_depth_map_name(name):
        return Kind.DEPTH_MAP
    suffix = PurePath(name).suffix.lower()
    if suffix in SIDECAR_SUFFIXES:
        return Kind.SIDECAR
    if suffix in IMAGE_SUFFIXES:
        return Kind.IMAGE
    return Kind.IGNORED


def classify_path(path: Path, root: Path) -> Kind:
    """Like :func:`classify`, and anything inside an ignored folder under ``root`` is ignored."""
    try:
        relative = path.relative_to(root)
    except ValueError:
        return Kind.IGNORED
    if not relative.parts or any(is_ignored_folder(part) for part in relative.parts[:-1]):
        return Kind.IGNORED
    return classify(relative.name)


def owner_stem(name: str) -> str | None:
    """The stem of the photo a sidecar or depth map belongs to (``beach.depth.png`` → beach)."""
    kind = classify(name)
    if kind is Kind.SIDECAR:
        return PurePath(name).stem
    if kind is Kind.DEPTH_MAP:
        lowered = name.lower()
        return name[: lowered.rindex(DEPTH_MARK + ".")]
    return None


def input_key(path: Path, inbox: Path) -> str:
    """The ledger's name for an inbox file: its path under the inbox, NFC, '/'-separated."""
    try:
        relative = path.relative_to(inbox)
    except ValueError:
        relative = path
    return nfc(relative.as_posix())
