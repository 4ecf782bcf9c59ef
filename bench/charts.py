"""``docs/benchmarks.md`` and its charts, generated from a ``python -m bench`` results file.

    python -m bench --report bench/results/latest.json [--docs docs/benchmarks.md]

The page's numbers are never typed by hand: tables, targets and charts all come from the
JSON. Charts go beside the page under ``images/bench-*.png``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import stereo
from bench.depth_forward import TABLE_KEYS
from bench.harness import markdown_table

PSNR_CAP = 99.0  # bench.metrics.psnr's value for an exact match
QUALITY_METRICS = [
    ("min_iou", "min per-layer soft IoU (true layer count)", "higher is better"),
    ("min_psnr_db", "min recomposition PSNR (dB)", "higher is better; 99 = exact"),
    ("ghost_error", "reveal ghost/halo error (MAE, 8-bit levels)", "lower is better"),
    ("fill_error", "reveal fill error (MAE, 8-bit levels)", "lower is better"),
]
STAGE_ORDER = ["decode", "depth", "layers", "fill", "write"]

Target = tuple[str, str, str, bool | None]
"""(suite, target, measured, met: None when not measured)."""


# --- targets -----------------------------------------------------------------------------------


def _suite(results: dict[str, Any], name: str) -> dict[str, Any] | None:
    entry = results.get("suites", {}).get(name)
    if not entry or entry.get("result") is None:
        return None
    result: dict[str, Any] = entry["result"]
    return result


def layer_targets(result: dict[str, Any] | None) -> list[Target]:
    every = {c["case"]: c for c in result["cases"]} if result else {}
    failed = {name: c["error"] for name, c in every.items() if "error" in c}
    cases = {name: c for name, c in every.items() if name not in failed}

    def absent(name: str) -> tuple[str, bool | None]:
        if name in failed:
            return f"failed: {failed[name]}", False
        return "not measured", None

    checks: list[tuple[str, str, Any, Any]] = [
        (
            "12MP default",
            "12 MP, default max_side: job ≤ 3 s",
            lambda c: f"{c['total_s']} s",
            lambda c: c["total_s"] <= 3.0,
        ),
        (
            "12MP full",
            "12 MP, full max_side: job ≤ 8 s, peak RSS ≤ 3 GB",
            lambda c: f"{c['total_s']} s, {c['peak_rss_gb']} GB",
            lambda c: c["total_s"] <= 8.0 and c["peak_rss_gb"] <= 3.0,
        ),
    ]
    for name, label in (("2MP model", "Small"), ("2MP model Base", "Base")):
        checks.append(
            (
                name,
                f"2 MP through Depth-Anything-V2-{label}: job ≤ 1.3 × bare forward",
                lambda c: (
                    f"{c['total_s']} s vs forward {c['forward_s']} s = {c['ratio_to_forward']}×"
                ),
                lambda c: c["ratio_to_forward"] <= 1.3,
            )
        )
    rows: list[Target] = []
    reference = cases.get("2MP depth file")
    for name, target, measured, met in checks:
        case = cases.get(name)
        if case is None:
            rows.append(("layers", target, *absent(name)))
            continue
        text = measured(case)
        if "forward_s" in case and reference is not None:
            pipeline = reference["total_s"] - reference["stages_s"].get("depth", 0.0)
            estimate = (case["forward_s"] + pipeline) / case["forward_s"]
            text += (
                f"; with the 2MP depth-file pipeline ({pipeline:.2f} s) instead of the "
                f"random depth's: {estimate:.2f}×"
            )
        rows.append(("layers", target, text, bool(met(case))))
    return rows


def quality_targets(result: dict[str, Any] | None) -> list[Target]:
    """The quality suite's own target lines (``bench.quality.targets``)."""
    if not result or "targets" not in result:
        return [("quality", "layer quality (IoU, reveal, opacity, PSNR)", "not measured", None)]
    return [("quality", t["target"], t["measured"], t["met"]) for t in result["targets"]]


