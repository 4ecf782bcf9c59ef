"""Painterly stage benchmark: real-size SD1.5 components with random weights.

    python -m bench.painterly            # build bench/.cache/painterly once, then measure
    python -m bench.painterly --detail   # only the upscale/detail-restoration comparison

Nothing can be downloaded here, so the models are built from the released configs with
random weights (timings and memory do not depend on the weight values): the SD1.5 UNet
(block_out_channels 320/640/1280/1280, cross_attention_dim 768), the SD VAE, the CLIP
ViT-L/14 text encoder, a CLIP tokenizer with a small synthetic vocabulary (the text
encoder always reads 77 positions), the PNDM scheduler config, ``ControlNetModel.from_unet``,
a default ``AutoencoderTiny`` and a rank-64 LCM-LoRA-shaped adapter on the modules the real
one adapts. They are saved once under ``bench/.cache/painterly`` (git-ignored; about 6 GB)
by a child process, so the measuring process's peak RSS holds only what the stage loads.

Measured, through :func:`pipeline.stylize.stylize` exactly as the runner calls it, on a
1024 × 1024 canvas (diffusion at 512 × 512, then ×2 upscaling and detail restoration):

* fast mode (LCM-LoRA 4 steps × strength 0.5 + TAESD), a batch of 5 jobs in one worker:
  end-to-end time, per-sub-stage times, model load time of job 1 vs job 2;
* default quality mode (25 steps × 0.5, full VAE, classifier-free guidance);
* peak RSS (``ru_maxrss``) after each.

Targets: fast mode ≤ 30 s end to end, peak RSS ≤ 6 GB. Results go to stdout and to
``bench/results/painterly.json``.

Measured once (2 cores, torch 2.13 CPU, fp32, 1024² canvas, 512² diffusion), while other
work kept the load average at 4.7–6.1, i.e. this run had well under the 2 cores:
fast mode 68.4 s for job 1 of 5 (models 0.9 s to load from a warm page cache), then
35.2 / 45.3 / 55.0 / 41.1 s (median 43 s): 96 % of it is the 2 UNet + ControlNet steps
(~16–25 s a step here), text encoding 0.1–2 s, TAESD decode 0.5–2 s, upscale + detail
+ score < 0.1 s. Job 2's load time: 0.0 s. Quality mode (13 PNDM steps with guidance,
full VAE): 340 s (denoise 318 s, VAE decode 21.6 s). Peak RSS 6.67 GB after the fast
batch, 7.68 GB after the quality job; the fp32 weights alone are 6.0 GB (UNet 3.44,
ControlNet 1.45, CLIP 0.49, VAE 0.33, LCM-LoRA 0.26). Neither target is met as
measured: see the report in the painterly issue for the levers (bf16 weights on CPUs
with AVX512-BF16/AMX halve the weights; an uncontended rerun for the 30 s target).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.harness import peak_rss_bytes
from bench.scenes import make_scene

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache" / "painterly"
RESULTS = ROOT / "results" / "painterly.json"
CANVAS = 1024
FAST_TARGET_S = 30.0
RSS_TARGET_GB = 6.0
LORA_RANK = 64
LORA_TARGETS = [
    "to_q",
    "to_k",
    "to_v",
    "to_out.0",
    "proj_in",
    "proj_out",
    "ff.net.0.proj",
    "ff.net.2",
    "conv1",
    "conv2",
    "conv_shortcut",
    "downsamplers.0.conv",
    "upsamplers.0.conv",
    "time_emb_proj",
]


# --- real-size components ---------------------------------------------------------------------


def _clip_tokenizer() -> Any:
    """CLIP's byte-level BPE with a synthetic vocabulary: bytes, end-of-word bytes, specials."""
    from transformers import CLIPTokenizer

    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    extra = [b for b in range(256) if b not in printable]
    symbols = [chr(c) for c in printable] + [chr(256 + i) for i in range(len(extra))]
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def build_components(root: Path) -> None:
    """Write sd15/, controlnet/, taesd/ and lcm-lora/ under ``root`` (minutes; ~6 GB)."""
    import diffusers
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    d: Any = diffusers  # untyped for mypy
    torch.manual_seed(0)
    started = time.perf_counter()
    unet = d.UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        down_block_types=(
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "DownBlock2D",
        ),
        up_block_types=(
            "UpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
        ),
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        cross_attention_dim=768,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = d.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        sample_size=512,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            projection_dim=768,
        )
    )
    scheduler = d.PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        skip_prk_steps=True,
        steps_offset=1,
        set_alpha_to_one=False,
    )
    pipe: Any = d.StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=_clip_tokenizer(),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(root / "sd15")
    controlnet: Any = d.ControlNetModel.from_unet(unet)
    controlnet.save_pretrained(root / "controlnet")
    del controlnet
    taesd: Any = d.AutoencoderTiny()
    taesd.save_pretrained(root / "taesd")

    # LCM-LoRA: rank 64 on the modules the released adapter covers, kohya-style keys.
    unet.add_adapter(
        LoraConfig(
            r=LORA_RANK, lora_alpha=LORA_RANK, init_lora_weights=False, target_modules=LORA_TARGETS
        )
    )
    tensors: dict[str, Any] = {}
    for key, value in get_peft_model_state_dict(unet).items():
        module, kind = key.rsplit(".lora_", 1)
        name = "lora_unet_" + module.replace(".", "_")
        down = kind.startswith("A")
        tensors[f"{name}.{'lora_down' if down else 'lora_up'}.weight"] = (
            value if down else value * 0.01
        ).contiguous()
        tensors[f"{name}.alpha"] = torch.tensor(float(LORA_RANK))
    (root / "lcm-lora").mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(root / "lcm-lora" / "pytorch_lora_weights.safetensors"))
    (root / "complete").write_text(f"built in {time.perf_counter() - started:.0f} s\n")


