"""Write a finished job: files into a hidden temporary folder, manifest last, then one rename.

The destination is ``<output_root>/<stem>/``; when that name holds another job's result the
job takes ``<stem>-2``, ``<stem>-3``…; a folder holding this same job's earlier result (a
retry) is replaced.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from config.errors import OutputError
from pipeline.concurrency import TaskGroup, map_parallel
from pipeline.depth import DepthEstimate
from pipeline.exports import ExportStack, write_exports
from pipeline.io import DecodedImage, pack_8bit, save_encoded, save_png, save_rgb_png
from pipeline.job import Job, JobResult
from pipeline.layers import Layer
from pipeline.manifest import (
    SCHEMA_VERSION,
    LayerStats,
    layer_file,
    layer_stats,
    layers_section,
    strata_version,
)
from pipeline.models import model_revision
from pipeline.preview import (
    ANIMATION_FRAMES,
    ANIMATION_SECONDS,
    Parallax,
    Thumbnail,
    contact_sheet,
    thumbnail,
)
from pipeline.timing import StageTimer, utc_now
from pipeline.webp import encode_animation

TEMP_PREFIX = ".strata-tmp-"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class JobOutputs:
    decoded: DecodedImage
    working: np.ndarray
    depth: DepthEstimate
    depth_png: Future[bytes]  # depth.png, encoded while the layers were made
    depth_file: Path | None
    depth_ranges: list[tuple[float, float]]
    layers: list[Layer]
    parallax: list[float]  # each layer's relative shift: 0 background … 1 foreground
    fill: dict[str, Any]
    painterly: dict[str, Any] | None
    created_at: str


def write_job(job: Job, outputs: JobOutputs, *, timer: StageTimer) -> JobResult:
    root = job.output_root
    temp = root / f"{TEMP_PREFIX}{job.job_id}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if temp.exists():
            shutil.rmtree(temp)
        temp.mkdir()
        started = time.perf_counter()
        stats, packed = _write_files(temp, job, outputs)
        timer.add("write", time.perf_counter() - started)
        started = time.perf_counter()
        exports = _write_exports(temp, job, outputs, packed)
        timer.add("exports", time.perf_counter() - started)
        manifest = build_manifest(job, outputs, timer, stats, exports)
        _write_json(temp / MANIFEST, manifest)
        final = _claim_destination(temp, root, job)
    except OSError as exc:
        raise OutputError(f"Could not write the results of {job.input_path.name}: {exc}.") from exc
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return JobResult(output_dir=final, manifest=manifest)


def build_manifest(
    job: Job,
    outputs: JobOutputs,
    timer: StageTimer,
    stats: list[LayerStats],
    exports: list[dict[str, Any]],
) -> dict[str, Any]:
    height, width = outputs.working.shape[:2]
    source_width, source_height = outputs.decoded.source_size
    completed_at = utc_now()
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "job_id": job.job_id,
        "mode": job.mode.value,
        "source": {
            "filename": job.input_path.name,
            "sha256": outputs.decoded.sha256,
            "width": source_width,
            "height": source_height,
        },
        "canvas": {"width": width, "height": height},
        "settings": job.settings.model_dump(mode="json"),
        "models": _models_section(outputs),
        "layer_count": len(outputs.layers),
        "layers": layers_section(stats),
        "timings": {**timer.timings, "total": timer.total()},
        "created_at": outputs.created_at,
        "completed_at": completed_at,
        "processing_time": timer.total(),
        "strata_version": strata_version(),
        "depth": {
            "source": outputs.depth.source,
            "file": outputs.depth_file.name if outputs.depth_file else None,
            "native_size": list(outputs.depth.native_size),
        },
        "fill": outputs.fill,
        "exports": exports,
    }
    if outputs.painterly is not None:
        manifest["painterly"] = outputs.painterly
    return manifest


def _models_section(outputs: JobOutputs) -> dict[str, Any]:
    models: dict[str, Any] = {}
    if outputs.depth.model is not None:
        models["depth"] = outputs.depth.model
    if outputs.painterly is not None:
        models.update(outputs.painterly.get("models", {}))
    if outputs.fill.get("method") == "diffusion":
        model_id = str(outputs.fill.get("model"))
        models["inpaint"] = {"id": model_id, "revision": model_revision(model_id)}
    return models


def _write_files(
    folder: Path, job: Job, outputs: JobOutputs
) -> tuple[list[LayerStats], list[np.ndarray]]:
    """Every file but the exports and the manifest; returns the manifest's layer figures,
    worked out while the files are encoded, and the layers' 8-bit pixels as written."""
    count = len(outputs.layers)
    with TaskGroup() as tasks:  # the shared pool (pipeline.concurrency)
        stats = tasks.submit(layer_stats, outputs.layers, outputs.depth_ranges, outputs.parallax)
        # Each layer packed once: its thumbnail first, as the previews (the longest
        # chain) wait for all of them; its PNG queued behind, overlapping the previews.
        packed = map_parallel(lambda layer: pack_8bit(layer.rgb, layer.alpha), outputs.layers)
        thumbs = [tasks.submit(thumbnail, pixels) for pixels in packed]
        files = [
            tasks.submit(save_png, folder / layer_file(index, count), pixels)
            for index, pixels in enumerate(packed, start=1)
        ]
        files.append(tasks.submit(_save_when_encoded, folder / "depth.png", outputs.depth_png))
        if outputs.painterly is not None:
            files.append(tasks.submit(save_rgb_png, folder / "stylized.png", outputs.working))
        small = [task.result() for task in thumbs]
        files.append(tasks.submit(_save_contact_sheet, folder / "preview.png", small))
        parallax = Parallax(small, outputs.parallax)
        duration_ms = round(1000 * ANIMATION_SECONDS / ANIMATION_FRAMES)
        animation = encode_animation(parallax.shifts(), parallax.render, duration_ms=duration_ms)
        (folder / "parallax.webp").write_bytes(animation)
        for task in files:
            task.result()
        figures = stats.result()
    suffix = job.input_path.suffix.lower()
    _copy(job.input_path, folder / f"source{suffix}")
    if outputs.depth_file is not None:
        _copy(outputs.depth_file, folder / outputs.depth_file.name)
    _write_settings(folder / "settings.yaml", job)
    return figures, packed


