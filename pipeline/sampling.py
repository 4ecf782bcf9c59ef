"""Sparse reads and writes: an image sampled at n arbitrary points in O(n).

``cv2.remap`` reads a whole map of coordinates in one native pass; the points are laid out
in rows of :data:`REMAP_COLUMNS` because remap takes maps under 32767 on a side.
:func:`take_pixels` and :func:`put_pixels` read and write whole pixels at flat indices.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

REMAP_COLUMNS = 1024
F32 = npt.NDArray[np.float32]


class Points:
    """Positions ``(x, y)`` in pixel coordinates, held as remap maps, read from any image."""

    def __init__(self, xs: np.ndarray, ys: np.ndarray) -> None:
        self.n = int(xs.size)
        rows = max(1, -(-self.n // REMAP_COLUMNS))
        self._mx = np.zeros((rows, REMAP_COLUMNS), np.float32)
        self._my = np.zeros((rows, REMAP_COLUMNS), np.float32)
        self._mx.reshape(-1)[: self.n] = xs
        self._my.reshape(-1)[: self.n] = ys
        self._scaled: dict[float, tuple[F32, F32]] = {1.0: (self._mx, self._my)}

    @property
    def x(self) -> F32:
        return self._mx.reshape(-1)[: self.n]

    @property
    def y(self) -> F32:
        return self._my.reshape(-1)[: self.n]

    def moved(self, dx: F32, dy: F32) -> Points:
        return Points(self.x + dx, self.y + dy)

    def sample(self, src: np.ndarray, *, scale: float = 1.0, nearest: bool = False) -> F32:
        """``src`` at the points (coordinates times ``scale``): an ``(n, channels)`` array.

        Bilinear, or nearest for exact pixel reads; outside ``src`` the border repeats.
        """
        if scale not in self._scaled:
            self._scaled[scale] = (self._mx * np.float32(scale), self._my * np.float32(scale))
        mx, my = self._scaled[scale]
        interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
        got = cv2.remap(src, mx, my, interpolation, borderMode=cv2.BORDER_REPLICATE)
        channels = 1 if got.ndim == 2 else got.shape[2]
        return np.asarray(got.reshape(-1, channels)[: self.n], dtype=np.float32)


def take_pixels(image: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """The pixels of a C-contiguous ``(H, W, C)`` or ``(N, C)`` array at the flat pixel
    indices ``flat``, as ``(n, C)``."""
    taken: np.ndarray = np.take(_rows(image), flat, axis=0)
    return taken


def put_pixels(image: np.ndarray, flat: np.ndarray, values: np.ndarray) -> None:
    """``image`` (C-contiguous ``(H, W, C)`` or ``(N, C)``) at the flat pixel indices
    ``flat`` = ``values`` ``(n, C)``."""
    _rows(image)[flat] = values


def _rows(image: np.ndarray) -> np.ndarray:
    """The pixels as rows of a view (a copy would lose the writes)."""
    if not image.flags.c_contiguous:
        raise ValueError("pixel reads and writes need a C-contiguous array")
    return image.reshape(-1, image.shape[-1])
