"""Painterly restyle: Stable Diffusion 1.5 img2img, conditioned on the job's depth map.

One stage, one file. :func:`stylize` turns the working image (canvas size) into a painting
in the job's ``style`` and hands it back at the canvas size:

1. **Prompt** — ``style`` becomes a curated or generic prompt (:mod:`pipeline.styles`).
2. **Diffusion** at the model's native size: 512 px on the short side for SD1.5 (the UNet's
   ``sample_size`` × the VAE's scale factor), aspect kept, the long side capped at 1.5×
   that (768), both sides multiples of 8. With ``structure: controlnet`` the depth
   ControlNet (``models.controlnet``) is conditioned on the *same* nearness map that cuts
   the layers, so the painting's edges stay where the layer boundaries will fall; if that
   model is not in the local cache the stage falls back to plain img2img, logs a warning
   and records the fallback in ``info``.
3. **Back to the canvas** — Lanczos upscaling, then :func:`restore_detail`: a guided
   filter with the photo's luminance as guide (radius = the upscaling factor) re-fits the
   painting locally as a linear function of the photo, so its edges move back onto the
   photo's (and so the depth map's) edges; then half of the photo's luminance detail
   finer than the diffusion size is added back. The painting's colours stay; only its
   edge positions and fine detail come from the photo. A guided filter with the colour
   photo as guide recovers no more detail at a higher cost; a tiled diffusion refinement
   at canvas size costs one diffusion per tile and invents detail that can move edges off
   the layer cuts. ``python -m bench.painterly --detail`` measures these choices.

Speed: ``steps`` × ``strength`` steps are run (at least one when ``strength`` > 0);
``fast`` swaps in the LCM-LoRA (LCMScheduler, 4 steps, guidance 1.0: no negative branch)
and the TAESD tiny autoencoder. Weights are loaded once per worker and kept warm in the
:class:`~pipeline.models.ModelCache`; the SD1.5 UNet is shared with the fill stage through
:func:`get_img2img_pipeline`. The LCM-LoRA is a named adapter on that shared UNet, enabled
only while a fast job runs and disabled again before :func:`stylize` returns, so later
jobs (and the inpainting pipeline built with ``from_pipe``) see the plain UNet.

How well the painted edges sit on the layer cuts is scored once the layers exist (the
runner calls :func:`alignment_score` on the layers' boundaries), not here.

Device and dtype are explicit: every model is loaded in
:func:`pipeline.models.model_dtype` of its role and device (fp16 on CUDA and MPS,
bfloat16 on a CPU that supports it, fp32 otherwise), and both are part of its cache key.
Attention slicing is enabled on MPS only: on a CPU, PyTorch's fused scaled-dot-product
attention already runs without the full score matrix, so slicing would only slow it down,
for no memory gain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
import torch
from diffusers import (
    AutoencoderTiny,
    ControlNetModel,
    LCMScheduler,
    StableDiffusionControlNetImg2ImgPipeline,
    StableDiffusionImg2ImgPipeline,
)
from loguru import logger

from config.errors import ModelNotAvailableError, PipelineError, SettingsError
from config.model import JobSettings, ModelSettings, Structure
from pipeline.io import to_uint8
from pipeline.models import (
    ModelCache,
    load_pretrained,
    model_dtype,
    model_revision,
    resolve_device,
)
from pipeline.opencv import check_opencv
from pipeline.styles import StylePrompt, build_prompt
from pipeline.timing import StageTimer

T = TypeVar("T")

STAGE = "stylize"

# Sampling.
QUALITY_GUIDANCE = 7.5
LCM_STEPS = 4
LCM_GUIDANCE = 1.0  # ≤ 1 turns classifier-free guidance off: one UNet pass per step
CONTROLNET_SCALE = 1.0  # full depth conditioning: layer alignment matters more than freedom
LCM_ADAPTER = "lcm"
LCM_LORA_WEIGHTS = "pytorch_lora_weights.safetensors"  # the file in latent-consistency's repos

# Resolution.
LONG_SIDE_FACTOR = 1.5  # long side ≤ 1.5 × native (768 for SD1.5)
SIZE_MULTIPLE = 8
MIN_CANVAS_SIDE = 8

# Detail restoration (see restore_detail and bench.painterly --detail).
DETAIL_EDGES = 1.0  # the guided filter's result, in full: it keeps the painting's colours
DETAIL_TEXTURE = 0.5  # half the photo's fine luminance detail: crisp, still painted
DETAIL_EPS = 1e-4  # (0.01)²: photo edges with more than ~1 % contrast steer the fit

# alignment_score defaults.
ALIGN_RADIUS = 2
ALIGN_MIN_CONTRAST = 0.1
DEPTH_EDGE_STEP = 0.05


@dataclass(frozen=True)
class StylizeResult:
    image: np.ndarray  # float32 (H, W, 3) in [0, 1] at the input's (canvas) size
    info: dict[str, Any]  # JSON-ready: models, prompts, steps, device, timings, …


# --- devices and loading --------------------------------------------------------------------
# diffusers' classes are not typed for mypy: the pipelines and models below are ``Any``
# (each getter's docstring names the class).


def _dtype(role: str, device: str) -> torch.dtype:
    dtype: torch.dtype = model_dtype(role, device)
    return dtype


def _key(role: str, model_id: str, device: str) -> tuple[str, ...]:
    return ("stylize", role, model_id, device, str(_dtype(role, device)))


def _lora_key(models: ModelSettings, device: str) -> tuple[str, ...]:
    # The adapter lives on the base pipeline's UNet: the key names both.
    return (*_key("lcm_lora", models.lcm_lora, device), models.img2img)


def _warm_model(
    cache: ModelCache,
    role: str,
    model_id: str,
    device: str,
    *,
    from_pretrained: Callable[..., Any],
    setup: Callable[[Any], None],
    **kwargs: Any,
) -> Any:
    """The model of ``role`` built once per cache: ``from_pretrained`` in the role's dtype,
    moved to ``device``, then ``setup``. A missing model is a
    :class:`~config.errors.ModelNotAvailableError`."""

    def build() -> Any:
        model: Any = load_pretrained(
            from_pretrained, model_id, role=role, dtype=_dtype(role, device), **kwargs
        )
        model.to(device)
        setup(model)
        return model

    return cache.get(_key(role, model_id, device), build)


def get_img2img_pipeline(cache: ModelCache, models: ModelSettings, device: str) -> Any:
    """The warm ``StableDiffusionImg2ImgPipeline`` of ``models.img2img`` on ``device``.

    Its UNet, VAE and text encoder are shared: the fill stage builds its inpainting
    pipeline with ``StableDiffusionInpaintPipeline.from_pipe(get_img2img_pipeline(...))``
    and allocates nothing new. Outside a running fast :func:`stylize`, every LoRA
    adapter on the UNet is disabled. Do not change the returned pipeline's scheduler or
    VAE: build a pipeline of your own with ``from_pipe(..., scheduler=...)`` instead.
    A missing model is a :class:`~config.errors.ModelNotAvailableError`.
    """

    def setup(pipe: Any) -> None:
        if device.startswith("mps"):
            pipe.enable_attention_slicing()
        pipe.set_progress_bar_config(disable=True)

    return _warm_model(
        cache,
        "img2img",
        models.img2img,
        device,
        from_pretrained=StableDiffusionImg2ImgPipeline.from_pretrained,
        setup=setup,
        safety_checker=None,  # a local art tool: no NSFW blanking of false positives
        requires_safety_checker=False,
    )


def get_controlnet(cache: ModelCache, models: ModelSettings, device: str) -> Any:
    """The warm depth ``ControlNetModel`` (``models.controlnet``); raises if it is missing."""

    def setup(net: Any) -> None:
        net.eval()
        if device.startswith("mps"):
            net.set_attention_slice("auto")

    return _warm_model(
        cache,
        "controlnet",
        models.controlnet,
        device,
        from_pretrained=ControlNetModel.from_pretrained,
        setup=setup,
    )


def get_taesd(cache: ModelCache, models: ModelSettings, device: str) -> Any:
    """The warm ``AutoencoderTiny`` (TAESD, ``models.taesd``) for fast mode."""
    return _warm_model(
        cache,
        "taesd",
        models.taesd,
        device,
        from_pretrained=AutoencoderTiny.from_pretrained,
        setup=lambda vae: vae.eval(),
    )


def _ensure_lcm_lora(cache: ModelCache, models: ModelSettings, device: str, base: Any) -> str:
    """Load the LCM-LoRA onto ``base``'s (shared) UNet once, as a named adapter, disabled.

    Returns the adapter's name. :func:`stylize` enables it for a fast job only.
    """

    def build() -> str:
        def load(source: str, **kwargs: Any) -> str:
            if not Path(source).is_dir():
                # Offline, diffusers cannot list a Hub repo's files to find the weights.
                kwargs.setdefault("weight_name", LCM_LORA_WEIGHTS)
            base.load_lora_weights(source, adapter_name=LCM_ADAPTER, **kwargs)
            return LCM_ADAPTER

        name = load_pretrained(load, models.lcm_lora, role="lcm_lora")
        base.disable_lora()
        return name

    return cache.get(_lora_key(models, device), build)


@contextmanager
def _lcm_adapter(base: Any, adapter: str | None) -> Iterator[None]:
    """Enable the LCM adapter on the shared UNet for one job; always disable it after."""
    if adapter is None:
        yield
        return
    base.enable_lora()
    base.set_adapters([adapter], adapter_weights=[1.0])
    try:
        yield
    finally:
        base.disable_lora()


# --- input checks ---------------------------------------------------------------------------


def _check_array(name: str, value: object, shape: str, ndim: int) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise PipelineError(
            f"{name} must be a numpy array of shape {shape}, got {type(value).__name__}.",
            stage=STAGE,
        )
    if value.ndim != ndim or (ndim == 3 and value.shape[2] != 3):
        raise PipelineError(f"{name} must have shape {shape}, got {value.shape}.", stage=STAGE)
    if value.dtype != np.float32:
        raise PipelineError(f"{name} must be float32 in [0, 1], got {value.dtype}.", stage=STAGE)
    if not np.isfinite(value).all():
        raise PipelineError(
            f"{name} holds NaN or infinite values: allowed finite values in [0, 1].", stage=STAGE
        )
    low, high = float(value.min()), float(value.max())
    if low < 0.0 or high > 1.0:
        raise PipelineError(
            f"{name} values must lie in [0, 1], got the range [{low:.4g}, {high:.4g}].",
            stage=STAGE,
        )
    return value


def _check_inputs(rgb: object, nearness: object, settings: JobSettings) -> None:
    """What the settings model cannot check, up front, each message naming the value and
    what is allowed: the arrays (type, shape, dtype, range, matching sizes), the canvas
    size, and a style made of blanks only (``min_length`` counts blanks). The settings'
    ranges (strength, steps, seed, structure) are :class:`~config.model.JobSettings`'
    to refuse, before any job exists."""
    image = _check_array("rgb", rgb, "(H, W, 3)", 3)
    near = _check_array("nearness", nearness, "(H, W)", 2)
    if near.shape != image.shape[:2]:
        raise PipelineError(
            f"nearness shape {near.shape} does not match the image's (H, W) = {image.shape[:2]}.",
            stage=STAGE,
        )
    if min(image.shape[:2]) < MIN_CANVAS_SIDE:
        raise PipelineError(
            f"the canvas must be at least {MIN_CANVAS_SIDE} px on each side, got "
            f"{image.shape[1]} × {image.shape[0]}.",
            stage=STAGE,
        )
    if not settings.style.strip():
        raise SettingsError(
            f"style must name a style (e.g. 'oil painting'), got {settings.style!r}."
        )


# --- sizes and steps ------------------------------------------------------------------------


def _native_side(pipe: Any) -> int:
    """The short side the model was trained at: UNet sample size × VAE scale factor."""
    return int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)


def diffusion_size(height: int, width: int, native: int) -> tuple[int, int]:
    """(h, w) to diffuse at: short side = native, long side ≤ 1.5 × native, multiples of 8."""
    scale = native / min(height, width)
    cap = native * LONG_SIDE_FACTOR
    scale = min(scale, cap / max(height, width))

    def fit(side: int) -> int:
        return max(SIZE_MULTIPLE, round(side * scale / SIZE_MULTIPLE) * SIZE_MULTIPLE)

    return fit(height), fit(width)


def plan_steps(steps: int, strength: float, *, max_steps: int) -> tuple[int, float, int]:
    """(steps to schedule, strength to run, steps that run) for img2img.

    diffusers runs ``int(scheduled × strength)`` denoising steps. When ``steps × strength``
    < 1 the schedule is lengthened (up to ``max_steps``, the scheduler's limit) so one step
    runs at the asked-for noise level; past that limit strength is raised to 1/max_steps.
    """
    if strength <= 0.0:
        return steps, 0.0, 0
    scheduled = min(max(steps, math.ceil(1.0 / strength)), max_steps)
    run_strength = strength
    if int(scheduled * run_strength) < 1:
        scheduled = min(scheduled + 1, max_steps)
        if int(scheduled * run_strength) < 1:
            run_strength = 1.0 / scheduled
    return scheduled, run_strength, min(int(scheduled * run_strength), scheduled)


# --- detail and alignment -------------------------------------------------------------------


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area filter to shrink, Lanczos to enlarge; float32 in [0, 1]."""
    if image.shape[:2] == (height, width):
        return image.astype(np.float32, copy=True)
    shrinking = height * width < image.shape[0] * image.shape[1]
    method = cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4
    out = cv2.resize(image, (width, height), interpolation=method)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def restore_detail(
    painted: np.ndarray,
    photo: np.ndarray,
    *,
    diffusion_hw: tuple[int, int],
    edges: float = DETAIL_EDGES,
    texture: float = DETAIL_TEXTURE,
    eps: float = DETAIL_EPS,
) -> np.ndarray:
    """Give a painting upscaled from ``diffusion_hw`` the photo's edges and fine detail.

    Two steps, both guided by the canvas-size ``photo``:

    * **edges** — a guided filter (He et al.) with the photo's luminance as guide, radius
      = the upscaling factor, re-fits the painting in every window as a linear function
      of the photo: the painting's colours, the photo's edge positions and sharpness.
      Blended in at ``edges``.
    * **texture** — the photo's luminance band that the diffusion size cannot hold
      (the photo minus its own trip down to ``diffusion_hw`` and back), added at
      ``texture``. Luminance only: the painting's colours stay.

    ``python -m bench.painterly --detail`` measures the choice (docs in the module).
    """
    height, width = photo.shape[:2]
    h, w = diffusion_hw
    scale = max(height / h, width / w)
    out = painted
    luma = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    if edges > 0.0:
        guided: np.ndarray = cv2.ximgproc.guidedFilter(luma, painted, max(1, round(scale)), eps)
        out = out + edges * (guided - out)
    if texture > 0.0 and scale > 1.0:
        low = cv2.cvtColor(
            resize_image(resize_image(photo, h, w), height, width), cv2.COLOR_RGB2GRAY
        )
        out = out + texture * (luma - low)[..., None]
    result: np.ndarray = np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)
    return result


