"""The one colour merge: low-resolution chroma upsampled to the picture's size and joined with its
full-resolution luminance, in horizontal strips for large pictures.

Every path that turns a model's chroma into a picture goes through :func:`merge`: photos
(:meth:`colorizer_lib.colorizer.Colorizer.colorize`), the pipelined runner and video frames (both
through :meth:`Colorizer.compose`), ensembles and training evaluation
(:func:`colorizer_lib.training.evaluate.generator_predict`). The colour space is the model family's
(:mod:`colorizer_lib.models.families`): the family says how chroma is upsampled (``family.upsample``),
and joins luminance with chroma (``family.compose``); this module only decides *where* (which rows,
at what size), so a family never holds more than one strip.

Upsampling: bilinear (``align_corners=False``) or nearest. Antialiasing only where the chroma shrinks
(pictures smaller than the model's input); when upsampling, the antialiased and plain bilinear
kernels give the same values within float rounding, and the plain one is much faster on a GPU
(BENCHMARKS.md, "compose antialiases only when shrinking").

Strips: above :data:`STRIP_PIXELS` pixels per picture (unless the chroma shrinks along either axis)
the chroma is upsampled horizontally once (``s x W``), then :data:`STRIP_ROWS` rows at a time
vertically, so a 12000 x 9000 photo never holds a full-size float copy of its chroma or
luminance: only the strip's.
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch
import torch.nn.functional as F

#: Above this many pixels (per picture) the merge runs in horizontal strips.
STRIP_PIXELS = 4_000_000
#: Rows per strip.
STRIP_ROWS = 512

CHROMA_UPSAMPLE_MODES = ("bilinear", "nearest")


class Composer(Protocol):
    """What :func:`merge` needs of a model family (:mod:`colorizer_lib.models.families`)."""

    upsample: str

    def luminance(self, luma: torch.Tensor) -> torch.Tensor: ...

    def compose(self, luminance: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor: ...


def upsample_chroma(chroma: torch.Tensor, size: tuple[int, int], mode: str = "bilinear", *,
                    antialias: bool = False) -> torch.Tensor:
    """Resize chroma ``(B, 2, h, w)`` to ``size`` with ``mode`` (``"bilinear"``, ``align_corners=False``,
    antialiased when asked; or ``"nearest"``, torch's default mode); float32."""
    if mode not in CHROMA_UPSAMPLE_MODES:
        raise ValueError(f"chroma_upsample must be one of {CHROMA_UPSAMPLE_MODES}, got {mode!r}")
    chroma = chroma.float()
    if mode == "nearest":
        return F.interpolate(chroma, size=size, mode="nearest")
    return F.interpolate(chroma, size=size, mode="bilinear", align_corners=False, antialias=antialias)


def strips(height: int, width: int, chroma_size: tuple[int, int]) -> list[tuple[int, int]]:
    """The row ranges :func:`merge` composes one at a time: one range for small pictures and where the
    chroma shrinks, else :data:`STRIP_ROWS` rows each."""
    s_h, s_w = chroma_size
    if height * width <= STRIP_PIXELS or height < s_h or width < s_w:
        return [(0, height)]
    return [(y, min(y + STRIP_ROWS, height)) for y in range(0, height, STRIP_ROWS)]


def merge(family: Composer, chroma: torch.Tensor, size: tuple[int, int],
          luminance: Callable[[int, int], torch.Tensor],
          write: Callable[[int, int, torch.Tensor], None]) -> None:
    """Compose ``chroma (B, 2, h, w)`` (float, the family's space, on the device) with a picture of
    ``size = (H, W)``, strip by strip.

    Args:
        family: the model family; ``family.upsample`` is the chroma's upsampling mode and
            ``family.compose(luminance, chroma)`` joins a strip's luminance with its chroma.
        luminance: ``luminance(y0, y1)`` -> the family's luminance ``(B, 1, y1 - y0, W)`` of rows
            ``y0..y1``, on the chroma's device.
        write: ``write(y0, y1, rgb)`` receives each strip's RGB ``(B, 3, y1 - y0, W)`` in [0, 1].
    """
    height, width = size
    s_h, s_w = chroma.shape[-2:]
    ranges = strips(height, width, (s_h, s_w))
    if len(ranges) == 1:
        shrinks = height < s_h or width < s_w
        up = upsample_chroma(chroma, (height, width), family.upsample, antialias=shrinks)
        write(0, height, family.compose(luminance(0, height), up))
        return
    # Horizontal pass once (h x W), then the vertical resize per strip.
    rows = upsample_chroma(chroma, (s_h, width), family.upsample)
    for y0, y1 in ranges:
        write(y0, y1, family.compose(luminance(y0, y1), _vertical(rows, y0, y1, height, family.upsample)))


def _vertical(rows: torch.Tensor, y0: int, y1: int, out_height: int, mode: str) -> torch.Tensor:
    """Rows ``y0..y1`` of a vertical resize of ``rows (B, C, h, W)`` to ``out_height`` rows; equals
    slicing ``upsample_chroma(rows, (out_height, W), mode)`` without building it (bilinear: within
    float rounding; nearest: exactly, the source rows being torch's own choice)."""
    h = rows.shape[-2]
    if mode == "nearest":
        index = torch.arange(h, device=rows.device, dtype=torch.float32).reshape(1, 1, h, 1)
        chosen = F.interpolate(index, size=(out_height, 1), mode="nearest")[0, 0, y0:y1, 0].long()
        return rows.index_select(2, chosen)
    scale = h / out_height
    y = torch.arange(y0, y1, device=rows.device, dtype=torch.float64)
    src = ((y + 0.5) * scale - 0.5).clamp_(min=0.0)
    lo = src.floor().long().clamp_(max=h - 1)
    hi = (lo + 1).clamp_(max=h - 1)
    w = (src - lo.double()).to(rows.dtype).reshape(1, 1, -1, 1)
    out = rows.index_select(2, lo).mul_(1 - w)  # the same products and sum as lo * (1 - w) + hi * w, in place
    return out.add_(rows.index_select(2, hi).mul_(w))


def compose_tensor(family: Composer, luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """:func:`merge` for a luma already in memory: ITU-R 601 luma ``(B, 1, H, W)`` in [0, 1] (turned
    into the family's luminance strip by strip, ``family.luminance``) and chroma ``(B, 2, h, w)`` on
    the same device -> RGB ``(B, 3, H, W)`` in [0, 1] (one full-size output; the upsampled chroma
    exists one strip at a time)."""
    height, width = luma.shape[-2:]
    out: list[torch.Tensor] = []

    def write(y0: int, y1: int, rgb: torch.Tensor) -> None:
        if y0 == 0 and y1 == height:
            out.append(rgb)
            return
        if not out:
            out.append(torch.empty((rgb.shape[0], 3, height, width), dtype=rgb.dtype, device=rgb.device))
        out[0][:, :, y0:y1] = rgb

    merge(family, chroma, (height, width), lambda y0, y1: family.luminance(luma[:, :, y0:y1]), write)
    return out[0]


__all__ = ["CHROMA_UPSAMPLE_MODES", "STRIP_PIXELS", "STRIP_ROWS", "Composer", "compose_tensor", "merge", "strips",
           "upsample_chroma"]
