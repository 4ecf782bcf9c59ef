"""Wall time per pipeline stage, and progress reports as stages end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.job import ProgressCallback

_STAGE_WEIGHTS = {"decode": 0.05, "depth": 0.35, "stylize": 0.0, "layers": 0.1, "fill": 0.1}
"""Rough share of a job's time per stage, for the progress bar."""


class StageTimer:
    """Wall time per stage, and progress reports as stages end."""

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
