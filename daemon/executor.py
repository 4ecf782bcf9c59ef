"""Run one job from the queue: claim it, resolve its settings, run it, end its files.

Called by the Huey consumer's worker thread with a job id. The ledger's atomic claim
makes a job id that reaches the queue twice run once. The pipeline runs in the
supervised pipeline process (:mod:`daemon.worker`); this module only decides what the
outcome means for the ledger and the files.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from config.errors import JobCancelledError, SettingsError
from config.loader import Resolved, resolve_job_settings
from config.model import JobSettings, Mode, Settings
from daemon import lifecycle
from daemon.fingerprint import depth_map_for, file_sha256, settings_key
from daemon.ledger import JobFailure, JobInputs, JobLedger, JobRecord, JobStatus
from daemon.notify import Notifier
from daemon.protocol import Failed, Succeeded
from daemon.worker import JobRunner, Outcome, Stopped
from pipeline.job import Job

Requeue = Callable[[str, int, float], None]
"""(job id, priority, delay in seconds): put a job back on the queue."""

CANCEL_CHECK_SECONDS = 0.5
RETRY_BASE_DELAY = 1.0


@dataclass(frozen=True)
class Paths:
    """Where one job's files live: the photo in the inbox, its result and failure roots."""

    image: Path
    mode: Mode
    inbox_root: Path
    output_root: Path
    failed_root: Path

    @classmethod
    def of(cls, job: JobRecord, settings: Settings) -> Paths:
        mode = Mode(job.mode)
        image = _image_path(job, settings)
        inbox_root = settings.inbox_for(mode)
        try:
            batch = image.parent.relative_to(inbox_root)
        except ValueError:
            batch = Path()
        return cls(
            image,
            mode,
            inbox_root,
            settings.outbox_for(mode) / batch,
            settings.failed_dir / batch,
        )


def _image_path(job: JobRecord, settings: Settings) -> Path:
    """The photo as this machine sees it: ``input_key`` is its path under the inbox, so a
    worker that mounts the shared inbox elsewhere still finds it (``input_path`` is
    where the watcher saw it)."""
    key = Path(job.input_key)
    return Path(job.input_path) if key.is_absolute() else settings.inbox / key


