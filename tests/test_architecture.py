"""The direction of imports: config <- pipeline <- daemon, and a light daemon parent."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def imported_modules(package: str) -> set[str]:
    names: set[str] = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("pipeline", {"daemon", "huey", "watchdog"}),
        ("config", {"pipeline", "daemon", "huey", "watchdog", "torch"}),
    ],
)
def test_imports_point_one_way(package: str, forbidden: set[str]) -> None:
    assert not imported_modules(package) & forbidden


def test_queueing_side_never_imports_torch() -> None:
    """The daemon's parent forks workers: torch must not be loaded before that."""
    code = (
        "import sys, pipeline, pipeline.job, config, daemon.cli;"
        "daemon.cli.build_parser();"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip() == "[]"
