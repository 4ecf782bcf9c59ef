"""Daemon figures: pickup latency, a 50-photo storm against in-process runs, idle CPU,
and a warm consumer against a fresh process per job.

``python -m bench.daemon`` starts the real ``strata run`` on temporary folders (photos
carry ``<stem>.depth.png`` so no model loads) and prints a table:

- pickup latency: file closed in the inbox → job started (ledger), median of 20;
  target ≤ settle_seconds + 0.5 s;
- storm: 50 photos dropped at once, all completed, 0 lost / duplicated; the daemon's
  wall time per job against ``pipeline.run`` in-process on the same photos (the mean of a
  run before the daemon starts and one after it stops); target overhead ≤ 10 %;
- idle CPU of the daemon (and its pipeline process) over ~20 s; target ≤ 1 % of a core;
- warm vs fresh: a batch of photos *without* depth maps through a real-size
  Depth-Anything-V2-Small (random weights, :func:`bench.harness.depth_model`), once as a
  fresh ``python -c`` process per job that loads the model and runs ``pipeline.run`` (the
  seed's design), once in one process that keeps its ``ModelCache`` across the batch (the
  daemon's warm worker). Per job: spawn to exit vs the warm process's median after its
  first job. Target: warm ≥ 3× faster per job.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import yaml
from PIL import Image

from config.model import JobSettings, Mode
from daemon.allocator import keep_freed_memory
from daemon.ledger import TERMINAL, JobStatus, Ledger
from pipeline import Job, run

SETTLE_SECONDS = 0.3
STRATA = Path(sys.executable).with_name("strata")


@dataclass
class Row:
    figure: str
    value: str
    target: str
    ok: bool


def make_photo(path: Path, *, seed: int, size: tuple[int, int] = (320, 240)) -> None:
    width, height = size
    rng = np.random.default_rng(seed)
    small = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    depth = np.tile(np.linspace(0, 65535, width), (height, 1)).astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(depth).save(path.with_name(f"{path.stem}.depth.png"))
    image.save(path, quality=92)


class Daemon:
    def __init__(self, root: Path) -> None:
        self.root = root
        for mode in Mode:
            (root / "inbox" / mode.value).mkdir(parents=True, exist_ok=True)
        config = {
            "inbox": "inbox",
            "outbox": "outbox",
            "state_dir": "state",
            "watch": {"settle_seconds": SETTLE_SECONDS, "rescan_seconds": 60.0},
            "log": {"level": "WARNING"},
        }
        self.config = root / "config.yaml"
        self.config.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.inbox = root / "inbox" / Mode.PHOTO_REALISTIC.value
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(STRATA), "run", "--config", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait(lambda: bool(self.ledger().heartbeats()), 60)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)

    def ledger(self) -> Ledger:
        return Ledger.in_state_dir(self.root / "state")

    def wait(self, predicate: object, timeout: float, *, interval: float = 0.02) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if callable(predicate) and predicate():
                return
            time.sleep(interval)
        raise TimeoutError("the daemon did not get there in time")


def pickup_latency(daemon: Daemon, count: int) -> list[float]:
    latencies = []
    staging = daemon.root / "staging-latency"
    for index in range(count):
        name = f"lat{index:02d}.jpg"
        make_photo(staging / name, seed=1000 + index)
        depth = f"lat{index:02d}.depth.png"
        shutil.move(staging / depth, daemon.inbox / depth)
        data = (staging / name).read_bytes()
        with (daemon.inbox / name).open("wb") as stream:
            stream.write(data)
        closed = time.time()
        ledger = daemon.ledger()
        daemon.wait(lambda name=name, ledger=ledger: _started(ledger, name), 30)
        started = _started(ledger, name)
        assert started is not None
        latencies.append(started - closed)
        daemon.wait(lambda ledger=ledger: _all_done(ledger), 30)
        ledger.close()
    return latencies


def _started(ledger: Ledger, name: str) -> float | None:
    for job in ledger.recent(limit=5):
        if job.input_filename == name and job.started_at:
            return datetime.fromisoformat(job.started_at).timestamp()
    return None


def _all_done(ledger: Ledger) -> bool:
    counts = ledger.counts()
    return counts["pending"] == 0 and counts["processing"] == 0


STORM_PHOTO = (1024, 768)
"""Storm photos are of a size people drop (well, a small one): with thumbnails, the fixed
cost of any queue would dominate and say nothing about the daemon's overhead per job."""


