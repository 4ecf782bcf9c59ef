"""Is the daemon healthy? Read from the ledger's heartbeats, so any process can ask."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from daemon.ledger import Heartbeat, Ledger

STALE_AFTER_SECONDS = 10.0
ROLES = ("watcher", "worker")


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    problems: list[str]
    queue_depth: int
    processing: int
    counts: dict[str, int]
    beats: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "problems": self.problems,
            "queue_depth": self.queue_depth,
            "processing": self.processing,
            "counts": self.counts,
            "daemon": self.beats,
        }


def check(ledger: Ledger, *, stale_after: float = STALE_AFTER_SECONDS) -> HealthReport:
    beats = ledger.heartbeats()
    problems: list[str] = []
    for role in ROLES:
        problems += _problems(role, beats.get(role), stale_after)
    counts = ledger.counts()
    return HealthReport(
        healthy=not problems,
        problems=problems,
        queue_depth=counts["pending"],
        processing=counts["processing"],
        counts=counts,
        beats={role: _describe(beat) for role, beat in beats.items()},
    )


def _problems(role: str, beat: Heartbeat | None, stale_after: float) -> list[str]:
    if beat is None:
        return [f"no {role} is running (start it with `strata run`)"]
    if beat.age > stale_after:
        return [f"the {role}'s last heartbeat is {beat.age:.0f} s old"]
    if beat.host == os.uname().nodename and not _pid_alive(beat.pid):
        return [f"the {role} process {beat.pid} is gone"]
    details = beat.details
    if role == "worker" and not details.get("consumer_alive", False):
        return ["the consumer's worker thread is not alive"]
    if role == "watcher" and not details.get("observer_alive", False):
        return ["the folder observer is not alive"]
    return []


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe(beat: Heartbeat) -> dict[str, Any]:
    return {
        "pid": beat.pid,
        "host": beat.host,
        "started_at": beat.started_at,
        "heartbeat_age_seconds": round(beat.age, 2),
        **beat.details,
    }
