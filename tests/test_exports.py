"""The exports read back by readers that share no code with the writers: psd-tools for
layers.psd, zipfile + ElementTree for layers.ora, pygltflib for scene.glb; the setting,
the manifest and `strata show`. The viewer in a browser: tests/test_exports_viewer.py."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pygltflib
import pytest
from PIL import Image
from psd_tools import PSDImage
from psd_tools.constants import Compression
from psd_tools.psd import PSD

from bench.scenes import make_scene
from config.errors import SettingsError
from config.loader import overrides_layer, validate_layer
from config.model import Export, JobSettings, Mode
from daemon.cmd_jobs import describe
from daemon.ledger import Ledger
from pipeline import Job, run
from pipeline.io import save_gray16_png

ALL = "psd,ora,glb,html"
REPO = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 320, 240


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished job of a 4-surface scene (a PNG, so the working image is exactly the
    photo) with every export."""
    folder = tmp_path_factory.mktemp("exports")
    scene = make_scene(num_surfaces=4, seed=3, width=WIDTH, height=HEIGHT)
    photo = folder / "scene.png"
    Image.fromarray(np.round(scene.image * 255).astype(np.uint8)).save(photo)
    save_gray16_png(folder / "scene.depth.png", scene.nearness)
    result = run(
        Job(
            job_id="exports-test",
            mode=Mode.PHOTO_REALISTIC,
            input_path=photo,
            output_root=folder / "out",
            settings=JobSettings(exports=ALL),
        )
    )
    return result.output_dir


def manifest_of(job: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((job / "manifest.json").read_text())
    return manifest


def layer_names(job: Path) -> list[str]:
    return [Path(layer["file"]).stem for layer in manifest_of(job)["layers"]]


def rgba(data: bytes | Path) -> np.ndarray:
    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
        return np.asarray(image.convert("RGBA"))


def photo_pixels(job: Path) -> np.ndarray:
    with Image.open(job / "source.png") as image:
        return np.asarray(image.convert("RGB"))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if error == 0 else 10 * math.log10(255**2 / error)


# --- manifest, settings, show ------------------------------------------------------------


def test_the_manifest_lists_each_export_with_its_file_and_size(job: Path) -> None:
    exports = manifest_of(job)["exports"]
    assert [(e["format"], e["file"]) for e in exports] == [
        ("psd", "layers.psd"),
        ("ora", "layers.ora"),
        ("glb", "scene.glb"),
        ("html", "viewer.html"),
    ]
    for entry in exports:
        assert entry["bytes"] == (job / entry["file"]).stat().st_size > 0
        assert entry["seconds"] >= 0
    assert manifest_of(job)["settings"]["exports"] == ["psd", "ora", "glb", "html"]


def test_default_is_the_viewer_alone_and_an_empty_list_writes_none(tmp_path: Path) -> None:
    assert JobSettings().exports == (Export.HTML,)
    scene = make_scene(num_surfaces=2, seed=1, width=64, height=48)
    photo = tmp_path / "small.png"
    Image.fromarray(np.round(scene.image * 255).astype(np.uint8)).save(photo)
    save_gray16_png(tmp_path / "small.depth.png", scene.nearness)
    settings = JobSettings(exports=[])
    done = run(Job("none", Mode.PHOTO_REALISTIC, photo, tmp_path / "out", settings=settings))
    assert done.manifest["exports"] == []
    assert not {"layers.psd", "layers.ora", "scene.glb", "viewer.html"} & {
        p.name for p in done.output_dir.iterdir()
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("psd,html", ("psd", "html")),
        ("html, psd", ("psd", "html")),  # one order, so the duplicate fingerprint matches
        ("[glb, glb]", ("glb",)),
        ("ora", ("ora",)),
        ("[]", ()),
    ],
)
def test_set_takes_a_comma_list(text: str, expected: tuple[str, ...]) -> None:
    layer = overrides_layer([f"exports={text}"])
    settings = validate_layer(JobSettings, layer).value
    assert tuple(export.value for export in settings.exports) == expected


@pytest.mark.parametrize("text", ["pdf", "psd,tiff", "[1]"])
def test_an_unknown_export_names_the_key_and_the_choices(text: str) -> None:
    with pytest.raises(SettingsError) as caught:
        validate_layer(JobSettings, overrides_layer([f"exports={text}"]))
    message = str(caught.value)
    assert "`exports`" in message
    assert "--set" in message
    assert "a list of psd, ora, glb, html" in message


