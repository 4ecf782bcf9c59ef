"""`strata`: the one command-line entry point.

Each command lives in its own module exposing ``register(subparsers)``; the module's
handler returns the process exit code. Errors from :mod:`config.errors` become one
line on stderr and the error's own exit code (:class:`~config.errors.ExitCode`), never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from config.errors import ExitCode, StrataError
from daemon.allocator import keep_freed_memory
from pipeline.manifest import strata_version

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
        epilog=exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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


def exit_codes_help() -> str:
    """The exit codes, one a line, for ``strata --help``."""
    lines = [f"  {code.value:>3}  {code.meaning}" for code in ExitCode]
    return "exit codes:\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    keep_freed_memory()  # the process's allocator, set before any thread allocates
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except StrataError as error:
        print(f"strata: {error.reason}\n  hint: {error.hint}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`strata jobs | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.BROKEN_PIPE
    return code


if __name__ == "__main__":
    sys.exit(main())
