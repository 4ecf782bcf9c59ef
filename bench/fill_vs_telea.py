"""The weight-free fill (:func:`pipeline.fill.fill_hidden`) against OpenCV's Telea.

    python -m bench.fill_vs_telea            # 1 MP and 3 MP, every scene kind
    python -m bench.fill_vs_telea --quick    # 0.2 MP only
    python -m bench.fill_vs_telea --smoke    # a tiny run that only checks it works

Scenes are synthetic so that the true background behind the "objects" is known: a
colour gradient plus smooth noise, with one texture on top (sinusoidal stripes at two
orientations, a rotated soft checker, a natural-looking 1/f noise, or a soft horizon line
over 1/f noise), and holes shaped like foreground objects (discs, rectangles, blobs)
covering 10-50 % of the canvas, painted with an object colour. Textures scale with the
canvas, so a scene at 3 MP is the same picture as at 1 MP, finer.

Reported per method, over the hidden pixels: the mean absolute error against the true
background (MAE, RGB in [0, 1]), the same error in the "edge band" (hidden pixels within
6 px of the known ones, where halos show), and the median wall-clock and CPU time of
3 runs (CPU time bounds an idle machine's wall time; it is the fair figure on a busy
one). Telea runs on 8-bit images (as ``cv2.inpaint`` requires) at radius 3 and 5.

``tests/test_fill.py`` uses the same scenes (:func:`render_scene`).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from pipeline.fill import FILL_METHOD, fill_hidden

KINDS = ("stripes", "checker", "pink", "horizon")
BAND_PX = 6.0
REFERENCE_SIDE = 512  # texture sizes below are in pixels of a 512-px-wide canvas


@dataclass(frozen=True)
class Scene:
    image: npt.NDArray[np.float32]  # (H, W, 3): the background with objects painted over it
    known: npt.NDArray[np.bool_]  # (H, W): True where the background is visible
    truth: npt.NDArray[np.float32]  # (H, W, 3): the whole background
    kind: str


def render_scene(
    seed: int,
    height: int,
    width: int,
    *,
    kind: str | None = None,
    coverage: float | None = None,
) -> Scene:
    """A textured background and object-shaped holes, both from ``seed``."""
    rng = np.random.default_rng(seed)
    kind = kind or KINDS[seed % len(KINDS)]
    coverage = coverage if coverage is not None else float(rng.uniform(0.1, 0.5))
    truth = render_background(rng, height, width, kind)
    hidden = render_holes(rng, height, width, coverage)
    image = truth.copy()
    image[hidden] = rng.uniform(0.0, 1.0, 3).astype(np.float32)  # the objects' colour
    return Scene(image, ~hidden, truth, kind)


def render_background(
    rng: np.random.Generator, height: int, width: int, kind: str
) -> npt.NDArray[np.float32]:
    scale = max(height, width) / REFERENCE_SIDE
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(0.3, 0.7, 3).astype(np.float32)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    ramp = np.cos(angle) * xx / width + np.sin(angle) * yy / height
    img = base + ramp[..., None] * rng.uniform(-0.3, 0.3, 3).astype(np.float32)
    img += 0.05 * _smooth_noise(rng, height, width, 64.0 * scale)
    if kind == "stripes":
        for _ in range(2):
            theta, period = rng.uniform(0.0, np.pi), rng.uniform(10.0, 40.0) * scale
            phase = (np.cos(theta) * xx + np.sin(theta) * yy) * (2.0 * np.pi / period)
            tint = rng.uniform(0.5, 1.0, 3).astype(np.float32)
            img += (0.12 * np.sin(phase))[..., None] * tint
    elif kind == "checker":
        theta, period = rng.uniform(0.0, np.pi / 2), rng.uniform(16.0, 48.0) * scale
        u = np.cos(theta) * xx + np.sin(theta) * yy
        v = -np.sin(theta) * xx + np.cos(theta) * yy
        cells = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
        cells = cv2.GaussianBlur(cells, (0, 0), scale)
        img += (0.2 * (cells - 0.5))[..., None] * rng.uniform(0.5, 1.0, 3).astype(np.float32)
    elif kind == "pink":
        img += 0.08 * _pink_noise(rng, height, width)
    elif kind == "horizon":
        tilt, level = rng.uniform(-0.3, 0.3), rng.uniform(0.3, 0.7) * height
        below = ((yy - level - np.tan(tilt) * (xx - width / 2)) > 0).astype(np.float32)
        below = cv2.GaussianBlur(below, (0, 0), 1.5 * scale)
        img += below[..., None] * rng.uniform(-0.35, 0.35, 3).astype(np.float32)
        img += 0.05 * _pink_noise(rng, height, width)
    else:
        raise ValueError(f"unknown scene kind {kind!r}; one of {KINDS}")
    img += 0.01 * rng.standard_normal((height, width, 3)).astype(np.float32)  # sensor noise
    out: npt.NDArray[np.float32] = np.clip(img, 0.0, 1.0).astype(np.float32)
    return out


def render_holes(
    rng: np.random.Generator, height: int, width: int, coverage: float
) -> npt.NDArray[np.bool_]:
    """Object-shaped hidden areas (discs, rectangles, blobs) until ``coverage`` is hidden."""
    mask = np.zeros((height, width), np.uint8)
    side = min(height, width)
    while mask.mean() < coverage:
        shape = int(rng.integers(3))
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = max(2, int(rng.uniform(0.06, 0.2) * side))
        if shape == 0:
            cv2.circle(mask, (cx, cy), r, 1, -1)
        elif shape == 1:
            corner0 = (int(cx - r), int(cy - 0.7 * r))
            corner1 = (int(cx + 0.6 * r), int(cy + r))
            cv2.rectangle(mask, corner0, corner1, 1, -1)
        else:
            noise = _smooth_noise(rng, 2 * r, 2 * r, max(2.0, r / 3.0))[..., 0]
            by, bx = np.mgrid[-r:r, -r:r]
            blob = (noise + 1.5 * (1.0 - np.hypot(bx, by) / r)) > 0.8
            ys, xs = np.nonzero(blob)
            ys, xs = ys + cy - r, xs + cx - r
            inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
            mask[ys[inside], xs[inside]] = 1
    return mask.astype(bool)


def _smooth_noise(
    rng: np.random.Generator, height: int, width: int, cell: float
) -> npt.NDArray[np.float32]:
    gh, gw = max(2, int(height / cell) + 2), max(2, int(width / cell) + 2)
    grid = rng.standard_normal((gh, gw, 3)).astype(np.float32)
    out: npt.NDArray[np.float32] = cv2.resize(
        grid, (width, height), interpolation=cv2.INTER_CUBIC
    ).astype(np.float32)
    return out


def _pink_noise(rng: np.random.Generator, height: int, width: int) -> npt.NDArray[np.float32]:
    """Unit-variance noise with a 1/f amplitude spectrum (a 1/f^2 power spectrum)."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    freq = np.hypot(fx, fy)
    freq[0, 0] = 1.0
    amplitude = 1.0 / freq
    amplitude[0, 0] = 0.0
    out = np.empty((height, width, 3), np.float32)
    for c in range(3):
        spectrum = amplitude * np.exp(2j * np.pi * rng.random(amplitude.shape))
        field = np.fft.irfft2(spectrum, s=(height, width))
        out[..., c] = field / field.std()
    return out


