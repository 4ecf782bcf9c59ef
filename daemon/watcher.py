"""Watch the inbox folders with watchdog, and walk them for a full rescan.

Every event (created, modified, closed, a rename's destination, a folder dropped in) is
reduced to "look at this path" and handed on; deciding what a path means happens in
:mod:`daemon.intake`. An exception in the handler is logged and never kills watching;
a dead observer is replaced by :meth:`InboxWatcher.ensure_alive`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from loguru import logger
from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from daemon.names import Kind, classify, is_ignored_folder

PathSink = Callable[[Path], None]
INTERESTING = frozenset(
    {EVENT_TYPE_CREATED, EVENT_TYPE_MODIFIED, EVENT_TYPE_CLOSED, EVENT_TYPE_MOVED}
)
POLLING_INTERVAL_SECONDS = 1.0


class _Handler(FileSystemEventHandler):
    def __init__(self, on_file: PathSink, on_folder: PathSink) -> None:
        self.on_file = on_file
        self.on_folder = on_folder

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            self._handle(event)
        except Exception:
            logger.exception("error while handling {!r}; watching goes on", event)

    def _handle(self, event: FileSystemEvent) -> None:
        if event.event_type not in INTERESTING:
            return
        raw = event.dest_path if event.event_type == EVENT_TYPE_MOVED else event.src_path
        path = Path(os.fsdecode(raw))
        if event.is_directory:
            if event.event_type in (EVENT_TYPE_CREATED, EVENT_TYPE_MOVED):
                self.on_folder(path)
            return
        self.on_file(path)


class InboxWatcher:
    """One observer over every inbox folder (recursive); native events or polling."""

    def __init__(
        self, roots: Sequence[Path], *, on_file: PathSink, on_folder: PathSink, polling: bool
    ) -> None:
        self.roots = list(roots)
        self.polling = polling
        self._handler = _Handler(on_file, on_folder)
        self._observer: BaseObserver | None = None

    def start(self) -> None:
        observer: BaseObserver = (
            PollingObserver(timeout=POLLING_INTERVAL_SECONDS) if self.polling else Observer()
        )
        for root in self.roots:
            observer.schedule(self._handler, str(root), recursive=True, follow_symlink=False)
        observer.daemon = True
        observer.start()
        self._observer = observer

    @property
    def alive(self) -> bool:
        return self._observer is not None and self._observer.is_alive()

    def ensure_alive(self) -> bool:
        """Restart a dead observer; True when it had to."""
        if self.alive:
            return False
        logger.warning("the folder observer stopped; restarting it")
        self.stop()
        self.start()
        return True

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None and observer.is_alive():
            observer.stop()
            observer.join(timeout=5)


def scan(root: Path) -> Iterator[Path]:
    """Every photo under ``root``: no symlinks followed, ignored folders skipped."""
    for folder, folders, files in os.walk(root, followlinks=False):
        folders[:] = [name for name in folders if not is_ignored_folder(name)]
        for name in files:
            if classify(name) is Kind.IMAGE:
                yield Path(folder) / name
