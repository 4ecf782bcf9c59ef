"""`strata jobs [--status S] [--limit N] [--skip N] [--follow]` and `strata show JOB`.

Both read the ledger in ``state_dir``; they work whether or not the daemon runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from config.errors import ExitCode
from config.loader import Resolved, load_settings
from config.model import Settings
from daemon import health
from daemon.cli import add_common_options
from daemon.ledger import JobLedger, JobRecord, JobStatus, open_ledger

FOLLOW_POLL_SECONDS = 0.5
FOLLOW_GONE_SECONDS = 15.0  # > launchd's ThrottleInterval (10 s) and systemd's RestartSec (10 s)
NO_DAEMON = "no Strata daemon is running"
SHORT_ID = 8
COMMAND_PATIENCE_SECONDS = 10.0
"""How long a command waits for an unreachable Redis (queue.backend: redis)."""


def load_context(args: argparse.Namespace) -> tuple[Resolved[Settings], JobLedger]:
    settings = load_settings(Path(args.config) if args.config else None)
    return settings, open_ledger(
        settings.value.state_dir, settings.value.queue, patience=COMMAND_PATIENCE_SECONDS
    )


def register(subparsers: Any) -> None:
    jobs = subparsers.add_parser("jobs", help="list jobs, newest first")
    add_common_options(jobs, json_output=True)
    jobs.add_argument("--status", choices=[s.value for s in JobStatus], help="only this status")
    jobs.add_argument("--limit", type=_count, default=50, help="at most N jobs (default 50)")
    jobs.add_argument("--skip", type=_count, default=0, help="skip the N newest")
    jobs.add_argument("--follow", action="store_true", help="then stream status changes")
    jobs.set_defaults(handler=handle_jobs)
    show = subparsers.add_parser("show", help="one job in full")
    add_common_options(show, json_output=True)
    show.add_argument("job", metavar="JOB", help="job id (a unique prefix is enough)")
    show.set_defaults(handler=handle_show)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


# --- strata jobs ---------------------------------------------------------------------------


def handle_jobs(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    _settings, ledger = load_context(args)
    stream = out or sys.stdout
    status = JobStatus(args.status) if args.status else None
    since = ledger.latest_version()
    records = ledger.recent(status=status, limit=args.limit, skip=args.skip)
    print_jobs(records, stream, as_json=args.json)
    if not args.follow:
        return ExitCode.OK
    with contextlib.suppress(KeyboardInterrupt):
        ended = follow(
            ledger,
            stream,
            since=since,
            status=status,
            as_json=args.json,
            daemon_running=lambda: health.daemon_running(ledger),
            notices=sys.stderr,
        )
        if ended:
            return ExitCode.FAILED
    return ExitCode.OK


def print_jobs(records: list[JobRecord], out: TextIO, *, as_json: bool) -> None:
    if as_json:
        out.write(json.dumps([r.public() for r in records], indent=2) + "\n")
        return
    if not records:
        out.write("no jobs\n")
        return
    out.write(
        f"{'ID':<{SHORT_ID}}  {'STATUS':<10}  {'MODE':<15}  {'CREATED':<19}  {'SECONDS':>7}  FILE\n"
    )
    for record in records:
        out.write(_row(record) + "\n")


def _row(record: JobRecord) -> str:
    seconds = f"{record.processing_time:.1f}" if record.processing_time is not None else "-"
    created = record.created_at[:19].replace("T", " ")
    return (
        f"{record.id[:SHORT_ID]:<{SHORT_ID}}  {record.status.value:<10}  {record.mode:<15}  "
        f"{created:<19}  {seconds:>7}  {record.input_filename}"
    )


def follow(
    ledger: JobLedger,
    out: TextIO,
    *,
    since: int,
    status: JobStatus | None = None,
    as_json: bool = False,
    keep_going: Callable[[], bool] = lambda: True,
    poll_seconds: float = FOLLOW_POLL_SECONDS,
    daemon_running: Callable[[], bool] = lambda: True,
    notices: TextIO | None = None,
    gone_after: float = FOLLOW_GONE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Print each job change after ``since`` as it happens (one line or one JSON object).

    Only a daemon changes jobs, so following ends, with a notice, once none has run for
    ``gone_after`` seconds (long enough to ride out a service manager's restart). True
    when it ended so; False when ``keep_going`` stopped it.
    """
    notices = notices or sys.stderr
    version = since
    seen = clock()
    if not daemon_running():
        notices.write(f"strata: {NO_DAEMON}; --follow ends in {gone_after:g} s unless one starts\n")
    while keep_going():
        for record in ledger.changes_since(version):
            version = record.version
            if status is None or record.status is status:
                out.write(_change(record, as_json) + "\n")
                out.flush()
        if daemon_running():
            seen = clock()
        elif clock() - seen > gone_after:
            notices.write(
                f"strata: {NO_DAEMON} (for {gone_after:g} s), so no job will change: "
                "--follow ended. Start it with `strata run`, then follow again.\n"
            )
            return True
        time.sleep(poll_seconds)
    return False


def _change(record: JobRecord, as_json: bool) -> str:
    if as_json:
        return json.dumps(record.public())
    stamp = record.updated_at[11:19]
    detail = f"  {record.error_message}" if record.error_message else ""
    return (
        f"{stamp}  {record.id[:SHORT_ID]}  {record.status.value:<10}  "
        f"{record.input_filename}{detail}"
    )


# --- strata show ---------------------------------------------------------------------------


def handle_show(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    _settings, ledger = load_context(args)
    record = ledger.find(args.job)
    stream = out or sys.stdout
    if args.json:
        stream.write(json.dumps(record.public(), indent=2) + "\n")
    else:
        stream.write(describe(record))
    return ExitCode.OK


def describe(record: JobRecord) -> str:
    lines = [
        ("id", record.id),
        ("status", record.status.value),
        ("mode", record.mode),
        ("input", record.input_path),
        ("sha256", record.input_sha256),
        ("priority", str(record.priority)),
        ("output", record.output_dir),
        ("created", record.created_at),
        ("started", record.started_at),
        ("completed", record.completed_at),
        ("seconds", f"{record.processing_time:.2f}" if record.processing_time else None),
        ("attempts", str(record.attempts)),
        ("duplicate of", record.duplicate_of),
        ("error", record.error_message),
        ("hint", record.error_hint),
        ("stage", record.error_stage),
    ]
    text = "".join(f"{name + ':':<14}{value}\n" for name, value in lines if value)
    if record.settings:
        text += "settings:\n" + "".join(f"  {k}: {v}\n" for k, v in record.settings.items())
    if record.result_manifest:
        text += _manifest_summary(record.result_manifest)
    return text


def _manifest_summary(manifest: dict[str, Any]) -> str:
    layers = manifest.get("layers") or []
    names = ", ".join(str(layer.get("file")) for layer in layers if isinstance(layer, dict))
    text = f"layers:       {manifest.get('layer_count', len(layers))} ({names})\n"
    exports = [e for e in manifest.get("exports") or [] if isinstance(e, dict)]
    if exports:
        files = ", ".join(f"{e.get('file')} ({_size(e.get('bytes'))})" for e in exports)
        text += f"exports:      {files}\n"
    return text


def _size(count: Any) -> str:
    """``6.2 kB``, ``13.7 MB``: decimal units, as the Finder shows file sizes."""
    if not isinstance(count, int):
        return "?"
    if count < 1000:
        return f"{count} B"
    return f"{count / 1000:.1f} kB" if count < 1_000_000 else f"{count / 1_000_000:.1f} MB"
