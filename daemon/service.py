"""`strata run`: start the watcher and the single consumer, supervise them, stop cleanly.

Start-up: refuse unsafe folders, lock the state folder, recover what a dead daemon left
(jobs left ``processing`` run again, half-built folders go), reconcile the queue with
the ledger, start the consumer and the watcher, scan the inbox.
Running: a 0.1 s tick takes settled photos; heartbeats go to the ledger for `strata
health`; a dead observer or worker thread is restarted and the queue reconciled.
SIGTERM/SIGINT: stop taking work, give the running job ``queue.shutdown_grace_seconds``,
then stop it; it is marked interrupted and runs again at the next start. A second
signal stops at once.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from enum import StrEnum
from types import FrameType
from typing import Any

from huey.consumer import Consumer
from loguru import logger

from config.loader import Resolved
from config.model import Mode, Settings
from daemon import lifecycle
from daemon.executor import JobExecutor, Paths
from daemon.intake import Intake
from daemon.ledger import JobLedger, JobStatus, open_ledger
from daemon.notify import desktop_notifier
from daemon.preflight import StateLock, check_folders
from daemon.queue import JobQueue, open_queue, reconcile
from daemon.watcher import InboxWatcher
from daemon.worker import DEFAULT_RUNNER, JobRunner, PipelineWorker
from pipeline.opencv import check_opencv
from pipeline.timing import utc_now

TICK_SECONDS = 0.1
HEARTBEAT_SECONDS = 1.0
SUPERVISE_SECONDS = 1.0
JOIN_SECONDS = 10.0


class Role(StrEnum):
    BOTH = "both"
    WATCHER = "watcher"
    WORKER = "worker"

    @property
    def watches(self) -> bool:
        return self is not Role.WORKER

    @property
    def works(self) -> bool:
        return self is not Role.WATCHER


class Daemon:
    """One `strata run` process. :meth:`run` blocks until a signal stops it."""

    def __init__(
        self,
        settings: Resolved[Settings],
        *,
        role: Role = Role.BOTH,
        worker: JobRunner | None = None,
        runner_reference: str = DEFAULT_RUNNER,
    ) -> None:
        self.settings = settings
        self.role = role
        self.worker = worker or PipelineWorker(
            runner_reference, log_level=settings.value.log.level.value
        )
        self.started_at = utc_now()
        self.stop_requested = threading.Event()
        self.stop_now = threading.Event()
        self._locks: list[StateLock] = []
        self.ledger: JobLedger | None = None
        self.queue: JobQueue | None = None
        self.intake: Intake | None = None
        self.watcher: InboxWatcher | None = None
        self.executor: JobExecutor | None = None
        self.consumer: Consumer | None = None

    # --- start -------------------------------------------------------------------------

    def run(self) -> int:
        try:
            self.start()
            self.install_signal_handlers()
            self.loop()
        finally:
            self.shutdown()
        return 0

    def start(self) -> None:
        value = self.settings.value
        if self.role.works:
            check_opencv()  # before anything is touched: a broken OpenCV names its fix
        check_folders(value)
        value.outbox.mkdir(parents=True, exist_ok=True)
        for role in (Role.WATCHER, Role.WORKER):
            if role is self.role or self.role is Role.BOTH:
                lock = StateLock(value.state_dir, f"daemon-{role.value}")
                lock.acquire()
                self._locks.append(lock)
        self.ledger = open_ledger(value.state_dir, value.queue)
        self.queue = open_queue(value.state_dir, value.queue)
        if self.role.works:
            self._start_worker(self.ledger, self.queue)
        if self.role.watches:
            self._start_watcher(self.ledger, self.queue)
        logger.info(
            "strata run ({}) started, pid {}, inbox {}", self.role.value, os.getpid(), value.inbox
        )

    def _start_worker(self, ledger: JobLedger, queue: JobQueue) -> None:
        recover(self.settings.value, ledger)
        self.executor = JobExecutor(
            self.settings,
            ledger,
            self.worker,
            requeue=lambda job_id, priority, delay: queue.enqueue(
                job_id, priority=priority, delay=delay
            ),
            notify=desktop_notifier(self.settings.value.notify),
        )
        queue.set_executor(self.executor)
        restored = reconcile(queue, _pending(ledger))
        if restored:
            logger.info("{} pending job(s) put back on the queue", len(restored))
        self.worker.start()
        self.consumer = queue.consumer()
        self.consumer.start()

    def _start_watcher(self, ledger: JobLedger, queue: JobQueue) -> None:
        self.intake = Intake(self.settings, ledger, queue)
        roots = [self.settings.value.inbox_for(mode) for mode in Mode]
        self.watcher = InboxWatcher(
            roots,
            on_file=self.intake.on_file,
            on_folder=self.intake.on_folder,
            polling=self.settings.value.watch.polling,
        )
        self.watcher.start()
        self.intake.rescan()

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stop_requested.is_set():
            self.stop_now.set()
        self.stop_requested.set()

    # --- run ---------------------------------------------------------------------------

    def loop(self) -> None:
        rescan_every = self.settings.value.watch.rescan_seconds
        next_rescan = time.monotonic() + rescan_every
        next_supervise = 0.0
        while not self.stop_requested.wait(TICK_SECONDS):
            if self.intake is not None:
                self.intake.tick()
            now = time.monotonic()
            if now >= next_rescan:
                next_rescan = now + rescan_every
                self._rescan()
            if now >= next_supervise:
                next_supervise = now + SUPERVISE_SECONDS
                self.supervise()

    def _rescan(self) -> None:
        if self.intake is not None:
            self.intake.rescan()
        if self.queue is not None and self.ledger is not None and self.role.works:
            reconcile(self.queue, _pending(self.ledger), running=self._running_job())

    def supervise(self) -> None:
        """Restart what died; then tell `strata health` everything is alive."""
        if self.watcher is not None:
            self.watcher.ensure_alive()
        if self.consumer is not None and not self.consumer.check_worker_health():
            self._after_worker_death()
        if self.role.works:
            self._requeue_lost()
        self.beat()

    def _requeue_lost(self) -> None:
        """Jobs of workers (on any machine) whose lease expired run again here or there;
        those with no retries left end as failed jobs, by whichever worker takes them."""
        assert self.ledger is not None
        assert self.queue is not None
        retries = self.settings.value.queue.retries
        for job in self.ledger.requeue_lost(retries=retries):
            logger.bind(job=job.id).warning(
                "{}: its worker stopped answering; it runs again", job.input_filename
            )
            self.queue.enqueue(job.id, priority=job.priority)
        for job in self.ledger.take_over_lost(retries=retries):
            logger.bind(job=job.id).error(
                "{}: its worker stopped answering and no retries are left; it failed",
                job.input_filename,
            )
            lifecycle.fail_lost(self.ledger, job, Paths.of(job, self.settings.value))

    def _after_worker_death(self) -> None:
        assert self.ledger is not None
        assert self.queue is not None
        for job in self.ledger.with_status(JobStatus.PROCESSING):
            if job.id != self._running_job():
                self.ledger.requeue(job.id, interrupted=True)
        reconcile(self.queue, _pending(self.ledger), running=self._running_job())

    def _running_job(self) -> str | None:
        return self.executor.running_job if self.executor else None

    def beat(self) -> None:
        if self.ledger is None:
            return
        details = self._details()
        for role in (Role.WATCHER, Role.WORKER):
            if role is self.role or self.role is Role.BOTH:
                self.ledger.beat(role.value, started_at=self.started_at, details=details)

    def _details(self) -> dict[str, Any]:
        value = self.settings.value
        return {
            "role": self.role.value,
            "watched": [str(value.inbox_for(mode)) for mode in Mode] if self.role.watches else [],
            "observer_alive": bool(self.watcher and self.watcher.alive),
            "polling": value.watch.polling,
            "consumer_alive": self._consumer_alive(),
            "pipeline_pid": getattr(self.worker, "pid", None),
            "running_job": self._running_job(),
            "queue_depth": self.queue.depth() if self.queue else None,
        }

    def _consumer_alive(self) -> bool:
        if self.consumer is None:
            return False
        return all(thread.is_alive() for _, thread in self.consumer.worker_threads)

    # --- stop --------------------------------------------------------------------------

    def shutdown(self) -> None:
        logger.info("stopping: no new work is taken")
        if self.watcher is not None:
            self.watcher.stop()
        if self.consumer is not None:
            self._stop_consumer(self.consumer)
        self.worker.close()
        if self.ledger is not None:
            for role in (Role.WATCHER, Role.WORKER):
                self.ledger.clear_beat(role.value)
            self.ledger.close()
        for lock in self._locks:
            lock.release()
        logger.info("stopped")

    def _stop_consumer(self, consumer: Consumer) -> None:
        consumer.stop_flag.set()
        executor = self.executor
        if executor is not None:
            executor.accepting = False
            grace = self.settings.value.queue.shutdown_grace_seconds
            deadline = time.monotonic() + grace
            if executor.running_job:
                logger.info("waiting up to {:g} s for job {}", grace, executor.running_job)
            while executor.running_job and time.monotonic() < deadline:
                if self.stop_now.wait(TICK_SECONDS):
                    break
            executor.abort.set()
        for _, thread in consumer.worker_threads:
            thread.join(JOIN_SECONDS)
        consumer.scheduler.join(JOIN_SECONDS)


def _pending(ledger: JobLedger) -> list[tuple[str, int]]:
    return [(job.id, job.priority) for job in ledger.with_status(JobStatus.PENDING)]


def recover(settings: Settings, ledger: JobLedger) -> None:
    """Undo what a killed daemon left half-done; its jobs run again (exactly once).

    With the Redis ledger only this worker's own jobs are its to undo; half-built folders
    are removed only while no job runs anywhere (another worker may be building one)."""
    requeued = []
    for job in ledger.with_status(JobStatus.PROCESSING):
        if ledger.requeue(job.id, interrupted=True):
            paths = Paths.of(job, settings)
            lifecycle.restore_failed_temp(paths.failed_root, job.id, paths.image.parent)
            requeued.append(job.id)
    if requeued:
        logger.warning("{} job(s) were interrupted and run again", len(requeued))
    if ledger.with_status(JobStatus.PROCESSING):
        return
    for mode in Mode:
        for temp in lifecycle.remove_temp_folders(settings.outbox_for(mode)):
            logger.info("removed the unfinished folder {}", temp)
