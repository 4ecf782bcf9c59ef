"""Image decode and encode: the one module that knows about files and pixel formats.

Array convention (every other pipeline module relies on it)
-----------------------------------------------------------
- Colour: ``float32`` array ``(H, W, 3)`` in ``[0, 1]``, sRGB-encoded values (not linear
  light). Photos with an embedded ICC profile (Display P3 from phones, Adobe RGB, CMYK
  print profiles) are converted to sRGB on decode; photos without one are taken as sRGB.
- Alpha: ``float32`` array ``(H, W)`` in ``[0, 1]``, straight (not premultiplied).
- Depth "nearness": ``float32`` array ``(H, W)`` in ``[0, 1]``, 1 = nearest.
  :func:`read_depth_file` returns a depth file's raw stored values instead; normalising
  them is the depth stage's job, which knows whether they are disparity or depth.
- Sizes are ``(width, height)`` like PIL's; array shapes are ``(height, width, ...)``.

Decoding (:func:`decode_image`) reads the file once (its SHA-256 comes from those bytes),
enforces the size and pixel limits before any pixel is decoded, applies the EXIF
orientation, downscales so the longer side is at most ``max_side`` (never upscales) and
converts to ``float32`` only at the very end. Transparent pixels are composited over
white: the colour hidden under alpha 0 is whatever the exporting program left there
(often black or stale pixels), and white is what a viewer shows a transparent PNG on.
Every way a file can be unusable becomes an :class:`~config.errors.InputError` whose
``reason`` names the file.

Pixel formats on decode: 8-bit modes map ``k -> k / 255``; 16-bit grayscale (and 32-bit
int "I") maps ``v -> v / 65535`` (clipped) at full precision; float "F" images are taken
as already in [0, 1] (clipped); 16-bit-per-channel RGB is read at 8-bit precision
(Pillow keeps the high byte), which the 8-bit outputs could not show anyway. Palette
images expand to their colours, CMYK converts through its ICC profile when it has one.

Encoding writes 8-bit RGB(A) and 16-bit grayscale PNGs with a small encoder of its own
(Up filter + ISA-L deflate), ~4× faster than Pillow's at the same size (numbers in
``PNG_COMPRESS_LEVEL``'s docstring).

``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` must stay ``False`` in every Strata process:
with it, Pillow pads a truncated photo with grey instead of raising.
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
import zlib
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Final, cast

import cv2
import numpy as np
import numpy.typing as npt
import pillow_heif
from isal import isal_zlib
from loguru import logger
from PIL import ExifTags, Image, ImageCms, ImageFile, UnidentifiedImageError

from config.errors import InputError, OutputError
from pipeline.formats import DEPTH_SUFFIXES, SUPPORTED_SUFFIXES

FloatArray = npt.NDArray[np.float32]
"""A float32 array following the module's convention."""

PNG_COMPRESS_LEVEL: Final = 1
"""ISA-L deflate level (0–3) for every PNG Strata writes.

With the "Up" row filter, a 12 MP RGBA layer (4000×3000 photo) takes 0.18 s of CPU and
19.2 MB, against 0.84 s and 20.3 MB for Pillow's encoder at zlib level 1 (levels 2 and 3
gain under 2 % in size). For comparison, Pillow's encoder on a 2048×1536 RGBA layer
with ~60 % transparency: zlib level 1 0.26 s / 7.7 MB, level 6 (its default) 0.87 s /
7.6 MB.
"""

MAX_DEPTH_PIXELS: Final = 120_000_000
"""A depth map with more pixels than this is refused before it is decoded."""
_MAX_DEPTH_MIB: Final = MAX_DEPTH_PIXELS * 8 / (1024 * 1024)  # float64 .npy at the pixel limit

# Pillow opener names; a multi-picture JPEG opens through "JPEG" and reports "MPO".
_PHOTO_FORMATS: Final = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "HEIF")
_PHOTO_FORMATS_TEXT: Final = "JPEG, PNG, WebP, TIFF, BMP or HEIC"
_DEPTH_IMAGE_FORMATS: Final = ("PNG", "TIFF")
_DRAFT_FORMATS: Final = frozenset({"JPEG", "MPO"})
_BYTES_PER_MIB: Final = 1024 * 1024

# What Pillow (and pillow-heif) raise for damaged or truncated data. Not a blanket
# ``Exception``: a bug in this module must surface as a bug, not as "bad photo".
_DECODE_ERRORS: Final = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
)

