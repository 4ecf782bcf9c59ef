"""Several workers on one Redis: throughput, enqueue-to-start, and recovery from a death.

``python -m bench.redis_workers`` (or ``python -m bench --suite redis``) starts a
redis-server on a free loopback port and real daemon workers
(:class:`daemon.service.Daemon`, ``--role worker``, each with its own state folder) whose
pipeline process runs :func:`fixed_cost_job` instead of the pipeline: it waits ``cost``
seconds, as a job bound by a GPU or a disk does, and writes a manifest, so each job's
time is fixed and the figures are the queue's and the ledger's (``--cpu`` adds rows for
jobs that keep one core busy instead, which cannot scale past the free cores). Each
figure carries the 1-minute load average before and after it (the machine may be shared).

- throughput with 1, 2 and 3 workers (jobs a second), and its ratio to linear scaling;
  target >= 0.8 x linear up to the machine's core count;
- enqueue-to-start: job created and queued -> claimed by an idle worker (the ledger's
  ``created_at`` and ``started_at``), median; target <= 50 ms on loopback;
- death to elsewhere: ``kill -9`` of the worker running a job -> the job started again on
  another worker; target <= ``queue.lease_seconds`` + 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from config.model import QueueBackend, QueueSettings
from daemon.ledger import TERMINAL, JobRecord, JobStatus, worker_name
from daemon.ledger_redis import RedisLedger
from daemon.queue import open_queue

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
LEASE_SECONDS = 2.0
DEFAULT_COST = 0.5
IDLE_SECONDS = 0.2


def fixed_cost_job(job: Any, *, cache: Any, progress: Any) -> SimpleNamespace:
    """The bench's pipeline: ``BENCH_REDIS_JOB_COST`` seconds of waiting (a job bound by
    a GPU or a disk; ``BENCH_REDIS_JOB_KIND=cpu``: of one busy core), a manifest."""
    cost = float(os.environ.get("BENCH_REDIS_JOB_COST", "0.5"))
    if os.environ.get("BENCH_REDIS_JOB_KIND", "wait") == "wait":
        time.sleep(cost)
    else:
        end = time.process_time() + cost
        while time.process_time() < end:
            pass
    folder = Path(job.output_root) / f"{job.input_path.stem}-{job.job_id[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"job_id": job.job_id, "layers": []}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return SimpleNamespace(output_dir=folder, manifest=manifest)


def serve_worker(config: str) -> None:
    """One worker process (``python -m bench.redis_workers --worker CONFIG``)."""
    from config.loader import load_settings
    from daemon.logs import configure_daemon_logging
    from daemon.service import Daemon, Role

    settings = load_settings(Path(config))
    configure_daemon_logging(settings.value.log)
    Daemon(settings, role=Role.WORKER, runner_reference="bench.redis_workers:fixed_cost_job").run()


def machine_config(root: Path, name: str, queue: dict[str, Any], **more: Any) -> tuple[Path, Path]:
    """``root/<name>.yaml``: one machine on the shared ``root/inbox`` and ``root/outbox``,
    with its own state folder and the Redis ``queue`` settings; (config, state folder)."""
    state = root / f"state-{name}"
    config = root / f"{name}.yaml"
    settings = {
        "inbox": str(root / "inbox"),
        "outbox": str(root / "outbox"),
        "state_dir": str(state),
        "queue": {"backend": "redis", **queue},
        **more,
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return config, state


class Bench:
    def __init__(self, root: Path, cost: float) -> None:
        self.root = root
        self.cost = cost
        self.kind = "wait"
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        (root / "inbox" / "photo-realistic").mkdir(parents=True)
        (root / "inbox" / "painterly").mkdir(parents=True)
        self.redis = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(root)],
            stdout=subprocess.DEVNULL,
        )
        self._wait(self._listening, "redis-server to listen")
        self.ledger = RedisLedger(self.url, owner="bench", patience=10.0)
        self.queue = open_queue(root, QueueSettings(backend=QueueBackend.REDIS, redis_url=self.url))
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.photos = 0

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def start_worker(self, name: str, *, warm: bool = True) -> None:
        config, state = machine_config(
            self.root,
            name,
            {"redis_url": self.url, "lease_seconds": LEASE_SECONDS},
            log={"level": "WARNING"},
        )
        env = {
            **os.environ,
            "BENCH_REDIS_JOB_COST": str(self.cost),
            "BENCH_REDIS_JOB_KIND": self.kind,
        }
        self.workers[name] = subprocess.Popen(
            [sys.executable, "-m", "bench.redis_workers", "--worker", str(config)],
            env=env,
            stdout=(self.root / f"{name}.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        key = f"worker:{worker_name(state)}"
        process = self.workers[name]

        def beating() -> bool:
            if process.poll() is not None:
                log = (self.root / f"{name}.log").read_text(errors="replace")
                raise RuntimeError(f"bench worker {name} exited:\n{log}")
            return key in self.ledger.heartbeats()

        self._wait(beating, f"{name} to start")
        if warm:  # the first job starts the pipeline process
            self.run_batch(1)

    def stop_workers(self) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers.values():
            process.wait(30)
        self.workers.clear()

    def close(self) -> None:
        self.stop_workers()
        self.ledger.close()
        self.redis.terminate()
        self.redis.wait(10)

    def submit(self) -> JobRecord:
        photo = self.root / "inbox" / "photo-realistic" / f"p{self.photos:04d}.jpg"
        self.photos += 1
        photo.write_bytes(f"bench photo {self.photos}".encode())  # unique: no reuse
        job = self.ledger.create_job(
            mode="photo-realistic", input_path=photo, input_key=f"photo-realistic/{photo.name}"
        )
        assert job is not None
        self.queue.enqueue(job.id)
        return job

    def run_batch(self, count: int) -> float:
        """Seconds from the first enqueue to the last job's end."""
        started = time.monotonic()
        ids = [self.submit().id for _ in range(count)]
        self._wait(lambda: all(self._status(i) in TERMINAL for i in ids), "a batch", 600)
        failed = [i for i in ids if self._status(i) is not JobStatus.COMPLETED]
        assert not failed, f"{len(failed)} bench jobs did not complete"
        return time.monotonic() - started

    def _status(self, job_id: str) -> JobStatus | None:
        job = self.ledger.get(job_id)
        return job.status if job else None

    def enqueue_to_start(self, samples: int) -> list[float]:
        delays = []
        for _ in range(samples):
            time.sleep(IDLE_SECONDS)  # the worker is back waiting on the queue
            job = self.submit()
            self._wait(lambda job=job: self._status(job.id) in TERMINAL, "a job")
            record = self.ledger.get(job.id)
            assert record is not None
            assert record.started_at is not None
            delays.append(_seconds(record.created_at, record.started_at))
        return delays

    def death_to_elsewhere(self) -> float:
        """Kill the worker running a long job; seconds until another worker starts it."""
        job = self.submit()
        self._wait(lambda: self._status(job.id) is JobStatus.PROCESSING, "the long job")
        raw = self.ledger._raw(job.id)
        assert raw is not None
        victim = next(
            name
            for name in self.workers
            if worker_name(self.root / f"state-{name}") == raw["lease_owner"]
        )
        killed = time.time()
        self.workers.pop(victim).kill()

        def elsewhere() -> bool:
            again = self.ledger._raw(job.id)
            return bool(again and again.get("lease_owner") not in (None, raw["lease_owner"]))

        self._wait(elsewhere, "the job to run elsewhere", 60)
        again = self.ledger.get(job.id)
        assert again is not None
        assert again.started_at is not None
        self._wait(lambda: self._status(job.id) in TERMINAL, "the long job to end", 120)
        return datetime.fromisoformat(again.started_at).timestamp() - killed

    def _wait(self, predicate: Any, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"bench: timed out waiting for {what}")
            time.sleep(0.01)


