"""When is a file fully written? When its size and mtime have been still for a while.

:class:`SettleTracker` is fed paths (by watchdog events and rescans) and polled on a tick;
it answers which files have settled. Time and ``stat`` are passed in, so the rules are
unit-tested without sleeping.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

StatFunction = Callable[[Path], os.stat_result]


@dataclass
class _Watched:
    size: int
    mtime_ns: int
    still_since: float


@dataclass(frozen=True)
class Settled:
    path: Path
    still_for: float
    """Seconds the file has been unchanged (≥ the settle window)."""
    size: int
    mtime_ns: int
    """Size and mtime as they were still: the same pair means the same bytes were read."""


class SettleTracker:
    """Files seen but not yet taken, each with the moment it last changed."""

    def __init__(self, settle_seconds: float, *, stat_file: StatFunction = os.lstat) -> None:
        self.settle_seconds = settle_seconds
        self._stat = stat_file
        self._watched: dict[Path, _Watched] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._watched)

    def __contains__(self, path: Path) -> bool:
        return path in self._watched

    def touch(self, path: Path, now: float) -> None:
        """A file was created, written, closed or renamed into place: (re)start its clock."""
        info = self._regular_file(path)
        with self._lock:
            if info is None:
                self._watched.pop(path, None)
                return
            self._watched[path] = _Watched(info.st_size, info.st_mtime_ns, now)

    def notice(self, paths: Iterable[Path], now: float) -> None:
        """Start watching files not watched yet (a rescan); known files keep their clock."""
        for path in paths:
            if path not in self._watched:
                self.touch(path, now)

    def restart_clock(self, matches: Callable[[Path], bool], now: float) -> None:
        """Restart the clock of watched files ``matches`` picks (a sidecar just arrived)."""
        with self._lock:
            for path, watched in self._watched.items():
                if matches(path):
                    watched.still_since = now

    def forget(self, path: Path) -> None:
        with self._lock:
            self._watched.pop(path, None)

    def settled(self, now: float) -> list[Settled]:
        """Files unchanged for the settle window; vanished or changed files are updated."""
        ready: list[Settled] = []
        for path in list(self._watched):
            info = self._regular_file(path)
            with self._lock:
                watched = self._watched.get(path)
                if watched is None:
                    continue
                if info is None:
                    del self._watched[path]
                elif (info.st_size, info.st_mtime_ns) != (watched.size, watched.mtime_ns):
                    self._watched[path] = _Watched(info.st_size, info.st_mtime_ns, now)
                elif now - watched.still_since >= self.settle_seconds:
                    still_for = now - watched.still_since
                    ready.append(Settled(path, still_for, watched.size, watched.mtime_ns))
        return ready

    def _regular_file(self, path: Path) -> os.stat_result | None:
        """The file's stat when it is a regular file (never a symlink); else None."""
        try:
            info = self._stat(path)
        except OSError:
            return None
        return info if stat.S_ISREG(info.st_mode) else None
