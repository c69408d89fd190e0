"""The original projects' photo paths, as baselines for photos from disk to disk: DeOldify's (PIL resize,
float32 model at batch 1, CPU YUV merge per image) and DDColor's ``ColorizationPipeline`` (OpenCV on the
CPU: float Lab, resize, float32 model at batch 1, nearest a/b upsampling, Lab -> BGR, 8-bit write).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..color import IMAGENET_MEAN, IMAGENET_STD
from ..models.ddcolor_pipeline import ddcolor_compose, ddcolor_model_input, to_uint8


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


def ddcolor_style_photo(model: nn.Module, device: torch.device, src: Path, dst: Path, render_factor: int) -> str:
    """DDColor's ``ColorizationPipeline.process`` per photo, as the baseline: read, float32 BGR in [0, 1],
    full-resolution L, stretch to the square, grey input ``Lab(L, 0, 0) -> RGB``, float32 model at batch 1,
    a/b resized to the photo with torch's default (nearest) mode on the CPU, joined to L, Lab -> 8 bits, write.

    With OpenCV installed (``opencv-python-headless``) every step is OpenCV's, as in the original;
    without it the same arithmetic runs as this library's bit-exact torch ops on the CPU
    (:mod:`colorizer_lib.models.ddcolor_pipeline`), which are slower than OpenCV's, so that baseline is
    slower than the original. Returns which of the two ran (``"opencv"`` or ``"torch-cpu"``)."""
    import torch.nn.functional as F

    size = 16 * render_factor
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        img = (cv2.imread(str(src)) / 255.0).astype(np.float32)
        height, width = img.shape[:2]
        orig_l = cv2.cvtColor(img, cv2.COLOR_BGR2Lab)[:, :, :1]
        small_l = cv2.cvtColor(cv2.resize(img, (size, size)), cv2.COLOR_BGR2Lab)[:, :, :1]
        grey_lab = np.concatenate((small_l, np.zeros_like(small_l), np.zeros_like(small_l)), axis=-1)
        grey_rgb = cv2.cvtColor(grey_lab, cv2.COLOR_LAB2RGB)
        x = torch.from_numpy(grey_rgb.transpose((2, 0, 1))).float()[None].to(device)
        with torch.no_grad():
            ab = model(x).cpu()
        ab = F.interpolate(ab, size=(height, width))[0].float().numpy().transpose(1, 2, 0)
        bgr = cv2.cvtColor(np.concatenate((orig_l, ab), axis=-1), cv2.COLOR_LAB2BGR)
        cv2.imwrite(str(dst), (bgr * 255.0).round().astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])
        return "opencv"
    from PIL import Image

    with Image.open(src) as im:
        rgb = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    x, full_l = ddcolor_model_input(rgb, size)
    with torch.no_grad():
        ab = model(x.to(device)).cpu()
    out = to_uint8(ddcolor_compose(full_l, ab.float(), chroma_upsample="nearest"))[0].permute(1, 2, 0).numpy()
    Image.fromarray(out).save(dst, quality=95)
    return "torch-cpu"


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
