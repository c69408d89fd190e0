"""Image input and output: load from anything, save with provenance, watermark, compare.

Loading (`load_image`) accepts a path, an http(s) URL, bytes, a file object, a PIL image, a
numpy array or an already loaded `LoadedImage`, and always returns a `LoadedImage` whose
`rgb` is an 8-bit RGB PIL image with the EXIF orientation applied. Alpha, ICC profile, EXIF
and (for 16-bit or float inputs) a full-precision luma plane travel alongside so that the
colorizer can keep the original's luminance, transparency and metadata.

Saving (`save_image`) picks the format from the extension, records provenance (PNG text
chunks, or EXIF ImageDescription/Software), keeps ICC and EXIF, writes atomically and
refuses to overwrite the paths it is told to protect.

The tensor helper (`to_luma_tensor`) turns a loaded picture into the library's `(B, 1, H, W)` float32
`[0, 1]` luma (see docs/ARCHITECTURE.md); only it imports torch.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import logging
import os
import re
import socket
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Union

import numpy as np
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin, UnidentifiedImageError

from colorizer_lib.errors import InputError

try:  # LittleCMS bindings; Pillow wheels ship them, some distro builds do not
    from PIL import ImageCms
except ImportError:  # pragma: no cover - depends on the Pillow build
    ImageCms = None

if TYPE_CHECKING:  # torch is imported lazily, inside the tensor helpers only
    import torch

__all__ = [
    "LoadedImage",
    "load_image",
    "open_header",
    "carried_metadata",
    "save_image",
    "read_provenance",
    "remove_stale_temp_files",
    "has_colour",
    "apply_watermark",
    "side_by_side",
    "iter_image_files",
    "to_luma_tensor",
    "INPUT_EXTENSIONS",
    "OUTPUT_FORMATS",
    "LUMA_WEIGHTS",
]

logger = logging.getLogger(__name__)

#: ITU-R BT.601 luma weights for R, G, B (as PIL "L" and OpenCV).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

#: Output extension -> PIL format name. `save_image` accepts exactly these.
OUTPUT_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}

#: Extensions that `iter_image_files` picks up (lower case; matching is case-insensitive).
INPUT_EXTENSIONS = frozenset(OUTPUT_FORMATS) | {".gif"}

USER_AGENT = "Mozilla/5.0 (compatible; Colorizer image loader; +https://pypi.org/project/colorizer)"

_FORMATS_HINT = "JPEG, PNG, WebP, TIFF, BMP or GIF"
_ORIENTATION_TAG = 0x0112
_IMAGE_DESCRIPTION_TAG = 0x010E
_SOFTWARE_TAG = 0x0131
_DOWNLOAD_CHUNK = 1 << 16

# Transposition that undoes each EXIF orientation value (2..8); 1 means "as stored".
_ORIENTATION_FIX = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# PIL's own decompression-bomb guard is a process-wide global; we switch it off while we open
# a file (under this lock) and apply our own `max_pixels` limit instead.
_PIL_LIMIT_LOCK = threading.Lock()

#: The largest picture (width x height) `load_image` accepts by default.
MAX_PIXELS = 250_000_000


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@dataclass
class LoadedImage:
    """An input image, decoded and normalised for colorization.

    Attributes:
        rgb: mode "RGB", 8 bits per channel, EXIF orientation already applied.
        alpha: mode "L" transparency of the same size, or None when the input had none.
        icc_profile: the input's RGB ICC profile bytes, or None (sRGB assumed).
        exif: the input's EXIF block with the orientation tag reset to 1 (the pixels are
            already rotated), or None.
        source: the path, the URL, or a description such as "<bytes>".
        original_mode: the PIL mode (or "ndarray:<dtype>") of the input before conversion.
        name: a file stem usable for naming outputs ("image" when the source has no name).
        luma16: for 16-bit and float inputs, the float32 ITU-R 601 luma in [0, 1], shape (H, W),
            at full precision; None for 8-bit inputs (then the luma comes from `rgb`).
    """

    rgb: Image.Image
    alpha: Image.Image | None
    icc_profile: bytes | None
    exif: bytes | None
    source: str
    original_mode: str
    name: str
    luma16: np.ndarray | None = None
    #: what identifies the input in outputs' provenance (``colorizer_lib.jobs.source_identity``), if known
    source_identity: dict[str, str] | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.rgb.size


Source = Union[str, os.PathLike, bytes, bytearray, memoryview, io.IOBase, Image.Image, np.ndarray, LoadedImage]


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------


def load_image(
    source: Source,
    *,
    timeout: float = 30,
    max_bytes: int = 50_000_000,
    max_pixels: int = MAX_PIXELS,
) -> LoadedImage:
    """Load an image from a path, URL, bytes, file object, PIL image, numpy array or LoadedImage.

    Args:
        source: a file path (str or PathLike); an "http://" or "https://" URL; bytes, bytearray,
            memoryview or a binary file object holding an encoded image; a PIL image; a numpy
            array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) with dtype uint8, uint16 or
            float (values in [0, 1]); or a LoadedImage, which is returned unchanged.
        timeout: seconds to wait for a URL to connect and for each read.
        max_bytes: largest download accepted from a URL (enforced while streaming).
        max_pixels: largest image (width x height) accepted; larger ones are refused before
            they are decoded (decompression-bomb protection).

    Returns:
        A fully decoded LoadedImage (never a lazily loaded or half-loaded one).

    Raises:
        InputError: missing file, directory, empty file, not an image, unsupported array,
            too many pixels, URL that fails, times out, is too large, or is a web page.

    Modes: 1, L, LA, P (with or without transparency), RGB, RGBA, CMYK (converted to sRGB
    through the embedded ICC profile when there is one, else with PIL's device-CMYK formula),
    I;16 / I;16B / I;16L / I (16-bit greyscale, scaled to 8 bits by value / 257 with rounding,
    and kept at full precision in `luma16`) and F (float greyscale in [0, 1] or [0, 255]).
    16-bit RGB PNGs and TIFFs are decoded by PIL at 8 bits per channel (rounded), so they get no
    `luma16`. Animated or multi-page images: the first frame is used and a warning is issued.
    """
    if isinstance(source, LoadedImage):
        return source
    if isinstance(source, Image.Image):
        _load_pil(source, "<PIL.Image>", max_pixels)
        name = _safe_stem(Path(source.filename).stem) if getattr(source, "filename", None) else "image"
        return _from_pil(source, source_desc="<PIL.Image>", name=name)
    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels=max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise InputError("The image data is empty (0 bytes). Pass the bytes of a complete image file.")
        return _open_and_load(io.BytesIO(data), "<bytes>", "image", max_pixels)
    if isinstance(source, io.IOBase) or (hasattr(source, "read") and hasattr(source, "seek")):
        return _open_and_load(source, "<file object>", _name_from_fileobj(source), max_pixels)
    if isinstance(source, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source):
        scheme = source.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise InputError(
                f"Cannot load {source!r}: only http:// and https:// URLs are supported. "
                "Download the file and pass its local path instead."
            )
        data = _download(source, timeout=timeout, max_bytes=max_bytes)
        return _open_and_load(io.BytesIO(data), source, _name_from_url(source), max_pixels)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        _check_file(path)
        # Opened as a file object, not a path: PIL then reads instead of memory-mapping, which
        # avoids its mis-oriented uncompressed TIFFs (orientation 5-8) and files changing under us.
        try:
            handle = open(path, "rb")
        except OSError as exc:
            raise InputError(f"Cannot open {str(path)!r}: {exc.strerror}. Check its permissions.") from exc
        with handle:
            return _open_and_load(handle, str(path), path.stem or "image", max_pixels)
    raise InputError(
        f"Cannot load an image from a {type(source).__name__}. Pass a file path, an http(s) URL, "
        "bytes, a binary file object, a PIL image or a numpy array."
    )


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"File not found: {str(path)!r}. Check the path and the current folder ({os.getcwd()}).")
    if path.is_dir():
        raise InputError(
            f"{str(path)!r} is a folder, not an image. Pass one image file, or use the folder mode "
            "(e.g. `colorize image FOLDER`) to process every image inside it."
        )
    if path.stat().st_size == 0:
        raise InputError(f"{str(path)!r} is an empty file (0 bytes). Re-download or re-export the image.")


def open_header(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open an image file and read its headers only (format, mode, size, ICC profile, EXIF): the
    checks `load_image` makes before decoding (a non-empty file, an image PIL reads, at most
    `max_pixels` pixels in place of PIL's global limit), with no pixels decoded. Close it after use.

    Raises:
        InputError: as `load_image` would for this file.
    """
    path = Path(path).expanduser()
    _check_file(path)
    with _pil_limit_lifted():
        return _open_checked(path, str(path), max_pixels)


@contextlib.contextmanager
def _pil_limit_lifted() -> Iterator[None]:
    """PIL's process-wide decompression-bomb limit switched off (under a lock) while a file is
    opened; the callers apply their own `max_pixels` instead."""
    with _PIL_LIMIT_LOCK:
        saved_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit


_LOADING = threading.local()


def source_being_loaded() -> str | None:
    """The source that `load_image` is decoding in this thread, or None: lets a warning that a
    decoder issues (Pillow's "Corrupt EXIF data" names no file) be reported with the file's name."""
    return getattr(_LOADING, "source", None)


def _open_and_load(fp, source_desc: str, name: str, max_pixels: int) -> LoadedImage:
    """Open with PIL, check the pixel count, decode fully, and normalise.

    A damaged file can make Pillow's decoders raise almost anything (``KeyError: 256`` for a TIFF
    page without a width, ``TypeError``, ``struct.error``, ``IndexError`` from a broken EXIF block...):
    every such error is turned into an :class:`InputError` naming the file, so that one bad file
    in a folder is reported and the others are done."""
    _LOADING.source = source_desc
    try:
        with _pil_limit_lifted():
            img = _open_fully(fp, source_desc, max_pixels)
        try:
            return _from_pil(img, source_desc=source_desc, name=name)
        finally:
            img.close()
    except (InputError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - see the docstring: a decoder's error is the file's problem
        raise _corrupt_error(source_desc, exc) from exc
    finally:
        _LOADING.source = None


def _corrupt_error(source_desc: str, exc: BaseException) -> InputError:
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return InputError(
        f"{source_desc} could not be decoded ({detail}). The file is truncated or corrupt; "
        "re-download or re-export it."
    )


def _open_checked(fp, source_desc: str, max_pixels: int) -> Image.Image:
    """`Image.open` with its errors as InputError and the pixel count checked; nothing decoded."""
    try:
        img = Image.open(fp)
    except UnidentifiedImageError:
        raise InputError(
            f"{source_desc} is not an image PIL can read. Supported formats: {_FORMATS_HINT} "
            "(and the other formats Pillow reads). Convert it to PNG or JPEG first."
        ) from None
    except OSError as exc:
        raise InputError(f"Cannot read {source_desc}: {exc}. Check that the file is a complete image.") from exc
    try:
        _check_pixels(img, source_desc, max_pixels)
    except InputError:
        img.close()
        raise
    return img


def _open_fully(fp, source_desc: str, max_pixels: int) -> Image.Image:
    img = _open_checked(fp, source_desc, max_pixels)
    try:
        n_frames = getattr(img, "n_frames", 1)
        if n_frames > 1:
            warnings.warn(
                f"{source_desc} is animated or multi-page ({n_frames} frames); only the first frame is "
                "colorized. For an animation, convert it to a video and use `colorize video`.",
                stacklevel=4,
            )
            img.seek(0)
        _load_pil(img, source_desc, max_pixels)
    except InputError:
        img.close()
        raise
    except Exception:
        img.close()
        raise
    return img


def _check_pixels(img: Image.Image, source_desc: str, max_pixels: int) -> None:
    width, height = img.size
    if width * height > max_pixels:
        raise InputError(
            f"{source_desc} is {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{max_pixels:,} (decompression-bomb protection). If you trust this file, raise the limit: "
            "load_image(..., max_pixels=N)."
        )


def _load_pil(img: Image.Image, source_desc: str, max_pixels: int) -> None:
    """Decode all pixel data now, so that a broken file fails here and not half-way later."""
    _check_pixels(img, source_desc, max_pixels)
    try:
        img.load()
    except (OSError, ValueError, SyntaxError, EOFError, KeyError, IndexError, TypeError) as exc:
        raise _corrupt_error(source_desc, exc) from exc


def _from_pil(img: Image.Image, *, source_desc: str, name: str) -> LoadedImage:
    """Normalise a decoded PIL image: orientation, mode, alpha, 16-bit luma, metadata."""
    width, height = img.size
    if width == 0 or height == 0:
        raise InputError(f"{source_desc} has no pixels ({width}x{height}). Pass a non-empty image.")
    original_mode = img.mode
    is_tiff = img.format == "TIFF"
    info = dict(img.info)
    exif = img.getexif()
    orientation = exif.get(_ORIENTATION_TAG, 1)
    fix = _ORIENTATION_FIX.get(orientation)
    if fix is not None:
        img = img.transpose(fix)
    exif_bytes = _exif_for_output(exif, info.get("exif"), is_tiff=is_tiff)

    icc = info.get("icc_profile") or None
    rgb, alpha, luma16, icc = _convert_mode(img, icc, source_desc)
    return LoadedImage(
        rgb=rgb,
        alpha=alpha,
        icc_profile=_rgb_icc(icc, source_desc),
        exif=exif_bytes,
        source=source_desc,
        original_mode=original_mode,
        name=name,
        luma16=luma16,
    )


# TIFF's own layout tags, which PIL's getexif() returns along with the descriptive ones for TIFF
# files; they describe the source file's encoding and must not be copied into an output's EXIF.
_TIFF_LAYOUT_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 317, 320,
     322, 323, 324, 325, 338, 339, 340, 341, 530, 531, 532, 34675}
)


