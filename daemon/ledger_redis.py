"""The job ledger in Redis: the same jobs, claims and versions as the SQLite ledger, shared
by every machine that points at one Redis server.

Each job is one JSON string (the SQLite row's columns, plus the lease) under
``strata:ledger:job:<id>``; every change is one Lua script, so a claim, a lease renewal or
an end is atomic on the server whichever machine sends it. The keys (all under
``strata:ledger:``):

- ``job:<id>``: the job; ``jobs``: every id, scored by creation time;
- ``active:<input key>``: the id of the input's pending or running job (``SET NX``: two
  watchers on one inbox create one job);
- ``version``: the global change counter; ``changes``: ids scored by their last version;
- ``beat:<role>:<owner>``: one process's heartbeat, expiring when it stops beating.

A running job carries a lease: ``lease_owner`` (the worker) and ``lease_until`` (server
time). The worker renews it while the job runs; a worker that dies stops renewing, and
any other worker puts the job back (:meth:`RedisLedger.requeue_lost`), or, with no
retries left, takes it over to end it as failed (:meth:`RedisLedger.take_over_lost`). A
worker that lost its lease can no longer end the job: its late result is dropped.

Redis being unreachable is waited out with back-off (one log line when it goes, one
when it is back); only a command-line caller with ``patience`` gets an error.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import redis
from loguru import logger

from config.errors import JobNotFoundError, QueueUnreachableError
from daemon.ledger import (
    ACTIVE,
    Heartbeat,
    JobInputs,
    JobLedger,
    JobRecord,
    JobStatus,
    now_iso,
    seconds_between,
)

T = TypeVar("T")
PREFIX = "strata:ledger:"
BEAT_TTL_SECONDS = 120
"""A heartbeat key outlives its process this long, then `strata health` forgets it."""
FIRST_DELAY, MAX_DELAY = 0.1, 5.0
CHUNK = 500
_ACTIVE = [status.value for status in ACTIVE]

# ARGV: prefix, id, allowed statuses (JSON list, [] = any), changes (JSON object),
# attempts delta, required owner ("" = any), lease seconds (> 0: take the lease),
# updated_at, bump version ("1"/"0"), only when the lease expired ("1"/"0").
# Returns 1 (changed), 0 (the condition did not hold), -1 (the input has another
# active job).
UPDATE = """
local prefix, id = ARGV[1], ARGV[2]
local key = prefix .. 'job:' .. id
local raw = redis.call('GET', key)
if not raw then return 0 end
local job = cjson.decode(raw)
local allowed = cjson.decode(ARGV[3])
if #allowed > 0 then
  local ok = false
  for _, s in ipairs(allowed) do if job.status == s then ok = true end end
  if not ok then return 0 end
end
if ARGV[6] ~= '' and job.lease_owner ~= ARGV[6] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
if ARGV[10] == '1' and (job.lease_until == nil or job.lease_until == cjson.null
    or job.lease_until >= now) then return 0 end
local was_active = job.status == 'pending' or job.status == 'processing'
for k, v in pairs(cjson.decode(ARGV[4])) do job[k] = v end
job.attempts = math.max(job.attempts + tonumber(ARGV[5]), 0)
local lease = tonumber(ARGV[7])
if lease > 0 then job.lease_until = now + lease end
if job.status ~= 'processing' then job.lease_owner = cjson.null; job.lease_until = cjson.null end
local is_active = job.status == 'pending' or job.status == 'processing'
local active_key = prefix .. 'active:' .. job.input_key
if is_active and not was_active then
  if not redis.call('SET', active_key, id, 'NX') then return -1 end
elseif was_active and not is_active then
  if redis.call('GET', active_key) == id then redis.call('DEL', active_key) end
end
if ARGV[9] == '1' then
  job.version = redis.call('INCR', prefix .. 'version')
  job.updated_at = ARGV[8]
  redis.call('ZADD', prefix .. 'changes', job.version, id)
