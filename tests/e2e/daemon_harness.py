"""Run the real `strata run` as a subprocess on temporary folders.

Photos come with ``<stem>.depth.png`` depth maps, so no model is loaded and jobs are fast.
The ledger is read directly (it is the truth the drills assert on).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from daemon.ledger import JobRecord, JobStatus, Ledger

STRATA = Path(sys.executable).with_name("strata")
SETTLE_SECONDS = 0.3
MODES = ("photo-realistic", "painterly")


def make_photo(path: Path, *, seed: int, size: tuple[int, int] = (320, 240)) -> Path:
    """A smooth random photo and its ``<stem>.depth.png`` (written beside it first)."""
    width, height = size
    rng = np.random.default_rng(seed)
    small = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    columns = np.linspace(0, 65535, width, dtype=np.float64)
    depth = np.tile(columns, (height, 1)).astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(depth).save(depth_path(path))
    image.save(path, quality=92)
    return path


def depth_path(photo: Path) -> Path:
    return photo.with_name(f"{photo.stem}.depth.png")


@dataclass
class DaemonEnv:
    root: Path
    settings: dict[str, object]
    process: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def inbox(self) -> Path:
        return self.root / "inbox" / "photo-realistic"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def state(self) -> Path:
        return self.root / "state"

    def write_config(self) -> None:
        self.config.write_text(yaml.safe_dump(self.settings), encoding="utf-8")

    def start(self, *, wait: bool = True) -> None:
        self.write_config()
        log = self.root / f"daemon-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as stream:
            self.process = subprocess.Popen(
                [str(STRATA), "run", "--config", str(self.config)],
                stdout=stream,
                stderr=subprocess.STDOUT,
                cwd=self.root,
            )
        if wait:
            wait_for(self.healthy, timeout=30, what="the daemon to report healthy")

    def healthy(self) -> bool:
        return self.strata("health").returncode == 0 if self.running() else False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, *, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def strata(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """One CLI command, off a terminal (stdin is /dev/null), as a script would run it."""
        return subprocess.run(
            [str(STRATA), *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env=env,
            timeout=60,
            check=False,
        )

    def private_home(self) -> dict[str, str]:
        """An environment whose home (and so the system trash) is inside the drill's folder."""
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        return {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / ".local/share")}

    @property
    def trash(self) -> Path:
        """The freedesktop.org trash of :meth:`private_home`."""
        return self.root / "home" / ".local" / "share" / "Trash" / "files"

    def jobs(self) -> list[JobRecord]:
        ledger = Ledger.in_state_dir(self.state)
        try:
            return ledger.recent()
        finally:
            ledger.close()

    def all_done(self, count: int) -> bool:
        jobs = self.jobs()
        return len(jobs) >= count and all(
            j.status not in (JobStatus.PENDING, JobStatus.PROCESSING) for j in jobs
        )

    def inbox_files(self) -> list[Path]:
        root = self.root / "inbox"
        return sorted(p for p in root.rglob("*") if p.is_file())

    def job_folders(self, mode: str = "photo-realistic") -> list[Path]:
        folder = self.outbox / mode
        return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def temp_leftovers(self) -> list[Path]:
        return sorted(self.outbox.rglob(".strata-tmp-*")) if self.outbox.exists() else []

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())


def wait_for(
    predicate: Callable[[], bool], *, timeout: float, what: str, poll: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
