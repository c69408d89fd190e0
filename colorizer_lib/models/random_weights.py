"""Generators with random weights that run like trained ones: for speed tests, ONNX export checks and tests.

Random DeOldify weights overflow to NaN; :func:`calibrated_random_model` estimates the BatchNorm
statistics on random grey inputs first, so activations stay finite and every kernel does the work a
trained model does (``colorize bench``, ``colorize export --random-weights``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..color import grey_to_rgb, normalize_imagenet
from .architectures import build_generator


@torch.no_grad()
def calibrated_random_model(arch: str, device: torch.device, *, seed: int = 0, size: int = 256) -> nn.Module:
    """``arch`` with random weights whose BatchNorm running statistics are estimated on random grey
    inputs (so activations stay finite: untouched random DeOldify weights overflow to NaN). Eval mode,
    not folded, float32, on ``device``."""
    torch.manual_seed(seed)
    model = build_generator(arch).to(device)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batches
    model.train()
    generator = torch.Generator(device="cpu").manual_seed(seed)
    for _ in range(2):
        grey = torch.rand(2, 1, size, size, generator=generator).to(device)
        model(normalize_imagenet(grey_to_rgb(grey)))
    return model.eval()
