"""`strata run [--role both|watcher|worker]`: the daemon, in the foreground."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from config.loader import load_settings
from daemon.cli import add_common_options
from daemon.logs import configure_daemon_logging
from daemon.service import Daemon, Role


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="the daemon: watch the inbox and process photos (foreground)",
        description="Watch the inbox folders and run the consumer. launchd or systemd "
        "supervises it; SIGTERM/SIGINT stop it gracefully. With queue.backend: redis, run "
        "--role watcher where the inbox is and --role worker on each processing machine.",
    )
    add_common_options(parser)
    parser.add_argument(
        "--role",
        choices=[role.value for role in Role],
        default=Role.BOTH.value,
        help="both (default): watcher + consumer; watcher or worker alone (several "
        "workers need queue.backend: redis)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    settings = load_settings(Path(args.config) if args.config else None)
    role = Role(args.role)
    configure_daemon_logging(settings.value.log)
    return Daemon(settings, role=role).run()
