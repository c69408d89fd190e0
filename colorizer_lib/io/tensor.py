"""The one bridge to torch: a loaded picture as the library's `(B, 1, H, W)` float32 `[0, 1]` luma
(see docs/ARCHITECTURE.md); only this module imports torch, lazily.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .load import LoadedImage
from .modes import LUMA_WEIGHTS

if TYPE_CHECKING:  # torch is imported lazily, inside the tensor helpers only
    import torch


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
    luma = torch.empty((height, width), dtype=torch.float32)
    for top, bottom in _row_chunks(height, width):
        rgb8_to_luma(pixels[top:bottom], out=luma[top:bottom])
    return luma[None, None]


def rgb8_to_luma(pixels: "torch.Tensor", out: "torch.Tensor | None" = None) -> "torch.Tensor":
    """``(h, w, 3)`` uint8 RGB rows (any device) -> ``(h, w)`` float32 ITU-R 601 luma in [0, 1]: the one
    luma of an 8-bit picture, for the model input (:func:`to_luma_tensor`) and the merge alike."""
    import torch

    weights = torch.tensor(LUMA_WEIGHTS, dtype=torch.float32, device=pixels.device) / 255
    luma = torch.matmul(pixels.to(torch.float32), weights, out=out)
    return luma.clamp_(0, 1)


def _pixels_hwc(pil: Image.Image) -> "torch.Tensor":
    """(H, W, 3) uint8 tensor sharing memory with one read-only copy of an RGB image's pixels."""
    import torch

    with warnings.catch_warnings():
        # np.asarray(PIL) is read-only; the tensor is only ever read, never written.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.asarray(pil))
