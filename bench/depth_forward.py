"""Depth stage cost at 2 MP: bare forward pass vs the whole ``DepthEstimator.estimate``.

    python -m bench.depth_forward [--json] [--repeats 3] [--size 1732x1155]

Builds a real-size Depth-Anything-V2-Small (DINOv2 ViT-S/14: hidden 384, 12 layers, 6 heads,
features from layers 3/6/9/12; DPT head: neck 48/96/192/384, fusion 64, head 32) with random
weights into ``bench/.cache/`` once (no download: compute cost does not depend on the
weights), with the released model's preprocessor config (518 short side, multiple of 14,
bicubic, ImageNet mean/std). Then it times, median of N after one warm-up:

- ``forward``: ``model(pixel_values)`` alone, on an already preprocessed input;
- ``estimate``: photo in, nearness at the canvas size out (preprocess + forward + resize),
  interleaved with ``forward`` so background load affects both alike;
- ``preprocess``: our torch fast path, and the library's PIL processor for comparison;

and reports the process's peak RSS and the 1-minute load average (another process on a
2-core machine doubles every number). The contract: estimate ≤ 1.3 × forward.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness import peak_rss_bytes

CACHE = Path(__file__).resolve().parent / ".cache" / "depth-anything-v2-small-random"
BUDGET = 1.3
TABLE_KEYS = (
    "image",
    "model_input",
    "threads",
    "load_s",
    "forward_s",
    "estimate_s",
    "ratio",
    "preprocess_fast_s",
    "preprocess_processor_uint8_s",
    "peak_rss_mb",
)
"""The figures a depth table shows, in order (terminal and docs/benchmarks.md)."""


@dataclass(frozen=True)
class DepthAnythingSize:
    """The released architecture of one Depth-Anything-V2 size (DINOv2 ViT-x/14 + DPT)."""

    hidden: int
    heads: int
    neck: tuple[int, int, int, int]
    fusion: int


SMALL = DepthAnythingSize(hidden=384, heads=6, neck=(48, 96, 192, 384), fusion=64)
BASE = DepthAnythingSize(hidden=768, heads=12, neck=(96, 192, 384, 768), fusion=128)


def build_real_size_model(path: Path, size: DepthAnythingSize = SMALL) -> Path:
    """A Depth-Anything-V2 model of ``size`` with random weights and the released
    processor config (518 short side, multiple of 14, bicubic, ImageNet mean/std)."""
    import torch
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessorPil,
    )

    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        return path
    torch.manual_seed(0)
    backbone_args: dict[str, Any] = {  # dict: transformers' stubs hide out_indices
        "hidden_size": size.hidden,
        "num_hidden_layers": 12,
        "num_attention_heads": size.heads,
        "mlp_ratio": 4,
        "image_size": 518,
        "patch_size": 14,
        "layerscale_value": 1.0,
        "out_indices": [3, 6, 9, 12],
        "reshape_hidden_states": False,
        "apply_layernorm": True,
    }
    config = DepthAnythingConfig(
        backbone_config=Dinov2Config(**backbone_args),
        patch_size=14,
        reassemble_hidden_size=size.hidden,
        reassemble_factors=[4, 2, 1, 0.5],
        neck_hidden_sizes=list(size.neck),
        fusion_hidden_size=size.fusion,
        head_hidden_size=32,
        head_in_index=-1,
        depth_estimation_type="relative",
    )
    model = DepthAnythingForDepthEstimation(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    DPTImageProcessorPil(
        do_resize=True,
        size={"height": 518, "width": 518},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        resample=3,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        do_pad=False,
    ).save_pretrained(path)
    return path


def timed(call: Callable[[], object], *, repeats: int) -> list[float]:
    """Seconds per call, after one untimed warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def timed_pairs(
    first: Callable[[], object], second: Callable[[], object], *, repeats: int
) -> tuple[list[float], list[float]]:
    """Seconds per call of each, alternating first/second, after one warm-up of each."""
    first()
    second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for call, bucket in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            call()
            bucket.append(time.perf_counter() - start)
    return times


def peak_rss_mb() -> float:
    return peak_rss_bytes() / 1e6


