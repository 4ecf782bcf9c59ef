"""pipeline.io: decoding every input format, the limits, depth files and the encoders.

Every test file is generated in ``tmp_path``; nothing binary is committed.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pillow_heif
import pytest
from PIL import Image, ImageCms, ImageFile, ImageOps

from config.errors import InputError, OutputError
from pipeline import io as sio

LIMITS: dict[str, Any] = {"max_side": 2048, "max_file_size_mb": 50.0, "max_pixels": 120_000_000}

RED = (255, 0, 0)


def decode(path: Path, **overrides: Any) -> sio.DecodedImage:
    return sio.decode_image(path, **{**LIMITS, **overrides})


def pattern(width: int, height: int) -> npt.NDArray[np.uint8]:
    """Smooth RGB gradients (compress well, survive lossy codecs), uint8 (H, W, 3)."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack(
        [xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), (xx + yy) % 256 // 2],
        axis=-1,
    ).astype(np.uint8)


def marked(width: int, height: int) -> Image.Image:
    """Gray image with a red 4×4 block at the stored top-left corner."""
    pixels = np.full((height, width, 3), 128, np.uint8)
    pixels[:4, :4] = RED
    return Image.fromarray(pixels)


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def assert_input_error(excinfo: pytest.ExceptionInfo[InputError], name: str) -> None:
    error = excinfo.value
    assert name in error.reason
    assert error.reason.endswith(".")
    assert error.hint
    assert error.hint != error.reason


# ---------------------------------------------------------------------------------------
# Formats


@pytest.mark.parametrize(
    ("suffix", "save_args", "expected_format", "tolerance"),
    [
        (".jpg", {"format": "JPEG", "quality": 95}, "JPEG", 0.03),
        (".png", {"format": "PNG"}, "PNG", 0.0),
        (".webp", {"format": "WEBP", "lossless": True}, "WEBP", 0.0),
        (".tif", {"format": "TIFF", "compression": "tiff_lzw"}, "TIFF", 0.0),
        (".bmp", {"format": "BMP"}, "BMP", 0.0),
        (".heic", {"format": "HEIF", "quality": 95}, "HEIF", 0.05),
    ],
)
def test_each_format_decodes_to_the_float_convention(
    tmp_path: Path, suffix: str, save_args: dict[str, Any], expected_format: str, tolerance: float
) -> None:
    pillow_heif.register_heif_opener()  # lets the test *write* HEIC
    source = pattern(96, 64)
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(source).save(path, **save_args)

    decoded = decode(path)

    assert decoded.format == expected_format
    assert decoded.rgb.dtype == np.float32
    assert decoded.rgb.shape == (64, 96, 3)
    assert decoded.source_size == (96, 64) == decoded.size
    assert decoded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert decoded.rgb.min() >= 0.0
    assert decoded.rgb.max() <= 1.0
    error = np.abs(decoded.rgb - source / 255.0).mean()
    assert error <= tolerance + 1e-7


def test_suffix_is_case_insensitive(tmp_path: Path) -> None:
    path = tmp_path / "IMG_0001.JPG"
    Image.fromarray(pattern(32, 16)).save(path, format="JPEG")
    assert decode(path).size == (32, 16)


def test_exif_orientation_6_rotates_clockwise(tmp_path: Path) -> None:
    # Stored 40×20 with the marker top-left; orientation 6 = display rotated 90° clockwise,
    # so the viewer sees 20×40 with the marker in the top-right corner.
    path = tmp_path / "portrait.jpg"
    marked(40, 20).save(path, format="JPEG", quality=98, exif=exif_with_orientation(6))

    decoded = decode(path)

    assert decoded.source_size == (20, 40)
    assert decoded.rgb.shape == (40, 20, 3)
    top_right = decoded.rgb[1, -2]
    top_left = decoded.rgb[1, 1]
    assert top_right[0] > 0.8
    assert top_right[1] < 0.2
    assert abs(top_left[0] - 0.5) < 0.05  # gray


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pillow_exif_transpose(tmp_path: Path, orientation: int) -> None:
    path = tmp_path / "oriented.png"
    Image.fromarray(pattern(30, 20)).save(path, exif=exif_with_orientation(orientation))

    decoded = decode(path)

    with Image.open(path) as img:
        reference = np.asarray(ImageOps.exif_transpose(img)) / 255.0
    assert decoded.rgb.shape == reference.shape
    np.testing.assert_allclose(decoded.rgb, reference, atol=1e-6)


