"""The NoGAN critic: a spectral-norm patch discriminator, as DeOldify's ``custom_gan_critic``.

``PatchCritic(x)``: normalised RGB ``(B, 3, H, W)`` (H, W >= 64) -> logits ``(B, N)``, one per patch
(``N`` depends on the size), "real colour photo" positive. Layout (DeOldify's, with its defaults
``nf=256, n_blocks=3, p=0.15``; our compact recipe uses ``nf=64``):

``conv4x4/2 (3->nf) -> dropout/2 -> conv3x3 (nf->nf)`` then ``n_blocks`` times
``dropout -> conv3x3 (nf->nf) -> conv4x4/2 (nf->2nf)`` (self-attention after the first), then
``conv3x3 -> conv4x4 (->1, no bias)`` and flatten. Every conv is spectral-normalised and followed by
LeakyReLU(0.2), except the last. The spectral-norm convs and the self-attention are the shared
DeOldify-compatible layers of :mod:`colorizer_lib.models.layers`.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import SelfAttention, SpectralNormConv


def _sn_conv(ni: int, nf: int, ks: int, stride: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [SpectralNormConv(ni, nf, ks, stride=stride, padding=(ks - 1) // 2, bias=True)]
    if act:
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class PatchCritic(nn.Module):
    """Spectral-norm patch critic; see the module docstring."""

    def __init__(self, nf: int = 64, n_blocks: int = 3, p: float = 0.15, self_attention: bool = True):
        super().__init__()
        layers: list[nn.Module] = [_sn_conv(3, nf, 4, 2), nn.Dropout2d(p / 2), _sn_conv(nf, nf, 3)]
        for i in range(n_blocks):
            layers += [nn.Dropout2d(p), _sn_conv(nf, nf, 3), _sn_conv(nf, nf * 2, 4, 2)]
            if i == 0 and self_attention:
                layers.append(SelfAttention(nf * 2))
            nf *= 2
        layers += [_sn_conv(nf, nf, 3), SpectralNormConv(nf, 1, 4, padding=0, bias=False), nn.Flatten()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
