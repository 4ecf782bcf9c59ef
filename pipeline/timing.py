"""Time in the pipeline: wall time per stage with progress reports, and UTC timestamps.

The one timer (:class:`StageTimer`, used by the runner for the job's stages and by a stage
for its own steps) and the one timestamp format (:func:`utc_now`, ISO 8601 in UTC with
milliseconds) of the pipeline and the daemon: this module is light (no numpy, no torch),
so the daemon's parent imports it too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Literal

from pipeline.job import ProgressCallback

_STAGE_WEIGHTS = {"decode": 0.05, "depth": 0.35, "stylize": 0.0, "layers": 0.1, "fill": 0.1}
"""Rough share of a job's time per stage, for the progress bar."""


def utc_now(
    at: float | None = None, *, timespec: Literal["seconds", "milliseconds"] = "milliseconds"
) -> str:
    """ISO 8601 in UTC (``2026-01-02T03:04:05.678+00:00``): now, or the epoch time ``at``."""
    moment = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)
    return moment.isoformat(timespec=timespec)


class StageTimer:
    """Wall time per stage, summed over repeated entries, and progress reports as stages
    end (``progress`` None: timings only, as for a stage's own steps)."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.timings: dict[str, float] = {}
        self._progress = progress
        self._done = 0.0
        self._start = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self._progress:
            self._progress(name, self._done)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)
        self._done = min(1.0, self._done + _STAGE_WEIGHTS.get(name, 0.0))

    def add(self, name: str, seconds: float) -> None:
        self.timings[name] = round(self.timings.get(name, 0.0) + seconds, 4)

    def total(self) -> float:
        return round(time.perf_counter() - self._start, 4)
