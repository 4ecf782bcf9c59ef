"""Retry, cancel and delete jobs: the ledger and the files change together.

- retry: a failed or cancelled job's photo (and sidecar, depth map) moves from
  ``outbox/failed/<stem>/`` back to where it was dropped, and the same job id is queued.
- cancel: a pending job ends at once (its photo goes to ``outbox/failed/``); a running job
  is flagged and the daemon stops it.
- delete: the record and the job's outputs go; the originals (photo, sidecar, depth map)
  go to the system trash, or stay in the job folder when the trash refuses them, and only
  ``purge`` destroys them (:mod:`daemon.disposal`). Never a folder outside the outbox.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from config.errors import JobCancelledError, JobStateError
from config.model import Settings
from daemon import lifecycle
from daemon.disposal import Disposal, Trash, dispose, send_to_trash
from daemon.executor import Paths
from daemon.ledger import JobLedger, JobRecord, JobStatus
from daemon.names import input_key
from daemon.queue import JobQueue

CANCEL_WAIT_SECONDS = 15.0

Enqueue = Callable[[str, int], None]


def retry(record: JobRecord, settings: Settings, ledger: JobLedger, enqueue: Enqueue) -> Path:
    """Put the job's photo back in the inbox and queue the job again; returns the photo."""
    if record.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise JobStateError(
            f"Job {record.id} is {record.status.value}; only failed or "
            "cancelled jobs can be retried."
        )
    folder = Path(record.output_dir) if record.output_dir else None
    original = Path(record.input_path)
    if folder is None or not (folder / original.name).is_file():
        raise JobStateError(
            f"The photo of job {record.id} is no longer in the outbox.",
            hint="Drop the photo into an inbox folder again to process it.",
        )
    if original.exists():
        raise JobStateError(
            f"{original} already exists in the inbox.", hint="Move it away first, then retry."
        )
    key = input_key(original, settings.inbox)
    ledger.reset_for_retry(record.id, input_path=original, input_key=key)
    original.parent.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.iterdir()):
        if path.name != lifecycle.ERROR_FILE and not (original.parent / path.name).exists():
            lifecycle.move(path, original.parent / path.name)
    shutil.rmtree(folder, ignore_errors=True)
    enqueue(record.id, record.priority)
    return original


def cancel(
    record: JobRecord,
    settings: Settings,
    ledger: JobLedger,
    *,
    wait_seconds: float = CANCEL_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> JobStatus:
    """Cancel a pending job now, or ask the daemon to stop a running one; the new status."""
    if ledger.cancel_pending(record.id):
        _move_cancelled_input(record, settings, ledger)
        return JobStatus.CANCELLED
    if not ledger.request_cancel(record.id):
        current = ledger.get(record.id)
        status = current.status.value if current else "gone"
        raise JobStateError(
            f"Job {record.id} is {status}; only pending or running jobs can be cancelled."
        )
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        current = ledger.get(record.id)
        if current is None or current.status is not JobStatus.PROCESSING:
            return current.status if current else JobStatus.CANCELLED
        sleep(0.2)
    return JobStatus.PROCESSING


def _move_cancelled_input(record: JobRecord, settings: Settings, ledger: JobLedger) -> None:
    paths = Paths.of(record, settings)
    if not paths.image.is_file():
        return
    error = JobCancelledError("The job was cancelled.")
    report = lifecycle.ErrorReport(record.id, error.reason, error.hint, error.stage)
    extras = lifecycle.companions(paths.image)
    folder = lifecycle.move_to_failed(paths.failed_root, paths.image, extras, report)
    ledger.set_output_dir(record.id, folder)


@dataclass(frozen=True)
class Deletion:
    """What ``delete`` did: the job folder it emptied, and where each original went."""

    folder: Path | None
    originals: list[Disposal] = field(default_factory=list)
    left_alone: Path | None = None
    """A recorded folder outside the outbox, which is never touched."""


def delete(
    record: JobRecord,
    settings: Settings,
    ledger: JobLedger,
    *,
    purge: bool = False,
    trash: Trash = send_to_trash,
) -> Deletion:
    """Remove the job's record and outputs; its originals go to the trash (or, with
    ``purge``, are destroyed). Only a folder inside the outbox is touched."""
    if record.status in (JobStatus.PENDING, JobStatus.PROCESSING):
        raise JobStateError(
            f"Job {record.id} is {record.status.value}.",
            hint=f"Cancel it first: strata cancel {record.id[:8]}",
        )
    folder = Path(record.output_dir) if record.output_dir else None
    deletion = Deletion(None)
    if folder is not None and folder.is_dir():
        if _strictly_inside(folder.resolve(), settings.outbox.resolve()):
            failed = record.status is not JobStatus.COMPLETED
            originals = dispose(
                folder, photo_name=record.input_filename, failed=failed, purge=purge, trash=trash
            )
            deletion = Deletion(folder, originals)
        else:
            deletion = Deletion(None, left_alone=folder)
    ledger.delete(record.id)
    return deletion


def _strictly_inside(path: Path, folder: Path) -> bool:
    return path != folder and path.is_relative_to(folder)


def queue_enqueuer(queue: JobQueue) -> Enqueue:
    return lambda job_id, priority: queue.enqueue(job_id, priority=priority)
