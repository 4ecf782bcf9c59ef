"""`strata retry JOB`, `strata cancel JOB`, `strata delete JOB`, `strata health`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from daemon import health, manage
from daemon.cli import EXIT_JOB_FAILED, EXIT_OK, add_common_options
from daemon.cmd_jobs import load_context
from daemon.ledger import JobStatus
from daemon.queue import open_queue


def register(subparsers: Any) -> None:
    for name, handler, text in (
        ("retry", handle_retry, "retry a failed or cancelled job"),
        ("cancel", handle_cancel, "cancel a pending or running job"),
        ("delete", handle_delete, "delete a job's record and outputs"),
    ):
        parser = subparsers.add_parser(name, help=text)
        add_common_options(parser)
        parser.add_argument("job", metavar="JOB", help="job id (a unique prefix is enough)")
        parser.set_defaults(handler=handler)
    parser = subparsers.add_parser(
        "health", help="queue depth, consumer alive, heartbeat; exit 1 when unhealthy"
    )
    add_common_options(parser, json_output=True)
    parser.set_defaults(handler=handle_health)


def handle_retry(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    settings, ledger = load_context(args)
    record = ledger.find(args.job)
    queue = open_queue(settings.value.state_dir, settings.value.queue)
    photo = manage.retry(record, settings.value, ledger, manage.queue_enqueuer(queue))
    (out or sys.stdout).write(f"job {record.id} queued again: {photo}\n")
    return EXIT_OK


def handle_cancel(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    settings, ledger = load_context(args)
    record = ledger.find(args.job)
    status = manage.cancel(record, settings.value, ledger)
    stream = out or sys.stdout
    if status is JobStatus.PROCESSING:
        stream.write(f"job {record.id}: cancel requested; the daemon has not stopped it yet\n")
        return EXIT_JOB_FAILED
    stream.write(f"job {record.id}: {status.value}\n")
    return EXIT_OK


def handle_delete(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    settings, ledger = load_context(args)
    record = ledger.find(args.job)
    removed = manage.delete(record, settings.value, ledger)
    suffix = f" and {removed}" if removed else ""
    (out or sys.stdout).write(f"deleted job {record.id}{suffix}\n")
    return EXIT_OK


def handle_health(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    _settings, ledger = load_context(args)
    report = health.check(ledger)
    stream = out or sys.stdout
    if args.json:
        stream.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        stream.write(describe(report))
    return EXIT_OK if report.healthy else EXIT_JOB_FAILED


def describe(report: health.HealthReport) -> str:
    lines = [f"status:       {'healthy' if report.healthy else 'UNHEALTHY'}"]
    lines += [f"problem:      {problem}" for problem in report.problems]
    lines.append(f"queue depth:  {report.queue_depth} pending, {report.processing} running")
    watched: list[str] = []
    for role, beat in sorted(report.beats.items()):
        lines.append(
            f"{role + ':':<14}pid {beat['pid']}, heartbeat "
            f"{beat['heartbeat_age_seconds']:.1f} s ago"
        )
        if role == "worker":
            lines.append(f"consumer:     {'alive' if beat.get('consumer_alive') else 'dead'}")
        watched += [folder for folder in beat.get("watched") or [] if folder not in watched]
    lines += [f"watching:     {folder}" for folder in watched]
    return "\n".join(lines) + "\n"
