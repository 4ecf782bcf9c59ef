"""`strata models pull` · `strata models list`: fetch the configured models; show what is cached.

Jobs never download (see :mod:`pipeline.models`); this is the one command that does. It
fetches only the files each role needs (``pipeline.models.allow_patterns``) into the
Hugging Face cache, with the hub's own progress bars.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from config import load_settings
from config.errors import ExitCode, ModelNotAvailableError
from daemon.cli import add_common_options
from pipeline.models import (
    ROLES,
    ModelEntry,
    PullItem,
    hf_cache_dir,
    is_offline,
    looks_like_path,
    model_registry,
    pull_plan,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models",
        help="fetch the configured models; show what is cached",
        description="Fetch the configured models into the local cache, or show what is cached.",
    )
    actions = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    pull = actions.add_parser(
        "pull",
        help="download the configured models (only the files Strata needs)",
        description="Download the configured models into the Hugging Face cache "
        "($HF_HOME/hub): the full-precision safetensors weights, which load on every device "
        "(GPUs cast them to fp16 at load time). Models set to a local folder are left alone.",
    )
    add_common_options(pull)
    pull.add_argument(
        "--role", action="append", choices=ROLES, help="only this role (repeatable; default all)"
    )
    pull.set_defaults(handler=run_pull)

    listing = actions.add_parser(
        "list",
        help="show each role's model: cached or not, size, licence",
        description="Show each configured model: role, id, cached, size on disk, licence.",
    )
    add_common_options(listing, json_output=True)
    listing.set_defaults(handler=run_list)


def _settings_models(args: argparse.Namespace) -> Any:
    return load_settings(Path(args.config) if args.config else None).value.models


# --- list --------------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    cache_dir = hf_cache_dir()
    entries = model_registry(_settings_models(args), cache_dir=cache_dir)
    if args.json:
        document = {"cache_dir": str(cache_dir), "models": [e.to_json() for e in entries]}
        print(json.dumps(document, indent=2))
        return ExitCode.OK
    print(format_table(entries))
    print(f"\nHugging Face cache: {cache_dir}")
    if any(e.source != "unset" and not e.cached for e in entries):
        print("Run `strata models pull` to fetch the models that are not cached.")
    if any(e.non_commercial for e in entries):
        print("Note: a model marked non-commercial may not be used for commercial work.")
    return ExitCode.OK


def format_table(entries: list[ModelEntry]) -> str:
    header = ("ROLE", "MODEL", "CACHED", "SIZE", "LICENCE")
    rows = [header]
    for entry in entries:
        licence = entry.licence + (" (non-commercial)" if entry.non_commercial else "")
        model = entry.model_id if entry.model_id is not None else "(not set)"
        size = _human_size(entry.size_bytes) if entry.size_bytes else "-"
        rows.append((entry.role, model, entry.status, size, licence))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
        + "  "
        + row[-1]
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def _human_size(size: int) -> str:
    """Decimal units, as the hub shows them: 97.5 MB, 2.1 GB."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - the loop always returns


# --- pull --------------------------------------------------------------------------------


def run_pull(args: argparse.Namespace) -> int:
    models = _settings_models(args)
    plan = pull_plan(models, roles=args.role)
    failures = _local_folder_problems(models, args.role)
    for problem in failures:
        print(f"  failed: {problem}", file=sys.stderr)
    if not plan and not failures:
        print("Nothing to download: every selected model is a local folder or not set.")
        return ExitCode.OK
    if is_offline():
        raise ModelNotAvailableError(
            "Cannot download models: offline mode is on (HF_HUB_OFFLINE or "
            "TRANSFORMERS_OFFLINE is set in the environment).",
            hint="Run `strata models pull` again without HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE.",
        )
    cache_dir = hf_cache_dir()
    for item in plan:
        print(f"{', '.join(item.roles)}: {item.model_id}", flush=True)
        try:
            path = download(item, cache_dir=cache_dir)
        except Exception as exc:  # every hub/network failure becomes one line
            message = describe_failure(item, exc)
            failures.append(message)
            print(f"  failed: {message}", file=sys.stderr, flush=True)
            continue
        print(f"  ok: {path}", flush=True)
    if failures:
        raise ModelNotAvailableError(
            f"{len(failures)} model(s) are not available: " + " ".join(failures),
            hint="Check the network connection (and HF_ENDPOINT / proxy settings), then run "
            "`strata models pull` again; or copy a model folder to this machine and set "
            "`models.<role>` to it.",
        )
    print(f"All models are in {cache_dir}.")
    return ExitCode.OK


def download(item: PullItem, *, cache_dir: Path) -> str:
    """One repo's files into the cache, with the hub's progress bars."""
    from huggingface_hub import snapshot_download

    path: str = snapshot_download(
        item.model_id, allow_patterns=list(item.allow_patterns), cache_dir=cache_dir
    )
    return path


def describe_failure(item: PullItem, exc: BaseException) -> str:
    """One sentence: which model, and why (no network, not found, gated, …)."""
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    what = f"{item.model_id} ({', '.join(item.roles)})"
    if isinstance(exc, GatedRepoError):
        why = "the repository is gated: accept its licence on huggingface.co and log in"
    elif isinstance(exc, RepositoryNotFoundError):
        why = "no such repository on the hub (or it is private)"
    elif isinstance(exc, RevisionNotFoundError):
        why = "the requested revision does not exist"
    elif isinstance(exc, OfflineModeIsEnabled):
        why = "offline mode is on"
    elif isinstance(exc, LocalEntryNotFoundError | ConnectionError | TimeoutError):
        why = "cannot reach the Hugging Face hub (no network?)"
    else:
        why = " ".join(str(exc).split())[:200] or type(exc).__name__
    return f"{what}: {why}."


def _local_folder_problems(models: Any, roles: list[str] | None) -> list[str]:
    """Print what is skipped (local folders); return the folders that do not exist."""
    problems = []
    for role in roles or ROLES:
        model_id = getattr(models, role)
        if model_id is None or not looks_like_path(model_id):
            continue
        path = Path(model_id).expanduser()
        if path.is_dir():
            print(f"{role}: local folder {path}, nothing to download.")
        else:
            problems.append(f"{role}: the folder {path} does not exist.")
    return problems
