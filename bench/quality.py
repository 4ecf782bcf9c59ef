"""Layer quality on synthetic scenes: Strata against peer baselines, with the issue's targets.

    python -m bench.quality [--smoke] [--json] [--look DIR]

Scenes come from :mod:`bench.scenes` (every family: blobs, floor, wall, small, close,
camouflage; :data:`CASES` lists the seeds) and each is layered from two depth maps: the
exact full-resolution nearness, and ``model-like`` depth (:func:`bench.scenes.degrade_depth`:
edges bled and displaced by several pixels, quarter resolution, blur, noise). Every scene
is layered with its true surface count as the layer count, and some also with one layer
more and one fewer (:data:`CASES`). Every method gets the same 8-bit image and the same
depth (``nearness_from_raw`` at the canvas size) and returns
:class:`pipeline.layers.Layer` objects, so :func:`bench.metrics.score` applies unchanged.

- ``strata``: ``pipeline.stack.build_stack`` with the built-in fill, exactly as a job
  runs it.
- ``strata+telea``: Strata's segmentation and layer assembly with OpenCV's Telea
  (``cv2.INPAINT_TELEA``, radius 5) as the fill function: the same labels and alphas, so
  it is scored on Strata's own reveal regions and isolates the fill (the targets' Telea).
- ``quantile+telea``: cuts at equal-count depth quantiles, hard 0/1 masks, Telea behind
  nearer layers: the whole background, each middle layer within Strata's parallax margin.
- ``bins+feather``: uniform depth bins over the depth range, each layer's mask feathered
  by a Gaussian (σ = 2 px per 384 px of width); the background Telea-filled behind the
  nearer layers; middle layers get no fill (colour outside their own pixels is the photo's).

The metrics are :mod:`bench.metrics`' (surface IoU with its merge rule, part IoU, reveal
ghost/halo and fill errors, view error, holes, recomposition PSNR, background opaque);
errors are printed and stored as mean absolute error in 8-bit levels (0–255).

Summary rows (per method and depth kind, and per family) and the targets:

- **min IoU** is the worst surface IoU over the scenes layered with their *true* surface
  count (the figure the issue's ≥ 0.98 exact / ≥ 0.90 model-like targets are about);
  ``min IoU ±1`` is the worst over the runs with one layer more or fewer (same metric,
  merged truth when fewer); ``min part IoU`` the worst thin part or small object, all runs.
- **ghost** and **fill** errors are pixel-weighted means over every run's uncovered
  pixels (each pixel of each scene counts once); the targets compare Strata's with
  ``strata+telea``'s on the same pixels: ghost/halo ≤ 0.8×, fill ≤ 0.9×.
- **opaque**: Strata's background is alpha 255 everywhere in every run; **PSNR** the
  worst recomposition over every run (target ≥ 45 dB); **holes** summed over every run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.harness import render_table
from bench.metrics import Regions, Scores, layer_of_surface, score, true_view, visible_weights
from bench.scenes import WIDTH, Scene, degrade_depth, make
from config.model import DepthMapKind
from pipeline.cuts import layer_parallax
from pipeline.depth import DepthEstimate, nearness_from_raw
from pipeline.edges import soft_alpha
from pipeline.fill import fill_hidden
from pipeline.layers import FillFunction, Layer, build_layers
from pipeline.preview import PARALLAX_AMPLITUDE, fill_margins, shift_composite
from pipeline.stack import build_stack

TELEA_RADIUS = 5
FEATHER_SIGMA = 2.0  # pixels at REFERENCE_WIDTH
REFERENCE_WIDTH = WIDTH
DEPTHS = ("exact", "model-like")
LEVELS = 255.0
"""Errors are reported in 8-bit levels."""
IOU_TARGETS = {"exact": 0.98, "model-like": 0.90}
GHOST_RATIO, FILL_RATIO, PSNR_TARGET = 0.8, 0.9, 45.0


@dataclass(frozen=True)
class Case:
    """One scene of the bench and the layer counts it is run with, as offsets from its
    surface count (0 = the true count)."""

    family: str
    seed: int
    offsets: tuple[int, ...] = (0,)


CASES = [
    Case("blobs", 0, (0, 1)),  # 3 surfaces (blobs' evenly spaced levels have no unique merge)
    Case("blobs", 1),  # 4
    Case("blobs", 2),  # 5
    Case("floor", 0, (0, 1, -1)),
    Case("floor", 1),
    Case("floor", 2),
    Case("wall", 0, (0, 1, -1)),
    Case("wall", 1),
    Case("small", 0, (0, -1)),  # 5 surfaces: no sixth layer to ask for
    Case("small", 1),
    Case("close", 0, (0, 1, -1)),
    Case("close", 1),
    Case("camouflage", 0, (0, -1)),
    Case("camouflage", 1),
]
SMOKE_CASES = [Case("floor", 0)]
MIN_LAYERS, MAX_LAYERS = 2, 5


@dataclass(frozen=True)
class Made:
    """A method's stack: its layers, farthest first, and each layer's parallax (the share
    of the foreground's shift it moves by in the preview: 0 background … 1 foreground)."""

    layers: list[Layer]
    parallax: list[float]


Method = Callable[[np.ndarray, DepthEstimate, int], Made]
"""``method(image, depth, count) -> stack``."""


# --- inputs ------------------------------------------------------------------------------------


def scene_image(scene: Scene) -> np.ndarray:
    """The scene as an 8-bit photo would decode."""
    image: np.ndarray = np.round(scene.image * 255.0).astype(np.float32) / 255.0
    return image


def depth_for(scene: Scene, kind: str, *, seed: int) -> DepthEstimate:
    """The exact nearness, or ``model-like`` depth (:func:`bench.scenes.degrade_depth`)."""
    if kind not in DEPTHS:
        raise ValueError(f"unknown depth kind {kind!r}: one of {', '.join(DEPTHS)}")
    raw = degrade_depth(scene.nearness, seed=seed) if kind == "model-like" else scene.nearness
    return DepthEstimate(
        nearness=nearness_from_raw(raw, kind=DepthMapKind.DISPARITY, canvas_size=scene.size),
        native_size=(raw.shape[1], raw.shape[0]),
        source="file",
        model=None,
    )


# --- the methods -------------------------------------------------------------------------------


def strata(image: np.ndarray, depth: DepthEstimate, count: int) -> Made:
    return strata_layers(image, depth, count, fill=builtin_fill)


def strata_telea(image: np.ndarray, depth: DepthEstimate, count: int) -> Made:
    return strata_layers(image, depth, count, fill=telea_fill)


def builtin_fill(image: np.ndarray, known: np.ndarray, region: np.ndarray | None) -> np.ndarray:
    """The job's built-in fill as a :data:`pipeline.layers.FillFunction`."""
    return fill_hidden(image, known, region=region)


def strata_layers(
    image: np.ndarray, depth: DepthEstimate, count: int, *, fill: FillFunction
) -> Made:
    """Strata's segmentation and layers (as a job builds them) with the given fill."""
    stack = build_stack(image, depth, num_layers=count, fill=fill)
    return Made(stack.layers, stack.parallax)


def assemble(
    image: np.ndarray, labels: np.ndarray, *, nearness: np.ndarray, fill: FillFunction
) -> Made:
    """Strata's layer assembly (parallax, soft edges, fill, unmixing) from any label map
    (1 = background … N): how the tests feed a wrong label map through the job's code."""
    count = int(labels.max())
    parallax = layer_parallax(nearness, labels, num_layers=count)
    alphas = soft_alpha(image, labels, num_layers=count)
    margins = fill_margins(parallax, image.shape[1])
    return Made(build_layers(image, labels, alphas, fill=fill, margins=margins), parallax)


def band_labels(shape: tuple[int, int], count: int) -> np.ndarray:
    """A nonsense label map: ``count`` vertical bands, 1 at the left."""
    columns = np.arange(shape[1]) * count // shape[1] + 1
    labels: np.ndarray = np.broadcast_to(columns, shape).astype(np.uint8)
    return labels


def telea_fill(image: np.ndarray, known: np.ndarray, region: np.ndarray | None) -> np.ndarray:
    """Telea as a :data:`pipeline.layers.FillFunction`: only ``region & ~known`` changes."""
    painted = telea(image, known)
    if region is None:
        return painted
    result = image.copy()
    target = region & ~known
    result[target] = painted[target]
    return result


def telea(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Every pixel outside ``known`` inpainted by OpenCV's Telea (on 8 bits, as it needs)."""
    u8 = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
    painted = cv2.inpaint(u8, (~known).astype(np.uint8), TELEA_RADIUS, cv2.INPAINT_TELEA)
    result = image.copy()
    result[~known] = painted[~known].astype(np.float32) / 255.0
    return result


def quantile_labels(nearness: np.ndarray, count: int) -> np.ndarray:
    """Labels 1 (farthest) … ``count`` (nearest) at equal-count quantiles of the depth."""
    cuts = np.quantile(nearness, np.arange(1, count) / count)
    labels: np.ndarray = np.digitize(nearness, cuts).astype(np.int32) + 1
    return labels


def uniform_labels(nearness: np.ndarray, count: int) -> np.ndarray:
    """Labels 1 … ``count`` in equal-width bins between the depth's min and max."""
    low, high = float(nearness.min()), float(nearness.max())
    cuts = np.linspace(low, high, count + 1)[1:-1]
    labels: np.ndarray = np.digitize(nearness, cuts).astype(np.int32) + 1
    return labels


def _within(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Pixels within ``pixels`` (Euclidean) of ``mask``."""
    if pixels <= 0:
        return mask.copy()
    distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    within: np.ndarray = distance <= pixels
    return within


def quantile_telea(image: np.ndarray, depth: DepthEstimate, count: int) -> Made:
    """Equal-count depth quantiles, hard masks, Telea behind nearer layers (as far as a
    job's rule says each layer's parallax reaches)."""
    labels = quantile_labels(depth.nearness, count)
    parallax = layer_parallax(depth.nearness, labels, num_layers=count)
    margins = fill_margins(parallax, image.shape[1])
    layers = []
    for k in range(1, count + 1):
        own = labels == k
        nearer = labels > k
        behind = nearer if k == 1 else nearer & _within(own, margins[k - 1])
        rgb = telea(image, own) if behind.any() else image.copy()
        rgb[~(own | behind)] = 0.0
        alpha = np.ones(own.shape, np.float32) if k == 1 else (own | behind).astype(np.float32)
        layers.append(Layer(rgb=rgb.astype(np.float32), alpha=alpha, filled=behind))
    return Made(layers, parallax)


def bins_feather(image: np.ndarray, depth: DepthEstimate, count: int) -> Made:
    """Uniform depth bins, Gaussian-feathered masks; Telea under the background only."""
    labels = uniform_labels(depth.nearness, count)
    parallax = layer_parallax(depth.nearness, labels, num_layers=count)
    sigma = FEATHER_SIGMA * image.shape[1] / REFERENCE_WIDTH
    layers = []
    for k in range(1, count + 1):
        own = labels == k
        if k == 1:
            behind = ~own
            rgb = telea(image, own) if behind.any() else image.copy()
            alpha = np.ones(own.shape, np.float32)
        else:
            behind = np.zeros(own.shape, bool)
            rgb = image.copy()
            alpha = np.clip(cv2.GaussianBlur(own.astype(np.float32), (0, 0), sigma), 0.0, 1.0)
        layers.append(Layer(rgb=rgb.astype(np.float32), alpha=alpha, filled=behind))
    return Made(layers, parallax)


METHODS: dict[str, Method] = {
    "strata": strata,
    "strata+telea": strata_telea,
    "quantile+telea": quantile_telea,
    "bins+feather": bins_feather,
}
METHOD_NOTES = {
    "strata": "build_stack + built-in fill (as a job runs)",
    "strata+telea": "Strata's segmentation and layers, Telea r=5 as the fill (scored on "
    "Strata's reveal regions)",
    "quantile+telea": "equal-count depth quantiles, hard masks, Telea r=5 behind nearer layers",
    "bins+feather": "uniform depth bins, Gaussian-feathered masks (σ 2 px @ 384 px), "
    "Telea r=5 under the background only, no fill in middle layers",
}
SAME_REGIONS = {"strata+telea": "strata"}
"""A method scored on another's reveal regions (same labels and alphas, other fill)."""


# --- running -----------------------------------------------------------------------------------


def counts_for(case: Case, surfaces: int) -> list[int]:
    """The layer counts ``case`` runs with, within what a job accepts."""
    counts = [surfaces + offset for offset in case.offsets]
    return [c for c in counts if MIN_LAYERS <= c <= MAX_LAYERS]


def run_case(case: Case, *, methods: dict[str, Method] | None = None) -> list[dict[str, Any]]:
    """Every method on one scene, from both depth kinds, at each of its layer counts."""
    scene = make(case.family, seed=case.seed)
    image = scene_image(scene)
    rows = []
    for kind in DEPTHS:
        depth = depth_for(scene, kind, seed=case.seed)
        for count in counts_for(case, len(scene.surfaces)):
            regions: dict[str, Regions] = {}
            for name, method in (methods or METHODS).items():
                started = time.perf_counter()
                made = method(image, depth, count)
                seconds = time.perf_counter() - started
                shared = regions.get(SAME_REGIONS.get(name, ""))
                scores = score(
                    made.layers, scene, parallax=made.parallax, count=count, regions=shared
                )
                regions[name] = scores.reveal.regions
                rows.append(
                    _row(
                        name,
                        depth=kind,
                        scene=scene,
                        count=count,
                        layers=made.layers,
                        scores=scores,
                        seconds=seconds,
                    )
                )
    return rows


def _row(
    method: str,
    *,
    depth: str,
    scene: Scene,
    count: int,
    layers: list[Layer],
    scores: Scores,
    seconds: float,
) -> dict[str, Any]:
    reveal = scores.reveal
    return {
        "method": method,
        "depth": depth,
        "family": scene.family,
        "scene": scene.name,
        "surfaces": len(scene.surfaces),
        "count": count,
        "layers": len(layers),
        "true_count": count == len(scene.surfaces),
        "ious": [round(v, 4) for v in scores.ious],
        "min_iou": round(scores.min_iou, 4),
        "parts": [[name, round(v, 4)] for name, v in scores.parts],
        "min_part_iou": None if scores.min_part_iou is None else round(scores.min_part_iou, 4),
        "psnr_db": round(scores.psnr, 2),
        "background_opaque": scores.background_opaque,
        "ghost_error": round(reveal.ghost_error * LEVELS, 3),
        "ghost_pixels": reveal.ghost_pixels,
        "fill_error": round(reveal.fill_error * LEVELS, 3),
        "fill_pixels": reveal.fill_pixels,
        "view_error": round(reveal.view_error * LEVELS, 3),
        "parallax_holes": reveal.holes,
        "seconds": round(seconds, 3),
    }


def _weighted(rows: list[dict[str, Any]], key: str) -> float:
    """Pixel-weighted mean of an error over rows (each uncovered pixel counts once)."""
    pixels = sum(r[key.replace("error", "pixels")] for r in rows)
    total = sum(r[key] * r[key.replace("error", "pixels")] for r in rows)
    return round(total / pixels, 3) if pixels else 0.0


def _summary(group: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary figures of a group of rows (see the module docstring)."""
    true = [r for r in group if r["true_count"]]
    other = [r for r in group if not r["true_count"]]
    parts = [r["min_part_iou"] for r in group if r["min_part_iou"] is not None]
    return {
        "scenes": len({r["scene"] for r in group}),
        "runs": len(group),
        "min_iou": min(r["min_iou"] for r in true) if true else None,
        "mean_iou": round(statistics.fmean(v for r in true for v in r["ious"]), 4)
        if true
        else None,
        "min_iou_other_counts": min(r["min_iou"] for r in other) if other else None,
        "min_part_iou": min(parts) if parts else None,
        "min_psnr_db": min(r["psnr_db"] for r in group),
        "mean_psnr_db": round(statistics.fmean(r["psnr_db"] for r in group), 2),
        "background_opaque": all(r["background_opaque"] for r in group),
        "ghost_error": _weighted(group, "ghost_error"),
        "fill_error": _weighted(group, "fill_error"),
        "view_error": round(statistics.fmean(r["view_error"] for r in group), 3),
        "parallax_holes": sum(r["parallax_holes"] for r in group),
        "seconds_median": round(statistics.median(r["seconds"] for r in group), 3),
    }


def summarise(rows: list[dict[str, Any]], *, by_family: bool = False) -> list[dict[str, Any]]:
    """One line per method and depth kind (and family, with ``by_family``)."""
    families = list(dict.fromkeys(r["family"] for r in rows)) if by_family else [None]
    lines = []
    for family in families:
        for method in dict.fromkeys(r["method"] for r in rows):
            for depth in DEPTHS:
                group = [
                    r
                    for r in rows
                    if r["method"] == method
                    and r["depth"] == depth
                    and family in (None, r["family"])
                ]
                if group:
                    head = {"family": family} if by_family else {}
                    lines.append({**head, "method": method, "depth": depth, **_summary(group)})
    return lines


def targets(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's figures: one line each, ``met`` None where not measured."""
    lookup = {(s["method"], s["depth"]): s for s in summary}
    lines: list[dict[str, Any]] = []
    for depth in DEPTHS:
        ours, telea_ = lookup.get(("strata", depth)), lookup.get(("strata+telea", depth))
        floor = IOU_TARGETS[depth]
        iou = ours["min_iou"] if ours else None
        lines.append(_target(f"min per-layer IoU ≥ {floor} ({depth}, true count)", iou, floor))
        for key, ratio, label in (
            ("ghost_error", GHOST_RATIO, "reveal ghost/halo error"),
            ("fill_error", FILL_RATIO, "reveal fill error"),
        ):
            text = f"{label} ≤ {ratio} × strata+telea's ({depth})"
            if ours and telea_:
                mine, theirs = ours[key], telea_[key]
                value = round(mine / theirs, 3) if theirs else None
                measured = f"{mine} vs {theirs} = {value}×"
                met = value is not None and value <= ratio
                lines.append({"target": text, "measured": measured, "met": met})
            else:
                lines.append({"target": text, "measured": "not measured", "met": None})
    both = [lookup[("strata", d)] for d in DEPTHS if ("strata", d) in lookup]
    opaque = all(s["background_opaque"] for s in both) if both else None
    lines.append(
        {
            "target": "background opaque (strata, every run)",
            "measured": "not measured" if opaque is None else ("yes" if opaque else "no"),
            "met": opaque,
        }
    )
    worst = min(s["min_psnr_db"] for s in both) if both else None
    lines.append(
        _target(f"recomposition ≥ {PSNR_TARGET} dB (strata, every run)", worst, PSNR_TARGET)
    )
    return lines


def _target(text: str, value: float | None, floor: float) -> dict[str, Any]:
    if value is None:
        return {"target": text, "measured": "not measured", "met": None}
    return {"target": text, "measured": f"{value}", "met": value >= floor}


def run(
    *, smoke: bool = False, repeats: int = 1, methods: dict[str, Method] | None = None
) -> dict[str, Any]:
    """Every case with every method, or ``methods`` (``repeats`` does not apply: the
    scores are deterministic)."""
    del repeats
    cases = SMOKE_CASES if smoke else CASES
    rows = [row for case in cases for row in run_case(case, methods=methods)]
    summary = summarise(rows)
    return {
        "scenes": [f"{c.family}/{c.seed}" for c in cases],
        "size": list(make(cases[0].family, seed=cases[0].seed).size),
        "depths": list(DEPTHS),
        "methods": METHOD_NOTES,
        "summary": summary,
        "families": summarise(rows, by_family=True),
        "targets": targets(summary),
        "rows": rows,
    }


# --- printing ----------------------------------------------------------------------------------

COLUMNS = [
    ("min IoU", "min_iou"),
    ("mean IoU", "mean_iou"),
    ("min IoU ±1", "min_iou_other_counts"),
    ("min part IoU", "min_part_iou"),
    ("min PSNR", "min_psnr_db"),
    ("ghost", "ghost_error"),
    ("fill", "fill_error"),
    ("view", "view_error"),
    ("holes", "parallax_holes"),
    ("opaque", "background_opaque"),
    ("s/run", "seconds_median"),
]


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return "—" if value is None else value


def table(result: dict[str, Any]) -> str:
    """The summary, the per-family lines and the targets, as text."""
    head = ["method", "depth", *(name for name, _ in COLUMNS)]
    summary = render_table(
        head,
        (
            [s["method"], s["depth"], *(_cell(s.get(k)) for _, k in COLUMNS)]
            for s in result["summary"]
        ),
    )
    parts = [summary]
    if result.get("families"):
        parts.append(
            render_table(
                ["family", *head],
                (
                    [s["family"], s["method"], s["depth"], *(_cell(s.get(k)) for _, k in COLUMNS)]
                    for s in result["families"]
                ),
            )
        )
    if result.get("targets"):
        parts.append(
            render_table(
                ["target", "measured", "met"],
                ([t["target"], t["measured"], _cell(t["met"])] for t in result["targets"]),
            )
        )
    return "\n\n".join(parts) + "\n\n(errors: mean absolute error in 8-bit levels)"


# --- a look for a person -------------------------------------------------------------------------

PALETTE = np.array(
    [[40, 40, 40], [230, 60, 60], [60, 200, 60], [70, 90, 240], [240, 200, 40], [200, 70, 200]],
    dtype=np.uint8,
)
"""Colours of the true surfaces (0 = the backdrop) in the ownership image."""
LAYER_PALETTE = np.array(
    [[90, 90, 90], [0, 190, 230], [255, 140, 0], [250, 250, 250], [150, 60, 255]],
    dtype=np.uint8,
)
"""Colours of Strata's layers (1 = background) in its label image."""


def look(
    family: str, seed: int, out: Path, *, depth: str = "model-like", count: int | None = None
) -> list[Path]:
    """Write, for a person to look at: the image, the true ownership (:data:`PALETTE`),
    Strata's label map (:data:`LAYER_PALETTE`), and Strata's stack composited at
    +amplitude beside the true shifted render (each surface moved with the layer that
    holds most of it)."""
    scene = make(family, seed=seed)
    image = scene_image(scene)
    asked = count or len(scene.surfaces)
    depth_map = depth_for(scene, depth, seed=seed)
    stack = build_stack(image, depth_map, num_layers=asked, fill=builtin_fill)
    owner = np.argmax(np.stack(scene.ownership), axis=0)
    weights = visible_weights(stack.layers)
    shift = PARALLAX_AMPLITUDE * image.shape[1]
    shifted, _ = shift_composite(stack.layers, shift, stack.parallax)
    surface_shifts = [shift * stack.parallax[k] for k in layer_of_surface(weights, scene)]
    truth, _ = true_view(scene, surface_shifts)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{family}{seed}-{depth}"
    files = {
        f"{name}-image.png": _u8(image),
        f"{name}-ownership.png": PALETTE[owner % len(PALETTE)],
        f"{name}-strata-labels.png": LAYER_PALETTE[(stack.labels.astype(np.intp) - 1) % 5],
        f"{name}-strata-shifted+amp.png": _u8(shifted),
        f"{name}-true-shifted+amp.png": _u8(truth),
    }
    paths = []
    for file, pixels in files.items():
        path = out / file
        cv2.imwrite(str(path), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def _u8(image: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="one scene")
    parser.add_argument("--json", action="store_true", help="print every number as JSON")
    parser.add_argument("--look", type=Path, help="write images of floor/0 to this folder")
    args = parser.parse_args(argv)
    if args.look:
        for depth in DEPTHS:
            print("\n".join(str(p) for p in look("floor", 0, args.look, depth=depth)))
        return 0
    result = run(smoke=args.smoke)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
