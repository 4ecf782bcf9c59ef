"""The one entry point: ``run(job) -> JobResult``.

decode → depth → (painterly: stylize) → layers (:mod:`pipeline.stack`: cuts, edges,
fill) → write. Outputs are written into a hidden temporary folder beside the destination
and renamed into place, so a reader never sees a half-written job folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from threading import Lock
from typing import Any

import cv2
import numpy as np
from loguru import logger

from config.model import JobSettings, Mode
from pipeline import fill as fill_stage
from pipeline import output
from pipeline.depth import DepthEstimate, get_depth_estimator, nearness_from_raw
from pipeline.formats import find_depth_file
from pipeline.inpaint import DiffusionInpainter
from pipeline.io import DecodedImage, decode_image, encode_gray16_png, read_depth_file
from pipeline.job import Job, JobResult, ProgressCallback
from pipeline.layers import FillFunction
from pipeline.models import ModelCache, model_dtype, resolve_device
from pipeline.stack import build_stack
from pipeline.timing import StageTimer, utc_now

_process_cache = ModelCache()


def run(
    job: Job,
    *,
    cache: ModelCache | None = None,
    progress: ProgressCallback | None = None,
) -> JobResult:
    """Turn one photo into a finished job folder. Raises :class:`config.errors.StrataError`."""
    cache = cache if cache is not None else _process_cache
    created_at = job.created_at or utc_now()
    timer = StageTimer(progress)
    settings = job.settings
    with timer.stage("decode"):
        decoded = decode_image(
            job.input_path,
            max_side=settings.max_side,
            max_file_size_mb=job.limits.max_file_size_mb,
            max_pixels=job.limits.max_pixels,
        )
    depth_file = find_depth_file(job.input_path, settings)
    with timer.stage("depth"):
        depth = _estimate_depth(decoded, depth_file, settings, job, cache)
    with ExitStack() as ahead:  # work started before the stage that waits for it
        ahead.enter_context(_opencv_threads(1))  # from here on, the stages run side by side
        # The depth map's PNG needs nothing else: it is encoded beside the layering.
        encoder = ahead.enter_context(ThreadPoolExecutor(max_workers=1))
        depth_png = encoder.submit(encode_gray16_png, depth.nearness)
        working = decoded.rgb
        painterly: dict[str, Any] | None = None
        if job.mode is Mode.PAINTERLY:
            with timer.stage("stylize"):
                working, painterly = _stylize(decoded.rgb, depth, job, cache)
        fill, fill_info = _fill_function(job, cache)
        stack = build_stack(working, depth, num_layers=settings.num_layers, fill=fill, timer=timer)
        if painterly is not None:
            painterly["alignment_score"] = _alignment(working, stack.labels)
        if progress:
            progress("write", 0.6)
        result = output.write_job(
            job,
            output.JobOutputs(
                decoded=decoded,
                working=working,
                depth=depth,
                depth_png=depth_png,
                depth_file=depth_file,
                depth_ranges=stack.depth_ranges,
                layers=stack.layers,
                parallax=stack.parallax,
                fill=fill_info,
                painterly=painterly,
                created_at=created_at,
            ),
            timer=timer,
        )
    logger.debug("job {} wrote {} in {:.2f}s", job.job_id, result.output_dir, timer.total())
    if progress:
        progress("done", 1.0)
    return result


@contextmanager
def _opencv_threads(count: int) -> Iterator[None]:
    """OpenCV's own thread pool held at ``count`` threads for the block, then restored.

    Decoding is a few large serial operations that OpenCV's pool speeds up; after it, the
    stages run side by side on the pipeline's own threads, and OpenCV's pool beside them
    would oversubscribe the cores: more CPU time for the same result.
    """
    previous = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def _estimate_depth(
    decoded: DecodedImage,
    depth_file: Path | None,
    settings: JobSettings,
    job: Job,
    cache: ModelCache,
) -> DepthEstimate:
    height, width = decoded.rgb.shape[:2]
    if depth_file is None:
        return get_depth_estimator(cache, job.models).estimate(decoded.rgb)
    raw = read_depth_file(
        depth_file, image_size=decoded.source_size, image_name=job.input_path.name
    )
    nearness = nearness_from_raw(raw, kind=settings.depth_map_kind, canvas_size=(width, height))
    return DepthEstimate(
        nearness=nearness,
        native_size=(raw.shape[1], raw.shape[0]),
        source="file",
        model=None,
    )


def _stylize(
    rgb: np.ndarray, depth: DepthEstimate, job: Job, cache: ModelCache
) -> tuple[np.ndarray, dict[str, Any]]:
    from pipeline.stylize import stylize

    result = stylize(rgb, depth.nearness, settings=job.settings, models=job.models, cache=cache)
    return result.image, dict(result.info)


def _alignment(stylized: np.ndarray, labels: np.ndarray) -> float:
    """The painterly ``alignment_score``: how well the painting's edges sit on the
    boundaries between the layers as cut (computed here, once the layers exist)."""
    from pipeline.stylize import alignment_score

    boundaries = np.zeros(labels.shape, dtype=bool)
    boundaries[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    boundaries[1:, :] |= labels[1:, :] != labels[:-1, :]
    return round(float(alignment_score(stylized, boundaries)), 4)


def _diffusion_inpainter(job: Job, cache: ModelCache, model_id: str) -> DiffusionInpainter:
    """``models.inpaint`` loaded once per worker (per id, device and dtype); when it names
    the img2img model, the painterly pipeline's UNet, VAE and text encoder (and dtype)
    are shared instead of loaded twice."""
    device = resolve_device(job.models.device)
    if model_id == job.models.img2img:
        from pipeline.stylize import get_img2img_pipeline

        def share() -> DiffusionInpainter:
            pipe = get_img2img_pipeline(cache, job.models, device)
            return DiffusionInpainter.sharing(pipe, model_id=model_id, device=device)

        return cache.get(("inpaint-shared", model_id, device), share)  # img2img's dtype
    dtype = model_dtype("inpaint", device)
    return cache.get(
        ("inpaint", model_id, device, str(dtype)),
        lambda: DiffusionInpainter(model_id, device=device, dtype=dtype),
    )


def _fill_function(job: Job, cache: ModelCache) -> tuple[FillFunction, dict[str, Any]]:
    """The fill backend for this job: the diffusion inpainter when ``models.inpaint`` is
    set, else the built-in weight-free fill; and its manifest entry."""
    if job.models.inpaint:
        model_id = job.models.inpaint
        inpainter = _diffusion_inpainter(job, cache, model_id)
        lock = Lock()  # one diffusion pipeline: layers take turns

        def diffuse(image: np.ndarray, known: np.ndarray, region: np.ndarray | None) -> np.ndarray:
            with lock:
                filled: np.ndarray = inpainter.fill(
                    image, known, region=region, seed=job.settings.seed
                )
            return filled

        return diffuse, {"method": "diffusion", "model": model_id}

    def built_in(image: np.ndarray, known: np.ndarray, region: np.ndarray | None) -> np.ndarray:
        filled: np.ndarray = fill_stage.fill_hidden(image, known, region=region)
        return filled

    return built_in, {"method": fill_stage.FILL_METHOD}
