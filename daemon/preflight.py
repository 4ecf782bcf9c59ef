"""Refuse to start when the folders would hurt: checks run before anything is touched.

- the outbox or the state folder inside an inbox (results would be picked up as jobs);
- an inbox folder missing, not a folder, or not readable and writable (on macOS the
  usual cause is a privacy permission, which the message names);
- another ``strata run`` already using the same state folder.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import IO

from config.errors import StartupError
from config.model import Mode, Settings

MACOS_PRIVACY_HINT = (
    "On macOS, grant access in System Settings › Privacy & Security › Files and Folders (or "
    "Full Disk Access) to {python}, or choose an inbox outside Desktop, Documents and "
    "Downloads."
)


def check_folders(settings: Settings, *, platform: str = sys.platform) -> None:
    inboxes = [settings.inbox_for(mode) for mode in Mode]
    for name, folder in (("outbox", settings.outbox), ("state_dir", settings.state_dir)):
        _refuse_inside_inbox(name, folder, [settings.inbox, *inboxes])
    for inbox in inboxes:
        _check_inbox(inbox, platform)


def _refuse_inside_inbox(name: str, folder: Path, inboxes: list[Path]) -> None:
    resolved = folder.expanduser().resolve()
    for inbox in inboxes:
        if resolved == inbox.resolve() or resolved.is_relative_to(inbox.resolve()):
            raise StartupError(
                f"`{name}` ({folder}) is inside the inbox {inbox}: results would be picked up "
                "as new photos.",
                hint=f"Move `{name}` outside {inbox} in your config file.",
            )


def _check_inbox(inbox: Path, platform: str) -> None:
    if not inbox.is_dir():
        raise StartupError(
            f"The inbox folder {inbox} does not exist.",
            hint=f"Create it (mkdir -p '{inbox}') or set `inbox` in your config file.",
        )
    try:
        os.listdir(inbox)
        writable = os.access(inbox, os.W_OK | os.X_OK)
    except PermissionError:
        writable = False
    if not writable:
        hint = (
            MACOS_PRIVACY_HINT.format(python=sys.executable)
            if platform == "darwin"
            else f"Give your user read and write permission on {inbox} (chmod u+rwx)."
        )
        raise StartupError(f"The inbox folder {inbox} is not readable and writable.", hint=hint)


class StateLock:
    """An exclusive lock on ``state_dir/<name>.lock``: one daemon per state folder and role."""

    def __init__(self, state_dir: Path, name: str) -> None:
        self.path = state_dir / f"{name}.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.close()
            raise StartupError(
                f"Another `strata run` is already using {self.path.parent}.",
                hint="Stop it first (or `strata health` to see it), or use another state_dir.",
            ) from error
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
