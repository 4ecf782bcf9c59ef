"""What happens to the files of a job once it ends, so the inbox ends empty.

- success: the input (already copied into the job folder as ``source.<ext>``) and its
  sidecar and depth maps leave the inbox for the job folder;
- failure or cancel: input + sidecar + depth maps move to ``outbox/failed/<stem>/`` with
  ``error.yaml`` (job_id, reason, hint, stage, at), built in a hidden temporary folder
  and renamed into place;
- duplicate: a new job folder filled from an earlier result, ``duplicate_of`` in its
  manifest, manifest written last;
- lost (its worker died, the lease expired, no retries left): the worker that takes it
  over ends it as a failure (:func:`fail_lost`).
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from loguru import logger

from config.loader import FOLDER_DEFAULTS_NAME, SIDECAR_SUFFIXES
from daemon.ledger import JobFailure, JobLedger, JobRecord
from daemon.names import IGNORED_FILE_NAMES, is_depth_map_name
from daemon.retry import with_backoff
from pipeline.formats import DEPTH_MARK
from pipeline.timing import utc_now

if TYPE_CHECKING:
    from daemon.executor import Paths

ERROR_FILE = "error.yaml"
MANIFEST_FILE = "manifest.json"
TEMP_PREFIX = ".strata-tmp-"


@dataclass(frozen=True)
class ErrorReport:
    job_id: str
    reason: str
    hint: str
    stage: str

    def as_yaml(self) -> str:
        data = {
            "job_id": self.job_id,
            "reason": self.reason,
            "hint": self.hint,
            "stage": self.stage,
            "at": utc_now(timespec="seconds"),
        }
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def companions(image: Path, depth_map: str | None = None) -> list[Path]:
    """The files that travel with a photo: its sidecar(s) and depth map(s)."""
    folder, stem = image.parent, image.stem
    found = [image.with_suffix(suffix) for suffix in SIDECAR_SUFFIXES]
    prefix = stem + DEPTH_MARK + "."
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        entries = []
    found += [Path(e.path) for e in entries if e.name.startswith(prefix)]
    if depth_map and is_depth_map_name(depth_map):
        found.append(folder / Path(depth_map).name)
    unique = dict.fromkeys(p for p in found if p.is_file() and not p.is_symlink())
    return list(unique)


def free_name(root: Path, stem: str, *, owned: Path | None = None) -> Path:
    """``root/stem``, else ``stem-2``, ``stem-3``…; ``owned`` (this job's own folder) is free."""
    candidate, number = root / stem, 1
    while candidate.exists() and candidate != owned:
        number += 1
        candidate = root / f"{stem}-{number}"
    return candidate


def free_file(folder: Path, name: str) -> Path:
    """``folder/name``, else ``stem-2.ext``, ``stem-3.ext``…: a name nothing has yet."""
    candidate, number = folder / name, 1
    stem, suffix = Path(name).stem, Path(name).suffix
    while candidate.exists():
        number += 1
        candidate = folder / f"{stem}-{number}{suffix}"
    return candidate


def move(source: Path, target: Path) -> None:
    """Rename (or copy+delete across file systems), retrying transient errors."""
    with_backoff(lambda: shutil.move(str(source), str(target)))


def _temp_folder(root: Path, job_id: str) -> Path:
    return root / f"{TEMP_PREFIX}{job_id}"


def move_to_failed(
    failed_root: Path, image: Path, extras: Iterable[Path], report: ErrorReport
) -> Path:
    """Input + companions + error.yaml → ``failed_root/<stem>/``, renamed into place."""
    failed_root.mkdir(parents=True, exist_ok=True)
    temp = _temp_folder(failed_root, report.job_id)
    temp.mkdir(exist_ok=True)
    (temp / ERROR_FILE).write_text(report.as_yaml(), encoding="utf-8")
    for path in [image, *extras]:
        if path.is_file():
            move(path, free_file(temp, path.name))  # a sidecar named error.yaml stays whole
    final = free_name(failed_root, image.stem)
    with_backoff(lambda: temp.rename(final))
    return final


def clear_inbox_after_success(image: Path, extras: Iterable[Path], job_folder: Path) -> None:
    """The photo is in the job folder (``source.*``); its companions follow it there.

    The photo goes first: once it is gone, a crash here leaves a job that recovery can
    finish from its output folder.
    """
    if image.is_file():
        image.unlink()
    for path in extras:
        if not path.is_file():
            continue
        target = job_folder / path.name
        if target.is_file() and filecmp.cmp(path, target, shallow=False):
            path.unlink()  # already there (a depth map the job copied, or a recovered job)
        else:
            # a sidecar named like an output (settings.yaml) keeps its bytes beside it
            move(path, free_file(job_folder, path.name))


def prune_batch_folder(folder: Path, inbox_root: Path) -> None:
    """Remove a dropped batch folder once nothing of it is left but its ``_defaults.yaml``
    and system clutter (.DS_Store…), then its parents up to the mode's inbox. Anything
    else (a photo still waiting, a file still syncing) keeps the folder."""
    root = inbox_root.resolve()
    current = folder.resolve()
    while current != root and root in current.parents:
        try:
            entries = list(os.scandir(current))
        except OSError:
            return
        if any(
            entry.is_dir(follow_symlinks=False) or not _leftover(entry.name) for entry in entries
        ):
            return
        try:
            for entry in entries:
                os.unlink(entry.path)
            current.rmdir()
        except OSError:
            return
        logger.info("batch folder {} is done and was removed from the inbox", current.name)
        current = current.parent


def _leftover(name: str) -> bool:
    return (
        name == FOLDER_DEFAULTS_NAME or name.lower() in IGNORED_FILE_NAMES or name.startswith("._")
    )


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def folder_of_job(root: Path, stem: str, job_id: str) -> Path | None:
    """The finished folder ``root/<stem>[-N]`` whose manifest names ``job_id``."""
    if not root.is_dir():
        return None
    for entry in sorted(root.iterdir()):
        if entry.name == stem or entry.name.startswith(stem + "-"):
            manifest = read_manifest(entry)
            if manifest is not None and manifest.get("job_id") == job_id:
                return entry
    return None


def copy_duplicate(
    earlier: Path, output_root: Path, image: Path, *, job_id: str, duplicate_of: str
) -> tuple[Path, dict[str, Any]]:
    """A job folder for ``image`` filled from the ``earlier`` job's folder."""
    manifest = read_manifest(earlier)
    if manifest is None:
        raise FileNotFoundError(f"{earlier / MANIFEST_FILE} is missing or unreadable")
    output_root.mkdir(parents=True, exist_ok=True)
    temp = _temp_folder(output_root, job_id)
    shutil.rmtree(temp, ignore_errors=True)
    shutil.copytree(earlier, temp, ignore=_skip_source_and_manifest)
    shutil.copy2(image, temp / f"source{image.suffix.lower()}")
    stamp = utc_now()
    manifest = {
        **manifest,
        "job_id": job_id,
        "duplicate_of": duplicate_of,
        "source": {**manifest.get("source", {}), "filename": image.name},
        "created_at": stamp,
        "completed_at": stamp,
        "processing_time": 0.0,
    }
    (temp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    owned = folder_of_job(output_root, image.stem, job_id)
    if owned is not None:
        shutil.rmtree(owned)
    final = free_name(output_root, image.stem)
    temp.rename(final)
    return final, manifest


def _skip_source_and_manifest(_folder: str, names: list[str]) -> list[str]:
    return [n for n in names if n == MANIFEST_FILE or n.startswith("source.")]


def remove_temp_folders(root: Path) -> list[Path]:
    """Leftovers of a job killed while its folder was being built (never finished work)."""
    if not root.is_dir():
        return []
    removed = []
    for temp in root.rglob(f"{TEMP_PREFIX}*"):
        if temp.is_dir() and not temp.is_symlink():
            shutil.rmtree(temp, ignore_errors=True)
            removed.append(temp)
    return removed


def restore_failed_temp(failed_root: Path, job_id: str, inbox_folder: Path) -> None:
    """A failure move cut short by a crash: put its inputs back so the job runs again."""
    temp = _temp_folder(failed_root, job_id)
    if not temp.is_dir():
        return
    for path in temp.iterdir():
        if path.name != ERROR_FILE and not (inbox_folder / path.name).exists():
            move(path, inbox_folder / path.name)
    shutil.rmtree(temp, ignore_errors=True)


LOST = JobFailure(
    "Its worker stopped answering, and no retries are left.",
    "Run `strata retry JOB` once the workers are healthy.",
    "worker",
)


def fail_lost(ledger: JobLedger, job: JobRecord, paths: Paths) -> Path | None:
    """End a lost job this worker took over (``ledger.take_over_lost``) as any failed
    job ends: input + companions + error.yaml to ``outbox/failed/<stem>/`` (finishing a
    move the dead worker began), its half-built job folder removed, the ledger failed
    with that folder. A result the dead worker finished completes the job instead.
    Returns the job's folder (None when the input is gone)."""
    finished = folder_of_job(paths.output_root, paths.image.stem, job.id)
    manifest = read_manifest(finished) if finished else None
    if finished is not None and manifest is not None:
        clear_inbox_after_success(paths.image, companions(paths.image), finished)
        duplicate_of = manifest.get("duplicate_of")
        ledger.complete(job.id, output_dir=finished, manifest=manifest, duplicate_of=duplicate_of)
        return finished
    shutil.rmtree(_temp_folder(paths.output_root, job.id), ignore_errors=True)
    folder = None
    if paths.image.is_file() or _temp_folder(paths.failed_root, job.id).is_dir():
        extras = companions(paths.image, (job.settings or {}).get("depth_map"))
        report = ErrorReport(job.id, LOST.reason, LOST.hint, LOST.stage)
        folder = move_to_failed(paths.failed_root, paths.image, extras, report)
    ledger.fail(job.id, LOST, output_dir=folder)
    prune_batch_folder(paths.image.parent, paths.inbox_root)
    logger.bind(job=job.id).warning("{} failed: {}", job.input_filename, LOST.reason)
    return folder
