"""The DeOldify-style baseline for photos from disk to disk: PIL resize, float32 model at batch 1, CPU
YUV merge per image, as the original code did.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..color import IMAGENET_MEAN, IMAGENET_STD


def deoldify_style_photo(model: nn.Module, device: torch.device, src: Path, dst: Path, render_factor: int) -> None:
    """DeOldify's per-image path (visualize.py / filters.py), as the baseline: PIL load and bilinear
    resize to the square, grey, float32 model at batch 1, PIL resize back, YUV merge on the CPU."""
    from PIL import Image

    size = 16 * render_factor
    orig = Image.open(src).convert("RGB")
    small = orig.resize((size, size), resample=Image.BILINEAR).convert("LA").convert("RGB")
    x = torch.from_numpy(np.asarray(small, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        out = model(((x - mean) / std).to(device)).cpu()
    rgb = ((out * std + mean).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    color = np.asarray(Image.fromarray(rgb).resize(orig.size, resample=Image.BILINEAR))
    merged = _yuv_merge_cpu(np.asarray(orig), color)
    Image.fromarray(merged).save(dst, quality=95)


def _yuv_merge_cpu(orig_rgb: np.ndarray, color_rgb: np.ndarray) -> np.ndarray:
    """Y of ``orig``, U and V of ``color`` (OpenCV 8-bit YUV, as DeOldify's post-processing)."""
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        y = cv2.cvtColor(orig_rgb, cv2.COLOR_RGB2YUV)
        uv = cv2.cvtColor(color_rgb, cv2.COLOR_RGB2YUV)
        y[..., 1:] = uv[..., 1:]
        return cv2.cvtColor(y, cv2.COLOR_YUV2RGB)
    o = orig_rgb.astype(np.float32)
    c = color_rgb.astype(np.float32)
    y = 0.299 * o[..., 0] + 0.587 * o[..., 1] + 0.114 * o[..., 2]
    yc = 0.299 * c[..., 0] + 0.587 * c[..., 1] + 0.114 * c[..., 2]
    u, v = 0.492 * (c[..., 2] - yc), 0.877 * (c[..., 0] - yc)
    out = np.stack([y + 1.140 * v, y - 0.395 * u - 0.581 * v, y + 2.032 * u], axis=-1)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