def test_orientation_applies_before_the_max_side_fit(tmp_path: Path) -> None:
    path = tmp_path / "tall.jpg"
    marked(400, 200).save(path, format="JPEG", exif=exif_with_orientation(6))

    decoded = decode(path, max_side=100)

    assert decoded.source_size == (200, 400)
    assert decoded.size == (50, 100)


def test_heic_orientation_is_applied_once(tmp_path: Path) -> None:
    pillow_heif.register_heif_opener()
    path = tmp_path / "phone.heic"
    marked(64, 32).save(path, format="HEIF", quality=95, exif=exif_with_orientation(6))

    decoded = decode(path)

    assert decoded.size == (32, 64)
    assert decoded.rgb[1, -2, 0] > 0.7
    assert decoded.rgb[1, -2, 1] < 0.3


# ---------------------------------------------------------------------------------------
# Pixel modes


def test_16_bit_gray_png_scales_by_65535(tmp_path: Path) -> None:
    values = np.array([[0, 1000, 32768, 65535]], np.uint16)
    path = tmp_path / "gray16.png"
    Image.fromarray(values).save(path)  # Pillow mode I;16

    decoded = decode(path)

    expected = values[0] / 65535.0
    for channel in range(3):
        np.testing.assert_allclose(decoded.rgb[0, :, channel], expected, atol=1e-6)


def test_16_bit_gray_tiff_scales_by_65535(tmp_path: Path) -> None:
    values = np.array([[0, 20000, 65535]], np.uint16)
    path = tmp_path / "gray16.tif"
    assert cv2.imwrite(str(path), values)

    np.testing.assert_allclose(decode(path).rgb[0, :, 1], values[0] / 65535.0, atol=1e-6)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_rgb_keeps_its_scale(tmp_path: Path, suffix: str) -> None:
    values = np.array([[[0, 0, 0], [32768, 16384, 65535]]], np.uint16)  # BGR for OpenCV
    path = tmp_path / f"rgb16{suffix}"
    assert cv2.imwrite(str(path), values)

    decoded = decode(path)

    np.testing.assert_allclose(decoded.rgb[0, 1], [1.0, 0.25, 0.5], atol=1 / 255)
    np.testing.assert_array_equal(decoded.rgb[0, 0], [0, 0, 0])


def test_palette_with_transparency_composites_over_white(tmp_path: Path) -> None:
    indices = np.zeros((8, 8), np.uint8)
    indices[:, 4:] = 1
    img = Image.fromarray(indices, mode="L").convert("P")
    img.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)  # 0: black (transparent), 1: blue
    path = tmp_path / "palette.png"
    img.save(path, transparency=0)

    rgb = decode(path).rgb

    np.testing.assert_array_equal(rgb[:, :4], 1.0)  # hidden black shows as white
    np.testing.assert_array_equal(rgb[:, 4:], np.broadcast_to([0.0, 0.0, 1.0], (8, 4, 3)))