def measure(
    *,
    cost: float = DEFAULT_COST,
    jobs_per_worker: int = 12,
    samples: int = 20,
    kinds: tuple[str, ...] = ("wait",),
) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory(prefix="strata-bench-redis-") as temp:
        bench = Bench(Path(temp), cost)
        try:
            for kind in kinds:
                bench.kind = kind
                rows += _throughput(bench, kind, cost, jobs_per_worker, cores)
                bench.stop_workers()
            bench.kind = "wait"
            bench.start_worker("w0")
            with Load() as load:
                delays = bench.enqueue_to_start(samples)
            median = statistics.median(delays) * 1000
            rows.append(
                {
                    "figure": f"enqueue → start, idle worker, median of {samples}",
                    "value": f"{median:.0f} ms (max {max(delays) * 1000:.0f} ms)",
                    "target": "≤ 50 ms",
                    "ok": median <= 50,
                    "load": load.text,
                }
            )
            bench.cost = 4 * LEASE_SECONDS
            bench.stop_workers()
            for name in ("d0", "d1"):
                bench.start_worker(name, warm=False)
            with Load() as load:
                recovery = bench.death_to_elsewhere()
            rows.append(
                {
                    "figure": f"kill -9 → running on another worker (lease {LEASE_SECONDS:g} s)",
                    "value": f"{recovery:.2f} s",
                    "target": f"≤ lease + 2 s = {LEASE_SECONDS + 2:g} s",
                    "ok": recovery <= LEASE_SECONDS + 2,
                    "load": load.text,
                }
            )
        finally:
            bench.close()
    return {
        "cores": cores,
        "cost_s": cost,
        "jobs_per_worker": jobs_per_worker,
        "lease_s": LEASE_SECONDS,
        "rows": rows,
    }