# EXIF orientation -> the transpose that displays the stored pixels upright. Same table as
# PIL.ImageOps.exif_transpose; applied here after downscaling, so fewer pixels move.
_ORIENTATION_TRANSPOSE: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES: Final = frozenset({5, 6, 7, 8})

# Modes Pillow resizes with full quality (RGBA/LA premultiplied); others convert first.
_RESIZABLE_MODES: Final = frozenset({"RGB", "RGBA", "L", "LA", "CMYK", "F"})
_INT_MODES: Final = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
_DEPTH_GRAY_MODES: Final = frozenset({"L", "F"}) | _INT_MODES
_U16_MAX: Final = 65535


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """A photo ready for the pipeline (``eq=False``: arrays do not compare as a bool)."""

    rgb: FloatArray
    """float32 (H, W, 3) in [0, 1], orientation applied, longer side <= max_side."""
    source_size: tuple[int, int]
    """(width, height) of the file's image after orientation, before resizing."""
    format: str
    """Pillow's format name: "JPEG", "MPO" (a multi-picture JPEG), "PNG", "HEIF"…"""
    sha256: str
    """Hex SHA-256 of the file's bytes."""

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of :attr:`rgb`: the working canvas."""
        height, width = self.rgb.shape[:2]
        return width, height


# ---------------------------------------------------------------------------------------
# Decoding photos


def decode_image(
    path: Path, *, max_side: int, max_file_size_mb: float, max_pixels: int
) -> DecodedImage:
    """Decode ``path`` into the working image, or raise :class:`InputError`.

    Limits are checked cheaply first: the extension, the file size (``os.stat``), then the
    pixel count from the header; only then are pixels decoded. The first frame of a
    multi-frame file is used. JPEGs are decoded at a reduced DCT scale when that is still
    at least the target size, the rest is a Lanczos downscale.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    _check_suffix(path, SUPPORTED_SUFFIXES, stage="decode")
    data = _read_file(path, max_mb=max_file_size_mb, stage="decode")
    sha256 = hashlib.sha256(data).hexdigest()
    img = _open_image(path, data, formats=_PHOTO_FORMATS, max_pixels=max_pixels, stage="decode")
    with img:
        file_format = str(img.format)
        stored_size = img.size
        orientation = _exif_orientation(img)
        target = fit_within(stored_size, max_side=max_side)
        if target != stored_size and file_format in _DRAFT_FORMATS:
            img.draft(None, target)  # DCT-domain 1/2, 1/4, 1/8 scaling; never below target
        _load(img, path, max_pixels=max_pixels, stage="decode")
        icc_profile = img.info.get("icc_profile")
        work = _resizable(img)
        if work.size != target:
            work = work.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
        work = _to_srgb(work, icc_profile if isinstance(icc_profile, bytes) else None, path)
        if orientation in _ORIENTATION_TRANSPOSE:
            work = work.transpose(_ORIENTATION_TRANSPOSE[orientation])
        rgb = _rgb_float(work)
    width, height = stored_size
    source_size = (height, width) if orientation in _SWAPS_AXES else (width, height)
    return DecodedImage(rgb=rgb, source_size=source_size, format=file_format, sha256=sha256)


def fit_within(size: tuple[int, int], *, max_side: int) -> tuple[int, int]:
    """``size`` scaled so its longer side is ``max_side``; unchanged if already within."""
    width, height = size
    longer = max(width, height)
    if longer <= max_side:
        return size
    if width >= height:
        return max_side, max(1, round(height * max_side / width))
    return max(1, round(width * max_side / height)), max_side


def _check_suffix(path: Path, allowed: Collection[str], *, stage: str) -> None:
    suffix = path.suffix.lower()
    if suffix in allowed:
        return
    listed = " ".join(sorted(allowed))
    what = f"{suffix} files are" if suffix else "files without an extension are"
    raise InputError(
        f"{path.name} cannot be used: {what} not supported here.",
        hint=f"Use one of {listed} (convert the file, e.g. export it as PNG).",
        stage=stage,
    )


