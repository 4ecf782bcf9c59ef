"""Filling what nearer layers hide, so that a parallax shift reveals background, not holes.

The default method (:data:`FILL_METHOD`) needs no model weights and is built for speed:

1. **Low frequencies — push-pull.** A normalised-convolution pyramid (Gaussian "push" of
   the known pixels and their weight, then "pull" back up, each level keeping its own
   estimate where it has enough support) gives a smooth continuation of colour and
   illumination into every hole, whatever its size or shape. A few Jacobi sweeps per level
   make the continuation close to a harmonic (membrane) fill, which is the best
   weight-free guess for stochastic texture.
2. **Texture — dominant offsets.** Man-made and natural backgrounds repeat: bricks,
   tiles, stripes, fences, foliage at a distance. At a coarse analysis scale the masked
   self-correlation of the known detail (one FFT) gives the few translations under which
   the background matches itself (the "statistics of patch offsets" idea of He & Sun,
   2012). Each offset is refined to full-resolution pixel accuracy; every hidden pixel
   follows the best-fitting offset (chained, hop by hop, towards the known region) and
   copies the detail found there, with the low frequencies re-based onto the push-pull
   fill and the seam at the hole's edge removed by pushing the mismatch measured on a
   thin ring of known pixels into the hole.
3. **Blend by confidence.** How well an offset predicts the known pixels around a hole
   (a correlation coefficient, multiplied along a chain) weighs the copied texture
   against the smooth fill: periodic texture is continued in phase, random texture
   falls back to the smooth fill, which has the lower expected error.

All full-resolution work is a handful of OpenCV passes over the bounding box of the
pixels to fill plus per-pixel gathers of those pixels only; the analysis runs on a
~400-pixel thumbnail. Only known pixels are ever read: what is hidden (the foreground
object) cannot bleed into the fill, even if it is NaN.

:class:`pipeline.inpaint.DiffusionInpainter` is the optional, model-based alternative.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np
import numpy.typing as npt
import scipy.fft

from pipeline.blocks import block_any
from pipeline.concurrency import map_parallel, submit, worker_count
from pipeline.sampling import Points

FILL_METHOD = "pushpull-shiftmap"
"""Name of the default fill, recorded in the manifest."""

F32 = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]
_Result = TypeVar("_Result")

_FULL = 1.0 - 1e-3  # a coarse pixel counts as known when (almost) all its footprint is
_LUMA = (0.299, 0.587, 0.114)
_CHUNK = 1 << 20  # target pixels filled per batch
_MIN_SPLIT = 1 << 15  # fewer target pixels are not worth a second thread


# --------------------------------------------------------------------------------------
# Public API


def fill_hidden(
    image: np.ndarray,
    known: np.ndarray,
    *,
    region: np.ndarray | None = None,
    texture: bool = True,
    gain: float = 64.0,
    smooth_iters: int = 3,
    analysis_side: int = 400,
    max_offsets: int = 12,
    min_offset: int = 10,
    min_correlation: float = 0.3,
    fit_sigma: float = 16.0,
    ring_px: int = 4,
    min_texture_reach: int = 24,
    seed: int = 0,
) -> F32:
    """Invent every hidden pixel of ``image`` from its ``known`` pixels.

    Args:
        image: ``(H, W, 3)`` float image in ``[0, 1]`` (computed in float32).
        known: ``(H, W)`` bool, True where the pixel is real background.
        region: optional ``(H, W)`` bool; only unknown pixels inside it are filled
            (``None``: every unknown pixel). Work is limited to its neighbourhood.
        texture: continue repeating texture (offset copy); False gives the smooth fill.
        gain: push-pull weight gain; a coarse pixel with at least ``1/gain`` of its
            footprint known keeps its own estimate.
        smooth_iters: Jacobi sweeps per pyramid level (towards a harmonic fill).
        analysis_side: longest side of the thumbnail on which offsets are searched.
        max_offsets: how many dominant offsets compete for each pixel.
        min_offset: shortest offset considered, in thumbnail pixels.
        min_correlation: weakest whole-picture correlation (weighted by overlap) for an
            offset to compete.
        fit_sigma: scale, in thumbnail pixels, over which an offset's local fit is judged.
        ring_px: width of the known ring on which copied texture is matched to the edge.
        min_texture_reach: texture is continued only into holes reaching farther than
            this from the known pixels (px); a thinner band shows no repeat, and the
            smooth fill costs a fifth of the texture analysis.
        seed: seed of the pixel sample used to refine offsets (the fill is deterministic).

    Returns:
        A float32 copy of ``image`` in which the target pixels are filled with finite
        values in ``[0, 1]``; every other pixel is bit-identical to the input.
        With no known pixel at all, the targets get the mean colour of the image.
    """
    img, known_b, target = check_fill_inputs(image, known, region)
    out = np.array(img, dtype=np.float32, copy=True, order="C")
    if not target.any():
        return out
    if not known_b.any():
        finite = img[np.isfinite(img).all(axis=2)]
        mean = finite.mean(axis=0) if finite.size else np.full(3, 0.5, np.float32)
        out[target] = np.clip(mean, 0.0, 1.0)
        return out

    reach = _reach(target, known_b)
    y0, y1, x0, x1 = _working_window(target, known_b, reach=reach)
    win = (slice(y0, y1), slice(x0, x1))
    _fill_window(
        img[win],
        known_b[win],
        target[win],
        out=out[win],
        params=_Params(
            texture=texture and reach > min_texture_reach,
            gain=gain,
            smooth_iters=smooth_iters,
            analysis_side=analysis_side,
            max_offsets=max_offsets,
            min_offset=min_offset,
            min_correlation=min_correlation,
            fit_sigma=fit_sigma,
            ring_px=ring_px,
            seed=seed,
        ),
    )
    return out


def _f32(a: np.ndarray) -> F32:
    """``a`` as float32 (no copy when it already is)."""
    return np.asarray(a, dtype=np.float32)


def check_fill_inputs(
    image: np.ndarray, known: np.ndarray, region: np.ndarray | None
) -> tuple[F32, Mask, Mask]:
    """A fill's arguments checked (:func:`fill_hidden`'s): the image as float32, the
    known mask, and the pixels to fill (unknown, inside ``region`` when given)."""
    img = np.asarray(image, dtype=np.float32)
    known_b = np.asarray(known, dtype=bool)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3), got {img.shape}")
    if known_b.shape != img.shape[:2]:
        raise ValueError(f"known mask {known_b.shape} does not match image {img.shape[:2]}")
    target = ~known_b
    if region is not None:
        region_b = np.asarray(region, dtype=bool)
        if region_b.shape != known_b.shape:
            raise ValueError(f"region {region_b.shape} does not match image {img.shape[:2]}")
        target &= region_b
    return img, known_b, target


def smooth_continuation(
    values: np.ndarray, known: np.ndarray, *, gain: float = 64.0, smooth_iters: int = 3
) -> F32:
    """The push-pull continuation of ``(H, W, 3)`` ``values`` from their ``known`` pixels:
    smooth everywhere, close to ``values`` where they are known (pyramid level 1 brought
    back to full size). Unknown pixels are never read."""
    pyr = _Pyramid.build(
        _f32(values), np.asarray(known, dtype=bool), gain=gain, smooth_iters=smooth_iters
    )
    h, w = known.shape[:2]
    return _as3(_f32(cv2.pyrUp(pyr.filled(1), dstsize=(w, h))))


# --------------------------------------------------------------------------------------
# The fill of one working window


@dataclass(frozen=True)
class _Params:
    texture: bool
    gain: float
    smooth_iters: int
    analysis_side: int
    max_offsets: int
    min_offset: int
    min_correlation: float
    fit_sigma: float
    ring_px: int
    seed: int


def _working_window(target: Mask, known: Mask, *, reach: int) -> tuple[int, int, int, int]:
    """Bounding box of the target plus context, ``(y0, y1, x0, x1)``.

    The context grows with ``reach``, how far the target reaches into the unknown (three
    times that distance, plus 64 px): a thin band needs a little, a wide hole the whole
    picture.
    """
    h, w = target.shape
    x, y, bw, bh = cv2.boundingRect(target.view(np.uint8))
    margin = 64 + 3 * reach
    y0, y1 = max(0, y - margin), min(h, y + bh + margin)
    x0, x1 = max(0, x - margin), min(w, x + bw + margin)
    if (y1 - y0) * (x1 - x0) < h * w and np.count_nonzero(known[y0:y1, x0:x1]) < 256:
        return 0, h, 0, w
    return y0, y1, x0, x1


def _reach(target: Mask, known: Mask, *, cell: int = 8) -> int:
    """Largest distance (px) from a target pixel to a known one, on a grid of ``cell`` px."""
    h, w = target.shape
    any_known = block_any(known, cell)
    if not any_known.any():
        return int(max(h, w))
    any_target = block_any(target, cell)
    dist = cv2.distanceTransform((~any_known).view(np.uint8), cv2.DIST_L2, 3)
    return int(cell * (float(dist[any_target].max(initial=0.0)) + 1.0))


def _fill_window(img: F32, known: Mask, target: Mask, *, out: F32, params: _Params) -> None:
    """Write the fill of the target pixels of one window into ``out`` (the same window)."""
    pyr = _Pyramid.build(img, known, gain=params.gain, smooth_iters=params.smooth_iters)
    base = pyr.filled(1)  # the smooth continuation, at level 1
    shiftmap = _analyse_texture(pyr, img, known, params=params) if params.texture else None
    low = None
    if shiftmap is not None:
        ring = known & (cv2.dilate(target.view(np.uint8), _disc(params.ring_px)) > 0)
        residual = shiftmap.ring_residual(img, known, ring, gain=params.gain)
        low = shiftmap.low1 if residual is None else shiftmap.low1 + residual
    flat = np.flatnonzero(target)

    def fill_pixels(chunk: np.ndarray) -> None:
        chunk_y, chunk_x = np.divmod(chunk, target.shape[1])
        points = Points(chunk_x, chunk_y)
        values = points.sample(base, scale=0.5)
        if shiftmap is not None and low is not None:
            # value = base + conf * (copy - base), copy = detail(source) + low(here)
            detail, conf = shiftmap.copy(img, known, points)
            detail += points.sample(low, scale=0.5)
            detail -= values
            detail *= conf[:, None]
            values += detail  # conf is 0 (and detail finite) wherever there is no source
        np.clip(values, 0.0, 1.0, out=values)
        _put_pixels(out, chunk, values)

    _in_batches(fill_pixels, flat)  # each batch writes its own pixels of ``out``


def _in_batches(work: Callable[[np.ndarray], _Result], items: np.ndarray) -> list[_Result]:
    """``work`` on ``items`` in batches, one per worker (:mod:`pipeline.concurrency`;
    pixels are independent of each other); the results in the batches' order. Batches
    are at most :data:`_CHUNK` items: bounded memory for huge holes."""
    threads = worker_count() if items.size >= _MIN_SPLIT else 1
    size = max(1, min(_CHUNK, -(-items.size // threads)))
    batches = [items[start : start + size] for start in range(0, items.size, size)]
    return map_parallel(work, batches)


# --------------------------------------------------------------------------------------
# Push-pull (normalised-convolution pyramid)


@dataclass
class _Pyramid:
    """Levels 1..n of the push-pull pyramid of a window (level 0 is the image itself).

    ``weight[l]`` is the known share of each coarse pixel's footprint; ``filled[l]``
    the continuation, equal to the known average wherever the weight is high enough.
    """

    shape: tuple[int, int]
    weights: list[F32]
    premult: list[F32]
    fills: list[F32]

    @classmethod
    def build(cls, img: F32, known: Mask, *, gain: float, smooth_iters: int) -> _Pyramid:
        """The pyramid of ``img`` where ``known``; unknown pixels are never read."""
        zero = np.zeros_like(img)
        colour = _f32(cv2.copyTo(img, known.view(np.uint8), zero))
        weight = known.astype(np.float32)
        return cls.from_level0(colour, weight, gain=gain, smooth_iters=smooth_iters)

    @classmethod
    def from_level0(
        cls, premult0: F32, weight0: F32, *, gain: float, smooth_iters: int
    ) -> _Pyramid:
        """The pyramid of premultiplied colour ``premult0`` with known share ``weight0``."""
        weights: list[F32] = []
        premult: list[F32] = []
        p, w = premult0, weight0
        while max(w.shape) > 1 or not weights:
            p, w = _f32(cv2.pyrDown(p)), _f32(cv2.pyrDown(w))
            premult.append(_as3(p))
            weights.append(w)
            if min(w.shape) <= 1:
                break
        fills = _pull(premult, weights, gain=gain, smooth_iters=smooth_iters)
        return cls(weight0.shape[:2], weights, premult, fills)

    @property
    def levels(self) -> int:
        return len(self.weights)

    def filled(self, level: int) -> F32:
        return self.fills[min(level, self.levels) - 1]

    def weight(self, level: int) -> F32:
        return self.weights[min(level, self.levels) - 1]

    def known(self, level: int) -> Mask:
        return self.weight(level) >= _FULL


def _as3(a: np.ndarray) -> F32:
    return a if a.ndim == 3 else a[:, :, None]


def _pull(premult: list[F32], weights: list[F32], *, gain: float, smooth_iters: int) -> list[F32]:
    top_w = weights[-1]
    top_p = premult[-1]
    total_w = float(top_w.sum())
    mean = top_p.reshape(-1, top_p.shape[2]).sum(axis=0) / max(total_w, 1e-12)
    fill = _normalised(top_p, top_w, gain=gain, under=np.broadcast_to(mean, top_p.shape))
    fills = [fill]
    for level in range(len(weights) - 2, -1, -1):
        w = weights[level]
        up = _as3(cv2.pyrUp(fill, dstsize=(w.shape[1], w.shape[0])))
        fill = _normalised(premult[level], w, gain=gain, under=up)
        if smooth_iters > 0:
            fixed = (w * gain >= 1.0).astype(np.uint8)
            if not fixed.all():
                for _ in range(smooth_iters):
                    blurred = _as3(cv2.blur(fill, (3, 3)))
                    fill = _as3(cv2.copyTo(fill, fixed, blurred))
        fills.append(fill)
    fills.reverse()
    return fills


def _normalised(p: F32, w: F32, *, gain: float, under: np.ndarray) -> F32:
    """``a * p / w + (1 - a) * under`` with ``a = min(1, gain * w)`` (one level's estimate)."""
    a = np.minimum(w, np.float32(1.0 / gain))
    a *= np.float32(gain)
    own = _f32(p / np.maximum(w, np.float32(1e-12))[:, :, None])
    own -= under
    own *= a[:, :, None]
    own += under
    return own


# --------------------------------------------------------------------------------------
# Texture: dominant offsets, chained per pixel


@dataclass
class _ShiftMap:
    """Per thumbnail pixel: where to copy texture from, and how much to trust it.

    ``table[..., 0:2]`` is the full-resolution offset (dx, dy) to a known source pixel,
    ``table[..., 2]`` the confidence of the copy's coarse band (above pyramid level 1),
    ``table[..., 3]`` the relative weight of its fine band (level 0 minus level 1).
    """

    level: int  # of the thumbnail
    table: F32
    pyr: _Pyramid
    low1: F32  # the low frequencies that the copy takes from the push-pull, at level 1

    def copy(self, img: F32, known: Mask, points: Points) -> tuple[F32, F32]:
        """The copy at ``points`` less its low frequencies, and its confidence.

        Both are 0 where a point has no known source: unknown pixels are never read.
        """
        entry = points.sample(self.table, scale=1.0 / (1 << self.level), nearest=True)
        sources = points.moved(entry[:, 0], entry[:, 1])
        sx, sy = sources.x, sources.y
        h, w = known.shape
        ok = (entry[:, 2] > 0.0) & (sx >= 0) & (sy >= 0) & (sx <= w - 1) & (sy <= h - 1)
        ok &= sources.sample(known.view(np.uint8), nearest=True)[:, 0] > 0
        src = sources.sample(img, nearest=True)
        src1 = sources.sample(self.pyr.filled(1), scale=0.5)
        # level-1 source plus the trusted share of its finest detail, minus the low band
        src -= src1
        src *= entry[:, 3:4]
        src += src1
        src -= sources.sample(self.low1, scale=0.5)
        src[~ok] = 0.0
        return src, np.where(ok, entry[:, 2], np.float32(0.0))

    def ring_residual(self, img: F32, known: Mask, ring: Mask, *, gain: float) -> F32 | None:
        """Mismatch between the known ring and its own copy, continued into the holes.

        Returned at pyramid level 1; adding it to the copy removes the seam at the
        hole's edge (a membrane correction in the spirit of seamless cloning).
        """
        flat = np.flatnonzero(ring)
        if flat.size == 0:
            return None
        h1, w1 = self.pyr.weight(1).shape

        def mismatch(batch: np.ndarray) -> tuple[np.ndarray, F32]:
            ys, xs = np.divmod(batch, ring.shape[1])
            points = Points(xs, ys)
            detail, conf = self.copy(img, known, points)
            ok = conf > 0.0
            copy = detail[ok] + points.sample(self.low1, scale=0.5)[ok]
            cells = (ys[ok] >> 1) * w1 + (xs[ok] >> 1)
            return cells, _pixels_at(img, batch[ok]) - copy

        parts = _in_batches(mismatch, flat)
        cell = np.concatenate([part[0] for part in parts])
        if cell.size == 0:
            return None
        resid = np.concatenate([part[1] for part in parts])
        # Splat onto the level-1 grid (2x2 boxes) and push-pull from there.
        weight = np.bincount(cell, minlength=h1 * w1).astype(np.float32).reshape(h1, w1)
        premult = (
            np.stack([np.bincount(cell, resid[:, c], minlength=h1 * w1) for c in range(3)], axis=-1)
            .astype(np.float32)
            .reshape(h1, w1, 3)
        )
        weight *= np.float32(0.25)
        premult *= np.float32(0.25)
        coarse = _Pyramid.from_level0(premult, weight, gain=gain, smooth_iters=0)
        up = _as3(cv2.pyrUp(coarse.filled(1), dstsize=(w1, h1)))
        return _normalised(premult, weight, gain=gain, under=up)


def _analyse_texture(pyr: _Pyramid, img: F32, known: Mask, *, params: _Params) -> _ShiftMap | None:
    """Find the dominant offsets and resolve, per thumbnail pixel, where to copy from."""
    h, w = known.shape
    level = 0
    while max(h, w) / (1 << level) > params.analysis_side and level < pyr.levels:
        level += 1
    if level == 0:
        colour, m = _f32(cv2.copyTo(img, known.view(np.uint8), np.zeros_like(img))), known
    else:
        colour, m = pyr.filled(level), pyr.known(level)
    if np.count_nonzero(m) < 400 or m.all():
        return None
    detail = _detail(_luma(colour), m, sigma=3.0)
    offsets, rhos = _dominant_offsets(
        detail,
        m,
        count=params.max_offsets,
        min_offset=params.min_offset,
        min_correlation=params.min_correlation,
    )
    if not offsets:
        return None
    low_level = min(max(2, round(math.log2(max(h, w) / 16.0))), pyr.levels)

    def local_fits() -> F32:
        fits = [_local_fit(detail, m, o, sigma=params.fit_sigma, gain=params.gain) for o in offsets]
        return np.stack(fits, axis=-1)

    fitted = submit(local_fits)  # the thumbnail's work, beside the full-resolution work
    known_flat = np.flatnonzero(known)  # both samples of known pixels draw from it
    full = _refine_offsets(
        offsets, pyr, img, known, known_flat=known_flat, level=level, seed=params.seed
    )
    coarse, fine = _band_correlations(
        full, pyr, img, known, known_flat=known_flat, low_level=low_level, seed=params.seed
    )
    fit = fitted.result()
    # Of the thumbnail correlation, the share that holds for the copied bands.
    keep = np.clip(coarse / np.maximum(rhos, 1e-3), 0.0, 1.0).astype(np.float32)
    phi = np.clip(fine / np.maximum(coarse, 1e-3), 0.0, 1.0).astype(np.float32)
    fit *= keep[None, None, :]
    table = _chain(m, offsets, full, np.clip(fit, 0.0, 1.0, out=fit), phi)
    if table is None:
        return None
    low = pyr.filled(low_level)
    for lvl in range(low_level - 1, 0, -1):
        hh, ww = pyr.weight(lvl).shape
        low = _as3(_f32(cv2.pyrUp(low, dstsize=(ww, hh))))
    return _ShiftMap(level, table, pyr, low)


def _luma(colour: np.ndarray) -> F32:
    """Luma of colours on the last axis: an ``(H, W, 3)`` picture or ``(n, 3)`` samples."""
    r, g, b = _LUMA
    y: F32 = (colour[..., 0] * r + colour[..., 1] * g + colour[..., 2] * b).astype(np.float32)
    return y


def _detail(luma: F32, m: Mask, *, sigma: float) -> F32:
    """High-pass of the known luma (normalised convolution), zero where unknown."""
    mf = m.astype(np.float32)
    num = cv2.GaussianBlur(luma * mf, (0, 0), sigma)
    den = cv2.GaussianBlur(mf, (0, 0), sigma)
    d: F32 = np.where(m, luma - num / np.maximum(den, 1e-6), 0.0).astype(np.float32)
    return d


def _dominant_offsets(
    detail: F32, m: Mask, *, count: int, min_offset: int, min_correlation: float
) -> tuple[list[tuple[int, int]], F32]:
    """Offsets (dy, dx) under which the known detail best matches itself, and their 1 - r.

    For every offset s at once (FFT): r(s) = sum |D(x) - D(x+s)|^2 / sum (D(x)^2 +
    D(x+s)^2) over pixels where both are known; 1 - r is a correlation coefficient,
    weighed by the square root of the overlap so that short offsets with a wide base win.
    """
    h, w = m.shape
    fh, fw = cv2.getOptimalDFTSize(2 * h), cv2.getOptimalDFTSize(2 * w)
    mf = m.astype(np.float32)
    dm = detail * mf

    def spec(a: F32) -> np.ndarray:
        f: np.ndarray = scipy.fft.rfft2(a, s=(fh, fw), workers=-1)
        return f

    def corr(fa: np.ndarray, fb: np.ndarray) -> F32:
        c: F32 = scipy.fft.irfft2(np.conj(fa) * fb, s=(fh, fw), workers=-1)
        return c

    f_m, f_d, f_d2 = spec(mf), spec(dm), spec(dm * dm)
    overlap = corr(f_m, f_m)
    cross = corr(f_d, f_d)
    energy = corr(f_d2, f_m) + corr(f_m, f_d2)
    rho = 1.0 - (energy - 2.0 * cross) / np.maximum(energy, 1e-12)
    n_known = float(mf.sum())
    score = rho * np.sqrt(np.clip(overlap / n_known, 0.0, 1.0))
    sy = np.fft.fftfreq(fh, 1.0 / fh).astype(np.int64)[:, None]
    sx = np.fft.fftfreq(fw, 1.0 / fw).astype(np.int64)[None, :]
    usable = (
        (overlap >= 0.05 * n_known)
        & (sy * sy + sx * sx >= min_offset * min_offset)
        & (np.abs(sy) < h)
        & (np.abs(sx) < w)
        & (energy > 1e-9 * n_known)
    )
    score = np.where(usable, score, -1.0).astype(np.float32)
    peaks = (score >= cv2.dilate(score, np.ones((5, 5), np.uint8))) & (score >= min_correlation)
    iy, ix = np.nonzero(peaks)
    order = np.argsort(-score[iy, ix], kind="stable")[:count]
    iy, ix = iy[order], ix[order]
    offsets = [(int(sy[i, 0]), int(sx[0, j])) for i, j in zip(iy, ix, strict=True)]
    return offsets, rho[iy, ix].astype(np.float32)


def _sample_known(
    known_flat: np.ndarray, width: int, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` distinct known pixels (rows, columns), drawn from their flat indices."""
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(known_flat, size=min(count, known_flat.size), replace=False))
    return np.divmod(pick, width)


def _refine_offsets(
    offsets: list[tuple[int, int]],
    pyr: _Pyramid,
    img: F32,
    known: Mask,
    *,
    known_flat: np.ndarray,
    level: int,
    seed: int,
    samples: int = 2048,
) -> npt.NDArray[np.int64]:
    """Carry each thumbnail offset down to full resolution: ``(K, 2)`` (dy, dx).

    At each finer level the best of the 3x3 candidates around twice the coarser offset
    wins, judged on the luma of a fixed random sample of known pixels.
    """
    py, px = _sample_known(known_flat, known.shape[1], samples, seed)
    steps = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], np.int64)
    refined = np.array(offsets, np.int64).reshape(-1, 2)
    for lvl in range(level - 1, -1, -1):
        colour, m = (img, known) if lvl == 0 else (pyr.filled(lvl), pyr.known(lvl))
        qy, qx = py >> lvl, px >> lvl
        keep = m[qy, qx]
        qy, qx = qy[keep], qx[keep]
        candidates = (2 * refined[:, None, :] + steps[None, :, :]).reshape(-1, 2)
        errors = _match_errors(colour, m, qy=qy, qx=qx, candidates=candidates)
        best = np.argmin(errors.reshape(len(refined), len(steps)), axis=1)
        refined = candidates.reshape(len(refined), len(steps), 2)[np.arange(len(refined)), best]
    return refined


def _match_errors(
    colour: F32,
    m: Mask,
    *,
    qy: npt.NDArray[np.int64],
    qx: npt.NDArray[np.int64],
    candidates: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """Per candidate offset (dy, dx): mean squared luma difference over the sample points
    whose shifted point is known too (infinite with fewer than 32 such points)."""
    h, w = m.shape
    ry = qy[None, :] + candidates[:, 0:1]
    rx = qx[None, :] + candidates[:, 1:2]
    ok = (ry >= 0) & (ry < h) & (rx >= 0) & (rx < w)
    shifted = np.where(ok, ry * w + rx, 0)  # flat indices: one gather per map
    ok &= m.reshape(-1)[shifted]
    # Luma at the points read only: a whole-picture luma map costs more than the reads.
    here = _luma(_pixels_at(colour, qy * w + qx))
    there = _luma(_pixels_at(colour, shifted.reshape(-1))).reshape(shifted.shape)
    diff = here[None, :] - there
    count = ok.sum(axis=1)
    sse = np.where(ok, diff * diff, 0.0).sum(axis=1)
    errors: npt.NDArray[np.float64] = np.where(count >= 32, sse / np.maximum(count, 1), np.inf)
    return errors


def _band_correlations(
    offsets: npt.NDArray[np.int64],
    pyr: _Pyramid,
    img: F32,
    known: Mask,
    *,
    known_flat: np.ndarray,
    low_level: int,
    seed: int,
    samples: int = 4096,
) -> tuple[F32, F32]:
    """Per full-resolution offset, 1 - r of the coarse band and of the fine band.

    Coarse band: pyramid level 1 minus the re-based low frequencies; fine band: the
    image minus level 1 (mostly noise and grain, rarely worth copying).
    """
    py, px = _sample_known(known_flat, known.shape[1], samples, seed + 1)
    coarse = np.zeros(len(offsets), np.float32)
    fine = np.zeros(len(offsets), np.float32)
    h, w = known.shape

    pairs: list[tuple[int, np.ndarray, np.ndarray]] = []  # offset, its points, their sources
    for k, (oy, ox) in enumerate(offsets):
        ry, rx = py + oy, px + ox
        inside = (ry >= 0) & (ry < h) & (rx >= 0) & (rx < w)
        qy, qx, ry, rx = py[inside], px[inside], ry[inside], rx[inside]
        both = known[ry, rx]
        if np.count_nonzero(both) >= 32:
            pairs.append((k, qy[both] * w + qx[both], ry[both] * w + rx[both]))
    if not pairs:
        return coarse, fine
    # Every offset's points and sources read in one pass per map.
    flat = np.concatenate([part for _, here, there in pairs for part in (here, there)])
    ys, xs = np.divmod(flat, w)
    points = Points(xs, ys)
    full = _luma(_pixels_at(img, flat))
    lvl1 = _luma(points.sample(pyr.filled(1), scale=0.5))
    low = _luma(points.sample(pyr.filled(low_level), scale=1.0 / (1 << low_level)))
    coarse_band, fine_band = lvl1 - low, full - lvl1
    start = 0
    for k, here, _ in pairs:
        q, r = slice(start, start + here.size), slice(start + here.size, start + 2 * here.size)
        coarse[k] = _correlation(coarse_band[q], coarse_band[r])
        fine[k] = _correlation(fine_band[q], fine_band[r])
        start += 2 * here.size
    return coarse, fine


def _correlation(a: F32, b: F32) -> float:
    """1 - sum (a - b)^2 / sum (a^2 + b^2): 1 for equal, 0 for independent signals."""
    energy = float(np.sum(a * a + b * b))
    if energy <= 1e-12:
        return 0.0
    return 1.0 - float(np.sum((a - b) ** 2)) / energy


def _local_fit(detail: F32, m: Mask, offset: tuple[int, int], *, sigma: float, gain: float) -> F32:
    """Local correlation of ``detail`` with itself under ``offset``, continued into holes.

    ``1 - G*(both |D - D'|^2) / G*(both (D^2 + D'^2))`` with ``D'`` the shifted detail,
    ``both`` where both are known and ``G`` a Gaussian of ``sigma``; computed at a quarter
    of the thumbnail's resolution and extended into the holes by push-pull.
    """
    shifted = _shift(detail, offset)
    both = (m & _shift(m, offset)).astype(np.float32)
    diff = detail - shifted
    stack = np.dstack(
        [diff * diff * both, (detail * detail + shifted * shifted) * both, both]
    ).astype(np.float32)
    shapes = [stack.shape[:2]]
    for _ in range(2):
        stack = _f32(cv2.pyrDown(stack))
        shapes.append(stack.shape[:2])
    stack = _f32(cv2.GaussianBlur(stack, (0, 0), max(0.5, sigma / 4.0)))
    support = stack[:, :, 2] > 0.05
    weight = support.astype(np.float32)
    premult = stack * weight[:, :, None]
    premult[:, :, 2] = 0.0
    coarse = _Pyramid.from_level0(premult, weight, gain=gain, smooth_iters=0)
    up = _as3(cv2.pyrUp(coarse.filled(1), dstsize=(stack.shape[1], stack.shape[0])))
    stack = np.where(support[:, :, None], stack, up)
    for hh, ww in reversed(shapes[:-1]):
        stack = _as3(cv2.pyrUp(stack, dstsize=(ww, hh)))
    # Flat areas (no detail to match) get no confidence: eps is 5 % of the typical energy.
    eps = 0.05 * float(stack[:, :, 1].mean()) + 1e-12
    fit: F32 = (1.0 - stack[:, :, 0] / (stack[:, :, 1] + np.float32(eps))).astype(np.float32)
    return fit


def _shift(a: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """``b(x) = a(x + offset)``, zero/False outside."""
    dy, dx = offset
    h, w = a.shape[:2]
    b = np.zeros_like(a)
    y0, y1 = max(0, -dy), min(h, h - dy)
    x0, x1 = max(0, -dx), min(w, w - dx)
    if y1 > y0 and x1 > x0:
        b[y0:y1, x0:x1] = a[y0 + dy : y1 + dy, x0 + dx : x1 + dx]
    return b


def _chain(
    m: Mask,
    offsets: list[tuple[int, int]],
    full: npt.NDArray[np.int64],
    fit: F32,
    phi: F32,
) -> F32 | None:
    """Per thumbnail pixel, follow the best-fitting offset hop by hop to a known pixel.

    A hop may only go towards the known region (the distance to it strictly drops, or
    the hop lands on a known pixel), so every chain ends. Pointer jumping resolves all
    chains in log2(length) vectorised steps, summing full-resolution offsets and
    multiplying confidences. Returns the :class:`_ShiftMap` table, or None when no
    hidden pixel has a usable source.
    """
    h, w = m.shape
    hole = ~m
    dist = cv2.distanceTransform(hole.view(np.uint8), cv2.DIST_L2, 3)
    best = np.zeros((h, w), np.float32)
    choice = np.full((h, w), -1, np.int64)
    for k, (oy, ox) in enumerate(offsets):
        # Where the hop lands inside the picture: the pixels (y, x) and their targets.
        here = slice(max(0, -oy), min(h, h - oy)), slice(max(0, -ox), min(w, w - ox))
        there = (
            slice(here[0].start + oy, here[0].stop + oy),
            slice(here[1].start + ox, here[1].stop + ox),
        )
        towards = np.zeros((h, w), dtype=bool)
        towards[here] = m[there] | (dist[there] < dist[here] - 0.5)
        better = towards & (fit[:, :, k] > best)
        best = np.where(better, fit[:, :, k], best)
        choice = np.where(better, k, choice)
    valid = hole & (choice >= 0)
    k_sel = np.maximum(choice, 0)
    offs = np.asarray(offsets, np.int64)
    idx = np.arange(h * w, dtype=np.int64).reshape(h, w)
    nxt = np.where(valid, idx + offs[k_sel, 0] * w + offs[k_sel, 1], idx).ravel()
    sx = np.where(valid, full[k_sel, 1], 0).astype(np.float32).ravel()
    sy = np.where(valid, full[k_sel, 0], 0).astype(np.float32).ravel()
    conf = np.where(valid, best, np.where(hole, 0.0, 1.0)).astype(np.float32).ravel()
    fine = np.where(valid, phi[k_sel], 1.0).astype(np.float32).ravel()
    for _ in range(32):
        jumped = nxt[nxt]
        if np.array_equal(jumped, nxt):
            break
        sx += sx[nxt]
        sy += sy[nxt]
        conf *= conf[nxt]
        fine *= fine[nxt]
        nxt = jumped
    conf[~m.ravel()[nxt]] = 0.0
    if not (conf[hole.ravel()] > 0.0).any():
        return None
    table = np.stack([sx, sy, conf, fine], axis=-1)
    # Known thumbnail pixels borrow the chain of their nearest hole pixel (for the ring).
    _, labels = cv2.distanceTransformWithLabels(
        m.view(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    hy, hx = np.nonzero(hole)
    lut = np.concatenate([[0], hy * w + hx])
    nearest = lut[labels.ravel()]
    km = m.ravel()
    table[km] = table[nearest[km]]
    out: F32 = table.reshape(h, w, 4).astype(np.float32)
    return out


# --------------------------------------------------------------------------------------
# Helpers


def _pixels_at(image: F32, flat: np.ndarray) -> F32:
    """``image`` (``(H, W, C)``, a window of a larger array too) at the flat pixel indices
    ``flat``, as ``(n, C)``."""
    ys, xs = np.divmod(flat, image.shape[1])
    values: F32 = image[ys, xs]
    return values


def _put_pixels(image: F32, flat: np.ndarray, values: F32) -> None:
    """``image`` (``(H, W, C)``, a window of a larger array too) at the flat pixel
    indices ``flat`` = ``values``."""
    ys, xs = np.divmod(flat, image.shape[1])
    image[ys, xs] = values


def _disc(radius: int) -> np.ndarray:
    r = max(1, int(radius))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