def _exif_for_output(exif: Image.Exif, raw: bytes | None, *, is_tiff: bool) -> bytes | None:
    """The EXIF block to carry to outputs: orientation reset to 1, TIFF layout tags removed.

    The input's raw bytes are passed through untouched when nothing needs changing, so that
    maker notes and other blocks PIL does not parse survive.
    """
    needs_rewrite = exif.get(_ORIENTATION_TAG, 1) != 1 or is_tiff
    if not needs_rewrite:
        return raw if isinstance(raw, bytes) and raw else None
    if _ORIENTATION_TAG in exif:
        exif[_ORIENTATION_TAG] = 1
    if is_tiff:
        for tag in _TIFF_LAYOUT_TAGS & set(exif):
            del exif[tag]
    return exif.tobytes() if len(exif) else None


def carried_metadata(img: Image.Image, source_desc: str) -> tuple[bytes | None, bytes | None]:
    """The ICC profile and EXIF block that `load_image` keeps from an opened RGB or greyscale image
    for its outputs, read from the headers alone (nothing is decoded): ``(icc_profile, exif)``.

    For the fast paths that decode pixels elsewhere (the GPU's JPEG decoder), so that their outputs
    carry what `load_image` + `save_image` would have carried. Not for CMYK images, whose profile
    `load_image` replaces by sRGB after converting the pixels.
    """
    icc = _rgb_icc(img.info.get("icc_profile") or None, source_desc)
    return icc, _exif_for_output(img.getexif(), img.info.get("exif"), is_tiff=img.format == "TIFF")


