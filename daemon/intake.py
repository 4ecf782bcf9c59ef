"""From "something changed at this path" to exactly one pending job per photo.

A photo is taken once its size and mtime were still for ``watch.settle_seconds`` and it
reads as a whole image to its last byte (:mod:`daemon.completeness`).

The stall rule. A copy over Wi-Fi, a phone sync or a share often pauses longer than the
settle window between chunks; the file then looks still but is cut short. So a file that
settles but does not read as a whole image (truncated, or not an image at all) waits: it
is read again each time its size or mtime changes, and only once it has stayed still for
the whole stall window, ``max(STALL_MIN_SECONDS, STALL_FACTOR × settle_seconds)`` (10 s
at the default 2 s settle), is it taken anyway, to fail with a clear error instead of
sitting in the inbox. A copy that pauses up to that long between chunks becomes one
job; an unchanged file is never read twice.

A photo that already has a pending or running job is never queued again; the ledger's
unique index backs that up.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path

from loguru import logger

from config.errors import StrataError
from config.loader import Resolved, resolve_job_settings
from config.model import Mode, Settings
from daemon.completeness import is_complete_image
from daemon.ledger import JobLedger
from daemon.names import Kind, classify_path, input_key, owner_stem
from daemon.queue import JobQueue
from daemon.settle import Settled, SettleTracker
from daemon.watcher import scan

STALL_FACTOR = 5.0
STALL_MIN_SECONDS = 10.0
BYTES_PER_MIB = 1024 * 1024

ImageCheck = Callable[[Path], bool]
Clock = Callable[[], float]


def _stays_inside(path: Path, root: Path) -> bool:
    """True when no folder between ``root`` and ``path`` is a symlink leading elsewhere."""
    try:
        relative = path.parent.relative_to(root)
        return path.parent.resolve(strict=True) == root.resolve(strict=True) / relative
    except (OSError, ValueError):
        return False


def _stall_window(settle_seconds: float) -> float:
    """How long a file that does not read as a whole image must stay still to be taken."""
    return max(STALL_MIN_SECONDS, STALL_FACTOR * settle_seconds)


class Intake:
    """Feeds the settle tracker from events and rescans; turns settled photos into jobs."""

    def __init__(
        self,
        settings: Resolved[Settings],
        ledger: JobLedger,
        queue: JobQueue,
        *,
        check_image: ImageCheck | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.queue = queue
        watch = settings.value.watch
        self.check_image = check_image or functools.partial(
            is_complete_image,
            max_pixels=watch.max_pixels,
            max_bytes=int(watch.max_file_size_mb * BYTES_PER_MIB),
        )
        self.clock = clock
        self.tracker = SettleTracker(watch.settle_seconds)
        self.stall_window = _stall_window(watch.settle_seconds)
        self._incomplete: dict[Path, tuple[int, int]] = {}
        """Files read and found incomplete, with the (size, mtime) they had then."""
        self.roots = {mode: settings.value.inbox_for(mode) for mode in Mode}

    # --- feeding ---------------------------------------------------------------------

    def on_file(self, path: Path) -> None:
        root = self._root_of(path)
        if root is None:
            return
        kind = classify_path(path, root[1])
        if kind is Kind.IMAGE:
            self.tracker.touch(path, self.clock())
        elif kind in (Kind.SIDECAR, Kind.DEPTH_MAP):
            stem = owner_stem(path.name)
            self.tracker.restart_clock(
                lambda p: p.parent == path.parent and p.stem == stem, self.clock()
            )
        elif kind is Kind.FOLDER_DEFAULTS:
            self.tracker.restart_clock(lambda p: p.is_relative_to(path.parent), self.clock())

    def on_folder(self, folder: Path) -> None:
        if self._root_of(folder) is not None:
            self.tracker.notice(scan(folder), self.clock())

    def rescan(self) -> None:
        for root in self.roots.values():
            self.tracker.notice(scan(root), self.clock())

    # --- taking ----------------------------------------------------------------------

    def tick(self) -> int:
        """Take every settled photo; returns how many jobs were created."""
        if not len(self.tracker):
            return 0
        created = 0
        for settled in self.tracker.settled(self.clock()):
            try:
                created += self._take(settled)
            except StrataError as error:
                logger.error("{}: {}", settled.path, error)
                self._forget(settled.path)
        if self._incomplete:
            self._incomplete = {p: s for p, s in self._incomplete.items() if p in self.tracker}
        return created

    def _take(self, settled: Settled) -> int:
        path = settled.path
        located = self._root_of(path)
        if located is None or not _stays_inside(path, located[1]):
            self._forget(path)
            return 0
        mode, root = located
        key = input_key(path, self.settings.value.inbox)
        if self.ledger.active_for(key) is not None:
            self._forget(path)
            return 0
        if not self._is_complete(settled):
            if settled.still_for < self.stall_window:
                return 0
            logger.warning(
                "{} stayed still for {:.0f} s and is still not a whole image; taking it",
                key,
                settled.still_for,
            )
        job = self.ledger.create_job(
            mode=mode.value, input_path=path, input_key=key, priority=self._priority(path, root)
        )
        self._forget(path)
        if job is None:
            return 0
        self.queue.enqueue(job.id, priority=job.priority)
        logger.bind(job=job.id).info("{} queued", key)
        return 1

    def _is_complete(self, settled: Settled) -> bool:
        """Read the file unless these very bytes (same size and mtime) already failed."""
        state = (settled.size, settled.mtime_ns)
        if self._incomplete.get(settled.path) == state:
            return False
        if self.check_image(settled.path):
            self._incomplete.pop(settled.path, None)
            return True
        if settled.path not in self._incomplete:
            logger.info(
                "{} is not a whole image yet; waiting for the copy to finish (up to {:g} s "
                "without a change)",
                settled.path.name,
                self.stall_window,
            )
        self._incomplete[settled.path] = state
        return False

    def _forget(self, path: Path) -> None:
        self.tracker.forget(path)
        self._incomplete.pop(path, None)

    def _priority(self, path: Path, root: Path) -> int:
        try:
            return resolve_job_settings(self.settings, path, inbox_root=root).value.priority
        except StrataError:
            return 0  # the job itself reports the bad settings

    def _root_of(self, path: Path) -> tuple[Mode, Path] | None:
        for mode, root in self.roots.items():
            if path == root or path.is_relative_to(root):
                return mode, root
        return None
