"""Image and video quality metrics for colorization, as torch ops.

Every metric takes images as `(B, 3, H, W)` float RGB tensors in [0, 1] (a single `(3, H, W)`
tensor, a PIL image, or a uint8 `(H, W, 3)` / float `(H, W, 3)` numpy array are accepted too,
see `as_batch`) and, unless `reduction="none"`, returns a Python float: the mean over the
batch of the per-image values.

- `psnr`: peak signal-to-noise ratio in dB over all three channels (inf for identical images).
- `ssim`: structural similarity (Wang et al. 2004), Gaussian window 11, sigma 1.5,
  K1 = 0.01, K2 = 0.03, data range 1, computed per RGB channel on the valid region (no
  padding) and averaged over the channels and the pixels.
- `colorfulness`: Hasler & Suesstrunk (2003) on the 0-255 scale.
- `delta_colorfulness`: |colorfulness(pred) - colorfulness(target)| per image.
- `ciede2000`: mean CIEDE2000 colour difference (kL = kC = kH = 1) in CIELAB D65.
- `cdc`: colour-distribution consistency of a video (lower is steadier).
- `quality_report`: the image metrics above over many (pred, target) pairs.
- `grey_baseline`: the target's luma as a 3-channel grey image (zero chroma): the baseline
  a colorizer has to beat.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from colorizer_lib.color import lab_to_rgb, rgb_to_lab, rgb_to_luma
from colorizer_lib.errors import InputError

__all__ = [
    "as_batch",
    "psnr",
    "ssim",
    "colorfulness",
    "delta_colorfulness",
    "delta_e_ciede2000",
    "ciede2000",
    "cdc",
    "quality_report",
    "grey_baseline",
    "rgb_to_lab",
    "lab_to_rgb",
]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
CIEDE_BLOCK = 1 << 18  # pixels per float64 block in ciede2000
CDC_DILATIONS = (1, 2, 4)
CDC_BINS = 256


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------


def as_batch(image) -> torch.Tensor:
    """Any supported image form -> `(B, 3, H, W)` float tensor in [0, 1].

    Accepts: a float tensor `(B, 3, H, W)` or `(3, H, W)` (returned without copying; float16
    and bfloat16 are upcast to float32); a uint8 tensor of those shapes (divided by 255); a PIL
    image (converted to RGB); a numpy array `(H, W, 3)` uint8, or float in [0, 1].

    Raises:
        InputError: any other type, shape or dtype.
    """
    if isinstance(image, Image.Image):
        array = np.asarray(image.convert("RGB"))
        return torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float().div_(255)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"Expected a (H, W, 3) RGB array, got shape {image.shape}.")
        if image.dtype == np.uint8:
            return torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float().div_(255)
        if image.dtype.kind == "f":
            if image.size and (image.min() < 0 or image.max() > 1):
                raise InputError("Float image arrays must hold values in [0, 1]; divide 8-bit data by 255.")
            return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
        raise InputError(f"Expected a uint8 or float array, got {image.dtype}. Convert it to uint8 (0..255).")
    if isinstance(image, torch.Tensor):
        t = image
        if t.ndim == 3:
            t = t[None]
        if t.ndim != 4 or t.shape[1] != 3:
            raise InputError(
                f"Expected a (B, 3, H, W) or (3, H, W) RGB tensor, got shape {tuple(image.shape)}."
            )
        if t.dtype == torch.uint8:
            return t.float().div_(255)
        if not t.is_floating_point():
            raise InputError(f"Expected a float or uint8 tensor, got {t.dtype}.")
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        return t
    raise InputError(
        f"Cannot use a {type(image).__name__} as an image here. Pass a (B, 3, H, W) tensor in [0, 1], "
        "a PIL image or a (H, W, 3) uint8 numpy array."
    )


def _pair(pred, target) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = as_batch(pred), as_batch(target)
    if p.shape != t.shape:
        raise InputError(
            f"Prediction and target differ in shape: {tuple(p.shape)} vs {tuple(t.shape)}. "
            "Compare images of the same size (resize the prediction to the target first)."
        )
    dtype = torch.promote_types(p.dtype, t.dtype)
    return p.to(dtype), t.to(p.device, dtype)


def _reduce(values: torch.Tensor, reduction: str):
    if reduction == "mean":
        return float(values.mean())
    if reduction == "none":
        return values
    raise InputError(f"reduction must be 'mean' or 'none', got {reduction!r}.")


# --------------------------------------------------------------------------------------------
# PSNR, SSIM
# --------------------------------------------------------------------------------------------


def psnr(pred, target, *, reduction: str = "mean"):
    """Peak signal-to-noise ratio in dB, data range 1: 10 log10(1 / MSE) per image.

    The MSE is taken over all pixels of all three channels. Identical images give inf.
    Returns the batch mean (float) or, with reduction="none", a `(B,)` tensor.
    """
    p, t = _pair(pred, target)
    mse = (p - t).pow(2).flatten(1).mean(dim=1)
    values = 10 * torch.log10(1.0 / mse)  # mse == 0 -> +inf
    return _reduce(values, reduction)


def _gaussian_kernel(dtype: torch.dtype, device) -> torch.Tensor:
    coords = torch.arange(SSIM_WINDOW, dtype=torch.float64) - (SSIM_WINDOW - 1) / 2
    g = torch.exp(-(coords**2) / (2 * SSIM_SIGMA**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter, valid region only, on `(N, 1, H, W)`."""
    x = F.conv2d(x, g.view(1, 1, 1, -1))
    return F.conv2d(x, g.view(1, 1, -1, 1))


