"""From "something changed at this path" to exactly one pending job per photo.

A photo is taken once its size and mtime were still for ``watch.settle_seconds`` and it
opens as an image (one that never opens is taken after a longer wait, to fail with a
clear error instead of sitting in the inbox). A photo that already has a pending or
running job is never queued again; the ledger's unique index backs that up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from loguru import logger
from PIL import Image

from config.errors import StrataError
from config.loader import Resolved, resolve_job_settings
from config.model import Mode, Settings
from daemon.ledger import Ledger
from daemon.names import Kind, classify_path, input_key, owner_stem
from daemon.queue import JobQueue
from daemon.settle import Settled, SettleTracker
from daemon.watcher import scan

UNREADABLE_GRACE_FACTOR = 4.0
UNREADABLE_GRACE_MIN_SECONDS = 2.0

ImageCheck = Callable[[Path], bool]
Clock = Callable[[], float]


def opens_as_image(path: Path) -> bool:
    """Pillow can read the header (cheap: no pixels are decoded here)."""
    try:
        with Image.open(path) as image:
            return image.width > 0 and image.height > 0
    except Exception:  # Pillow raises many kinds for a partial or foreign file
        return False


def _register_heif() -> None:
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return
    register_heif_opener()


_register_heif()


def stays_inside(path: Path, root: Path) -> bool:
    """True when no folder between ``root`` and ``path`` is a symlink leading elsewhere."""
    try:
        relative = path.parent.relative_to(root)
        return path.parent.resolve(strict=True) == root.resolve(strict=True) / relative
    except (OSError, ValueError):
        return False


class Intake:
    """Feeds the settle tracker from events and rescans; turns settled photos into jobs."""

    def __init__(
        self,
        settings: Resolved[Settings],
        ledger: Ledger,
        queue: JobQueue,
        *,
        check_image: ImageCheck = opens_as_image,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.queue = queue
        self.check_image = check_image
        self.clock = clock
        watch = settings.value.watch
        self.tracker = SettleTracker(watch.settle_seconds)
        self.unreadable_grace = max(
            UNREADABLE_GRACE_MIN_SECONDS, UNREADABLE_GRACE_FACTOR * watch.settle_seconds
        )
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
                self.tracker.forget(settled.path)
        return created

    def _take(self, settled: Settled) -> int:
        path = settled.path
        located = self._root_of(path)
        if located is None or not stays_inside(path, located[1]):
            self.tracker.forget(path)
            return 0
        mode, root = located
        key = input_key(path, self.settings.value.inbox)
        if self.ledger.active_for(key) is not None:
            self.tracker.forget(path)
            return 0
        if not self.check_image(path) and settled.still_for < self.unreadable_grace:
            return 0
        job = self.ledger.create_job(
            mode=mode.value, input_path=path, input_key=key, priority=self._priority(path, root)
        )
        self.tracker.forget(path)
        if job is None:
            return 0
        self.queue.enqueue(job.id, priority=job.priority)
        logger.bind(job=job.id).info("{} queued", key)
        return 1

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
