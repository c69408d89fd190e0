"""ConvNeXt (Liu et al., 2022) as DDColor's encoder, in plain torch.

The layout follows the original ConvNeXt code that DDColor vendored, so state-dict keys read
``downsample_layers.{0..3}``, ``stages.{0..3}.{block}``, ``norm0..norm3`` and ``norm``:

* ``downsample_layers.0``: stem, 4x4 conv stride 4 then a channels-first LayerNorm;
  ``downsample_layers.{1,2,3}``: LayerNorm then 2x2 conv stride 2.
* each block: 7x7 depthwise conv, LayerNorm, Linear to 4x width, GELU, Linear back, times the
  per-channel layer scale ``gamma``, plus the residual (no stochastic depth at inference).
* ``norm{i}``: a channels-first LayerNorm applied to stage ``i``'s output; these four maps are
  the features DDColor's decoder reads (strides 4, 8, 16, 32).
* ``norm``: the classifier's final LayerNorm on the pooled feature. DDColor never uses its output,
  but the released checkpoints hold its weights, so it is kept for a strict load.

All LayerNorms use eps 1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

_EPS = 1e-6


@dataclass(frozen=True)
class ConvNeXtConfig:
    """Blocks per stage and channels per stage."""

    depths: tuple[int, int, int, int]
    dims: tuple[int, int, int, int]


CONVNEXT_T = ConvNeXtConfig((3, 3, 9, 3), (96, 192, 384, 768))
CONVNEXT_L = ConvNeXtConfig((3, 3, 27, 3), (192, 384, 768, 1536))


class ChannelsFirstLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel axis of a ``(B, C, H, W)`` tensor (parameters ``weight``, ``bias``)."""

    def __init__(self, channels: int):
        super().__init__(channels, eps=_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                            self.eps).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """``x + gamma * Linear(GELU(Linear(LayerNorm(dwconv7x7(x)))))``, the linears acting per pixel."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))  # registered first: the original's key order
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=_EPS)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).permute(0, 2, 3, 1)
        h = self.pwconv2(F.gelu(self.pwconv1(self.norm(h))))
        return x + (self.gamma * h).permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    """ConvNeXt feature extractor returning the four normalised stage outputs (see module docstring)."""

    def __init__(self, config: ConvNeXtConfig, in_chans: int = 3):
        super().__init__()
        dims = config.dims
        self.config = config
        self.downsample_layers = nn.ModuleList([
            nn.Sequential(nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4), ChannelsFirstLayerNorm(dims[0]))
        ])
        for i in range(3):
            self.downsample_layers.append(
                nn.Sequential(ChannelsFirstLayerNorm(dims[i]), nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2))
            )
        self.stages = nn.ModuleList(
            [nn.Sequential(*[ConvNeXtBlock(dim) for _ in range(depth)]) for depth, dim in zip(config.depths, dims)]
        )
        for i, dim in enumerate(dims):
            self.add_module(f"norm{i}", ChannelsFirstLayerNorm(dim))
        self.norm = nn.LayerNorm(dims[-1], eps=_EPS)  # unused at inference; kept for the checkpoint layout

    @property
    def feature_channels(self) -> tuple[int, ...]:
        return self.config.dims

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(B, in_chans, H, W)`` -> ``[norm0(s0), norm1(s1), norm2(s2), norm3(s3)]`` at strides 4..32."""
        features = []
        for i in range(4):
            x = self.stages[i](self.downsample_layers[i](x))
            features.append(getattr(self, f"norm{i}")(x))
        return features


__all__ = ["CONVNEXT_L", "CONVNEXT_T", "ChannelsFirstLayerNorm", "ConvNeXt", "ConvNeXtBlock", "ConvNeXtConfig"]
