"""Regenerate colorizer_lib/assets/watermark.png: a white painter's-palette icon with a soft shadow.

Usage:  python -m colorizer_lib.assets.make_watermark [OUTPUT.png]

The icon is drawn at 4x and downsampled (antialiasing), RGBA, 185 x 185 px like DeOldify's
mark: a white kidney-shaped palette with a thumb hole and five paint wells punched out
(transparent), over a blurred dark drop shadow. Deterministic: same Pillow, same bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

SIZE = 185
SCALE = 4
SHADOW_OFFSET = (5, 6)  # px at final size
SHADOW_BLUR = 5  # px at final size
SHADOW_OPACITY = 0.55


def palette_mask(size: int) -> Image.Image:
    """Mode "L" mask (255 = palette) of the icon at `size` x `size`, without the shadow margin."""
    big = size * SCALE
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)

    def box(cx: float, cy: float, rx: float, ry: float) -> tuple[float, float, float, float]:
        return ((cx - rx) * big, (cy - ry) * big, (cx + rx) * big, (cy + ry) * big)

    # The palette body: a broad ellipse, with a bite taken out of its lower right edge.
    draw.ellipse(box(0.5, 0.5, 0.46, 0.40), fill=255)
    draw.ellipse(box(0.80, 0.80, 0.16, 0.13), fill=0)
    # Thumb hole.
    draw.ellipse(box(0.62, 0.66, 0.075, 0.065), fill=0)
    # Paint wells along the upper rim.
    for cx, cy in ((0.24, 0.45), (0.30, 0.27), (0.48, 0.20), (0.67, 0.25), (0.78, 0.42)):
        draw.ellipse(box(cx, cy, 0.065, 0.065), fill=0)
    return mask.resize((size, size), Image.Resampling.LANCZOS)


def make_watermark(size: int = SIZE) -> Image.Image:
    """The RGBA watermark icon: white palette on a transparent background with a soft shadow."""
    margin = SHADOW_BLUR * 2 + max(SHADOW_OFFSET)
    shape = palette_mask(size - margin)
    body = Image.new("L", (size, size), 0)
    body.paste(shape, (margin // 2 - 2, margin // 2 - 2))

    shadow = ImageChops.offset(body, *SHADOW_OFFSET).filter(ImageFilter.GaussianBlur(SHADOW_BLUR))
    shadow = shadow.point(lambda v: round(v * SHADOW_OPACITY))

    # White body over a black shadow ("over" operator): alpha = body + shadow * (1 - body);
    # premultiplied colour = 255 * body, so the straight colour is 255 * body / alpha.
    b = np.asarray(body, dtype=np.float64) / 255
    s = np.asarray(shadow, dtype=np.float64) / 255
    alpha = b + s * (1 - b)
    grey = np.divide(b, alpha, out=np.zeros_like(b), where=alpha > 0)
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[:, :, :3] = np.rint(grey * 255)[:, :, None]
    rgba[:, :, 3] = np.rint(alpha * 255)
    return Image.fromarray(rgba)


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).with_name("watermark.png")
    make_watermark().save(out, format="PNG", optimize=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
