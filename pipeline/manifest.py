"""manifest.json, schema version 1 (the product specification's manifest section)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import cv2
import numpy as np

from pipeline.layers import Layer

SCHEMA_VERSION = 1


def strata_version() -> str:
    try:
        return version("strata")
    except PackageNotFoundError:
        return "0+unknown"


def layer_name(index: int, count: int) -> str:
    """``background`` for 1, ``foreground`` for ``count``, ``midground`` between."""
    if index == 1:
        return "background"
    return "foreground" if index == count else "midground"


def layer_file(index: int, count: int) -> str:
    return f"Layer_{index}_{layer_name(index, count)}.png"


@dataclass(frozen=True)
class LayerStats:
    depth_range: tuple[float, float]
    coverage: float
    bbox: tuple[int, int, int, int]
    filled_fraction: float
    parallax: float


def layer_stats(
    layers: list[Layer], depth_ranges: list[tuple[float, float]], parallax: list[float]
) -> list[LayerStats]:
    """Per-layer figures: visible share, bounding box of its pixels, invented share."""
    canvas = layers[0].alpha.size
    remaining = np.ones_like(layers[0].alpha)
    visible: list[float] = [0.0] * len(layers)
    for index in range(len(layers) - 1, -1, -1):
        weight = layers[index].alpha * remaining
        visible[index] = float(weight.sum()) / canvas
        remaining -= weight
    stats = []
    for index, layer in enumerate(layers):
        stats.append(
            LayerStats(
                depth_range=(round(depth_ranges[index][0], 4), round(depth_ranges[index][1], 4)),
                coverage=round(visible[index], 6),
                bbox=_bbox(layer.alpha > 0),
                filled_fraction=round(int(np.count_nonzero(layer.filled)) / canvas, 6),
                parallax=round(parallax[index], 4),
            )
        )
    return stats


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the mask's pixels, right/bottom exclusive (PIL's
    ``getbbox`` convention); zeros for an empty mask."""
    left, top, width, height = cv2.boundingRect(mask.view(np.uint8))
    if width == 0 or height == 0:
        return (0, 0, 0, 0)
    return (left, top, left + width, top + height)


def layers_section(stats: list[LayerStats]) -> list[dict[str, Any]]:
    count = len(stats)
    return [
        {
            "index": index,
            "name": layer_name(index, count),
            "file": layer_file(index, count),
            "depth_range": list(item.depth_range),
            "coverage": item.coverage,
            "bbox": list(item.bbox),
            "filled_fraction": item.filled_fraction,
            "parallax": item.parallax,
        }
        for index, item in enumerate(stats, start=1)
    ]


__all__ = [
    "SCHEMA_VERSION",
    "LayerStats",
    "layer_file",
    "layer_name",
    "layer_stats",
    "layers_section",
    "strata_version",
]