def test_rgba_composites_over_white_and_ignores_hidden_colour(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[:, 0] = (255, 0, 0, 255)  # opaque red
    rgba[:, 1] = (255, 0, 0, 128)  # half red
    rgba[:, 2] = (13, 200, 7, 0)  # garbage under alpha 0
    path = tmp_path / "cutout.png"
    Image.fromarray(rgba).save(path)

    rgb = decode(path).rgb

    np.testing.assert_array_equal(rgb[:, 0], np.broadcast_to([1.0, 0.0, 0.0], (2, 3)))
    np.testing.assert_allclose(
        rgb[:, 1], np.broadcast_to([1.0, 127 / 255, 127 / 255], (2, 3)), atol=1e-3
    )
    np.testing.assert_array_equal(rgb[:, 2], 1.0)


@pytest.mark.parametrize(
    ("mode", "fill", "expected"),
    [
        ("L", 51, 0.2),
        ("LA", (51, 255), 0.2),
        ("1", 1, 1.0),
        ("I", 32768, 32768 / 65535),
    ],
)
def test_gray_modes(tmp_path: Path, mode: str, fill: Any, expected: float) -> None:
    path = tmp_path / ("gray.tif" if mode == "I" else "gray.png")
    Image.new(mode, (5, 4), fill).save(path)

    rgb = decode(path).rgb

    assert rgb.shape == (4, 5, 3)
    np.testing.assert_allclose(rgb, expected, atol=1e-6)


def test_float_tiff_is_clipped_to_unit_range(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    Image.fromarray(np.array([[0.25, 1.5, -0.5]], np.float32)).save(path)

    np.testing.assert_allclose(decode(path).rgb[0, :, 2], [0.25, 1.0, 0.0], atol=1e-7)


def test_cmyk_jpeg_converts_to_rgb(tmp_path: Path) -> None:
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (16, 16), (255, 0, 0, 0)).save(path, quality=95)  # pure cyan ink

    rgb = decode(path).rgb

    assert rgb.shape == (16, 16, 3)
    np.testing.assert_allclose(rgb.mean(axis=(0, 1)), [0.0, 1.0, 1.0], atol=0.03)


def swapped_red_blue_profile() -> bytes:
    """The sRGB profile with its red and blue primaries exchanged: a real non-sRGB space."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (count,) = struct.unpack(">I", data[128:132])
    entries = {bytes(data[132 + 12 * i : 136 + 12 * i]): 136 + 12 * i for i in range(count)}
    red, blue = entries[b"rXYZ"], entries[b"bXYZ"]
    data[red : red + 8], data[blue : blue + 8] = data[blue : blue + 8], data[red : red + 8]
    return bytes(data)


def test_embedded_icc_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    path = tmp_path / "tagged.png"
    Image.new("RGB", (4, 4), RED).save(path, icc_profile=swapped_red_blue_profile())

    rgb = decode(path).rgb

    np.testing.assert_allclose(rgb[0, 0], [0.0, 0.0, 1.0], atol=0.02)  # "red" was blue


def test_unusable_icc_profile_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "badprofile.png"
    Image.new("RGB", (4, 4), RED).save(path, icc_profile=b"not a profile at all" * 10)

    np.testing.assert_array_equal(decode(path).rgb[0, 0], [1.0, 0.0, 0.0])


def test_multi_frame_tiff_uses_the_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "pages.tif"
    first, second = Image.new("RGB", (8, 8), RED), Image.new("RGB", (8, 8), (0, 0, 255))
    first.save(path, save_all=True, append_images=[second])

    np.testing.assert_array_equal(decode(path).rgb[0, 0], [1.0, 0.0, 0.0])


# ---------------------------------------------------------------------------------------
# Resizing


def test_downscale_keeps_aspect_and_never_upscales(tmp_path: Path) -> None:
    wide = tmp_path / "wide.png"
    Image.fromarray(pattern(1200, 400)).save(wide)
    small = tmp_path / "small.png"
    Image.fromarray(pattern(100, 50)).save(small)

    assert decode(wide, max_side=300).size == (300, 100)
    assert decode(wide, max_side=300).source_size == (1200, 400)
    assert decode(small, max_side=2048).size == (100, 50)


def test_downscale_averages_instead_of_aliasing(tmp_path: Path) -> None:
    stripes = np.zeros((64, 256, 3), np.uint8)
    stripes[:, ::2] = 255  # 1-pixel columns: nearest-neighbour would give all black or white
    path = tmp_path / "stripes.png"
    Image.fromarray(stripes).save(path)

    rgb = decode(path, max_side=64).rgb

    assert rgb.shape == (16, 64, 3)
    np.testing.assert_allclose(rgb[2:-2, 2:-2], 0.5, atol=0.02)


def test_jpeg_draft_decode_matches_a_full_decode(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    Image.fromarray(pattern(1600, 1200)).save(path, quality=92)

    fast = decode(path, max_side=256).rgb

    with Image.open(path) as img:
        slow = np.asarray(img.resize((256, 192), Image.Resampling.LANCZOS)) / 255.0
    assert fast.shape == slow.shape
    assert np.abs(fast - slow).mean() < 0.01


def test_full_resolution_decode_returns_a_contiguous_float_array(tmp_path: Path) -> None:
    path = tmp_path / "full.png"
    Image.fromarray(pattern(64, 48)).save(path)

    rgb = decode(path, max_side=64).rgb

    assert rgb.flags.c_contiguous
    assert rgb.flags.writeable
    assert rgb.dtype == np.float32


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((4032, 3024), 2048, (2048, 1536)),
        ((3024, 4032), 2048, (1536, 2048)),
        ((100, 50), 2048, (100, 50)),
        ((5000, 1), 100, (100, 1)),
    ],
)
def test_fit_within(size: tuple[int, int], max_side: int, expected: tuple[int, int]) -> None:
    assert sio.fit_within(size, max_side=max_side) == expected


def test_12_megapixel_jpeg_decodes_to_2048(tmp_path: Path) -> None:
    """Speed is measured by `python -m bench --suite layers`, not asserted here."""
    path = tmp_path / "camera.jpg"
    Image.fromarray(pattern(4000, 3000)).save(path, quality=92)
    assert decode(path, max_side=2048).size == (2048, 1536)


# ---------------------------------------------------------------------------------------
# Bad input


def test_truncated_images_are_never_padded() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as excinfo:
        decode(tmp_path / "gone.jpg")
    assert_input_error(excinfo, "gone.jpg")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(InputError) as excinfo:
        decode(path)
    assert_input_error(excinfo, "empty.jpg")
    assert "0 bytes" in excinfo.value.reason
    assert excinfo.value.stage == "decode"


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("these are my holiday notes, not a photo\n" * 20)
    with pytest.raises(InputError) as excinfo:
        decode(path)
    assert_input_error(excinfo, "notes.jpg")


@pytest.mark.parametrize(("suffix", "save_format"), [(".jpg", "JPEG"), (".png", "PNG")])
def test_truncated_file_is_an_error_not_a_grey_bottom(
    tmp_path: Path, suffix: str, save_format: str
) -> None:
    full = tmp_path / f"full{suffix}"
    noisy = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(full, format=save_format)
    path = tmp_path / f"cut{suffix}"
    data = full.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])

    with pytest.raises(InputError) as excinfo:
        decode(path)
    assert_input_error(excinfo, path.name)
    assert "incomplete or damaged" in excinfo.value.reason


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    Image.new("RGB", (8, 8)).save(path)
    with pytest.raises(InputError) as excinfo:
        decode(path)
    assert_input_error(excinfo, "anim.gif")
    assert ".gif" in excinfo.value.reason


def test_unsupported_format_behind_a_supported_extension(tmp_path: Path) -> None:
    path = tmp_path / "really-a-gif.png"
    Image.new("RGB", (8, 8)).save(path, format="GIF")
    with pytest.raises(InputError) as excinfo:
        decode(path)
    assert_input_error(excinfo, "really-a-gif.png")
    assert "GIF" in excinfo.value.reason


def test_file_size_limit_is_checked_before_opening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.jpg"
    path.write_bytes(b"\xff" * (2 * 1024 * 1024))

    def must_not_open(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("opened a file over the size limit")

    monkeypatch.setattr(Image, "open", must_not_open)
    with pytest.raises(InputError) as excinfo:
        decode(path, max_file_size_mb=1.0)
    assert_input_error(excinfo, "huge.jpg")
    assert "is 2.0 MiB, over the 1 MiB limit" in excinfo.value.reason


def test_pixel_limit_is_checked_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (100, 100)).save(path)

    def must_not_load(self: Any) -> None:
        raise AssertionError("decoded pixels of an image over the pixel limit")

    monkeypatch.setattr(ImageFile.ImageFile, "load", must_not_load)
    with pytest.raises(InputError) as excinfo:
        decode(path, max_pixels=5000)
    assert_input_error(excinfo, "wide.png")
    assert "100×100" in excinfo.value.reason


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size and holds (almost) no pixel data: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))


def test_decompression_bomb_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(100_000, 100_000))
    with pytest.raises(InputError) as excinfo:
        decode(path)
    assert_input_error(excinfo, "bomb.png")
    assert "megapixels" in excinfo.value.reason


# ---------------------------------------------------------------------------------------
# Depth files

IMAGE_SIZE = (400, 300)


def read_depth(path: Path, image_size: tuple[int, int] = IMAGE_SIZE) -> npt.NDArray[np.float32]:
    return sio.read_depth_file(path, image_size=image_size, image_name="beach.jpg")


def test_depth_8_bit_png_is_raw(tmp_path: Path) -> None:
    values = np.tile(np.arange(40, dtype=np.uint8) * 6, (30, 1))
    path = tmp_path / "beach.depth.png"
    Image.fromarray(values).save(path)

    depth = read_depth(path)

    assert depth.dtype == np.float32
    assert depth.shape == (30, 40)
    np.testing.assert_array_equal(depth, values)


def test_depth_16_bit_png_is_raw(tmp_path: Path) -> None:
    values = np.tile(np.linspace(0, 65535, 80).astype(np.uint16), (60, 1))
    path = tmp_path / "beach.depth.png"
    Image.fromarray(values).save(path)

    np.testing.assert_array_equal(read_depth(path), values)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_depth_tiff(tmp_path: Path, dtype: type[Any]) -> None:
    values = (np.arange(12 * 16).reshape(12, 16) * 3).astype(dtype)
    path = tmp_path / "beach.depth.tif"
    Image.fromarray(values).save(path)

    np.testing.assert_array_equal(read_depth(path), values.astype(np.float32))


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).random((30, 40)),  # float64
        np.arange(1200, dtype=np.uint16).reshape(30, 40),
        np.random.default_rng(2).random((1, 30, 40)).astype(np.float32),  # (1, h, w)
    ],
)
def test_depth_npy(tmp_path: Path, values: npt.NDArray[Any]) -> None:
    path = tmp_path / "beach.depth.npy"
    np.save(path, values)

    depth = read_depth(path)

    assert depth.dtype == np.float32
    assert depth.shape == (30, 40)
    np.testing.assert_allclose(depth, values.reshape(30, 40), rtol=1e-6)


def test_depth_rgb_png_with_equal_channels_is_accepted(tmp_path: Path) -> None:
    gray = np.tile(np.arange(40, dtype=np.uint8), (30, 1))
    path = tmp_path / "beach.depth.png"
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(path)

    np.testing.assert_array_equal(read_depth(path), gray)


def test_depth_16_bit_rgb_png_keeps_full_precision(tmp_path: Path) -> None:
    gray = np.tile(np.arange(40, dtype=np.uint16) * 1000 + 7, (30, 1))
    path = tmp_path / "beach.depth.png"
    assert cv2.imwrite(str(path), np.stack([gray] * 3, axis=-1))

    np.testing.assert_array_equal(read_depth(path), gray)


def depth_error(path: Path, image_size: tuple[int, int] = IMAGE_SIZE) -> InputError:
    with pytest.raises(InputError) as excinfo:
        read_depth(path, image_size)
    assert_input_error(excinfo, path.name)
    assert excinfo.value.stage == "depth"
    return excinfo.value


def test_depth_colour_png_is_rejected(tmp_path: Path) -> None:
    colour = np.zeros((30, 40, 3), np.uint8)
    colour[..., 0] = 200
    path = tmp_path / "beach.depth.png"
    Image.fromarray(colour).save(path)

    assert "colour" in depth_error(path).reason


def test_depth_npy_with_nan_reports_them(tmp_path: Path) -> None:
    values = np.ones((30, 40), np.float32)
    values[0, :3] = np.nan
    values[1, 0] = np.inf
    path = tmp_path / "beach.depth.npy"
    np.save(path, values)

    assert "4 NaN or infinite values" in depth_error(path).reason


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (np.zeros((2, 30, 40)), "2-D"),
        (np.zeros((30, 40), bool), "numeric"),
        (np.zeros((30, 40), complex), "numeric"),
        (np.zeros((0, 0)), "empty"),
    ],
)
def test_depth_npy_bad_arrays(tmp_path: Path, values: npt.NDArray[Any], words: str) -> None:
    path = tmp_path / "beach.depth.npy"
    np.save(path, values)

    assert words in depth_error(path).reason


def test_depth_npy_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "beach.depth.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)

    assert "not a readable NumPy" in depth_error(path).reason


def test_depth_npz_renamed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "beach.depth.npy"
    with path.open("wb") as handle:
        np.savez(handle, depth=np.zeros((30, 40)))

    assert ".npz" in depth_error(path).reason


def test_depth_aspect_mismatch_names_both_files(tmp_path: Path) -> None:
    path = tmp_path / "beach.depth.png"
    Image.new("L", (640, 640)).save(path)

    error = depth_error(path, (4000, 3000))

    assert error.reason == (
        "beach.depth.png is 640×640 but beach.jpg is 4000×3000: the aspect ratios differ."
    )


def test_depth_rotated_gets_a_rotation_hint(tmp_path: Path) -> None:
    path = tmp_path / "beach.depth.png"
    Image.new("L", (300, 400)).save(path)

    assert "rotated" in depth_error(path, (4000, 3000)).hint


def test_depth_aspect_tolerates_one_depth_pixel(tmp_path: Path) -> None:
    ok = tmp_path / "ok.depth.png"
    Image.new("L", (518, 389)).save(ok)  # exact height would be 388.5
    off = tmp_path / "off.depth.png"
    Image.new("L", (518, 391)).save(off)

    assert read_depth(ok, (4000, 3000)).shape == (389, 518)
    depth_error(off, (4000, 3000))


def test_depth_other_problems(tmp_path: Path) -> None:
    wrong_suffix = tmp_path / "beach.depth.jpg"
    Image.new("L", (40, 30)).save(wrong_suffix)
    depth_error(wrong_suffix)

    empty = tmp_path / "empty.depth.png"
    empty.write_bytes(b"")
    depth_error(empty)

    jpeg_inside = tmp_path / "jpeg.depth.png"
    Image.new("L", (40, 30)).save(jpeg_inside, format="JPEG")
    assert "JPEG" in depth_error(jpeg_inside).reason

    with pytest.raises(InputError) as excinfo:
        read_depth(tmp_path / "missing.depth.png")
    assert "missing.depth.png" in excinfo.value.reason


# ---------------------------------------------------------------------------------------
# Encoding


def test_to_uint8_rounds_and_clips() -> None:
    values = np.array([-1.0, 0.0, 0.49 / 255, 0.51 / 255, 0.5, 1.0, 2.0, np.nan], np.float32)
    np.testing.assert_array_equal(sio.to_uint8(values), [0, 0, 0, 1, 128, 255, 255, 0])


def test_to_uint16_rounds_and_clips() -> None:
    values = np.array([-1.0, 0.49 / 65535, 0.51 / 65535, 1.0, 5.0])
    np.testing.assert_array_equal(sio.to_uint16(values), [0, 0, 1, 65535, 65535])
    assert sio.to_uint16(values).dtype == np.uint16


def test_quantizers_refuse_integer_input() -> None:
    with pytest.raises(TypeError):
        sio.to_uint8(np.zeros(3, np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rgba_png_round_trips_exactly(tmp_path: Path, dtype: type) -> None:
    original = np.random.default_rng(3).integers(0, 256, (48, 64, 4), dtype=np.uint8)
    original[::7, ::5, 3] = 0
    path = tmp_path / "Layer_1_background.png"

    rgb, alpha = original[..., :3] / 255.0, original[..., 3] / 255.0
    sio.save_png(path, sio.pack_8bit(rgb.astype(dtype), alpha.astype(dtype)))  # as a job writes

    expected = original.copy()
    expected[original[..., 3] == 0, :3] = 0  # invisible colour is written as 0
    with Image.open(path) as img:
        assert img.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(img), expected)


def test_float32_image_quantizer_maps_nan_to_zero_in_every_shape() -> None:
    # Images are (H, W), (H, W, 3) and (H, W, 4) float32: the shapes a library fast path
    # would take, and where OpenCV 5.1 began mapping NaN to 255.
    rng = np.random.default_rng(4)
    for shape in [(40, 50), (40, 50, 3), (40, 50, 4)]:
        values = rng.uniform(-0.2, 1.2, shape).astype(np.float32)
        values[0, 0] = np.nan
        quantized = sio.to_uint8(values)
        expected = np.clip(np.rint(np.nan_to_num(values.astype(np.float64)) * 255), 0, 255)
        assert quantized.dtype == np.uint8
        np.testing.assert_array_equal(quantized, expected.astype(np.uint8))
        assert (quantized[0, 0] == 0).all()


def test_rgb_png(tmp_path: Path) -> None:
    original = pattern(30, 20)
    path = tmp_path / "preview.png"
    sio.save_rgb_png(path, original.astype(np.float32) / 255)
    with Image.open(path) as img:
        assert img.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(img), original)


def test_gray16_png_round_trips_with_pillow_and_opencv(tmp_path: Path) -> None:
    values = np.random.default_rng(4).random((48, 64)).astype(np.float32)
    path = tmp_path / "depth.png"

    sio.save_gray16_png(path, values)

    with Image.open(path) as img:
        assert img.mode == "I;16"
        from_pillow = np.asarray(img) / 65535.0
    from_opencv = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert from_opencv is not None
    assert from_opencv.dtype == np.uint16
    assert from_opencv.shape == (48, 64)
    np.testing.assert_allclose(from_pillow, values, atol=1 / 65535)
    np.testing.assert_allclose(from_opencv / 65535.0, values, atol=1 / 65535)


def test_image_array_round_trip() -> None:
    rgb = pattern(20, 10).astype(np.float32) / 255
    alpha = np.linspace(0, 1, 200, dtype=np.float32).reshape(10, 20)

    img = sio.image_from_array(rgb, alpha)
    back = sio.array_from_image(img)

    assert img.mode == "RGBA"
    assert img.size == (20, 10)
    assert back.dtype == np.float32
    assert back.shape == (10, 20, 4)
    np.testing.assert_array_equal(back[..., :3], rgb)
    np.testing.assert_allclose(back[..., 3], alpha, atol=0.5 / 255)
    assert sio.image_from_array(rgb).mode == "RGB"
    assert sio.array_from_image(sio.image_from_array(rgb)).shape == (10, 20, 3)
    gray16 = Image.fromarray(np.full((2, 2), 65535, np.uint16))
    np.testing.assert_array_equal(sio.array_from_image(gray16), 1.0)


def test_image_from_array_checks_shapes() -> None:
    with pytest.raises(ValueError, match="alpha shape"):
        sio.image_from_array(np.zeros((4, 4, 3)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="expected"):
        sio.image_from_array(np.zeros((4, 4, 2)))


def test_write_failure_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError) as excinfo:
        sio.save_rgb_png(tmp_path / "no" / "such" / "dir.png", np.zeros((2, 2, 3)))
    assert "dir.png" in excinfo.value.reason
