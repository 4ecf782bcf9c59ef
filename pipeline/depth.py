"""Depth: one monocular depth model (Depth Anything V2 by default) and depth-map conversion.

Everything downstream works in *nearness*: a float32 map at the canvas size, 0 = farthest,
1 = nearest. It comes either from a depth file beside the photo or from the model; both go
through :func:`nearness_from_raw`, so a file and a model output are resized the same way
(edges aligned to the image's edges, half-pixel centres — never ``align_corners``).

Preprocessing is done here with torch, not by the library's image processor, reading the
processor's own settings (target size, multiple, aspect rule, mean/std, resample) and
reproducing its resize with antialiased bicubic interpolation: the torchvision processor's
method, within one 8-bit step of the PIL one. Why: the float input keeps its precision
(the processor would take 8-bit pixels), the numbers are the same whether or not
torchvision is installed, and it costs a fraction of the processor's time
(``python -m bench.depth_forward`` measures both). Processors with other rules (padding,
cropping, other filters) fall back to the processor.

The model runs in :func:`pipeline.models.model_dtype` on the configured device.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from config.errors import InputError
from config.model import DepthMapKind, ModelSettings
from pipeline.io import to_uint8
from pipeline.models import (
    ModelCache,
    load_pretrained,
    model_dtype,
    model_revision,
    resolve_device,
)

# A map whose aspect ratio differs from the canvas's by more than this (relative) is refused,
# beyond the ±1 pixel any rounding of a resized map may add.
DEFAULT_ASPECT_TOLERANCE = 0.02
_RESAMPLE_MODES = {2: "bilinear", 3: "bicubic"}  # PIL resample codes the fast path reproduces


@dataclass(frozen=True)
class DepthEstimate:
    """Nearness at the canvas size, and where it came from."""

    nearness: np.ndarray  # float32 (H, W) at the canvas size: 0 = farthest, 1 = nearest
    native_size: tuple[int, int]  # (width, height) the depth was produced at (model output/file)
    source: str  # "file" or "model"
    model: dict[str, str] | None  # {"id": ..., "revision": ...} for the manifest


# --- raw depth -> nearness ---------------------------------------------------------------


def nearness_from_raw(
    raw: np.ndarray,
    *,
    kind: DepthMapKind,
    canvas_size: tuple[int, int],
    aspect_tolerance: float = DEFAULT_ASPECT_TOLERANCE,
) -> np.ndarray:
    """A raw depth or disparity map (any resolution, the canvas's aspect) -> nearness.

    - ``kind=disparity``: larger = nearer (Depth Anything's relative output, most depth PNGs).
      ``kind=depth``: larger = farther; flipped *linearly*. Values are treated as relative
      (affine-invariant), so no ``1/depth``: that would need metric depth with a known shift.
    - Normalised min-max over the finite values, so 8-bit, 16-bit and float maps give the
      same result. Non-finite values (NaN, ±inf: holes, sky) become the farthest value.
      A constant map (or one with no finite value) gives all zeros.
    - Resized to ``canvas_size`` = (width, height) with pixel *edges* aligned to the image's
      edges (half-pixel centres): ``INTER_AREA`` when shrinking, ``INTER_LINEAR`` otherwise.

    Returns float32 (height, width) in [0, 1].
    """
    width, height = _check_canvas_size(canvas_size)
    if not 0.0 <= aspect_tolerance <= 1.0:
        raise ValueError(f"aspect_tolerance = {aspect_tolerance!r} is invalid: allowed 0.0–1.0.")
    kind = DepthMapKind(kind)
    values = _as_2d_float(raw)
    _check_aspect(values.shape, (height, width), tolerance=aspect_tolerance)
    near = _normalised_nearness(values, kind=kind)
    return _resize_half_pixel(near, size=(width, height))


def _check_canvas_size(canvas_size: tuple[int, int]) -> tuple[int, int]:
    ok = (
        isinstance(canvas_size, tuple | list)
        and len(canvas_size) == 2
        and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in canvas_size)
        and all(v >= 1 for v in canvas_size)
    )
    if not ok:
        raise ValueError(
            f"canvas_size = {canvas_size!r} is invalid: allowed (width, height), integers ≥ 1."
        )
    return int(canvas_size[0]), int(canvas_size[1])


def _as_2d_float(raw: np.ndarray) -> np.ndarray:
    array = np.asarray(raw)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise InputError(
            f"The depth map has shape {array.shape}: allowed one channel, (height, width) ≥ 1.",
            hint="Save the depth map as a single-channel (grayscale) image or a 2-D array.",
        )
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise InputError(
            f"The depth map has values of type {array.dtype}: allowed integers or floats.",
            hint="Save the depth map as 8- or 16-bit grayscale, float TIFF or a numeric .npy.",
        )
    if np.issubdtype(array.dtype, np.complexfloating):
        raise InputError(
            f"The depth map has complex values ({array.dtype}): allowed integers or floats.",
            hint="Save the depth map as 8- or 16-bit grayscale, float TIFF or a numeric .npy.",
        )
    # float64 keeps 32-bit integer maps exact through the min-max step.
    dtype = np.float64 if array.dtype.itemsize > 2 else np.float32
    return array.astype(dtype, copy=False)


def _check_aspect(shape: tuple[int, ...], canvas_hw: tuple[int, int], *, tolerance: float) -> None:
    (raw_h, raw_w), (can_h, can_w) = shape[:2], canvas_hw
    expected_h = raw_w * can_h / can_w  # the raw height that has exactly the canvas's aspect
    if abs(raw_h - expected_h) <= 1.0 or abs(raw_h / expected_h - 1.0) <= tolerance:
        return
    raise InputError(
        f"The depth map is {raw_w}x{raw_h} but the image is {can_w}x{can_h}: their aspect "
        f"ratios ({raw_w / raw_h:.4f} vs {can_w / can_h:.4f}) differ by more than "
        f"{tolerance:.0%}.",
        hint="Use a depth map made from this photo (any size, same aspect ratio), "
        "or remove it to let Strata estimate depth.",
    )


def _normalised_nearness(values: np.ndarray, *, kind: DepthMapKind) -> np.ndarray:
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, np.float32)
    all_finite = bool(finite.all())
    present = values if all_finite else values[finite]
    low, high = float(present.min()), float(present.max())
    if high <= low:
        return np.zeros(values.shape, np.float32)
    if kind is DepthMapKind.DISPARITY:
        near = (values - low) * (1.0 / (high - low))
    else:
        near = (high - values) * (1.0 / (high - low))
    near = near.astype(np.float32, copy=False)
    if not all_finite:
        near[~finite] = 0.0  # holes and sky: farthest
    return np.clip(near, 0.0, 1.0, out=near)


def _resize_half_pixel(image: np.ndarray, *, size: tuple[int, int]) -> np.ndarray:
    """Resize a float32 map to ``size`` = (width, height), pixel edges on image edges.

    Shrinking uses area averaging (no aliasing); anything else bilinear interpolation with
    half-pixel centres. Same size: returned as float32 without resampling.
    """
    width, height = _check_canvas_size(size)
    source = np.ascontiguousarray(image, dtype=np.float32)
    src_h, src_w = source.shape[:2]
    if (src_w, src_h) == (width, height):
        return source
    shrinking = width <= src_w and height <= src_h
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized: np.ndarray = cv2.resize(source, (width, height), interpolation=interpolation)
    return resized


# --- the model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PreprocessSpec:
    """What a DPT-style image processor does, read from its own config."""

    size: tuple[int, int]  # target (height, width)
    keep_aspect_ratio: bool
    multiple: int  # ensure_multiple_of
    mode: str  # "bicubic" or "bilinear"
    mean: tuple[float, float, float] | None  # None: no normalisation
    std: tuple[float, float, float] | None


def preprocess_spec(processor: Any) -> PreprocessSpec | None:
    """The fast path's settings from a loaded processor; None if it does something else."""
    size = getattr(processor, "size", None)
    height = _size_value(size, "height")
    width = _size_value(size, "width")
    resample = getattr(processor, "resample", None)
    resample_code = int(resample) if isinstance(resample, int) else None
    supported = (
        getattr(processor, "do_resize", False) is True
        and not getattr(processor, "do_pad", False)
        and not getattr(processor, "do_center_crop", False)
        and not getattr(processor, "do_reduce_labels", False)
        and hasattr(processor, "ensure_multiple_of")
        and hasattr(processor, "keep_aspect_ratio")
        and height is not None
        and width is not None
        and resample_code in _RESAMPLE_MODES
    )
    if not supported or height is None or width is None or resample_code is None:
        return None
    normalise = bool(getattr(processor, "do_normalize", False))
    return PreprocessSpec(
        size=(height, width),
        keep_aspect_ratio=bool(processor.keep_aspect_ratio),
        multiple=max(1, int(processor.ensure_multiple_of or 1)),
        mode=_RESAMPLE_MODES[resample_code],
        mean=_triple(processor.image_mean) if normalise else None,
        std=_triple(processor.image_std) if normalise else None,
    )


def _size_value(size: Any, key: str) -> int | None:
    value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return int(value) if isinstance(value, int) and value > 0 else None


def _triple(values: Any) -> tuple[float, float, float]:
    items = [float(v) for v in (values if isinstance(values, list | tuple) else [values] * 3)]
    if len(items) != 3:
        raise ValueError(f"image mean/std = {values!r} is invalid: allowed 3 values (R, G, B).")
    return items[0], items[1], items[2]


def _model_input_size(
    image_size: tuple[int, int],
    *,
    target: tuple[int, int],
    keep_aspect_ratio: bool,
    multiple: int,
) -> tuple[int, int]:
    """(width, height) the DPT processor resizes an image of ``image_size`` (width, height) to.

    The processor's rule: scale each side to ``target`` = (height, width); with
    ``keep_aspect_ratio`` use the one scale that changes the image least; round each side
    to a multiple of ``multiple`` (Python ``round``, as the processor does).
    """
    in_w, in_h = image_size
    out_h, out_w = target
    if min(in_w, in_h, out_w, out_h, multiple) < 1:
        raise ValueError(
            f"image_size = {image_size!r}, target = {target!r}, multiple = {multiple!r} are "
            "invalid: allowed integers ≥ 1."
        )
    scale_h, scale_w = out_h / in_h, out_w / in_w
    if keep_aspect_ratio:
        if abs(1 - scale_w) < abs(1 - scale_h):
            scale_h = scale_w
        else:
            scale_w = scale_h

    def constrain(value: float) -> int:
        rounded = round(value / multiple) * multiple
        return rounded if rounded >= 1 else math.ceil(value / multiple) * multiple

    return constrain(scale_w * in_w), constrain(scale_h * in_h)


def preprocess(rgb: np.ndarray, *, spec: PreprocessSpec) -> torch.Tensor:
    """rgb float32 (H, W, 3) in [0, 1] -> pixel_values (1, 3, h, w) float32, as the processor.

    Antialiased interpolation (as the torchvision processor; PIL's filters within one 8-bit
    step), clamped to [0, 1] like an 8-bit image, then ``(x - mean) / std``.
    """
    height, width = rgb.shape[:2]
    out_w, out_h = _model_input_size(
        (width, height),
        target=spec.size,
        keep_aspect_ratio=spec.keep_aspect_ratio,
        multiple=spec.multiple,
    )
    pixels = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)
    pixels = pixels.unsqueeze(0)
    if (out_h, out_w) != (height, width):
        pixels = torch.nn.functional.interpolate(
            pixels, size=(out_h, out_w), mode=spec.mode, antialias=True, align_corners=False
        )
        pixels = pixels.clamp_(0.0, 1.0)
    else:
        pixels = pixels.clone()
    if spec.mean is not None and spec.std is not None:
        mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1)
        pixels = pixels.sub_(mean).div_(std)
    return pixels.contiguous()


