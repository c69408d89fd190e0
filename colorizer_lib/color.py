"""Colour maths as torch ops, so merging runs on the model's device (GPU for video).

Contract for every function: float tensors shaped ``(*, C, H, W)`` with values in ``[0, 1]``, RGB
channel order. Luma is ITU-R 601 (as PIL "L" and OpenCV). Chroma is OpenCV's 8-bit YUV without the
128 offset (DeOldify merged the original's Y with the prediction's U and V in this space):

    Y = 0.299 R + 0.587 G + 0.114 B,   U = 0.492 (B - Y),   V = 0.877 (R - Y)
    R = Y + 1.140 V,   G = Y - 0.395 U - 0.581 V,   B = Y + 2.032 U
"""

from __future__ import annotations

import torch

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_U_SCALE, _V_SCALE = 0.492, 0.877
_R_V, _G_U, _G_V, _B_U = 1.140, 0.395, 0.581, 2.032


def _channel_view(values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).reshape(-1, 1, 1)


def rgb_to_luma(rgb: torch.Tensor) -> torch.Tensor:
    """``(*, 3, H, W)`` RGB -> ``(*, 1, H, W)`` ITU-R 601 luma."""
    r, g, b = rgb.unbind(-3)
    return (LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b).unsqueeze(-3)


def rgb_to_chroma(rgb: torch.Tensor) -> torch.Tensor:
    """``(*, 3, H, W)`` RGB -> ``(*, 2, H, W)`` chroma (U, V), each roughly in ``[-0.44, 0.62]``."""
    y = rgb_to_luma(rgb)
    r, b = rgb[..., 0:1, :, :], rgb[..., 2:3, :, :]
    return torch.cat([_U_SCALE * (b - y), _V_SCALE * (r - y)], dim=-3)


def rgb_to_yuv(rgb: torch.Tensor) -> torch.Tensor:
    """``(*, 3, H, W)`` RGB -> ``(*, 3, H, W)`` Y, U, V."""
    return torch.cat([rgb_to_luma(rgb), rgb_to_chroma(rgb)], dim=-3)


def yuv_to_rgb(yuv: torch.Tensor) -> torch.Tensor:
    """``(*, 3, H, W)`` Y, U, V -> RGB (not clamped)."""
    y, u, v = yuv.unbind(-3)
    return torch.stack([y + _R_V * v, y - _G_U * u - _G_V * v, y + _B_U * u], dim=-3)


def compose_luma_chroma(luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """Merge ``(*, 1, H, W)`` luma with ``(*, 2, H, W)`` chroma into RGB clamped to ``[0, 1]``."""
    u, v = chroma[..., 0:1, :, :], chroma[..., 1:2, :, :]
    rgb = torch.cat([luma + _R_V * v, luma - _G_U * u - _G_V * v, luma + _B_U * u], dim=-3)
    return rgb.clamp_(0.0, 1.0)


def grey_to_rgb(luma: torch.Tensor) -> torch.Tensor:
    """``(*, 1, H, W)`` -> ``(*, 3, H, W)`` by replication (the models' grey input)."""
    return luma.expand(*luma.shape[:-3], 3, *luma.shape[-2:])


def normalize_imagenet(rgb: torch.Tensor) -> torch.Tensor:
    """``(x - mean) / std`` with ImageNet statistics, per channel."""
    return (rgb - _channel_view(IMAGENET_MEAN, rgb)) / _channel_view(IMAGENET_STD, rgb)


def denormalize_imagenet(x: torch.Tensor) -> torch.Tensor:
    """``x * std + mean``: the inverse of :func:`normalize_imagenet`."""
    return x * _channel_view(IMAGENET_STD, x) + _channel_view(IMAGENET_MEAN, x)


# --- CIELAB (sRGB, D65), for metrics and training losses -------------------------------------------

_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_WHITE_D65 = (0.950456, 1.0, 1.088754)


def _srgb_to_linear(c: torch.Tensor) -> torch.Tensor:
    return torch.where(c > 0.04045, ((c.clamp(min=0) + 0.055) / 1.055) ** 2.4, c / 12.92)


def _linear_to_srgb(c: torch.Tensor) -> torch.Tensor:
    return torch.where(c > 0.0031308, 1.055 * c.clamp(min=0) ** (1 / 2.4) - 0.055, 12.92 * c)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``(*, 3, H, W)`` in [0, 1] -> CIELAB (L in [0, 100], a and b roughly [-128, 127]), D65."""
    lin = _srgb_to_linear(rgb)
    m = torch.tensor(_RGB_TO_XYZ, dtype=rgb.dtype, device=rgb.device)
    xyz = torch.einsum("ij,...jhw->...ihw", m, lin) / _channel_view(_WHITE_D65, rgb)
    delta = 6 / 29
    f = torch.where(xyz > delta**3, xyz.clamp(min=1e-12) ** (1 / 3), xyz / (3 * delta**2) + 4 / 29)
    fx, fy, fz = f.unbind(-3)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIELAB (D65) -> sRGB ``(*, 3, H, W)``, clamped to [0, 1]."""
    l, a, b = lab.unbind(-3)
    fy = (l + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], dim=-3)
    delta = 6 / 29
    xyz = torch.where(f > delta, f**3, 3 * delta**2 * (f - 4 / 29)) * _channel_view(_WHITE_D65, lab)
    m_inv = torch.linalg.inv(torch.tensor(_RGB_TO_XYZ, dtype=torch.float64)).to(lab.dtype).to(lab.device)
    lin = torch.einsum("ij,...jhw->...ihw", m_inv, xyz)
    return _linear_to_srgb(lin).clamp(0.0, 1.0)