def test_image(width: int, height: int) -> np.ndarray:
    """A photo-like float32 image: smooth gradients, a few hard edges, sensor noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) / height
    rgb = np.stack([0.5 + 0.4 * np.sin(5 * xx + c) * np.cos(3 * yy) for c in range(3)], -1)
    rgb[height // 4 : height // 2, width // 3 : width // 2] = (0.9, 0.2, 0.1)
    rgb += rng.normal(0.0, 0.02, rgb.shape).astype(np.float32)
    clipped: np.ndarray = np.clip(rgb, 0.0, 1.0).astype(np.float32)
    return clipped


def run(*, width: int, height: int, repeats: int) -> dict[str, Any]:
    import torch

    from daemon.allocator import keep_freed_memory
    from pipeline.depth import DepthEstimator, check_rgb, nearness_from_raw

    keep_freed_memory()  # as `strata process` and the daemon's pipeline process do
    path = build_real_size_model(CACHE)
    start = time.perf_counter()
    estimator = DepthEstimator(str(path), device="cpu")
    load_s = time.perf_counter() - start
    rgb = test_image(width, height)
    pixels = estimator.pixel_values(rgb)
    as_bytes = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)

    # Interleaved, so a change in background load hits both sides alike.
    forward, estimate = timed_pairs(
        lambda: estimator.predict(pixels), lambda: estimator.estimate(rgb), repeats=repeats
    )
    fast_pre = timed(lambda: estimator.pixel_values(rgb), repeats=repeats)
    raw = estimator.predict(pixels)
    post = timed(
        lambda: nearness_from_raw(
            raw, kind=estimator.kind, canvas_size=(width, height), aspect_tolerance=1.0
        ),
        repeats=repeats,
    )
    check = timed(lambda: check_rgb(rgb), repeats=repeats)
    pil_pre = timed(
        lambda: estimator.processor(images=as_bytes, return_tensors="pt"), repeats=repeats
    )
    pil_float = timed(
        lambda: estimator.processor(images=rgb, do_rescale=False, return_tensors="pt"),
        repeats=repeats,
    )
    result = estimator.estimate(rgb)
    med = statistics.median
    return {
        "image": [width, height],
        "model_input": [int(pixels.shape[3]), int(pixels.shape[2])],
        "native_size": list(result.native_size),
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "load_s": round(load_s, 3),
        "forward_s": round(med(forward), 4),
        "estimate_s": round(med(estimate), 4),
        "ratio": round(med(estimate) / med(forward), 3),
        "budget": BUDGET,
        "preprocess_fast_s": round(med(fast_pre), 4),
        "postprocess_s": round(med(post), 4),
        "input_check_s": round(med(check), 4),
        # less sensitive to background load than estimate/forward: the stages outside the
        # forward pass, timed on their own
        "ratio_from_stages": round(
            (med(forward) + med(fast_pre) + med(post) + med(check)) / med(forward), 3
        ),
        "preprocess_processor_uint8_s": round(med(pil_pre), 4),
        "preprocess_processor_float_s": round(med(pil_float), 4),
        "forward_all_s": [round(t, 4) for t in forward],
        "estimate_all_s": [round(t, 4) for t in estimate],
        "pair_ratios": [round(e / f, 3) for f, e in zip(forward, estimate, strict=True)],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.depth_forward", description=__doc__)
    parser.add_argument("--size", default="1732x1155", help="WIDTHxHEIGHT (default 2 MP)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args(argv)
    width, _, height = str(args.size).partition("x")
    if not (width.isdigit() and height.isdigit()) or args.repeats < 1:
        parser.error("--size is WIDTHxHEIGHT (e.g. 1732x1155) and --repeats ≥ 1")
    numbers = run(width=int(width), height=int(height), repeats=args.repeats)
    if args.json:
        print(json.dumps(numbers, indent=2))
    else:
        for key, value in numbers.items():
            print(f"{key:>30}: {value}")
        verdict = "within" if numbers["ratio"] <= BUDGET else "OVER"
        print(f"estimate/forward = {numbers['ratio']} ({verdict} the {BUDGET}x budget)")
    return 0 if numbers["ratio"] <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