def ensure_components(root: Path = CACHE, *, rebuild: bool = False) -> float:
    """Build the components in a child process unless present; returns the build seconds."""
    if (root / "complete").exists() and not rebuild:
        return 0.0
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"building real-size random-weight components in {root} (once) …", flush=True)
    subprocess.run(
        [sys.executable, "-m", "bench.painterly", "--build-only", "--cache", str(root)],
        check=True,
    )
    return time.perf_counter() - started


# --- measuring ------------------------------------------------------------------------------


def peak_rss_gb() -> float:
    """This process's peak resident set so far."""
    return peak_rss_bytes() / 1e9


def bench_photo(size: int = CANVAS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic 4-surface scene with fine texture, and its exact nearness."""
    scene = make_scene(num_surfaces=4, width=size, height=size, seed=seed)
    rng = np.random.default_rng(seed)
    grain = rng.normal(0.0, 0.04, (size, size, 1)).astype(np.float32)
    return np.clip(scene.image + grain, 0.0, 1.0).astype(np.float32), scene.nearness


def _summary(info: dict[str, Any], wall: float) -> dict[str, Any]:
    return {
        "wall_s": round(wall, 2),
        "timings_s": {k: round(float(v), 3) for k, v in info["timings"].items()},
        "steps_scheduled": info.get("steps_scheduled"),
        "steps_run": info.get("steps_run"),
        "scheduler": info.get("scheduler"),
        "vae": info.get("vae"),
        "structure_used": info.get("structure_used"),
        "diffusion_size": info.get("diffusion_size"),
        "loaded": info.get("loaded"),
    }


def measure(root: Path = CACHE, *, batch: int = 5) -> dict[str, Any]:
    import torch

    from config.model import Device, JobSettings, ModelSettings
    from daemon.allocator import keep_freed_memory
    from pipeline.models import ModelCache
    from pipeline.stylize import stylize

    keep_freed_memory()  # as the daemon's pipeline process does
    models = ModelSettings(
        img2img=str(root / "sd15"),
        controlnet=str(root / "controlnet"),
        lcm_lora=str(root / "lcm-lora"),
        taesd=str(root / "taesd"),
        device=Device.CPU,
    )
    rgb, nearness = bench_photo()
    cache = ModelCache()
    report: dict[str, Any] = {
        "canvas": [CANVAS, CANVAS],
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "rss_gb_before_load": round(peak_rss_gb(), 2),
    }

    fast_jobs = []
    for index in range(batch):
        settings = JobSettings(style="oil painting", fast=True, seed=index)
        started = time.perf_counter()
        result = stylize(rgb, nearness, settings=settings, models=models, cache=cache)
        fast_jobs.append(_summary(result.info, time.perf_counter() - started))
        print(f"fast job {index + 1}/{batch}: {fast_jobs[-1]['wall_s']} s", flush=True)
    report["fast"] = {
        "jobs": fast_jobs,
        "first_job_load_s": fast_jobs[0]["timings_s"]["load"],
        "second_job_load_s": fast_jobs[1]["timings_s"]["load"] if batch > 1 else None,
        "warm_wall_s_median": float(np.median([j["wall_s"] for j in fast_jobs[1:]] or [0])),
        "peak_rss_gb": round(peak_rss_gb(), 2),
    }

    settings = JobSettings(style="oil painting", steps=25, strength=0.5, seed=0)
    started = time.perf_counter()
    result = stylize(rgb, nearness, settings=settings, models=models, cache=cache)
    report["quality"] = _summary(result.info, time.perf_counter() - started)
    report["quality"]["peak_rss_gb"] = round(peak_rss_gb(), 2)
    print(f"quality job: {report['quality']['wall_s']} s", flush=True)
    report["load_average_at_end"] = list(os.getloadavg())
    warm = report["fast"]["warm_wall_s_median"]
    cold = fast_jobs[0]["wall_s"]
    report["targets"] = {
        "fast_warm_le_30s": warm <= FAST_TARGET_S,
        "fast_cold_le_30s": cold <= FAST_TARGET_S,
        "peak_rss_le_6gb": report["quality"]["peak_rss_gb"] <= RSS_TARGET_GB,
    }
    return report


# --- detail restoration comparison ----------------------------------------------------------


def _simulated_painting(small: np.ndarray, seed: int) -> np.ndarray:
    """What the diffusion might hand back: smoothed, tinted, brushed, edges moved a little."""
    rng = np.random.default_rng(seed)
    h, w = small.shape[:2]
    smooth = cv2.edgePreservingFilter(
        (small * 255).astype(np.uint8), flags=1, sigma_s=20, sigma_r=0.4
    ).astype(np.float32)
    tinted = smooth / 255.0 * np.array([1.05, 0.9, 0.8], np.float32) + 0.03
    brush = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.5)
    painted = np.clip(tinted + 0.06 * brush[..., None], 0, 1).astype(np.float32)
    flow = cv2.GaussianBlur(rng.normal(0, 1, (h, w, 2)).astype(np.float32), (0, 0), 8) * 25
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    moved: np.ndarray = cv2.remap(
        painted,
        xx + flow[..., 0],
        yy + flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )
    return moved


def detail_comparison(size: tuple[int, int] = (1536, 2048)) -> dict[str, Any]:
    """Which way back to the canvas keeps detail: measured without any model.

    A 2048 × 1536 photo (4-surface synthetic scene + grain) is brought to the diffusion
    size (680 × 512) and either left as it is — *identity*: how much of the photo's detail
    a method recovers (PSNR against the photo) — or "painted" by
    :func:`_simulated_painting`: how much of the painting a method keeps (mean absolute
    difference from the painting at its own size; 0.01 = 1 % of full range) and how well
    its edges sit on the scene's true depth boundaries (:func:`alignment_score`).
    """
    from pipeline.stylize import (
        alignment_score,
        depth_boundaries,
        diffusion_size,
        resize_image,
        restore_detail,
    )

    height, width = size
    scene = make_scene(num_surfaces=4, width=width, height=height, seed=1)
    rng = np.random.default_rng(1)
    photo = np.clip(scene.image + rng.normal(0, 0.04, (height, width, 1)), 0, 1)
    photo = photo.astype(np.float32)
    boundaries = depth_boundaries(scene.nearness)
    h, w = diffusion_size(height, width, 512)
    small = resize_image(photo, h, w)
    painted_small = _simulated_painting(small, seed=1)
    radius = max(1, round(max(height / h, width / w)))

    def psnr(a: np.ndarray, b: np.ndarray) -> float:
        return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))

    def colour_guided(img: np.ndarray) -> np.ndarray:
        up = resize_image(img, height, width)
        guided: np.ndarray = cv2.ximgproc.guidedFilter(photo, up, radius, 1e-3)
        out: np.ndarray = np.clip(up + 0.5 * (guided - up), 0, 1).astype(np.float32)
        return out

    def ours(edges: float, texture: float) -> Any:
        return lambda img: restore_detail(
            resize_image(img, height, width),
            photo,
            diffusion_hw=(h, w),
            edges=edges,
            texture=texture,
        )

    methods: dict[str, Any] = {
        "lanczos": lambda img: resize_image(img, height, width),
        "lanczos + colour-guided filter @0.5": colour_guided,
        "lanczos + luma-guided filter": ours(1.0, 0.0),
        "lanczos + luma detail @0.5": ours(0.0, 0.5),
        "lanczos + luma-guided filter + luma detail @0.5 (shipped)": ours(1.0, 0.5),
        "lanczos + luma-guided filter + luma detail @1.0": ours(1.0, 1.0),
    }
    rows: dict[str, Any] = {}
    for name, method in methods.items():
        started = time.perf_counter()
        identity = method(small)
        elapsed = time.perf_counter() - started
        painted = method(painted_small)
        rows[name] = {
            "identity_psnr_db": round(psnr(identity, photo), 2),
            "painting_change": round(
                float(np.abs(resize_image(painted, h, w) - painted_small).mean()), 4
            ),
            "painted_alignment": round(alignment_score(painted, boundaries), 3),
            "ms": round(elapsed * 1000, 1),
        }
    return {"canvas": [width, height], "diffusion": [w, h], "methods": rows}


# --- entry point ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.painterly", description=__doc__)
    parser.add_argument("--detail", action="store_true", help="only the detail comparison")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached models")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the models live")
    parser.add_argument("--batch", type=int, default=5, help="fast-mode jobs in the batch")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON report path")
    args = parser.parse_args(argv)
    if args.build_only:
        build_components(args.cache)
        return 0
    report: dict[str, Any] = {"detail": detail_comparison()}
    print(json.dumps(report["detail"], indent=2), flush=True)
    if not args.detail:
        report["build_s"] = round(ensure_components(args.cache, rebuild=args.rebuild), 1)
        report["painterly"] = measure(args.cache, batch=max(2, args.batch))
        print(json.dumps(report["painterly"], indent=2), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