end
redis.call('SET', key, cjson.encode(job))
return 1
"""

# ARGV: prefix, id, job (JSON), created score. Returns 1, or 0 when the input is active.
CREATE = """
local prefix, id = ARGV[1], ARGV[2]
local job = cjson.decode(ARGV[3])
if not redis.call('SET', prefix .. 'active:' .. job.input_key, id, 'NX') then return 0 end
job.version = redis.call('INCR', prefix .. 'version')
redis.call('SET', prefix .. 'job:' .. id, cjson.encode(job))
redis.call('ZADD', prefix .. 'jobs', tonumber(ARGV[4]), id)
redis.call('ZADD', prefix .. 'changes', job.version, id)
return 1
"""

# ARGV: prefix, id. Returns 1 when the job was there.
DELETE = """
local prefix, id = ARGV[1], ARGV[2]
local raw = redis.call('GET', prefix .. 'job:' .. id)
if not raw then return 0 end
local job = cjson.decode(raw)
local active_key = prefix .. 'active:' .. job.input_key
if redis.call('GET', active_key) == id then redis.call('DEL', active_key) end
redis.call('DEL', prefix .. 'job:' .. id)
redis.call('ZREM', prefix .. 'jobs', id)
redis.call('ZREM', prefix .. 'changes', id)
return 1
"""


class RedisLedger(JobLedger):
    """The ledger on a Redis server; ``owner`` names this worker in leases and beats."""

    def __init__(
        self,
        url: str,
        *,
        owner: str,
        lease_seconds: float = 30.0,
        patience: float | None = None,
        prefix: str = PREFIX,
    ) -> None:
        self.url = url
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.patience = patience
        self.prefix = prefix
        self._client = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=5.0, socket_connect_timeout=2.0
        )
        self._update_script = self._client.register_script(UPDATE)
        self._create_script = self._client.register_script(CREATE)
        self._delete_script = self._client.register_script(DELETE)
        self._down_since: float | None = None

    def close(self) -> None:
        self._client.close()

    # --- plumbing ----------------------------------------------------------------------

    def _call(self, action: Callable[[], T]) -> T:
        """Run ``action``; while Redis is unreachable, wait with back-off (forever, or
        ``patience`` seconds, then raise :class:`QueueUnreachableError`)."""
        delay = FIRST_DELAY
        started = time.monotonic()
        while True:
            try:
                result = action()
            except (redis.ConnectionError, redis.TimeoutError) as error:
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    logger.error(
                        "Redis at {} is unreachable ({}); files stay where they are, "
                        "retrying with back-off",
                        self.url,
                        error,
                    )
                if self.patience is not None and time.monotonic() - started >= self.patience:
                    raise QueueUnreachableError(
                        f"Redis at {self.url} is unreachable ({error}).",
                    ) from error
                time.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)
                continue
            if self._down_since is not None:
                logger.info(
                    "Redis at {} is reachable again after {:.1f} s",
                    self.url,
                    time.monotonic() - self._down_since,
                )
                self._down_since = None
            return result

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def _update(
        self,
        job_id: str,
        *,
        allowed: tuple[JobStatus, ...] = (),
        add_attempts: int = 0,
        owner: str = "",
        take_lease: bool = False,
        bump: bool = True,
        only_expired: bool = False,
        **changes: Any,
    ) -> int:
        args: list[str | float] = [
            self.prefix,
            job_id,
            json.dumps([status.value for status in allowed]),
            json.dumps(changes),
            add_attempts,
            owner,
            self.lease_seconds if take_lease else 0,
            now_iso(),
            "1" if bump else "0",
            "1" if only_expired else "0",
        ]
        return int(self._call(lambda: self._update_script(args=args)))

    def _rows(self, ids: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for start in range(0, len(ids), CHUNK):
            keys = [self._key(job_id) for job_id in ids[start : start + CHUNK]]
            rows += [json.loads(value) for value in self._mget(keys) if value]
        return rows

    def _mget(self, keys: list[str]) -> list[Any]:
        values: list[Any] = self._call(lambda: self._client.mget(keys))
        return values

    def _ids(self) -> list[str]:
        return [
            str(job_id)
            for job_id in self._call(lambda: self._client.zrange(f"{self.prefix}jobs", 0, -1))
        ]

    def _all(self) -> list[JobRecord]:
        return [JobRecord.from_row(row) for row in self._rows(self._ids())]

    # --- creating and reading ----------------------------------------------------------

    def create_job(
        self, *, mode: str, input_path: Path, input_key: str, priority: int = 0
    ) -> JobRecord | None:
        job_id = str(uuid.uuid4())
        stamp = now_iso()
        row: dict[str, Any] = dict.fromkeys(JobRecord.__dataclass_fields__)
        row.update(
            id=job_id,
            status=JobStatus.PENDING.value,
            mode=mode,
            input_filename=input_path.name,
            input_path=str(input_path),
            input_key=input_key,
            priority=priority,
            attempts=0,
            cancel_requested=0,
            created_at=stamp,
            updated_at=stamp,
            version=0,
        )
        args: list[str | float] = [self.prefix, job_id, json.dumps(row), time.time()]
        if not self._call(lambda: self._create_script(args=args)):
            return None
        return self.get(job_id)

    def _raw(self, job_id: str) -> dict[str, Any] | None:
        value = self._call(lambda: self._client.get(self._key(job_id)))
        return json.loads(value) if value else None

    def get(self, job_id: str) -> JobRecord | None:
        row = self._raw(job_id)
        return JobRecord.from_row(row) if row else None

    def find(self, prefix: str) -> JobRecord:
        exact = self.get(prefix)
        if exact is not None:
            return exact
        found = [job_id for job_id in self._ids() if job_id.startswith(prefix)][:2]
        if len(found) == 1:
            record = self.get(found[0])
            if record is not None:
                return record
        if len(found) > 1:
            raise JobNotFoundError(
                f"More than one job id starts with {prefix!r}.",
                hint="Give more characters of the id.",
            )
        raise JobNotFoundError(f"No job has the id {prefix!r}.")

    def recent(
        self, *, status: JobStatus | None = None, limit: int | None = None, skip: int = 0
    ) -> list[JobRecord]:
        jobs = [job for job in self._all() if status is None or job.status is status]
        jobs.sort(key=lambda job: (job.created_at, job.version), reverse=True)
        return jobs[skip : None if limit is None else skip + limit]

    def active_for(self, input_key: str) -> JobRecord | None:
        job_id = self._call(lambda: self._client.get(f"{self.prefix}active:{input_key}"))
        return self.get(str(job_id)) if job_id else None

    def with_status(self, *statuses: JobStatus) -> list[JobRecord]:
        jobs = [job for job in self._all() if job.status in statuses]
        jobs.sort(key=lambda job: (-job.priority, job.created_at))
        return jobs

    def earlier_result(self, job: JobRecord, inputs: JobInputs) -> JobRecord | None:
        found = [
            other
            for other in self._all()
            if other.input_sha256 == inputs.input_sha256
            and other.settings_key == inputs.settings_key
            and other.mode == job.mode
            and other.status is JobStatus.COMPLETED
            and other.id != job.id
        ]
        return min(found, key=lambda other: other.completed_at or "") if found else None

    def counts(self) -> dict[str, int]:
        counted = {status.value: 0 for status in JobStatus}
        for job in self._all():
            counted[job.status.value] += 1
        return counted

    def changes_since(self, version: int) -> list[JobRecord]:
        ids = self._call(
            lambda: self._client.zrangebyscore(f"{self.prefix}changes", f"({version}", "+inf")
        )
        jobs = [JobRecord.from_row(row) for row in self._rows([str(i) for i in ids])]
        return sorted((job for job in jobs if job.version > version), key=lambda j: j.version)

    def latest_version(self) -> int:
        value = self._call(lambda: self._client.get(f"{self.prefix}version"))
        return int(value or 0)

    # --- the job's life ----------------------------------------------------------------

    def claim(self, job_id: str) -> JobRecord | None:
        """``pending → processing`` under this worker's lease; None when another has it."""
        claimed = self._update(
            job_id,
            allowed=(JobStatus.PENDING,),
            add_attempts=1,
            take_lease=True,
            status=JobStatus.PROCESSING.value,
            started_at=now_iso(),
            lease_owner=self.owner,
        )
        return self.get(job_id) if claimed == 1 else None

    def renew_lease(self, job_id: str) -> bool:
        """Extend this worker's lease on its running job; False when it lost the lease."""
        return (
            self._update(
                job_id,
                allowed=(JobStatus.PROCESSING,),
                owner=self.owner,
                take_lease=True,
                bump=False,
            )
            == 1
        )

    def requeue_lost(self, *, retries: int) -> list[JobRecord]:
        return self._lost(
            lambda job: job.attempts <= retries,
            status=JobStatus.PENDING.value,
            started_at=None,
            error_message="Its worker stopped answering; runs again.",
        )

    def take_over_lost(self, *, retries: int) -> list[JobRecord]:
        taken = self._lost(
            lambda job: job.attempts > retries, take_lease=True, lease_owner=self.owner
        )
        return [record for job in taken if (record := self.get(job.id)) is not None]

    def _lost(self, which: Callable[[JobRecord], bool], **update: Any) -> list[JobRecord]:
        """The running jobs ``which`` picks whose lease expired, each changed by
        ``update`` once, whichever of the workers calling at once asks first."""
        return [
            job
            for job in self.with_status(JobStatus.PROCESSING)
            if which(job)
            and self._update(job.id, allowed=(JobStatus.PROCESSING,), only_expired=True, **update)
            == 1
        ]

    def _store_inputs(self, job_id: str, **values: Any) -> None:
        self._update(job_id, **values)

    def _finish(self, job_id: str, status: JobStatus, **values: Any) -> None:
        """Only the worker holding the running job's lease ends it."""
        row = self._raw(job_id)
        if row is None:
            return
        completed = now_iso()
        changed = self._update(
            job_id,
            allowed=(JobStatus.PROCESSING,),
            owner=self.owner,
            status=status.value,
            completed_at=completed,
            processing_time=seconds_between(row.get("started_at"), completed),
            cancel_requested=0,
            **values,
        )
        if changed != 1:
            logger.warning("job {} is not this worker's now; this run's end is dropped", job_id)

    def requeue(self, job_id: str, *, note: str | None = None, interrupted: bool = False) -> bool:
        return (
            self._update(
                job_id,
                allowed=(JobStatus.PROCESSING,),
                owner=self.owner,
                add_attempts=-1 if interrupted else 0,
                status=JobStatus.PENDING.value,
                started_at=None,
                error_message="Interrupted; runs again." if interrupted else note,
            )
            == 1
        )

    def interrupted_to_pending(self) -> list[str]:
        """At start-up: this worker's own jobs left ``processing`` run again (other
        workers' jobs are theirs until their lease expires)."""
        stuck = self.with_status(JobStatus.PROCESSING)
        return [job.id for job in stuck if self.requeue(job.id, interrupted=True)]

    def cancel_pending(self, job_id: str) -> bool:
        return (
            self._update(
                job_id,
                allowed=(JobStatus.PENDING,),
                status=JobStatus.CANCELLED.value,
                completed_at=now_iso(),
                error_message="The job was cancelled.",
                error_stage="cancelled",
            )
            == 1
        )

    def request_cancel(self, job_id: str) -> bool:
        return self._update(job_id, allowed=(JobStatus.PROCESSING,), cancel_requested=1) == 1

    def cancel_is_requested(self, job_id: str) -> bool:
        job = self.get(job_id)
        return bool(job and job.cancel_requested)

    def _reopen(self, job_id: str, **values: Any) -> bool | None:
        changed = self._update(job_id, allowed=(JobStatus.FAILED, JobStatus.CANCELLED), **values)
        return None if changed == -1 else changed == 1

    def set_output_dir(self, job_id: str, output_dir: Path | None) -> None:
        self._update(job_id, output_dir=str(output_dir) if output_dir else None)

    def delete(self, job_id: str) -> bool:
        return bool(self._call(lambda: self._delete_script(args=[self.prefix, job_id])))

    # --- heartbeats --------------------------------------------------------------------

    def _beat_key(self, role: str) -> str:
        return f"{self.prefix}beat:{role}:{self.owner}"

    def beat(self, role: str, *, started_at: str, details: dict[str, Any]) -> None:
        value = {
            "role": role,
            "pid": os.getpid(),
            "host": os.uname().nodename,
            "started_at": started_at,
            "beat_at": time.time(),
            "details": {**details, "worker": self.owner},
        }
        self._call(
            lambda: self._client.set(self._beat_key(role), json.dumps(value), ex=BEAT_TTL_SECONDS)
        )

    def clear_beat(self, role: str) -> None:
        self._call(lambda: self._client.delete(self._beat_key(role)))

    def heartbeats(self) -> dict[str, Heartbeat]:
        """Every live process's beat, keyed ``role:owner``."""
        keys = sorted(self._call(lambda: list(self._client.scan_iter(f"{self.prefix}beat:*"))))
        values = self._mget(keys) if keys else []
        beats = {}
        for key, value in zip(keys, values, strict=True):
            if value:
                data = json.loads(value)
                beats[key.removeprefix(f"{self.prefix}beat:")] = Heartbeat(**data)
        return beats
