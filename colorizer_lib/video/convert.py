"""Tensor conversions between decoded frames, the Colorizer's luma/chroma and encoder input.

All functions run on whatever device their input lives on (the GPU in production), so the only
host<->device traffic is one uint8 luma plane in and one uint8 YUV 4:2:0 frame out per frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# ITU-R BT.601, limited ("tv") range, as tagged on the encoder output (smpte170m).
_Y = (0.299, 0.587, 0.114)
_CB = (-0.168736, -0.331264, 0.5)
_CR = (0.5, -0.418688, -0.081312)


def gray_u8_to_luma(frames: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """``(B, H, W)`` uint8 grey frames -> ``(B, 1, H, W)`` float32 luma in [0, 1] on ``device``."""
    if frames.dtype != torch.uint8 or frames.dim() != 3:
        raise ValueError(f"expected (B, H, W) uint8 frames, got {tuple(frames.shape)} {frames.dtype}")
    x = frames.to(device, non_blocking=True) if device is not None else frames
    return x.unsqueeze(1).float().div_(255.0)


def pad_to_even(x: torch.Tensor) -> torch.Tensor:
    """Replicate the last row / column of ``(B, C, H, W)`` so H and W are even (4:2:0 needs it)."""
    pad_w, pad_h = x.shape[-1] % 2, x.shape[-2] % 2
    if not (pad_w or pad_h):
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


def rgb_to_yuv420p(rgb: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] (H, W even) -> ``(B, H*W*3//2)`` uint8 planar YUV 4:2:0.

    BT.601 limited range: Y in [16, 235], Cb/Cr in [16, 240], chroma averaged over 2x2 blocks. The
    layout per frame is the Y plane, then U, then V, exactly what ffmpeg's ``-pix_fmt yuv420p``
    rawvideo input expects.
    """
    b, c, h, w = rgb.shape
    if c != 3 or h % 2 or w % 2:
        raise ValueError(f"expected (B, 3, H, W) with even H, W, got {tuple(rgb.shape)}")
    r, g, bl = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    y = (_Y[0] * r + _Y[1] * g + _Y[2] * bl).mul_(219.0).add_(16.0)
    small = F.avg_pool2d(rgb, 2)
    rs, gs, bs = small[:, 0:1], small[:, 1:2], small[:, 2:3]
    u = (_CB[0] * rs + _CB[1] * gs + _CB[2] * bs).mul_(224.0).add_(128.0)
    v = (_CR[0] * rs + _CR[1] * gs + _CR[2] * bs).mul_(224.0).add_(128.0)
    planes = [p.round_().clamp_(0, 255).to(torch.uint8).reshape(b, -1) for p in (y, u, v)]
    return torch.cat(planes, dim=1)


def yuv420p_to_rgb(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`rgb_to_yuv420p` (nearest chroma upsampling): ``(B, N)`` uint8 -> ``(B, 3, H, W)``.

    Used by tests and the preview to look at what the encoder was given.
    """
    b = frames.shape[0]
    n = height * width
    y = frames[:, :n].reshape(b, 1, height, width).float().sub(16.0).div(219.0)
    q = n // 4
    u = frames[:, n:n + q].reshape(b, 1, height // 2, width // 2).float().sub(128.0).div(224.0)
    v = frames[:, n + q:n + 2 * q].reshape(b, 1, height // 2, width // 2).float().sub(128.0).div(224.0)
    u = F.interpolate(u, scale_factor=2, mode="nearest")
    v = F.interpolate(v, scale_factor=2, mode="nearest")
    r = y + 1.402 * v
    g = y - 0.344136 * u - 0.714136 * v
    bl = y + 1.772 * u
    return torch.cat([r, g, bl], dim=1).clamp_(0, 1)
