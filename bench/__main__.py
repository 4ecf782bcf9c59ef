"""Strata's benchmark harness: one entry point for every suite.

    python -m bench [--suite layers,quality,stereo,daemon,painterly,depth,fill,redis]
                    [--repeats N]
                    [--smoke] [--json-out FILE] [--merge]
    python -m bench --report bench/results/latest.json   # docs/benchmarks.md + charts

The random-weight models (real-size Depth-Anything-V2-Small and -Base; SD1.5 UNet, VAE,
text encoder, ControlNet, LCM-LoRA and TAESD via :mod:`bench.painterly`) are built once
into ``bench/.cache/`` (git-ignored). Each suite prints one table; every number goes to
the JSON file (default ``bench/results/latest.json``, or ``bench/results/smoke.json`` with
``--smoke``), with the machine, the library versions and the load average during each suite.

``--smoke`` runs every suite end to end at tiny sizes, one repeat, with tiny random models
where a real-size one would be slow: it checks that the harness still works, not speed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loguru import logger

from bench.depth_forward import TABLE_KEYS
from bench.harness import (
    RESULTS,
    LoadSampler,
    depth_model,
    environment,
    fmt_spread,
    render_table,
    spread,
    tiny_painterly,
    write_json,
)

SUITES = ("layers", "quality", "stereo", "daemon", "painterly", "depth", "fill", "redis")
DEFAULT_REPEATS = 3


# --- arguments --------------------------------------------------------------------------------


def suite_list(text: str) -> list[str]:
    """``"layers,quality"`` → ``["layers", "quality"]`` in the order given; ``all`` = every."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if names == ["all"]:
        return list(SUITES)
    unknown = [name for name in names if name not in SUITES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown suite {', '.join(unknown) or '(none)'}; choose from {', '.join(SUITES)}"
        )
    return list(dict.fromkeys(names))


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be ≥ 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--suite",
        type=suite_list,
        default=list(SUITES),
        help=f"comma-separated, from {','.join(SUITES)} (default: all)",
    )
    parser.add_argument(
        "--repeats",
        type=positive,
        default=None,
        help=f"timed repeats per case (default {DEFAULT_REPEATS}; 1 with --smoke)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes and models, one repeat: the harness still works",
    )
    parser.add_argument(
        "--json-out",
        type=Path,
        default=None,
        help="where the numbers go (default bench/results/latest.json, smoke.json with --smoke)",
    )
    parser.add_argument(
        "--merge", action="store_true", help="keep the other suites already in --json-out"
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="JSON",
        help="write docs/benchmarks.md and its charts from a results file",
    )
    parser.add_argument(
        "--docs", type=Path, default=Path("docs/benchmarks.md"), help="the page --report writes"
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.smoke else DEFAULT_REPEATS
    if args.json_out is None:
        args.json_out = RESULTS / ("smoke.json" if args.smoke else "latest.json")
    return args


def command_for(suite: str, *, repeats: int, smoke: bool) -> str:
    """The command that reproduces one suite's table."""
    parts = ["python", "-m", "bench", "--suite", suite, "--repeats", str(repeats)]
    if smoke:
        parts.append("--smoke")
    return shlex.join(parts)


# --- suites ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suite:
    run: Callable[[int, bool], dict[str, Any]]
    table: Callable[[dict[str, Any]], str]


def run_layers(repeats: int, smoke: bool) -> dict[str, Any]:
    from bench import layers

    cases: list[dict[str, Any]] = []
    for case in layers.SMOKE_CASES if smoke else layers.CASES:
        try:
            cases.append(layers.run_case(case, repeats=repeats))
        except RuntimeError as error:  # one case's failure is a finding; the others still run
            print(error, file=sys.stderr)
            last = str(error).strip().splitlines()[-1]
            cases.append({"case": case.name, "target": case.target, "error": last})
    failed = [c["case"] for c in cases if "error" in c]
    if len(failed) == len(cases):
        raise RuntimeError(f"every layers case failed: {cases[0]['error']}")
    return {"cases": cases}


def layers_table(result: dict[str, Any]) -> str:
    from bench import layers

    rows: list[list[object]] = []
    for case in result["cases"]:
        if "error" in case:
            rows.append([case["case"], "FAILED", "", "", "", "", case["error"], case["target"]])
            continue
        stages = ", ".join(f"{k} {v}" for k, v in case["stages_s"].items() if k != "total")
        spread_text = f"{case['min_s']}–{case['max_s']}"
        forward = case.get("forward_s", "")
        ratio = case.get("ratio_to_forward", "")
        rows.append(
            [
                case["case"],
                case["total_s"],
                spread_text,
                case["peak_rss_gb"],
                forward,
                ratio,
                stages,
                case["target"],
            ]
        )
    table = render_table(
        [
            "case",
            "median s",
            "min–max s",
            "peak GB",
            "forward s",
            "÷ forward",
            "stages (median s)",
            "target",
        ],
        rows,
    )
    exports = layers.export_rows([c for c in result["cases"] if "error" not in c])
    return table + ("\n\n" + render_table(layers.EXPORT_COLUMNS, exports) if exports else "")


def run_quality(repeats: int, smoke: bool) -> dict[str, Any]:
    from bench import quality

    return quality.run(smoke=smoke, repeats=repeats)


def quality_table(result: dict[str, Any]) -> str:
    from bench import quality

    return quality.table(result)


def run_stereo(repeats: int, smoke: bool) -> dict[str, Any]:
    from bench import stereo

    return stereo.run(smoke=smoke, repeats=repeats)


def stereo_table(result: dict[str, Any]) -> str:
    from bench import stereo

    return stereo.table(result)


def run_daemon(repeats: int, smoke: bool) -> dict[str, Any]:
    from bench import daemon

    if smoke:
        return daemon.measure(
            latency_samples=3,
            storm_size=5,
            idle_seconds=2.0,
            warm_jobs=2,
            warm_model=depth_model("tiny"),
            warm_size=(320, 240),
        )
    return daemon.measure(warm_jobs=max(3, repeats + 2), warm_model=depth_model("small"))


def daemon_table(result: dict[str, Any]) -> str:
    return render_table(
        ["figure", "measured", "target", "ok"],
        (
            [r["figure"], r["value"], r["target"], "yes" if r["ok"] else "NO"]
            for r in result["rows"]
        ),
    )


def run_redis(repeats: int, smoke: bool) -> dict[str, Any]:
    """Workers on one redis-server: throughput 1-3 workers, enqueue-to-start, recovery."""
    from bench import redis_workers

    if smoke:
        return redis_workers.measure(cost=0.05, jobs_per_worker=2, samples=3)
    return redis_workers.measure(jobs_per_worker=4 * repeats)


def run_painterly(repeats: int, smoke: bool) -> dict[str, Any]:
    """In a child process, so its peak RSS is the painterly stage's own."""
    with tempfile.TemporaryDirectory(prefix="strata-bench-") as temp:
        out = Path(temp) / "painterly.json"
        spec = {"smoke": smoke, "batch": 2 if smoke else max(2, repeats + 1), "out": str(out)}
        subprocess.run(
            [sys.executable, "-m", "bench", "--child", "painterly", json.dumps(spec)], check=True
        )
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def painterly_child(spec: dict[str, Any]) -> None:
    from bench import painterly

    report: dict[str, Any] = {"models": "tiny random" if spec["smoke"] else "real-size random"}
    if spec["smoke"]:
        root = tiny_painterly()
        report["build_s"] = 0.0
    else:
        root = painterly.CACHE
        report["build_s"] = round(painterly.ensure_components(root), 1)
        report["detail"] = painterly.detail_comparison()
    report["painterly"] = painterly.measure(root, batch=spec["batch"])
    write_json(Path(spec["out"]), report)


def painterly_table(result: dict[str, Any]) -> str:
    measured = result["painterly"]
    fast = measured["fast"]
    rows = []
    for index, job in enumerate(fast["jobs"]):
        stages = ", ".join(f"{k} {v}" for k, v in job["timings_s"].items())
        rows.append([f"fast job {index + 1}", job["wall_s"], stages])
    quality = measured["quality"]
    stages = ", ".join(f"{k} {v}" for k, v in quality["timings_s"].items())
    rows.append(["quality job (25 steps × 0.5)", quality["wall_s"], stages])
    text = render_table(["job", "wall s", "stages (s)"], rows)
    warm = fast["warm_wall_s_median"]
    return (
        f"{text}\nmodels: {result['models']}; fast warm median {warm} s (target ≤ 30 s), "
        f"job 2 load {fast['second_job_load_s']} s; peak RSS fast {fast['peak_rss_gb']} GB, "
        f"after quality {quality['peak_rss_gb']} GB (target ≤ 6 GB)"
    )


def run_depth(repeats: int, smoke: bool) -> dict[str, Any]:
    size = "320x240" if smoke else "1732x1155"
    depth_model("small")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.depth_forward",
            "--json",
            "--size",
            size,
            "--repeats",
            str(repeats),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 1):  # 1: over budget, still measured
        raise RuntimeError(f"bench.depth_forward failed:\n{result.stderr[-4000:]}")
    start = result.stdout.index("{")
    figures: dict[str, Any] = json.loads(result.stdout[start:])
    return figures