def _read_file(path: Path, *, max_mb: float, stage: str) -> bytes:
    """The whole file, after checking it exists, is not empty and is within the limit."""
    max_bytes = int(max_mb * _BYTES_PER_MIB)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise InputError(
                f"{path.name} is not a file.",
                hint="Drop image files, not folders or special files.",
                stage=stage,
            )
        if size == 0:
            raise InputError(
                f"{path.name} is empty (0 bytes).",
                hint="The copy probably failed or was interrupted; copy the file again.",
                stage=stage,
            )
        if size > max_bytes:
            raise _too_large(path, size, max_mb, stage=stage)
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # the file may have grown since stat()
    except FileNotFoundError:
        raise InputError(
            f"{path.name} does not exist (it was moved or deleted).",
            hint="Check the file is still there and try again.",
            stage=stage,
        ) from None
    except PermissionError:
        raise InputError(
            f"{path.name} cannot be read: permission denied.",
            hint="Give your user read access to the file (Finder: Get Info > Sharing).",
            stage=stage,
        ) from None
    except OSError as exc:
        raise InputError(
            f"{path.name} cannot be read: {exc.strerror or exc}.",
            hint="Check the disk or network share holding the file, then try again.",
            stage=stage,
        ) from exc
    if len(data) > max_bytes:
        raise _too_large(path, len(data), max_mb, stage=stage)
    return data


def _too_large(path: Path, size: int, max_mb: float, *, stage: str) -> InputError:
    if stage == "depth":
        return _depth_error(path, f"is {size / _BYTES_PER_MIB:.1f} MiB, too large for a depth map")
    return InputError(
        f"{path.name} is {size / _BYTES_PER_MIB:.1f} MiB, over the {max_mb:g} MiB limit "
        "(watch.max_file_size_mb).",
        hint="Downscale or recompress the photo, or raise watch.max_file_size_mb in the "
        "config file.",
        stage=stage,
    )


@cache
def _register_heif() -> None:
    pillow_heif.register_heif_opener()


def _allow_pixels(max_pixels: int) -> None:
    """Let our own limit, not Pillow's default bomb guard (~179 MP), decide.

    Pillow raises ``DecompressionBombError`` above ``2 * MAX_IMAGE_PIXELS``. The global is
    only ever raised, never lowered, so no other code loses protection it relied on.
    """
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and current < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _open_image(
    path: Path, data: bytes, *, formats: tuple[str, ...], max_pixels: int, stage: str
) -> ImageFile.ImageFile:
    """Open the header of ``data`` (no pixels decoded) and enforce ``max_pixels``."""
    _register_heif()
    _allow_pixels(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=list(formats))
    except Image.DecompressionBombError:
        raise _too_many_pixels(path, None, max_pixels, stage=stage) from None
    except UnidentifiedImageError:
        raise _unreadable_format(path, data, formats, stage=stage) from None
    except _DECODE_ERRORS as exc:
        raise _damaged(path, exc, stage=stage) from exc
    width, height = img.size
    if width * height > max_pixels:
        img.close()
        raise _too_many_pixels(path, (width, height), max_pixels, stage=stage)
    return img


def _too_many_pixels(
    path: Path, size: tuple[int, int] | None, max_pixels: int, *, stage: str
) -> InputError:
    limit = f"the limit of {max_pixels / 1e6:g} megapixels"
    if size is None:
        reason = f"{path.name} has more pixels than {limit}."
    else:
        width, height = size
        reason = (
            f"{path.name} is {width}×{height} ({width * height / 1e6:.1f} megapixels), "
            f"over {limit}."
        )
    return InputError(
        reason,
        hint="Downscale the image, or raise watch.max_pixels in the config file.",
        stage=stage,
    )


def _unreadable_format(
    path: Path, data: bytes, formats: tuple[str, ...], *, stage: str
) -> InputError:
    actual = _identify(data)
    expected = _PHOTO_FORMATS_TEXT if "JPEG" in formats else " or ".join(formats)
    if actual is not None and actual not in formats:
        reason = f"{path.name} is in {actual} format, which Strata does not read here."
    else:
        reason = f"{path.name} is not a readable {expected} file."
    return InputError(
        reason,
        hint=f"Export or convert it as {expected}; if it is still being copied, wait for the "
        "copy to finish.",
        stage=stage,
    )