def depth_boundaries(nearness: np.ndarray, *, step: float = DEPTH_EDGE_STEP) -> np.ndarray:
    """Pixels at a depth discontinuity: the 3×3 neighbourhood spans more than ``step``."""
    kernel = np.ones((3, 3), np.uint8)
    spread = cv2.dilate(nearness, kernel) - cv2.erode(nearness, kernel)
    mask: np.ndarray = spread > step
    return mask


def alignment_score(
    stylized: np.ndarray,
    boundaries: np.ndarray,
    *,
    radius: int = ALIGN_RADIUS,
    min_contrast: float = ALIGN_MIN_CONTRAST,
) -> float:
    """How well the painting's edges sit on the layer boundaries, in [0, 1].

    The fraction of ``boundaries`` pixels (a (H, W) mask: bool, or numbers > 0.5) with an
    edge of the stylized image within ``radius`` px (Chebyshev distance). Edges are
    Canny's thin, hysteresis-linked edges after a σ = 1 blur, strong when the colour step
    is at least ``min_contrast`` (0.1 = 10 % of full range) in some channel. 1.0 = every
    boundary has a painted edge beside it; an empty mask scores 1.0 (nothing to miss).
    A busy texture puts edges everywhere and scores high regardless: compare scores of
    one image under different settings, not across images.
    """
    image = _check_array("stylized", stylized, "(H, W, 3)", 3)
    if not isinstance(boundaries, np.ndarray) or boundaries.shape != image.shape[:2]:
        got = boundaries.shape if isinstance(boundaries, np.ndarray) else type(boundaries)
        raise PipelineError(
            f"boundaries must be a mask of shape {image.shape[:2]}, got {got}.", stage=STAGE
        )
    mask = boundaries if boundaries.dtype == np.bool_ else boundaries > 0.5
    if not mask.any():
        return 1.0
    u8 = to_uint8(np.asarray(cv2.GaussianBlur(image, (0, 0), 1.0), np.float32))
    high = 4.0 * 255.0 * min_contrast  # a 3×3 Sobel answers a step c with about 4c
    edges = cv2.Canny(u8, 0.5 * high, high, L2gradient=True)
    size = 2 * radius + 1
    near_edge = cv2.dilate(edges, np.ones((size, size), np.uint8)) > 0
    return float(near_edge[mask].mean())


