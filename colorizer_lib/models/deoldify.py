"""DeOldify's generators, "deep" (Artistic) and "wide" (Stable, Video), in plain torch.

The layout reproduces fastai v1's ``DynamicUnetDeep`` / ``DynamicUnetWide`` as DeOldify built them
(``blur=True, self_attention=True, y_range=(-3, 3), last_cross=True, bottle=False,
norm_type=Spectral``), so that every state-dict key, shape and dtype equals the released files':

=========== ==============================================================================
``layers.0``  encoder (:class:`~colorizer_lib.models.resnet.ResNetBody`)
``layers.1``  BatchNorm on the encoder output; ``layers.2`` ReLU
``layers.3``  middle: two 3x3 spectral-norm convs ``ni -> 2 ni -> ni`` (conv, ReLU, BN)
``layers.4-7`` decoder blocks, deepest first (self-attention in ``layers.5`` only)
``layers.8``  weight-norm pixel-shuffle back to the input resolution
``layers.9``  concatenation with the network input ("last cross", no parameters)
``layers.10`` residual block of two 3x3 spectral-norm convs with bias
``layers.11`` 1x1 spectral-norm conv to 3 channels; ``layers.12`` sigmoid range (-3, 3)
=========== ==============================================================================

Input: ImageNet-normalised grey image ``(B, 3, S, S)``; output: ImageNet-normalised RGB
``(B, 3, S, S)`` in ``(-3, 3)``. Any ``S`` divisible by 2 works; when a decoder block's upsampled map
and its skip differ in size (odd sizes deep in the encoder, e.g. render factor 35) the upsampled
map is resized to the skip with nearest interpolation, exactly as the original did.
"""

from __future__ import annotations

from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import nn

from .architectures import register_architecture
from .layers import PixelShuffleUp, SigmoidRange, SpectralNormConv, sn_conv_block
from .resnet import RESNET34, RESNET101, ResNetBody, ResNetConfig


