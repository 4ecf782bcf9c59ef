"""``layers.psd``: a layered Photoshop file, written by psd-tools.

One 8-bit RGB pixel layer per Strata layer, each the full canvas, named as its PNG (without
``.png``), the background at the bottom; RLE-compressed, the compression every reader
(Photoshop, After Effects, Krita, GIMP, Affinity) takes. The file's merged image, the one
a viewer or Finder's preview shows, is the layers composited by psd-tools when it saves:
the working image, as the layers recompose it.
"""

from __future__ import annotations

from pathlib import Path

from psd_tools import PSDImage
from psd_tools.constants import Compression

from pipeline.exports import ExportStack

FILE = "layers.psd"


def write(stack: ExportStack, folder: Path) -> Path:
    document = PSDImage.new("RGB", stack.size, depth=8)
    for name, pixels in zip(stack.names, stack.pixels, strict=True):
        # Appended bottom to top: the farthest layer first.
        document.create_pixel_layer_from_array(pixels, name=name, compression=Compression.RLE)
    path = folder / FILE
    document.save(path)
    return path