class JobExecutor:
    """The consumer's task body. One job at a time; ``abort`` stops the running one."""

    def __init__(
        self,
        settings: Resolved[Settings],
        ledger: JobLedger,
        worker: JobRunner,
        *,
        requeue: Requeue,
        notify: Notifier,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.worker = worker
        self.requeue = requeue
        self.notify = notify
        self.abort = threading.Event()
        self.accepting = True
        self.running_job: str | None = None

    def __call__(self, job_id: str) -> None:
        if not self.accepting:
            return  # stopping: the job stays pending and runs at the next start
        job = self.ledger.claim(job_id)
        if job is None:
            logger.debug("job {} is not pending; skipped", job_id)
            return
        self.running_job = job.id
        started = time.monotonic()
        try:
            with logger.contextualize(job=job.id):
                self._execute(job, Paths.of(job, self.settings.value))
        except Exception as error:  # a bug here must never stop the next job
            logger.exception("job {} hit an internal error", job.id)
            self._fail_quietly(job, error)
        finally:
            self.running_job = None
            self._log_line(job.id, time.monotonic() - started)

    # --- the steps ---------------------------------------------------------------------

    def _execute(self, job: JobRecord, paths: Paths) -> None:
        if not paths.image.is_file():
            self._input_gone(job, paths)
            return
        try:
            resolved = resolve_job_settings(self.settings, paths.image, inbox_root=paths.inbox_root)
        except SettingsError as error:
            self._end_failed(job, paths, Failed(error.reason, error.hint, error.stage), None)
            return
        inputs = self._fingerprint(paths, resolved.value)
        self.ledger.record_inputs(job.id, job.mode, inputs)
        earlier = self.ledger.earlier_result(job, inputs)
        if earlier is not None and self._reuse(job, paths, earlier, resolved.value):
            return
        outcome = self.worker.run(
            self._pipeline_job(job, paths, resolved),
            timeout=self.settings.value.queue.job_timeout_seconds,
            should_stop=self._stop_check(job.id),
        )
        self._end(job, paths, outcome, resolved.value)

    def _fingerprint(self, paths: Paths, settings: JobSettings) -> JobInputs:
        depth_map = depth_map_for(paths.image, settings)
        return JobInputs(
            input_sha256=file_sha256(paths.image),
            settings_key=settings_key(paths.mode, settings, self.settings.value.models, depth_map),
            settings=settings.model_dump(mode="json"),
            priority=settings.priority,
        )

    def _pipeline_job(self, job: JobRecord, paths: Paths, resolved: Resolved[JobSettings]) -> Job:
        return Job(
            job_id=job.id,
            mode=paths.mode,
            input_path=paths.image,
            output_root=paths.output_root,
            settings=resolved.value,
            created_at=job.created_at,
            models=self.settings.value.models,
            limits=self.settings.value.watch,
            settings_origins=dict(resolved.origins),
        )

    def _stop_check(self, job_id: str) -> Callable[[], str | None]:
        """Polled while the job runs: a shutdown, a cancel (from any machine), or a lost
        lease stops it; the lease is renewed every third of its length."""
        next_check = 0.0
        renew_every = self.settings.value.queue.lease_seconds / 3
        next_renew = time.monotonic() + renew_every

        def should_stop() -> str | None:
            nonlocal next_check, next_renew
            if self.abort.is_set():
                return "shutdown"
            now = time.monotonic()
            if now >= next_renew:
                next_renew = now + renew_every
                if not self.ledger.renew_lease(job_id):
                    return "lost"
            if now >= next_check:
                next_check = now + CANCEL_CHECK_SECONDS
                if self.ledger.cancel_is_requested(job_id):
                    return "cancel"
            return None

        return should_stop

    def _reuse(
        self, job: JobRecord, paths: Paths, earlier: JobRecord, settings: JobSettings
    ) -> bool:
        """Fill this job's folder from the earlier identical job; False if that is gone."""
        earlier_dir = Path(earlier.output_dir) if earlier.output_dir else None
        if earlier_dir is None or lifecycle.read_manifest(earlier_dir) is None:
            return False
        folder, manifest = lifecycle.copy_duplicate(
            earlier_dir, paths.output_root, paths.image, job_id=job.id, duplicate_of=earlier.id
        )
        logger.info("job {} repeats job {}: its result is reused", job.id, earlier.id)
        self._end_succeeded(job, paths, Succeeded(folder, manifest), settings, earlier.id)
        return True

    # --- the ends ----------------------------------------------------------------------

    def _end(self, job: JobRecord, paths: Paths, outcome: Outcome, settings: JobSettings) -> None:
        if isinstance(outcome, Succeeded):
            self._end_succeeded(job, paths, outcome, settings, None)
        elif isinstance(outcome, Stopped) and outcome.why == "shutdown":
            self.ledger.requeue(job.id, interrupted=True)  # the job's log line says so
        elif isinstance(outcome, Stopped) and outcome.why == "lost":
            logger.warning("job {}: this worker's lease expired; it runs elsewhere", job.id)
        elif isinstance(outcome, Stopped):
            self._end_cancelled(job, paths, settings)
        elif outcome.transient and job.attempts <= self.settings.value.queue.retries:
            self._retry(job, outcome, settings)
        else:
            self._end_failed(job, paths, outcome, settings)

    def _end_succeeded(
        self,
        job: JobRecord,
        paths: Paths,
        outcome: Succeeded,
        settings: JobSettings,
        duplicate_of: str | None,
    ) -> None:
        extras = lifecycle.companions(paths.image, settings.depth_map)
        lifecycle.clear_inbox_after_success(paths.image, extras, outcome.output_dir)
        self.ledger.complete(
            job.id,
            output_dir=outcome.output_dir,
            manifest=outcome.manifest,
            duplicate_of=duplicate_of,
        )
        lifecycle.prune_batch_folder(paths.image.parent, paths.inbox_root)
        self.notify("Strata: layers ready", f"{paths.image.name} → {outcome.output_dir.name}")

    def _end_failed(
        self, job: JobRecord, paths: Paths, outcome: Failed, settings: JobSettings | None
    ) -> None:
        failure = JobFailure(outcome.reason, outcome.hint, outcome.stage)
        folder = self._move_to_failed(job, paths, failure, settings)
        self.ledger.fail(job.id, failure, output_dir=folder)
        lifecycle.prune_batch_folder(paths.image.parent, paths.inbox_root)
        self.notify("Strata: job failed", f"{paths.image.name}: {outcome.reason}")

    def _end_cancelled(self, job: JobRecord, paths: Paths, settings: JobSettings) -> None:
        error = JobCancelledError("The job was cancelled.")
        failure = JobFailure(error.reason, error.hint, error.stage)
        folder = self._move_to_failed(job, paths, failure, settings)
        self.ledger.mark_cancelled(job.id, output_dir=folder)
        lifecycle.prune_batch_folder(paths.image.parent, paths.inbox_root)

    def _retry(self, job: JobRecord, outcome: Failed, settings: JobSettings) -> None:
        delay = RETRY_BASE_DELAY * 2 ** (job.attempts - 1)
        logger.warning(
            "job {} attempt {} failed ({}); retrying in {:g} s",
            job.id,
            job.attempts,
            outcome.reason,
            delay,
        )
        if self.ledger.requeue(job.id, note=f"Retrying: {outcome.reason}"):
            self.requeue(job.id, settings.priority, delay)

    def _move_to_failed(
        self, job: JobRecord, paths: Paths, failure: JobFailure, settings: JobSettings | None
    ) -> Path | None:
        if not paths.image.is_file():
            return None
        depth_map = settings.depth_map if settings else None
        extras = lifecycle.companions(paths.image, depth_map)
        report = lifecycle.ErrorReport(job.id, failure.reason, failure.hint, failure.stage)
        return lifecycle.move_to_failed(paths.failed_root, paths.image, extras, report)

    def _input_gone(self, job: JobRecord, paths: Paths) -> None:
        """The photo left the inbox: either this job already finished it, or a person moved it."""
        folder = lifecycle.folder_of_job(paths.output_root, paths.image.stem, job.id)
        manifest = lifecycle.read_manifest(folder) if folder else None
        if folder is not None and manifest is not None:
            extras = lifecycle.companions(paths.image)
            lifecycle.clear_inbox_after_success(paths.image, extras, folder)
            self.ledger.complete(
                job.id,
                output_dir=folder,
                manifest=manifest,
                duplicate_of=manifest.get("duplicate_of"),
            )
            return
        failure = JobFailure(
            f"{paths.image.name} left the inbox before it was processed.",
            "Drop the photo into an inbox folder again to process it.",
            "pickup",
        )
        self.ledger.fail(job.id, failure, output_dir=None)

    def _fail_quietly(self, job: JobRecord, error: Exception) -> None:
        failure = JobFailure(
            f"Internal error: {error!r}.",
            "This is a bug in Strata; please report it with the log.",
            "daemon",
        )
        try:
            folder = self._move_to_failed(job, Paths.of(job, self.settings.value), failure, None)
            self.ledger.fail(job.id, failure, output_dir=folder)
        except Exception:
            logger.exception("job {} could not be marked failed", job.id)

    def _log_line(self, job_id: str, seconds: float) -> None:
        job = self.ledger.get(job_id)
        if job is None:
            return
        line = log_line(job, seconds, shutting_down=self.abort.is_set())
        logger.bind(job=job.id).log("WARNING" if job.status is JobStatus.FAILED else "INFO", line)


def log_line(job: JobRecord, seconds: float, *, shutting_down: bool) -> str:
    """The one line a job's run leaves in the log: how it ended and, if it did not
    complete, why (the reason a person reads in ``error.yaml``) and what happens next."""
    took = f"{seconds:.2f} s"
    name = job.input_filename
    if job.status is JobStatus.COMPLETED:
        reused = f" (the result of job {job.duplicate_of})" if job.duplicate_of else ""
        return f"{name} completed in {took}{reused}"
    if job.status is JobStatus.FAILED:
        return f"{name} failed after {took}: {job.error_message or 'no reason recorded'}"
    if job.status is JobStatus.CANCELLED:
        return f"{name} cancelled after {took}"
    if job.status is JobStatus.PENDING and shutting_down:
        return f"{name} cut short by the shutdown after {took}; it runs again at the next start"
    if job.status is JobStatus.PENDING:
        return f"{name} back in the queue after {took}: {job.error_message or 'to run again'}"
    return f"{name} left {job.status.value} after {took}"
