"""fastai callbacks of the NoGAN phases: progress checkpoints (resume), validation metrics, sample grids.

- :class:`EpochCheckpoint` saves ``model + optimizer`` after every epoch and records the position
  ``(stage, epoch)`` in the phase's ``state.json``, so an interrupted phase resumes where it stopped.
- :class:`ValidationMetrics` measures the generator on the validation split after each epoch
  (:func:`colorizer_lib.training.evaluate.evaluate_batches`) and appends to ``metrics.jsonl``.
- :class:`GanCheckpoints` (GAN phase) saves generator and critic every ``every`` iterations with a
  sample grid of fixed validation photos and their metrics, and stops after ``total`` iterations.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from fastai.callback.core import Callback, CancelFitException
from PIL import Image

from ..color import grey_to_rgb, rgb_to_luma
from .evaluate import evaluate_batches, generator_predict


def read_state(path: Path) -> dict:
    """The phase's progress record (``{}`` when the phase never ran)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def write_state(path: Path, state: dict) -> None:
    """Write the progress record atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(path)


def append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")


@torch.no_grad()
def save_sample_grid(model: torch.nn.Module, images: torch.Tensor, size: int, path: str | Path) -> Path:
    """PNG grid of fixed photos: one row each of grey input, model output, ground truth.

    ``images``: ``uint8 (N, 3, P, P)``; every tile is ``size x size``.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        rgb = images.to(device).float() / 255.0
        rgb = torch.nn.functional.interpolate(rgb, size=(size, size), mode="bilinear", antialias=True,
                                              align_corners=False).clamp(0, 1)
        with torch.autocast(device.type, enabled=False):
            pred = generator_predict(model, rgb, size)
    finally:
        model.train(was_training)
    rows = [grey_to_rgb(rgb_to_luma(rgb)), pred, rgb]
    grid = torch.cat([torch.cat(list(r), dim=-1) for r in rows], dim=-2)  # (3, 3*size, N*size)
    arr = (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(arr)).save(path)
    return path


class EpochCheckpoint(Callback):
    """After each epoch: ``learn.save(name)`` (with optimizer) and ``state.json`` <- ``{stage, epoch}``."""

    order = 90

    def __init__(self, state_path: Path, stage: int, name: str, extra: dict | None = None, start_epoch: int = 0):
        self.state_path, self.stage, self.ckpt_name, self.extra = Path(state_path), stage, name, extra or {}
        self.start_epoch = start_epoch

    def after_epoch(self):
        if self.epoch < self.start_epoch:  # fastai runs after_epoch for the epochs a resume skips
            return
        self.learn.save(self.ckpt_name, with_opt=True)
        state = read_state(self.state_path)
        state.update(self.extra)
        state.update({"stage": self.stage, "epoch": self.epoch + 1, "checkpoint": self.ckpt_name, "time": time.time()})
        write_state(self.state_path, state)


class ValidationMetrics(Callback):
    """After each epoch: generator metrics on the packed validation images, logged to ``log_path``.

    ``get_generator`` returns the generator inside ``learn.model`` (identity for generator learners).
    """

    order = 80

    def __init__(self, images: torch.Tensor, size: int, log_path: Path, tag: str,
                 get_generator: Callable[[torch.nn.Module], torch.nn.Module] = lambda m: m, every: int = 1,
                 start_epoch: int = 0):
        self.images, self.size, self.log_path, self.tag, self.get_generator = images, size, Path(log_path), tag, get_generator
        self.every, self.start_epoch = max(1, every), start_epoch
        self.history: list[dict] = []

    def after_epoch(self):
        if self.epoch < self.start_epoch or ((self.epoch + 1) % self.every and self.epoch + 1 != self.n_epoch):
            return
        res = evaluate_batches(self.get_generator(self.learn.model), self.images, self.size)
        rec = {"tag": self.tag, "epoch": self.epoch, "train_loss": float(self.learn.recorder.losses[-1])
               if self.learn.recorder.losses else None, **res}
        self.history.append(rec)
        append_jsonl(self.log_path, rec)


class GanCheckpoints(Callback):
    """GAN phase: every ``every`` generator-or-critic iterations save both nets (+ optimizer), a sample
    grid and validation metrics; stop once ``total`` iterations are done (counting from ``start``).
    """

    order = 90

    def __init__(self, out_dir: Path, every: int, total: int, start: int, sample_images: torch.Tensor,
                 valid_images: torch.Tensor, size: int, state_path: Path, log_path: Path):
        self.out_dir, self.every, self.total, self.done = Path(out_dir), every, total, start
        self.sample_images, self.valid_images, self.size = sample_images, valid_images, size
        self.state_path, self.log_path = Path(state_path), Path(log_path)
        self.saved: list[dict] = []

    def after_batch(self):
        if not self.training:
            return
        self.done += 1
        if self.done % self.every == 0 or self.done >= self.total:
            self._save()
        if self.done >= self.total:
            raise CancelFitException()

    def _save(self):
        gen = self.learn.model.generator
        tag = f"gan_{self.done:06d}"
        self.learn.save(tag, with_opt=True)
        torch.save(gen.state_dict(), self.out_dir / "models" / f"{tag}_generator.pth")  # plain tensors, weights_only-safe
        grid = save_sample_grid(gen, self.sample_images, self.size, self.out_dir / "samples" / f"{tag}.png")
        res = evaluate_batches(gen, self.valid_images, self.size)
        rec = {"tag": tag, "iteration": self.done, "grid": str(grid), **res}
        self.saved.append(rec)
        append_jsonl(self.log_path, rec)
        write_state(self.state_path, {"iterations": self.done, "checkpoint": tag, "time": time.time()})
