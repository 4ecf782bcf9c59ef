"""The job ledger: one active job per input, atomic claims, recovery, follow versions.

Every ledger test runs against both ledgers: SQLite and a real redis-server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from huey import MemoryHuey
from redis_server import RedisServer, started
from test_process import SEED_FIELDS

from config.errors import JobNotFoundError, JobStateError
from config.model import QueueSettings
from daemon.ledger import (
    JobFailure,
    JobInputs,
    JobLedger,
    JobStatus,
    Ledger,
)
from daemon.ledger_redis import RedisLedger
from daemon.queue import POLL_SECONDS, JobQueue, open_queue, reconcile


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = started(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobLedger]:
    if request.param == "sqlite":
        yield Ledger.in_state_dir(tmp_path)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    server.flush()
    redis_ledger = RedisLedger(server.url, owner="test-worker", patience=5.0)
    yield redis_ledger
    redis_ledger.close()


def new_job(ledger: JobLedger, name: str = "a.jpg", priority: int = 0) -> str:
    job = ledger.create_job(
        mode="photo-realistic",
        input_path=Path("/in") / name,
        input_key=f"photo-realistic/{name}",
        priority=priority,
    )
    assert job is not None
    return job.id


def test_an_input_has_at_most_one_active_job(ledger: JobLedger) -> None:
    first = new_job(ledger)
    assert (
        ledger.create_job(
            mode="photo-realistic", input_path=Path("/in/a.jpg"), input_key="photo-realistic/a.jpg"
        )
        is None
    )
    ledger.claim(first)
    ledger.complete(first, output_dir=Path("/out/a"), manifest={"job_id": first})
    assert new_job(ledger) != first  # once it ended, the same name may come again


def test_claim_is_exactly_once_even_when_raced(ledger: JobLedger) -> None:
    job_id = new_job(ledger)
    wins: list[bool] = []
    threads = [
        threading.Thread(target=lambda: wins.append(ledger.claim(job_id) is not None))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == 1
    record = ledger.get(job_id)
    assert record is not None
    assert record.status is JobStatus.PROCESSING
    assert record.attempts == 1
    assert record.started_at is not None


def test_interrupted_jobs_go_back_to_pending_without_losing_a_retry(ledger: JobLedger) -> None:
    job_id = new_job(ledger)
    ledger.claim(job_id)
    assert ledger.interrupted_to_pending() == [job_id]
    record = ledger.get(job_id)
    assert record is not None
    assert record.status is JobStatus.PENDING
    assert record.attempts == 0


def test_failure_and_completion_record_times_and_fields(ledger: JobLedger) -> None:
    job_id = new_job(ledger, "b.jpg")
    ledger.claim(job_id)
    inputs = JobInputs(
        "ab" * 32, "key", {"num_layers": 3, "style": "ink", "strength": 0.2, "seed": 1}, 0
    )
    ledger.record_inputs(job_id, "painterly", inputs)
    ledger.fail(job_id, JobFailure("Bad.", "Fix it.", "decode"), output_dir=Path("/f/b"))
    record = ledger.get(job_id)
    assert record is not None
    public = record.public()
    assert list(public)[: len(SEED_FIELDS)] == SEED_FIELDS
    assert public["status"] == "failed"
    assert public["painterly_style"] == "ink"
    assert public["error_message"] == "Bad."
    assert isinstance(public["processing_time"], float)


def test_earlier_result_matches_bytes_settings_and_mode(ledger: JobLedger) -> None:
    inputs = JobInputs("cd" * 32, "same", {}, 0)
    first = new_job(ledger, "one.jpg")
    ledger.claim(first)
    ledger.record_inputs(first, "photo-realistic", inputs)
    ledger.complete(first, output_dir=Path("/o/one"), manifest={})
    second = new_job(ledger, "two.jpg")
    record = ledger.claim(second)
    assert record is not None
    earlier = ledger.earlier_result(record, inputs)
    assert earlier is not None
    assert earlier.id == first
    assert ledger.earlier_result(record, JobInputs("cd" * 32, "other", {}, 0)) is None


def test_find_by_unique_prefix(ledger: JobLedger) -> None:
    job_id = new_job(ledger)
    assert ledger.find(job_id[:6]).id == job_id
    with pytest.raises(JobNotFoundError):
        ledger.find("zzzz")


def test_changes_since_streams_every_update_in_order(ledger: JobLedger) -> None:
    start = ledger.latest_version()
    job_id = new_job(ledger)
    ledger.claim(job_id)
    changes = ledger.changes_since(start)
    assert [c.status for c in changes] == [JobStatus.PROCESSING]  # one row, latest state
    assert changes[0].version > start


def test_cancel_pending_and_request_cancel_running(ledger: JobLedger) -> None:
    pending = new_job(ledger, "p.jpg")
    assert ledger.cancel_pending(pending)
    running = new_job(ledger, "r.jpg")
    ledger.claim(running)
    assert not ledger.cancel_pending(running)
    assert ledger.request_cancel(running)
    assert ledger.cancel_is_requested(running)


def test_a_retried_job_is_pending_again_with_its_retries_and_its_new_input(
    ledger: JobLedger,
) -> None:
    job_id = new_job(ledger, "f.jpg")
    ledger.claim(job_id)
    ledger.fail(job_id, JobFailure("Bad.", "Fix it.", "decode"), output_dir=Path("/out/failed/f"))
    assert not ledger.reset_for_retry(
        new_job(ledger, "other.jpg"), input_path=Path("/x"), input_key="x"
    )
    assert ledger.reset_for_retry(
        job_id, input_path=Path("/in/again/f.jpg"), input_key="photo-realistic/again/f.jpg"
    )
    record = ledger.get(job_id)
    assert record is not None
    assert record.status is JobStatus.PENDING
    assert record.attempts == 0
    assert (record.input_path, record.input_key) == (
        "/in/again/f.jpg",
        "photo-realistic/again/f.jpg",
    )
    assert (record.output_dir, record.error_message, record.completed_at) == (None, None, None)
    assert ledger.active_for("photo-realistic/again/f.jpg") == record
    ledger.claim(job_id)
    ledger.mark_cancelled(job_id, output_dir=None)
    new_job(ledger, "again/f.jpg")  # the photo dropped in again meanwhile
    with pytest.raises(JobStateError, match="already holds f"):
        ledger.reset_for_retry(
            job_id, input_path=Path("/in/again/f.jpg"), input_key="photo-realistic/again/f.jpg"
        )


def test_reconcile_puts_back_pending_jobs_the_queue_lost(ledger: JobLedger) -> None:
    queue = JobQueue(MemoryHuey(immediate=False))
    kept, lost = new_job(ledger, "k.jpg", priority=5), new_job(ledger, "l.jpg")
    queue.enqueue(kept, priority=5)
    pending = [(j.id, j.priority) for j in ledger.with_status(JobStatus.PENDING)]
    assert reconcile(queue, pending) == [lost]
    assert sorted(queue.queued_job_ids()) == sorted([kept, lost])


def test_queue_orders_by_priority_higher_first(ledger: JobLedger, tmp_path: Path) -> None:
    from huey import SqliteHuey

    queue = JobQueue(SqliteHuey(filename=str(tmp_path / "q.db")))
    for job_id, priority in (("low", -5), ("mid", 0), ("high", 50)):
        queue.enqueue(job_id, priority=priority)
    assert queue.queued_job_ids() == ["high", "mid", "low"]


def test_the_sqlite_queue_orders_by_priority_too(tmp_path: Path) -> None:
    queue = open_queue(tmp_path, QueueSettings())
    for job_id, priority in (("low", -5), ("mid", 0), ("high", 50)):
        queue.enqueue(job_id, priority=priority)
    assert queue.queued_job_ids() == ["high", "mid", "low"]


def test_an_idle_consumer_wakes_at_an_enqueue_not_at_its_next_poll(tmp_path: Path) -> None:
    storage = open_queue(tmp_path, QueueSettings()).huey.storage
    assert storage.blocking  # Huey's worker loop then never sleeps on top of dequeue
    woke: list[float] = []

    def idle_dequeue() -> None:
        started = time.monotonic()
        assert storage.dequeue() is None  # empty: waits for an enqueue or the poll
        woke.append(time.monotonic() - started)

    waiter = threading.Thread(target=idle_dequeue)
    waiter.start()
    time.sleep(0.05)
    storage.enqueue(b"job", priority=0)
    waiter.join(timeout=5)
    assert woke
    assert woke[0] < POLL_SECONDS - 0.05  # woken by the enqueue
    assert storage.dequeue() == b"job"


def test_an_idle_consumer_still_polls_for_other_processes_jobs(tmp_path: Path) -> None:
    storage = open_queue(tmp_path, QueueSettings()).huey.storage
    other_process = open_queue(tmp_path, QueueSettings()).huey.storage  # e.g. `strata retry`
    other_process.enqueue(b"job", priority=0)
    started = time.monotonic()
    assert storage.dequeue() == b"job"
    assert time.monotonic() - started < POLL_SECONDS
    started = time.monotonic()
    assert storage.dequeue() is None
    assert time.monotonic() - started == pytest.approx(POLL_SECONDS, abs=0.2)