def _rgb_icc(icc: bytes | None, source_desc: str) -> bytes | None:
    """``icc`` when it describes RGB, else None: a greyscale (or other non-RGB) profile cannot
    describe the RGB output. The pixel values are kept as they are (grey gamma 2.2 profiles are
    close to sRGB)."""
    if icc is not None and _icc_colour_space(icc) != b"RGB ":
        logger.info(
            "%s: dropping its %r ICC profile, which does not fit RGB output", source_desc, _icc_colour_space(icc)
        )
        return None
    return icc


def _icc_colour_space(icc: bytes) -> bytes:
    return bytes(icc[16:20]) if len(icc) >= 20 else b""


def _convert_mode(img: Image.Image, icc: bytes | None, source_desc: str):
    """Return (rgb, alpha, luma16, icc) for any PIL mode."""
    mode = img.mode
    if mode == "RGB":
        return img.copy(), None, None, icc
    if mode in ("1", "L"):
        return img.convert("L").convert("RGB"), None, None, icc
    if mode in ("LA", "La"):
        la = img.convert("LA")
        return la.getchannel("L").convert("RGB"), la.getchannel("A"), None, icc
    if mode in ("RGBA", "RGBa", "PA") or (mode == "P" and _palette_has_alpha(img)):
        rgba = img.convert("RGBA")
        return rgba.convert("RGB"), rgba.getchannel("A"), None, icc
    if mode == "P":
        return img.convert("RGB"), None, None, icc
    if mode == "CMYK":
        return _cmyk_to_rgb(img, icc), None, None, _srgb_profile() if icc else None
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(img)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise InputError(
                f"{source_desc} is a 32-bit integer image with values outside 0..65535; only 8- and 16-bit "
                "images are supported. Export it as a 16-bit TIFF or PNG."
            )
        luma = values.astype(np.float32)
        luma *= np.float32(1 / 65535)
        return _grey_to_rgb8(luma), None, luma, icc
    if mode == "F":
        values = np.asarray(img, dtype=np.float32)
        if not np.isfinite(values).all():
            raise InputError(f"{source_desc} contains NaN or infinite values. Pass a float image in [0, 1].")
        low, high = float(values.min()), float(values.max())
        if low < 0 or high > 255:
            raise InputError(
                f"{source_desc} is a float image with values in [{low:g}, {high:g}]; expected [0, 1] "
                "(or [0, 255]). Rescale it first."
            )
        luma = values.copy()
        if high > 1:
            luma *= np.float32(1 / 255)
        return _grey_to_rgb8(luma), None, luma, icc
    try:
        return img.convert("RGB"), None, None, icc
    except (ValueError, OSError) as exc:
        raise InputError(
            f"{source_desc} uses the colour mode {mode!r}, which cannot be converted to RGB ({exc}). "
            "Export it as an RGB or greyscale PNG/JPEG."
        ) from exc