def daemon_targets(result: dict[str, Any] | None) -> list[Target]:
    if not result:
        return [("daemon", "pickup, storm, warm vs fresh, idle CPU", "not measured", None)]
    return [
        ("daemon", r["figure"] + f": {r['target']}", r["value"], r["ok"]) for r in result["rows"]
    ]


def redis_targets(result: dict[str, Any] | None) -> list[Target]:
    if not result:
        return [
            ("redis", "workers on one Redis: throughput, start, recovery", "not measured", None)
        ]
    return [
        ("redis", f"{r['figure']}: {r['target']}", r["value"], r["ok"])
        for r in result["rows"]
        if r.get("applies", True)
    ]


def painterly_targets(result: dict[str, Any] | None) -> list[Target]:
    if not result:
        return [
            (
                "painterly",
                "fast mode ≤ 30 s, peak RSS ≤ 6 GB, second job no load",
                "not measured",
                None,
            )
        ]
    measured = result["painterly"]
    fast, quality = measured["fast"], measured["quality"]
    cold = fast["jobs"][0]["wall_s"]
    warm = fast["warm_wall_s_median"]
    peak = max(fast["peak_rss_gb"], quality["peak_rss_gb"])
    load2 = fast["second_job_load_s"]
    return [
        (
            "painterly",
            "fast mode ≤ 30 s per job (warm; first job incl. load)",
            f"{warm} s warm, {cold} s first",
            warm <= 30.0,
        ),
        (
            "painterly",
            "peak RSS ≤ 6 GB (fast and quality in one process)",
            f"{peak} GB",
            peak <= 6.0,
        ),
        (
            "painterly",
            "second job: no model load time",
            f"{load2} s",
            load2 is not None and load2 <= 0.05,
        ),
        (
            "painterly",
            "default quality mode (25 steps × 0.5): figures only",
            f"{quality['wall_s']} s",
            None,
        ),
    ]


def targets(results: dict[str, Any]) -> list[Target]:
    return [
        *layer_targets(_suite(results, "layers")),
        *quality_targets(_suite(results, "quality")),
        *stereo.targets(_suite(results, "stereo")),
        *daemon_targets(_suite(results, "daemon")),
        *redis_targets(_suite(results, "redis")),
        *painterly_targets(_suite(results, "painterly")),
    ]


def verdict(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "—"}[met]


# --- charts ------------------------------------------------------------------------------------


