"""Service definitions that keep `strata run` alive: a launchd LaunchAgent, a systemd user unit.

Both run the daemon in the foreground with the absolute virtualenv python, an explicit
PATH and HF_HOME, restart it when it exits, and give it longer than
``queue.shutdown_grace_seconds`` to stop. The commands that load them (``launchctl``,
``systemctl``) are run through a :data:`CommandRunner`, so tests pass a fake.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

from config.errors import ServiceError
from config.loader import PROJECT_ROOT

LABEL = "com.strata.daemon"
LAUNCHD_TEMPLATE = PROJECT_ROOT / "launchd" / f"{LABEL}.plist"
SYSTEMD_TEMPLATE = Path(__file__).with_name("templates") / "strata.service"
SYSTEMD_UNIT = "strata.service"
STOP_MARGIN_SECONDS = 15
SYSTEM_PATH = ("/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin")

CommandRunner = Callable[[Sequence[str]], int]
Which = Callable[[str], str | None]
"""``shutil.which``: where a command is on PATH, or None."""


def run_command(command: Sequence[str]) -> int:
    """Run a service-manager command, its output passed through; its exit status."""
    try:
        return subprocess.run(list(command), check=False).returncode
    except FileNotFoundError as error:
        raise ServiceError(f"`{command[0]}` is not available on this system.") from error


@dataclass(frozen=True)
class System:
    """What the service commands use of the machine: tests pass fakes."""

    run: CommandRunner = run_command
    which: Which = shutil.which
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)


@dataclass(frozen=True)
class AgentSpec:
    """What goes into a service definition: how to start `strata run`, and where."""

    python: Path
    home: Path
    config: Path | None
    shutdown_grace_seconds: float
    hf_home: Path

    @classmethod
    def current(cls, *, home: Path, config: Path | None, grace: float) -> AgentSpec:
        hf_home = Path(os.environ.get("HF_HOME") or home / ".cache" / "huggingface")
        python = Path(sys.executable)  # the venv's own path: never resolve the symlink
        return cls(python.absolute(), home, config.resolve() if config else None, grace, hf_home)

    @property
    def arguments(self) -> list[str]:
        args = [str(self.python), "-m", "daemon.cli", "run"]
        return args + (["--config", str(self.config)] if self.config else [])

    @property
    def path(self) -> str:
        return os.pathsep.join([str(self.python.parent), *SYSTEM_PATH])

    @property
    def stop_timeout(self) -> int:
        return int(self.shutdown_grace_seconds) + STOP_MARGIN_SECONDS

    def strata_command(self, *words: str) -> str:
        """A `strata …` command line that runs with this venv from any shell."""
        script = self.python.with_name("strata")  # the console script beside the venv python
        program = [str(script)] if script.is_file() else [str(self.python), "-m", "daemon.cli"]
        config = ["--config", str(self.config)] if self.config else []
        return shlex.join([*program, *words, *config])


# --- launchd -----------------------------------------------------------------------------


def launchd_plist(spec: AgentSpec, *, template: Path = LAUNCHD_TEMPLATE) -> dict[str, Any]:
    with template.open("rb") as stream:
        plist: dict[str, Any] = plistlib.load(stream)
    logs = launchd_log_folder(spec.home)
    plist["Label"] = LABEL
    plist["ProgramArguments"] = spec.arguments
    plist["EnvironmentVariables"] = {
        **plist.get("EnvironmentVariables", {}),
        "PATH": spec.path,
        "HF_HOME": str(spec.hf_home),
    }
    plist["WorkingDirectory"] = str(spec.home)
    plist["ExitTimeOut"] = spec.stop_timeout
    plist["StandardOutPath"] = str(logs / "strata.out.log")
    plist["StandardErrorPath"] = str(logs / "strata.err.log")
    return plist


def launchd_plist_path(home: Path) -> Path:
    return home / "Library" / "LaunchAgents" / f"{LABEL}.plist"


def launchd_log_folder(home: Path) -> Path:
    return home / "Library" / "Logs" / "Strata"


def launchd_domain() -> str:
    return f"gui/{os.getuid()}"


def check_launchd(spec: AgentSpec, which: Which = shutil.which) -> None:
    """Refuse, before anything is written, where there is no launchd (every OS but macOS)."""
    if which("launchctl") is None:
        raise ServiceError(
            "launchd is macOS's service manager and `launchctl` is not on this system, "
            "so nothing was installed.",
            hint="On Linux run the daemon as a systemd user unit: "
            f"{spec.strata_command('systemd', 'install')}",
        )


def install_launchd(spec: AgentSpec, system: System) -> Path:
    """Write the plist (0644), then bootout (ignored if absent) and bootstrap it."""
    check_launchd(spec, system.which)
    run = system.run
    target = launchd_plist_path(spec.home)
    launchd_log_folder(spec.home).mkdir(parents=True, exist_ok=True)
    _write_atomically(target, plistlib.dumps(launchd_plist(spec)), mode=0o644)
    run(["launchctl", "bootout", f"{launchd_domain()}/{LABEL}"])
    bootstrap = ["launchctl", "bootstrap", launchd_domain(), str(target)]
    if run(bootstrap) != 0:
        raise ServiceError(
            f"launchctl could not load {target}.",
            hint=f"Run it by hand to see launchd's reason: {shlex.join(bootstrap)}",
        )
    return target


def uninstall_launchd(home: Path, run: CommandRunner = run_command) -> Path | None:
    target = launchd_plist_path(home)
    run(["launchctl", "bootout", f"{launchd_domain()}/{LABEL}"])
    if target.exists():
        target.unlink()
        return target
    return None


# --- systemd -----------------------------------------------------------------------------


def systemd_unit(spec: AgentSpec, *, template: Path = SYSTEMD_TEMPLATE) -> str:
    return Template(template.read_text(encoding="utf-8")).substitute(
        exec_start=shlex.join(spec.arguments),
        home=str(spec.home),
        path=spec.path,
        hf_home=str(spec.hf_home),
        stop_timeout=spec.stop_timeout,
    )


def systemd_unit_path(home: Path) -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    return Path(base) / "systemd" / "user" / SYSTEMD_UNIT


ENABLE = ("systemctl", "--user", "enable", "--now", SYSTEMD_UNIT)


def user_bus_available(environ: Mapping[str, str]) -> bool:
    """Can `systemctl --user` reach this user's service manager? It talks over the user
    bus: ``$DBUS_SESSION_BUS_ADDRESS``, or ``$XDG_RUNTIME_DIR/bus`` (set by a login)."""
    if environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return True
    runtime = environ.get("XDG_RUNTIME_DIR")
    return runtime is not None and runtime != "" and (Path(runtime) / "bus").exists()


def systemd_by_hand(spec: AgentSpec) -> str:
    """The commands that install the unit by hand, from a shell that has a user bus."""
    target = systemd_unit_path(spec.home)
    return " && ".join(
        [
            f"mkdir -p {shlex.quote(str(target.parent))}",
            f"{spec.strata_command('systemd', 'print')} > {shlex.quote(str(target))}",
            "systemctl --user daemon-reload",
            shlex.join(ENABLE),
        ]
    )


def check_systemd(
    spec: AgentSpec, which: Which = shutil.which, environ: Mapping[str, str] = os.environ
) -> None:
    """Refuse, before anything is written or enabled, where `systemctl --user` cannot work."""
    if which("systemctl") is None:
        raise ServiceError(
            "systemd is not on this system (`systemctl` is not on PATH), so nothing was installed.",
            hint="On macOS run the daemon as a LaunchAgent: "
            f"{spec.strata_command('launchd', 'install')}; elsewhere keep "
            f"{spec.strata_command('run')} running with your service manager.",
        )
    if not user_bus_available(environ):
        raise ServiceError(
            "This shell has no systemd user session (neither $DBUS_SESSION_BUS_ADDRESS nor "
            "$XDG_RUNTIME_DIR/bus: su, sudo or a container), so nothing was installed.",
            hint="Log in as this user (a desktop or ssh login starts the session; "
            "`loginctl enable-linger $USER` keeps it while you are logged out) and run "
            f"{spec.strata_command('systemd', 'install')}, or by hand: {systemd_by_hand(spec)}",
        )


def install_systemd(spec: AgentSpec, system: System) -> Path:
    """Write the unit (0644), reload systemd and enable + start it."""
    check_systemd(spec, system.which, system.environ)
    run = system.run
    target = systemd_unit_path(spec.home)
    _write_atomically(target, systemd_unit(spec).encode(), mode=0o644)
    run(["systemctl", "--user", "daemon-reload"])
    if run(ENABLE) != 0:
        raise ServiceError(
            f"systemctl could not start {SYSTEMD_UNIT} (the unit is in {target}).",
            hint=f"Run it by hand to see systemd's reason: {shlex.join(ENABLE)}; "
            "then journalctl --user -u strata",
        )
    return target


def uninstall_systemd(home: Path, run: CommandRunner = run_command) -> Path | None:
    target = systemd_unit_path(home)
    run(["systemctl", "--user", "disable", "--now", SYSTEMD_UNIT])
    removed = None
    if target.exists():
        target.unlink()
        removed = target
    run(["systemctl", "--user", "daemon-reload"])
    return removed


def _write_atomically(target: Path, content: bytes, *, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp")
    temp.write_bytes(content)
    temp.chmod(mode)
    temp.replace(target)
