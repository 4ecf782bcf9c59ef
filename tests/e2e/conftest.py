"""Fixtures for the daemon drills (helpers live in ``daemon_harness``)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_harness import MODES, SETTLE_SECONDS, DaemonEnv


@pytest.fixture
def daemon_env(tmp_path: Path) -> Iterator[DaemonEnv]:
    for mode in MODES:
        (tmp_path / "inbox" / mode).mkdir(parents=True)
    settings: dict[str, object] = {
        "inbox": "inbox",
        "outbox": "outbox",
        "state_dir": "state",
        "watch": {"settle_seconds": SETTLE_SECONDS, "rescan_seconds": 2.0},
        "queue": {"job_timeout_seconds": 60.0, "retries": 1, "shutdown_grace_seconds": 10.0},
        "log": {"level": "INFO"},
        "defaults": {"max_side": 320},
    }
    env = DaemonEnv(tmp_path, settings)
    yield env
    if env.running():
        env.stop(signal.SIGKILL)
    if os.environ.get("STRATA_E2E_SHOW_LOGS"):
        print(env.log_text())
