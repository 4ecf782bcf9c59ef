"""The job ledger: one SQLite table that is the truth about every job.

Huey's queue only carries job ids and forgets a task whose worker dies; the ledger
remembers. A job is claimed by one atomic ``pending → processing`` update, so a job id
that reaches the queue twice still runs once. Every change bumps a global ``version``
so ``strata jobs --follow`` can stream changes by polling one indexed column.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from config.errors import JobNotFoundError, JobStateError
from config.model import QueueBackend, QueueSettings
from daemon.retry import with_backoff
from pipeline.timing import utc_now

LEDGER_FILE = "ledger.db"
BUSY_TIMEOUT_MS = 10_000


class JobStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = (JobStatus.PENDING, JobStatus.PROCESSING)
TERMINAL = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


SCHEMA = """
create table if not exists jobs (
    id text primary key,
    status text not null,
    mode text not null,
    input_filename text not null,
    input_path text not null,
    input_key text not null,
    input_sha256 text,
    settings_key text,
    settings text,
    priority integer not null default 0,
    num_layers integer,
    painterly_style text,
    painterly_strength real,
    painterly_seed integer,
    output_dir text,
    result_manifest text,
    error_message text,
    error_hint text,
    error_stage text,
    duplicate_of text,
    attempts integer not null default 0,
    cancel_requested integer not null default 0,
    created_at text not null,
    started_at text,
    completed_at text,
    processing_time real,
    updated_at text not null,
    version integer not null
);
create unique index if not exists jobs_one_active_per_input
    on jobs (input_key) where status in ('pending', 'processing');
