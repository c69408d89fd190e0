"""OpenCV's float sRGB <-> CIELAB conversions, reproduced as torch ops (no OpenCV needed).

DDColor's original pipeline converts with ``cv2.cvtColor`` on float32 images, and OpenCV does not
use the textbook formulas there (those are :func:`colorizer_lib.color.rgb_to_lab` /
:func:`~colorizer_lib.color.lab_to_rgb`):

* ``RGB2Lab`` (float, sRGB, D65) reads a 33 x 33 x 33 table of 16-bit fixed-point Lab values
  (scale 2**14) with integer trilinear interpolation: each channel is clipped to [0, 1], rounded
  to 1/16384, and only 4 bits of the position inside a table cell are used, so the input is in
  effect quantised to steps of 1/512. Against the exact formulas this is off by up to ~0.2 in L and
  ~0.5 in a, b, and grey input gets |a|, |b| up to ~0.13.
* ``Lab2RGB`` (float) uses the CIE formulas in float32 with OpenCV's constants (903.3, 7.787,
  its rounded XYZ -> sRGB matrix), clips linear RGB to [0, 1] and applies the sRGB transfer curve
  through a cubic spline over 1024 intervals. Its vector path uses fused multiply-adds; they are
  reproduced here by computing those steps in float64 and rounding once to float32.

The tables are built here the way OpenCV builds them (IEEE float32 arithmetic), so the results
match ``cv2.cvtColor`` bit for bit or within one float32 rounding; the tests pin this against the
stored output of the original DDColor pipeline. Contract for both functions: float tensors
``(*, 3, H, W)``; RGB channel order; sRGB values in [0, 1]; Lab with L in [0, 100].
"""

from __future__ import annotations

import functools

import numpy as np
import torch

# OpenCV's sRGB -> XYZ (D65) matrix, its rounded inverse and the D65 white point (color_lab.cpp).
_RGB2XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
_XYZ2RGB = ((3.240479, -1.53715, -0.498535), (-0.969256, 1.875991, 0.041556), (0.055648, -0.204043, 1.057311))
_D65 = (0.950456, 1.0, 1.088754)

_LAB_BASE = 1 << 14          # fixed-point scale of the table and of the rounded input
_LUT_DIM = 33                # table points per axis (32 cells)
_CELL_SHIFT = 9              # 14 - 5: input bits above which select the cell
_FRAC_SHIFT, _FRAC_MASK = 5, 15   # 4 bits of position inside the cell
_GAMMA_TAB_SIZE = 1024

_f32 = np.float32


def _gamma(x: float) -> float:
    """sRGB decoding (OpenCV's ``applyGamma``), float64."""
    return x / (323 / 25) if x <= 809 / 20000 else ((x + 11 / 200) / (1 + 11 / 200)) ** (12 / 5)


def _inv_gamma(x: float) -> float:
    """sRGB encoding (OpenCV's ``applyInvGamma``), float64."""
    return x * (323 / 25) if x <= 7827 / 2500000 else x ** (1 / (12 / 5)) * (1 + 11 / 200) - 11 / 200


@functools.lru_cache(maxsize=1)
def _rgb2lab_table() -> torch.Tensor:
    """``(33, 33, 33, 3)`` int32 table indexed ``[r, g, b]``: round(2**14 L / 100), round(2**14 (a + 128) / 256), same for b."""
    grid = (np.arange(_LUT_DIM, dtype=_f32) / _f32(_LUT_DIM - 1)).astype(np.float64)
    lin = np.array([_gamma(float(v)) for v in grid]).astype(_f32)
    r, g, b = np.meshgrid(lin, lin, lin, indexing="ij")
    scaled = [[_f32(_RGB2XYZ[i][j] / _D65[i]) for j in range(3)] for i in range(3)]
    # OpenCV sums blue, green, red in that order, each product and sum rounded to float32.
    x, y, z = ((b * s[2] + g * s[1]) + r * s[0] for s in scaled)
    thresh, lscale, lbias = _f32(216) / _f32(24389), _f32(841) / _f32(108), _f32(16) / _f32(116)

    def f(t: np.ndarray) -> np.ndarray:
        fused = (t.astype(np.float64) * np.float64(lscale) + np.float64(lbias)).astype(_f32)
        return np.where(t > thresh, _softfloat_cbrt(t), fused)

    fx, fy, fz = f(x), f(y), f(z)
    big_l = np.where(y > thresh, _f32(116) * fy - _f32(16), (_f32(24389) / _f32(27)) * y)
    a = _f32(500) * (fx - fy)
    bb = _f32(200) * (fy - fz)
    base = _f32(_LAB_BASE)
    table = np.stack([np.rint(base * big_l / _f32(100)), np.rint(base * (a + _f32(128)) / _f32(256)),
                      np.rint(base * (bb + _f32(128)) / _f32(256))], axis=-1)
    return torch.from_numpy(table.astype(np.int32))


