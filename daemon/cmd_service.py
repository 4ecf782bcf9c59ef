"""`strata launchd install|uninstall|print` and `strata systemd install|uninstall|print`."""

from __future__ import annotations

import argparse
import plistlib
import sys
from pathlib import Path
from typing import Any, TextIO

from config.loader import load_settings
from daemon import agents
from daemon.cli import EXIT_OK, add_common_options

ACTIONS = ("install", "uninstall", "print")


def register(subparsers: Any) -> None:
    for manager, text in (
        ("launchd", "the user LaunchAgent (macOS)"),
        ("systemd", "the systemd user unit (Linux)"),
    ):
        parser = subparsers.add_parser(manager, help=f"install, remove or show {text}")
        add_common_options(parser)
        parser.add_argument("action", choices=ACTIONS)
        parser.set_defaults(handler=handle, manager=manager)


def handle(
    args: argparse.Namespace,
    *,
    home: Path | None = None,
    run: agents.CommandRunner = agents.run_command,
    out: TextIO | None = None,
) -> int:
    home = home or Path.home()
    stream = out or sys.stdout
    config = Path(args.config) if args.config else None
    settings = load_settings(config)
    spec = agents.AgentSpec.current(
        home=home, config=config, grace=settings.value.queue.shutdown_grace_seconds
    )
    if args.manager == "launchd":
        _launchd(args.action, spec, run, stream)
    else:
        _systemd(args.action, spec, run, stream)
    return EXIT_OK


def _launchd(action: str, spec: agents.AgentSpec, run: agents.CommandRunner, out: TextIO) -> None:
    if action == "print":
        out.write(f"# {agents.launchd_plist_path(spec.home)}\n")
        out.write(plistlib.dumps(agents.launchd_plist(spec)).decode())
    elif action == "install":
        path = agents.install_launchd(spec, run)
        out.write(f"installed and started {path}\nlogs: {agents.launchd_log_folder(spec.home)}\n")
    else:
        removed = agents.uninstall_launchd(spec.home, run)
        out.write(f"removed {removed}\n" if removed else "no LaunchAgent was installed\n")


def _systemd(action: str, spec: agents.AgentSpec, run: agents.CommandRunner, out: TextIO) -> None:
    if action == "print":
        out.write(f"# {agents.systemd_unit_path(spec.home)}\n{agents.systemd_unit(spec)}")
    elif action == "install":
        path = agents.install_systemd(spec, run)
        out.write(f"installed and started {path}\nlogs: journalctl --user -u strata\n")
    else:
        removed = agents.uninstall_systemd(spec.home, run)
        out.write(f"removed {removed}\n" if removed else "no systemd unit was installed\n")
