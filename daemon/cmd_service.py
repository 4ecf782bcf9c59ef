"""`strata launchd install|uninstall|print` and `strata systemd install|uninstall|print`."""

from __future__ import annotations

import argparse
import os
import plistlib
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from config.errors import ExitCode
from config.loader import load_settings
from daemon import agents
from daemon.cli import add_common_options

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
    which: agents.Which = shutil.which,
    environ: Mapping[str, str] = os.environ,
) -> int:
    """Install, remove or print the service; ``run``, ``which`` and ``environ`` are the
    system's (tests pass fakes). A service that cannot work here is refused up front."""
    home = home or Path.home()
    stream = out or sys.stdout
    config = Path(args.config) if args.config else None
    settings = load_settings(config)
    spec = agents.AgentSpec.current(
        home=home, config=config, grace=settings.value.queue.shutdown_grace_seconds
    )
    system = agents.System(run, which, environ)
    if args.manager == "launchd":
        _launchd(args.action, spec, system, stream)
    else:
        _systemd(args.action, spec, system, stream)
    return ExitCode.OK


def _launchd(action: str, spec: agents.AgentSpec, system: agents.System, out: TextIO) -> None:
    if action == "print":
        out.write(f"# {agents.launchd_plist_path(spec.home)}\n")
        out.write(plistlib.dumps(agents.launchd_plist(spec)).decode())
    elif action == "install":
        path = agents.install_launchd(spec, system)
        out.write(f"installed and started {path}\nlogs: {agents.launchd_log_folder(spec.home)}\n")
    else:
        agents.check_launchd(spec, system.which)
        removed = agents.uninstall_launchd(spec.home, system.run)
        out.write(f"removed {removed}\n" if removed else "no LaunchAgent was installed\n")


def _systemd(action: str, spec: agents.AgentSpec, system: agents.System, out: TextIO) -> None:
    if action == "print":
        out.write(f"# {agents.systemd_unit_path(spec.home)}\n{agents.systemd_unit(spec)}")
    elif action == "install":
        path = agents.install_systemd(spec, system)
        out.write(
            f"installed and started {path}\nlogs: journalctl --user -u strata\n"
            "to keep it running while you are logged out: loginctl enable-linger $USER\n"
        )
    else:
        removed = agents.uninstall_systemd(spec.home, system.run)
        out.write(f"removed {removed}\n" if removed else "no systemd unit was installed\n")
