"""`strata retry JOB`, `strata cancel JOB`, `strata delete JOB`, `strata health`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from config.errors import ExitCode, SettingsError
from daemon import health, manage
from daemon.cli import add_common_options
from daemon.cmd_jobs import load_context
from daemon.disposal import Trash, send_to_trash
from daemon.ledger import JobStatus
from daemon.queue import open_queue

DELETE_HELP = "delete a job's record and outputs; its original photo goes to the trash"
DELETE_DESCRIPTION = (
    "Delete a job's record and the files Strata wrote for it (layers, previews, manifest, "
    "error.yaml). The originals (the photo, its sidecar and depth map) go to the system "
    "trash; if the trash cannot take them they stay in the job folder, and the command says "
    "where each one went. Only --purge destroys the originals: it asks first on a terminal, "
    "and needs --yes when there is no terminal to ask."
)


def register(subparsers: Any) -> None:
    for name, handler, text in (
        ("retry", handle_retry, "retry a failed or cancelled job"),
        ("cancel", handle_cancel, "cancel a pending or running job"),
        ("delete", handle_delete, DELETE_HELP),
    ):
        description = DELETE_DESCRIPTION if name == "delete" else None
        parser = subparsers.add_parser(name, help=text, description=description)
        add_common_options(parser)
        parser.add_argument("job", metavar="JOB", help="job id (a unique prefix is enough)")
        parser.set_defaults(handler=handler)
        if name == "delete":
            _add_delete_options(parser)
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
    return ExitCode.OK


def handle_cancel(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    settings, ledger = load_context(args)
    record = ledger.find(args.job)
    status = manage.cancel(record, settings.value, ledger)
    stream = out or sys.stdout
    if status is JobStatus.PROCESSING:
        stream.write(f"job {record.id}: cancel requested; the daemon has not stopped it yet\n")
        return ExitCode.FAILED
    stream.write(f"job {record.id}: {status.value}\n")
    return ExitCode.OK


def handle_delete(
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    stdin: TextIO | None = None,
    trash: Trash = send_to_trash,
) -> int:
    settings, ledger = load_context(args)
    record = ledger.find(args.job)
    stream = out or sys.stdout
    if args.purge and not args.yes and not _confirmed(record.id, stdin or sys.stdin, stream):
        stream.write(f"job {record.id}: nothing deleted\n")
        return ExitCode.FAILED
    deletion = manage.delete(record, settings.value, ledger, purge=args.purge, trash=trash)
    stream.write(f"deleted job {record.id}: its record and outputs\n")
    for original in deletion.originals:
        stream.write(f"  {original.describe()}\n")
    if deletion.left_alone is not None:
        stream.write(f"  {deletion.left_alone} is outside the outbox and was left as it is\n")
    return ExitCode.OK


def _confirmed(job_id: str, stdin: TextIO, out: TextIO) -> bool:
    """Ask on a terminal; without one, refuse (never wait for input nobody can give)."""
    if not stdin.isatty():
        raise SettingsError(
            "--purge destroys the original photo, sidecar and depth map, and there is no "
            "terminal to confirm it on.",
            hint=f"Add --yes to purge without asking: strata delete {job_id[:8]} --purge --yes",
        )
    out.write(
        f"Destroy the original photo, sidecar and depth map of job {job_id[:8]} for good "
        "(they do not go to the trash)? [y/N] "
    )
    out.flush()
    return stdin.readline().strip().lower() in ("y", "yes")


def _add_delete_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--purge",
        action="store_true",
        help="destroy the original photo, sidecar and depth map too (no trash; cannot be undone)",
    )
    parser.add_argument(
        "--yes", action="store_true", help="with --purge: do not ask for confirmation"
    )


def handle_health(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    _settings, ledger = load_context(args)
    report = health.check(ledger)
    stream = out or sys.stdout
    if args.json:
        stream.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        stream.write(describe(report))
    return ExitCode.OK if report.healthy else ExitCode.FAILED


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
    if len(report.processes) > 1:  # several machines (queue.backend: redis)
        for process in report.processes:
            running = process.get("running_job") or "idle"
            state = "" if process["process_alive"] else ", GONE"
            lines.append(
                f"{process['role'] + ':':<14}{process.get('worker', process['host'])}, pid "
                f"{process['pid']}, heartbeat {process['heartbeat_age_seconds']:.1f} s ago, "
                f"{running}{state}"
            )
    return "\n".join(lines) + "\n"
