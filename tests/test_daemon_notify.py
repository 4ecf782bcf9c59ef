"""Desktop notifications: off by default, the right command per platform, never fatal."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from daemon.notify import desktop_notifier, notification_command


def test_macos_uses_osascript_with_quoted_text() -> None:
    command = notification_command('Strata: "done"', "beach.jpg", platform="darwin")
    assert command[:2] == ["osascript", "-e"]
    assert 'with title "Strata: \\"done\\""' in command[2]


def test_disabled_runs_nothing() -> None:
    calls: list[Sequence[str]] = []
    desktop_notifier(False, run=calls.append)("title", "message")
    assert calls == []


def test_a_failing_notifier_never_raises() -> None:
    def broken(_command: Sequence[str]) -> object:
        raise subprocess.TimeoutExpired("notify-send", 5)

    attempts: list[str] = []

    def command(title: str, message: str) -> list[str]:
        attempts.append(title)
        return ["notify-send", title, message]

    notify = desktop_notifier(True, run=broken, command_for=command)
    notify("Strata: layers ready", "beach.jpg")  # must not raise
    assert attempts == ["Strata: layers ready"]
