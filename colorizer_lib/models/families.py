"""Model families: what a kind of model needs around it, in one small interface.

A family turns luma into the model's input, reads chroma out of the model's output, and joins
luminance with (upsampled) chroma in its own colour space. The Colorizer, the one strip-bounded merge
(:mod:`colorizer_lib.merge`), video, ensembles and training evaluation call only this interface, so
a new family plugs in without another copy of the colorize path.

Interface (every family):

``name``
    ``"deoldify"`` or ``"ddcolor"``.
``chroma_space``
    the colour space of its chroma: ``"yuv601"`` (U, V of ITU-R 601 YUV in [0, 1] units,
    :mod:`colorizer_lib.color`) or ``"lab-opencv"`` (a, b of OpenCV's float CIELAB).
``default_render_factor``
    the family's own, for weights without a record (DeOldify 35, DDColor 32: 512 px).
``upsample``
    how its chroma is upsampled to the picture: ``"bilinear"`` or ``"nearest"``.
``input_size(render_factor) -> S``
    the model's input side, ``16 x render factor`` for every family (checked).
``model_input(luma, size) -> (B, 3, S, S)``
    from ITU-R 601 luma ``(B, 1, H, W)`` float32 in [0, 1] on the model's device.
``chroma(output) -> (B, 2, S, S)``
    float32 chroma in ``chroma_space`` from the model's output.
``input_luma(x) -> (B, 1, S, S)``
    the grey picture inside a model input (an ensemble converts chroma between families with it).
``luminance(luma)`` / ``luminance_from_rgb8(rgb8)``
    the family's luminance ``(B, 1, h, w)`` from 601 luma in [0, 1], or ``(1, 1, h, w)`` from a photo's
    8-bit RGB rows ``(h, w, 3)`` uint8 (what a photo's merge reads).
``compose(luminance, chroma) -> RGB (B, 3, h, w)`` in [0, 1]
    for chroma already at the luminance's size.
``to_rgb`` / ``from_rgb``
    chroma <-> RGB at a given luminance (what an ensemble of families uses to meet in one space).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from ..color import compose_luma_chroma, denormalize_imagenet, grey_to_rgb, normalize_imagenet, rgb_to_chroma
from ..constants import RENDER_BASE
from ..errors import RenderFactorError
from ..io import rgb8_to_luma
from ..merge import CHROMA_UPSAMPLE_MODES
from ..opencv_lab import lab_to_rgb_opencv, rgb_to_lab_opencv
from .ddcolor import DDColor


def _check_upsample(mode: str) -> str:
    if mode not in CHROMA_UPSAMPLE_MODES:
        raise ValueError(f"chroma_upsample must be one of {CHROMA_UPSAMPLE_MODES}, got {mode!r}")
    return mode


class DeOldifyFamily:
    """DeOldify's convention (also our compact model's): grey stretched to an ``S x S`` square (bilinear,
    antialiased), replicated to 3 channels and ImageNet-normalised; the model returns normalised RGB,
    whose ITU-R 601 chroma (U, V) is merged with the full-resolution luma, as DeOldify did."""

    name = "deoldify"
    chroma_space = "yuv601"
    default_render_factor = 35  # DeOldify's own (its records may say otherwise)

    def __init__(self, chroma_upsample: str = "bilinear"):
        self.upsample = _check_upsample(chroma_upsample)

    def __repr__(self) -> str:
        return f"DeOldifyFamily(chroma_upsample={self.upsample!r})"

    def input_size(self, render_factor: int) -> int:
        return RENDER_BASE * render_factor

    def model_input(self, luma: torch.Tensor, size: int) -> torch.Tensor:
        x = F.interpolate(luma, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return normalize_imagenet(grey_to_rgb(x.clamp(0.0, 1.0)))

    def chroma(self, output: torch.Tensor) -> torch.Tensor:
        return rgb_to_chroma(denormalize_imagenet(output.float()).clamp_(0.0, 1.0))

    def input_luma(self, x: torch.Tensor) -> torch.Tensor:
        return denormalize_imagenet(x.float())[:, :1]

    def luminance(self, luma: torch.Tensor) -> torch.Tensor:
        return luma

    def luminance_from_rgb8(self, rgb8: torch.Tensor) -> torch.Tensor:
        return rgb8_to_luma(rgb8)[None, None]

    def compose(self, luminance: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        return compose_luma_chroma(luminance, chroma)

    to_rgb = compose

    def from_rgb(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb_to_chroma(rgb)


class DDColorFamily:
    """DDColor's original pipeline (``ColorizationPipeline``; docs/DDCOLOR.md) from luma, in OpenCV's float
    CIELAB: the grey picture stretched to an ``S x S`` square (bilinear, no antialiasing, as
    ``cv2.resize``), its L turned back into grey RGB (``Lab(L, 0, 0)``): the model input (the model
    normalises it itself); the model returns a, b, merged with the full-resolution L.

    For a grey picture OpenCV's L is a function of the grey level alone, computed exactly by
    :func:`grey_lightness` (the original's L of a grey photo, bit for bit). ``chroma_upsample``:
    ``"bilinear"`` (the default: no blocks of ``side / S`` pixels on large photos) or ``"nearest"``
    (the original's torch default, for exact comparisons).
    """

    name = "ddcolor"
    chroma_space = "lab-opencv"
    default_render_factor = 32  # DDColor's own input size, 512 px

    def __init__(self, chroma_upsample: str = "bilinear"):
        self.upsample = _check_upsample(chroma_upsample)

    def __repr__(self) -> str:
        return f"DDColorFamily(chroma_upsample={self.upsample!r})"

    def input_size(self, render_factor: int) -> int:
        size = RENDER_BASE * render_factor
        if size % 32:
            raise RenderFactorError(f"DDColor models need an even render factor (input side {size} px must be a "
                                    f"multiple of 32); use {render_factor - 1} or {render_factor + 1}.")
        return size

    def model_input(self, luma: torch.Tensor, size: int) -> torch.Tensor:
        x = F.interpolate(luma, size=(size, size), mode="bilinear", align_corners=False)
        return self.to_rgb(grey_lightness(x), torch.zeros(x.shape[0], 2, size, size, device=x.device))

    def chroma(self, output: torch.Tensor) -> torch.Tensor:
        return output.float()

    def input_luma(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1].float()  # the grey picture Lab(L, 0, 0) -> RGB: any channel

    def luminance(self, luma: torch.Tensor) -> torch.Tensor:
        return grey_lightness(luma)

    def luminance_from_rgb8(self, rgb8: torch.Tensor) -> torch.Tensor:
        return rgb_to_lab_opencv(rgb8.permute(2, 0, 1)[None].float() / 255.0, l_only=True)

    def compose(self, luminance: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        return lab_to_rgb_opencv(torch.cat([luminance.float(), chroma.float()], dim=-3))

    to_rgb = compose

    def from_rgb(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb_to_lab_opencv(rgb)[..., 1:, :, :]


ModelFamily = DeOldifyFamily | DDColorFamily


@functools.lru_cache(maxsize=4)
def _grey_lightness_table(device: str) -> torch.Tensor:
    """OpenCV's L of the grey levels ``p / 512``, p = 0..512 (float32 (513,)): see :func:`grey_lightness`."""
    levels = torch.arange(513, dtype=torch.float32) / 512  # exact: p * 2**-9
    return rgb_to_lab_opencv(levels.reshape(1, 1, 513).expand(3, 1, 513), l_only=True).reshape(513).to(device)


def grey_lightness(luma: torch.Tensor) -> torch.Tensor:
    """OpenCV's float ``RGB2Lab`` L of the grey picture ``R = G = B = luma`` (``(*, 1, H, W)`` float), exactly.

    OpenCV rounds each channel to 1/16384 and uses its top 9 bits (the table cell and 4 bits of the
    position in it, :mod:`colorizer_lib.opencv_lab`); with three equal channels the interpolated L
    depends only on ``p = round(16384 v) >> 5`` (0..512), so it is a 513-entry table of the exact
    conversion, read with the same rounding.
    """
    q = torch.round(luma.float().clamp(0.0, 1.0) * 16384).to(torch.int32) >> 5
    return _grey_lightness_table(str(luma.device))[q.long()]


def family_for_model(model: nn.Module, chroma_upsample: str | None = None) -> ModelFamily:
    """The family of a generator: DDColor's for :class:`~colorizer_lib.models.ddcolor.DDColor`, DeOldify's for
    every other registered generator (DeOldify's U-Nets, our compact model: normalised grey in, RGB out)."""
    family = DDColorFamily if isinstance(model, DDColor) else DeOldifyFamily
    return family(chroma_upsample or "bilinear")


__all__ = ["DDColorFamily", "DeOldifyFamily", "ModelFamily", "family_for_model", "grey_lightness"]