#: A picture "has colour" when more than COLOUR_SHARE of its pixels have a hue that differs from the
#: usual one at their brightness by more than COLOUR_SPREAD levels (of 255). A toned print (sepia,
#: cyanotype, a yellowed scan: one tint per brightness) and JPEG noise stay below: the nine historical
#: examples reach at most 0.6% of pixels; colour photos are far above (a colorized street scene: 17%).
COLOUR_SPREAD = 8
COLOUR_SHARE = 0.05


def has_colour(img: Image.Image) -> bool:
    """Whether ``img`` (opened or loaded) is already a colour picture, as opposed to a grey or a
    toned monochrome one, judged on a copy at most 256 pixels across.

    The chroma of each pixel (B - Y, R - Y) is compared with the mean chroma of the pixels of the
    same brightness (32 bins of luma): a tint that depends on brightness alone is monochrome."""
    if img.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"):
        return False
    if img.format == "JPEG":
        img.draft("RGB", (256, 256))  # not yet decoded: decode at 1/2..1/8 of the size (else a no-op)
    scale = max(img.size) / 256
    if scale > 1:  # a small copy straight away (no full-size one)
        img = img.resize((max(1, round(img.width / scale)), max(1, round(img.height / scale))),
                         Image.Resampling.NEAREST)
    rgb = np.asarray(img.convert("RGB"), dtype=np.float32).reshape(-1, 3)
    luma = rgb @ np.asarray(LUMA_WEIGHTS, dtype=np.float32)
    u, v = rgb[:, 2] - luma, rgb[:, 0] - luma
    bins = np.minimum(luma // 8, 31).astype(np.intp)
    counts = np.maximum(np.bincount(bins, minlength=32), 1)
    mean_u = np.bincount(bins, u, 32) / counts
    mean_v = np.bincount(bins, v, 32) / counts
    spread = np.hypot(u - mean_u[bins], v - mean_v[bins])
    return bool((spread > COLOUR_SPREAD).mean() > COLOUR_SHARE)


def _palette_has_alpha(img: Image.Image) -> bool:
    return "transparency" in img.info or (img.palette is not None and img.palette.mode == "RGBA")


def _cmyk_to_rgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """CMYK -> sRGB through the embedded CMYK profile when present, else PIL's device formula."""
    if icc and _icc_colour_space(icc) == b"CMYK" and ImageCms is not None:
        try:
            return ImageCms.profileToProfile(
                img,
                ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                ImageCms.createProfile("sRGB"),
                renderingIntent=ImageCms.Intent.PERCEPTUAL,
                outputMode="RGB",
            )
        except (OSError, ImageCms.PyCMSError) as exc:
            logger.warning("CMYK ICC conversion failed (%s); using PIL's device-CMYK formula", exc)
    return img.convert("RGB")


@lru_cache(maxsize=1)
def _srgb_profile() -> bytes | None:
    if ImageCms is None:
        return None
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _grey_to_rgb8(luma: np.ndarray) -> Image.Image:
    """Float luma in [0, 1] -> 8-bit RGB PIL image (rounded, not clipped or truncated)."""
    grey = np.empty(luma.shape, dtype=np.uint8)
    np.rint(luma * np.float32(255), out=grey, casting="unsafe")
    return Image.fromarray(grey).convert("RGB")


def _from_array(array: np.ndarray, *, max_pixels: int) -> LoadedImage:
    """Build a LoadedImage from an (H, W[, C]) uint8 / uint16 / float [0, 1] array."""
    desc = f"<ndarray {array.dtype} {array.shape}>"
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError(
            f"Cannot use an array of shape {array.shape} as an image. Expected (H, W) greyscale, "
            "(H, W, 3) RGB or (H, W, 4) RGBA."
        )
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise InputError(f"The array {desc} has no pixels. Pass a non-empty image.")
    if height * width > max_pixels:
        raise InputError(f"The array is {width}x{height} pixels, more than max_pixels={max_pixels:,}; raise the limit.")

    kind = array.dtype.kind
    if array.dtype == np.uint8:
        scaled, luma = array, None
    elif array.dtype == np.uint16:
        unit = array.astype(np.float32)
        unit *= np.float32(1 / 65535)
        scaled, luma = _unit_to_uint8(unit), _luma_of(unit)
    elif kind == "f":
        if not np.isfinite(array).all():
            raise InputError(f"The array {desc} contains NaN or infinite values. Pass finite values in [0, 1].")
        low, high = float(array.min()), float(array.max())
        if low < 0 or high > 1:
            raise InputError(
                f"The float array has values in [{low:g}, {high:g}]; float images must be in [0, 1]. "
                "Divide by 255 (8-bit data) or 65535 (16-bit data), or pass a uint8/uint16 array."
            )
        unit = array.astype(np.float32, copy=False)
        scaled, luma = _unit_to_uint8(unit), _luma_of(unit)
    elif kind == "b":
        scaled, luma = array.astype(np.uint8) * np.uint8(255), None
    else:
        raise InputError(
            f"Cannot use an array of dtype {array.dtype} as an image. Use uint8 (0..255), uint16 (0..65535) "
            "or float in [0, 1]."
        )

    if scaled.ndim == 2:
        rgb, alpha = Image.fromarray(scaled).convert("RGB"), None
    elif scaled.shape[2] == 3:
        rgb, alpha = Image.fromarray(np.ascontiguousarray(scaled)), None
    else:
        rgb = Image.fromarray(np.ascontiguousarray(scaled[:, :, :3]))
        alpha = Image.fromarray(np.ascontiguousarray(scaled[:, :, 3]))
    return LoadedImage(
        rgb=rgb,
        alpha=alpha,
        icc_profile=None,
        exif=None,
        source="<ndarray>",
        original_mode=f"ndarray:{array.dtype}",
        name="image",
        luma16=luma,
    )


def _unit_to_uint8(unit: np.ndarray) -> np.ndarray:
    out = np.empty(unit.shape, dtype=np.uint8)
    np.rint(unit * np.float32(255), out=out, casting="unsafe")
    return out


def _luma_of(unit: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma (H, W) float32 of an (H, W) or (H, W, 3|4) float array in [0, 1]."""
    if unit.ndim == 2:
        return np.array(unit, dtype=np.float32, copy=True)
    r, g, b = (np.float32(w) for w in LUMA_WEIGHTS)
    luma = unit[:, :, 0] * r
    luma += unit[:, :, 1] * g
    luma += unit[:, :, 2] * b
    return np.clip(luma, 0, 1, out=luma)


def _name_from_url(url: str) -> str:
    last = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    return _safe_stem(Path(last).stem)


def _name_from_fileobj(fileobj) -> str:
    name = getattr(fileobj, "name", None)
    return _safe_stem(Path(name).stem) if isinstance(name, str) else "image"


def _safe_stem(stem: str) -> str:
    cleaned = re.sub(r"[^\w.-]+", "_", stem).strip("._")
    return cleaned[:120] or "image"


def _download(url: str, *, timeout: float, max_bytes: int) -> bytes:
    """GET `url` into memory; refuse web pages, error statuses and bodies over `max_bytes`."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "image/*,*/*;q=0.8"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            content_type = response.headers.get_content_type()
            if content_type in ("text/html", "application/xhtml+xml"):
                raise _web_page_error(url)
            if content_type.startswith("text/"):
                raise InputError(
                    f"{url} answered with {content_type}, not an image. Check that the URL points at the "
                    "image file itself."
                )
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise _too_big_error(url, max_bytes, int(declared))
            chunks, received = [], 0
            while True:
                chunk = response.read(_DOWNLOAD_CHUNK)
                if not chunk:
                    break
                received += len(chunk)
                if received > max_bytes:
                    raise _too_big_error(url, max_bytes, None)
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        raise InputError(
            f"Could not download {url}: HTTP {exc.code} {exc.reason}. Check the address in a browser."
        ) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise InputError(f"Timed out after {timeout:g} s downloading {url}. Retry, or raise the timeout.") from None
        if isinstance(reason, ConnectionRefusedError):
            raise InputError(
                f"Connection refused by the server of {url}. Check the address and your network."
            ) from None
        raise InputError(f"Could not download {url}: {reason}. Check the address and your network.") from None
    except (socket.timeout, TimeoutError):
        raise InputError(f"Timed out after {timeout:g} s downloading {url}. Retry, or raise the timeout.") from None
    except OSError as exc:  # connection reset, SSL failures...
        raise InputError(f"Download of {url} failed: {exc}. Check the address and your network.") from None
    except http.client.HTTPException as exc:  # IncompleteRead: the body was cut off (a chunked one, too)
        raise InputError(f"Download of {url} was cut off ({type(exc).__name__}). Retry, or check the address "
                         "in a browser.") from None
    data = b"".join(chunks)
    if not data:
        raise InputError(f"{url} returned an empty body (0 bytes). Check that the URL points at an image.")
    if re.match(rb"\s*(<!doctype html|<html)", data[:512], re.IGNORECASE):
        raise _web_page_error(url)
    return data


def _web_page_error(url: str) -> InputError:
    return InputError(
        f"{url}: this URL is a web page, not an image; right-click the picture and copy the image address."
    )


def _too_big_error(url: str, max_bytes: int, declared: int | None) -> InputError:
    size = f" ({declared:,} bytes)" if declared else ""
    return InputError(
        f"{url} is larger than the download limit of {max_bytes:,} bytes{size}. Download it yourself and "
        "pass the local file, or raise max_bytes."
    )


# --------------------------------------------------------------------------------------------
# saving and provenance
# --------------------------------------------------------------------------------------------


def save_image(
    img: Image.Image,
    path: str | os.PathLike,
    *,
    provenance: dict | None = None,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    quality: int = 95,
    forbid=(),
) -> Path:
    """Write `img` to `path` atomically, with provenance metadata; return the written path.

    Args:
        img: the PIL image (RGB, RGBA, L, LA...).
        path: output file; its extension picks the format (.jpg/.jpeg/.png/.webp/.tif/.tiff/.bmp).
            Parent folders are created.
        provenance: str -> str/number. PNG: one text chunk per key. JPEG/WebP/TIFF: EXIF Software
            (0x0131) gets provenance["Software"], EXIF ImageDescription (0x010E) gets the other
            keys as a JSON object; both are merged into `exif` when given. BMP stores no metadata.
        icc_profile: ICC profile bytes to embed (PNG, JPEG, WebP, TIFF).
        exif: EXIF bytes of the input to carry over (its orientation should already be 1).
        quality: JPEG / WebP quality (1..100).
        forbid: paths that must never be written (the CLI passes its inputs); compared resolved.

    Raises:
        InputError: unknown extension, alpha to JPEG, a forbidden path, or a failed write.

    The image goes to a temporary file in the destination folder, which is fsync'ed and then
    renamed over `path` (os.replace), so an interrupted save never leaves a truncated output.
    """
    path = Path(path).expanduser()
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"Cannot save {str(path)!r}: unknown image extension {path.suffix or '(none)'!r}. "
            f"Use one of: {', '.join(sorted(OUTPUT_FORMATS))}."
        )
    target = path.resolve()
    _refuse_forbidden(path, target, forbid)
    if fmt == "JPEG" and img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        raise InputError(
            f"Cannot save an image with transparency as JPEG ({str(path)!r}). Save it as .png (or .webp / .tiff) "
            "to keep the alpha channel."
        )
    if not 1 <= int(quality) <= 100:
        raise InputError(f"quality must be between 1 and 100, got {quality}.")
    if fmt == "JPEG" and img.mode not in ("RGB", "L", "CMYK"):
        img = img.convert("RGB")

    options = _save_options(fmt, provenance or {}, icc_profile, exif, int(quality))
    _write_atomically(target, path, fmt, lambda handle: img.save(handle, format=fmt, **options))
    return target


def save_jpeg_bytes(
    data: bytes,
    path: str | os.PathLike,
    *,
    provenance: dict | None = None,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    forbid=(),
) -> Path:
    """Write an already encoded JPEG (for example from the GPU's nvJPEG encoder) to `path`
    atomically, with the same metadata as :func:`save_image` would write: provenance merged into
    `exif` (the input's EXIF, orientation already 1) and the ICC profile. Returns the written path.

    The segments go where Pillow puts them: after the JFIF header when the stream has one, the
    EXIF (APP1) first, then the ICC profile (APP2, split into chunks as the ICC spec says).

    Raises:
        InputError: `path` is not .jpg/.jpeg, is forbidden, `data` is not a JPEG stream, the EXIF
            is too long for one segment, or the write failed.
    """
    path = Path(path).expanduser()
    if OUTPUT_FORMATS.get(path.suffix.lower()) != "JPEG":
        raise InputError(f"Cannot write JPEG data to {str(path)!r}: the name must end in .jpg or .jpeg.")
    target = path.resolve()
    _refuse_forbidden(path, target, forbid)
    data = bytes(data)
    if not data.startswith(b"\xff\xd8"):
        raise InputError(f"Cannot write {str(path)!r}: the encoder returned data that is not a JPEG stream.")
    segments = b""
    exif = _merge_provenance_exif(exif, provenance or {})
    if exif:  # Pillow's Exif.tobytes() starts with the APP1 identifier b"Exif\0\0"
        if len(exif) + 2 > 0xFFFF:
            raise InputError(f"Cannot write {str(path)!r}: the EXIF metadata is too long for one JPEG segment.")
        segments += b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    if icc_profile:
        segments += _icc_segments(icc_profile)
    at = 2  # right after the start-of-image marker, or after the JFIF (APP0) segment that must come first
    if data[2:4] == b"\xff\xe0":
        at += 2 + int.from_bytes(data[4:6], "big")
    data = data[:at] + segments + data[at:]
    _write_atomically(target, path, "JPEG", lambda handle: handle.write(data))
    return target


_ICC_CHUNK = 0xFFFF - 2 - 14  # an APP2 segment's payload, less its length field and the ICC_PROFILE header


def _icc_segments(icc: bytes) -> bytes:
    """An ICC profile as JPEG APP2 ``ICC_PROFILE`` segments (numbered chunks, as Pillow writes them)."""
    chunks = [icc[i:i + _ICC_CHUNK] for i in range(0, len(icc), _ICC_CHUNK)]
    return b"".join(
        b"\xff\xe2" + (2 + 14 + len(chunk)).to_bytes(2, "big") + b"ICC_PROFILE\0" + bytes((n, len(chunks))) + chunk
        for n, chunk in enumerate(chunks, start=1)
    )


def _refuse_forbidden(path: Path, target: Path, forbid) -> None:
    for protected in forbid:
        if Path(protected).expanduser().resolve() == target:
            raise InputError(
                f"Refusing to write {str(path)!r}: it is one of the input files and would be overwritten. "
                "Choose another output name or folder."
            )


# Temporary files of `_write_atomically`: ".<output name>.<pid>-<random>.part" beside the output.
# Older versions wrote ".<output name>.<random>.part" (no process id).
_TEMP_NAME = re.compile(
    r"^\.(?P<name>.+\.(?:%s))\.(?:(?P<pid>\d+)-)?[a-z0-9_]{8}\.part$"
    % "|".join(sorted(ext.lstrip(".") for ext in OUTPUT_FORMATS)),
    re.IGNORECASE,
)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that an interrupted save (``kill -9``, power loss) left in
    ``folder``: only names of our own pattern (``.<output name>.<pid>-<random>.part``, or the older
    ``.<output name>.<random>.part``) whose writing process is gone. Returns what was removed.

    A temporary file of a process that is still running (another ``colorize`` writing into the same
    folder) is left alone; so is everything else."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        pid = match.group("pid")
        if pid is not None and _process_alive(int(pid)):
            continue
        try:
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def _write_atomically(target: Path, path: Path, fmt: str, write) -> None:
    """Run ``write(handle)`` on a temporary file next to `target`, fsync it, rename it over `target`."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.{os.getpid()}-", suffix=".part")
    except OSError as exc:
        raise InputError(_write_error(path, fmt, exc)) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_UMASK)
        os.replace(tmp_name, target)
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        if isinstance(exc, (OSError, ValueError, KeyError)) and not isinstance(exc, InputError):
            raise InputError(_write_error(path, fmt, exc)) from exc
        raise


def _write_error(path: Path, fmt: str, exc: BaseException) -> str:
    """A failed write, said with the output's name and folder (never our temporary file's)."""
    if isinstance(exc, OSError) and exc.strerror:
        folder = Path(path).expanduser().parent
        return (f"Could not write {str(path)!r} as {fmt}: {exc.strerror}. Check that the folder {str(folder)!r} "
                "exists, is writable and has free space, or choose another -o.")
    return f"Could not write {str(path)!r} as {fmt}: {exc}."


def _save_options(fmt: str, provenance: dict, icc_profile: bytes | None, exif: bytes | None, quality: int) -> dict:
    options: dict = {}
    if fmt == "BMP":
        return options
    if icc_profile:
        options["icc_profile"] = icc_profile
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    if fmt == "TIFF":
        options["compression"] = "tiff_lzw"
    if fmt == "PNG":
        if provenance:
            info = PngImagePlugin.PngInfo()
            for key, value in provenance.items():
                info.add_text(str(key), str(value))
            options["pnginfo"] = info
        if exif:
            options["exif"] = exif
        return options
    merged = _merge_provenance_exif(exif, provenance)
    if merged is not None:
        options["exif"] = merged
    return options


def _merge_provenance_exif(exif: bytes | None, provenance: dict) -> bytes | None:
    if not provenance:
        return exif
    tags = Image.Exif()
    if exif:
        tags.load(exif)
    rest = {str(k): v for k, v in provenance.items() if k != "Software"}
    if "Software" in provenance:
        tags[_SOFTWARE_TAG] = _ascii(str(provenance["Software"]))
    if rest:
        tags[_IMAGE_DESCRIPTION_TAG] = json.dumps(rest, ensure_ascii=True, default=str)
    return tags.tobytes()


def _ascii(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii")


def read_provenance(path: str | os.PathLike) -> dict[str, str]:
    """Read back what `save_image(..., provenance=...)` recorded; values come back as strings.

    PNG: every text chunk. JPEG/WebP/TIFF: EXIF Software as "Software", and the JSON object
    in ImageDescription expanded into its keys (a plain-text description becomes
    "Description"). Returns {} when the file carries none (BMP never does).

    Raises:
        InputError: the file is missing or is not a readable image.
    """
    path = Path(path).expanduser()
    _check_file(path)
    try:
        # Only the headers are read, so the decompression-bomb limit does not apply: an earlier
        # output of a very large photo must be readable here.
        with _pil_limit_lifted(), Image.open(path) as img:
            if img.format == "PNG":
                # The text chunks before the pixel data (where save_image puts them), which Pillow has
                # read with the headers; `img.text` would decode the whole picture for later ones.
                return {str(k): str(v) for k, v in img.info.items() if isinstance(v, str)}
            tags = img.getexif()
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file: Pillow raises many kinds of errors
        raise InputError(f"Cannot read metadata of {str(path)!r}: {type(exc).__name__}: {exc}.") from exc
    found: dict[str, str] = {}
    description = tags.get(_IMAGE_DESCRIPTION_TAG)
    if isinstance(description, bytes):
        description = description.decode("utf-8", "replace")
    if description:
        description = description.rstrip("\x00")
        try:
            parsed = json.loads(description)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            found.update({str(k): str(v) for k, v in parsed.items()})
        else:
            found["Description"] = description
    software = tags.get(_SOFTWARE_TAG)
    if software:
        found["Software"] = str(software).rstrip("\x00")
    return found


# --------------------------------------------------------------------------------------------
# watermark, comparison, folders
# --------------------------------------------------------------------------------------------

WATERMARK_HEIGHT_FRACTION = 0.05
WATERMARK_MARGIN = 10
WATERMARK_WEIGHT = 0.5


@lru_cache(maxsize=1)
def _watermark_icon() -> Image.Image:
    """The palette icon, premultiplied by its alpha (mode "RGBa"), loaded once."""
    asset = resources.files("colorizer_lib").joinpath("assets/watermark.png")
    with asset.open("rb") as handle, Image.open(handle) as icon:
        return icon.convert("RGBA").convert("RGBa")


def apply_watermark(img: Image.Image) -> Image.Image:
    """Add DeOldify's palette mark to a copy of `img` and return it (same size and mode family).

    The icon (colorizer_lib/assets/watermark.png) is resized to a square of side
    int(0.05 * height), placed bottom-left with a 10 px margin, and ADDED to the image at 0.5
    weight: out = min(255, image + 0.5 * icon_rgb * icon_alpha), as DeOldify's
    `cv2.addWeighted(overlay, 0.5, image, 1.0, 0)` did (transparent icon pixels add nothing).

    Input modes: RGB and RGBA keep their mode (alpha untouched); L becomes RGB, LA becomes
    RGBA, anything else RGB. Images too small for the mark (height under 20 px, so the side
    would be 0, or too narrow or short to hold icon plus margins) are returned unchanged
    (as a copy in the output mode).
    """
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        base, alpha = rgba.convert("RGB"), rgba.getchannel("A")
    else:
        base, alpha = (img.copy() if img.mode == "RGB" else img.convert("RGB")), None
    width, height = base.size
    side = int(WATERMARK_HEIGHT_FRACTION * height)
    fits = side >= 1 and side + 2 * WATERMARK_MARGIN <= width and side + WATERMARK_MARGIN <= height
    if fits:
        icon = _watermark_icon()
        resample = Image.Resampling.BOX if side <= icon.width else Image.Resampling.BICUBIC
        mark = np.asarray(icon.resize((side, side), resample=resample), dtype=np.float32)[:, :, :3]
        top, left = height - side - WATERMARK_MARGIN, WATERMARK_MARGIN
        region = base.crop((left, top, left + side, top + side))
        summed = np.asarray(region, dtype=np.float32) + WATERMARK_WEIGHT * mark
        out = np.empty(summed.shape, dtype=np.uint8)
        np.rint(np.clip(summed, 0, 255, out=summed), out=out, casting="unsafe")
        base.paste(Image.fromarray(out), (left, top))
    if alpha is not None:
        base.putalpha(alpha)
    return base


def side_by_side(
    left: Image.Image,
    right: Image.Image,
    labels: tuple[str, str] | None = ("Original", "Colorized"),
    max_height: int | None = None,
) -> Image.Image:
    """Put two images next to each other in one RGB image, with small labels.

    Both halves are scaled (aspect ratio kept, Lanczos) to the same height: the smaller of the
    two heights, capped at `max_height` when given. Transparent areas are shown on white.
    Labels (None, or empty strings, for none) are drawn top-left of each half in white on a
    dark box with PIL's default font, sized to the height.
    """
    if max_height is not None and max_height < 1:
        raise InputError(f"max_height must be a positive number of pixels, got {max_height}.")
    height = min(left.height, right.height)
    if max_height is not None:
        height = min(height, int(max_height))
    halves = [_fit_height(_flatten(im), height) for im in (left, right)]
    canvas = Image.new("RGB", (halves[0].width + halves[1].width, height), (0, 0, 0))
    canvas.paste(halves[0], (0, 0))
    canvas.paste(halves[1], (halves[0].width, 0))
    if labels:
        draw = ImageDraw.Draw(canvas)
        font = _label_font(height)
        x = 0
        for half, label in zip(halves, labels):
            if label:
                _draw_label(draw, (x, 0), str(label), font, height)
            x += half.width
    return canvas


def _flatten(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and _palette_has_alpha(img)):
        rgba = img.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return img.convert("RGB") if img.mode != "RGB" else img


def _fit_height(img: Image.Image, height: int) -> Image.Image:
    if img.height == height:
        return img
    width = max(1, round(img.width * height / img.height))
    return img.resize((width, height), Image.Resampling.LANCZOS)


def _label_font(height: int):
    size = max(10, height // 40)
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def _draw_label(draw: ImageDraw.ImageDraw, origin: tuple[int, int], text: str, font, height: int) -> None:
    pad = max(2, height // 200)
    x, y = origin[0] + pad, origin[1] + pad
    box = draw.textbbox((x + pad, y + pad), text, font=font)
    draw.rectangle((x, y, box[2] + pad, box[3] + pad), fill=(0, 0, 0))
    draw.text((x + pad, y + pad), text, fill=(255, 255, 255), font=font)


def iter_image_files(folder: str | os.PathLike, recursive: bool = True) -> Iterator[Path]:
    """Yield the image files in `folder`, sorted by relative path.

    Picks extensions in INPUT_EXTENSIONS (case-insensitive); skips hidden files and folders
    (names starting with "."); descends into sub-folders when `recursive` (symlinked folders
    are not followed).

    Raises:
        InputError: `folder` does not exist or is not a folder.
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise InputError(f"Folder not found: {str(root)!r}. Check the path.")
    if not root.is_dir():
        raise InputError(f"{str(root)!r} is a file, not a folder. Pass a folder, or load the file directly.")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if recursive else []
        for filename in filenames:
            if not filename.startswith(".") and Path(filename).suffix.lower() in INPUT_EXTENSIONS:
                found.append(Path(dirpath) / filename)
    found.sort(key=lambda p: p.relative_to(root).parts)
    yield from found


