"""Diffusion inpainting of hidden regions: the optional, model-based fill.

One model, one file: a Stable Diffusion inpainting pipeline (``models.inpaint``), loaded
once per worker, offline-first. It is used instead of the built-in
:func:`pipeline.fill.fill_hidden` when ``models.inpaint`` is set, typically on a GPU.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from pipeline.fill import F32, Mask, check_fill_inputs, fill_hidden, smooth_continuation
from pipeline.models import load_pretrained, model_dtype

if TYPE_CHECKING:
    import torch


class DiffusionInpainter:
    """Fill hidden background with a Stable Diffusion inpainting model.

    The model (a ``StableDiffusionInpaintPipeline`` folder or Hugging Face id) is loaded
    once, offline-first, through :func:`pipeline.models.load_pretrained`; a missing model
    is a :class:`~config.errors.ModelNotAvailableError` naming it. Each group of nearby
    target pixels is cropped with context, diffused at the model's native size, resized
    back, colour-matched to the known pixels around it, and pasted into the target
    pixels only: known pixels stay exact and hidden (foreground) pixels are never shown
    to the model.
    """

    def __init__(self, model_id: str, *, device: str, dtype: torch.dtype | None = None) -> None:
        from diffusers import StableDiffusionInpaintPipeline

        self.model_id = model_id
        self.device = device
        self.dtype = dtype if dtype is not None else model_dtype("inpaint", device)
        pipe: Any = load_pretrained(
            StableDiffusionInpaintPipeline.from_pretrained,
            model_id,
            role="inpaint",
            dtype=self.dtype,
            safety_checker=None,  # a local art tool: no blanking of false positives
            requires_safety_checker=False,
        )
        pipe.to(device)
        if device.startswith("mps"):
            pipe.enable_attention_slicing()
        self._adopt(pipe)

    @classmethod
    def sharing(cls, pipe: Any, *, model_id: str, device: str) -> DiffusionInpainter:
        """An inpainter on the weights of an already loaded SD pipeline (the painterly
        img2img one): ``from_pipe`` shares its UNet, VAE and text encoder, so nothing new
        is loaded or allocated. A plain (4-channel) UNet inpaints by blending latents."""
        from diffusers import StableDiffusionInpaintPipeline

        inpainter = cls.__new__(cls)
        inpainter.model_id = model_id
        inpainter.device = device
        inpainter.dtype = pipe.unet.dtype
        inpainter._adopt(StableDiffusionInpaintPipeline.from_pipe(pipe))
        return inpainter

    def _adopt(self, pipe: Any) -> None:
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe
        self.native = int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)

    def fill(
        self,
        image: np.ndarray,
        known: np.ndarray,
        *,
        region: np.ndarray | None = None,
        seed: int = 0,
        steps: int = 20,
        prompt: str = "background",
        negative_prompt: str = "object, person, animal, text, watermark, frame",
        guidance_scale: float = 7.5,
        context: float = 0.25,
    ) -> F32:
        """Like :func:`fill_hidden`, with the target pixels painted by the model.

        ``context`` is the share of a target group's size added around it as context.
        Groups are painted one after another, each seeing the ones before it as known,
        so that long or overlapping crops join without seams. The same ``seed``, inputs
        and model give the same pixels.
        """
        img, known_b, target = check_fill_inputs(image, known, region)
        out = np.array(img, dtype=np.float32, copy=True, order="C")
        if not target.any():
            return out
        # Hidden pixels are never shown to the model: it sees the weight-free fill there.
        canvas = fill_hidden(img, known_b)
        have = known_b.copy()
        for y0, y1, x0, x1 in _target_boxes(target, context=context):
            win = (slice(y0, y1), slice(x0, x1))
            todo = target[win] & ~have[win]
            if not todo.any():
                continue
            painted = self._paint(
                canvas[win],
                have[win],
                seed=seed,
                steps=steps,
                prompt=prompt,
                negative_prompt=negative_prompt,
                guidance_scale=guidance_scale,
            )
            painted = _match_known(painted, canvas[win], have[win])
            ys, xs = np.nonzero(todo)
            values = np.clip(painted[ys, xs], 0.0, 1.0)
            out[win][ys, xs] = values
            canvas[win][ys, xs] = values
            have[win][ys, xs] = True
        return out

    def _paint(
        self,
        crop: F32,
        known: Mask,
        *,
        seed: int,
        steps: int,
        prompt: str,
        negative_prompt: str,
        guidance_scale: float,
    ) -> F32:
        """Diffuse one crop at the native size; returns it at the crop's size."""
        import torch

        from pipeline.stylize import diffusion_size  # loads diffusers, as this model does

        ch, cw = known.shape
        height, width = diffusion_size(ch, cw, self.native)
        small = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)
        hidden = (
            cv2.resize((~known).astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
            > 0.0
        )
        mask = hidden.astype(np.float32)[None, :, :, None]
        generator = torch.Generator(device="cpu").manual_seed(seed)
        with torch.inference_mode():
            result: Any = self.pipe(
                prompt=prompt,
                negative_prompt=negative_prompt,
                image=np.clip(small, 0.0, 1.0)[None],
                mask_image=mask,
                height=height,
                width=width,
                strength=1.0,
                num_inference_steps=steps,
                guidance_scale=guidance_scale,
                generator=generator,
                output_type="np",
            )
        painted = np.asarray(result.images[0], dtype=np.float32)
        return np.asarray(cv2.resize(painted, (cw, ch), interpolation=cv2.INTER_CUBIC), np.float32)


Box = tuple[int, int, int, int]  # y0, y1, x0, x1


def _target_boxes(
    target: Mask, *, context: float, max_groups: int = 16, max_aspect: float = 1.5
) -> list[Box]:
    """Crops ``(y0, y1, x0, x1)`` that together hold every target pixel, with context.

    Each connected group of target pixels gets ``context`` times its size (at least
    16 px) on every side; overlapping boxes merge (past ``max_groups`` groups, one box
    holds everything); a box longer than ``max_aspect`` times its width is cut into
    overlapping tiles, so that each diffuses near the model's native size.
    """
    h, w = target.shape
    count, _, stats, _ = cv2.connectedComponentsWithStats(target.view(np.uint8), connectivity=8)
    boxes: list[Box] = []
    for x, y, bw, bh, _area in stats[1:].tolist():
        pad = max(16, int(context * max(bw, bh)))
        boxes.append((max(0, y - pad), min(h, y + bh + pad), max(0, x - pad), min(w, x + bw + pad)))
    if count - 1 > max_groups:
        boxes = _merge_overlapping(boxes)
    if len(boxes) > max_groups:
        boxes = [_union(boxes)]
    boxes = _merge_overlapping(boxes)
    return [tile for box in boxes for tile in _tiles(box, max_aspect=max_aspect)]


def _union(boxes: list[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        max(b[1] for b in boxes),
        min(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _merge_overlapping(boxes: list[Box]) -> list[Box]:
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        for i, a in enumerate(merged):
            for j in range(i + 1, len(merged)):
                b = merged[j]
                if a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]:
                    merged[i] = _union([a, b])
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return merged


def _tiles(box: Box, *, max_aspect: float) -> list[Box]:
    """``box`` cut along its long side into tiles of aspect <= ``max_aspect`` that
    overlap by a quarter of the short side."""
    y0, y1, x0, x1 = box
    height, width = y1 - y0, x1 - x0
    short, long_ = min(height, width), max(height, width)
    count = max(1, math.ceil(long_ / (max_aspect * short)))
    if count == 1:
        return [box]
    overlap = short // 4
    edges = np.linspace(0, long_, count + 1).round().astype(int)
    tiles: list[Box] = []
    for a, b in itertools.pairwise(edges):
        lo, hi = max(0, int(a) - overlap), min(long_, int(b) + overlap)
        tiles.append((y0, y1, x0 + lo, x0 + hi) if width >= height else (y0 + lo, y0 + hi, x0, x1))
    return tiles


def _match_known(painted: F32, img: F32, known: Mask) -> F32:
    """``painted`` plus the push-pull continuation of its error on the known pixels.

    Exact at the known pixels, smooth inside holes: removes the colour shift a VAE round
    trip leaves and the seam at the hole's edge.
    """
    if not known.any():
        return painted
    error = np.where(known[:, :, None], img - painted, np.float32(0.0)).astype(np.float32)
    out: F32 = painted + smooth_continuation(error, known, gain=64.0, smooth_iters=2)
    return out
