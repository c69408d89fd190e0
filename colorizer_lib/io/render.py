"""Rendering: DeOldify's watermark and the labelled side-by-side comparison.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from colorizer_lib.errors import InputError
from .modes import _palette_has_alpha


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
