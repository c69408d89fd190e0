"""Flicker measurement: colour distribution consistency (CDC), as used by video colorization challenges.

CDC is the Jensen-Shannon divergence between the per-channel colour histograms of frames t and
t + dt, averaged over channels, over t, and over dt in (1, 2, 4). Lower means steadier colour. It
needs no network and no reference video.
"""

from __future__ import annotations

import numpy as np


def _histograms(frames: np.ndarray, bins: int) -> np.ndarray:
    """``(T, H, W, C)`` uint8 -> ``(T, C, bins)`` normalised histograms."""
    t, _, _, c = frames.shape
    scaled = (frames.astype(np.int64) * bins) // 256  # bin index per value
    hist = np.zeros((t, c, bins), np.float64)
    for ch in range(c):
        offsets = (np.arange(t) * bins)[:, None]
        flat = (scaled[..., ch].reshape(t, -1) + offsets).ravel()
        hist[:, ch] = np.bincount(flat, minlength=t * bins).reshape(t, bins)
    return hist / hist.sum(axis=2, keepdims=True)


def _jsd(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (base 2, in [0, 1]) along the last axis."""
    m = 0.5 * (p + q)

    def kl(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(a > 0, a * np.log2(a / np.where(b > 0, b, 1)), 0.0)
        return terms.sum(axis=-1)

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def color_distribution_consistency(frames: np.ndarray, steps=(1, 2, 4), bins: int = 256) -> float:
    """CDC of ``frames`` (``(T, H, W, 3)`` uint8 RGB, T > max(steps)); lower means less colour flicker."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, C) uint8 frames, got {frames.shape} {frames.dtype}")
    if frames.shape[0] <= max(steps):
        raise ValueError(f"need more than {max(steps)} frames for steps {steps}, got {frames.shape[0]}")
    hist = _histograms(frames, bins)
    per_step = [float(_jsd(hist[:-dt], hist[dt:]).mean()) for dt in steps]
    return float(np.mean(per_step))
