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
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from config.errors import StrataError
from config.model import LogLevel, LogSettings
from daemon.allocator import keep_freed_memory, release_freed_memory
from daemon.logs import configure_logging
from daemon.protocol import ChildMessage, Exit, Failed, Progress, Ready, Succeeded
from daemon.retry import TRANSIENT_ERRNOS
from pipeline.models import ModelCache, offline_environment

PARENT_CHECK_SECONDS = 0.5
IDLE_RELEASE_SECONDS = 30.0
"""Memory the jobs freed stays in the process while jobs keep coming (a storm reuses it,
see :mod:`daemon.allocator`) and goes back to the system once none came for this long."""


def _load_runner(reference: str) -> Callable[..., Any]:
    """``"package.module:function"`` → the function."""
    module_name, _, attribute = reference.partition(":")
    runner: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
    return runner


def serve(conn: Connection, runner_reference: str, log_level: str) -> None:
    """Run jobs sent over ``conn`` until it closes or sends :class:`Exit`."""
    keep_freed_memory()  # before any thread allocates: one heap for all of them
    _exit_with_parent(os.getppid())
    _configure_logging(log_level)
    offline_environment()
    runner = _load_runner(runner_reference)
    cache = ModelCache()
    conn.send(Ready(pid=os.getpid()))
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
        if isinstance(job, Exit):
            return
        conn.send(_run_one(runner, job, cache, conn))
        holding = True


def _run_one(runner: Callable[..., Any], job: Any, cache: Any, conn: Connection) -> ChildMessage:
    def progress(stage: str, fraction: float) -> None:
        conn.send(Progress(stage=stage, fraction=fraction))

    try:
        result = runner(job, cache=cache, progress=progress)
    except StrataError as error:
        return Failed(
            reason=error.reason,
            hint=error.hint,
            stage=error.stage,
            error_class=type(error).__name__,
        )
    except OSError as error:
        return Failed(
            reason=f"{error.strerror or error}.",
            hint="Check free disk space and that the outbox is writable.",
            stage="write",
            transient=error.errno in TRANSIENT_ERRNOS,
            error_class=type(error).__name__,
        )
    except Exception as error:  # a bug: keep the worker alive, report it in full
        sys.stderr.write(traceback.format_exc())
        return Failed(
            reason=f"Internal error: {error!r}.",
            hint="This is a bug in Strata; please report it with the log.",
            stage="pipeline",
            error_class=type(error).__name__,
        )
    return Succeeded(output_dir=Path(result.output_dir), manifest=result.manifest)


def _exit_with_parent(parent_pid: int) -> None:
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _configure_logging(level: str) -> None:
    configure_logging(LogSettings(level=LogLevel(level)))
