"""Several machines on one Redis: one or two watchers and three workers as separate
`strata run` processes, each with its own state folder, sharing the inbox and outbox.

The photos come with depth maps (no model); leases are short so a killed worker's job
runs again within seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from daemon_harness import MODES, SETTLE_SECONDS, STRATA, depth_path, make_photo, wait_for
from redis_server import RedisServer, started

from bench.redis_workers import machine_config
from daemon.ledger import JobRecord, JobStatus, worker_name
from daemon.ledger_redis import RedisLedger

pytestmark = pytest.mark.slow

LEASE_SECONDS = 2.0
PHOTOS = 60
SIZE = (320, 240)


@dataclass
class Machine:
    """One `strata run --role ROLE` with its own config and state folder."""

    name: str
    role: str
    config: Path
    state: Path
    process: subprocess.Popen[bytes]

    @property
    def owner(self) -> str:
        return worker_name(self.state)


class Cluster:
    def __init__(self, root: Path, redis: RedisServer, *, retries: int = 1) -> None:
        self.root = root
        self.redis = redis
        self.retries = retries
        self.machines: list[Machine] = []
        for mode in MODES:
            (root / "inbox" / mode).mkdir(parents=True, exist_ok=True)

    @property
    def inbox(self) -> Path:
        return self.root / "inbox" / "photo-realistic"

    def start(self, name: str, role: str) -> Machine:
        config, state = machine_config(
            self.root,
            name,
            {
                "redis_url": self.redis.url,
                "lease_seconds": LEASE_SECONDS,
                "job_timeout_seconds": 60.0,
                "retries": self.retries,
                "shutdown_grace_seconds": 5.0,
            },
            watch={"settle_seconds": SETTLE_SECONDS, "rescan_seconds": 2.0},
            log={"level": "INFO"},
            defaults={"max_side": 256},
        )
        log = (self.root / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [str(STRATA), "run", "--role", role, "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )
        machine = Machine(name, role, config, state, process)
        self.machines.append(machine)

        def beating() -> bool:
            assert process.poll() is None, (self.root / f"{name}.log").read_text()
            return f"{role}:{machine.owner}" in self.ledger().heartbeats()

        wait_for(beating, timeout=60, what=f"{name} to beat")
        return machine

    def ledger(self) -> RedisLedger:
        return RedisLedger(self.redis.url, owner="test", patience=30.0)

    def jobs(self) -> list[JobRecord]:
        return self.ledger().recent()

    def running(self) -> tuple[JobRecord, Machine] | None:
        """A job running on a worker, and that worker."""
        for job in self.ledger().with_status(JobStatus.PROCESSING):
            raw = self.ledger()._raw(job.id)  # the lease is not part of JobRecord
            for machine in self.machines:
                if raw is not None and machine.owner == raw.get("lease_owner"):
                    return job, machine
        return None

    def done(self, count: int) -> bool:
        jobs = self.jobs()
        return len(jobs) >= count and all(j.status is JobStatus.COMPLETED for j in jobs)

    def stop(self) -> None:
        for machine in self.machines:
            if machine.process.poll() is None:
                machine.process.send_signal(signal.SIGTERM)
        for machine in self.machines:
            try:
                machine.process.wait(20)
            except subprocess.TimeoutExpired:
                machine.process.kill()
        if os.environ.get("STRATA_E2E_SHOW_LOGS"):
            for log in sorted(self.root.glob("*.log")):
                print(log.name, log.read_text(errors="replace"))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    redis = started(tmp_path / "redis")
    running = Cluster(tmp_path, redis)
    yield running
    running.stop()
    redis.stop()


def result_folders(root: Path) -> list[Path]:
    outbox = root / "outbox" / "photo-realistic"
    return sorted(p for p in outbox.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_three_workers_finish_sixty_photos_once_through_a_kill_and_a_redis_restart(
    cluster: Cluster,
) -> None:
    cluster.start("watcher-a", "watcher")
    cluster.start("watcher-b", "watcher")  # two watchers on one inbox: one job per photo
    workers = [cluster.start(f"worker-{n}", "worker") for n in range(3)]
    for n in range(PHOTOS):
        make_photo(cluster.inbox / f"p{n:02d}.jpg", seed=n, size=SIZE)

    # kill -9 a worker in the middle of a job: the job runs again, once, elsewhere
    def running_on_a_worker() -> JobRecord | None:
        for job in cluster.ledger().with_status(JobStatus.PROCESSING):
            return job
        return None

    wait_for(lambda: running_on_a_worker() is not None, timeout=60, what="a running job")
    victim_job = running_on_a_worker()
    assert victim_job is not None
    raw = cluster.ledger()._raw(victim_job.id)  # the lease is not part of JobRecord
    assert raw is not None
    owner = raw["lease_owner"]
    victim = next(w for w in workers if w.owner == owner)
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(10)

    # Redis restarted mid-run (appendonly): no job is lost, no daemon falls over
    wait_for(lambda: len(cluster.jobs()) >= PHOTOS // 2, timeout=60, what="half the jobs")
    cluster.redis.stop()
    cluster.redis.start()

    wait_for(lambda: cluster.done(PHOTOS), timeout=150, what="all photos to complete")
    jobs = cluster.jobs()
    assert len(jobs) == PHOTOS
    assert Counter(j.input_key for j in jobs).most_common(1)[0][1] == 1
    again = cluster.ledger().get(victim_job.id)
    assert again is not None
    assert again.status is JobStatus.COMPLETED
    assert again.attempts == 2  # the killed run counted, as a crash does
    folders = result_folders(cluster.root)
    assert len(folders) == PHOTOS  # each photo's result once
    assert all((folder / "manifest.json").is_file() for folder in folders)
    assert not list((cluster.root / "inbox").rglob("*.jpg"))
    for machine in cluster.machines:
        if machine is victim:
            continue
        assert machine.process.poll() is None, f"{machine.name} died"
        listed = subprocess.run(
            [str(STRATA), "jobs", "--json", "--limit", "100", "--config", str(machine.config)],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
            check=True,
        )
        assert len(json.loads(listed.stdout)) == PHOTOS, machine.name


def test_a_killed_workers_job_with_no_retries_left_fails_into_outbox_failed(
    tmp_path: Path,
) -> None:
    """As any job out of retries does: the photo and its depth map in
    outbox/failed/<stem>/ with error.yaml, the ledger failed with that folder."""
    redis = started(tmp_path / "redis")
    cluster = Cluster(tmp_path, redis, retries=0)
    try:
        cluster.start("watcher", "watcher")
        cluster.start("worker-0", "worker")
        cluster.start("worker-1", "worker")
        for n in range(8):
            make_photo(cluster.inbox / f"q{n}.jpg", seed=n, size=SIZE)
        wait_for(lambda: cluster.running() is not None, timeout=60, what="a running job")
        found = cluster.running()
        assert found is not None
        job, victim = found
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(10)

        def ended() -> bool:
            record = cluster.ledger().get(job.id)
            return record is not None and record.status is JobStatus.FAILED

        wait_for(ended, timeout=LEASE_SECONDS + 30, what="the lost job to fail")
        record = cluster.ledger().get(job.id)
        assert record is not None
        folder = tmp_path / "outbox" / "failed" / Path(job.input_filename).stem
        assert record.output_dir == str(folder)
        assert record.error_stage == "worker"
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            [job.input_filename, depth_path(Path(job.input_filename)).name, "error.yaml"]
        )
        error = yaml.safe_load((folder / "error.yaml").read_text(encoding="utf-8"))
        assert error["job_id"] == job.id
        assert error["reason"] == record.error_message
        wait_for(
            lambda: sum(j.status is JobStatus.COMPLETED for j in cluster.jobs()) == 7,
            timeout=90,
            what="the other photos",
        )
        assert not list((tmp_path / "inbox").rglob("*.jpg"))
    finally:
        cluster.stop()
        redis.stop()