def check_rgb(rgb: np.ndarray) -> None:
    """The estimator's input contract: float (H, W, 3) in [0, 1], finite."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", type(rgb).__name__)
        raise ValueError(f"rgb has shape {shape}: allowed (height, width, 3).")
    if not np.issubdtype(rgb.dtype, np.floating):
        raise ValueError(f"rgb has dtype {rgb.dtype}: allowed float32 in [0, 1].")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"rgb has shape {rgb.shape}: allowed height, width ≥ 1.")
    low, high = float(rgb.min()), float(rgb.max())
    if not (math.isfinite(low) and math.isfinite(high)) or low < -1e-6 or high > 1 + 1e-6:
        raise ValueError(f"rgb values span {low}–{high}: allowed 0.0–1.0.")


def _use_all_cores() -> None:
    """torch's intra-op threads = the CPU count (its default is the physical-core count)."""
    torch.set_num_threads(max(1, os.cpu_count() or 1))


class DepthEstimator:
    """A loaded depth model: ``estimate(rgb)`` -> :class:`DepthEstimate` at the image's size."""

    def __init__(self, model_id: str, *, device: str, dtype: torch.dtype | None = None) -> None:
        from transformers import (
            AutoImageProcessor,
            AutoModelForDepthEstimation,
        )

        self.model_id = model_id
        self.device = torch.device(device)
        self.dtype = dtype if dtype is not None else model_dtype("depth", device)
        if self.device.type == "cpu":
            _use_all_cores()
        self.processor = load_pretrained(
            AutoImageProcessor.from_pretrained, model_id, role="depth", backend="pil"
        )
        model = load_pretrained(
            AutoModelForDepthEstimation.from_pretrained, model_id, role="depth", dtype=self.dtype
        )
        self.model = model.to(self.device).eval()
        self.spec = preprocess_spec(self.processor)
        estimation_type = getattr(self.model.config, "depth_estimation_type", "relative")
        # Relative models (Depth Anything, DPT) predict disparity; metric heads predict depth.
        self.kind = DepthMapKind.DEPTH if estimation_type == "metric" else DepthMapKind.DISPARITY
        self.info = {"id": model_id, "revision": model_revision(model_id)}

    def pixel_values(self, rgb: np.ndarray) -> torch.Tensor:
        """The model's input for ``rgb``: the fast path, or the processor when it cannot apply."""
        if self.spec is not None:
            return preprocess(rgb, spec=self.spec)
        as_bytes = to_uint8(rgb)
        batch = self.processor(images=as_bytes, return_tensors="pt")
        pixels: torch.Tensor = batch["pixel_values"]
        return pixels

    def predict(self, pixel_values: torch.Tensor) -> np.ndarray:
        """The bare forward pass: raw model output (h, w) as float32."""
        with torch.inference_mode():
            inputs = pixel_values.to(self.device, self.dtype)
            output = self.model(pixel_values=inputs).predicted_depth
        raw: np.ndarray = output[0].float().cpu().numpy()
        return raw

    def estimate(self, rgb: np.ndarray) -> DepthEstimate:
        """rgb float32 (H, W, 3) in [0, 1] -> nearness at (W, H)."""
        check_rgb(rgb)
        height, width = rgb.shape[:2]
        raw = self.predict(self.pixel_values(rgb))
        out_h, out_w = raw.shape
        # The processor stretched the photo to multiples of the patch size (up to half a
        # patch per side: 7 % for a small input); stretching the output back undoes exactly
        # that, so the aspect check, meant for depth files, does not apply here.
        nearness = nearness_from_raw(
            raw, kind=self.kind, canvas_size=(width, height), aspect_tolerance=1.0
        )
        return DepthEstimate(
            nearness=nearness, native_size=(out_w, out_h), source="model", model=dict(self.info)
        )


def get_depth_estimator(cache: ModelCache, models: ModelSettings) -> DepthEstimator:
    """The configured depth model, loaded once per process (per id, device and dtype)."""
    device = resolve_device(models.device)
    dtype = model_dtype("depth", device)
    key = ("depth", models.depth, device, str(dtype))
    return cache.get(key, lambda: DepthEstimator(models.depth, device=device, dtype=dtype))
