"""Is this OpenCV the contrib build Strata needs? A check to run before any job.

Strata needs ``opencv-contrib-python-headless`` for ``cv2.ximgproc`` (the guided filter
of the painterly detail pass) and ``cv2.xphoto``. The other OpenCV wheels
(``opencv-python``, ``opencv-python-headless``, ``opencv-contrib-python``) install into
the same ``cv2/`` folder: when one is installed beside the contrib wheel, often pulled in
by another package, whichever was written last wins, and without the contrib files a
painterly job would die with ``AttributeError: module 'cv2' has no attribute 'ximgproc'``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from config.errors import InstallError

CONTRIB_WHEEL = "opencv-contrib-python-headless"
CONTRIB_MODULES = ("ximgproc", "xphoto")
CLASHING_WHEELS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python")


def installed_version(name: str) -> str | None:
    """The installed version of the distribution ``name``, or None."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def check_opencv(
    cv2_module: Any = None, installed: Callable[[str], str | None] = installed_version
) -> None:
    """Raise :class:`InstallError`, naming the clash and the commands that fix it, when
    ``cv2`` lacks the contrib modules. ``cv2_module`` and ``installed`` are for tests."""
    if cv2_module is None:
        import cv2 as cv2_module
    missing = [name for name in CONTRIB_MODULES if not hasattr(cv2_module, name)]
    if not missing:
        return
    clashing = [name for name in CLASHING_WHEELS if installed(name) is not None]
    modules = ", ".join(f"cv2.{name}" for name in missing)
    if clashing:
        why = (
            f"{' and '.join(clashing)} {'is' if len(clashing) == 1 else 'are'} installed beside "
            f"{CONTRIB_WHEEL}, and the wheels overwrite each other's cv2/ folder"
        )
    else:
        why = f"the cv2 at {getattr(cv2_module, '__file__', '?')} is not {CONTRIB_WHEEL}'s"
    raise InstallError(
        f"OpenCV's contrib modules ({modules}) are missing: {why}.",
        hint=f"Run: {fix_command(clashing, installed(CONTRIB_WHEEL))}",
    )


def fix_command(clashing: list[str], contrib_version: str | None) -> str:
    """Remove the other OpenCV wheels, then rewrite the contrib wheel's files (the removal
    deleted the cv2/ files they shared); ``--no-deps`` leaves numpy as it is."""
    pip = f"{sys.executable} -m pip"
    remove = dict.fromkeys(["opencv-python", "opencv-python-headless", *clashing])
    pinned = f"{CONTRIB_WHEEL}=={contrib_version}" if contrib_version else CONTRIB_WHEEL
    return (
        f"{pip} uninstall -y {' '.join(remove)} && "
        f"{pip} install --force-reinstall --no-deps {pinned}"
    )
