"""``viewer.html``: one page that shows the stack and moves it with the pointer, a finger
or the device's tilt; opened from the Finder with a double click, it needs no network.

The page (``viewer.html`` beside this module, plain HTML, CSS and script) reads the layer
PNGs beside it, so it adds a few kilobytes to the job instead of another copy of every
layer. The stack it shows is written into it as JSON: each layer's file, name and
``parallax``, and the preview's amplitude, so the viewer moves each layer exactly as far as
``parallax.webp`` does (``PARALLAX_AMPLITUDE`` × the shown width × the layer's parallax,
horizontally, and as far vertically), never farther than the fill behind it reaches.
"""

from __future__ import annotations

import html
import json
from importlib.resources import files
from pathlib import Path
from urllib.parse import quote

from pipeline.exports import ExportStack
from pipeline.preview import PARALLAX_AMPLITUDE

FILE = "viewer.html"
TEMPLATE = "viewer.html"


def write(stack: ExportStack, folder: Path) -> Path:
    path = folder / FILE
    path.write_text(render(stack), encoding="utf-8")
    return path


def render(stack: ExportStack) -> str:
    width, height = stack.size
    data = {
        "title": stack.title,
        "width": width,
        "height": height,
        "amplitude": PARALLAX_AMPLITUDE,
        "layers": [
            {"name": name, "file": quote(file.name), "parallax": share}
            for name, file, share in zip(stack.names, stack.files, stack.parallax, strict=True)
        ],
    }
    # "<" escaped: no layer or photo name can close the <script> element early.
    embedded = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    template = files("pipeline.exports").joinpath(TEMPLATE).read_text(encoding="utf-8")
    return template.replace("{{title}}", html.escape(stack.title)).replace("{{stack}}", embedded)
