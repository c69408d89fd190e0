"""Inference-time simplification of a loaded generator.

* Spectral and weight normalisation are folded into plain ``nn.Conv2d``/``nn.Conv1d`` weights: in
  eval mode they only rescale a fixed weight, so computing that weight once gives the same function
  without the per-forward normalisation.
* A BatchNorm that directly follows a convolution (the ResNet encoder, the decoder's pixel-shuffle
  convs) is fused into that convolution. The decoder's other BatchNorms follow a ReLU and stay.

The result computes the same function as the input model (up to float rounding; tested) but can no
longer be trained or saved in DeOldify's layout, so keep the original for that.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .layers import SpectralNormConv, WeightNormConv2d


@torch.no_grad()
def _plain_conv(module: SpectralNormConv | WeightNormConv2d) -> nn.Module:
    weight = module.normalized_weight().detach()
    out_c, in_c, *kernel = weight.shape
    # Built on the meta device and given the tensors: no random initialisation or copy (load time).
    if isinstance(module, SpectralNormConv) and module.dims == 1:
        conv: nn.Module = nn.Conv1d(in_c, out_c, kernel[0], module.stride, module.padding, bias=module.bias is not None,
                                    device="meta")
    else:
        stride = getattr(module, "stride", 1)
        conv = nn.Conv2d(in_c, out_c, tuple(kernel), stride, module.padding, bias=module.bias is not None,
                         device="meta")
    conv.weight = nn.Parameter(weight, requires_grad=False)
    if module.bias is not None:
        conv.bias = nn.Parameter(module.bias.detach().to(weight.dtype), requires_grad=False)
    return conv


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Return a conv equal to ``bn(conv(x))`` for a BatchNorm in eval mode."""
    # A copy of the module (its class and settings) without copies of the tensors that are replaced.
    fused = copy.deepcopy(conv, memo={id(conv.weight): None, id(conv.bias): None})
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.weight = nn.Parameter(conv.weight * scale.reshape(-1, *([1] * (conv.weight.dim() - 1))),
                                requires_grad=conv.weight.requires_grad)
    fused.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias, requires_grad=conv.weight.requires_grad)
    return fused


def fold_norms(model: nn.Module) -> nn.Module:
    """Replace every spectral/weight-norm conv of ``model`` (in place) by a plain conv; returns ``model``."""
    for name, child in list(model.named_children()):
        if isinstance(child, (SpectralNormConv, WeightNormConv2d)):
            setattr(model, name, _plain_conv(child))
        else:
            fold_norms(child)
    return model


_ATTR_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))


def fuse_batchnorms(model: nn.Module) -> nn.Module:
    """Fuse each BatchNorm that directly follows a plain conv into it (in place); returns ``model``.

    Handles torchvision-style blocks (``conv1``/``bn1``... attributes) and Sequentials whose
    element ``i`` is a conv and ``i + 1`` a BatchNorm.
    """
    for module in model.modules():
        for conv_name, bn_name in _ATTR_PAIRS:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, conv_name, fuse_conv_bn(conv, bn))
                setattr(module, bn_name, nn.Identity())
        if isinstance(module, nn.Sequential):
            children = list(module)
            for i in range(len(children) - 1):
                if isinstance(children[i], nn.Conv2d) and isinstance(children[i + 1], nn.BatchNorm2d):
                    module[i] = fuse_conv_bn(children[i], children[i + 1])
                    module[i + 1] = nn.Identity()
    return model


def fold_for_inference(model: nn.Module, *, fuse_bn: bool = True, inplace: bool = False) -> nn.Module:
    """An eval-mode ``model`` with norms folded (and conv+BN pairs fused when ``fuse_bn``).

    Works on a copy unless ``inplace`` (saves memory for the 218 M-parameter models when the caller
    no longer needs the original).
    """
    folded = (model if inplace else copy.deepcopy(model)).eval()
    fold_norms(folded)
    if fuse_bn:
        fuse_batchnorms(folded)
    for p in folded.parameters():
        p.requires_grad_(False)
    return folded
