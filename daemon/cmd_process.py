"""`strata process IMAGE…`: run the pipeline once, in this process, no daemon.

The command line takes what the inbox takes:

- a folder is a batch, as if dropped into the inbox: every photo under it (ignored names
  and folders skipped, by the watcher's own rules), its ``_defaults.yaml`` files applying
  from the folder down, results in ``<out>/<folder>/<sub-folders>/<stem>/``;
- a file that belongs to a photo (``<stem>.yaml``/``.yml``, ``*.depth.*``,
  ``_defaults.yaml``) or is noise (hidden, ``.DS_Store``, ``*.part``…) is skipped, so
  ``strata process photos/*`` works; it still applies to its photo;
- any other file is a job (one that is not a supported image fails with a clear message).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger
from tqdm import tqdm

from config.errors import ExitCode, StrataError, UsageError
from config.loader import (
    Resolved,
    SettingsLayer,
    load_settings,
    merge_layers,
    overrides_layer,
    resolve_job_settings,
    validate_layer,
)
from config.model import JobSettings, Mode, Settings
from daemon.cli import add_common_options
from daemon.ledger import JobRecord, JobStatus
from daemon.logs import configure_logging
from daemon.names import Kind, classify, is_ignored_name
from daemon.watcher import scan
from pipeline.timing import utc_now


@dataclass(frozen=True)
class Target:
    """One photo to process: where its job folder goes, and the batch it belongs to."""

    image: Path
    output_root: Path
    batch_root: Path | None = None
    """A folder given on the command line: its ``_defaults.yaml`` files apply from it down."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "process",
        help="run the pipeline on images now, without the daemon",
        description=(
            "Run the pipeline once on each IMAGE. Sidecars (<stem>.yaml), _defaults.yaml and "
            "depth maps (<stem>.depth.png) beside each image apply as in the inbox, and are "
            "skipped when named on the command line (strata process photos/* works). A "
            "FOLDER is a batch, as if dropped into the inbox: every photo under it, its "
            "_defaults.yaml applying, results in OUT/<folder>/<stem>/."
        ),
    )
    parser.add_argument(
        "images", nargs="+", type=Path, metavar="IMAGE|FOLDER", help="photos and folders"
    )
    parser.add_argument(
        "--mode",
        type=Mode,
        choices=list(Mode),
        default=Mode.PHOTO_REALISTIC,
        help="photo-realistic (default) or painterly",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a per-job setting, e.g. --set num_layers=5 (repeatable)",
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="write DIR/<stem>/ (default: outbox/<mode>/)"
    )
    add_common_options(parser, json_output=True)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    settings = load_settings(Path(args.config) if args.config else None)
    configure_logging(settings.value.log, stderr_level="WARNING" if args.json else None)
    overrides = overrides_layer(args.overrides)
    _check_overrides(settings, overrides)
    output_root = args.out if args.out else settings.value.outbox_for(args.mode)
    targets = collect_targets(args.images, output_root)
    reports = [
        _process_one(target, args.mode, settings, overrides, quiet=args.json) for target in targets
    ]
    if args.json:
        json.dump(reports if len(reports) > 1 else reports[0], sys.stdout, indent=2)
        sys.stdout.write("\n")
    failed = sum(1 for r in reports if r["status"] == "failed")
    return ExitCode.FAILED if failed else ExitCode.OK