def storm(daemon: Daemon, count: int) -> tuple[float, int, int]:
    """Seconds from the drop to the last completion (the ledger's own timestamp); lost and
    duplicated counts. While it runs the ledger is only counted, ten times a second: the
    bench must not take the CPU the daemon's jobs would use."""
    staging = daemon.root / "staging-storm"
    names = [f"storm{i:02d}.jpg" for i in range(count)]
    for seed, name in enumerate(names):
        make_photo(staging / name, seed=seed, size=STORM_PHOTO)
    ledger = daemon.ledger()
    ended_before = _ended(ledger.counts())
    dropped = time.time()
    for path in sorted(staging.iterdir()):
        path.rename(daemon.inbox / path.name)
    daemon.wait(
        lambda: (
            _ended(counts := ledger.counts()) >= ended_before + count
            and counts["pending"] == counts["processing"] == 0
        ),
        600,
        interval=0.1,
    )
    jobs = [j for j in ledger.recent() if j.input_filename in names]
    done = Counter(j.input_filename for j in jobs if j.status is JobStatus.COMPLETED)
    lost = sum(1 for name in names if done[name] == 0)
    duplicated = sum(count - 1 for count in done.values() if count > 1)
    last = max(datetime.fromisoformat(j.completed_at).timestamp() for j in jobs if j.completed_at)
    return last - dropped, lost, duplicated


def _ended(counts: dict[str, int]) -> int:
    return sum(counts[status.value] for status in TERMINAL)


def in_process(root: Path, count: int, *, out: str = "inprocess") -> float:
    keep_freed_memory()  # the same allocator setting as the daemon's pipeline process
    staging = root / "staging-inprocess"
    names = [f"storm{i:02d}.jpg" for i in range(count)]
    for seed, name in enumerate(names):
        make_photo(staging / name, seed=seed, size=STORM_PHOTO)
    run(
        Job(
            "warm",
            Mode.PHOTO_REALISTIC,
            staging / names[0],
            root / f"warm-{out}",
            settings=JobSettings(),
        )
    )
    started = time.monotonic()
    for index, name in enumerate(names):
        run(
            Job(
                f"in-{index}",
                Mode.PHOTO_REALISTIC,
                staging / name,
                root / out,
                settings=JobSettings(),
            )
        )
    return time.monotonic() - started


def idle_cpu(daemon: Daemon, seconds: float) -> float:
    assert daemon.process is not None
    parent = psutil.Process(daemon.process.pid)
    processes = [parent, *parent.children(recursive=True)]
    for process in processes:
        process.cpu_percent(None)
    time.sleep(seconds)
    return sum(p.cpu_percent(None) for p in processes if p.is_running())


WARM_FACTOR_TARGET = 3.0

_JOB_CODE = """
import json, sys, time
from pathlib import Path
from config.model import JobSettings, Mode, ModelSettings
from pipeline import Job, run
from daemon.allocator import keep_freed_memory
from pipeline.models import ModelCache
spec = json.loads(sys.argv[1])
models = ModelSettings(depth=spec["model"], device="cpu")
keep_freed_memory()  # as the daemon's pipeline process does
cache = ModelCache()
for index, line in enumerate(sys.stdin):
    started = time.perf_counter()
    run(Job(f"job-{index}", Mode.PHOTO_REALISTIC, Path(line.strip()), Path(spec["out"]),
            settings=JobSettings(max_side=spec["max_side"]), models=models), cache=cache)
    print(json.dumps(time.perf_counter() - started), flush=True)
"""
"""A job consumer: photo paths on stdin, one line of seconds per job on stdout."""