def quality_chart(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    summary = result["summary"]
    methods = list(dict.fromkeys(s["method"] for s in summary))
    depths = result.get("depths", ["exact", "model-like"])
    lookup = {(s["method"], s["depth"]): s for s in summary}
    figure, axes = plt.subplots(2, 2, figsize=(10, 7))
    x = np.arange(len(methods))
    for axis, (key, title, note) in zip(axes.flat, QUALITY_METRICS, strict=True):
        for offset, depth in zip((-0.2, 0.2), depths, strict=True):
            values = [
                _number(lookup[(m, depth)].get(key)) if (m, depth) in lookup else np.nan
                for m in methods
            ]
            bars = axis.bar(x + offset, values, 0.4, label=f"{depth} depth")
            axis.bar_label(bars, fmt="%.3g", fontsize=7, padding=2)
        axis.set_xticks(x, methods, fontsize=8)
        axis.set_title(f"{title}\n({note})", fontsize=9)
        axis.margins(y=0.15)
        if key == "min_iou":
            axis.axhline(0.98, color="grey", lw=0.8, ls="--")
            axis.axhline(0.90, color="grey", lw=0.8, ls=":")
        if key == "min_psnr_db":
            axis.axhline(45.0, color="grey", lw=0.8, ls="--")
    axes.flat[0].legend(fontsize=8)
    scenes = len(result["scenes"])
    width, height = result["size"]
    figure.suptitle(
        f"Layer quality on {scenes} synthetic scenes ({width}×{height}); dashed: targets",
        fontsize=10,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def layers_chart(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [c for c in result["cases"] if "error" not in c]
    stages = [s for s in STAGE_ORDER if any(s in c["stages_s"] for c in cases)]
    stages += sorted({k for c in cases for k in c["stages_s"]} - {*stages, "total"})
    figure, axis = plt.subplots(figsize=(10, 0.6 * len(cases) + 1.6))
    names = [c["case"] for c in cases]
    left = [0.0] * len(cases)
    for stage in stages:
        values = [float(c["stages_s"].get(stage, 0.0)) for c in cases]
        axis.barh(names, values, left=left, label=stage)
        left = [a + b for a, b in zip(left, values, strict=True)]
    for index, case in enumerate(cases):
        label = f"{case['total_s']} s, {case['peak_rss_gb']} GB"
        if "forward_s" in case:
            label += f" (forward {case['forward_s']} s)"
        axis.text(max(left[index], case["total_s"]) * 1.01, index, label, va="center", fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("seconds per job (median of the stage timings)")
    axis.set_xlim(0, max(*left, *(c["total_s"] for c in cases)) * 1.45)
    axis.legend(fontsize=8, loc="upper right")
    axis.set_title("Photo-realistic job: time per stage", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


# --- the page ----------------------------------------------------------------------------------


def _section_layers(result: dict[str, Any]) -> str:
    rows: list[list[object]] = []
    for c in result["cases"]:
        if "error" in c:
            rows.append([c["case"], "**failed**", "", "", "", "", "", f"`{c['error']}`"])
            continue
        stages = ", ".join(f"{k} {v}" for k, v in c["stages_s"].items() if k != "total")
        rows.append(
            [
                c["case"],
                c["total_s"],
                f"{c['min_s']}–{c['max_s']}",
                c["peak_rss_gb"],
                c.get("forward_s", "—"),
                c.get("ratio_to_forward", "—"),
                round(c["total_s"] - c["stages_s"].get("depth", 0.0), 3),
                stages,
            ]
        )
    table = markdown_table(
        [
            "case",
            "median s",
            "min–max s",
            "peak RSS GB",
            "bare forward s",
            "job ÷ forward",
            "job − depth stage s",
            "stages (median s)",
        ],
        rows,
    )
    return (
        f"{table}\n\n"
        "The photos are synthetic 4-surface scenes upscaled with sensor noise, saved as JPEG "
        "(quality 92) with a quarter-resolution 16-bit depth PNG beside them for the "
        "depth-file cases. *job − depth stage* is everything but the depth estimate (decode, "
        "layers, fill, write): the part of a model job the pipeline adds, and less sensitive "
        "to the machine's load than the ratio, whose forward pass is a few seconds of "
        "contended CPU. Random weights give uninformative depth: the Small model's is a "
        "fine texture of ramps over 86 % of the frame, which the pipeline cuts into two "
        "layers (a blob and many scattered squiggles; the other two come out empty and are "
        "dropped), and the Base model's is one plane (one layer holds every pixel, no "
        "fill). The *2MP depth file* case (four real layers) is the pipeline's cost on "
        "realistic depth; the targets table adds it to the bare forward as the estimate "
        "for a real model job."
    ) + _exports_part(result["cases"])


def _exports_part(cases: list[dict[str, Any]]) -> str:
    """The exports' own times and sizes (bench/layers.py), under the layers table."""
    from bench.layers import EXPORT_COLUMNS, export_rows

    rows = export_rows([c for c in cases if "error" not in c])
    if not rows:
        return ""
    return (
        "\n\n### Exports: layers.psd, layers.ora, scene.glb, viewer.html\n\n"
        + markdown_table(EXPORT_COLUMNS, rows)
        + "\n\nEach export's own time inside the job (the manifest's `exports[].seconds`), "
        "the same photos with `exports: [psd, ora, glb, html]`; *peak RSS* is the job "
        "process's with them (the cases' own peak is measured before). `layers.psd` is "
        "psd-tools encoding four full-canvas RLE layers and compositing the merged image "
        "(its composite is most of the time); `layers.ora` and `scene.glb` store the layer "
        "PNGs as written (plus the merged image for ORA), so they cost little time but "
        "their size again; `viewer.html` reads the PNGs beside it. So the default is "
        "`exports: [html]`."
    )


QUALITY_COLUMNS = [
    ("method", "method"),
    ("depth", "depth"),
    ("scenes", "scenes"),
    ("runs", "runs"),
    ("min IoU", "min_iou"),
    ("mean IoU", "mean_iou"),
    ("min IoU ±1 layer", "min_iou_other_counts"),
    ("min part IoU", "min_part_iou"),
    ("min PSNR dB", "min_psnr_db"),
    ("ghost/halo err", "ghost_error"),
    ("fill err", "fill_error"),
    ("view err", "view_error"),
    ("holes", "parallax_holes"),
    ("bg opaque", "background_opaque"),
    ("s / run", "seconds_median"),
]


def _quality_table(lines: list[dict[str, Any]], *, family: bool = False) -> str:
    columns = ([("family", "family")] if family else []) + QUALITY_COLUMNS
    rows = [[_quality_cell(line.get(key)) for _, key in columns] for line in lines]
    return markdown_table([name for name, _ in columns], rows)


def _quality_cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "—" if value is None else value


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _section_quality(result: dict[str, Any]) -> str:
    notes = "\n".join(f"- `{name}`: {note}" for name, note in result["methods"].items())
    scenes = ", ".join(result["scenes"])
    families = result.get("families")
    by_family = f"\n\nPer family:\n\n{_quality_table(families, family=True)}" if families else ""
    return (
        f"Scenes ({result['size'][0]}×{result['size'][1]}, `bench/scenes.py`): {scenes}; each "
        "layered from its exact depth and from model-like depth (edges bled and displaced "
        "by several pixels, quarter resolution, blur, noise), with its true surface count "
        "as the layer count, some also with one layer more and one fewer.\n\n"
        f"{notes}\n\n{_quality_table(result['summary'])}{by_family}\n\n"
        "How to read it (definitions in `bench/metrics.py`): IoU is per surface (per group "
        "of depth-adjacent surfaces when fewer layers are asked) against the union of the "
        "layers mostly made of it, 0 when no layer is; *min IoU* is the worst over the "
        "true-count runs, *±1 layer* over the others; *part IoU* scores each thin part "
        "(stick, wire, spokes) and small object on its own pixels and a 2-px ring. Ghost/"
        "halo and fill errors are the preview's sway (±amplitude) against the same stack "
        "filled with the true hidden surfaces, on the pixels the sway uncovers (ghost: "
        "within 4 px of the occluder's edge), pixel-weighted over all runs, in 8-bit "
        "levels; `strata+telea` has Strata's labels and alphas and is scored on Strata's "
        "pixels, so that pair isolates the fill. *View* error is the whole shifted frame "
        "against the true shifted scene (sliced floors and thin parts left behind show "
        "there). Holes are truly uncovered pixels a farther layer shows through. PSNR is "
        "the 8-bit layers recomposed vs the photo; 99 means identical."
    )


def _section_daemon(result: dict[str, Any]) -> str:
    table = markdown_table(
        ["figure", "measured", "target", "met"],
        [[r["figure"], r["value"], r["target"], verdict(r["ok"])] for r in result["rows"]],
    )
    warm = result.get("warm_vs_fresh")
    if warm:
        table += (
            f"\n\nWarm vs fresh ({warm['jobs']} photos of {warm['photo_size'][0]}×"
            f"{warm['photo_size'][1]} without depth maps, `{warm['model']}`; the model's input "
            "is 518 px on the short side for any photo this size or larger), interleaved: a "
            f"fresh process per job (spawn to exit) {warm['fresh_s']} s; the warm process "
            f"{warm['warm_s']} s per job, after a first job of {warm['warm_first_job_s']} s "
            "(interpreter, imports, model load). A batch of the same size including the warm "
            f"process's start-up: {warm['speedup_with_startup']}× faster than fresh processes."
        )
    return table


def _section_redis(result: dict[str, Any]) -> str:
    """Several workers on one Redis; each figure with the load average while it ran."""
    cores = result["cores"]
    rows = [
        [
            r["figure"],
            r["value"],
            r["target"],
            verdict(r["ok"] if r.get("applies", True) else None),
            r.get("load", "?"),
        ]
        for r in result["rows"]
    ]
    table = markdown_table(["figure", "measured", "target", "met", "load (1 min)"], rows)
    return (
        "Real `Daemon(role=worker)` processes (`bench/redis_workers.py`), each with its own "
        "state folder, on one loopback `redis-server`; their pipeline process runs "
        f"`bench.redis_workers:fixed_cost_job`: a fixed {result.get('cost_s', '?')} s wait per "
        "job (as a GPU- or disk-bound job waits), not a busy core, so the figures are the "
        "queue's and the ledger's, not this shared machine's free CPU. Throughput: "
        f"{result.get('jobs_per_worker', '?')} jobs per worker, first enqueue to last end; "
        "enqueue → start: the ledger's `created_at` → `started_at` with the worker idle; "
        "kill -9 → elsewhere: the kill to the job's `started_at` on the other worker (lease "
        f"{result.get('lease_s', 2.0):g} s). Load: the 1-minute load average (`uptime`) "
        f"before → after each figure, on {cores} cores.\n\n{table}"
    )


def _section_painterly(result: dict[str, Any]) -> str:
    measured = result["painterly"]
    rows = []
    for index, job in enumerate(measured["fast"]["jobs"]):
        rows.append(
            [
                f"fast, job {index + 1}",
                job["wall_s"],
                job["steps_run"],
                job["vae"],
                ", ".join(f"{k} {v}" for k, v in job["timings_s"].items()),
            ]
        )
    quality = measured["quality"]
    rows.append(
        [
            "quality (25 steps × 0.5)",
            quality["wall_s"],
            quality["steps_run"],
            quality["vae"],
            ", ".join(f"{k} {v}" for k, v in quality["timings_s"].items()),
        ]
    )
    table = markdown_table(["job", "wall s", "steps run", "decoder", "stages (s)"], rows)
    return (
        f"Models: {result['models']} weights; canvas {measured['canvas'][0]}×"
        f"{measured['canvas'][1]} (diffusion at 512 px), torch threads "
        f"{measured['torch_threads']}. Peak RSS after the fast batch "
        f"{measured['fast']['peak_rss_gb']} GB, after the quality job "
        f"{quality['peak_rss_gb']} GB.\n\n{table}{_detail(result.get('detail'))}"
    )


def _detail(detail: dict[str, Any] | None) -> str:
    """The upscale/detail-restoration comparison (model-free), when it ran."""
    if not detail:
        return ""
    rows = [
        [name, m["identity_psnr_db"], m["painting_change"], m["painted_alignment"], m["ms"]]
        for name, m in detail["methods"].items()
    ]
    width, height = detail["canvas"]
    small_w, small_h = detail["diffusion"]
    table = markdown_table(
        ["way back to the canvas", "photo PSNR dB", "painting change", "edge alignment", "ms"],
        rows,
    )
    return (
        f"\n\nDetail restoration, {small_w}×{small_h} → {width}×{height} (no model; "
        "`python -m bench.painterly --detail`): PSNR against the photo when nothing was "
        "painted, how much of a simulated painting changes, and how well its edges sit on "
        f"the depth boundaries.\n\n{table}"
    )


def _section_depth(result: dict[str, Any]) -> str:
    keys = TABLE_KEYS
    return markdown_table(["figure", "value"], [[k, result[k]] for k in keys if k in result])


def _section_fill(result: dict[str, Any]) -> str:
    rows = [
        [
            s["method"],
            s["mae"],
            s["band_mae"],
            f"{s['seconds']['median']} ({s['seconds']['min']}–{s['seconds']['max']})",
        ]
        for s in result["summary"]
    ]
    sizes = ", ".join(f"{w}×{h}" for w, h in result["sizes"])
    text = f"Mean over 4 scene kinds (40 % hidden) at {sizes}.\n\n" + markdown_table(
        ["method", "MAE", "edge-band MAE", "s per scene"], rows
    )
    if "peer_summary" not in result:
        return text
    width, height = result["peer_size"]
    peers = [
        [s["method"], s["mae"], s["band_mae"], s["seconds"]["median"]]
        for s in result["peer_summary"]
    ]
    return (
        f"{text}\n\nWith OpenCV contrib's patch-based inpainting (`cv2.xphoto.inpaint`: "
        f"shift-map and fast frequency-selective reconstruction, 8-bit CIELab) at "
        f"{width}×{height}, where it still runs in seconds:\n\n"
        + markdown_table(["method", "MAE", "edge-band MAE", "s per scene"], peers)
    )


SECTIONS: list[tuple[str, str, Callable[[dict[str, Any]], str], str | None]] = [
    ("layers", "Layers: photo-realistic job time and memory", _section_layers, "bench-layers.png"),
    (
        "quality",
        "Quality: Strata vs peer baselines on synthetic scenes",
        _section_quality,
        "bench-quality.png",
    ),
    (
        "stereo",
        "Stereo: novel views of a real photo (Middlebury motorcycle) vs peer quantisers",
        stereo.section,
        None,
    ),
    ("daemon", "Daemon: pickup, storm, warm vs fresh, idle", _section_daemon, None),
    ("redis", "Redis: several workers on one queue and ledger", _section_redis, None),
    ("painterly", "Painterly: real-size SD1.5 stage", _section_painterly, None),
    ("depth", "Depth stage: bare forward vs the whole estimate (2 MP)", _section_depth, None),
    ("fill", "Fill: built-in fill vs Telea on textured backgrounds", _section_fill, None),
]


def when(results: dict[str, Any]) -> str:
    """From the first suite's start to the last's (runs merged with --merge included)."""
    dates = sorted(
        entry.get("started", results["environment"]["date"])
        for entry in results.get("suites", {}).values()
        if entry
    ) or [results["environment"]["date"]]
    first, last = dates[0].replace("T", " "), dates[-1].replace("T", " ")
    return first if first == last else f"{first} to {last} (suites' start times)"


HOW_MEASURED = """How each suite measures (N = `--repeats`):

- **layers** (`bench/layers.py`): each case in its own process (its peak RSS is its own),
  one untimed warm-up job, then N timed jobs through `pipeline.run`; median and min–max
  of the job's wall time, the manifest's stage timings (median). Model cases time the
  model's bare forward in the same process after each job.
- **quality** (`bench/quality.py`): deterministic scores, so N does not apply.
- **stereo** (`bench/stereo.py`): the Middlebury motorcycle pair (scikit-image), each
  method's layers moved to the right camera; deterministic, so N does not apply.
- **daemon** (`bench/daemon.py`): the real `strata run` on temporary folders: 20 pickups,
  a storm of 50 photos (1024×768, depth maps beside them) against the same photos
  in-process, 20 s of idle CPU; then N + 2
  photos through a fresh process per job and one warm process, interleaved.
- **redis** (`bench/redis_workers.py`): 1, 2 and 3 real worker processes on one loopback
  `redis-server`, jobs of a fixed wait each; enqueue → start with the worker idle; a
  worker killed (-9) mid-job and the time until another runs it. Deterministic waits, so
  N does not apply.
- **painterly** (`bench/painterly.py`, in a child process): N + 1 fast-mode jobs in one
  process (the first includes the model load), then one default quality-mode job.
- **depth** (`bench/depth_forward.py`): bare forward and whole estimate interleaved, N each.
- **fill** (`bench/fill_vs_telea.py` scenes): median of N runs per scene and method; the
  patch-based peers (OpenCV xphoto) once each, at 256×192.

`python -m bench --smoke` (CI) runs every suite at tiny sizes with tiny models, to keep
the harness working; its numbers are not figures."""


def render_page(results: dict[str, Any], *, source: str, images: dict[str, str]) -> str:
    env = results["environment"]
    v = env["versions"]
    loads = [e["load_average"] for e in results.get("suites", {}).values() if e]
    means = [entry["mean"] for entry in loads] or ["?"]
    peak = max((entry["max"] for entry in loads), default="?")
    lines = [
        "# Benchmarks",
        "",
        f"<!-- generated by `python -m bench --report {source}`; do not edit by hand -->",
        "",
        f"Measured {when(results)} on {env['cpu_model']} ({env['cores']} cores, "
        f"{env['memory_gb']} GB RAM, no GPU), {env['platform']}.",
        f"Python {v.get('python')}, torch {v.get('torch')}, transformers "
        f"{v.get('transformers')}, diffusers {v.get('diffusers')}, numpy {v.get('numpy')}, "
        f"opencv {v.get('opencv')}.",
        "",
        "The machine is shared with other work, so every figure is a median of repeats taken "
        "while the load below was on it (1-minute load average on "
        f"{env['cores']} cores; above {env['cores']} means other processes were competing "
        f"for the CPU): suite means {min(means)}–{max(means)}, highest sample {peak}; "
        "per suite in each section. Models are real-size architectures with random weights "
        "(built locally: nothing can be downloaded here); compute time and memory do not "
        "depend on the weight values.",
        "",
        "Every table comes from `python -m bench` (all suites: `python -m bench --repeats "
        f"{results.get('harness', {}).get('repeats', 3)}`); the command for each is given "
        "with it.",
        "",
        HOW_MEASURED,
        "",
        "## Targets vs measured",
        "",
        markdown_table(
            ["suite", "target", "measured", "met"],
            [[s, t, m, verdict(ok)] for s, t, m, ok in targets(results)],
        ),
    ]
    for name, title, render, _chart in SECTIONS:
        entry = results.get("suites", {}).get(name)
        lines += ["", f"## {title}", ""]
        if not entry:
            lines.append("Not measured in this run.")
            continue
        lines.append(
            f"`{entry['command']}` — {entry.get('started', env['date'])}, "
            f"{entry['elapsed_s']} s, load average "
            f"{entry['load_average']['mean']} mean / {entry['load_average']['max']} max."
        )
        lines.append("")
        if entry.get("error"):
            lines.append(f"**Failed:** `{entry['error'].splitlines()[-1]}`")
            continue
        lines.append(render(entry["result"]))
        if name in images:
            lines += ["", f"![{title}]({images[name]})"]
    return "\n".join(lines) + "\n"


def write_report(results: dict[str, Any], *, docs: Path, source: Path | str) -> list[Path]:
    """The page and its charts; returns the paths written."""
    folder = docs.parent / "images"
    written: list[Path] = []
    images: dict[str, str] = {}
    charts = {"layers": layers_chart, "quality": quality_chart}
    for name, _title, _render, chart in SECTIONS:
        result = _suite(results, name)
        if chart and result is not None:
            written.append(charts[name](result, folder / chart))
            images[name] = f"images/{chart}"
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(render_page(results, source=str(source), images=images), encoding="utf-8")
    written.append(docs)
    return written
