"""Make layer edges follow the photo's edges, not the depth map's blur.

Depth from a model is low-resolution and soft; a photo's object edges are sharp and often
anti-aliased. Two guided filters (He et al., 2010) bridge the gap:

1. :func:`snap_to_image` — each "this layer or nearer" mask, as cut from the upsampled
   depth, is re-fitted locally as a linear function of the photo's colour over a window as
   wide as the depth's blur; thresholding the fit moves the boundary onto the colour edge.
2. :func:`soft_alpha` — in a band a few pixels wide around the snapped boundary, the same
   local colour model gives fractional coverage (the anti-aliasing), and outside the band
   alpha is exactly 0 or 1.
"""

from __future__ import annotations

import cv2
import numpy as np


def ramp_mask(nearness: np.ndarray, *, ramp_scale: float = 4.0) -> np.ndarray:
    """Pixels on steep depth ramps: where a soft depth map blurs across an object edge.

    Slope is measured in nearness per image size (see :mod:`pipeline.cuts`); a ramp is
    twice as steep as the steepest slope a surface keeps.
    """
    size = max(nearness.shape)
    slope_x = cv2.Sobel(nearness, cv2.CV_32F, 1, 0, ksize=3)
    slope_y = cv2.Sobel(nearness, cv2.CV_32F, 0, 1, ksize=3)
    steep: np.ndarray = np.hypot(slope_x, slope_y) * (size / 8.0) > ramp_scale
    return steep


def assign_ramps(
    image: np.ndarray,
    labels: np.ndarray,
    ramps: np.ndarray,
    *,
    num_layers: int,
    reach: int,
    spread: float = 0.01,
) -> np.ndarray:
    """Give each ramp pixel the layer of the nearby surface whose colour it matches.

    A threshold through a blurred depth edge lands somewhere in the ramp, and a middle
    threshold even leaves a ring of a middle layer around a near object. Instead, ramp
    pixels take one of the layers found on the flat ground within ``reach`` pixels,
    the one whose local mean colour (weighted by its local colour spread) is closest:
    the boundary moves onto the photo's edge.
    """
    box = _bounding_box(ramps, pad=reach)
    if box is None:
        return labels
    y0, y1, x0, x1 = box
    crop_image = image[y0:y1, x0:x1]
    crop_labels = labels[y0:y1, x0:x1]
    flat = ~ramps[y0:y1, x0:x1]
    best_score = np.full(crop_labels.shape, np.inf, dtype=np.float32)
    best_label = crop_labels.copy()
    for k in range(1, num_layers + 1):
        source = flat & (crop_labels == k)
        if not source.any():
            continue
        mean, variance, weight = _masked_moments(crop_image, source, reach)
        distance = np.einsum("ijc,ijc->ij", crop_image - mean, crop_image - mean)
        score = distance / (variance + spread)
        score[weight < 0.5] = np.inf
        better = score < best_score
        best_score[better] = score[better]
        best_label[better] = k
    result = labels.copy()
    target = ramps[y0:y1, x0:x1] & np.isfinite(best_score)
    result[y0:y1, x0:x1][target] = best_label[target]
    return result


def ramp_reach(ramps: np.ndarray, *, limit: int = 64) -> int:
    """How far the farthest ramp pixel is from flat ground, plus a little context."""
    if not ramps.any():
        return 0
    distance = cv2.distanceTransform(ramps.astype(np.uint8), cv2.DIST_L2, 3)
    return int(min(limit, np.ceil(float(distance.max())) + 3))


def _masked_moments(
    image: np.ndarray, mask: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local mean colour, summed channel variance and pixel count of ``image`` over ``mask``."""
    size = (2 * radius + 1, 2 * radius + 1)
    weight_map = mask.astype(np.float32)
    weight = cv2.boxFilter(weight_map, -1, size, normalize=False)
    masked = image * weight_map[..., None]
    total = cv2.boxFilter(masked, -1, size, normalize=False)
    squares = cv2.boxFilter(masked * image, -1, size, normalize=False)
    safe = np.maximum(weight, 1e-6)[..., None]
    mean = total / safe
    variance = np.maximum(squares / safe - mean**2, 0.0).sum(axis=2)
    return mean, variance, weight


def soft_alpha(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    num_layers: int,
    radius: int = 3,
    contrast: float = 0.08,
) -> list[np.ndarray]:
    """Fractional coverage of "layer k or nearer" for k = 2..num_layers, nested.

    On the one-pixel rim each side of a boundary, each pixel's colour is projected onto
    the line between the local inside and outside colours (means over ``radius``):
    ``a = <I - B, F - B> / |F - B|²``. Where the two sides barely differ in colour
    (``|F - B|`` below ``contrast``) the projection means little, so the hard mask is kept
    in proportion. Everywhere else alpha is exactly 0 or 1.

    Returns ``alphas`` with ``alphas[k - 2]`` for layer ``k``, float32 (H, W) in [0, 1],
    and ``alphas[i] >= alphas[i + 1]`` everywhere.
    """
    alphas: list[np.ndarray] = []
    cross = np.ones((3, 3), dtype=np.uint8)
    for k in range(num_layers, 1, -1):
        mask = (labels >= k).astype(np.uint8)
        alpha = mask.astype(np.float32)
        inner = cv2.erode(mask, cross, borderType=cv2.BORDER_REPLICATE)
        outer = cv2.dilate(mask, cross, borderType=cv2.BORDER_REPLICATE)
        rim = (outer != inner)
        box = _bounding_box(rim, pad=radius + 1)
        if box is not None:
            y0, y1, x0, x1 = box
            window = alpha[y0:y1, x0:x1]
            projected = _project_rim(
                image[y0:y1, x0:x1],
                inner[y0:y1, x0:x1],
                1 - outer[y0:y1, x0:x1],
                window,
                radius=radius,
                contrast=contrast,
            )
            on_rim = rim[y0:y1, x0:x1]
            window[on_rim] = projected[on_rim]
        if alphas:
            np.maximum(alpha, alphas[-1], out=alpha)
        alphas.append(alpha)
    alphas.reverse()
    return alphas


def _project_rim(
    image: np.ndarray,
    inside: np.ndarray,
    outside: np.ndarray,
    hard: np.ndarray,
    *,
    radius: int,
    contrast: float,
) -> np.ndarray:
    fg = _masked_mean(image, inside, radius)
    bg = _masked_mean(image, outside, radius)
    direction = fg - bg
    power = np.einsum("ijc,ijc->ij", direction, direction)
    along = np.einsum("ijc,ijc->ij", image - bg, direction)
    projected = np.clip(along / np.maximum(power, 1e-8), 0.0, 1.0)
    confidence = power / (power + contrast**2)
    result: np.ndarray = (confidence * projected + (1.0 - confidence) * hard).astype(np.float32)
    return result


def _masked_mean(image: np.ndarray, mask: np.ndarray, radius: int) -> np.ndarray:
    size = (2 * radius + 1, 2 * radius + 1)
    weight = cv2.boxFilter(mask.astype(np.float32), -1, size, normalize=False)
    total = cv2.boxFilter(image * mask[..., None].astype(np.float32), -1, size, normalize=False)
    mean: np.ndarray = total / np.maximum(weight, 1e-6)[..., None]
    return mean


def _bounding_box(mask: np.ndarray, *, pad: int) -> tuple[int, int, int, int] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    height, width = mask.shape
    return (
        max(0, rows[0] - pad),
        min(height, rows[-1] + pad + 1),
        max(0, cols[0] - pad),
        min(width, cols[-1] + pad + 1),
    )
