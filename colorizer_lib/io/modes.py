"""Colour modes and carried metadata: any PIL mode to 8-bit RGB (+ alpha, + full-precision luma for
16-bit and float greys), CMYK through its ICC profile, the ICC profile and EXIF block outputs keep, and
whether a picture already has colour.
"""

from __future__ import annotations

import io
import logging
from functools import lru_cache

import numpy as np
from PIL import Image

from colorizer_lib.errors import InputError

try:  # LittleCMS bindings; Pillow wheels ship them, some distro builds do not
    from PIL import ImageCms
except ImportError:  # pragma: no cover - depends on the Pillow build
    ImageCms = None


logger = logging.getLogger(__name__)

#: ITU-R BT.601 luma weights for R, G, B (as PIL "L" and OpenCV).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


_ORIENTATION_TAG = 0x0112


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