create index if not exists jobs_version on jobs (version);
create index if not exists jobs_created on jobs (created_at);
create index if not exists jobs_result on jobs (input_sha256, settings_key, status);
create table if not exists heartbeats (
    role text primary key,
    pid integer not null,
    host text not null,
    started_at text not null,
    beat_at real not null,
    details text not null
);
"""


def now_iso() -> str:
    """Now, as the ledger stores every time (ISO 8601 UTC, milliseconds)."""
    return utc_now()


@dataclass(frozen=True)
class JobRecord:
    """One row of the ledger; the first fields are the seed backend's Job fields."""

    id: str
    status: JobStatus
    mode: str
    input_filename: str
    num_layers: int | None
    painterly_style: str | None
    painterly_strength: float | None
    painterly_seed: int | None
    output_dir: str | None
    result_manifest: dict[str, Any] | None
    error_message: str | None
    created_at: str
    started_at: str | None
    completed_at: str | None
    processing_time: float | None
    input_path: str
    input_key: str
    input_sha256: str | None
    settings_key: str | None
    settings: dict[str, Any] | None
    priority: int
    error_hint: str | None
    error_stage: str | None
    duplicate_of: str | None
    attempts: int
    cancel_requested: bool
    updated_at: str
    version: int

    def public(self) -> dict[str, Any]:
        """The ``--json`` view: seed fields first, then Strata's own."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["status"] = self.status.value
        data["cancel_requested"] = self.cancel_requested
        return data

    @classmethod
    def from_row(cls, row: sqlite3.Row | Mapping[str, Any]) -> JobRecord:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["status"] = JobStatus(row["status"])
        values["result_manifest"] = _loads(row["result_manifest"])
        values["settings"] = _loads(row["settings"])
        values["cancel_requested"] = bool(row["cancel_requested"])
        return cls(**values)


@dataclass(frozen=True)
class Heartbeat:
    role: str
    pid: int
    host: str
    started_at: str
    beat_at: float
    details: dict[str, Any]

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.beat_at)


@dataclass(frozen=True)
class JobInputs:
    """What the worker learned about a job just before running it."""

    input_sha256: str
    settings_key: str
    settings: dict[str, Any]
    priority: int


@dataclass(frozen=True)
class JobFailure:
    reason: str
    hint: str
    stage: str


def worker_name(state_dir: Path) -> str:
    """This process's name in leases and heartbeats: its host and its state folder (so a
    worker restarted on the same folder recognises its own interrupted jobs)."""
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]
    return f"{os.uname().nodename}-{digest}"


def open_ledger(
    state_dir: Path, settings: QueueSettings, *, patience: float | None = None
) -> JobLedger:
    """The ledger ``queue.backend`` names: ``state_dir/ledger.db``, or the Redis at
    ``queue.redis_url``. ``patience``: how long a command waits for an unreachable Redis
    (None: the daemon waits as long as it takes)."""
    if settings.backend is QueueBackend.REDIS:
        from daemon.ledger_redis import RedisLedger

        return RedisLedger(
            settings.redis_url,
            owner=worker_name(state_dir),
            lease_seconds=settings.lease_seconds,
            patience=patience,
        )
    return Ledger.in_state_dir(state_dir)


class JobLedger(ABC):
    """What the daemon and the CLI need from a ledger: :class:`Ledger` (SQLite, one
    machine) or :class:`daemon.ledger_redis.RedisLedger` (shared by several).

    What a ledger records when a job's inputs are known, when it ends and when it is
    retried is written here once, in the column names both share; a ledger stores it
    (``_store_inputs``, ``_finish``, ``_reopen``)."""

    @abstractmethod
    def close(self) -> None: ...
    @abstractmethod
    def create_job(
        self, *, mode: str, input_path: Path, input_key: str, priority: int = 0
    ) -> JobRecord | None: ...
    @abstractmethod
    def get(self, job_id: str) -> JobRecord | None: ...
    @abstractmethod
    def find(self, prefix: str) -> JobRecord: ...
    @abstractmethod
    def recent(
        self, *, status: JobStatus | None = None, limit: int | None = None, skip: int = 0
    ) -> list[JobRecord]: ...
    @abstractmethod
    def active_for(self, input_key: str) -> JobRecord | None: ...
    @abstractmethod
    def with_status(self, *statuses: JobStatus) -> list[JobRecord]: ...
    @abstractmethod
    def earlier_result(self, job: JobRecord, inputs: JobInputs) -> JobRecord | None: ...
    @abstractmethod
    def counts(self) -> dict[str, int]: ...
    @abstractmethod
    def changes_since(self, version: int) -> list[JobRecord]: ...
    @abstractmethod
    def latest_version(self) -> int: ...
    @abstractmethod
    def claim(self, job_id: str) -> JobRecord | None: ...
    @abstractmethod
    def renew_lease(self, job_id: str) -> bool: ...
    @abstractmethod
    def requeue_lost(self, *, retries: int) -> list[JobRecord]:
        """Jobs whose worker stopped renewing its lease and that have retries left, back
        to pending (the lost run counts as an attempt); returns them, to enqueue."""

    @abstractmethod
    def take_over_lost(self, *, retries: int) -> list[JobRecord]:
        """Jobs whose worker stopped renewing its lease with no retries left, now under
        this worker's lease, for it to end as failed (:func:`daemon.lifecycle.fail_lost`)."""

    @abstractmethod
    def requeue(
        self, job_id: str, *, note: str | None = None, interrupted: bool = False
    ) -> bool: ...
    @abstractmethod
    def interrupted_to_pending(self) -> list[str]: ...
    @abstractmethod
    def cancel_pending(self, job_id: str) -> bool: ...
    @abstractmethod
    def request_cancel(self, job_id: str) -> bool: ...
    @abstractmethod
    def cancel_is_requested(self, job_id: str) -> bool: ...
    @abstractmethod
    def set_output_dir(self, job_id: str, output_dir: Path | None) -> None: ...
    @abstractmethod
    def delete(self, job_id: str) -> bool: ...
    @abstractmethod
    def beat(self, role: str, *, started_at: str, details: dict[str, Any]) -> None: ...
    @abstractmethod
    def clear_beat(self, role: str) -> None: ...
    @abstractmethod
    def heartbeats(self) -> dict[str, Heartbeat]: ...

    # --- how each ledger stores the shared transitions -----------------------------------

    @abstractmethod
    def _store_inputs(self, job_id: str, **values: Any) -> None: ...
    @abstractmethod
    def _finish(self, job_id: str, status: JobStatus, **values: Any) -> None: ...
    @abstractmethod
    def _reopen(self, job_id: str, **values: Any) -> bool | None:
        """Set ``values`` on a failed or cancelled job; None when its input already has
        another pending or running job."""

    # --- the shared transitions ----------------------------------------------------------

    def record_inputs(self, job_id: str, mode: str, inputs: JobInputs) -> None:
        painterly = mode == "painterly"
        self._store_inputs(
            job_id,
            input_sha256=inputs.input_sha256,
            settings_key=inputs.settings_key,
            settings=json.dumps(inputs.settings),
            priority=inputs.priority,
            num_layers=inputs.settings.get("num_layers"),
            painterly_style=inputs.settings.get("style") if painterly else None,
            painterly_strength=inputs.settings.get("strength") if painterly else None,
            painterly_seed=inputs.settings.get("seed") if painterly else None,
        )

    def complete(
        self,
        job_id: str,
        *,
        output_dir: Path,
        manifest: dict[str, Any],
        duplicate_of: str | None = None,
    ) -> None:
        self._finish(
            job_id,
            JobStatus.COMPLETED,
            output_dir=str(output_dir),
            result_manifest=json.dumps(manifest),
            duplicate_of=duplicate_of,
            error_message=None,
            error_hint=None,
            error_stage=None,
        )

    def fail(self, job_id: str, failure: JobFailure, *, output_dir: Path | None) -> None:
        self._finish(
            job_id,
            JobStatus.FAILED,
            output_dir=str(output_dir) if output_dir else None,
            error_message=failure.reason,
            error_hint=failure.hint,
            error_stage=failure.stage,
        )

    def mark_cancelled(self, job_id: str, *, output_dir: Path | None) -> None:
        self._finish(
            job_id,
            JobStatus.CANCELLED,
            output_dir=str(output_dir) if output_dir else None,
            error_message="The job was cancelled.",
            error_hint=None,
            error_stage="cancelled",
        )

    def reset_for_retry(self, job_id: str, *, input_path: Path, input_key: str) -> bool:
        """A failed or cancelled job becomes pending again with its input back in the
        inbox; False when it is neither."""
        reopened = self._reopen(
            job_id,
            status=JobStatus.PENDING.value,
            input_path=str(input_path),
            input_key=input_key,
            started_at=None,
            completed_at=None,
            processing_time=None,
            output_dir=None,
            error_message=None,
            error_hint=None,
            error_stage=None,
            attempts=0,
            cancel_requested=0,
        )
        if reopened is None:
            raise JobStateError(f"Another job already holds {Path(input_path).name} in the inbox.")
        return reopened


