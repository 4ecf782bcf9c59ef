"""The daemon's commands against a real ledger on temporary folders, fakes passed in."""

from __future__ import annotations

import argparse
import io
import json
import os
import plistlib
import stat
import subprocess
import sys
from pathlib import Path

from PIL import Image

from config.loader import load_settings
from daemon import cmd_jobs, cmd_manage, cmd_service
from daemon.ledger import JobFailure, JobStatus, Ledger


def args(config: Path, **values: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "config": str(config),
        "json": False,
        "status": None,
        "limit": 50,
        "skip": 0,
        "follow": False,
    }
    return argparse.Namespace(**{**base, **values})


def failed_job(config: Path, name: str = "a.jpg") -> str:
    settings = load_settings(config, environ={}).value
    ledger = Ledger.in_state_dir(settings.state_dir)
    inbox_path = settings.inbox / "photo-realistic" / name
    job = ledger.create_job(
        mode="photo-realistic", input_path=inbox_path, input_key=f"photo-realistic/{name}"
    )
    assert job is not None
    ledger.claim(job.id)
    folder = settings.failed_dir / Path(name).stem
    folder.mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(folder / name)
    (folder / "error.yaml").write_text("reason: x\n")
    ledger.fail(job.id, JobFailure("Broken.", "Fix.", "decode"), output_dir=folder)
    return job.id


def test_jobs_lists_newest_first_and_as_json(config: Path) -> None:
    first, second = failed_job(config, "a.jpg"), failed_job(config, "b.jpg")
    out = io.StringIO()
    cmd_jobs.handle_jobs(args(config), out=out)
    lines = out.getvalue().splitlines()
    assert lines[1].startswith(second[:8])
    assert lines[2].startswith(first[:8])
    out = io.StringIO()
    cmd_jobs.handle_jobs(args(config, json=True, limit=1, skip=1), out=out)
    listed = json.loads(out.getvalue())
    assert [j["id"] for j in listed] == [first]
    assert listed[0]["status"] == "failed"
    assert listed[0]["error_message"] == "Broken."


def test_follow_streams_status_changes(config: Path) -> None:
    settings = load_settings(config, environ={}).value
    ledger = Ledger.in_state_dir(settings.state_dir)
    since = ledger.latest_version()
    job_id = failed_job(config)
    out = io.StringIO()
    rounds = iter([True, False])
    cmd_jobs.follow(ledger, out, since=since, keep_going=lambda: next(rounds), poll_seconds=0)
    assert f"{job_id[:8]}  failed" in out.getvalue()


def test_show_prints_error_and_hint(config: Path) -> None:
    job_id = failed_job(config)
    out = io.StringIO()
    cmd_jobs.handle_show(args(config, job=job_id[:6]), out=out)
    assert "Broken." in out.getvalue()
    assert "hint:" in out.getvalue()


def test_retry_moves_the_photo_back_and_queues_the_same_job(config: Path) -> None:
    job_id = failed_job(config)
    out = io.StringIO()
    cmd_manage.handle_retry(args(config, job=job_id), out=out)
    settings = load_settings(config, environ={}).value
    assert (settings.inbox / "photo-realistic" / "a.jpg").is_file()
    assert not (settings.failed_dir / "a").exists()
    record = Ledger.in_state_dir(settings.state_dir).get(job_id)
    assert record is not None
    assert record.status is JobStatus.PENDING


def test_cancel_a_pending_job_moves_its_photo_to_failed(config: Path) -> None:
    settings = load_settings(config, environ={}).value
    ledger = Ledger.in_state_dir(settings.state_dir)
    photo = settings.inbox / "photo-realistic" / "c.jpg"
    Image.new("RGB", (4, 4)).save(photo)
    job = ledger.create_job(
        mode="photo-realistic", input_path=photo, input_key="photo-realistic/c.jpg"
    )
    assert job is not None
    assert cmd_manage.handle_cancel(args(config, job=job.id), out=io.StringIO()) == 0
    assert (settings.failed_dir / "c" / "c.jpg").is_file()
    assert "cancelled" in (settings.failed_dir / "c" / "error.yaml").read_text()


def test_health_is_unhealthy_without_a_daemon_and_healthy_with_fresh_beats(
    config: Path,
) -> None:
    out = io.StringIO()
    assert cmd_manage.handle_health(args(config), out=out) != 0
    settings = load_settings(config, environ={}).value
    ledger = Ledger.in_state_dir(settings.state_dir)
    details = {"consumer_alive": True, "observer_alive": True, "watched": ["/in"]}
    for role in ("watcher", "worker"):
        ledger.beat(role, started_at="now", details=details)
    out = io.StringIO()
    assert cmd_manage.handle_health(args(config, json=True), out=out) == 0
    assert json.loads(out.getvalue())["healthy"] is True


def test_launchd_install_writes_a_valid_plist_and_boots_it(
    config: Path,
    tmp_path: Path,
) -> None:
    calls: list[list[str]] = []
    home = tmp_path / "home"

    def fake_run(command: object) -> int:
        calls.append(list(command))  # type: ignore[call-overload]
        return 0

    def on_path(name: str) -> str:  # launchctl as on macOS
        return f"/bin/{name}"

    namespace = args(config, manager="launchd", action="install")
    cmd_service.handle(namespace, home=home, run=fake_run, out=io.StringIO(), which=on_path)
    plist_path = home / "Library" / "LaunchAgents" / "com.strata.daemon.plist"
    plist = plistlib.loads(plist_path.read_bytes())
    assert stat.S_IMODE(plist_path.stat().st_mode) == 0o644
    assert plist["ProgramArguments"][:4] == [sys.executable, "-m", "daemon.cli", "run"]
    assert Path(plist["ProgramArguments"][0]).is_absolute()
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] is True
    assert plist["ThrottleInterval"] > 0
    assert plist["ExitTimeOut"] > 30  # longer than the 30 s default shutdown grace
    assert {"PATH", "HF_HOME"} <= set(plist["EnvironmentVariables"])
    assert plist["StandardErrorPath"].startswith(str(home / "Library" / "Logs" / "Strata"))
    assert [c[1] for c in calls] == ["bootout", "bootstrap"]
    cmd_service.handle(
        args(config, manager="launchd", action="uninstall"),
        home=home,
        run=fake_run,
        out=io.StringIO(),
        which=on_path,
    )
    assert not plist_path.exists()


def test_launchd_cli_with_a_fake_launchctl_on_path(config: Path, tmp_path: Path) -> None:
    bin_dir, home = tmp_path / "bin", tmp_path / "home"
    bin_dir.mkdir()
    log = tmp_path / "launchctl.log"
    fake = bin_dir / "launchctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(home)}
    strata = Path(sys.executable).with_name("strata")
    for action in ("install", "install", "uninstall"):
        result = subprocess.run(
            [str(strata), "launchd", action, "--config", str(config)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    lines = log.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["bootout", "bootstrap"] * 2 + ["bootout"]


def test_systemd_print_shows_a_user_unit(config: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    cmd_service.handle(
        args(config, manager="systemd", action="print"),
        home=tmp_path,
        run=lambda command: 0,
        out=out,
    )
    text = out.getvalue()
    assert "ExecStart=" in text
    assert "Restart=always" in text
    assert "TimeoutStopSec=45" in text