# --- the stage ------------------------------------------------------------------------------


@dataclass
class _Models:
    """What one job runs with, and where it came from."""

    base: Any  # the shared StableDiffusionImg2ImgPipeline
    controlnet: Any | None = None
    vae: Any = None
    adapter: str | None = None
    used: dict[str, str] = field(default_factory=dict)  # role → model id
    loaded: list[str] = field(default_factory=list)  # roles loaded cold by this job
    fallback: str | None = None


def _load_models(
    settings: JobSettings, models: ModelSettings, cache: ModelCache, device: str, timer: StageTimer
) -> _Models:
    loaded: list[str] = []

    def warm(role: str, key: tuple[str, ...], get: Callable[[], T]) -> T:
        cold = key not in cache
        with timer.stage("load"):
            value = get()
        if cold:
            loaded.append(role)
        return value

    base = warm(
        "img2img",
        _key("img2img", models.img2img, device),
        lambda: get_img2img_pipeline(cache, models, device),
    )
    job = _Models(base=base, vae=base.vae, used={"img2img": models.img2img}, loaded=loaded)
    if settings.structure is Structure.CONTROLNET:
        try:
            job.controlnet = warm(
                "controlnet",
                _key("controlnet", models.controlnet, device),
                lambda: get_controlnet(cache, models, device),
            )
            job.used["controlnet"] = models.controlnet
        except ModelNotAvailableError as exc:
            job.fallback = f"{exc.reason} Ran plain img2img instead (no depth conditioning)."
            logger.warning("painterly: {} Run `strata models pull` to get it.", job.fallback)
    if settings.fast:
        job.adapter = warm(
            "lcm_lora",
            _lora_key(models, device),
            lambda: _ensure_lcm_lora(cache, models, device, base),
        )
        job.vae = warm(
            "taesd", _key("taesd", models.taesd, device), lambda: get_taesd(cache, models, device)
        )
        job.used.update(lcm_lora=models.lcm_lora, taesd=models.taesd)
    return job