# --------------------------------------------------------------------------------------------
# tensors
# --------------------------------------------------------------------------------------------


def _row_chunks(height: int, width: int):
    """Row ranges of about 1 M pixels: big enough for speed, small enough to stay in cache."""
    step = max(1, _CHUNK_PIXELS // max(1, width))
    for top in range(0, height, step):
        yield top, min(height, top + step)


_CHUNK_PIXELS = 1 << 20


def to_luma_tensor(loaded: LoadedImage) -> "torch.Tensor":
    """ITU-R 601 luma of a LoadedImage as a (1, 1, H, W) float32 CPU tensor in [0, 1].

    Uses `loaded.luma16` (full precision; the tensor then shares its memory) when present,
    else Y = 0.299 R + 0.587 G + 0.114 B of the 8-bit RGB. Memory: the float32 result plus one
    ~1 M-pixel working block (rows are converted block by block), on top of a uint8 view of
    the pixels.
    """
    import torch

    if loaded.luma16 is not None:
        return torch.from_numpy(np.ascontiguousarray(loaded.luma16, dtype=np.float32))[None, None]
    pixels = _pixels_hwc(loaded.rgb)
    height, width = pixels.shape[:2]
    weights = torch.tensor(LUMA_WEIGHTS, dtype=torch.float32) / 255
    luma = torch.empty((height, width), dtype=torch.float32)
    for top, bottom in _row_chunks(height, width):
        torch.matmul(pixels[top:bottom].to(torch.float32), weights, out=luma[top:bottom])
    return luma.clamp_(0, 1)[None, None]


def _pixels_hwc(pil: Image.Image) -> "torch.Tensor":
    """(H, W, 3) uint8 tensor sharing memory with one read-only copy of an RGB image's pixels."""
    import torch

    with warnings.catch_warnings():
        # np.asarray(PIL) is read-only; the tensor is only ever read, never written.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.asarray(pil))
