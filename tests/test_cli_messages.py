"""What the CLI tells a person: the version, service commands that refuse cleanly on a
machine where they cannot work, and a health report that agrees with itself (fakes for the
service managers and the process table passed in), and the exit code each error ends a
command with."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from config import errors
from config.errors import (
    ExitCode,
    InputError,
    InstallError,
    JobCancelledError,
    JobNotFoundError,
    JobStateError,
    ModelNotAvailableError,
    OutputError,
    PipelineError,
    QueueUnreachableError,
    ServiceError,
    SettingsError,
    StartupError,
    StrataError,
    UsageError,
)
from config.loader import load_settings
from daemon import agents, cli, cmd_config, cmd_jobs, cmd_manage, cmd_service, health
from daemon.ledger import Ledger
from pipeline.manifest import strata_version


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("inbox: inbox\noutbox: outbox\nstate_dir: state\n")
    return path


def service(config: Path, manager: str, action: str) -> argparse.Namespace:
    return argparse.Namespace(config=str(config), manager=manager, action=action)


class Recorder:
    """A service manager that records the commands it is asked to run."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, command: Sequence[str]) -> int:
        self.commands.append(list(command))
        return 0


def nothing_on_path(name: str) -> str | None:
    return None


def on_path(name: str) -> str | None:
    return f"/usr/bin/{name}"