class Ledger(JobLedger):
    """Thread-safe access to ``state_dir/ledger.db`` (WAL, busy timeout)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        with_backoff(self._configure)

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> Ledger:
        return cls(state_dir / LEDGER_FILE)

    def _configure(self) -> None:
        self._conn.execute(f"pragma busy_timeout = {BUSY_TIMEOUT_MS}")
        self._conn.execute("pragma journal_mode = wal")
        self._conn.execute("pragma synchronous = normal")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- plumbing ----------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("begin immediate")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("rollback")
                raise
            self._conn.execute("commit")

    def _update(
        self,
        job_id: str,
        where: str,
        params: Sequence[Any],
        *,
        raw: dict[str, str] | None = None,
        **values: Any,
    ) -> bool:
        """Set ``values`` (and SQL expressions ``raw``) on the job when ``where`` holds.

        Every update bumps ``version`` and ``updated_at``.
        """
        assignments = ", ".join(
            [f"{name} = ?" for name in values] + [f"{k} = {v}" for k, v in (raw or {}).items()]
        )
        sql = (
            f"update jobs set {assignments}, updated_at = ?, "
            "version = (select coalesce(max(version), 0) + 1 from jobs) "
            f"where id = ? and ({where})"
        )

        def run() -> bool:
            with self._write() as conn:
                cursor = conn.execute(sql, (*values.values(), now_iso(), job_id, *params))
                return cursor.rowcount == 1

        return with_backoff(run)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        def run() -> list[sqlite3.Row]:
            with self._lock:
                return self._conn.execute(sql, params).fetchall()

        return with_backoff(run)

    def _records(self, sql: str, params: Sequence[Any] = ()) -> list[JobRecord]:
        return [JobRecord.from_row(row) for row in self._query(sql, params)]

    # --- creating and reading ----------------------------------------------------------

    def create_job(
        self, *, mode: str, input_path: Path, input_key: str, priority: int = 0
    ) -> JobRecord | None:
        """A new pending job, or None when the input already has a pending/running job."""
        job_id = str(uuid.uuid4())
        stamp = now_iso()

        def run() -> None:
            with self._write() as conn:
                conn.execute(
                    "insert into jobs (id, status, mode, input_filename, input_path, input_key, "
                    "priority, created_at, updated_at, version) values (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "(select coalesce(max(version), 0) + 1 from jobs))",
                    (
                        job_id,
                        JobStatus.PENDING.value,
                        mode,
                        input_path.name,
                        str(input_path),
                        input_key,
                        priority,
                        stamp,
                        stamp,
                    ),
                )

        try:
            with_backoff(run)
        except sqlite3.IntegrityError:
            return None
        return self.get(job_id)

    def get(self, job_id: str) -> JobRecord | None:
        found = self._records("select * from jobs where id = ?", (job_id,))
        return found[0] if found else None

    def find(self, prefix: str) -> JobRecord:
        """The job whose id is ``prefix`` or starts with it (unique prefixes only)."""
        exact = self.get(prefix)
        if exact is not None:
            return exact
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        found = self._records("select * from jobs where id like ? escape '\\' limit 2", (pattern,))
        if len(found) == 1:
            return found[0]
        if not found:
            raise JobNotFoundError(f"No job has the id {prefix!r}.")
        raise JobNotFoundError(
            f"More than one job id starts with {prefix!r}.", hint="Give more characters of the id."
        )

    def recent(
        self, *, status: JobStatus | None = None, limit: int | None = None, skip: int = 0
    ) -> list[JobRecord]:
        """Newest first."""
        where, params = ("where status = ?", [status.value]) if status else ("", [])
        sql = f"select * from jobs {where} order by created_at desc, version desc limit ? offset ?"
        return self._records(sql, [*params, -1 if limit is None else limit, skip])

    def active_for(self, input_key: str) -> JobRecord | None:
        found = self._records(
            "select * from jobs where input_key = ? and status in ('pending', 'processing')",
            (input_key,),
        )
        return found[0] if found else None

    def with_status(self, *statuses: JobStatus) -> list[JobRecord]:
        marks = ", ".join("?" for _ in statuses)
        return self._records(
            f"select * from jobs where status in ({marks}) order by priority desc, created_at",
            [s.value for s in statuses],
        )

    def earlier_result(self, job: JobRecord, inputs: JobInputs) -> JobRecord | None:
        """A completed job of the same mode with the same input bytes and settings."""
        found = self._records(
            "select * from jobs where input_sha256 = ? and settings_key = ? and mode = ? "
            "and status = 'completed' and id != ? order by completed_at limit 1",
            (inputs.input_sha256, inputs.settings_key, job.mode, job.id),
        )
        return found[0] if found else None

    def counts(self) -> dict[str, int]:
        rows = self._query("select status, count(*) as n from jobs group by status")
        counted = {status.value: 0 for status in JobStatus}
        counted.update({row["status"]: row["n"] for row in rows})
        return counted

    def changes_since(self, version: int) -> list[JobRecord]:
        return self._records("select * from jobs where version > ? order by version", (version,))

    def latest_version(self) -> int:
        row = self._query("select coalesce(max(version), 0) as v from jobs")[0]
        return int(row["v"])

    # --- the job's life ----------------------------------------------------------------

    def claim(self, job_id: str) -> JobRecord | None:
        """``pending → processing`` atomically; None when someone else has it (or it's gone)."""
        claimed = self._update(
            job_id,
            "status = 'pending'",
            (),
            raw={"attempts": "attempts + 1"},
            status=JobStatus.PROCESSING.value,
            started_at=now_iso(),
        )
        return self.get(job_id) if claimed else None

    def _store_inputs(self, job_id: str, **values: Any) -> None:
        self._update(job_id, "1", (), **values)

    def _finish(self, job_id: str, status: JobStatus, **values: Any) -> None:
        job = self.get(job_id)
        completed = now_iso()
        elapsed = seconds_between(job.started_at, completed) if job else None
        self._update(
            job_id,
            "1",
            (),
            status=status.value,
            completed_at=completed,
            processing_time=elapsed,
            cancel_requested=0,
            **values,
        )

    def requeue(self, job_id: str, *, note: str | None = None, interrupted: bool = False) -> bool:
        """``processing → pending`` (a crash or timeout with retries left, a shutdown).

        An ``interrupted`` job (the daemon stopped under it) keeps its retries.
        """
        return self._update(
            job_id,
            "status = 'processing'",
            (),
            raw={"attempts": "max(attempts - 1, 0)"} if interrupted else None,
            status=JobStatus.PENDING.value,
            started_at=None,
            error_message="Interrupted; runs again." if interrupted else note,
        )

    def interrupted_to_pending(self) -> list[str]:
        """At start-up: jobs left ``processing`` by a dead daemon run again."""
        stuck = self.with_status(JobStatus.PROCESSING)
        return [job.id for job in stuck if self.requeue(job.id, interrupted=True)]

    def cancel_pending(self, job_id: str) -> bool:
        return self._update(
            job_id,
            "status = 'pending'",
            (),
            status=JobStatus.CANCELLED.value,
            completed_at=now_iso(),
            error_message="The job was cancelled.",
            error_stage="cancelled",
        )

    def request_cancel(self, job_id: str) -> bool:
        return self._update(job_id, "status = 'processing'", (), cancel_requested=1)

    def cancel_is_requested(self, job_id: str) -> bool:
        job = self.get(job_id)
        return bool(job and job.cancel_requested)

    def _reopen(self, job_id: str, **values: Any) -> bool | None:
        try:
            return self._update(job_id, "status in ('failed', 'cancelled')", (), **values)
        except sqlite3.IntegrityError:
            return None

    def set_output_dir(self, job_id: str, output_dir: Path | None) -> None:
        self._update(job_id, "1", (), output_dir=str(output_dir) if output_dir else None)

    def delete(self, job_id: str) -> bool:
        def run() -> bool:
            with self._write() as conn:
                return conn.execute("delete from jobs where id = ?", (job_id,)).rowcount == 1

        return with_backoff(run)

    # --- heartbeats --------------------------------------------------------------------

    def beat(self, role: str, *, started_at: str, details: dict[str, Any]) -> None:
        def run() -> None:
            with self._write() as conn:
                conn.execute(
                    "insert or replace into heartbeats values (?, ?, ?, ?, ?, ?)",
                    (
                        role,
                        os.getpid(),
                        os.uname().nodename,
                        started_at,
                        time.time(),
                        json.dumps(details),
                    ),
                )

        with_backoff(run)

    def clear_beat(self, role: str) -> None:
        def run() -> None:
            with self._write() as conn:
                conn.execute("delete from heartbeats where role = ?", (role,))

        with_backoff(run)

    # --- leases (one machine: the state lock and start-up recovery stand in for them) --

    def renew_lease(self, job_id: str) -> bool:
        return True

    def requeue_lost(self, *, retries: int) -> list[JobRecord]:
        return []

    def take_over_lost(self, *, retries: int) -> list[JobRecord]:
        return []

    def heartbeats(self) -> dict[str, Heartbeat]:
        rows = self._query("select * from heartbeats")
        return {
            row["role"]: Heartbeat(
                role=row["role"],
                pid=row["pid"],
                host=row["host"],
                started_at=row["started_at"],
                beat_at=row["beat_at"],
                details=json.loads(row["details"]),
            )
            for row in rows
        }


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def seconds_between(start: str | None, end: str) -> float | None:
    if start is None:
        return None
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return round(delta.total_seconds(), 3)
