"""`strata`: the one command-line entry point.

Each command lives in its own module exposing ``register(subparsers)``; the module's
handler returns the process exit code. Errors from :mod:`config.errors` become one
line on stderr and an exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from config.errors import ModelNotAvailableError, SettingsError, StrataError
from pipeline.manifest import strata_version

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_USAGE = 2

COMMAND_MODULES = (
    "daemon.cmd_process",
    "daemon.cmd_config",
    "daemon.cmd_models",
    "daemon.cmd_run",
    "daemon.cmd_jobs",
    "daemon.cmd_manage",
    "daemon.cmd_service",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strata",
        description="Turn photos into depth-separated RGBA layers.",
    )
    parser.add_argument("--version", action="version", version=f"strata {strata_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def add_common_options(parser: argparse.ArgumentParser, *, json_output: bool = False) -> None:
    """``--config FILE`` on every command, ``--json`` on list/show commands."""
    parser.add_argument("--config", type=_existing_file, metavar="FILE", help="settings file")
    if json_output:
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def _existing_file(value: str) -> str:
    from pathlib import Path

    if not Path(value).is_file():
        raise argparse.ArgumentTypeError(f"config file {value} does not exist")
    return value


def exit_code_for(error: StrataError) -> int:
    if isinstance(error, SettingsError | ModelNotAvailableError):
        return EXIT_USAGE if isinstance(error, SettingsError) else EXIT_JOB_FAILED
    return EXIT_JOB_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except StrataError as error:
        print(f"strata: {error.reason}\n  hint: {error.hint}", file=sys.stderr)
        return exit_code_for(error)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`strata jobs | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


if __name__ == "__main__":
    sys.exit(main())