# --- methods and metrics ---------------------------------------------------------------------


def telea(
    image: npt.NDArray[np.float32], known: npt.NDArray[np.bool_], *, radius: int = 5
) -> npt.NDArray[np.float32]:
    """OpenCV's Telea inpainting (8-bit), back to float32 with known pixels exact."""
    u8 = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    painted = cv2.inpaint(u8, (~known).view(np.uint8), radius, cv2.INPAINT_TELEA)
    out = image.copy()
    out[~known] = painted[~known].astype(np.float32) / 255.0
    return out


def fill_errors(
    filled: npt.NDArray[np.float32],
    truth: npt.NDArray[np.float32],
    known: npt.NDArray[np.bool_],
    *,
    band_px: float = BAND_PX,
) -> tuple[float, float]:
    """(MAE over the hidden pixels, MAE over the hidden pixels within ``band_px`` of known)."""
    hidden = ~known
    error = np.abs(filled - truth).mean(axis=2)
    distance = cv2.distanceTransform(hidden.view(np.uint8), cv2.DIST_L2, 5)
    band = hidden & (distance <= band_px)
    return float(error[hidden].mean()), float(error[band].mean())


Method = Callable[[npt.NDArray[np.float32], npt.NDArray[np.bool_]], npt.NDArray[np.float32]]


