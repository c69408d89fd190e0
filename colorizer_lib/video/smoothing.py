"""Temporal smoothing of predicted chroma, reset at scene cuts.

The Colorizer predicts chroma ``(B, 2, S, S)`` independently per frame, so colours flicker. The
smoother keeps an exponential moving average of that low-resolution chroma over time:

    state_t = a_t * state_{t-1} + (1 - a_t) * chroma_t

``a_t`` is ``strength`` where the picture did not change and falls linearly to 0 where the mean
luma of a block (1/8 of the chroma size, so film grain averages out) changed by ``motion_threshold``
or more, so moving objects leave no colour trails. A scene cut (mean absolute luma change of a 32x32 thumbnail above ``cut_threshold``)
resets the state. ``strength=0`` switches smoothing off. Everything stays on the chroma's device
with no host synchronisation, so the GPU queue is never drained by the smoother.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputError

_THUMB = 32


class ChromaSmoother:
    """Stateful EMA over successive ``(B, 2, S, S)`` chroma batches of one video, fed in frame order."""

    def __init__(self, strength: float = 0.6, cut_threshold: float = 0.12, motion_threshold: float = 0.08):
        if not 0.0 <= float(strength) < 1.0:
            raise InputError(f"Smoothing strength must be in [0, 1) (0 switches it off), got {strength}.")
        if cut_threshold <= 0 or motion_threshold <= 0:
            raise InputError("cut_threshold and motion_threshold must be positive numbers.")
        self.strength = float(strength)
        self.cut_threshold = float(cut_threshold)
        self.motion_threshold = float(motion_threshold)
        self._cuts: torch.Tensor | None = None
        self.reset()

    @property
    def enabled(self) -> bool:
        return self.strength > 0

    @property
    def scene_cuts(self) -> int:
        """Scene cuts detected so far (the first frame of a video or of a reset is not a cut)."""
        return int(self._cuts.item()) if self._cuts is not None else 0

    def reset(self) -> None:
        """Forget the past: the next frame starts a new EMA (start of a video or of a resumed part)."""
        self._state: torch.Tensor | None = None
        self._luma_small: torch.Tensor | None = None
        self._thumb: torch.Tensor | None = None

    @torch.no_grad()
    def __call__(self, chroma: torch.Tensor, luma: torch.Tensor) -> torch.Tensor:
        """Smooth ``chroma`` (B, 2, S, S) given the same frames' luma (B, 1, H, W) in [0, 1]; same shape out."""
        if not self.enabled:
            return chroma
        chroma = chroma.float()
        small = F.interpolate(luma.float(), size=chroma.shape[-2:], mode="bilinear", antialias=True,
                              align_corners=False)
        thumbs = F.adaptive_avg_pool2d(small, _THUMB)
        if self._state is None:
            # No past: the first frame passes through unchanged and is not counted as a cut.
            prev_small, prev_thumb, state = small[:1], thumbs[:1], chroma[:1]
        else:
            prev_small, prev_thumb, state = self._luma_small, self._thumb, self._state
        prev_smalls = torch.cat([prev_small, small[:-1]])
        prev_thumbs = torch.cat([prev_thumb, thumbs[:-1]])
        cut = (thumbs - prev_thumbs).abs().mean(dim=(1, 2, 3)).gt(self.cut_threshold)  # (B,)
        # Motion is judged on blocks of ~1/8 of the chroma size, so film grain does not count as motion.
        blocks = max(1, min(small.shape[-2:]) // 8)
        change = F.adaptive_avg_pool2d(small - prev_smalls, blocks).abs()
        alpha = (1.0 - change / self.motion_threshold).clamp_(0.0, 1.0)
        alpha = F.interpolate(alpha, size=chroma.shape[-2:], mode="nearest")
        alpha = alpha.mul_(self.strength).masked_fill_(cut.view(-1, 1, 1, 1), 0.0)  # (B, 1, S, S)
        cuts = cut.sum()
        self._cuts = cuts if self._cuts is None else self._cuts + cuts
        out = torch.empty_like(chroma)
        for i in range(chroma.shape[0]):
            state = torch.lerp(chroma[i:i + 1], state, alpha[i:i + 1])
            out[i:i + 1] = state
        self._state = state.clone()
        self._luma_small = small[-1:].clone()
        self._thumb = thumbs[-1:].clone()
        return out