_CBRT_NUM = (0x4046a09e6653ba70, 0x406808f46c6116e0, 0x405dca97439cae14, 0x402add70d2827500, 0x3fc4f15f83f55d2d)
_CBRT_DEN = (0x402d9e20660edb21, 0x4062ff15c0285815, 0x406510d06a8112ce, 0x4040fecbc9e2c375, 0x3ff0000000000000)


def _softfloat_cbrt(x: np.ndarray) -> np.ndarray:
    """OpenCV softfloat's cube root of positive normal float32 values (Turkowski's rational
    approximation in float64 on the mantissa scaled to [1/8, 1), the result's mantissa truncated)."""
    bits = x.astype(_f32).view(np.uint32).astype(np.int64)
    ex = ((bits >> 23) & 0xFF) - 127
    shx = np.fmod(ex, 3)
    shx = np.where(shx >= 0, shx - 3, shx)
    ex = (ex - shx) // 3 - 1
    fr = (((shx + 1023) << 52) | ((bits & 0x7FFFFF) << 29)).astype(np.uint64).view(np.float64)
    num, den = (np.array(c, dtype=np.uint64).view(np.float64) for c in (_CBRT_NUM, _CBRT_DEN))
    top = (((num[0] * fr + num[1]) * fr + num[2]) * fr + num[3]) * fr + num[4]
    bottom = (((den[0] * fr + den[1]) * fr + den[2]) * fr + den[3]) * fr + den[4]
    mantissa = ((top / bottom).view(np.uint64) & np.uint64((1 << 52) - 1)) >> np.uint64(29)
    out = ((ex + 127).astype(np.uint64) << np.uint64(23)) | mantissa
    return out.astype(np.uint32).view(_f32)


def _spline(values: np.ndarray) -> np.ndarray:
    """OpenCV's ``splineBuild`` in float32: ``(n, 4)`` cubic coefficients for n intervals of ``values`` (n + 1 points)."""
    n = len(values) - 1
    f = values.astype(_f32)
    tab = np.zeros((n, 4), dtype=_f32)
    l_prev, c_prev = _f32(0), _f32(0)
    ls, cs = [l_prev], [c_prev]
    for i in range(1, n):
        t = (f[i + 1] - f[i] * _f32(2) + f[i - 1]) * _f32(3)
        l_i = _f32(1) / (_f32(4) - ls[i - 1])
        ls.append(l_i)
        cs.append((t - cs[i - 1]) * l_i)
    cn = _f32(0)
    for i in range(n - 1, -1, -1):
        c = cs[i] - ls[i] * cn
        bcoef = f[i + 1] - f[i] - (cn + c * _f32(2)) / _f32(3)
        d = (cn - c) / _f32(3)
        tab[i] = (f[i], bcoef, c, d)
        cn = c
    return tab


@functools.lru_cache(maxsize=1)
def _inv_gamma_spline() -> torch.Tensor:
    xs = (np.arange(_GAMMA_TAB_SIZE + 1, dtype=_f32) * (_f32(1) / _f32(_GAMMA_TAB_SIZE))).astype(np.float64)
    return torch.from_numpy(_spline(np.array([_inv_gamma(float(v)) for v in xs]).astype(_f32)))


def _fma(a: torch.Tensor | float, b: torch.Tensor | float, c: torch.Tensor | float) -> torch.Tensor:
    """OpenCV's ``v_fma(a, b, c)`` as x86-64 wheels compile it (SSE baseline, no FMA instruction):
    ``a * b`` rounded to float32, then ``+ c`` rounded again (measured: bit-exact with cv2 5.1)."""
    return a * b + c


