"""Extra files for the tools layered-art makers use, written beside the layers.

The job's ``exports`` setting picks them; each is one module with one function
``write(stack, folder) -> Path`` that writes its file into ``folder`` (the job's temporary
folder, where the layer PNGs already are) and returns its path:

- ``psd`` (:mod:`pipeline.exports.psd`): ``layers.psd``, one pixel layer per Strata layer.
- ``ora`` (:mod:`pipeline.exports.ora`): ``layers.ora``, OpenRaster.
- ``glb`` (:mod:`pipeline.exports.glb`): ``scene.glb``, textured cards and a camera.
- ``html`` (:mod:`pipeline.exports.html`): ``viewer.html``, the stack moved by the pointer,
  reading the layer PNGs beside it.

Timings and sizes at 2 MP and 12 MP are in docs/benchmarks.md (``python -m bench --suite
layers``); they are why the default is ``[html]`` alone.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from config.model import Export
from pipeline.io import to_uint8


@dataclass(frozen=True)
class ExportStack:
    """What every export reads: the layers exactly as their PNGs hold them, farthest first."""

    title: str  # the photo's stem: document and page titles
    names: list[str]  # each layer's name, its file name without ``.png``
    files: list[Path]  # the layer PNGs, already written in the job folder
    pixels: list[np.ndarray]  # uint8 (H, W, 4) straight RGBA, as in the files
    parallax: list[float]  # each layer's relative shift: 0 background … 1 foreground
    working: np.ndarray  # float32 (H, W, 3): the image the layers recompose

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the canvas."""
        height, width = self.pixels[0].shape[:2]
        return width, height

    @cached_property
    def merged(self) -> np.ndarray:
        """uint8 (H, W, 3): the working image, as the exports' merged images show it."""
        return to_uint8(self.working)


def _writer(export: Export) -> Callable[[ExportStack, Path], Path]:
    """The module named as the export (``pipeline.exports.psd`` for ``psd``), imported when
    used: a job that asks for no PSD never loads psd-tools."""
    module = importlib.import_module(f"{__name__}.{export.value}")
    writer: Callable[[ExportStack, Path], Path] = module.write
    return writer


def write_exports(
    stack: ExportStack, folder: Path, exports: Iterable[Export]
) -> list[dict[str, Any]]:
    """Write each asked export into ``folder``; returns the manifest's ``exports`` entries
    (format, file, bytes, seconds), in :class:`~config.model.Export`'s order."""
    wanted = set(exports)
    entries: list[dict[str, Any]] = []
    for export in Export:
        if export not in wanted:
            continue
        started = time.perf_counter()
        path = _writer(export)(stack, folder)
        entries.append(
            {
                "format": export.value,
                "file": path.name,
                "bytes": path.stat().st_size,
                "seconds": round(time.perf_counter() - started, 4),
            }
        )
    return entries


__all__ = ["ExportStack", "write_exports"]
