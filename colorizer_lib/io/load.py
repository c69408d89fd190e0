"""Decoding: any source (path, URL, bytes, file object, PIL image, numpy array) -> `LoadedImage`.

`load_image` always returns a `LoadedImage` whose `rgb` is an 8-bit RGB PIL image with the EXIF
orientation applied. Alpha, ICC profile, EXIF and (for 16-bit or float inputs) a full-precision luma
plane travel alongside so that the colorizer can keep the original's luminance, transparency and
metadata. URLs are fetched by `io.http`; modes, ICC and EXIF are handled by `io.modes`.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
import urllib.parse
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from colorizer_lib.errors import InputError
from .http import _download
from .modes import LUMA_WEIGHTS, _ORIENTATION_TAG, _convert_mode, _exif_for_output, _rgb_icc


_FORMATS_HINT = "JPEG, PNG, WebP, TIFF, BMP or GIF"


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
