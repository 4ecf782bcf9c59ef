"""The benchmark harness's pure parts: arguments, tables, JSON, baselines, the report.

Nothing here runs a suite: ``python -m bench --smoke`` (CI) does that end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import quality
from bench.__main__ import SUITES, command_for, parse_args
from bench.charts import render_page, targets, write_report
from bench.harness import (
    LoadSampler,
    environment,
    fmt_spread,
    markdown_table,
    peak_rss_bytes,
    render_table,
    spread,
    write_json,
)
from bench.metrics import score
from bench.scenes import make_scene
from pipeline.layers import Layer

# --- arguments ---------------------------------------------------------------------------------


def test_defaults_run_every_suite_three_times_into_latest_json() -> None:
    args = parse_args([])
    assert args.suite == list(SUITES)
    assert args.repeats == 3
    assert not args.smoke
    assert args.json_out.name == "latest.json"
    assert args.report is None


def test_smoke_defaults_to_one_repeat_and_its_own_file() -> None:
    args = parse_args(["--smoke"])
    assert args.repeats == 1
    assert args.json_out.name == "smoke.json"


def test_suites_are_comma_separated_in_order_without_repeats(tmp_path: Path) -> None:
    args = parse_args(
        [
            "--suite",
            "quality, layers,quality",
            "--repeats",
            "5",
            "--json-out",
            str(tmp_path / "x.json"),
        ]
    )
    assert args.suite == ["quality", "layers"]
    assert args.repeats == 5
    assert args.json_out == tmp_path / "x.json"
    assert parse_args(["--suite", "all"]).suite == list(SUITES)


@pytest.mark.parametrize("argv", [["--suite", "nope"], ["--suite", ","], ["--repeats", "0"]])
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_each_suite_names_the_command_that_reproduces_it() -> None:
    assert command_for("layers", repeats=3, smoke=False) == (
        "python -m bench --suite layers --repeats 3"
    )
    assert command_for("fill", repeats=1, smoke=True).endswith("--smoke")


# --- tables and JSON ---------------------------------------------------------------------------


def test_spread_is_median_min_max() -> None:
    entry = spread([3.0, 1.0, 2.0, 10.0])
    assert entry == {"median": 2.5, "min": 1.0, "max": 10.0, "n": 4}
    assert fmt_spread(entry, " s") == "2.5 s (1.0–10.0)"
    assert fmt_spread(spread([0.5]), " s") == "0.5 s"
    with pytest.raises(ValueError, match="no values"):
        spread([])


def test_a_child_s_peak_rss_is_its_own_not_its_large_parent_s() -> None:
    """A suite's cases run in children of a process that has built big photos."""
    ballast = np.ones(400 * 1024**2, np.uint8)  # 400 MiB resident in this process
    child = subprocess.run(
        [sys.executable, "-c", "from bench.harness import peak_rss_bytes; print(peak_rss_bytes())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert peak_rss_bytes() >= ballast.nbytes
    assert int(child.stdout) < 200 * 1024**2


def test_text_table_aligns_columns() -> None:
    text = render_table(["name", "value"], [["a", 1], ["longer", 22.5]])
    lines = text.splitlines()
    assert lines[0].split() == ["name", "value"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[3].startswith("longer  22.5")
    assert lines[2].index("1") == lines[3].index("22.5")


def test_markdown_table_escapes_pipes() -> None:
    text = markdown_table(["a", "b"], [["x|y", 2]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 2 |"]


def test_json_is_written_atomically_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "results.json"
    write_json(path, {"a": [1, 2.5], "b": None})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": [1, 2.5], "b": None}
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]


def test_environment_names_the_machine_and_versions() -> None:
    env = environment()
    assert env["cores"] >= 1
    assert {"python", "torch", "numpy", "opencv"} <= set(env["versions"])
    with LoadSampler(interval=0.01) as load:
        pass
    assert set(load.summary()) == {"start", "mean", "max", "end"}


# --- baselines ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_scene() -> Any:
    return make_scene(num_surfaces=3, seed=0, width=192, height=144)


def check_stack(layers: list[Layer], shape: tuple[int, int], count: int) -> None:
    assert 2 <= len(layers) <= count  # Strata drops a layer that edges and speckles emptied
    assert all(layer.alpha.any() for layer in layers), "no layer is empty"
    for layer in layers:
        assert layer.rgb.shape == (*shape, 3)
        assert layer.rgb.dtype == np.float32
        assert layer.alpha.shape == shape
        assert layer.filled.shape == shape
        assert layer.filled.dtype == bool
        assert np.isfinite(layer.rgb).all()
        assert layer.alpha.min() >= 0.0
        assert layer.alpha.max() <= 1.0
    assert (layers[0].alpha == 1.0).all(), "the background is opaque for every method"


@pytest.mark.parametrize("method", list(quality.METHODS))
@pytest.mark.parametrize("depth", quality.DEPTHS)
def test_every_method_gives_a_valid_stack_that_scores(
    small_scene: Any, method: str, depth: str
) -> None:
    image = quality.scene_image(small_scene)
    made = quality.METHODS[method](image, quality.depth_for(small_scene, depth, seed=0), 3)
    layers = made.layers
    assert len(made.parallax) == len(layers)
    assert made.parallax[0] == 0.0
    assert made.parallax[-1] == 1.0
    check_stack(layers, small_scene.nearness.shape, 3)
    scores = score(layers, small_scene, parallax=made.parallax, count=3)
    assert len(scores.ious) == 3
    assert all(0.0 <= v <= 1.0 for v in scores.ious)
    assert scores.background_opaque
    assert scores.psnr > 25.0
    assert 0.0 <= scores.reveal.fill_error < 0.5
    assert scores.reveal.fill_pixels > 0
    if method == "strata" and depth == "exact":
        assert scores.min_iou >= 0.97


def test_hard_masks_recompose_exactly_and_feathering_does_not(small_scene: Any) -> None:
    image = quality.scene_image(small_scene)
    depth = quality.depth_for(small_scene, "exact", seed=0)
    hard_stack = quality.quantile_telea(image, depth, 3)
    soft_stack = quality.bins_feather(image, depth, 3)
    hard = score(hard_stack.layers, small_scene, parallax=hard_stack.parallax)
    soft = score(soft_stack.layers, small_scene, parallax=soft_stack.parallax)
    assert hard.psnr == 99.0
    assert soft.psnr < 45.0


def test_quantile_labels_split_pixels_evenly_and_bins_split_the_range() -> None:
    nearness = np.linspace(0.0, 1.0, 1200, dtype=np.float32).reshape(30, 40) ** 3
    counts = np.bincount(quality.quantile_labels(nearness, 4).ravel())[1:]
    assert counts.tolist() == [300, 300, 300, 300]
    uniform = quality.uniform_labels(nearness, 4)
    assert uniform.min() == 1
    assert uniform.max() == 4
    assert np.bincount(uniform.ravel())[1] > 600  # cubed: most pixels are far


def test_summary_groups_rows_by_method_and_depth() -> None:
    case = quality.Case("blobs", 0, (0, 1))  # 3 surfaces, run with 3 and 4 layers
    rows = quality.run_case(case, methods={"bins+feather": quality.bins_feather})
    assert [(r["depth"], r["count"], r["true_count"]) for r in rows] == [
        ("exact", 3, True),
        ("exact", 4, False),
        ("model-like", 3, True),
        ("model-like", 4, False),
    ]
    summary = quality.summarise(rows)
    assert [(s["method"], s["depth"]) for s in summary] == [
        ("bins+feather", "exact"),
        ("bins+feather", "model-like"),
    ]
    assert summary[0]["min_iou"] == rows[0]["min_iou"]  # the true count's only
    assert summary[0]["min_iou_other_counts"] == rows[1]["min_iou"]
    pixels = rows[0]["fill_pixels"] + rows[1]["fill_pixels"]
    weighted = (
        rows[0]["fill_error"] * rows[0]["fill_pixels"]
        + rows[1]["fill_error"] * rows[1]["fill_pixels"]
    ) / pixels
    assert summary[0]["fill_error"] == pytest.approx(weighted, abs=1e-3)
    families = quality.summarise(rows, by_family=True)
    assert {s["family"] for s in families} == {"blobs"}
    lines = quality.targets(summary)
    assert all(line["met"] is None for line in lines if "strata" in line["target"])
    text = quality.table({"summary": summary, "families": families, "targets": lines})
    assert "min IoU" in text
    assert "not measured" in text


def test_targets_compare_strata_with_telea_on_ratios() -> None:
    def line(method: str, depth: str, iou: float, ghost: float, fill: float) -> dict[str, Any]:
        return {
            "method": method,
            "depth": depth,
            "min_iou": iou,
            "ghost_error": ghost,
            "fill_error": fill,
            "background_opaque": True,
            "min_psnr_db": 50.0,
        }

    summary = [
        line("strata", "exact", 0.99, 4.0, 9.0),
        line("strata+telea", "exact", 0.99, 5.0, 10.0),
        line("strata", "model-like", 0.85, 8.0, 10.0),
        line("strata+telea", "model-like", 0.85, 5.0, 10.0),
    ]
    met = {t["target"]: t["met"] for t in quality.targets(summary)}
    assert met["min per-layer IoU ≥ 0.98 (exact, true count)"] is True
    assert met["min per-layer IoU ≥ 0.9 (model-like, true count)"] is False
    assert met["reveal ghost/halo error ≤ 0.8 × strata+telea's (exact)"] is True
    assert met["reveal fill error ≤ 0.9 × strata+telea's (exact)"] is True
    assert met["reveal ghost/halo error ≤ 0.8 × strata+telea's (model-like)"] is False
    assert met["reveal fill error ≤ 0.9 × strata+telea's (model-like)"] is False
    assert met["recomposition ≥ 45.0 dB (strata, every run)"] is True


# --- the report --------------------------------------------------------------------------------


def fake_results() -> dict[str, Any]:
    quality_summary = [
        {
            "method": m,
            "depth": d,
            "scenes": 2,
            "runs": 3,
            "min_iou": iou,
            "mean_iou": iou,
            "min_iou_other_counts": iou,
            "min_part_iou": None,
            "min_psnr_db": 50.0,
            "mean_psnr_db": 50.0,
            "background_opaque": True,
            "ghost_error": err,
            "fill_error": err,
            "view_error": err,
            "parallax_holes": 0,
            "seconds_median": 0.1,
        }
        for m, iou, err in (("strata", 0.99, 3.0), ("strata+telea", 0.99, 5.0))
        for d in ("exact", "model-like")
    ]
    case = {
        "case": "12MP default",
        "target": "",
        "total_s": 2.5,
        "min_s": 2.4,
        "max_s": 2.7,
        "stages_s": {
            "decode": 0.5,
            "depth": 0.1,
            "layers": 1.0,
            "fill": 0.4,
            "write": 0.5,
            "total": 2.5,
        },
        "peak_rss_gb": 1.2,
    }
    load = {"start": 1.0, "mean": 1.5, "max": 2.0, "end": 1.0}
    return {
        "environment": environment(),
        "harness": {"repeats": 3},
        "load_average": load,
        "suites": {
            "layers": {
                "command": "python -m bench --suite layers",
                "elapsed_s": 9.0,
                "load_average": load,
                "error": None,
                "result": {"cases": [case]},
            },
            "quality": {
                "command": "python -m bench --suite quality",
                "elapsed_s": 9.0,
                "load_average": load,
                "error": None,
                "result": {
                    "summary": quality_summary,
                    "families": [{"family": "floor", **s} for s in quality_summary],
                    "targets": quality.targets(quality_summary),
                    "scenes": ["blobs/0", "floor/0"],
                    "size": [384, 288],
                    "depths": ["exact", "model-like"],
                    "methods": {"strata": "ours"},
                },
            },
            "daemon": {
                "command": "python -m bench --suite daemon",
                "elapsed_s": 9.0,
                "load_average": load,
                "error": "RuntimeError: boom",
                "result": None,
            },
        },
    }


def test_targets_compare_measured_figures_with_the_issues() -> None:
    found = {target: met for _suite, target, _measured, met in targets(fake_results())}
    assert found["12 MP, default max_side: job ≤ 3 s"] is True
    assert found["12 MP, full max_side: job ≤ 8 s, peak RSS ≤ 3 GB"] is None
    assert found["min per-layer IoU ≥ 0.98 (exact, true count)"] is True
    assert found["reveal ghost/halo error ≤ 0.8 × strata+telea's (model-like)"] is True
    assert found["reveal fill error ≤ 0.9 × strata+telea's (model-like)"] is True


def test_report_writes_the_page_and_charts(tmp_path: Path) -> None:
    docs = tmp_path / "docs" / "benchmarks.md"
    written = write_report(fake_results(), docs=docs, source="latest.json")
    names = sorted(p.name for p in written)
    assert names == ["bench-layers.png", "bench-quality.png", "benchmarks.md"]
    page = docs.read_text(encoding="utf-8")
    assert "## Targets vs measured" in page
    assert "![" in page
    assert "images/bench-quality.png" in page
    assert "Per family:" in page
    assert "**Failed:** `RuntimeError: boom`" in page
    assert "python -m bench --report latest.json" in page
    for image in ("bench-layers.png", "bench-quality.png"):
        assert (docs.parent / "images" / image).read_bytes()[:4] == b"\x89PNG"


def test_page_says_not_measured_for_missing_suites() -> None:
    page = render_page(fake_results(), source="x.json", images={})
    assert "## Painterly" in page
    assert "Not measured in this run." in page


# --- failures are findings -------------------------------------------------------------------


def test_a_failing_layers_case_is_recorded_and_the_others_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench import __main__ as harness
    from bench import layers

    def fake_case(case: Any, *, repeats: int) -> dict[str, Any]:
        if case.model:
            raise RuntimeError(f"{case.name} failed:\ntraceback\ncv2.error: boom")
        return {
            "case": case.name,
            "target": case.target,
            "total_s": 1.0,
            "min_s": 1.0,
            "max_s": 1.0,
            "stages_s": {"decode": 1.0},
            "peak_rss_gb": 0.1,
        }

    monkeypatch.setattr(layers, "run_case", fake_case)
    result = harness.run_layers(1, True)
    assert [c.get("error") for c in result["cases"]] == [None, "cv2.error: boom"]
    assert "FAILED" in harness.layers_table(result)
    found = {t: (m, ok) for _s, t, m, ok in targets({"suites": {"layers": {"result": result}}})}
    assert found["12 MP, default max_side: job ≤ 3 s"] == ("not measured", None)


def test_a_failing_suite_is_recorded_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import __main__ as harness

    def broken(repeats: int, smoke: bool) -> dict[str, Any]:
        raise ValueError("nothing to measure")

    monkeypatch.setitem(harness.REGISTRY, "fill", harness.Suite(broken, harness.fill_table))
    entry = harness.run_suite("fill", repeats=1, smoke=True)
    assert entry["result"] is None
    assert entry["error"] == "ValueError: nothing to measure"
    assert set(entry["load_average"]) == {"start", "mean", "max", "end"}
