"""Daemon figures: pickup latency, a 50-photo storm against in-process runs, idle CPU.

``python -m bench.daemon`` starts the real ``strata run`` on temporary folders (photos
carry ``<stem>.depth.png`` so no model loads) and prints a table:

- pickup latency: file closed in the inbox → job started (ledger), median of 20;
  target ≤ settle_seconds + 0.5 s;
- storm: 50 photos dropped at once, all completed, 0 lost / duplicated; the daemon's
  wall time per job against ``pipeline.run`` in-process on the same photos; target
  overhead ≤ 10 %;
- idle CPU of the daemon (and its pipeline process) over ~20 s; target ≤ 1 % of a core.
"""

from __future__ import annotations

import argparse
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

import numpy as np
import psutil
import yaml
from PIL import Image

from config.model import JobSettings, Mode
from daemon.ledger import JobStatus, Ledger
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
            "inbox": "inbox", "outbox": "outbox", "state_dir": "state",
            "watch": {"settle_seconds": SETTLE_SECONDS, "rescan_seconds": 60.0},
            "log": {"level": "WARNING"}, "defaults": {"max_side": 320},
        }
        self.config = root / "config.yaml"
        self.config.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.inbox = root / "inbox" / Mode.PHOTO_REALISTIC.value
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(STRATA), "run", "--config", str(self.config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.wait(lambda: bool(self.ledger().heartbeats()), 60)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)

    def ledger(self) -> Ledger:
        return Ledger.in_state_dir(self.root / "state")

    def wait(self, predicate: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if callable(predicate) and predicate():
                return
            time.sleep(0.02)
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


def storm(daemon: Daemon, count: int) -> tuple[float, int, int]:
    """Seconds from the drop to the last completion; lost and duplicated counts."""
    staging = daemon.root / "staging-storm"
    names = [f"storm{i:02d}.jpg" for i in range(count)]
    for seed, name in enumerate(names):
        make_photo(staging / name, seed=seed)
    ledger = daemon.ledger()
    before = len(ledger.recent())
    started = time.monotonic()
    for path in sorted(staging.iterdir()):
        path.rename(daemon.inbox / path.name)
    daemon.wait(lambda: len(ledger.recent()) >= before + count and _all_done(ledger), 600)
    elapsed = time.monotonic() - started
    jobs = [j for j in ledger.recent() if j.input_filename in names]
    done = Counter(j.input_filename for j in jobs if j.status is JobStatus.COMPLETED)
    lost = sum(1 for name in names if done[name] == 0)
    duplicated = sum(count - 1 for count in done.values() if count > 1)
    return elapsed, lost, duplicated


def in_process(root: Path, count: int) -> float:
    staging = root / "staging-inprocess"
    names = [f"storm{i:02d}.jpg" for i in range(count)]
    for seed, name in enumerate(names):
        make_photo(staging / name, seed=seed)
    run(Job("warm", Mode.PHOTO_REALISTIC, staging / names[0], root / "warm",
            settings=JobSettings(max_side=320)))
    started = time.monotonic()
    for index, name in enumerate(names):
        run(Job(f"in-{index}", Mode.PHOTO_REALISTIC, staging / name, root / "inprocess",
                settings=JobSettings(max_side=320)))
    return time.monotonic() - started


def idle_cpu(daemon: Daemon, seconds: float) -> float:
    assert daemon.process is not None
    parent = psutil.Process(daemon.process.pid)
    processes = [parent, *parent.children(recursive=True)]
    for process in processes:
        process.cpu_percent(None)
    time.sleep(seconds)
    return sum(p.cpu_percent(None) for p in processes if p.is_running())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-samples", type=int, default=20)
    parser.add_argument("--storm", type=int, default=50)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    options = parser.parse_args(argv)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="strata-bench-") as temp:
        root = Path(temp)
        daemon = Daemon(root)
        daemon.start()
        try:
            time.sleep(2.0)
            cpu = idle_cpu(daemon, options.idle_seconds)
            rows.append(Row("idle CPU (daemon + pipeline process)", f"{cpu:.2f} % of a core",
                            "≤ 1 %", cpu <= 1.0))
            latencies = pickup_latency(daemon, options.latency_samples)
            median = statistics.median(latencies)
            target = SETTLE_SECONDS + 0.5
            rows.append(Row(f"pickup latency, median of {len(latencies)}",
                            f"{median:.3f} s (max {max(latencies):.3f} s)",
                            f"≤ {target:.1f} s", median <= target))
            elapsed, lost, duplicated = storm(daemon, options.storm)
        finally:
            daemon.stop()
        direct = in_process(root, options.storm)
    overhead = (elapsed - direct) / direct
    rows.append(Row(f"storm of {options.storm}: lost / duplicated", f"{lost} / {duplicated}",
                    "0 / 0", lost == 0 and duplicated == 0))
    rows.append(Row("storm: daemon s/job vs in-process s/job",
                    f"{elapsed / options.storm:.3f} vs {direct / options.storm:.3f} "
                    f"({overhead:+.1%})", "≤ +10 %", overhead <= 0.10))
    print_table(rows)
    return 0 if all(row.ok for row in rows) else 1


def print_table(rows: list[Row]) -> None:
    width = max(len(row.figure) for row in rows)
    value_width = max(len(row.value) for row in rows)
    print(f"{'figure':<{width}}  {'measured':<{value_width}}  {'target':<8}  ok")
    for row in rows:
        print(f"{row.figure:<{width}}  {row.value:<{value_width}}  {row.target:<8}  "
              f"{'yes' if row.ok else 'NO'}")


if __name__ == "__main__":
    sys.exit(main())
