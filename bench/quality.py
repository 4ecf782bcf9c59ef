"""Layer quality on synthetic scenes: Strata against two peer baselines.

    python -m bench.quality [--smoke] [--json]

Scenes come from :mod:`bench.scenes` (2–5 surfaces, several seeds; known ownership and the
true hidden background) and are layered from two depth maps each: the exact full-resolution
nearness, and a blurred, noisy quarter-resolution one (:func:`bench.scenes.degrade_depth`,
what a monocular model gives). Every method gets the same 8-bit image, the same depth
(``nearness_from_raw`` at the canvas size) and the true number of surfaces as its layer
count, and returns :class:`pipeline.layers.Layer` objects, so :func:`bench.metrics.score`
applies unchanged. The background layer is opaque for every method.

- ``strata``: ``pipeline.stack.build_stack`` with the built-in fill, exactly as a job
  runs it.
- ``strata+telea``: Strata's segmentation and layer assembly with OpenCV's Telea as the
  fill function instead of the built-in fill: isolates the fill (the "below Telea" target).
- ``quantile+telea``: cuts at equal-count depth quantiles, hard 0/1 masks, and OpenCV's
  Telea inpainting (``cv2.INPAINT_TELEA``, radius 5) behind nearer layers: the whole
  background, and each middle layer within the same parallax margin Strata fills.
- ``bins+feather``: uniform depth bins over the depth range, each layer's mask feathered
  by a Gaussian (σ = 2 px per 384 px of width); the background Telea-filled behind the
  nearer layers; middle layers get no fill (colour outside their own pixels is the photo's).

Scores per method and depth kind: per-layer soft IoU against the true visible share (the
minimum over layers and scenes, and the mean), recomposition PSNR of the 8-bit layers,
mean absolute fill error and halo error of the background against the true hidden
background (the whole hidden region, and the 6-px band inside the occluders' edges), and
parallax holes at the preview's sway.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from bench.harness import render_table
from bench.metrics import Scores, score
from bench.scenes import Scene, degrade_depth, make_scene
from config.model import DepthMapKind
from pipeline.depth import DepthEstimate, nearness_from_raw
from pipeline.fill import fill_hidden
from pipeline.layers import FillFunction, Layer
from pipeline.preview import fill_margins
from pipeline.stack import build_stack

TELEA_RADIUS = 5
FEATHER_SIGMA = 2.0  # pixels at REFERENCE_WIDTH
REFERENCE_WIDTH = 384
SURFACES = (2, 3, 4, 5)
SEEDS = (0, 1, 2)
SMOKE_SCENES = [(3, 0)]
DEPTHS = ("exact", "low-res")

Method = Callable[[np.ndarray, np.ndarray, int], list[Layer]]
"""``method(image, nearness, count) -> layers``, farthest first."""


# --- inputs ------------------------------------------------------------------------------------


def scene_image(scene: Scene) -> np.ndarray:
    """The scene as an 8-bit photo would decode."""
    image: np.ndarray = np.round(scene.image * 255.0).astype(np.float32) / 255.0
    return image


def depth_for(scene: Scene, kind: str, *, seed: int) -> DepthEstimate:
    raw = degrade_depth(scene.nearness, seed=seed) if kind == "low-res" else scene.nearness
    return DepthEstimate(
        nearness=nearness_from_raw(raw, kind=DepthMapKind.DISPARITY, canvas_size=scene.size),
        native_size=(raw.shape[1], raw.shape[0]),
        source="file",
        model=None,
    )


# --- the methods -------------------------------------------------------------------------------


def strata(image: np.ndarray, depth: DepthEstimate, count: int) -> list[Layer]:
    return strata_layers(image, depth, count, fill=lambda i, k, r: fill_hidden(i, k, region=r))


def strata_telea(image: np.ndarray, depth: DepthEstimate, count: int) -> list[Layer]:
    return strata_layers(image, depth, count, fill=telea_fill)


def strata_layers(
    image: np.ndarray, depth: DepthEstimate, count: int, *, fill: FillFunction
) -> list[Layer]:
    """Strata's segmentation and layers (as a job builds them) with the given fill."""
    return build_stack(image, depth, num_layers=count, fill=fill).layers


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


def quantile_telea(image: np.ndarray, depth: DepthEstimate, count: int) -> list[Layer]:
    """Equal-count depth quantiles, hard masks, Telea behind nearer layers."""
    labels = quantile_labels(depth.nearness, count)
    margins = fill_margins(count, image.shape[1])
    layers = []
    for k in range(1, count + 1):
        own = labels == k
        nearer = labels > k
        behind = nearer if k == 1 else nearer & _within(own, margins[k - 1])
        rgb = telea(image, own) if behind.any() else image.copy()
        rgb[~(own | behind)] = 0.0
        alpha = np.ones(own.shape, np.float32) if k == 1 else (own | behind).astype(np.float32)
        layers.append(Layer(rgb=rgb.astype(np.float32), alpha=alpha, filled=behind))
    return layers


