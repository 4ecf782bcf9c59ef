"""What the daemon's worker (:mod:`daemon.worker`) and its pipeline process
(:mod:`daemon.worker_child`) send each other over their pipe, pickled.

Parent → child: a :class:`~pipeline.job.Job` to run, or :class:`Exit`.
Child → parent: :class:`Ready` once, then per job any number of :class:`Progress` and one
:class:`Succeeded` or :class:`Failed`. The parent hands the last two on as the job's
outcome, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Exit:
    """Asks the child to exit (after the job it is running, if any)."""


@dataclass(frozen=True)
class Ready:
    """The child imported the runner and waits for jobs."""

    pid: int


@dataclass(frozen=True)
class Progress:
    stage: str
    fraction: float


@dataclass(frozen=True)
class Succeeded:
    output_dir: Path
    manifest: dict[str, Any]


@dataclass(frozen=True)
class Failed:
    """The job failed: ``transient`` failures may run again, the others never will."""

    reason: str
    hint: str
    stage: str
    transient: bool = False
    error_class: str = "StrataError"


ChildMessage = Ready | Progress | Succeeded | Failed
