"""Photo-realistic jobs: per-stage time and peak memory, and the pipeline's overhead on a model.

    python -m bench.layers [--repeats 3] [--smoke] [--json]

Each case runs in a fresh Python process (so its peak RSS is its own), warm: the job runs
once untimed, then ``repeats`` times; the figures are the median and min–max.

- ``12MP default``: a 4000×3000 JPEG with a quarter-resolution depth map beside it, at the
  default ``max_side`` (2048). Target: ≤ 3 s per job.
- ``12MP full``: the same at ``max_side: 4000``. Target: ≤ 8 s and peak RSS ≤ 3 GB.
- ``2MP depth file``: a 1732×1155 JPEG with its depth map beside it (no model): the
  pipeline's own cost at the size the model cases run.
- ``2MP model``: the 1732×1155 photo through a real-size Depth-Anything-V2-Small with random
  weights (built once by :mod:`bench.depth_forward`), with the model's bare forward pass
  timed in the same process, interleaved. Target: whole job ≤ 1.3 × forward.
- ``2MP model Base``: the same through a real-size Depth-Anything-V2-Base (random weights,
  built once by :func:`bench.depth_forward.build_real_size_model`).

Exports (``2MP depth file`` and ``12MP full``): after the timed jobs and their peak RSS,
``repeats`` more jobs of the same photo with every export (``psd``, ``ora``, ``glb``,
``html``); each export's own time (the manifest's ``exports[].seconds``: median and
min–max), its file size, and the process's peak RSS with them. The exporters' libraries are
imported before the first timed export, as in a warm worker.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from bench.harness import fmt_spread, peak_rss_bytes, render_table, spread
from bench.scenes import make_scene
from pipeline.io import save_gray16_png, to_uint8

CACHE = Path(__file__).resolve().parent / ".cache" / "layers"
FORWARD_BUDGET = 1.3
ALL_EXPORTS = "psd,ora,glb,html"


@dataclass(frozen=True)
class Case:
    name: str
    width: int
    height: int
    max_side: int
    model: str | None  # a bench.harness.DEPTH_MODELS kind, or None: a depth file
    target: str
    exports: bool = False  # also time every export (see the module's docstring)


CASES = [
    Case("12MP default", 4000, 3000, 2048, None, "total ≤ 3 s"),
    Case("12MP full", 4000, 3000, 4000, None, "total ≤ 8 s, peak RSS ≤ 3 GB", exports=True),
    Case("2MP depth file", 1732, 1155, 2048, None, "—", exports=True),
    Case("2MP model", 1732, 1155, 2048, "small", "total ≤ 1.3 × forward"),
    Case("2MP model Base", 1732, 1155, 2048, "base", "total ≤ 1.3 × forward"),
]
SMOKE_CASES = [
    Case("smoke", 640, 480, 2048, None, "runs", exports=True),
    Case("smoke model", 320, 240, 2048, "tiny", "runs"),
]


def make_photo(folder: Path, width: int, height: int, *, depth_file: bool) -> Path:
    """A photo-like JPEG: a synthetic 4-surface scene upscaled, with sensor noise, and its
    depth map at a quarter of the resolution (what a model would give)."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = folder / f"photo-{width}x{height}.jpg"
    depth = folder / f"photo-{width}x{height}.depth.png"
    if not photo.exists():
        scene = make_scene(num_surfaces=4, seed=1, width=width // 4, height=height // 4)
        image = cv2.resize(scene.image, (width, height), interpolation=cv2.INTER_CUBIC)
        noise = np.random.default_rng(0).normal(0, 0.02, image.shape)
        Image.fromarray(to_uint8(image + noise)).save(photo, quality=92)
        save_gray16_png(depth, scene.nearness)
    if not depth_file:
        bare = folder / "model" / photo.name
        bare.parent.mkdir(exist_ok=True)
        if not bare.exists():
            os.link(photo, bare)
        return bare
    return photo


def run_case(case: Case, *, repeats: int) -> dict[str, Any]:
    photo = make_photo(CACHE, case.width, case.height, depth_file=case.model is None)
    spec = json.dumps(
        {
            "photo": str(photo),
            "max_side": case.max_side,
            "model": case.model,
            "repeats": repeats,
            "exports": case.exports,
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "bench.layers", "--child", spec],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{case.name} failed:\n{result.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return {"case": case.name, "target": case.target, **figures}


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs inside the measured process: warm-up, then timed jobs."""
    from config.model import JobSettings, Mode, ModelSettings, WatchSettings
    from daemon.allocator import keep_freed_memory
    from pipeline import Job
    from pipeline.models import ModelCache
    from pipeline.runner import run

    keep_freed_memory()  # as `strata process` and the daemon's pipeline process do
    cache = ModelCache()
    models = ModelSettings()
    forward: list[float] = []
    if spec["model"]:
        from bench.harness import depth_model

        models = ModelSettings(depth=str(depth_model(spec["model"])), device="cpu")
    with tempfile.TemporaryDirectory() as out:

        def job(index: int, exports: str | None = None) -> dict[str, Any]:
            settings = JobSettings(max_side=spec["max_side"])
            if exports is not None:
                settings = JobSettings(max_side=spec["max_side"], exports=exports)
            task = Job(
                job_id=f"bench-{index}",
                mode=Mode.PHOTO_REALISTIC,
                input_path=Path(spec["photo"]),
                output_root=Path(out),
                settings=settings,
                models=models,
                limits=WatchSettings(max_pixels=10**9),
            )
            started = time.perf_counter()
            manifest = run(task, cache=cache).manifest
            return {
                "wall": time.perf_counter() - started,
                "timings": manifest["timings"],
                "exports": manifest["exports"],
            }

        job(0)
        runs = []
        for index in range(1, spec["repeats"] + 1):
            runs.append(job(index))
            if spec["model"]:
                forward.append(_forward_time(cache, models, spec["photo"]))
        peak_rss_gb = _peak_rss_gb()
        exported: list[list[dict[str, Any]]] = []
        if spec.get("exports"):
            # psd-tools composites the merged image on save, with a module of its own.
            for module in ("pipeline.exports.psd", "pipeline.exports.glb", "psd_tools.composite"):
                importlib.import_module(module)
            exported = [
                job(1000 + index, exports=ALL_EXPORTS)["exports"]
                for index in range(spec["repeats"])
            ]
    walls = [r["wall"] for r in runs]
    stages = {key: statistics.median(r["timings"][key] for r in runs) for key in runs[0]["timings"]}
    figures: dict[str, Any] = {
        "total_s": round(statistics.median(walls), 3),
        "min_s": round(min(walls), 3),
        "max_s": round(max(walls), 3),
        "stages_s": {key: round(value, 3) for key, value in stages.items()},
        "peak_rss_gb": peak_rss_gb,
    }
    if exported:
        figures["exports"] = _export_figures(exported)
        figures["exports_peak_rss_gb"] = _peak_rss_gb()
    if forward:
        figures["forward_s"] = round(statistics.median(forward), 3)
        figures["ratio_to_forward"] = round(figures["total_s"] / figures["forward_s"], 3)
    return figures


def _peak_rss_gb() -> float:
    return round(peak_rss_bytes() / 1024**3, 3)


def _export_figures(runs: list[list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per export: its file, its time (median, min, max of the runs) and its size."""
    figures: dict[str, dict[str, Any]] = {}
    for entry in runs[0]:
        name = entry["format"]
        seconds = [e["seconds"] for run in runs for e in run if e["format"] == name]
        figures[name] = {
            "file": entry["file"],
            "seconds": spread(seconds),
            "mb": round(entry["bytes"] / 1e6, 3),
        }
    return figures


EXPORT_COLUMNS = ["case", "export", "file", "median s (min–max)", "MB", "peak RSS GB"]


def export_rows(cases: list[dict[str, Any]]) -> list[list[object]]:
    """The export table's rows, one per case and export (cases that timed them)."""
    rows: list[list[object]] = []
    for case in cases:
        for name, figures in case.get("exports", {}).items():
            rows.append(
                [
                    case["case"],
                    name,
                    figures["file"],
                    fmt_spread(figures["seconds"]),
                    figures["mb"],
                    case["exports_peak_rss_gb"],
                ]
            )
    return rows


def _forward_time(cache: Any, models: Any, photo: str) -> float:
    from pipeline.depth import get_depth_estimator
    from pipeline.io import decode_image

    estimator = get_depth_estimator(cache, models)
    rgb = decode_image(Path(photo), max_side=2048, max_file_size_mb=50, max_pixels=10**9).rgb
    pixels = estimator.pixel_values(rgb)
    started = time.perf_counter()
    estimator.predict(pixels)
    return time.perf_counter() - started


def run(*, repeats: int, smoke: bool) -> list[dict[str, Any]]:
    return [run_case(case, repeats=repeats) for case in (SMOKE_CASES if smoke else CASES)]


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'case':<15} {'median s':>9} {'min–max s':>13} {'peak GB':>8}  stages (median s)")
    for row in rows:
        stages = ", ".join(f"{k} {v}" for k, v in row["stages_s"].items() if k != "total")
        extra = (
            f"  forward {row['forward_s']} s, ratio {row['ratio_to_forward']}"
            if "forward_s" in row
            else ""
        )
        print(
            f"{row['case']:<15} {row['total_s']:>9} {row['min_s']:>6}–{row['max_s']:<6} "
            f"{row['peak_rss_gb']:>8}  {stages}{extra}  [{row['target']}]"
        )
    exports = export_rows(rows)
    if exports:
        print("\nexports\n" + render_table(EXPORT_COLUMNS, exports))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.layers", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="one small case, one repeat")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    rows = run(repeats=1 if args.smoke else args.repeats, smoke=args.smoke)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
