"""Fixtures shared across the test files."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Any name lookup or connection attempt fails at once, and is recorded."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config file with the default folders under ``tmp_path`` and an inbox in place."""
    path = tmp_path / "config.yaml"
    path.write_text("inbox: inbox\noutbox: outbox\nstate_dir: state\n")
    (tmp_path / "inbox" / "photo-realistic").mkdir(parents=True)
    return path
