"""Validation metrics for generators, without fastai (``colorize bench-quality`` uses this module too).

Two measurements:

- :func:`evaluate_batches`: fast, in-training numbers on packed square validation images at the
  training size (model output composed with the input luma, exactly what the colorizer keeps).
- :func:`evaluate_paths`: the honest end-to-end number: each photo loaded at full resolution, made
  grey, colorized through :class:`colorizer_lib.colorizer.Colorizer` at a render factor, and compared
  with the original; the grey baseline (true luma, zero chroma) is measured on the same photos.

Both return means of PSNR, SSIM, colourfulness, delta-colourfulness and CIEDE2000 from
:mod:`colorizer_lib.metrics`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from .. import metrics
from ..color import grey_to_rgb, rgb_to_luma
from ..merge import compose_tensor
from ..models.families import DeOldifyFamily, ModelFamily

METRIC_KEYS = ("psnr", "ssim", "colorfulness", "delta_colorfulness", "ciede2000")


def _report(preds: list[torch.Tensor], targets: list[torch.Tensor]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.quality_report(preds, targets).items()}


@torch.no_grad()
def generator_predict(model: torch.nn.Module, rgb: torch.Tensor, size: int,
                      family: ModelFamily | None = None) -> torch.Tensor:
    """Colorize ``rgb (B, 3, H, W)`` in [0, 1] as the colorizer does, through the same family functions
    and the one merge (:mod:`colorizer_lib.merge`): the family's model input at ``size`` (DeOldify's by
    default, the convention of the generators trained here), model, chroma upsampled to ``H x W`` and
    merged with the full-resolution luma. Returns RGB in [0, 1] on ``rgb``'s device."""
    family = family or DeOldifyFamily()
    luma = rgb_to_luma(rgb)
    out = model(family.model_input(luma, size).contiguous())
    return compose_tensor(family, luma, family.chroma(out))


def grey_baseline(rgb: torch.Tensor) -> torch.Tensor:
    """The trivial baseline: the true luma with zero chroma (``(B, 3, H, W)`` in [0, 1])."""
    return grey_to_rgb(rgb_to_luma(rgb)).contiguous()


@torch.no_grad()
def evaluate_batches(model: torch.nn.Module, images: torch.Tensor, size: int, *, bs: int = 32,
                     device: torch.device | str | None = None, baseline: bool = False) -> dict[str, float]:
    """Metrics of ``model`` (eval mode) on packed ``uint8 (N, 3, P, P)`` validation images at ``size``.

    With ``baseline`` the grey baseline's numbers are returned under ``grey_<metric>`` keys too.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    preds, targets = [], []
    try:
        for i in range(0, len(images), bs):
            rgb = images[i:i + bs].to(device).float() / 255.0
            rgb = F.interpolate(rgb, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
            with torch.autocast(device.type, enabled=False):
                preds.append(generator_predict(model, rgb, size).float())
            targets.append(rgb)
    finally:
        model.train(was_training)
    out = _report(preds, targets)
    if baseline:
        out.update({f"grey_{k}": v for k, v in _report([grey_baseline(t) for t in targets], targets).items()})
    return out


def load_rgb(path: str | Path, max_side: int | None = None) -> torch.Tensor:
    """A photo as ``(1, 3, H, W)`` float RGB in [0, 1] (EXIF-rotated; shrunk to ``max_side`` if given)."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        if max_side and max(im.size) > max_side:
            im.thumbnail((max_side, max_side), Image.BICUBIC)
        arr = np.asarray(im, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1)[None].contiguous()


@torch.no_grad()
def evaluate_paths(colorizer, paths: Sequence[str | Path], render_factor: int | None = None,
                   max_side: int | None = None, progress: bool = False) -> dict[str, dict[str, float]]:
    """End-to-end metrics of a :class:`~colorizer_lib.colorizer.Colorizer` on colour photos.

    Each photo -> luma -> ``colorizer.predict_chroma`` + ``colorizer.compose`` -> compared with the photo.
    Returns ``{"model": {...}, "grey": {...}, "count": n}`` (means over photos). The metrics of each
    photo are computed as soon as it is colorized (so ``progress`` counts whole photos, and only one
    photo is held in memory at a time).
    """
    per_photo: dict[str, list[dict[str, float]]] = {"model": [], "grey": []}
    iterator = paths
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(paths, desc="bench-quality", unit="photo")
    for p in iterator:
        rgb = load_rgb(p, max_side)
        luma = rgb_to_luma(rgb)
        chroma = colorizer.predict_chroma(luma, render_factor)
        pred = colorizer.compose(luma, chroma).float().cpu()
        per_photo["model"].append(metrics.quality_report(pred, rgb))
        per_photo["grey"].append(metrics.quality_report(grey_baseline(rgb), rgb))
    if not paths:
        raise ValueError("evaluate_paths needs at least one photo.")
    means = {kind: {k: float(np.mean([r[k] for r in reports])) for k in METRIC_KEYS} | {"count": len(reports)}
             for kind, reports in per_photo.items()}
    return {**means, "count": len(paths)}
