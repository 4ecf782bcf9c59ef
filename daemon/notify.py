"""An optional desktop notification when a job ends; never fatal, off by default."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence

from loguru import logger

NOTIFY_TIMEOUT_SECONDS = 5.0

Notifier = Callable[[str, str], None]
CommandRunner = Callable[[Sequence[str]], object]


def notification_command(title: str, message: str, *, platform: str = sys.platform) -> list[str]:
    """osascript on macOS, notify-send elsewhere; [] when neither is available."""
    if platform == "darwin":
        script = f"display notification {_quoted(message)} with title {_quoted(title)}"
        return ["osascript", "-e", script]
    if shutil.which("notify-send"):
        return ["notify-send", "--app-name=Strata", title, message]
    return []


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _run_quietly(command: Sequence[str]) -> object:
    return subprocess.run(
        command,
        check=False,
        timeout=NOTIFY_TIMEOUT_SECONDS,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def desktop_notifier(
    enabled: bool,
    *,
    run: CommandRunner = _run_quietly,
    command_for: Callable[[str, str], list[str]] = notification_command,
) -> Notifier:
    def notify(title: str, message: str) -> None:
        if not enabled:
            return
        command = command_for(title, message)
        if not command:
            return
        try:
            run(command)
        except (OSError, subprocess.SubprocessError) as error:
            logger.debug("notification not shown: {}", error)

    return notify
