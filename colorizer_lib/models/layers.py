"""Building blocks with DeOldify-compatible parameter names.

DeOldify (fastai v1) wrapped its convolutions in torch's hook-based ``spectral_norm`` and
``weight_norm``. Those store ``weight_orig``/``weight_u``/``weight_v`` and ``weight_g``/``weight_v``
instead of ``weight``. The modules here store exactly the same tensors under the same names, compute
the same function, and can be folded into a plain ``nn.Conv2d``/``nn.Conv1d`` for inference
(:func:`colorizer_lib.models.fold.fold_for_inference`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_EPS = 1e-12  # torch.nn.utils.spectral_norm's default eps


# Random initialisation is skipped on the meta device (where tensors hold no values): there
# ``normal_``, ``randn`` and ``normalize`` run through torch's Python decompositions, whose first use
# imports about 900 modules (1-4 s), and loading weights builds the generators on the meta device.


def _init_kaiming_normal(weight: torch.Tensor) -> None:
    """``nn.init.kaiming_normal_``, except on the meta device."""
    if not weight.is_meta:
        nn.init.kaiming_normal_(weight)


def _random_unit_vector(n: int) -> torch.Tensor:
    """A random unit vector of length ``n`` (an uninitialised one on the meta device)."""
    v = torch.empty(n)
    return v if v.is_meta else F.normalize(torch.randn(n), dim=0, eps=_EPS)


class SpectralNormConv(nn.Module):
    """A convolution whose weight is divided by its largest singular value.

    Same state-dict layout as ``torch.nn.utils.spectral_norm(nn.ConvNd(...))``: ``bias`` (optional),
    ``weight_orig`` (parameter), ``weight_u`` (out) and ``weight_v`` (in * prod(kernel)) buffers.
    In training mode one power iteration per forward updates ``u`` and ``v`` (as torch does); in eval
    mode the stored vectors are used unchanged, so ``sigma = u . (W v)``.

    Args:
        dims: 1 for Conv1d, 2 for Conv2d.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, *, stride: int = 1,
                 padding: int = 0, bias: bool = False, dims: int = 2):
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 or 2, got {dims}")
        self.dims, self.stride, self.padding = dims, stride, padding
        kernel = (kernel_size,) * dims
        # Registration order gives the state-dict order of the original: bias, weight_orig, u, v.
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_orig = nn.Parameter(torch.empty(out_channels, in_channels, *kernel))
        _init_kaiming_normal(self.weight_orig)
        fan_in = in_channels * kernel_size**dims
        self.register_buffer("weight_u", _random_unit_vector(out_channels))
        self.register_buffer("weight_v", _random_unit_vector(fan_in))

    def normalized_weight(self) -> torch.Tensor:
        """The effective weight ``weight_orig / sigma`` (power iteration first when training)."""
        w = self.weight_orig
        w_mat = w.reshape(w.shape[0], -1)
        u, v = self.weight_u, self.weight_v
        if self.training:
            with torch.no_grad():
                v = F.normalize(torch.mv(w_mat.t(), u), dim=0, eps=_EPS, out=self.weight_v)
                u = F.normalize(torch.mv(w_mat, v), dim=0, eps=_EPS, out=self.weight_u)
            u, v = u.clone(memory_format=torch.contiguous_format), v.clone(memory_format=torch.contiguous_format)
        sigma = torch.dot(u, torch.mv(w_mat, v))
        return w / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = F.conv2d if self.dims == 2 else F.conv1d
        return conv(x, self.normalized_weight(), self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        out_c, in_c, *k = self.weight_orig.shape
        return f"{in_c}, {out_c}, kernel_size={tuple(k)}, stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"


class WeightNormConv2d(nn.Module):
    """A Conv2d with weight normalisation, ``W = g * v / ||v||`` (norm per output channel).

    Same state-dict layout as ``torch.nn.utils.weight_norm(nn.Conv2d(...))``: ``bias``,
    ``weight_g`` (out, 1, 1, 1) and ``weight_v`` (out, in, k, k).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, *, padding: int = 0, bias: bool = True):
        super().__init__()
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        v = torch.empty(out_channels, in_channels, kernel_size, kernel_size)
        _init_kaiming_normal(v)
        g = torch.empty(out_channels, 1, 1, 1) if v.is_meta else v.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)
        self.weight_g = nn.Parameter(g)
        self.weight_v = nn.Parameter(v)

    def normalized_weight(self) -> torch.Tensor:
        v = self.weight_v
        return v * (self.weight_g / v.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.normalized_weight(), self.bias, 1, self.padding)


def sn_conv_block(ni: int, nf: int, ks: int = 3, *, bn: bool = True, relu: bool = True, bias: bool | None = None,
                  self_attention: bool = False) -> nn.Sequential:
    """fastai v1 ``custom_conv_layer`` with spectral norm: ``[0] SN conv, [1] ReLU, [2] BN, [3] SelfAttention``.

    The conv has a bias only when no BatchNorm follows (unless ``bias`` says otherwise).
    """
    bias = (not bn) if bias is None else bias
    layers: list[nn.Module] = [SpectralNormConv(ni, nf, ks, padding=ks // 2, bias=bias)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    if bn:
        layers.append(nn.BatchNorm2d(nf))
    if self_attention:
        layers.append(SelfAttention(nf))
    return nn.Sequential(*layers)


class SelfAttention(nn.Module):
    """SAGAN self-attention as in fastai v1: ``x + gamma * (value @ softmax(query^T key, dim=1))``.

    query and key project to ``C // 8`` channels, value keeps ``C``; all three are spectral-norm
    Conv1d with kernel 1 and no bias. ``gamma`` starts at 0 (attention off) and is learned.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))
        self.query = SpectralNormConv(channels, channels // 8, 1, dims=1)
        self.key = SpectralNormConv(channels, channels // 8, 1, dims=1)
        self.value = SpectralNormConv(channels, channels, 1, dims=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        flat = x.reshape(b, c, h * w)
        f, g, v = self.query(flat), self.key(flat), self.value(flat)
        # Softmax over the first N index (dim=1), exactly as the original.
        beta = torch.softmax(torch.bmm(f.transpose(1, 2), g), dim=1)
        out = self.gamma * torch.bmm(v, beta) + flat
        return out.reshape(b, c, h, w)


class PixelShuffleUp(nn.Module):
    """DeOldify's upsampler: 1x1 conv to ``scale**2`` x channels, ReLU, PixelShuffle, then the blur.

    ``conv`` is a Sequential: ``[0]`` the conv (spectral norm for the decoder blocks, weight norm for
    DeOldify's final ``layers.8``) and, when ``bn``, ``[1]`` a BatchNorm (the conv then has no bias).
    The "blur" is ``ReplicationPad2d((1, 0, 1, 0))`` followed by ``AvgPool2d(2, stride=1)``; the
    original's ``blur`` flag never switched it off (``if self.blur`` tested a module, always true).
    DDColor uses the same layer with ``scale=4, bn=False`` (spectral-norm conv with bias) at its end.
    """

    def __init__(self, ni: int, nf: int, *, norm: str = "spectral", scale: int = 2, bn: bool = True):
        super().__init__()
        out = nf * scale**2
        if norm == "spectral":
            layers: list[nn.Module] = [SpectralNormConv(ni, out, 1, bias=not bn)]
            if bn:
                layers.append(nn.BatchNorm2d(out))
            self.conv = nn.Sequential(*layers)
        elif norm == "weight":
            self.conv = nn.Sequential(WeightNormConv2d(ni, out, 1, bias=True))
        else:
            raise ValueError(f"norm must be 'spectral' or 'weight', got {norm!r}")
        self.shuf = nn.PixelShuffle(scale)
        self.pad = nn.ReplicationPad2d((1, 0, 1, 0))
        self.blur = nn.AvgPool2d(2, stride=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(self.pad(self.shuf(self.relu(self.conv(x)))))


class SigmoidRange(nn.Module):
    """``sigmoid(x) * (high - low) + low``."""

    def __init__(self, low: float, high: float):
        super().__init__()
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * (self.high - self.low) + self.low
