"""Photos from disk to disk: 12-megapixel test JPEGs, and the photo pipeline's two paths (simple and
pipelined, :func:`colorizer_lib.photos.run_jobs`, as ``colorize image`` runs them) and the baseline timed
on them (latency at batch 1, throughput end to end).
"""

from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..accel import CompiledModel, pad_channels
from ..colorizer import Colorizer
from ..models.families import DDColorFamily, family_for_model
from ..models.fold import fold_for_inference
from ..photos import RunReport, default_batch_size, plan_jobs, run_jobs
from .baseline import ddcolor_style_photo, deoldify_style_photo
from .measure import _sync, peak_memory_gb, reset_peak
from .report import Report, Row


PHOTO_SIZE = (4000, 3000)  # 12 megapixels


# --------------------------------------------------------------------------------------------------
# photos from disk to disk


def make_test_photos(folder: Path, count: int, *, size: tuple[int, int] = PHOTO_SIZE, distinct: int = 4,
                     quality: int = 90, seed: int = 0) -> list[Path]:
    """Write ``count`` photo-like greyscale JPEGs (RGB files, as scans usually are) of ``size``.

    ``distinct`` different pictures (smooth shading, edges and grain, so they compress like photos
    rather than like flat test cards) are generated and copied to make up ``count`` files.
    """
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    originals = []
    for i in range(min(distinct, count)):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        shade = 0.5 + 0.35 * np.cos(np.hypot(xx - cx, yy - cy) / rng.uniform(200, 900))
        blocks = (((xx // rng.integers(150, 500)) + (yy // rng.integers(150, 500))) % 2) * 0.15
        grain = rng.normal(0.0, 0.04, size=(h, w)).astype(np.float32)
        grey = np.clip((shade + blocks + grain) * 255, 0, 255).astype(np.uint8)
        path = folder / f"photo{i:03d}.jpg"
        Image.fromarray(grey, "L").convert("RGB").save(path, quality=quality)
        originals.append(path)
    paths = list(originals)
    for i in range(len(originals), count):
        path = folder / f"photo{i:03d}.jpg"
        shutil.copyfile(originals[i % len(originals)], path)
        paths.append(path)
    return paths


def _size_text(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as img:
        return f"{img.width}x{img.height}"


def _colorize_files(colorizer, photos: Sequence[Path], out: Path, rf: int, *, batch_size: int,
                    pipeline: str = "on") -> RunReport:
    """``photos`` into the folder ``out`` as ``colorize image`` plans (``<stem>.jpg``) and runs them.
    Earlier outputs there are replaced: nothing is skipped, so every run does the whole work."""
    jobs = plan_jobs([str(p) for p in photos], str(out), out_format="jpg")
    report = run_jobs(colorizer, jobs, render_factor=rf, batch_size=batch_size, pipeline=pipeline)
    if report.failures:
        raise RuntimeError(f"the benchmark's photos failed: {report.failures}")
    return report


def _fast_colorizer(base: nn.Module, device: torch.device, name: str, rf: int, compiled: bool):
    model = pad_channels(fold_for_inference(copy.deepcopy(base)))
    col = Colorizer.from_model(model, name=name, default_render_factor=rf, device=device, fold=False)
    if compiled:
        col.model = CompiledModel(col.model)
    return col


def bench_photos(report: Report, name: str, base: nn.Module, device: torch.device, *, photos: list[Path],
                 workdir: Path, render_factors: Sequence[int], batch_sizes: Sequence[int], baseline_photos: int,
                 library_photos: int, compiled: bool, deadline: float) -> None:
    """12-megapixel rows: latency of one photo and throughput from disk to disk (see module docstring)."""
    for rf in render_factors:
        if time.perf_counter() > deadline:
            report.add(Row("e2e", name, rf, None, "all", note="skipped: time budget spent"))
            continue
        out = workdir / f"out-{name}-{rf}"
        # the library as `colorize image` runs it
        library = Colorizer.from_model(fold_for_inference(copy.deepcopy(base)), name=name, default_render_factor=rf,
                                       device=device)
        library.colorize(photos[0], rf)  # warm-up (cuDNN algorithm search)
        reset_peak(device)
        start = time.perf_counter()
        library.colorize(photos[0], rf).save(out / "single-library.jpg")
        _sync(device)
        report.add(Row("latency-12mp", name, rf, 1, "library", per_second=None,
                       ms=(time.perf_counter() - start) * 1e3, peak_gb=peak_memory_gb(device),
                       note=f"Colorizer.colorize + save, one {_size_text(photos[0])} JPEG"))
        n = min(library_photos, len(photos))
        bs = default_batch_size(device)
        start = time.perf_counter()
        _colorize_files(library, photos[:n], out / "library", rf, batch_size=bs, pipeline="off")
        t = time.perf_counter() - start
        report.add(Row("e2e", name, rf, bs, "library", per_second=n / t, ms=t / n * 1e3,
                       note=f"{n} photos, the simple path (colorize_batch + save, one thread)"))
        del library
        # the pipelined fast path
        fast = _fast_colorizer(base, device, name, rf, compiled and device.type == "cuda")
        _colorize_files(fast, photos[:2], out / "warm", rf, batch_size=1)
        reset_peak(device)
        start = time.perf_counter()
        _colorize_files(fast, photos[:1], out / "single", rf, batch_size=1)
        report.add(Row("latency-12mp", name, rf, 1, "pipelined", ms=(time.perf_counter() - start) * 1e3,
                       peak_gb=peak_memory_gb(device), note=f"one {_size_text(photos[0])} JPEG"))
        for bs in batch_sizes:
            if time.perf_counter() > deadline:
                report.add(Row("e2e", name, rf, bs, "pipelined", note="skipped: time budget spent"))
                continue
            if compiled and device.type == "cuda":
                _colorize_files(fast, photos[:bs], out / "warm", rf, batch_size=bs)
            reset_peak(device)
            run = _colorize_files(fast, photos, out / f"bs{bs}", rf, batch_size=bs)
            stats = run.stats
            report.add(Row("e2e", name, rf, bs, "pipelined-compiled" if compiled and device.type == "cuda" else "pipelined",
                           per_second=stats.images_per_second, ms=stats.wall / stats.images * 1e3,
                           peak_gb=peak_memory_gb(device),
                           note=f"{stats.images} photos, device busy {100 * stats.gpu / stats.wall:.0f}% of wall, "
                                f"JPEG encoder {stats.encoder}, decoder {stats.decoder}"))
        del fast
        # the original project's own photo path: DeOldify's, or DDColor's ColorizationPipeline
        if baseline_photos:
            model = copy.deepcopy(base).float().to(device)
            ddcolor = isinstance(family_for_model(model), DDColorFamily)
            baseline = ddcolor_style_photo if ddcolor else deoldify_style_photo
            how = baseline(model, device, photos[0], out / "warm-baseline.jpg", rf)
            n = min(baseline_photos, len(photos))
            reset_peak(device)
            start = time.perf_counter()
            for i in range(n):
                baseline(model, device, photos[i], out / f"baseline-{i}.jpg", rf)
            t = time.perf_counter() - start
            style = f"DDColor-style ({'OpenCV' if how == 'opencv' else 'no OpenCV here: its maths in torch on the CPU'})" \
                if ddcolor else "DeOldify-style"
            report.add(Row("e2e", name, rf, 1, "baseline", per_second=n / t, ms=t / n * 1e3,
                           peak_gb=peak_memory_gb(device), note=f"{n} photos, {style}"))
            del model
        shutil.rmtree(out, ignore_errors=True)