def _identify(data: bytes) -> str | None:
    """Pillow's name for the format of ``data`` (header only), for error messages."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return str(img.format)
    except Exception:  # best effort: any failure just means "unknown"
        return None


def _damaged(path: Path, exc: BaseException, *, stage: str) -> InputError:
    detail = str(exc).strip().rstrip(".") or type(exc).__name__
    return InputError(
        f"{path.name} is incomplete or damaged and cannot be decoded: {detail}.",
        hint="If it is still being copied, wait for the copy to finish and retry; "
        "otherwise export or download the image again.",
        stage=stage,
    )


def _load(img: Image.Image, path: Path, *, max_pixels: int, stage: str) -> None:
    """Decode all pixels; a truncated file raises here (LOAD_TRUNCATED_IMAGES is False)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
    except Image.DecompressionBombError:  # e.g. a later chunk declaring a larger frame
        raise _too_many_pixels(path, None, max_pixels, stage=stage) from None
    except _DECODE_ERRORS as exc:
        raise _damaged(path, exc, stage=stage) from exc


def _exif_orientation(img: Image.Image) -> int:
    """EXIF orientation 1–8 (1 when absent or unreadable: a bad tag is not a bad photo)."""
    try:
        value = img.getexif().get(ExifTags.Base.Orientation, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _resizable(img: Image.Image) -> Image.Image:
    """``img`` in a mode Pillow resizes well: RGB, RGBA, L, LA, CMYK, or F in [0, 1]."""
    mode = img.mode
    if mode in _RESIZABLE_MODES:
        return img
    if mode == "1":
        return img.convert("L")
    if mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if mode in ("PA", "RGBa"):
        return img.convert("RGBA")
    if mode == "La":
        return img.convert("LA")
    if mode in _INT_MODES:  # 16-bit gray (PNG/TIFF) or 32-bit int: 0..65535 -> 0..1
        scaled = _unit(np.asarray(img), _U16_MAX)
        return Image.fromarray(np.clip(scaled, 0.0, 1.0, out=scaled))
    if mode.startswith("I;16"):  # exotic 16-bit layouts: via Pillow's own conversion
        return _resizable(img.convert("I"))
    return img.convert("RGB")  # YCbCr, LAB, HSV, RGBX…


@lru_cache(maxsize=8)
def _srgb_transform(icc_profile: bytes, in_mode: str, out_mode: str) -> ImageCms.ImageCmsTransform:
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
    intent = ImageCms.Intent(ImageCms.getDefaultIntent(source))
    srgb = ImageCms.createProfile("sRGB")
    return ImageCms.buildTransform(source, srgb, in_mode, out_mode, renderingIntent=intent)


def _to_srgb(img: Image.Image, icc_profile: bytes | None, path: Path) -> Image.Image:
    """Colour-manage RGB/RGBA/CMYK pixels into sRGB; untagged pixels are taken as sRGB."""
    if icc_profile and img.mode in ("RGB", "RGBA", "CMYK"):
        out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
        try:
            transform = _srgb_transform(icc_profile, img.mode, out_mode)
            return ImageCms.applyTransform(img, transform) or img
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            logger.warning("{}: ignoring its unusable ICC colour profile ({})", path.name, exc)
    return img.convert("RGB") if img.mode == "CMYK" else img


def _rgb_float(img: Image.Image) -> FloatArray:
    """float32 (H, W, 3) in [0, 1] from an RGB, RGBA, L, LA or F image; alpha over white."""
    if img.mode == "F":
        gray = np.nan_to_num(np.clip(np.asarray(img), 0.0, 1.0), copy=False)
        return np.repeat(gray[:, :, np.newaxis], 3, axis=2).astype(np.float32, copy=False)
    if img.mode in ("LA", "RGBA"):
        rgba = np.asarray(img.convert("RGBA"))
        return composite_over_white(rgba)
    return _unit(np.asarray(img if img.mode == "RGB" else img.convert("RGB")), 255)


def _unit(pixels: npt.NDArray[Any], top: int) -> FloatArray:
    """Integer pixels -> float32 in [0, 1], one allocation (division keeps k/255 exact)."""
    result: FloatArray = np.divide(pixels, np.float32(top), dtype=np.float32)
    return result


def composite_over_white(rgba: npt.NDArray[np.uint8]) -> FloatArray:
    """float32 (H, W, 3): 8-bit straight-alpha RGBA composited over white."""
    alpha = _unit(rgba[:, :, 3:], 255)
    rgb = _unit(rgba[:, :, :3], 255)
    rgb *= alpha
    rgb += 1.0 - alpha  # opaque pixels stay bit-identical: x * 1 + 0
    return rgb


# ---------------------------------------------------------------------------------------
# Depth files


def read_depth_file(
    path: Path, *, image_size: tuple[int, int], image_name: str | None = None
) -> FloatArray:
    """The depth map in ``path`` as float32 (h, w), raw values as stored.

    No normalisation and no resize: 8-bit PNGs give 0..255, 16-bit PNG/TIFF 0..65535,
    float TIFF and ``.npy`` their own values. RGB PNGs are accepted when the three
    channels are equal (some tools write gray that way). The aspect ratio must match
    ``image_size`` (width, height, orientation applied) to within about one pixel of the
    depth map's own resolution. ``image_name`` (the photo's file name) makes the
    mismatch message name both files. Errors are :class:`InputError` with stage "depth".
    """
    _check_suffix(path, DEPTH_SUFFIXES, stage="depth")
    depth = _read_npy(path) if path.suffix.lower() == ".npy" else _read_depth_image(path)
    if depth.size == 0:
        raise _depth_error(path, "is empty (it has no pixels)")
    bad = int(depth.size - np.count_nonzero(np.isfinite(depth)))
    if bad:
        raise _depth_error(
            path, f"has {bad:,} NaN or infinite values out of {depth.size:,}", hint_nan=True
        )
    _check_depth_aspect(path, depth.shape, image_size=image_size, image_name=image_name)
    return depth


def _depth_error(path: Path, problem: str, *, hint_nan: bool = False) -> InputError:
    hint = (
        "Replace invalid values (e.g. numpy.nan_to_num) before saving the depth map, or "
        "remove it to let Strata estimate depth."
        if hint_nan
        else "Save the depth map as 8- or 16-bit grayscale PNG, 16-bit or float TIFF, or a "
        "2-D .npy array, or remove it to let Strata estimate depth."
    )
    return InputError(f"{path.name} {problem}.", hint=hint, stage="depth")


def _read_npy(path: Path) -> FloatArray:
    data = _read_file(path, max_mb=_MAX_DEPTH_MIB, stage="depth")
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        detail = str(exc).rstrip(".")
        raise _depth_error(path, f"is not a readable NumPy .npy array ({detail})") from exc
    if not isinstance(loaded, np.ndarray):  # an .npz archive renamed to .npy
        loaded.close()
        raise _depth_error(path, "is an .npz archive, not a single .npy array")
    array: npt.NDArray[Any] = loaded
    if array.ndim == 3 and 1 in (array.shape[0], array.shape[-1]):  # (1, h, w) or (h, w, 1)
        array = array.reshape(array.shape[1:] if array.shape[0] == 1 else array.shape[:-1])
    if array.ndim != 2:
        raise _depth_error(
            path, f"holds an array of shape {array.shape}; a depth map must be 2-D (h, w)"
        )
    if array.dtype.kind not in "iuf":
        raise _depth_error(path, f"holds {array.dtype} values; a depth map must be numeric")
    if array.size > MAX_DEPTH_PIXELS:
        raise _depth_error(path, f"has {array.size:,} values, over {MAX_DEPTH_PIXELS:,}")
    return array.astype(np.float32, copy=False)


def _read_depth_image(path: Path) -> FloatArray:
    data = _read_file(path, max_mb=_MAX_DEPTH_MIB, stage="depth")
    img = _open_image(
        path, data, formats=_DEPTH_IMAGE_FORMATS, max_pixels=MAX_DEPTH_PIXELS, stage="depth"
    )
    with img:
        _load(img, path, max_pixels=MAX_DEPTH_PIXELS, stage="depth")
        mode = img.mode
        if mode in _DEPTH_GRAY_MODES:
            return np.asarray(img).astype(np.float32)
        if mode == "1":
            return np.asarray(img.convert("L")).astype(np.float32)
        if mode == "LA":
            return np.asarray(img.getchannel("L")).astype(np.float32)
        if mode in ("RGB", "RGBA"):
            rgb = _full_depth_rgb(data)
            if rgb is None:  # OpenCV could not read it: Pillow's 8-bit reading will do
                rgb = np.asarray(img.convert("RGB"))
        elif mode in ("P", "PA"):
            rgb = np.asarray(img.convert("RGB"))
        else:
            raise _depth_error(path, f"has an unsupported pixel layout (mode {mode})")
    return _gray_from_rgb(path, rgb)


def _full_depth_rgb(data: bytes) -> npt.NDArray[Any] | None:
    """RGB pixels at their stored bit depth (Pillow keeps only 8 bits of 16-bit RGB)."""
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.ndim != 3 or decoded.shape[2] < 3:
        return None
    result: npt.NDArray[Any] = decoded[:, :, :3]
    return result  # BGR order: only channel equality matters here


def _gray_from_rgb(path: Path, rgb: npt.NDArray[Any]) -> FloatArray:
    first = rgb[:, :, 0]
    if not (np.array_equal(first, rgb[:, :, 1]) and np.array_equal(first, rgb[:, :, 2])):
        raise InputError(
            f"{path.name} is in colour (its red, green and blue channels differ), "
            "so it cannot be read as depth.",
            hint="Save the depth map as grayscale (8- or 16-bit PNG), not as a coloured "
            "visualisation, or remove it to let Strata estimate depth.",
            stage="depth",
        )
    return first.astype(np.float32)


def aspect_matches(
    depth_size: tuple[int, int], image_size: tuple[int, int], *, tolerance_px: float = 1.0
) -> bool:
    """Whether a (width, height) depth map has the image's aspect ratio.

    The tolerance is in pixels of the depth map: a 518×389 map fits a 4000×3000 photo
    (the exact height would be 388.5).
    """
    depth_w, depth_h = depth_size
    image_w, image_h = image_size
    height_error = abs(depth_h - depth_w * image_h / image_w)
    width_error = abs(depth_w - depth_h * image_w / image_h)
    return min(height_error, width_error) <= tolerance_px + 1e-9


def _check_depth_aspect(
    path: Path, shape: tuple[int, ...], *, image_size: tuple[int, int], image_name: str | None
) -> None:
    depth_size = (shape[1], shape[0])
    if aspect_matches(depth_size, image_size):
        return
    image_w, image_h = image_size
    if aspect_matches(depth_size, (image_h, image_w)):
        hint = (
            "The depth map looks rotated: make it from the photo as displayed (EXIF "
            "orientation applied), or rotate it to match."
        )
    else:
        hint = (
            "Use a depth map made from this photo (any size with the same aspect ratio), "
            "or remove it to let Strata estimate depth."
        )
    raise InputError(
        f"{path.name} is {depth_size[0]}×{depth_size[1]} but {image_name or 'the image'} "
        f"is {image_w}×{image_h}: the aspect ratios differ.",
        hint=hint,
        stage="depth",
    )


# ---------------------------------------------------------------------------------------
# Encoding


def to_uint8(values: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.uint8]:
    """[0, 1] floats -> uint8, rounded to nearest and clipped; NaN becomes 0."""
    return _quantize(values, 255, np.uint8)


def to_uint16(values: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.uint16]:
    """[0, 1] floats -> uint16, rounded to nearest and clipped; NaN becomes 0."""
    return _quantize(values, _U16_MAX, np.uint16)


def _quantize(values: npt.NDArray[Any], top: int, dtype: type[Any]) -> npt.NDArray[Any]:
    """Scale, clip and round in numpy, whose NaN rules are defined: ``fmax`` takes the
    number when one side is NaN, so NaN becomes 0 before any integer cast sees it."""
    if values.dtype.kind != "f":
        raise TypeError(f"expected floats in [0, 1], got an array of {values.dtype}")
    scaled: FloatArray = np.multiply(values, np.float32(top), dtype=np.float32)
    np.fmax(scaled, 0.0, out=scaled)
    np.fmin(scaled, float(top), out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(dtype)


def image_from_array(
    rgb: npt.NDArray[np.floating[Any]], alpha: npt.NDArray[np.floating[Any]] | None = None
) -> Image.Image:
    """8-bit PIL image from float arrays: (H, W, 3) -> RGB, with alpha -> RGBA.

    A 2-D ``rgb`` gives L (LA with alpha).
    """
    return Image.fromarray(pack_8bit(rgb, alpha))


def pack_8bit(
    rgb: npt.NDArray[np.floating[Any]], alpha: npt.NDArray[np.floating[Any]] | None = None
) -> npt.NDArray[np.uint8]:
    """uint8 pixels from float arrays: (H, W, 3) or (H, W), alpha appended as a channel.

    Where the 8-bit alpha is 0 the colour is written as 0: it is invisible, and zeros
    keep a layer's PNG small and quick to encode.
    """
    if rgb.ndim not in (2, 3) or (rgb.ndim == 3 and rgb.shape[2] != 3):
        raise ValueError(f"expected an (H, W, 3) or (H, W) array, got shape {rgb.shape}")
    if alpha is None:
        return to_uint8(rgb)
    if alpha.shape != rgb.shape[:2]:
        raise ValueError(f"alpha shape {alpha.shape} does not match image {rgb.shape[:2]}")
    colour, coverage = to_uint8(rgb), to_uint8(alpha)
    visible = cv2.bitwise_and(colour, colour, mask=coverage)  # 0 where the mask is 0
    return cast(npt.NDArray[np.uint8], cv2.merge([visible, coverage]))


def array_from_image(img: Image.Image) -> FloatArray:
    """float32 in [0, 1] from a PIL image: the float counterpart of ``np.asarray(img)``.

    RGB -> (H, W, 3); RGBA/LA/PA -> (H, W, 4) straight alpha; L/1 -> (H, W);
    16-bit and int gray -> (H, W) scaled by 1/65535; F -> (H, W) as is; anything else
    (P, CMYK, YCbCr…) is converted to RGB first.
    """
    mode = img.mode
    if mode in _INT_MODES or mode.startswith("I;16"):
        return _unit(np.asarray(img if mode in _INT_MODES else img.convert("I")), _U16_MAX)
    if mode == "F":
        return np.array(img, dtype=np.float32)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
    elif mode == "1":
        img = img.convert("L")
    elif mode not in ("RGB", "L"):
        img = img.convert("RGB")
    return _unit(np.asarray(img), 255)


def save_png(path: Path, pixels: npt.NDArray[np.uint8] | npt.NDArray[np.uint16]) -> None:
    """A PNG of integer pixels as :func:`encode_png` takes them (already packed)."""
    _write(path, encode_png(pixels))


def save_rgb_png(path: Path, rgb: npt.NDArray[np.floating[Any]]) -> None:
    """8-bit RGB PNG from (H, W, 3) colour."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got shape {rgb.shape}")
    _write(path, encode_png(to_uint8(rgb)))


def save_gray16_png(path: Path, values: npt.NDArray[np.floating[Any]]) -> None:
    """16-bit grayscale PNG from (H, W) values in [0, 1]."""
    save_encoded(path, encode_gray16_png(values))


def encode_gray16_png(values: npt.NDArray[np.floating[Any]]) -> bytes:
    """The file :func:`save_gray16_png` writes, as bytes."""
    if values.ndim != 2:
        raise ValueError(f"expected an (H, W) array, got shape {values.shape}")
    return encode_png(to_uint16(values))


_PNG_COLOUR_TYPES: Final = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_PNG_FILTER_UP: Final = 2


def encode_png(pixels: npt.NDArray[np.uint8] | npt.NDArray[np.uint16]) -> bytes:
    """A PNG file from (H, W) or (H, W, C) uint8/uint16 pixels, C = 1–4.

    Every row uses PNG's "Up" filter (vectorised in numpy) and the stream is deflated by
    ISA-L: ~4× faster than Pillow's encoder at zlib level 1, for files as small (see
    ``PNG_COMPRESS_LEVEL``).
    """
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    bit_depth = 16 if pixels.dtype == np.uint16 else 8
    samples = pixels.astype(">u2", copy=False) if bit_depth == 16 else pixels
    rows = np.ascontiguousarray(samples).view(np.uint8).reshape(height, -1)
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = _PNG_FILTER_UP
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, bit_depth, _PNG_COLOUR_TYPES[channels], 0, 0, 0)
    data = isal_zlib.compress(filtered, PNG_COMPRESS_LEVEL)
    chunks = [_png_chunk(b"IHDR", header), _png_chunk(b"IDAT", data), _png_chunk(b"IEND", b"")]
    return _PNG_SIGNATURE + b"".join(chunks)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    checksum = isal_zlib.crc32(data, isal_zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def save_encoded(path: Path, data: bytes) -> None:
    """Write a file encoded beforehand (:func:`encode_png`, :func:`encode_gray16_png`)."""
    _write(path, data)


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise OutputError(f"Could not write {path}: {exc.strerror or exc}.") from exc