def _write_exports(
    folder: Path, job: Job, outputs: JobOutputs, packed: list[np.ndarray]
) -> list[dict[str, Any]]:
    """The files the job's ``exports`` asks for, beside the layers (see pipeline.exports)."""
    count = len(outputs.layers)
    files = [folder / layer_file(index, count) for index in range(1, count + 1)]
    stack = ExportStack(
        title=job.stem,
        names=[path.stem for path in files],
        files=files,
        pixels=packed,
        parallax=outputs.parallax,
        working=outputs.working,
    )
    return write_exports(stack, folder, job.settings.exports)


def _save_when_encoded(path: Path, encoded: Future[bytes]) -> None:
    save_encoded(path, encoded.result())


def _save_contact_sheet(path: Path, small: list[Thumbnail]) -> None:
    save_png(path, contact_sheet(small))


def _write_settings(path: Path, job: Job) -> None:
    values = job.settings.model_dump(mode="json")
    lines = [f"# Effective settings of job {job.job_id} ({job.input_path.name})."]
    for key, value in values.items():
        dumped = yaml.safe_dump({key: value}, default_flow_style=False, sort_keys=False).strip()
        origin = job.settings_origins.get(key)
        lines.append(f"{dumped}  # {origin}" if origin else dumped)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _copy(source: Path, destination: Path) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _claim_destination(temp: Path, root: Path, job: Job) -> Path:
    """Rename ``temp`` to the first free ``<stem>[-n]``; replace this job's own earlier result."""
    stem = job.stem
    for attempt in range(1, 10_000):
        candidate = root / (stem if attempt == 1 else f"{stem}-{attempt}")
        if candidate.exists() and _holds_job(candidate, job.job_id):
            _replace(temp, candidate)
            return candidate
        try:
            os.rename(temp, candidate)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                continue
            raise
        return candidate
    raise OutputError(f"No free folder name for {stem} in {root}.")


def _holds_job(folder: Path, job_id: str) -> bool:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("job_id") == job_id


def _replace(temp: Path, destination: Path) -> None:
    old = destination.with_name(f"{TEMP_PREFIX}old-{destination.name}")
    shutil.rmtree(old, ignore_errors=True)
    os.rename(destination, old)
    os.rename(temp, destination)
    shutil.rmtree(old, ignore_errors=True)
