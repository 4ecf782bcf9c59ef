"""`strata config show`: every effective setting and where its value came from."""

from __future__ import annotations

import argparse
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any

from config.errors import ExitCode
from config.loader import load_settings
from config.model import Settings
from config.schema import iter_fields
from daemon.cli import add_common_options


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("config", help="show the effective settings")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="every setting, its value and where it came from")
    add_common_options(show, json_output=True)
    show.set_defaults(handler=handle_show)


def handle_show(args: argparse.Namespace) -> int:
    resolved = load_settings(Path(args.config) if args.config else None)
    rows = [
        (key, _plain(_lookup(resolved.value, key)), resolved.origin_of(key))
        for key, _info in iter_fields(Settings)
    ]
    if args.json:
        data = {key: {"value": value, "source": origin} for key, value, origin in rows}
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return ExitCode.OK
    width = max(len(key) for key, _, _ in rows)
    for key, value, origin in rows:
        shown = json.dumps(value) if value is None or isinstance(value, bool) else str(value)
        print(f"{key:<{width}}  {shown:<42}  # {origin}")
    return ExitCode.OK


def _lookup(settings: Settings, dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value
