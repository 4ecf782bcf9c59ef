"""The Huey queue: SQLite-backed (or Redis, shared by several machines), one thin task
that carries a job id and nothing else.

The ledger decides whether a job runs (an atomic claim); the queue only orders the work
(``priority`` higher first) and wakes the consumer. A task lost with a dead worker is
put back by :func:`reconcile` from the ledger, which is also the safety net while the
queue's Redis is unreachable: an enqueue that fails is logged and dropped, and the
pending job is enqueued again once Redis answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from huey import RedisHuey, SqliteHuey
from huey.api import Huey
from huey.consumer import Consumer
from huey.storage import SqliteStorage
from loguru import logger
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.model import QueueBackend, QueueSettings

QUEUE_FILE = "queue.db"
QUEUE_NAME = "strata"
TASK_NAME = "run_job"

JobExecutor = Callable[[str], None]
POLL_SECONDS = 0.25
"""How often an idle consumer looks for jobs queued by another process (`strata retry`)."""
REDIS_READ_TIMEOUT = 1.0
"""An idle Redis consumer blocks on the list this long per wait (an enqueue wakes it)."""
QUEUE_DOWN = (RedisConnectionError, RedisTimeoutError)


class WakingSqliteStorage(SqliteStorage):  # type: ignore[misc]
    """Huey's SQLite storage, with an idle consumer woken by an enqueue in this process.

    Huey polls a SQLite queue, backing off to the consumer's longest delay, so a photo
    queued while the worker was idle waited up to that long. The daemon enqueues and
    consumes in one process: an enqueue here sets an event the idle worker waits on (it
    declares itself ``blocking``, so Huey's worker loop does not sleep on top), and jobs
    queued by another process are still found within :data:`POLL_SECONDS`.
    """

    blocking = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queued = threading.Event()

    def enqueue(self, data: bytes, priority: int | None = None) -> None:
        super().enqueue(data, priority=priority)
        self._queued.set()

    def dequeue(self) -> bytes | None:
        self._queued.clear()  # before looking: an enqueue from now on is not missed
        data: bytes | None = super().dequeue()
        if data is None:
            self._queued.wait(POLL_SECONDS)
        return data


class JobQueue:
    """Enqueue job ids; in the daemon, also the consumer that hands them to an executor."""

    def __init__(self, huey: Huey) -> None:
        self.huey = huey
        self._executor: JobExecutor | None = None
        self._task = huey.task(name=TASK_NAME)(self._run)

    def _run(self, job_id: str) -> None:
        if self._executor is None:
            raise RuntimeError("this queue has no executor (only the daemon runs jobs)")
        self._executor(job_id)

    def set_executor(self, executor: JobExecutor) -> None:
        self._executor = executor

    def enqueue(self, job_id: str, *, priority: int = 0, delay: float = 0.0) -> None:
        """Queue the job; when Redis is down the job stays pending in the ledger and
        :func:`reconcile` queues it once Redis is back."""
        try:
            if delay > 0:
                self._task.schedule(args=(job_id,), delay=delay, priority=priority)
            else:
                self.huey.enqueue(self._task.s(job_id, priority=priority))
        except QUEUE_DOWN as error:
            logger.error("the queue is unreachable ({}); job {} is queued later", error, job_id)

    def queued_job_ids(self) -> list[str]:
        ids: list[str] = []
        for task in [*self.huey.pending(), *self.huey.scheduled()]:
            args: tuple[Any, ...] = task.args or ()
            if args:
                ids.append(str(args[0]))
        return ids

    def depth(self) -> int | None:
        try:
            return int(self.huey.pending_count())
        except QUEUE_DOWN:
            return None

    def consumer(self, *, poll_max_delay: float = POLL_SECONDS) -> Consumer:
        """One worker thread; it blocks on the supervised pipeline process, never on torch.
        (The delays apply to Redis; the SQLite storage wakes the worker itself.)"""
        return Consumer(
            self.huey,
            workers=1,
            worker_type="thread",
            periodic=False,
            initial_delay=0.05,
            backoff=1.5,
            max_delay=poll_max_delay,
            check_worker_health=True,
            health_check_interval=1.0,
        )


def open_queue(state_dir: Path, settings: QueueSettings) -> JobQueue:
    return JobQueue(make_huey(state_dir, settings))


def make_huey(state_dir: Path, settings: QueueSettings) -> Huey:
    if settings.backend is QueueBackend.REDIS:
        return _redis_huey(settings.redis_url)
    state_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(
        name=QUEUE_NAME,
        storage_class=WakingSqliteStorage,
        filename=str(state_dir / QUEUE_FILE),
        results=False,
        utc=True,
        timeout=10,
    )


def _redis_huey(url: str) -> Huey:
    """Blocking reads: an idle worker on any machine wakes at the enqueue (Redis' list
    has no priorities; the ledger's order still holds across reconciles)."""
    return RedisHuey(
        name=QUEUE_NAME,
        url=url,
        results=False,
        utc=True,
        blocking=True,
        read_timeout=REDIS_READ_TIMEOUT,
    )


def reconcile(
    queue: JobQueue, pending: Iterable[tuple[str, int]], *, running: str | None = None
) -> list[str]:
    """Enqueue each pending ledger job the queue lacks; returns the ids put back."""
    try:
        queued = set(queue.queued_job_ids())
    except QUEUE_DOWN as error:
        logger.error("the queue is unreachable ({}); pending jobs are queued later", error)
        return []
    restored = []
    for job_id, priority in pending:
        if job_id not in queued and job_id != running:
            queue.enqueue(job_id, priority=priority)
            restored.append(job_id)
    return restored