def warm_vs_fresh(root: Path, *, model: Path, jobs: int, size: tuple[int, int]) -> dict[str, Any]:
    """Per-job seconds: a fresh process per job (spawn to exit) vs one warm process.

    Interleaved (fresh job, warm job, fresh job, …) so a change in the machine's background
    load hits both alike. The warm process gets one untimed first job (imports, model load),
    reported on its own."""
    staging = root / "staging-warm"
    photos: list[str] = []
    for index in range(jobs):
        path = staging / f"warm{index:02d}.jpg"
        make_photo(path, seed=500 + index, size=size)
        path.with_name(f"{path.stem}.depth.png").unlink()  # the model estimates depth
        photos.append(str(path))

    def consumer(out: Path) -> subprocess.Popen[str]:
        spec = {"model": str(model), "out": str(out), "max_side": max(size)}
        with out.with_suffix(".log").open("w") as log:  # a file: a pipe could fill and block
            return subprocess.Popen(
                [sys.executable, "-c", _JOB_CODE, json.dumps(spec)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )

    def send(process: subprocess.Popen[str], photo: str, out: Path) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(photo + "\n")
        process.stdin.flush()
        if not process.stdout.readline():
            process.communicate()
            log = out.with_suffix(".log").read_text(encoding="utf-8")
            raise RuntimeError(f"job process failed:\n{log[-4000:]}")

    warm = consumer(root / "warm")
    fresh: list[float] = []
    warm_jobs: list[float] = []
    try:
        started = time.perf_counter()
        send(warm, photos[0], root / "warm")
        warm_first = time.perf_counter() - started
        for index, photo in enumerate(photos):
            started = time.perf_counter()
            process = consumer(root / f"fresh-{index}")
            send(process, photo, root / f"fresh-{index}")
            process.communicate()  # closes stdin: the process exits
            fresh.append(time.perf_counter() - started)
            started = time.perf_counter()
            send(warm, photo, root / "warm")
            warm_jobs.append(time.perf_counter() - started)
    finally:
        warm.communicate()  # closes stdin: the consumer's loop ends
    fresh_median, warm_median = statistics.median(fresh), statistics.median(warm_jobs)
    return {
        "jobs": jobs,
        "photo_size": list(size),
        "model": model.name,
        "fresh_s": [round(t, 3) for t in fresh],
        "warm_s": [round(t, 3) for t in warm_jobs],
        "fresh_median_s": round(fresh_median, 3),
        "warm_median_s": round(warm_median, 3),
        "warm_first_job_s": round(warm_first, 3),
        "speedup": round(fresh_median / warm_median, 2),
        "speedup_with_startup": round(
            sum(fresh) / (warm_first + sum(warm_jobs[1:])) if jobs > 1 else 0.0, 2
        ),
    }


def measure(
    *,
    latency_samples: int = 20,
    storm_size: int = 50,
    idle_seconds: float = 20.0,
    warm_jobs: int = 5,
    warm_model: Path | None = None,
    warm_size: tuple[int, int] = (1024, 768),
) -> dict[str, Any]:
    """Every figure, as numbers and as table rows (``warm_model`` None: no warm/fresh)."""
    rows: list[Row] = []
    figures: dict[str, Any] = {"settle_seconds": SETTLE_SECONDS}
    with tempfile.TemporaryDirectory(prefix="strata-bench-") as temp:
        root = Path(temp)
        daemon = Daemon(root)
        # In-process runs before and after the daemon's storm: their mean is the reference,
        # so a change in the machine's background load during the run biases neither side.
        before = in_process(root, storm_size, out="inprocess-before")
        daemon.start()
        try:
            time.sleep(min(2.0, idle_seconds))
            cpu = idle_cpu(daemon, idle_seconds)
            latencies = pickup_latency(daemon, latency_samples)
            elapsed, lost, duplicated = storm(daemon, storm_size)
        finally:
            daemon.stop()
        after = in_process(root, storm_size, out="inprocess-after")
        direct = (before + after) / 2
        if warm_model is not None:
            figures["warm_vs_fresh"] = warm_vs_fresh(
                root, model=warm_model, jobs=warm_jobs, size=warm_size
            )
    overhead = (elapsed - direct) / direct
    median = statistics.median(latencies)
    target = SETTLE_SECONDS + 0.5
    figures.update(
        {
            "idle_cpu_percent": round(cpu, 2),
            "idle_seconds": idle_seconds,
            "pickup_latency_s": [round(v, 3) for v in latencies],
            "pickup_median_s": round(median, 3),
            "pickup_max_s": round(max(latencies), 3),
            "pickup_target_s": target,
            "storm": {
                "photos": storm_size,
                "lost": lost,
                "duplicated": duplicated,
                "elapsed_s": round(elapsed, 2),
                "daemon_s_per_job": round(elapsed / storm_size, 3),
                "in_process_s_per_job": round(direct / storm_size, 3),
                "in_process_before_after_s_per_job": [
                    round(before / storm_size, 3),
                    round(after / storm_size, 3),
                ],
                "overhead": round(overhead, 4),
            },
        }
    )
    rows.append(
        Row("idle CPU (daemon + pipeline process)", f"{cpu:.2f} % of a core", "≤ 1 %", cpu <= 1.0)
    )
    rows.append(
        Row(
            f"pickup latency, median of {len(latencies)}",
            f"{median:.3f} s (max {max(latencies):.3f} s)",
            f"≤ {target:.1f} s",
            median <= target,
        )
    )
    rows.append(
        Row(
            f"storm of {storm_size}: lost / duplicated",
            f"{lost} / {duplicated}",
            "0 / 0",
            lost == 0 and duplicated == 0,
        )
    )
    rows.append(
        Row(
            "storm: daemon s/job vs in-process s/job (before / after the daemon)",
            f"{elapsed / storm_size:.3f} vs {direct / storm_size:.3f} "
            f"({before / storm_size:.3f} / {after / storm_size:.3f}): {overhead:+.1%}",
            "≤ +10 %",
            overhead <= 0.10,
        )
    )
    if "warm_vs_fresh" in figures:
        warm = figures["warm_vs_fresh"]
        rows.append(
            Row(
                f"warm vs fresh process per job ({warm['jobs']} jobs, {warm['model']})",
                f"{warm['warm_median_s']:.2f} vs {warm['fresh_median_s']:.2f} s "
                f"({warm['speedup']:.1f}×)",
                f"≥ {WARM_FACTOR_TARGET:.0f}×",
                warm["speedup"] >= WARM_FACTOR_TARGET,
            )
        )
    figures["rows"] = [row.__dict__ for row in rows]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-samples", type=int, default=20)
    parser.add_argument("--storm", type=int, default=50)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument(
        "--warm-jobs",
        type=int,
        default=5,
        help="batch size of the warm vs fresh comparison (0: skip it)",
    )
    options = parser.parse_args(argv)
    model = None
    if options.warm_jobs > 0:
        from bench.harness import depth_model

        model = depth_model("small")
    figures = measure(
        latency_samples=options.latency_samples,
        storm_size=options.storm,
        idle_seconds=options.idle_seconds,
        warm_jobs=options.warm_jobs,
        warm_model=model,
    )
    rows = [Row(**row) for row in figures["rows"]]
    print_table(rows)
    return 0 if all(row.ok for row in rows) else 1


def print_table(rows: list[Row]) -> None:
    width = max(len(row.figure) for row in rows)
    value_width = max(len(row.value) for row in rows)
    print(f"{'figure':<{width}}  {'measured':<{value_width}}  {'target':<8}  ok")
    for row in rows:
        print(
            f"{row.figure:<{width}}  {row.value:<{value_width}}  {row.target:<8}  "
            f"{'yes' if row.ok else 'NO'}"
        )


if __name__ == "__main__":
    sys.exit(main())
