"""``layers.ora``: OpenRaster (Krita, GIMP, MyPaint), as its specification lays it out.

A zip whose first entry is ``mimetype`` (stored, uncompressed, so a reader can identify the
file from its first bytes), then ``stack.xml`` (the layers top to bottom, each the full
canvas at 0, 0), the layer PNGs under ``data/``, ``mergedimage.png`` (the working image)
and ``Thumbnails/thumbnail.png`` (at most 256 pixels a side). The layer PNGs are the job's
own files, stored as they are: they are already deflated.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.etree import ElementTree

import cv2
import numpy as np

from pipeline.exports import ExportStack
from pipeline.io import encode_png

FILE = "layers.ora"
MIMETYPE = "image/openraster"
VERSION = "0.0.6"
THUMBNAIL_SIDE = 256


def write(stack: ExportStack, folder: Path) -> Path:
    path = folder / FILE
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", MIMETYPE, compress_type=zipfile.ZIP_STORED)
        archive.writestr("stack.xml", stack_xml(stack), compress_type=zipfile.ZIP_DEFLATED)
        for name, file in zip(stack.names, stack.files, strict=True):
            archive.write(file, layer_src(name), compress_type=zipfile.ZIP_STORED)
        archive.writestr(
            "mergedimage.png", encode_png(stack.merged), compress_type=zipfile.ZIP_STORED
        )
        archive.writestr(
            "Thumbnails/thumbnail.png",
            encode_png(thumbnail(stack)),
            compress_type=zipfile.ZIP_STORED,
        )
    return path


def layer_src(name: str) -> str:
    return f"data/{name}.png"


def stack_xml(stack: ExportStack) -> bytes:
    """The ``<image>`` element: one ``<stack>``, its first ``<layer>`` the topmost."""
    width, height = stack.size
    image = ElementTree.Element("image", version=VERSION, w=str(width), h=str(height))
    root = ElementTree.SubElement(image, "stack")
    for name in reversed(stack.names):
        attributes = {
            "name": name,
            "src": layer_src(name),
            "x": "0",
            "y": "0",
            "opacity": "1.0",
            "visibility": "visible",
            "composite-op": "svg:src-over",
        }
        ElementTree.SubElement(root, "layer", attributes)
    text: bytes = ElementTree.tostring(image, encoding="UTF-8", xml_declaration=True)
    return text


def thumbnail(stack: ExportStack) -> np.ndarray:
    """The merged image shrunk to at most ``THUMBNAIL_SIDE`` pixels a side."""
    width, height = stack.size
    scale = min(1.0, THUMBNAIL_SIDE / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small: np.ndarray = cv2.resize(stack.merged, size, interpolation=cv2.INTER_AREA)
    return small
