"""``scene.glb``: the layers as textured cards in front of a camera, glTF 2.0 binary.

The camera (the node ``Camera``, at the origin, looking down -Z as glTF's cameras do) has a
field of view of ``FIELD_OF_VIEW`` degrees across the photo's longer side. Each layer is a
card (node and mesh named as its PNG) standing at its distance on the camera's axis and
sized to fill the camera's view exactly there, so through the camera the cards show the
photo, pixel for pixel; the PNG is its texture, unlit (``KHR_materials_unlit``: the colours
are the photo's, not lit by a renderer's lights), alpha blended, both faces drawn.

Distances: the foreground card stands at ``NEAR``, the background at ``FAR``, and each card
between at the distance whose disparity (1 / distance) is its ``parallax`` share of the
way, the way the manifest's ``parallax`` is defined. So a camera moved sideways sees the
layers shift against each other as the parallax preview moves them; the scene's extras
carry ``sway``, the sideways move that shifts the foreground against the background by
the preview's amplitude.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pygltflib as gltf

from pipeline.exports import ExportStack
from pipeline.preview import PARALLAX_AMPLITUDE

FILE = "scene.glb"
FIELD_OF_VIEW = 50.0
"""Degrees across the longer side: a "normal" lens (about 40 mm on full frame)."""
NEAR = 1.0
"""Distance of the foreground card from the camera (scene units: metres in Blender)."""
FAR = 4.0
"""Distance of the background card."""
UNLIT = "KHR_materials_unlit"
_MIN_STEP = 1e-3
"""Least disparity between two cards, as a share of the foreground's: two layers with the
same parallax would otherwise share a plane, and their blending order would flicker."""


def half_view(size: tuple[int, int]) -> tuple[float, float]:
    """tan of half the horizontal and half the vertical field of view."""
    width, height = size
    longer = math.tan(math.radians(FIELD_OF_VIEW) / 2)
    return longer * width / max(width, height), longer * height / max(width, height)


def distances(parallax: list[float]) -> list[float]:
    """Each card's distance from the camera, farthest (the background) first.

    Cards keep the stack's order whatever the parallax: a renderer blends transparent
    cards far to near, so a layer whose parallax is not above the one behind it stands just
    in front of that one (``_MIN_STEP``) instead of behind it."""
    near, far = 1.0 / NEAR, 1.0 / FAR
    disparities: list[float] = []
    for share in parallax:
        disparity = far + min(max(share, 0.0), 1.0) * (near - far)
        if disparities:
            disparity = max(disparity, disparities[-1] + _MIN_STEP * near)
        disparities.append(disparity)
    return [1.0 / disparity for disparity in disparities]


def write(stack: ExportStack, folder: Path) -> Path:
    scene = _Builder(stack).build()
    path = folder / FILE
    scene.save_binary(str(path))
    return path


class _Builder:
    """Accumulates the binary chunk (4-byte aligned views) and the glTF objects."""

    def __init__(self, stack: ExportStack) -> None:
        self.stack = stack
        self.blob = bytearray()
        self.doc = gltf.GLTF2(
            asset=gltf.Asset(generator="Strata", version="2.0"),
            extensionsUsed=[UNLIT],
            samplers=[
                gltf.Sampler(
                    magFilter=gltf.LINEAR,
                    minFilter=gltf.LINEAR_MIPMAP_LINEAR,
                    wrapS=gltf.CLAMP_TO_EDGE,
                    wrapT=gltf.CLAMP_TO_EDGE,
                )
            ],
        )

    def build(self) -> gltf.GLTF2:
        doc, stack = self.doc, self.stack
        across, up = half_view(stack.size)
        doc.cameras.append(
            gltf.Camera(
                name="Camera",
                type="perspective",
                perspective=gltf.Perspective(
                    aspectRatio=across / up,
                    yfov=2 * math.atan(up),
                    znear=NEAR / 100,
                    zfar=FAR * 100,
                ),
            )
        )
        doc.nodes.append(gltf.Node(name="Camera", camera=0))
        # Shared by every card: the corners' texture coordinates (glTF's (0, 0) is the
        # image's top-left), their normal (towards the camera) and the two triangles.
        uv = self._accessor(np.array([[0, 0], [0, 1], [1, 1], [1, 0]], np.float32), "VEC2")
        normal = self._accessor(np.tile(np.array([0, 0, 1], np.float32), (4, 1)), "VEC3")
        triangles = self._accessor(np.array([0, 1, 2, 0, 2, 3], np.uint16), "SCALAR")
        for index, (name, file, distance) in enumerate(
            zip(stack.names, stack.files, distances(stack.parallax), strict=True)
        ):
            half_width, half_height = across * distance, up * distance
            corners = np.array(
                [
                    [-half_width, half_height, 0],  # top-left, then counter-clockwise
                    [-half_width, -half_height, 0],
                    [half_width, -half_height, 0],
                    [half_width, half_height, 0],
                ],
                np.float32,
            )
            position = self._accessor(corners, "VEC3", bounds=True)
            doc.images.append(
                gltf.Image(
                    name=name, mimeType="image/png", bufferView=self._view(file.read_bytes())
                )
            )
            doc.textures.append(gltf.Texture(sampler=0, source=index))
            doc.materials.append(
                gltf.Material(
                    name=name,
                    pbrMetallicRoughness=gltf.PbrMetallicRoughness(
                        baseColorTexture=gltf.TextureInfo(index=index),
                        metallicFactor=0.0,
                        roughnessFactor=1.0,
                    ),
                    alphaMode=gltf.OPAQUE if index == 0 else gltf.BLEND,
                    doubleSided=True,
                    extensions={UNLIT: {}},
                )
            )
            primitive = gltf.Primitive(
                attributes=gltf.Attributes(POSITION=position, NORMAL=normal, TEXCOORD_0=uv),
                indices=triangles,
                material=index,
            )
            doc.meshes.append(gltf.Mesh(name=name, primitives=[primitive]))
            doc.nodes.append(gltf.Node(name=name, mesh=index, translation=[0.0, 0.0, -distance]))
        sway = 2 * PARALLAX_AMPLITUDE * across / (1.0 / NEAR - 1.0 / FAR)
        doc.scenes.append(
            gltf.Scene(
                name=stack.title,
                nodes=list(range(len(doc.nodes))),
                extras={"strata": {"sway": round(sway, 6), "near": NEAR, "far": FAR}},
            )
        )
        doc.scene = 0
        doc.buffers.append(gltf.Buffer(byteLength=len(self.blob)))
        doc.set_binary_blob(bytes(self.blob))
        return doc

    def _view(self, data: bytes, *, target: int | None = None) -> int:
        """A buffer view of ``data`` at the next 4-byte boundary; returns its index."""
        self.blob.extend(b"\0" * (-len(self.blob) % 4))
        self.doc.bufferViews.append(
            gltf.BufferView(
                buffer=0, byteOffset=len(self.blob), byteLength=len(data), target=target
            )
        )
        self.blob.extend(data)
        return len(self.doc.bufferViews) - 1

    def _accessor(self, values: np.ndarray, kind: str, *, bounds: bool = False) -> int:
        is_index = values.dtype == np.uint16
        view = self._view(
            values.tobytes(), target=gltf.ELEMENT_ARRAY_BUFFER if is_index else gltf.ARRAY_BUFFER
        )
        rows = values.reshape(len(values), -1)
        self.doc.accessors.append(
            gltf.Accessor(
                bufferView=view,
                componentType=gltf.UNSIGNED_SHORT if is_index else gltf.FLOAT,
                count=len(values),
                type=kind,
                # POSITION must carry its bounds (glTF 2.0, 3.6.2.4).
                min=rows.min(axis=0).tolist() if bounds else None,
                max=rows.max(axis=0).tolist() if bounds else None,
            )
        )
        return len(self.doc.accessors) - 1