def _job_pipeline(job: _Models, fast: bool) -> Any:
    """A pipeline over the shared modules with its own fresh scheduler and the job's VAE."""
    base = job.base
    scheduler_cls: Any = LCMScheduler if fast else type(base.scheduler)
    shared: dict[str, Any] = {
        "vae": job.vae,
        "text_encoder": base.text_encoder,
        "tokenizer": base.tokenizer,
        "unet": base.unet,
        "scheduler": scheduler_cls.from_config(base.scheduler.config),
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }
    cls: Any = StableDiffusionImg2ImgPipeline
    if job.controlnet is not None:
        cls, shared["controlnet"] = StableDiffusionControlNetImg2ImgPipeline, job.controlnet
    pipe = cls(**shared)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def stylize(
    rgb: np.ndarray,
    nearness: np.ndarray,
    *,
    settings: JobSettings,
    models: ModelSettings,
    cache: ModelCache,
    device: str | None = None,
) -> StylizeResult:
    """Restyle ``rgb`` (float32 (H, W, 3), [0, 1]) as a painting; same size back.

    ``nearness`` (float32 (H, W), [0, 1], 1 = nearest) is the map that cuts the layers;
    with ``structure: controlnet`` it conditions the diffusion. ``device`` defaults to
    ``models.device`` resolved (auto = cuda > mps > cpu). ``strength`` 0 returns the
    photo unchanged (a copy) without loading any model. ``info`` is JSON-ready for the
    manifest: models (role → id, revision), prompts, steps, device, dtype, timings, …
    """
    _check_inputs(rgb, nearness, settings)
    check_opencv()  # the detail pass needs cv2.ximgproc: a clash gets its fix, not a traceback
    timer = StageTimer(None)
    device = device or resolve_device(models.device)
    height, width = rgb.shape[:2]
    with timer.stage("prepare"):
        prompt = build_prompt(settings.style)
    info: dict[str, Any] = {
        "models": {},
        "style": prompt.key,
        "prompt": prompt.prompt,
        "negative_prompt": prompt.negative_prompt,
        "strength": settings.strength,
        "seed": settings.seed,
        "steps": settings.steps,
        "structure": settings.structure.value,
        "fast": settings.fast,
        "device": device,
        "dtype": str(_dtype("img2img", device)).removeprefix("torch."),
        "canvas_size": [width, height],
    }
    if settings.strength == 0.0:
        info.update(
            steps_scheduled=0,
            steps_run=0,
            structure_used="none",
            loaded=[],
            skipped="strength is 0: the photo is returned unchanged",
        )
        info["timings"] = timer.timings | {"total": timer.total()}
        return StylizeResult(rgb.copy(), info)

    job = _load_models(settings, models, cache, device, timer)
    info["models"] = {
        role: {"id": model_id, "revision": model_revision(model_id)}
        for role, model_id in job.used.items()
    }
    with timer.stage("prepare"):
        pipe = _job_pipeline(job, settings.fast)
        h, w = diffusion_size(height, width, _native_side(pipe))
        scheduler_config = pipe.scheduler.config
        max_steps = int(
            scheduler_config.original_inference_steps
            if settings.fast
            else scheduler_config.num_train_timesteps
        )
        scheduled, run_strength, planned = plan_steps(
            LCM_STEPS if settings.fast else settings.steps, settings.strength, max_steps=max_steps
        )
        guidance = LCM_GUIDANCE if settings.fast else QUALITY_GUIDANCE
        kwargs: dict[str, Any] = {}
        if job.controlnet is not None:
            control = np.repeat(resize_image(nearness, h, w)[None, :, :, None], 3, axis=3)
            kwargs = {
                "control_image": control,
                "controlnet_conditioning_scale": CONTROLNET_SCALE,
                "height": h,
                "width": w,
            }
        init = resize_image(rgb, h, w)[None]
        generator = torch.Generator(device=device).manual_seed(settings.seed)

    with _lcm_adapter(job.base, job.adapter), torch.inference_mode():
        with timer.stage("text_encode"):
            cond, uncond = pipe.encode_prompt(
                prompt.prompt, device, 1, guidance > 1.0, prompt.negative_prompt
            )
        with timer.stage("denoise"):
            ran: list[int] = []

            def count_step(_pipe: Any, step: int, _t: Any, tensors: dict[str, Any]) -> Any:
                ran.append(step)
                return tensors

            latents = pipe(
                callback_on_step_end=count_step,
                image=init,
                prompt_embeds=cond,
                negative_prompt_embeds=uncond,
                strength=run_strength,
                num_inference_steps=scheduled,
                guidance_scale=guidance,
                generator=generator,
                output_type="latent",
                **kwargs,
            ).images
        with timer.stage("decode"):
            vae = pipe.vae
            decoded = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
            small = pipe.image_processor.postprocess(decoded, output_type="np")[0]

    with timer.stage("upscale"):
        painted = resize_image(np.ascontiguousarray(small, dtype=np.float32), height, width)
    with timer.stage("detail"):
        image = restore_detail(painted, rgb, diffusion_hw=(h, w))
    info.update(
        steps_scheduled=scheduled,
        steps_planned=planned,
        steps_run=len(ran),  # UNet steps (PNDM repeats one: can be steps × strength + 1)
        strength_run=run_strength,
        guidance_scale=guidance,
        structure_used="controlnet" if job.controlnet is not None else "none",
        structure_fallback=job.fallback,
        controlnet_conditioning_scale=CONTROLNET_SCALE if job.controlnet is not None else None,
        scheduler=type(pipe.scheduler).__name__,
        vae=type(pipe.vae).__name__,
        lora_adapters=[job.adapter] if job.adapter else [],
        diffusion_size=[w, h],
        detail={
            "method": "lanczos + guided filter (luma guide) + luma detail transfer",
            "edges": DETAIL_EDGES,
            "texture": DETAIL_TEXTURE,
            "eps": DETAIL_EPS,
        },
        loaded=job.loaded,
        timings=timer.timings | {"total": timer.total()},
    )
    return StylizeResult(image, info)


__all__ = [
    "StylePrompt",
    "StylizeResult",
    "alignment_score",
    "depth_boundaries",
    "get_controlnet",
    "get_img2img_pipeline",
    "get_taesd",
    "restore_detail",
    "stylize",
]