def test_show_lists_the_exports_with_their_sizes(job: Path, config: Path) -> None:
    ledger = Ledger.in_state_dir(config.parent / "state")
    record = ledger.create_job(
        mode="photo-realistic", input_path=job / "source.png", input_key="photo-realistic/x"
    )
    assert record is not None
    ledger.claim(record.id)
    ledger.complete(record.id, output_dir=job, manifest=manifest_of(job))
    done = ledger.get(record.id)
    assert done is not None
    line = next(line for line in describe(done).splitlines() if line.startswith("exports:"))
    for entry in manifest_of(job)["exports"]:
        assert entry["file"] in line
    size = manifest_of(job)["exports"][0]["bytes"]
    assert f"layers.psd ({size / 1000:.1f} kB)" in line or f"({size / 1e6:.1f} MB)" in line


# --- layers.psd ----------------------------------------------------------------------------


def test_psd_has_one_full_canvas_layer_per_strata_layer_background_at_the_bottom(
    job: Path,
) -> None:
    document = PSDImage.open(job / "layers.psd")
    names = layer_names(job)
    assert (document.width, document.height) == (WIDTH, HEIGHT)
    assert document.depth == 8
    assert len(document) == len(names) == 4
    # psd-tools lists layers bottom to top.
    assert [layer.name for layer in document] == names
    for layer, name in zip(document, names, strict=True):
        assert layer.kind == "pixel"
        assert (layer.left, layer.top, layer.width, layer.height) == (0, 0, WIDTH, HEIGHT)
        stored = np.round(layer.numpy() * 255).astype(np.uint8)
        written = rgba(job / f"{name}.png")
        assert np.array_equal(stored[..., 3], written[..., 3])
        shown = written[..., 3] > 0
        assert np.array_equal(stored[..., :3][shown], written[..., :3][shown])


def test_psd_channels_are_rle_compressed(job: Path) -> None:
    with (job / "layers.psd").open("rb") as handle:
        record = PSD.read(handle)
    channels = record.layer_and_mask_information.layer_info.channel_image_data
    assert channels is not None
    assert {data.compression for layer in channels for data in layer} == {Compression.RLE}


def test_psd_composite_is_the_working_image(job: Path) -> None:
    document = PSDImage.open(job / "layers.psd")
    merged = document.topil()  # the file's own merged image, what previews show
    assert merged is not None
    assert psnr(np.asarray(merged.convert("RGB")), photo_pixels(job)) >= 40
    recomposed = document.composite(ignore_preview=True)  # from the layers, by psd-tools
    assert psnr(np.asarray(recomposed.convert("RGB")), photo_pixels(job)) >= 40


# --- layers.ora ----------------------------------------------------------------------------


def test_ora_starts_with_its_stored_mimetype(job: Path) -> None:
    with zipfile.ZipFile(job / "layers.ora") as archive:
        first = archive.infolist()[0]
        assert first.filename == "mimetype"
        assert first.compress_type == zipfile.ZIP_STORED
        assert archive.read(first) == b"image/openraster"
    # What file-type sniffers read: the name and the type at fixed offsets.
    assert (job / "layers.ora").read_bytes()[30:54] == b"mimetypeimage/openraster"


def test_ora_stack_lists_the_layers_top_to_bottom_with_their_pixels(job: Path) -> None:
    names = layer_names(job)
    with zipfile.ZipFile(job / "layers.ora") as archive:
        image = ElementTree.fromstring(archive.read("stack.xml"))
        assert image.tag == "image"
        assert (int(image.attrib["w"]), int(image.attrib["h"])) == (WIDTH, HEIGHT)
        stacks = image.findall("stack")
        assert len(stacks) == 1
        layers = stacks[0].findall("layer")
        assert [layer.attrib["name"] for layer in layers] == names[::-1]
        for layer in layers:
            assert (layer.attrib.get("x", "0"), layer.attrib.get("y", "0")) == ("0", "0")
            assert layer.attrib.get("visibility", "visible") == "visible"
            stored = rgba(archive.read(layer.attrib["src"]))
            assert np.array_equal(stored, rgba(job / f"{layer.attrib['name']}.png"))


def test_ora_merged_image_and_thumbnail(job: Path) -> None:
    with zipfile.ZipFile(job / "layers.ora") as archive:
        merged = rgba(archive.read("mergedimage.png"))
        thumbnail = rgba(archive.read("Thumbnails/thumbnail.png"))
    assert merged.shape[:2] == (HEIGHT, WIDTH)
    assert psnr(merged[..., :3], photo_pixels(job)) >= 40
    assert max(thumbnail.shape[:2]) == 256
    assert thumbnail.shape[1] / thumbnail.shape[0] == pytest.approx(WIDTH / HEIGHT, rel=0.01)
    small = np.asarray(Image.fromarray(photo_pixels(job)).resize((256, 192), Image.BOX))
    assert psnr(thumbnail[..., :3], small) >= 30


# --- scene.glb -----------------------------------------------------------------------------