def xphoto(
    image: npt.NDArray[np.float32], known: npt.NDArray[np.bool_], *, algorithm: int
) -> npt.NDArray[np.float32]:
    """OpenCV contrib's patch-based inpainting (``cv2.xphoto.inpaint``: the shift-map or
    the fast frequency-selective reconstruction). It takes 8-bit CIELab, as its
    documentation asks of colour images, and a mask of the *known* pixels."""
    u8 = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    lab = cv2.cvtColor(u8, cv2.COLOR_RGB2Lab)
    painted = np.zeros_like(lab)
    cv2.xphoto.inpaint(lab, known.astype(np.uint8) * 255, painted, algorithm)
    out = image.copy()
    out[~known] = cv2.cvtColor(painted, cv2.COLOR_Lab2RGB)[~known].astype(np.float32) / 255.0
    return out


METHODS: dict[str, Method] = {
    FILL_METHOD: fill_hidden,
    "telea r=3": lambda image, known: telea(image, known, radius=3),
    "telea r=5": lambda image, known: telea(image, known, radius=5),
}
PATCH_PEERS: dict[str, Method] = {
    "xphoto shiftmap": lambda image, known: xphoto(
        image, known, algorithm=cv2.xphoto.INPAINT_SHIFTMAP
    ),
    "xphoto fsr fast": lambda image, known: xphoto(
        image, known, algorithm=cv2.xphoto.INPAINT_FSR_FAST
    ),
}
"""PatchMatch-class peers, measured at :data:`PEER_SIZE` only: at 0.2 MP they take 6–46 s
a scene on two cores (FSR's "best" mode longer still), too slow for the job sizes."""
PEER_SIZE = (192, 256)


def measure(method: Method, scene: Scene, *, repeats: int = 3) -> tuple[float, float, float, float]:
    """(MAE, edge-band MAE, median wall seconds, median CPU seconds) of a method on a scene.

    CPU time is what the call would take on an idle machine at worst (it never waits);
    wall time is what it took here, with whatever else shared the cores.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        filled = method(scene.image, scene.known)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    mae, band = fill_errors(filled, scene.truth, scene.known)
    return mae, band, statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="0.2 MP only")
    parser.add_argument("--smoke", action="store_true", help="one tiny run of each")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = [(864, 1152), (1536, 2048)]
    if args.quick or args.smoke:
        sizes = [(96, 128)] if args.smoke else [(384, 512)]
        args.repeats = 1 if args.smoke else args.repeats
    print(f"cv2 {cv2.__version__}, {cv2.getNumThreads()} threads; median of {args.repeats}")
    header = f"{'size':>10} {'scene':>8} {'hidden':>6}  {'method':<18} "
    header += f"{'MAE':>7} {'band':>7} {'wall s':>7} {'cpu s':>7}"
    print(header)
    print("-" * len(header))
    totals: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in METHODS}
    for height, width in sizes:
        for i, kind in enumerate(KINDS):
            scene = render_scene(args.seed + i, height, width, kind=kind, coverage=0.4)
            hidden = 1.0 - float(scene.known.mean())
            for name, method in METHODS.items():
                row = measure(method, scene, repeats=args.repeats)
                totals[name].append(row)
                mae, band, wall, cpu = row
                size = f"{width}x{height}"
                print(
                    f"{size:>10} {kind:>8} {hidden:6.0%}  {name:<18} "
                    f"{mae:7.4f} {band:7.4f} {wall:7.3f} {cpu:7.3f}"
                )
        print()
    print("mean over all scenes")
    for name, rows in totals.items():
        mae, band, wall, cpu = (statistics.fmean(col) for col in zip(*rows, strict=True))
        print(f"  {name:<18} MAE {mae:.4f}  band {band:.4f}  {wall:.3f} s ({cpu:.3f} s CPU)")


if __name__ == "__main__":
    main()