class Load:
    """The 1-minute load average (what ``uptime`` shows) before and after a figure."""

    def __enter__(self) -> Load:
        self.before = os.getloadavg()[0]
        self.text = ""
        return self

    def __exit__(self, *_exc: object) -> None:
        self.text = f"{self.before:.2f} → {os.getloadavg()[0]:.2f}"


def _throughput(
    bench: Bench, kind: str, cost: float, jobs_per_worker: int, cores: int
) -> list[dict[str, Any]]:
    """Jobs a second with 1, 2, 3 workers; linear scaling is expected up to the cores."""
    rates: dict[int, tuple[float, str]] = {}
    for count in (1, 2, 3):
        bench.start_worker(f"{kind}{count - 1}")
        jobs = jobs_per_worker * count
        with Load() as load:
            seconds = bench.run_batch(jobs)
        rates[count] = (jobs / seconds, load.text)
    rows = []
    for count, (rate, load_text) in rates.items():
        ratio = rate / (rates[1][0] * count)
        applies = count <= cores
        rows.append(
            {
                "figure": f"throughput, {count} worker(s), {cost:g} s {kind} per job",
                "value": f"{rate:.2f} jobs/s ({ratio:.2f}× linear)",
                "target": "≥ 0.8× linear" if applies else f"none: {count} > {cores} cores",
                "ok": ratio >= 0.8 or not applies,
                "applies": applies,
                "load": load_text,
            }
        )
    return rows


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--cost", type=float, default=DEFAULT_COST, help="seconds per job")
    parser.add_argument("--jobs-per-worker", type=int, default=12, help="throughput batch size")
    parser.add_argument("--samples", type=int, default=20, help="enqueue-to-start samples")
    parser.add_argument(
        "--cpu", action="store_true", help="also throughput rows for CPU-bound jobs"
    )
    args = parser.parse_args()
    if args.worker:
        serve_worker(args.worker)
        return
    result = measure(
        cost=args.cost,
        jobs_per_worker=args.jobs_per_worker,
        samples=args.samples,
        kinds=("wait", "cpu") if args.cpu else ("wait",),
    )
    print(f"cores: {result['cores']}")
    for row in result["rows"]:
        ok = "yes" if row["ok"] else "NO"
        print(f"{row['figure']:55} {row['value']:32} {row['target']:24} {ok:4} load {row['load']}")


if __name__ == "__main__":
    main()