def test_version_prints_the_installed_version() -> None:
    strata = Path(sys.executable).with_name("strata")
    result = subprocess.run([str(strata), "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"strata {strata_version()}"


def test_launchd_install_without_launchd_refuses_before_writing(
    config: Path, tmp_path: Path
) -> None:
    home, runner = tmp_path / "home", Recorder()
    with pytest.raises(ServiceError) as caught:
        cmd_service.handle(
            service(config, "launchd", "install"),
            home=home,
            run=runner,
            out=io.StringIO(),
            which=nothing_on_path,
        )
    assert not home.exists()  # nothing under ~/Library
    assert runner.commands == []
    assert "macOS" in caught.value.reason
    assert "systemd install" in caught.value.hint  # the command to run instead


def test_systemd_install_without_a_user_bus_refuses_before_enabling(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    runner = Recorder()
    with pytest.raises(ServiceError) as caught:
        cmd_service.handle(
            service(config, "systemd", "install"),
            home=tmp_path,
            run=runner,
            out=io.StringIO(),
            which=on_path,
            environ={"XDG_RUNTIME_DIR": str(tmp_path / "no-such-runtime")},
        )
    assert runner.commands == []  # nothing reloaded, nothing enabled
    assert not (tmp_path / "xdg").exists()  # and no unit written
    hint = caught.value.hint
    unit = tmp_path / "xdg" / "systemd" / "user" / "strata.service"
    assert f"systemd print --config {config.resolve()} > {unit}" in hint
    assert "systemctl --user daemon-reload && systemctl --user enable --now strata.service" in hint
    assert "loginctl enable-linger $USER" in hint


def test_systemd_install_with_a_user_bus_writes_and_enables_the_unit(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    runtime = tmp_path / "run"
    runtime.mkdir()
    (runtime / "bus").touch()
    runner, out = Recorder(), io.StringIO()
    cmd_service.handle(
        service(config, "systemd", "install"),
        home=tmp_path,
        run=runner,
        out=out,
        which=on_path,
        environ={"XDG_RUNTIME_DIR": str(runtime)},
    )
    assert (tmp_path / "xdg" / "systemd" / "user" / "strata.service").is_file()
    assert runner.commands[-1] == list(agents.ENABLE)
    assert "loginctl enable-linger $USER" in out.getvalue()


def test_a_failed_enable_names_the_command_to_run_by_hand(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    with pytest.raises(ServiceError) as caught:
        cmd_service.handle(
            service(config, "systemd", "install"),
            home=tmp_path,
            run=lambda command: 1,
            out=io.StringIO(),
            which=on_path,
            environ={"DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1/bus"},
        )
    assert "systemctl --user enable --now strata.service" in caught.value.hint


def test_health_after_the_daemon_was_killed_reports_nothing_alive(config: Path) -> None:
    settings = load_settings(config, environ={}).value
    ledger = Ledger.in_state_dir(settings.state_dir)
    details = {"consumer_alive": True, "observer_alive": True, "watched": ["/in"]}
    for role in ("watcher", "worker"):  # the last beats before a kill -9
        ledger.beat(role, started_at="now", details=details)

    report = health.check(ledger, pid_alive=lambda pid: False)

    assert not report.healthy
    assert report.problems[-1].startswith(f"the worker process {os.getpid()} is gone")
    assert report.beats["worker"]["consumer_alive"] is False
    assert report.beats["watcher"]["observer_alive"] is False
    text = cmd_manage.describe(report)
    assert "consumer:     dead" in text
    assert "alive" not in text


def test_health_of_a_running_daemon_reports_its_threads(config: Path) -> None:
    settings = load_settings(config, environ={}).value
    ledger = Ledger.in_state_dir(settings.state_dir)
    ledger.beat("worker", started_at="now", details={"consumer_alive": True})
    ledger.beat("watcher", started_at="now", details={"observer_alive": True})

    report = health.check(ledger, pid_alive=lambda pid: True)

    assert report.healthy
    assert report.beats["worker"]["consumer_alive"] is True
    assert "consumer:     alive" in cmd_manage.describe(report)


def test_follow_ends_with_a_notice_once_the_daemon_is_gone(config: Path) -> None:
    settings = load_settings(config, environ={}).value
    ledger = Ledger.in_state_dir(settings.state_dir)
    running = iter([True, True, False, False, False])  # the daemon stops after two polls
    ticks = iter(range(100))
    out, notices = io.StringIO(), io.StringIO()

    ended = cmd_jobs.follow(
        ledger,
        out,
        since=ledger.latest_version(),
        poll_seconds=0,
        daemon_running=lambda: next(running),
        notices=notices,
        gone_after=1.5,
        clock=lambda: float(next(ticks)),
    )

    assert ended is True
    assert "no Strata daemon is running" in notices.getvalue()
    assert "--follow ended" in notices.getvalue()
    assert out.getvalue() == ""  # stdout stays the changes only (--json stays parseable)


def test_follow_without_a_daemon_says_so_at_once(config: Path) -> None:
    settings = load_settings(config, environ={}).value
    ledger = Ledger.in_state_dir(settings.state_dir)
    notices = io.StringIO()
    rounds = iter([False])
    cmd_jobs.follow(
        ledger,
        io.StringIO(),
        since=0,
        keep_going=lambda: next(rounds),
        daemon_running=lambda: False,
        notices=notices,
    )
    assert notices.getvalue().startswith("strata: no Strata daemon is running; --follow ends")


def test_the_daemon_counts_as_running_while_a_role_beats(config: Path) -> None:
    settings = load_settings(config, environ={}).value
    ledger = Ledger.in_state_dir(settings.state_dir)
    assert not health.daemon_running(ledger)
    ledger.beat("worker", started_at="now", details={"consumer_alive": True})
    assert health.daemon_running(ledger, pid_alive=lambda pid: True)
    assert not health.daemon_running(ledger, pid_alive=lambda pid: False)  # killed


ERROR_CODES = [
    (StrataError, ExitCode.FAILED),
    (PipelineError, ExitCode.FAILED),
    (SettingsError, ExitCode.USAGE),
    (UsageError, ExitCode.USAGE),
    (InputError, ExitCode.INPUT),
    (ModelNotAvailableError, ExitCode.MODEL_MISSING),
    (OutputError, ExitCode.OUTPUT),
    (InstallError, ExitCode.INSTALL),
    (QueueUnreachableError, ExitCode.QUEUE_UNREACHABLE),
    (JobCancelledError, ExitCode.CANCELLED),
    (JobNotFoundError, ExitCode.USAGE),
    (JobStateError, ExitCode.FAILED),
    (StartupError, ExitCode.FAILED),
    (ServiceError, ExitCode.FAILED),
]


def test_every_error_class_carries_a_code_of_its_own() -> None:
    defined = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, StrataError)
    }
    assert defined == {error for error, _ in ERROR_CODES}  # none of config.errors left out
    assert all("exit_code" in vars(error) for error in defined)
    # FAILED is the plain failure and USAGE (SPEC) a bad settings value, path or job id;
    # every other code names one class, so a script can tell what to fix from it
    codes = [code for _, code in ERROR_CODES if code not in (ExitCode.FAILED, ExitCode.USAGE)]
    assert len(set(codes)) == len(codes)


def test_an_unknown_job_id_is_a_usage_error(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["show", "0123abcd", "--config", str(config)]) == ExitCode.USAGE
    assert "No job has the id '0123abcd'." in capsys.readouterr().err


@pytest.mark.parametrize(("error", "code"), ERROR_CODES)
def test_the_cli_ends_with_the_errors_code(
    error: type[StrataError],
    code: ExitCode,
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def fail(args: argparse.Namespace) -> int:
        raise error("It went wrong.", hint="Do this.")

    monkeypatch.setattr(cmd_config, "handle_show", fail)
    assert error.exit_code is code
    assert cli.main(["config", "show", "--config", str(config)]) == code
    assert capsys.readouterr().err == "strata: It went wrong.\n  hint: Do this.\n"


def test_a_missing_image_is_a_usage_error(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such.jpg"
    assert cli.main(["process", str(missing), "--config", str(config)]) == ExitCode.USAGE
    assert f"No such file or folder: {missing}." in capsys.readouterr().err


def test_the_help_lists_every_exit_code() -> None:
    text = cli.build_parser().format_help()
    for code in ExitCode:
        assert f"{code.value:>3}  {code.meaning}" in text
