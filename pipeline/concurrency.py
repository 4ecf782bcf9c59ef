"""The one concurrency policy of the pipeline: how many workers, and the pool they share.

Numpy, OpenCV and SciPy release the GIL in their array loops, so threads run image work
side by side. The pipeline never makes a thread pool of its own; it uses this module:

- :func:`worker_count` — how many threads compute at once: the CPUs this process may run
  on (its affinity mask, else ``os.cpu_count()``), or the override of
  :data:`CPU_COUNT_ENV` or :func:`set_worker_count` (a benchmark simulating 8 cores).
- :func:`map_parallel` ``(fn, items)`` — ``[fn(item) for item in items]``, spread over the
  shared pool; results in the items' order, the first error raised.
- :func:`submit` ``(fn, *args)`` — a :class:`Task` started on the shared pool; its
  :meth:`Task.result` waits for it. :class:`TaskGroup` owns tasks that must not outlive a
  block (leaving it cancels those not started and waits for those running).

One pool per process, made on first use with :func:`worker_count` threads (a forked child
makes its own). Calls nest freely, from any thread, pool workers included, and cannot
deadlock, whatever the pool's size: a task is *claimed* by the first thread that runs it,
a pool worker or the thread asking for its result, and a thread only ever waits for a task
another thread is already running. So :meth:`Task.result` on a task still queued runs it
on the spot, and :func:`map_parallel` runs on the calling thread every item no idle worker
has taken; work inside a busy pool simply runs serially.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

__all__ = [
    "CPU_COUNT_ENV",
    "Task",
    "TaskGroup",
    "map_parallel",
    "set_worker_count",
    "submit",
    "worker_count",
]

CPU_COUNT_ENV = "PYTHON_CPU_COUNT"
"""An integer ≥ 1 here overrides the machine's CPU count (``default`` or empty: no
override). It is the variable Python 3.13 itself reads for ``os.cpu_count()``; a name
under ``STRATA_`` would be read as a setting by :mod:`config.loader`."""

_T = TypeVar("_T")
_Item = TypeVar("_Item")


class _State:
    """The process's pool and override (one instance, :data:`_state`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pool: ThreadPoolExecutor | None = None
        self.override: int | None = None


_state = _State()


def worker_count() -> int:
    """How many threads compute at once: :func:`set_worker_count`'s count, else
    :data:`CPU_COUNT_ENV`'s, else the CPUs in this process's affinity mask (where the
    platform has one), else ``os.cpu_count()``; at least 1."""
    if _state.override is not None:
        return _state.override
    raw = os.environ.get(CPU_COUNT_ENV, "").strip()
    if raw and raw != "default":
        try:
            count = int(raw)
        except ValueError:
            count = 0
        if count < 1:
            raise ValueError(
                f"{CPU_COUNT_ENV}={raw!r} is invalid: allowed an integer ≥ 1 or 'default'."
            )
        return count
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def set_worker_count(count: int | None) -> None:
    """Use ``count`` workers in this process from now on (``None``: back to the machine's
    count). The shared pool is remade at its next use; tasks already queued still run."""
    if count is not None and count < 1:
        raise ValueError(f"count = {count!r} is invalid: allowed an integer ≥ 1 or None.")
    with _state.lock:
        _state.override = count
        old, _state.pool = _state.pool, None
    if old is not None:
        old.shutdown(wait=False)


class Task(Generic[_T]):
    """``fn(*args, **kwargs)``, run once by whichever thread claims it first: a pool worker,
    or the thread that asks for :meth:`result` before any worker has started it."""

    def __init__(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> None:
        self._call: Callable[[], _T] | None = lambda: fn(*args, **kwargs)
        self._claim = threading.Lock()
        self._finished = threading.Event()
        self._value: _T | None = None
        self._error: BaseException | None = None

    def _run_if_unclaimed(self) -> bool:
        """Run the task here unless another thread has it; whether this thread ran it."""
        if not self._claim.acquire(blocking=False):
            return False
        call, self._call = self._call, None
        try:
            if call is None:  # cancelled
                self._error = CancelledError()
            else:
                self._value = call()
        except BaseException as error:  # handed to whoever asks for the result
            self._error = error
        finally:
            self._finished.set()
        return True

    def result(self) -> _T:
        """The return value (or the error raised again); runs the task on this thread if
        no worker has started it yet, else waits for the worker running it."""
        self._run_if_unclaimed()
        self._finished.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def cancel(self) -> bool:
        """Keep the task from ever running, unless it has started; whether it was stopped."""
        if not self._claim.acquire(blocking=False):
            return False
        self._call = None
        self._error = CancelledError()
        self._finished.set()
        return True

    def wait(self) -> None:
        """Wait until the task has run or been cancelled, without raising its error."""
        self._finished.wait()


def submit(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> Task[_T]:
    """``fn(*args, **kwargs)`` queued on the shared pool, as a :class:`Task`."""
    task = Task(fn, *args, **kwargs)
    _shared_pool().submit(task._run_if_unclaimed)
    return task


class TaskGroup:
    """Tasks that end with a block: leaving it cancels those not started and waits for
    those running (their errors are raised by :meth:`Task.result`, not here)."""

    def __init__(self) -> None:
        self._tasks: list[Task[Any]] = []

    def submit(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> Task[_T]:
        task = submit(fn, *args, **kwargs)
        self._tasks.append(task)
        return task

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            task.wait()
        self._tasks.clear()

    def __enter__(self) -> TaskGroup:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def map_parallel(fn: Callable[[_Item], _T], items: Iterable[_Item]) -> list[_T]:
    """``[fn(item) for item in items]``, the items spread over the shared pool and the
    calling thread (which runs every item no worker has taken); the results in the
    items' order. The first error is raised once no item is running; items not yet
    started are dropped."""
    todo = list(items)
    if len(todo) <= 1 or worker_count() <= 1:
        return [fn(item) for item in todo]
    tasks = [submit(fn, item) for item in todo[1:]]
    try:
        first = fn(todo[0])
        for task in tasks:
            task._run_if_unclaimed()
        return [first, *(task.result() for task in tasks)]
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            task.wait()


def _shared_pool() -> ThreadPoolExecutor:
    with _state.lock:
        if _state.pool is None:
            count = worker_count()
            _state.pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="strata")
        return _state.pool


def _forget_pool() -> None:
    """In a forked child: the parent's worker threads do not exist there."""
    _state.lock, _state.pool = threading.Lock(), None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)