def bins_feather(image: np.ndarray, depth: DepthEstimate, count: int) -> list[Layer]:
    """Uniform depth bins, Gaussian-feathered masks; Telea under the background only."""
    labels = uniform_labels(depth.nearness, count)
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
    return layers


METHODS: dict[str, Callable[[np.ndarray, DepthEstimate, int], list[Layer]]] = {
    "strata": strata,
    "strata+telea": strata_telea,
    "quantile+telea": quantile_telea,
    "bins+feather": bins_feather,
}
METHOD_NOTES = {
    "strata": "build_stack + built-in fill (as a job runs)",
    "strata+telea": "Strata's segmentation and layers, Telea r=5 as the fill",
    "quantile+telea": "equal-count depth quantiles, hard masks, Telea r=5 behind nearer layers",
    "bins+feather": "uniform depth bins, Gaussian-feathered masks (σ 2 px @ 384 px), "
    "Telea r=5 under the background only, no fill in middle layers",
}


# --- running -----------------------------------------------------------------------------------


def scene_scores(
    surfaces: int, seed: int, *, methods: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every method on one scene from both depth kinds: one row each."""
    scene = make_scene(num_surfaces=surfaces, seed=seed)
    image = scene_image(scene)
    rows = []
    for kind in DEPTHS:
        depth = depth_for(scene, kind, seed=seed)
        for name, method in (methods or METHODS).items():
            started = time.perf_counter()
            layers = method(image, depth, surfaces)
            seconds = time.perf_counter() - started
            rows.append(
                _row(name, kind, score(layers, scene), seconds, surfaces=surfaces, seed=seed)
            )
    return rows


def _row(
    method: str, depth: str, scores: Scores, seconds: float, *, surfaces: int, seed: int
) -> dict[str, Any]:
    return {
        "method": method,
        "depth": depth,
        "surfaces": surfaces,
        "seed": seed,
        "ious": [round(v, 4) for v in scores.ious],
        "min_iou": round(scores.min_iou, 4),
        "psnr_db": round(scores.psnr, 2),
        "background_opaque": scores.background_opaque,
        "fill_error": round(scores.fill_error, 4),
        "halo_error": round(scores.halo_error, 4),
        "parallax_holes": scores.parallax_holes,
        "seconds": round(seconds, 3),
    }


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per method and depth kind, over all scenes."""
    lines = []
    for method in dict.fromkeys(r["method"] for r in rows):
        for depth in DEPTHS:
            group = [r for r in rows if r["method"] == method and r["depth"] == depth]
            if not group:
                continue
            lines.append(
                {
                    "method": method,
                    "depth": depth,
                    "scenes": len(group),
                    "min_iou": min(r["min_iou"] for r in group),
                    "mean_iou": round(statistics.fmean(v for r in group for v in r["ious"]), 4),
                    "min_psnr_db": min(r["psnr_db"] for r in group),
                    "mean_psnr_db": round(statistics.fmean(r["psnr_db"] for r in group), 2),
                    "background_opaque": all(r["background_opaque"] for r in group),
                    "fill_error": round(statistics.fmean(r["fill_error"] for r in group), 4),
                    "halo_error": round(statistics.fmean(r["halo_error"] for r in group), 4),
                    "parallax_holes": sum(r["parallax_holes"] for r in group),
                    "seconds_median": round(statistics.median(r["seconds"] for r in group), 3),
                }
            )
    return lines


def run(*, smoke: bool = False, repeats: int = 1) -> dict[str, Any]:
    """All scenes (``repeats`` does not apply: the scores are deterministic)."""
    del repeats
    scenes = SMOKE_SCENES if smoke else [(n, s) for n in SURFACES for s in SEEDS]
    rows = [row for surfaces, seed in scenes for row in scene_scores(surfaces, seed)]
    return {
        "scenes": [list(s) for s in scenes],
        "size": list(make_scene(num_surfaces=2, seed=0).size),
        "methods": METHOD_NOTES,
        "summary": summarise(rows),
        "rows": rows,
    }


def table(result: dict[str, Any]) -> str:
    columns = [
        "method",
        "depth",
        "min IoU",
        "mean IoU",
        "min PSNR",
        "fill err",
        "halo err",
        "holes",
        "bg opaque",
        "s/scene",
    ]
    return render_table(
        columns,
        (
            [
                s["method"],
                s["depth"],
                s["min_iou"],
                s["mean_iou"],
                s["min_psnr_db"],
                s["fill_error"],
                s["halo_error"],
                s["parallax_holes"],
                "yes" if s["background_opaque"] else "NO",
                s["seconds_median"],
            ]
            for s in result["summary"]
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="one small scene")
    parser.add_argument("--json", action="store_true", help="print every number as JSON")
    args = parser.parse_args(argv)
    result = run(smoke=args.smoke)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
