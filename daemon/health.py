"""Is the daemon healthy? Read from the ledger's heartbeats, so any process can ask.

With the Redis ledger every watcher and worker on every machine beats; a role is healthy
when at least one of its processes is, and ``workers`` lists each with its last
heartbeat and the job it runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daemon.ledger import Heartbeat, JobLedger

STALE_AFTER_SECONDS = 10.0
ROLES = ("watcher", "worker")
LIVENESS_FLAGS = ("consumer_alive", "observer_alive")
"""Heartbeat details that say a thread of the beating process is alive."""


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    problems: list[str]
    queue_depth: int
    processing: int
    counts: dict[str, int]
    beats: dict[str, dict[str, Any]] = field(default_factory=dict)
    processes: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "problems": self.problems,
            "queue_depth": self.queue_depth,
            "processing": self.processing,
            "counts": self.counts,
            "daemon": self.beats,
            "processes": self.processes,
        }


def check(
    ledger: JobLedger,
    *,
    stale_after: float = STALE_AFTER_SECONDS,
    pid_alive: Callable[[int], bool] | None = None,
) -> HealthReport:
    """The daemon's health from the ledger's heartbeats; ``pid_alive`` is the system's."""
    alive = pid_alive or _pid_alive
    beats = ledger.heartbeats()
    problems: list[str] = []
    described: dict[str, dict[str, Any]] = {}
    processes: list[dict[str, Any]] = []
    for role in ROLES:
        mine = [beat for beat in beats.values() if beat.role == role]
        if not mine:
            problems += _lost(role, None, stale_after, alive)
            continue
        entries, troubles, any_healthy = [], [], False
        for beat in mine:
            lost = _lost(role, beat, stale_after, alive)
            entries.append(_describe(beat, running=not lost))
            trouble = lost or _problems(role, beat)
            troubles += trouble
            any_healthy = any_healthy or not trouble
        processes += entries
        described[role] = next((e for e in entries if e["process_alive"]), entries[0])
        if not any_healthy:
            problems += troubles
    counts = ledger.counts()
    return HealthReport(
        healthy=not problems,
        problems=problems,
        queue_depth=counts["pending"],
        processing=counts["processing"],
        counts=counts,
        beats=described,
        processes=processes,
    )


def daemon_running(
    ledger: JobLedger,
    *,
    stale_after: float = STALE_AFTER_SECONDS,
    pid_alive: Callable[[int], bool] | None = None,
) -> bool:
    """Is any daemon process (watcher or worker) beating? Only then can jobs change."""
    alive = pid_alive or _pid_alive
    beats = ledger.heartbeats()
    return any(not _lost(beat.role, beat, stale_after, alive) for beat in beats.values())


def _lost(
    role: str, beat: Heartbeat | None, stale_after: float, pid_alive: Callable[[int], bool]
) -> list[str]:
    """Why the role's process is not running (none, silent, or gone), or nothing."""
    if beat is None:
        return [f"no {role} is running (start it with `strata run`)"]
    if beat.age > stale_after:
        return [f"the {role}'s last heartbeat is {beat.age:.0f} s old"]
    if beat.host == os.uname().nodename and not pid_alive(beat.pid):
        return [f"the {role} process {beat.pid} is gone (start it again with `strata run`)"]
    return []


def _problems(role: str, beat: Heartbeat | None) -> list[str]:
    """What the running role's last heartbeat reports as broken inside it."""
    details = beat.details if beat is not None else {}
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


def _describe(beat: Heartbeat, *, running: bool) -> dict[str, Any]:
    """The beat for ``strata health``. A process that is gone or silent has no live
    threads, whatever its last heartbeat said: its liveness flags read false."""
    described = {
        "role": beat.role,
        "pid": beat.pid,
        "host": beat.host,
        "started_at": beat.started_at,
        "heartbeat_age_seconds": round(beat.age, 2),
        **beat.details,
        "process_alive": running,
    }
    if not running:
        described.update({flag: False for flag in LIVENESS_FLAGS if flag in described})
    return described