def ssim(pred, target, *, reduction: str = "mean"):
    """Structural similarity, averaged over the three RGB channels and the valid pixels.

    Gaussian window 11 x 11 with sigma 1.5 (no padding: the SSIM map is (H-10) x (W-10)),
    C1 = (0.01)^2, C2 = (0.03)^2 for a data range of 1, population (co)variances, as in
    Wang et al. (2004) and scikit-image's `gaussian_weights=True` mode applied per channel.
    Identical images give 1. Images must be at least 11 x 11.
    """
    p, t = _pair(pred, target)
    batch, channels, height, width = p.shape
    if height < SSIM_WINDOW or width < SSIM_WINDOW:
        raise InputError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {width}x{height}.")
    g = _gaussian_kernel(p.dtype, p.device)
    x = p.reshape(batch * channels, 1, height, width)
    y = t.reshape(batch * channels, 1, height, width)
    mu_x, mu_y = _blur(x, g), _blur(y, g)
    sigma_xx = _blur(x * x, g) - mu_x * mu_x
    sigma_yy = _blur(y * y, g) - mu_y * mu_y
    sigma_xy = _blur(x * y, g) - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (sigma_xx + sigma_yy + c2)
    )
    values = ssim_map.reshape(batch, -1).mean(dim=1)
    return _reduce(values, reduction)


# --------------------------------------------------------------------------------------------
# colourfulness
# --------------------------------------------------------------------------------------------


def _colorfulness_per_image(rgb: torch.Tensor) -> torch.Tensor:
    scaled = rgb.flatten(2) * 255  # (B, 3, N) on the 0-255 scale
    r, g, b = scaled.unbind(1)
    rg = r - g
    yb = 0.5 * (r + g) - b
    std = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    mean = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return std + 0.3 * mean


def colorfulness(img, *, reduction: str = "mean"):
    """Hasler & Suesstrunk (2003) colourfulness M on the 0-255 scale.

    With rg = R - G and yb = (R + G) / 2 - B over all pixels of an image:
    M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2), population std.
    Grey images give 0; 0-15 reads "not colourful", above ~109 "extremely colourful".
    """
    return _reduce(_colorfulness_per_image(as_batch(img)), reduction)


def delta_colorfulness(pred, target, *, reduction: str = "mean"):
    """|colorfulness(pred) - colorfulness(target)| per image (then averaged over the batch)."""
    p, t = _pair(pred, target)
    return _reduce((_colorfulness_per_image(p) - _colorfulness_per_image(t)).abs(), reduction)


# --------------------------------------------------------------------------------------------
# CIEDE2000
# --------------------------------------------------------------------------------------------