def depth_table(result: dict[str, Any]) -> str:
    keys = TABLE_KEYS
    return render_table(["figure", "value"], ([k, result[k]] for k in keys if k in result))


def run_fill(repeats: int, smoke: bool) -> dict[str, Any]:
    from bench import fill_vs_telea as fvt

    sizes = [(192, 256)] if smoke else [(864, 1152), (1536, 2048)]
    peer_size = (48, 64) if smoke else fvt.PEER_SIZE
    job_sized = _fill_rows(fvt.METHODS, sizes, repeats=repeats)
    peers = _fill_rows(fvt.METHODS | fvt.PATCH_PEERS, [peer_size], repeats=1)
    return {
        "sizes": [[w, h] for h, w in sizes],
        "rows": job_sized,
        "summary": _fill_summary(job_sized),
        "peer_size": [peer_size[1], peer_size[0]],
        "peer_rows": peers,
        "peer_summary": _fill_summary(peers),
    }


def _fill_rows(
    methods: dict[str, Any], sizes: list[tuple[int, int]], *, repeats: int
) -> list[dict[str, Any]]:
    from bench import fill_vs_telea as fvt

    rows: list[dict[str, Any]] = []
    for height, width in sizes:
        for index, kind in enumerate(fvt.KINDS):
            scene = fvt.render_scene(index, height, width, kind=kind, coverage=0.4)
            for name, method in methods.items():
                figures: tuple[float, ...] = fvt.measure(method, scene, repeats=repeats)
                mae, band, seconds = figures[:3]  # (+ CPU seconds in newer versions)
                rows.append(
                    {
                        "size": [width, height],
                        "scene": kind,
                        "method": name,
                        "mae": round(mae, 4),
                        "band_mae": round(band, 4),
                        "seconds": round(seconds, 3),
                        "cpu_seconds": round(figures[3], 3) if len(figures) > 3 else None,
                    }
                )
    return rows


