"""The Redis ledger's own guarantees (the shared ones run in test_daemon_ledger.py):
leases across workers, two watchers, heartbeats of many processes, a restart, an outage."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from redis_server import RedisServer, free_port, started

from config.errors import QueueUnreachableError
from config.model import Mode, QueueBackend, QueueSettings, Settings
from daemon import health
from daemon.cmd_manage import describe
from daemon.executor import Paths
from daemon.ledger import JobStatus
from daemon.ledger_redis import RedisLedger
from daemon.lifecycle import fail_lost
from daemon.queue import open_queue

LEASE = 0.4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    running = started(tmp_path_factory.mktemp("redis"))
    yield running
    running.stop()


@pytest.fixture
def url(server: RedisServer) -> str:
    server.flush()
    return server.url


def worker(url: str, name: str) -> RedisLedger:
    return RedisLedger(url, owner=name, lease_seconds=LEASE, patience=5.0)


def new_job(ledger: RedisLedger, name: str = "a.jpg") -> str:
    job = ledger.create_job(
        mode="photo-realistic", input_path=Path("/in") / name, input_key=f"photo-realistic/{name}"
    )
    assert job is not None
    return job.id


def test_a_dead_workers_job_goes_back_once_its_lease_expires(url: str) -> None:
    a, b = worker(url, "a"), worker(url, "b")
    job_id = new_job(a)
    assert a.claim(job_id) is not None
    assert b.claim(job_id) is None
    assert b.requeue_lost(retries=1) == []  # the lease still holds
    time.sleep(LEASE + 0.1)
    assert [job.id for job in b.requeue_lost(retries=1)] == [job_id]
    assert [job.id for job in a.requeue_lost(retries=1)] == []  # once, whoever asks
    again = b.claim(job_id)
    assert again is not None
    assert again.attempts == 2  # the lost run counted
    a.complete(job_id, output_dir=Path("/out/late"), manifest={})  # a's late end: dropped
    record = b.get(job_id)
    assert record is not None
    assert record.status is JobStatus.PROCESSING
    b.complete(job_id, output_dir=Path("/out/b"), manifest={})
    done = a.get(job_id)
    assert done is not None
    assert done.status is JobStatus.COMPLETED
    assert done.output_dir == "/out/b"


def test_a_renewed_lease_keeps_the_job(url: str) -> None:
    a, b = worker(url, "a"), worker(url, "b")
    job_id = new_job(a)
    a.claim(job_id)
    for _ in range(4):
        time.sleep(LEASE / 2)
        assert a.renew_lease(job_id)
        assert b.requeue_lost(retries=1) == []
    assert not b.renew_lease(job_id)  # not b's lease


def test_a_lost_job_without_retries_left_fails_as_a_failed_job_does(
    url: str, tmp_path: Path
) -> None:
    """The input, sidecar and depth map go to outbox/failed/<batch>/<stem>/ with
    error.yaml, the inbox ends empty, the ledger says failed with that folder."""
    settings = Settings(inbox=tmp_path / "in", outbox=tmp_path / "out", state_dir=tmp_path / "s")
    batch = settings.inbox_for(Mode.PHOTO_REALISTIC) / "shoot"
    batch.mkdir(parents=True)
    photo = batch / "cat.jpg"
    for path in (photo, photo.with_suffix(".yaml"), batch / "cat.depth.png"):
        path.write_bytes(path.name.encode())
    a, b, c = worker(url, "a"), worker(url, "b"), worker(url, "c")
    job = a.create_job(
        mode="photo-realistic", input_path=photo, input_key="photo-realistic/shoot/cat.jpg"
    )
    assert job is not None
    assert a.claim(job.id) is not None
    half_built = settings.outbox_for(Mode.PHOTO_REALISTIC) / "shoot" / f".strata-tmp-{job.id}"
    half_built.mkdir(parents=True)  # the dead worker was building its folder
    time.sleep(LEASE + 0.1)
    assert b.requeue_lost(retries=0) == []  # no retries left: not put back
    taken = b.take_over_lost(retries=0)
    assert [t.id for t in taken] == [job.id]
    assert c.take_over_lost(retries=0) == []  # one worker ends it
    assert not c.renew_lease(job.id)
    folder = fail_lost(b, taken[0], Paths.of(taken[0], settings))

    assert folder == settings.failed_dir / "shoot" / "cat"
    assert sorted(p.name for p in folder.iterdir()) == [
        "cat.depth.png",
        "cat.jpg",
        "cat.yaml",
        "error.yaml",
    ]
    error = yaml.safe_load((folder / "error.yaml").read_text(encoding="utf-8"))
    assert list(error) == ["job_id", "reason", "hint", "stage", "at"]
    assert error["job_id"] == job.id
    assert "stopped answering" in error["reason"]
    assert error["stage"] == "worker"
    assert not batch.exists()  # the batch folder went with its last photo
    assert not half_built.exists()
    record = c.get(job.id)
    assert record is not None
    assert record.status is JobStatus.FAILED
    assert record.output_dir == str(folder)
    assert (record.error_message, record.error_hint, record.error_stage) == (
        error["reason"],
        error["hint"],
        "worker",
    )
    assert record.completed_at is not None
    a.complete(job.id, output_dir=Path("/out/late"), manifest={})  # the dead one's late end
    after = c.get(job.id)
    assert after is not None
    assert after.status is JobStatus.FAILED
    assert c.active_for(job.input_key) is None  # the photo may be dropped in again


def test_two_watchers_create_one_job_per_photo(url: str) -> None:
    first, second = worker(url, "watcher-1"), worker(url, "watcher-2")
    created = [
        ledger.create_job(
            mode="photo-realistic", input_path=Path("/in/x.jpg"), input_key="photo-realistic/x.jpg"
        )
        for ledger in (first, second, first)
    ]
    assert sum(job is not None for job in created) == 1
    assert len(second.recent()) == 1


def test_health_lists_every_worker_with_its_heartbeat_and_job(url: str) -> None:
    a, b = worker(url, "host-a"), worker(url, "host-b")
    job_id = new_job(a)
    a.claim(job_id)
    details = {"consumer_alive": True, "running_job": job_id}
    a.beat("worker", started_at="t", details=details)
    b.beat("worker", started_at="t", details={"consumer_alive": True, "running_job": None})
    b.beat("watcher", started_at="t", details={"observer_alive": True})
    report = health.check(b, pid_alive=lambda pid: True)
    assert report.healthy
    workers = {p["worker"]: p for p in report.processes if p["role"] == "worker"}
    assert set(workers) == {"host-a", "host-b"}
    assert workers["host-a"]["running_job"] == job_id
    assert workers["host-a"]["heartbeat_age_seconds"] < 5
    text = describe(report)
    assert f"host-a, pid {os.getpid()}" in text
    assert job_id in text
    a.clear_beat("worker")
    assert {p["worker"] for p in health.check(b).processes if p["role"] == "worker"} == {"host-b"}


def test_a_redis_restart_keeps_every_job(server: RedisServer) -> None:
    server.flush()
    ledger = worker(server.url, "a")
    ids = {new_job(ledger, f"{n}.jpg") for n in range(5)}
    server.stop()
    server.start()
    assert {job.id for job in ledger.recent()} == ids  # the client reconnects on its own
    assert (
        ledger.create_job(
            mode="photo-realistic", input_path=Path("/in/0.jpg"), input_key="photo-realistic/0.jpg"
        )
        is None
    )  # the active-input index came back too


def test_an_unreachable_redis_is_an_error_for_a_command_not_a_crash_for_the_queue(
    tmp_path: Path,
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    ledger = RedisLedger(url, owner="cli", patience=0.3)
    started_at = time.monotonic()
    with pytest.raises(QueueUnreachableError, match="unreachable") as caught:
        ledger.recent()
    assert time.monotonic() - started_at < 3
    assert "redis-server" in caught.value.hint
    queue = open_queue(tmp_path, QueueSettings(backend=QueueBackend.REDIS, redis_url=url))
    queue.enqueue("job-1")  # logged; the ledger's pending job is queued again later
    assert queue.depth() is None