def delta_e_ciede2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """CIEDE2000 colour difference between CIELAB tensors `(*, 3, H, W)` -> `(*, H, W)`.

    The full formula of Sharma, Wu & Dalal (2005) with kL = kC = kH = 1, including the G
    correction of a*, the hue-difference and mean-hue cases for achromatic colours and hues
    across 0/360 degrees, and the rotation term R_T. Use float64 for reference accuracy.
    """
    if lab1.shape != lab2.shape or lab1.ndim < 3 or lab1.shape[-3] != 3:
        raise InputError(
            f"Expected two (*, 3, H, W) Lab tensors of one shape, got {tuple(lab1.shape)} and {tuple(lab2.shape)}."
        )
    l1, a1, b1 = lab1.unbind(-3)
    l2, a2, b2 = lab2.unbind(-3)
    pow25_7 = 25.0**7

    c_bar = (torch.hypot(a1, b1) + torch.hypot(a2, b2)) / 2
    c_bar7 = c_bar**7
    g = 0.5 * (1 - torch.sqrt(c_bar7 / (c_bar7 + pow25_7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = torch.hypot(a1p, b1), torch.hypot(a2p, b2)
    h1p = _hue_degrees(b1, a1p)
    h2p = _hue_degrees(b2, a2p)

    chroma_product = c1p * c2p
    achromatic = chroma_product == 0
    dh = h2p - h1p
    dh = torch.where(dh > 180, dh - 360, torch.where(dh < -180, dh + 360, dh))
    dh = torch.where(achromatic, torch.zeros_like(dh), dh)

    d_l = l2 - l1
    d_c = c2p - c1p
    d_h = 2 * torch.sqrt(chroma_product) * torch.sin(torch.deg2rad(dh) / 2)

    l_bar = (l1 + l2) / 2
    c_bar_p = (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_bar = torch.where(
        (h1p - h2p).abs() <= 180,
        h_sum / 2,
        torch.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2),
    )
    h_bar = torch.where(achromatic, h_sum, h_bar)

    t = (
        1
        - 0.17 * torch.cos(torch.deg2rad(h_bar - 30))
        + 0.24 * torch.cos(torch.deg2rad(2 * h_bar))
        + 0.32 * torch.cos(torch.deg2rad(3 * h_bar + 6))
        - 0.20 * torch.cos(torch.deg2rad(4 * h_bar - 63))
    )
    d_theta = 30 * torch.exp(-(((h_bar - 275) / 25) ** 2))
    c_bar_p7 = c_bar_p**7
    r_c = 2 * torch.sqrt(c_bar_p7 / (c_bar_p7 + pow25_7))
    l_term = (l_bar - 50) ** 2
    s_l = 1 + 0.015 * l_term / torch.sqrt(20 + l_term)
    s_c = 1 + 0.045 * c_bar_p
    s_h = 1 + 0.015 * c_bar_p * t
    r_t = -torch.sin(torch.deg2rad(2 * d_theta)) * r_c

    lightness, chroma, hue = d_l / s_l, d_c / s_c, d_h / s_h
    return torch.sqrt(lightness**2 + chroma**2 + hue**2 + r_t * chroma * hue)


def _hue_degrees(b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """atan2(b, a) in degrees in [0, 360); 0 where a = b = 0 (torch.atan2(0, 0) is 0)."""
    h = torch.rad2deg(torch.atan2(b, a))
    return torch.where(h < 0, h + 360, h)


def ciede2000(pred, target, *, reduction: str = "mean"):
    """Mean CIEDE2000 delta E between sRGB images (via CIELAB D65), per image over its pixels.

    Computed in float64, in blocks of pixels (bounded memory for large images). Identical
    images give 0; 1 is about a just-noticeable difference.
    """
    p, t = _pair(pred, target)
    batch = p.shape[0]
    p, t = p.flatten(2), t.flatten(2)  # (B, 3, N)
    totals = torch.zeros(batch, dtype=torch.float64, device=p.device)
    # float64 blocks of CIEDE_BLOCK pixels keep the ~30 temporaries of the formula small
    for start in range(0, p.shape[2], CIEDE_BLOCK):
        block_p = p[:, :, start:start + CIEDE_BLOCK].double().unsqueeze(2)  # (B, 3, 1, n)
        block_t = t[:, :, start:start + CIEDE_BLOCK].double().unsqueeze(2)
        totals += delta_e_ciede2000(rgb_to_lab(block_p), rgb_to_lab(block_t)).flatten(1).sum(dim=1)
    return _reduce(totals / p.shape[2], reduction)


# --------------------------------------------------------------------------------------------
# video: colour-distribution consistency
# --------------------------------------------------------------------------------------------


def _channel_histograms(frame: torch.Tensor) -> torch.Tensor:
    """(3, CDC_BINS) normalised histograms of the 8-bit levels of one (3, H, W) frame."""
    levels = (frame.clamp(0, 1) * (CDC_BINS - 1)).round_().to(torch.int64).flatten(1)
    offsets = torch.arange(3, device=levels.device).view(3, 1) * CDC_BINS
    counts = torch.bincount((levels + offsets).flatten(), minlength=3 * CDC_BINS).view(3, CDC_BINS)
    return counts.double() / levels.shape[1]


def _js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence (natural log, so in [0, ln 2]) along the last axis."""
    m = (p + q) / 2
    kl_pm = (torch.xlogy(p, p) - torch.xlogy(p, m)).sum(-1)
    kl_qm = (torch.xlogy(q, q) - torch.xlogy(q, m)).sum(-1)
    return 0.5 * (kl_pm + kl_qm)


def _iter_frames(frames) -> Iterable[torch.Tensor]:
    if isinstance(frames, torch.Tensor):
        batch = as_batch(frames)
        yield from batch
        return
    for frame in frames:
        for single in as_batch(frame):
            yield single


def cdc(frames, dilations: Sequence[int] = CDC_DILATIONS) -> float:
    """Colour-distribution consistency of a video (Liu et al. 2021's CDC); lower is steadier.

    Exactly: each frame's R, G and B values are quantised to 256 levels (round(x * 255)) and
    histogrammed (normalised to sum 1). For a dilation d, the score is the mean over t of the
    mean over the three channels of JS(hist_t, hist_{t+d}), the Jensen-Shannon divergence with
    natural logarithms (between 0 and ln 2 = 0.693). CDC is the mean of these scores over the
    dilations 1, 2 and 4; a dilation with no frame pair (fewer than d + 1 frames) is left out.

    Args:
        frames: a `(T, 3, H, W)` tensor in [0, 1], or an iterable of frames in any form that
            `as_batch` accepts (streamed: only the histograms are kept in memory).
        dilations: frame distances to compare.

    Raises:
        InputError: fewer than 2 frames, or frames of different sizes.
    """
    hists, size = [], None
    for frame in _iter_frames(frames):
        if size is not None and frame.shape != size:
            raise InputError(f"All frames must have one size; got {tuple(size)} and then {tuple(frame.shape)}.")
        size = frame.shape
        hists.append(_channel_histograms(frame))
    if len(hists) < 2:
        raise InputError(f"CDC compares frames over time and needs at least 2 frames, got {len(hists)}.")
    stacked = torch.stack(hists)  # (T, 3, bins)
    scores = []
    for d in dilations:
        if d < 1:
            raise InputError(f"CDC dilations must be positive frame distances, got {d}.")
        if len(hists) > d:
            scores.append(float(_js_divergence(stacked[:-d], stacked[d:]).mean()))
    return sum(scores) / len(scores)


# --------------------------------------------------------------------------------------------
# reports and baselines
# --------------------------------------------------------------------------------------------


def quality_report(preds, targets) -> dict[str, float]:
    """Mean image metrics over (prediction, target) pairs.

    Args:
        preds, targets: two `(B, 3, H, W)` tensors, or two equally long sequences of images in
            any form `as_batch` accepts (pairs may differ in size from one another).

    Returns:
        {"psnr", "ssim", "colorfulness" (of the predictions), "delta_colorfulness",
        "ciede2000", "count"}: means over all images (psnr is inf if any pair is identical).
    """
    if isinstance(preds, torch.Tensor) and isinstance(targets, torch.Tensor):
        pairs = [(preds, targets)]
    else:
        preds, targets = list(preds), list(targets)
        if len(preds) != len(targets):
            raise InputError(
                f"Got {len(preds)} predictions but {len(targets)} targets; pass one target per prediction."
            )
        pairs = list(zip(preds, targets))
    totals = {"psnr": [], "ssim": [], "colorfulness": [], "delta_colorfulness": [], "ciede2000": []}
    for pred, target in pairs:
        p, t = _pair(pred, target)
        totals["psnr"].append(psnr(p, t, reduction="none"))
        totals["ssim"].append(ssim(p, t, reduction="none"))
        totals["colorfulness"].append(colorfulness(p, reduction="none"))
        totals["delta_colorfulness"].append(delta_colorfulness(p, t, reduction="none"))
        totals["ciede2000"].append(ciede2000(p, t, reduction="none"))
    if not pairs:
        raise InputError("quality_report needs at least one (prediction, target) pair.")
    report = {name: float(torch.cat([v.double().cpu() for v in values]).mean()) for name, values in totals.items()}
    report["count"] = sum(v.numel() for v in totals["psnr"])
    return report


def grey_baseline(target) -> torch.Tensor:
    """The target's ITU-R 601 luma replicated to 3 channels: `(B, 3, H, W)`, zero chroma in YUV.

    The "no colour at all" answer a colorizer must beat in the quality benchmark.
    """
    luma = rgb_to_luma(as_batch(target))
    return luma.expand(-1, 3, -1, -1).contiguous()
