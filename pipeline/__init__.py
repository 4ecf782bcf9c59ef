"""Image in, layers out. Pure image work: this package never imports the daemon.

The daemon and the CLI call one function, :func:`run`, with a :class:`Job`. Importing
this package stays light (no torch): a process that only queues jobs, such as the
daemon's parent, never loads the models' libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.job import Job, JobResult, ProgressCallback
from pipeline.models import quiet_torchvision_advice

if TYPE_CHECKING:
    from pipeline.models import ModelCache

quiet_torchvision_advice()  # before any module here imports diffusers (see its docstring)


def run(
    job: Job,
    *,
    cache: ModelCache | None = None,
    progress: ProgressCallback | None = None,
) -> JobResult:
    """Turn one photo into a finished job folder (see :func:`pipeline.runner.run`)."""
    from pipeline.runner import run as run_job

    return run_job(job, cache=cache, progress=progress)


__all__ = ["Job", "JobResult", "ProgressCallback", "run"]
