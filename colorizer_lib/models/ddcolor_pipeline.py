"""DDColor's pre- and post-processing (the original ``ColorizationPipeline``) as torch functions.

The original (``ddcolor/pipeline.py``) works in CIELAB through OpenCV's float conversions:

1. the full-resolution L of the photo is kept;
2. the RGB photo is stretched to an ``S x S`` square (bilinear, no antialiasing), its L taken and
   turned back into grey RGB (``Lab(L, 0, 0) -> RGB``): the model input;
3. the model predicts Lab a, b at ``S x S``;
4. a, b are resized to the photo's size (torch's default *nearest* mode), joined to the
   full-resolution L and converted to RGB (clipped to [0, 1]), then rounded to 8 bits.

:func:`ddcolor_model_input` is steps 1-2, :func:`ddcolor_compose` step 4. With
``chroma_upsample="nearest"`` they reproduce the original exactly (tests pin them to its stored
output); ``"bilinear"`` upsamples a, b smoothly instead, which avoids the visible blocks of
``photo side / S`` pixels that nearest upsampling leaves on a large photo (8-pixel colour blocks at
S = 512 for a 4000-pixel side). Render factor ``r`` means ``S = 16 r`` (DDColor's default 512 is
render factor 32); S must be a multiple of 32 for the model.

Contract: images are float tensors ``(B, 3, H, W)``, RGB in [0, 1] (for 8-bit photos ``uint8 / 255``
in float32, as the original); L is ``(B, 1, H, W)`` in [0, 100]; a, b are ``(B, 2, h, w)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..merge import CHROMA_UPSAMPLE_MODES
from ..merge import upsample_chroma as merge_upsample
from ..opencv_lab import lab_to_rgb_opencv, rgb_to_lab_opencv


def ddcolor_model_input(rgb: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 1-2 of the original pipeline: ``(model_input (B, 3, size, size), full-resolution L (B, 1, H, W))``."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"expected RGB images shaped (B, 3, H, W), got {tuple(rgb.shape)}")
    if size <= 0 or size % 32:
        raise ValueError(f"DDColor's input size must be a positive multiple of 32, got {size} "
                         f"(render factor {size / 16:g}); use an even render factor.")
    rgb = rgb.float()
    full_l = rgb_to_lab_opencv(rgb, l_only=True)
    small = F.interpolate(rgb, size=(size, size), mode="bilinear", align_corners=False)
    small_l = rgb_to_lab_opencv(small, l_only=True)
    grey = lab_to_rgb_opencv(torch.cat([small_l, torch.zeros_like(small_l), torch.zeros_like(small_l)], dim=1))
    return grey, full_l


def upsample_chroma(ab: torch.Tensor, size: tuple[int, int], mode: str = "nearest") -> torch.Tensor:
    """Resize predicted a, b ``(B, 2, h, w)`` to ``size`` with ``mode`` (see module docstring): the one
    merge's upsampling (:func:`colorizer_lib.merge.upsample_chroma`), with the original's default."""
    return merge_upsample(ab, size, mode)


def ddcolor_compose(full_l: torch.Tensor, ab: torch.Tensor, *, chroma_upsample: str = "nearest") -> torch.Tensor:
    """Step 4: join the full-resolution L ``(B, 1, H, W)`` with a, b upsampled to ``(H, W)``; RGB in [0, 1]."""
    if full_l.dim() != 4 or full_l.shape[1] != 1 or ab.dim() != 4 or ab.shape[1] != 2:
        raise ValueError(f"expected L (B, 1, H, W) and a, b (B, 2, h, w), got {tuple(full_l.shape)} and {tuple(ab.shape)}")
    ab_full = upsample_chroma(ab, tuple(full_l.shape[-2:]), chroma_upsample)
    return lab_to_rgb_opencv(torch.cat([full_l.float(), ab_full], dim=1))


def to_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """``round(255 x)`` half to even, as ``(x * 255.0).round().astype(np.uint8)`` on [0, 1] input."""
    return torch.round(rgb.float() * 255.0).clamp_(0, 255).to(torch.uint8)


__all__ = ["CHROMA_UPSAMPLE_MODES", "ddcolor_compose", "ddcolor_model_input", "to_uint8", "upsample_chroma"]
