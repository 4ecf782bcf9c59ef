"""The pipeline process: the one place the daemon imports the pipeline's heavy parts.

Started with the ``spawn`` method by :mod:`daemon.worker` (never forked: torch and its
thread pools do not survive a fork). It keeps one :class:`~pipeline.models.ModelCache`
for its whole life, so models load once and stay warm across jobs. It exits when its
parent dies, so a ``kill -9`` of the daemon never leaves a job running behind it.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from config.errors import StrataError
from config.model import LogLevel, LogSettings
from daemon.logs import configure_logging
from daemon.retry import TRANSIENT_ERRNOS
from pipeline.memory import keep_freed_memory, release_freed_memory
from pipeline.models import ModelCache, offline_environment

PARENT_CHECK_SECONDS = 0.5
IDLE_RELEASE_SECONDS = 30.0
"""Memory the jobs freed stays in the process while jobs keep coming (a storm reuses it,
see :mod:`pipeline.memory`) and goes back to the system once none came for this long."""


@dataclass(frozen=True)
class Ready:
    """The child imported the runner and waits for jobs."""

    pid: int


@dataclass(frozen=True)
class Progress:
    stage: str
    fraction: float


@dataclass(frozen=True)
class Done:
    output_dir: Path
    manifest: dict[str, Any]


@dataclass(frozen=True)
class Error:
    """The job raised: ``transient`` errors may run again."""

    error_class: str
    reason: str
    hint: str
    stage: str
    transient: bool


Message = Ready | Progress | Done | Error
"""What the child sends the parent (pickled over the pipe); the parent sends a
:class:`~pipeline.job.Job`, or None to ask the child to exit."""


def load_runner(reference: str) -> Callable[..., Any]:
    """``"package.module:function"`` → the function."""
    module_name, _, attribute = reference.partition(":")
    runner: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
    return runner


def serve(conn: Connection, runner_reference: str, log_level: str) -> None:
    """Run jobs sent over ``conn`` until it closes or sends ``None``."""
    keep_freed_memory()  # before any thread allocates: one heap for all of them
    _exit_with_parent(os.getppid())
    _configure_logging(log_level)
    offline_environment()
    runner = load_runner(runner_reference)
    cache = ModelCache()
    conn.send(Ready(os.getpid()))
    holding = False  # freed memory kept since the last job
    while True:
        try:
            if holding and not conn.poll(IDLE_RELEASE_SECONDS):
                release_freed_memory()
                holding = False
                continue
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(_run_one(runner, job, cache, conn))
        holding = True


def _run_one(runner: Callable[..., Any], job: Any, cache: Any, conn: Connection) -> Message:
    def progress(stage: str, fraction: float) -> None:
        conn.send(Progress(stage, fraction))

    try:
        result = runner(job, cache=cache, progress=progress)
    except StrataError as error:
        return Error(type(error).__name__, error.reason, error.hint, error.stage, False)
    except OSError as error:
        transient = error.errno in TRANSIENT_ERRNOS
        return Error(
            type(error).__name__,
            f"{error.strerror or error}.",
            "Check free disk space and that the outbox is writable.",
            "write",
            transient,
        )
    except Exception as error:  # a bug: keep the worker alive, report it in full
        sys.stderr.write(traceback.format_exc())
        return Error(
            type(error).__name__,
            f"Internal error: {error!r}.",
            "This is a bug in Strata; please report it with the log.",
            "pipeline",
            False,
        )
    return Done(Path(result.output_dir), result.manifest)


def _exit_with_parent(parent_pid: int) -> None:
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _configure_logging(level: str) -> None:
    configure_logging(LogSettings(level=LogLevel(level)))
