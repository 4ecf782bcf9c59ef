"""Supervise the pipeline process: send it a job, wait with a deadline, kill it when told.

The consumer's worker thread calls :meth:`PipelineWorker.run` and blocks there; the
pipeline itself runs in a spawned child (:mod:`daemon.worker_child`) that keeps models
warm; the two talk in :mod:`daemon.protocol`'s messages. A timeout, a cancel or a
shutdown kills the child; a crash is noticed. Either way the next job gets a fresh child,
so the worker always comes back.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from loguru import logger

from daemon.protocol import ChildMessage, Exit, Failed, Progress, Ready, Succeeded
from daemon.worker_child import serve
from pipeline.job import Job

DEFAULT_RUNNER = "pipeline.runner:run"  # imported in the child, before it reports ready
POLL_SECONDS = 0.2
START_TIMEOUT_SECONDS = 120.0
KILL_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Stopped:
    """The job was stopped from outside: ``why`` is "cancel", "shutdown" or "lost" (this
    worker's lease on it expired, so another worker runs it)."""

    why: str


Outcome = Succeeded | Failed | Stopped
StopCheck = Callable[[], str | None]
"""Returns "cancel", "shutdown" or "lost" when the running job must stop, else None."""
ProgressSink = Callable[[str, float], None]


class JobRunner(Protocol):
    """What the executor needs from a pipeline worker (a fake in unit tests)."""

    def run(
        self,
        job: Job,
        *,
        timeout: float,
        should_stop: StopCheck,
        progress: ProgressSink | None = None,
    ) -> Outcome: ...

    def start(self) -> None: ...

    def close(self) -> None: ...

    @property
    def alive(self) -> bool: ...


class PipelineWorker:
    """One spawned pipeline process at a time, restarted on demand."""

    def __init__(self, runner_reference: str = DEFAULT_RUNNER, *, log_level: str = "INFO") -> None:
        self.runner_reference = runner_reference
        self.log_level = log_level
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._ready = False

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.alive and self._process else None

    def start(self) -> None:
        """Start the child if none is running (imports happen there, not here)."""
        if self.alive:
            return
        self._discard()
        parent_conn, child_conn = self._context.Pipe()
        process = self._context.Process(
            target=serve,
            kwargs={
                "conn": child_conn,
                "runner_reference": self.runner_reference,
                "log_level": self.log_level,
            },
            name="strata-pipeline",
            daemon=True,
        )
        process.start()
        child_conn.close()
        self._process, self._conn = process, parent_conn
        self._ready = False
        logger.debug("pipeline process {} started", process.pid)

    def run(
        self,
        job: Job,
        *,
        timeout: float,
        should_stop: StopCheck,
        progress: ProgressSink | None = None,
    ) -> Outcome:
        self.start()
        conn = self._conn
        assert conn is not None
        started = self._listen(
            conn,
            deadline=time.monotonic() + START_TIMEOUT_SECONDS,
            timed_out=_timed_out(
                f"The pipeline process did not start within {START_TIMEOUT_SECONDS:g} s.",
                hint="The machine may be overloaded or short of memory; see the log.",
                stage="worker",
            ),
            should_stop=should_stop,
            until_ready=True,
        )
        if started is not None:
            return started
        try:
            conn.send(job)
        except (OSError, ValueError):
            return self._crashed()
        # The job's time starts once the process is ready: its imports are not the job's.
        outcome = self._listen(
            conn,
            deadline=time.monotonic() + timeout,
            timed_out=_timed_out(
                f"The job took longer than queue.job_timeout_seconds ({timeout:g} s).",
                hint="Raise queue.job_timeout_seconds, or lower max_side or steps for this photo.",
                stage="timeout",
            ),
            should_stop=should_stop,
            progress=progress,
        )
        assert outcome is not None  # without until_ready, only an outcome ends listening
        return outcome

    def _listen(
        self,
        conn: Connection,
        *,
        deadline: float,
        timed_out: Failed,
        should_stop: StopCheck,
        progress: ProgressSink | None = None,
        until_ready: bool = False,
    ) -> Outcome | None:
        """Wait for the child's outcome, or only for its "ready" with ``until_ready``
        (then None means ready). A stop request or the deadline kills the child."""
        while not (until_ready and self._ready):
            why = should_stop()
            if why is not None:
                self.kill()
                return Stopped(why)
            if time.monotonic() >= deadline:
                self.kill()
                return timed_out
            message = self._receive(conn)
            if message is _CRASHED:
                return self._crashed()
            if message is None:
                continue
            outcome = self._outcome(message, progress)
            if outcome is not None:
                return outcome
        return None

    def _receive(self, conn: Connection) -> Any:
        try:
            if conn.poll(POLL_SECONDS):
                return conn.recv()
        except (EOFError, OSError):
            return _CRASHED
        return None if self.alive else _CRASHED

    def _outcome(self, message: ChildMessage, progress: ProgressSink | None) -> Outcome | None:
        if isinstance(message, Ready):
            self._ready = True
            return None
        if isinstance(message, Progress):
            if progress is not None:
                progress(message.stage, message.fraction)
            return None
        if isinstance(message, Succeeded | Failed):
            return message
        return None  # anything unknown

    def _crashed(self) -> Failed:
        if self._process is not None:
            self._process.join(1.0)
        code = self._process.exitcode if self._process else None
        self.kill()
        return Failed(
            reason=f"The pipeline process crashed (exit code {code}).",
            hint="Often a lack of memory: lower max_side, or close other apps. See the log.",
            stage="worker",
            transient=True,
            error_class="WorkerCrash",
        )

    def kill(self) -> None:
        """Kill the child now (timeout, cancel, shutdown); the next job starts a fresh one."""
        process = self._process
        if process is not None and process.is_alive():
            process.kill()
            process.join(KILL_WAIT_SECONDS)
        self._discard()

    def close(self) -> None:
        """Ask the child to exit after its current job; kill it if it does not."""
        if self._conn is not None and self.alive:
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(Exit())
            if self._process is not None:
                self._process.join(KILL_WAIT_SECONDS)
        self.kill()

    def _discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None


def _timed_out(reason: str, *, hint: str, stage: str) -> Failed:
    """A deadline passed: the child is killed, and the job may run again."""
    return Failed(reason=reason, hint=hint, stage=stage, transient=True, error_class="TimeoutError")


_CRASHED = object()