def rgb_to_lab_opencv(rgb: torch.Tensor, *, l_only: bool = False) -> torch.Tensor:
    """``cv2.cvtColor(x, COLOR_RGB2Lab)`` for float32 sRGB: ``(*, 3, H, W)`` -> Lab ``(*, 3, H, W)``.

    With ``l_only`` returns just L, ``(*, 1, H, W)`` (a third of the work). Runs on ``rgb``'s
    device; the result is float32.
    """
    if rgb.shape[-3] != 3:
        raise ValueError(f"expected RGB with 3 channels in dimension -3, got shape {tuple(rgb.shape)}")
    channels = 1 if l_only else 3
    table = _rgb2lab_table().to(rgb.device)
    planes = [table[..., c].contiguous() for c in range(channels)]
    q = torch.round(rgb.float().clamp(0.0, 1.0) * _LAB_BASE).to(torch.int32)
    pos = q >> _FRAC_SHIFT                  # position in 1/16 of a cell, 0..512
    cell = (pos >> 4).clamp(max=_LUT_DIM - 2)  # 1.0 is read as cell 31 at 16/16 (same sum as cell 32 at 0/16)
    frac = pos - (cell << 4)                # 0..16 (OpenCV's ``& 15`` except for exactly 1.0)
    r, g, b = cell.unbind(-3)
    base = ((r * _LUT_DIM + g) * _LUT_DIM + b).long()  # flat index of the cell's first corner
    fr, fg, fb = frac.unbind(-3)
    acc = [None] * channels
    for dr, wr in ((0, 16 - fr), (1, fr)):
        for dg, wg in ((0, 16 - fg), (1, fg)):
            w_rg = wr * wg
            for db, wb in ((0, 16 - fb), (1, fb)):
                idx = base + ((dr * _LUT_DIM + dg) * _LUT_DIM + db)
                w = w_rg * wb
                for c in range(channels):
                    term = torch.take(planes[c], idx) * w
                    acc[c] = term if acc[c] is None else acc[c].add_(term)
    fixed = (torch.stack(acc, dim=-3) + (1 << 11)) >> 12  # (*, C, H, W) integers on the 2**14 scale
    l_val = fixed[..., :1, :, :].float() * (100.0 / _LAB_BASE)  # 100 / 2**14 is exact in float32
    if l_only:
        return l_val
    ab = fixed[..., 1:, :, :].float() * (256.0 / _LAB_BASE) - 128.0
    return torch.cat([l_val, ab], dim=-3)


def lab_to_rgb_opencv(lab: torch.Tensor) -> torch.Tensor:
    """``cv2.cvtColor(x, COLOR_Lab2RGB)`` for float32: Lab ``(*, 3, H, W)`` -> sRGB in [0, 1], float32."""
    if lab.shape[-3] != 3:
        raise ValueError(f"expected Lab with 3 channels in dimension -3, got shape {tuple(lab.shape)}")
    li, ai, bi = lab.float().unbind(-3)
    low = li <= 8.0
    y_lo = li * _C["inv903"]
    fy_lo = _fma(_C["7787"], y_lo, _C["16/116"])
    fy_hi = (li + 16.0) * _C["inv116"]
    y = torch.where(low, y_lo, fy_hi * fy_hi * fy_hi)
    fy = torch.where(low, fy_lo, fy_hi)
    fxz = [_fma(ai, _C["inv500"], fy), _fma(bi, _C["-inv200"], fy)]
    x, z = (torch.where(f <= _C["6/29"], (f - _C["16/116"]) * _C["inv7787"], f * f * f) for f in fxz)
    spline = _inv_gamma_spline().to(lab.device)
    channels = []
    for row in range(3):
        c0, c1, c2 = (float(_f32(_XYZ2RGB[row][j] * _D65[j])) for j in range(3))
        lin = _fma(c0, x, _fma(c1, y, c2 * z)).clamp(0.0, 1.0)
        channels.append(_spline_eval(lin * float(_GAMMA_TAB_SIZE), spline))
    return torch.stack(channels, dim=-3)


# float32 constants of OpenCV's Lab2RGBfloat, as Python floats (exactly representable in float32)
_C = {
    "inv903": float(_f32(1) / _f32(903.3)), "7787": float(_f32(7.787)), "16/116": float(_f32(16) / _f32(116)),
    "inv116": float(_f32(1) / _f32(116)), "inv500": float(_f32(1) / _f32(500)), "-inv200": float(_f32(-1) / _f32(200)),
    "6/29": float(_f32(6) / _f32(29)), "inv7787": float(_f32(1) / _f32(7.787)),
}


def _spline_eval(x: torch.Tensor, tab: torch.Tensor) -> torch.Tensor:
    idx = x.to(torch.int32).clamp(0, tab.shape[0] - 1)
    t = x - idx.float()
    coef = tab[idx]
    return _fma(_fma(_fma(coef[..., 3], t, coef[..., 2]), t, coef[..., 1]), t, coef[..., 0])


__all__ = ["lab_to_rgb_opencv", "rgb_to_lab_opencv"]