def collect_targets(paths: list[Path], output_root: Path) -> list[Target]:
    """The photos the command line names, each once; a usage error (SPEC: exit 2) when a
    path is missing or they hold no photo."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UsageError(
            f"No such file or folder: {', '.join(missing)}.",
            hint="Give the paths of existing images or folders.",
        )
    targets: dict[Path, Target] = {}
    for path in paths:
        found = _batch(path, output_root) if path.is_dir() else _single(path, output_root)
        for target in found:
            targets.setdefault(target.image.resolve(), target)
    if not targets:
        raise UsageError(
            f"No photos to process in {', '.join(map(str, paths))}.",
            hint="Give images (.jpg .png .webp .tif .heic .bmp) or folders that hold some; "
            "sidecars and depth maps apply to their photo and are not processed alone.",
        )
    return list(targets.values())


def _batch(folder: Path, output_root: Path) -> list[Target]:
    """Every photo under ``folder``, as the inbox would see the folder dropped into it."""
    batch_output = output_root / folder.resolve().name
    return [
        Target(image, batch_output / image.parent.relative_to(folder), batch_root=folder)
        for image in sorted(scan(folder))
    ]


def _single(path: Path, output_root: Path) -> list[Target]:
    """A named file is a job unless it belongs to a photo or is noise."""
    if is_ignored_name(path.name) or classify(path.name) not in (Kind.IMAGE, Kind.IGNORED):
        return []
    return [Target(path, output_root)]


def _check_overrides(settings: Resolved[Settings], overrides: SettingsLayer) -> None:
    """A bad --set is a usage error (exit 2), found before any job starts."""
    base = SettingsLayer(values=settings.value.defaults.model_dump(mode="python"))
    validate_layer(JobSettings, merge_layers([base, overrides]))


def _process_one(
    target: Target,
    mode: Mode,
    settings: Resolved[Settings],
    overrides: SettingsLayer,
    *,
    quiet: bool,
) -> dict[str, Any]:
    from pipeline import Job, run

    image = target.image
    job_id = uuid.uuid4().hex
    started = time.time()
    record: dict[str, Any] = {"id": job_id, "mode": mode, "input": image, "started": started}
    with logger.contextualize(job=job_id[:8]):
        try:
            resolved = resolve_job_settings(
                settings, image, inbox_root=target.batch_root, overrides=overrides
            )
            record["settings"] = resolved.value
            job = Job(
                job_id=job_id,
                mode=mode,
                input_path=image,
                output_root=target.output_root,
                settings=resolved.value,
                models=settings.value.models,
                limits=settings.value.watch,
                settings_origins=dict(resolved.origins),
            )
            with _progress_bar(image.name, disable=quiet) as bar:
                result = run(job, progress=bar.report)
        except StrataError as error:
            logger.debug(  # the error itself is printed just below, once
                "failed {} after {:.2f}s: {}", image.name, time.time() - started, error.reason
            )
            print(f"strata: {image}: {error.reason}\n  hint: {error.hint}", file=sys.stderr)
            return _job_view(record, status=JobStatus.FAILED, error=error)
        logger.info(
            "completed {} → {} in {:.2f}s", image.name, result.output_dir, time.time() - started
        )
        if not quiet:
            print(result.output_dir)
        return _job_view(
            record,
            status=JobStatus.COMPLETED,
            output_dir=result.output_dir,
            manifest=result.manifest,
        )


class _ProgressBar:
    def __init__(self, name: str, *, disable: bool) -> None:
        self._bar = tqdm(
            total=100,
            desc=name,
            unit="%",
            leave=False,
            disable=disable or None,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
            file=sys.stderr,
        )

    def report(self, stage: str, fraction: float) -> None:
        self._bar.set_postfix_str(stage)
        self._bar.update(max(0, round(fraction * 100) - self._bar.n))

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()


def _progress_bar(name: str, *, disable: bool) -> _ProgressBar:
    return _ProgressBar(name, disable=disable)


def _job_view(
    record: dict[str, Any],
    *,
    status: JobStatus,
    output_dir: Path | None = None,
    manifest: dict[str, Any] | None = None,
    error: StrataError | None = None,
) -> dict[str, Any]:
    """The job as ``strata jobs --json`` prints a ledger row (:meth:`JobRecord.public`):
    the seed backend's Job fields first, then Strata's own."""
    settings: JobSettings | None = record.get("settings")
    painterly = settings is not None and record["mode"] is Mode.PAINTERLY
    image: Path = record["input"]
    started = record["started"]
    completed = time.time()
    return JobRecord(
        id=record["id"],
        status=status,
        mode=record["mode"].value,
        input_filename=image.name,
        num_layers=settings.num_layers if settings else None,
        painterly_style=settings.style if painterly and settings else None,
        painterly_strength=settings.strength if painterly and settings else None,
        painterly_seed=settings.seed if painterly and settings else None,
        output_dir=str(output_dir) if output_dir else None,
        result_manifest=manifest,
        error_message=error.reason if error else None,
        created_at=utc_now(started),
        started_at=utc_now(started),
        completed_at=utc_now(completed),
        processing_time=round(completed - started, 4),
        input_path=str(image),
        input_key=str(image),
        input_sha256=None,
        settings_key=None,
        settings=settings.model_dump(mode="json") if settings else None,
        priority=settings.priority if settings else 0,
        error_hint=error.hint if error else None,
        error_stage=error.stage if error else None,
        duplicate_of=None,
        attempts=1,
        cancel_requested=False,
        updated_at=utc_now(completed),
        version=0,
    ).public()