class _UnetBlock(nn.Module):
    """Upsample ``up_in`` (pixel shuffle), match the skip's size, concatenate ``BN(skip)``, ReLU, convs."""

    shuf: PixelShuffleUp
    bn: nn.BatchNorm2d
    relu: nn.ReLU

    def merge(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.shuf(up_in)
        if up.shape[-2:] != skip.shape[-2:]:
            up = F.interpolate(up, size=skip.shape[-2:], mode="nearest")
        return self.relu(torch.cat([up, self.bn(skip)], dim=1))


class UnetBlockDeep(_UnetBlock):
    """Deep block (Artistic): ``conv1`` (ni -> nf) and ``conv2`` (nf -> nf), nf scaled by ``nf_factor``."""

    def __init__(self, up_in_c: int, x_in_c: int, *, final_div: bool, self_attention: bool, nf_factor: float):
        super().__init__()
        self.shuf = PixelShuffleUp(up_in_c, up_in_c // 2)
        self.bn = nn.BatchNorm2d(x_in_c)
        ni = up_in_c // 2 + x_in_c
        nf = int((ni if final_div else ni // 2) * nf_factor)
        self.conv1 = sn_conv_block(ni, nf)
        self.conv2 = sn_conv_block(nf, nf, self_attention=self_attention)
        self.relu = nn.ReLU()
        self.out_channels = nf

    def forward(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(self.merge(up_in, skip)))


class UnetBlockWide(_UnetBlock):
    """Wide block (Stable, Video): one conv to ``n_out // 2`` channels."""

    def __init__(self, up_in_c: int, x_in_c: int, n_out: int, *, self_attention: bool):
        super().__init__()
        up_out = x_out = n_out // 2
        self.shuf = PixelShuffleUp(up_in_c, up_out)
        self.bn = nn.BatchNorm2d(x_in_c)
        self.conv = sn_conv_block(up_out + x_in_c, x_out, self_attention=self_attention)
        self.relu = nn.ReLU()
        self.out_channels = x_out

    def forward(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(self.merge(up_in, skip))


class ResBlock(nn.Module):
    """``x + ReLU(conv(ReLU(conv(x))))`` with 3x3 spectral-norm convs with bias (keys ``layers.{0,1}.0``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.layers = nn.ModuleList([
            sn_conv_block(channels, channels, bn=False),
            sn_conv_block(channels, channels, bn=False),
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers[1](self.layers[0](x))


class DeOldifyUnet(nn.Module):
    """A DeOldify generator: ResNet encoder + deep or wide U-Net decoder (see module docstring).

    Args:
        encoder: the ResNet configuration (e.g. ``RESNET34`` for Artistic, ``RESNET101`` for Stable/Video).
        kind: ``"deep"`` or ``"wide"``.
        nf_factor: decoder width factor (Artistic 1.5, Stable/Video 2). For "wide" the decoder width is
            ``512 * nf_factor`` and must be an integer (pass a ``Fraction`` for small test models).
    """

    def __init__(self, encoder: ResNetConfig, kind: str, nf_factor: float | Fraction):
        super().__init__()
        if kind not in ("deep", "wide"):
            raise ValueError(f"kind must be 'deep' or 'wide', got {kind!r}")
        self.kind, self.nf_factor = kind, nf_factor
        body = ResNetBody(encoder)
        chans = body.feature_channels  # relu, layer1, layer2, layer3, layer4
        ni = chans[-1]
        blocks: list[nn.Module] = []
        skip_channels = [chans[3], chans[2], chans[1], chans[0]]  # layer3, layer2, layer1, relu
        up_c = ni
        wide_nf = 512 * nf_factor
        for i, x_in_c in enumerate(skip_channels):
            not_final = i != len(skip_channels) - 1
            attention = i == len(skip_channels) - 3
            if kind == "deep":
                block = UnetBlockDeep(up_c, x_in_c, final_div=not_final, self_attention=attention, nf_factor=nf_factor)
            else:
                n_out = wide_nf if not_final else wide_nf // 2
                if int(n_out) != n_out:
                    raise ValueError(f"wide U-Net width 512 * nf_factor must be an integer, got {wide_nf}")
                block = UnetBlockWide(up_c, x_in_c, int(n_out), self_attention=attention)
            blocks.append(block)
            up_c = block.out_channels
        head_c = up_c + 3
        self.layers = nn.ModuleList([
            body,                                                    # 0
            nn.BatchNorm2d(ni),                                      # 1
            nn.ReLU(),                                               # 2
            nn.Sequential(sn_conv_block(ni, ni * 2), sn_conv_block(ni * 2, ni)),  # 3
            *blocks,                                                 # 4..7
            PixelShuffleUp(up_c, up_c, norm="weight"),               # 8
            nn.Identity(),                                           # 9: concatenation with the input
            ResBlock(head_c),                                        # 10
            sn_conv_block(head_c, 3, ks=1, bn=False, relu=False),    # 11
            SigmoidRange(-3.0, 3.0),                                 # 12
        ])

    @property
    def encoder(self) -> ResNetBody:
        return self.layers[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        encoder = self.layers[0]
        skips = []
        h = x
        for idx, layer in enumerate(encoder):
            h = layer(h)
            if idx in encoder.skip_indices:
                skips.append(h)
        h = self.layers[3](self.layers[2](self.layers[1](h)))
        for block, skip in zip(self.layers[4:8], reversed(skips)):
            h = block(h, skip)
        h = self.layers[8](h)
        if h.shape[-2:] != x.shape[-2:]:
            h = F.interpolate(h, size=x.shape[-2:], mode="nearest")
        h = torch.cat([h, x], dim=1)
        return self.layers[12](self.layers[11](self.layers[10](h)))


@register_architecture("deoldify-deep-resnet34")
def deoldify_artistic() -> DeOldifyUnet:
    """The Artistic generator: ResNet-34, deep decoder, nf_factor 1.5 (63.6 M parameters)."""
    return DeOldifyUnet(RESNET34, "deep", 1.5)


@register_architecture("deoldify-wide-resnet101")
def deoldify_wide() -> DeOldifyUnet:
    """The Stable/Video generator: ResNet-101, wide decoder, nf_factor 2 (218.2 M parameters)."""
    return DeOldifyUnet(RESNET101, "wide", 2)


__all__ = ["DeOldifyUnet", "UnetBlockDeep", "UnetBlockWide", "ResBlock", "SpectralNormConv",
           "deoldify_artistic", "deoldify_wide"]