def _fill_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method, in the order measured: the mean errors and the spread of seconds."""
    summary = []
    for name in dict.fromkeys(r["method"] for r in rows):
        group = [r for r in rows if r["method"] == name]
        summary.append(
            {
                "method": name,
                "mae": round(sum(r["mae"] for r in group) / len(group), 4),
                "band_mae": round(sum(r["band_mae"] for r in group) / len(group), 4),
                "seconds": spread([r["seconds"] for r in group]),
            }
        )
    return summary


def fill_table(result: dict[str, Any]) -> str:
    def table(summary: list[dict[str, Any]]) -> str:
        return render_table(
            ["method", "MAE", "edge-band MAE", "s per scene (median, min–max)"],
            ([s["method"], s["mae"], s["band_mae"], fmt_spread(s["seconds"])] for s in summary),
        )

    width, height = result["peer_size"]
    peers = f"\nwith the patch-based peers, at {width}×{height}:\n"
    return table(result["summary"]) + peers + table(result["peer_summary"])


REGISTRY: dict[str, Suite] = {
    "layers": Suite(run_layers, layers_table),
    "quality": Suite(run_quality, quality_table),
    "stereo": Suite(run_stereo, stereo_table),
    "daemon": Suite(run_daemon, daemon_table),
    "painterly": Suite(run_painterly, painterly_table),
    "depth": Suite(run_depth, depth_table),
    "fill": Suite(run_fill, fill_table),
    "redis": Suite(run_redis, daemon_table),
}


# --- running -----------------------------------------------------------------------------------


def build_models(suites: list[str], *, smoke: bool) -> dict[str, float]:
    """Build the random-weight depth models the suites need, once; seconds per build."""
    needed: list[str] = []
    if smoke:
        needed += ["tiny"] if {"layers", "daemon"} & set(suites) else []
        needed += ["small"] if "depth" in suites else []
    else:
        needed += ["small"] if {"layers", "daemon", "depth"} & set(suites) else []
        needed += ["base"] if "layers" in suites else []
    seconds = {}
    for kind in needed:
        started = time.perf_counter()
        depth_model(kind)
        seconds[f"depth-{kind}"] = round(time.perf_counter() - started, 1)
    if smoke and "painterly" in suites:
        started = time.perf_counter()
        tiny_painterly()
        seconds["painterly-tiny"] = round(time.perf_counter() - started, 1)
    return seconds


def run_suite(name: str, *, repeats: int, smoke: bool) -> dict[str, Any]:
    """One suite, timed, with the load average while it ran; errors are recorded."""
    print(f"\n== {name} ({command_for(name, repeats=repeats, smoke=smoke)})", flush=True)
    entry: dict[str, Any] = {
        "command": command_for(name, repeats=repeats, smoke=smoke),
        "repeats": repeats,
        "smoke": smoke,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    started = time.perf_counter()
    with LoadSampler() as load:
        try:
            entry["result"] = REGISTRY[name].run(repeats, smoke)
            entry["error"] = None
        except Exception as error:  # a suite's failure is reported, the others still run
            entry["result"] = None
            entry["error"] = "".join(traceback.format_exception_only(error)).strip()
            traceback.print_exc()
    entry["elapsed_s"] = round(time.perf_counter() - started, 1)
    entry["load_average"] = load.summary()
    if entry["result"] is not None:
        print(REGISTRY[name].table(entry["result"]))
    print(
        f"({entry['elapsed_s']} s, load average {entry['load_average']['mean']} mean, "
        f"{entry['load_average']['max']} max)",
        flush=True,
    )
    return entry


def run_all(args: argparse.Namespace) -> int:
    results: dict[str, Any] = {"suites": {}}
    if args.merge and args.json_out.is_file():
        results = json.loads(args.json_out.read_text(encoding="utf-8"))
    started = time.perf_counter()
    results["environment"] = environment()
    results["harness"] = {"argv": sys.argv[1:], "smoke": args.smoke, "repeats": args.repeats}
    with LoadSampler() as load:
        results["model_build_s"] = build_models(args.suite, smoke=args.smoke)
        for name in args.suite:
            results["suites"][name] = run_suite(name, repeats=args.repeats, smoke=args.smoke)
            write_json(args.json_out, results)  # a later failure keeps what was measured
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    results["load_average"] = load.summary()
    write_json(args.json_out, results)
    failed = [n for n in args.suite if results["suites"][n]["error"]]
    print(
        f"\nwrote {args.json_out} in {results['elapsed_s']} s"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logger.remove()  # the pipeline's per-job DEBUG lines would bury the tables
    logger.add(sys.stderr, level="WARNING")
    if args.child:
        kind, spec = args.child
        if kind != "painterly":
            raise SystemExit(f"unknown child {kind}")
        painterly_child(json.loads(spec))
        return 0
    if args.report:
        from bench.charts import write_report

        written = write_report(
            json.loads(args.report.read_text(encoding="utf-8")), docs=args.docs, source=args.report
        )
        print("\n".join(f"wrote {path}" for path in written))
        return 0
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
