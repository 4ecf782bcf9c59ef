"""Image in, layers out. Pure image work: this package never imports the daemon."""

from pipeline.job import Job, JobResult, ProgressCallback

__all__ = ["Job", "JobResult", "ProgressCallback"]