def accessor_values(scene: pygltflib.GLTF2, index: int) -> np.ndarray:
    accessor = scene.accessors[index]
    view = scene.bufferViews[accessor.bufferView]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3}[accessor.type]
    dtype = {pygltflib.FLOAT: np.float32, pygltflib.UNSIGNED_SHORT: np.uint16}[
        accessor.componentType
    ]
    start = view.byteOffset + (accessor.byteOffset or 0)
    data = scene.binary_blob()[start : start + accessor.count * width * np.dtype(dtype).itemsize]
    return np.frombuffer(data, dtype).reshape(accessor.count, width)


def image_bytes(scene: pygltflib.GLTF2, index: int) -> bytes:
    view = scene.bufferViews[scene.images[index].bufferView]
    blob: bytes = scene.binary_blob()
    return blob[view.byteOffset : view.byteOffset + view.byteLength]


def test_glb_has_a_textured_card_per_layer_and_a_camera(job: Path) -> None:
    scene = pygltflib.GLTF2().load_binary(str(job / "scene.glb"))
    names = layer_names(job)
    assert len(scene.meshes) == len(scene.textures) == len(scene.images) == len(names)
    assert [mesh.name for mesh in scene.meshes] == names
    assert len(scene.cameras) == 1
    assert scene.cameras[0].type == "perspective"
    listed = scene.scenes[scene.scene].nodes
    assert any(scene.nodes[index].camera == 0 for index in listed)
    for index, name in enumerate(names):
        material = scene.materials[scene.meshes[index].primitives[0].material]
        texture = scene.textures[material.pbrMetallicRoughness.baseColorTexture.index]
        assert scene.images[texture.source].mimeType == "image/png"
        assert np.array_equal(rgba(image_bytes(scene, texture.source)), rgba(job / f"{name}.png"))
        assert material.alphaMode == ("OPAQUE" if index == 0 else "BLEND")
        assert "KHR_materials_unlit" in material.extensions


def test_glb_cards_fill_the_camera_view_at_their_parallax_depths(job: Path) -> None:
    scene = pygltflib.GLTF2().load_binary(str(job / "scene.glb"))
    camera = scene.cameras[0].perspective
    assert camera.aspectRatio == pytest.approx(WIDTH / HEIGHT)
    tan_up = math.tan(camera.yfov / 2)
    camera_node = next(node for node in scene.nodes if node.camera == 0)
    assert not camera_node.translation  # at the origin, looking down -Z
    assert not camera_node.rotation
    cards = [node for node in scene.nodes if node.mesh is not None]
    distances = []
    for node in cards:
        primitive = scene.meshes[node.mesh].primitives[0]
        corners = accessor_values(scene, primitive.attributes.POSITION) + np.array(
            node.translation or [0, 0, 0], np.float32
        )
        depth = -corners[:, 2]
        assert np.all(depth > 0), "in front of the camera"
        assert np.ptp(depth) < 1e-6, "a flat card facing the camera"
        ndc_x = corners[:, 0] / depth / (tan_up * camera.aspectRatio)
        ndc_y = corners[:, 1] / depth / tan_up
        uv = accessor_values(scene, primitive.attributes.TEXCOORD_0)
        # Each corner projects to the image corner its texture coordinate names
        # (glTF's (0, 0) is the top-left of the image, where NDC is (-1, +1)).
        assert np.allclose(ndc_x, 2 * uv[:, 0] - 1, atol=1e-5)
        assert np.allclose(ndc_y, 1 - 2 * uv[:, 1], atol=1e-5)
        assert {tuple(c) for c in uv.tolist()} == {(0, 0), (0, 1), (1, 0), (1, 1)}
        triangles = accessor_values(scene, primitive.indices).ravel()
        assert sorted(set(triangles.tolist())) == [0, 1, 2, 3]
        assert len(triangles) == 6
        distances.append(float(depth[0]))
    assert distances == sorted(distances, reverse=True), "background farthest"
    disparity = 1 / np.array(distances)
    shares = (disparity - disparity[0]) / (disparity[-1] - disparity[0])
    parallax = [layer["parallax"] for layer in manifest_of(job)["layers"]]
    assert np.allclose(shares, parallax, atol=2e-3)


def test_the_default_export_loads_no_export_library(tmp_path: Path) -> None:
    """psd-tools and pygltflib cost a cold `strata process` ~0.3 s to import: only a job
    that asks for their file loads them."""
    code = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from config.model import Export\n"
        "from pipeline.exports import ExportStack, write_exports\n"
        f"folder = Path({str(tmp_path)!r})\n"
        "pixels = np.zeros((4, 4, 4), np.uint8)\n"
        "stack = ExportStack('t', ['Layer_1_background'], [folder / 'Layer_1_background.png'],"
        " [pixels], [0.0], np.zeros((4, 4, 3), np.float32))\n"
        "write_exports(stack, folder, [Export.HTML])\n"
        "print(sorted(m for m in ('psd_tools', 'pygltflib') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip() == "[]"
    assert (tmp_path / "viewer.html").is_file()
