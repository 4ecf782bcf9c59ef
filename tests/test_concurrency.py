"""The shared pool: worker counts from the machine or an override, ordered results, and
nesting that cannot deadlock whatever the pool's size."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError

import pytest

from pipeline import concurrency
from pipeline.concurrency import (
    CPU_COUNT_ENV,
    Task,
    TaskGroup,
    map_parallel,
    set_worker_count,
    submit,
    worker_count,
)


@pytest.fixture(autouse=True)
def machine_count(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(CPU_COUNT_ENV, raising=False)
    yield
    set_worker_count(None)


def finishes(work: Callable[[], object], *, seconds: float = 20.0) -> object:
    """``work()``'s result, failing the test (instead of hanging) if it deadlocks."""
    box: list[object] = []
    thread = threading.Thread(target=lambda: box.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "deadlock"
    return box[0]


def test_the_count_is_the_cpus_this_process_may_use() -> None:
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert worker_count() == expected


def test_the_count_can_be_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPU_COUNT_ENV, "8")
    assert worker_count() == 8
    set_worker_count(3)
    assert worker_count() == 3
    set_worker_count(None)
    monkeypatch.setenv(CPU_COUNT_ENV, "default")
    assert worker_count() >= 1


@pytest.mark.parametrize("raw", ["0", "-2", "many"])
def test_a_bad_override_names_the_variable_and_the_range(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv(CPU_COUNT_ENV, raw)
    with pytest.raises(ValueError, match=rf"{CPU_COUNT_ENV}.*integer ≥ 1"):
        worker_count()
    with pytest.raises(ValueError, match="integer ≥ 1"):
        set_worker_count(0)


@pytest.mark.parametrize("count", [1, 2, 8])
def test_map_keeps_the_items_order(count: int) -> None:
    set_worker_count(count)
    assert map_parallel(lambda x: x * x, range(50)) == [x * x for x in range(50)]
    assert map_parallel(lambda x: x, []) == []


def test_map_uses_several_threads() -> None:
    set_worker_count(4)
    seen: set[int] = set()

    def work(_: int) -> None:
        seen.add(threading.get_ident())
        time.sleep(0.05)  # long enough for idle workers to take the other items

    finishes(lambda: map_parallel(work, range(8)))
    assert len(seen) >= 2


def test_map_raises_the_first_error_and_leaves_nothing_running() -> None:
    set_worker_count(2)

    def work(x: int) -> int:
        if x == 0:
            raise KeyError("first")
        time.sleep(0.01)
        return x

    with pytest.raises(KeyError, match="first"):
        map_parallel(work, range(20))


@pytest.mark.parametrize("count", [1, 2, 3])
def test_nested_maps_never_deadlock(count: int) -> None:
    """Three levels of maps, each wider than the pool, every worker busy waiting."""
    set_worker_count(count)

    def leaf(x: int) -> int:
        time.sleep(0.001)
        return x

    def middle(x: int) -> int:
        return sum(map_parallel(leaf, range(x, x + 6)))

    def outer(x: int) -> int:
        return sum(map_parallel(middle, range(x, x + 6)))

    expected = [sum(sum(range(m, m + 6)) for m in range(x, x + 6)) for x in range(6)]
    assert finishes(lambda: map_parallel(outer, range(6))) == expected


def test_a_task_waited_on_inside_a_busy_pool_runs_on_the_waiting_thread() -> None:
    set_worker_count(1)

    def outer() -> int:
        inner = submit(threading.get_ident)  # queued behind this very task
        return inner.result()

    here = submit(outer)
    assert finishes(here.result) is not None


def test_a_task_runs_once_and_raises_its_error() -> None:
    calls: list[int] = []

    def once() -> int:
        calls.append(1)
        return 7

    task: Task[int] = submit(once)
    assert task.result() == 7
    assert task.result() == 7
    assert calls == [1]
    failing = submit(lambda: 1 // 0)
    with pytest.raises(ZeroDivisionError):
        failing.result()


def test_a_group_cancels_what_has_not_started() -> None:
    set_worker_count(1)
    gate = threading.Event()
    ran: list[str] = []
    with TaskGroup() as group:
        blocker = group.submit(gate.wait, 10)
        later = group.submit(ran.append, "later")
        time.sleep(0.05)
        gate.set()
    blocker.wait()
    time.sleep(0.05)  # the pool's worker reaches the cancelled task
    assert ran in ([], ["later"])  # it either ran before the group closed or never
    if not ran:
        with pytest.raises(CancelledError):
            later.result()


def test_the_pool_is_made_on_first_use_with_the_count() -> None:
    set_worker_count(3)
    assert concurrency._state.pool is None
    submit(lambda: None).result()
    assert concurrency._state.pool is not None
    assert concurrency._state.pool._max_workers == 3
