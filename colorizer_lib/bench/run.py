"""The driver: what to measure (``BenchConfig``) and the loop over models, render factors and sections.
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..accel import pad_channels
from ..colorizer import resolve_dtype
from ..models.fold import fold_for_inference
from ..models.random_weights import calibrated_random_model
from ..registry import resolve_arch
from .measure import _sync, measure_matmul_tflops, random_input
from .model_only import bench_head, bench_interleaved, bench_model_only
from .photos import PHOTO_SIZE, bench_photos, make_test_photos
from .report import Report, Row, environment, format_table


DEFAULT_MODELS = ("artistic", "stable", "video", "compact")


# --------------------------------------------------------------------------------------------------
# driver


@dataclass
class BenchConfig:
    """What to run. Defaults: the issue's matrix on CUDA, a CPU-sized subset on CPU."""

    device: torch.device
    models: Sequence[str] = DEFAULT_MODELS
    render_factors: Sequence[int] = (21, 35)
    batch_sizes: Sequence[int] = (1, 8, 32)
    variants: Sequence[str] = ("baseline", "eager", "eager-pad", "compiled-pad")
    compile_models: Sequence[str] = ("artistic",)
    compile_batch_sizes: Sequence[int] = (32,)
    photos: int = 32
    photo_size: tuple[int, int] = PHOTO_SIZE
    e2e_batch_sizes: Sequence[int] = (8, 32)
    baseline_photos: int = 6
    library_photos: int = 16
    e2e_models: Sequence[str] = DEFAULT_MODELS
    min_seconds: float = 1.0
    budget_seconds: float = 480.0
    out: Path = Path("benchmarks/results")
    profile: bool = True
    e2e_compile: bool = False
    interleave: bool = False
    repeats: int = 3
    cli_photo: Path | None = None


def _same_arch_as_earlier(name: str, arch: str, seen: dict[str, str]) -> str | None:
    for other, other_arch in seen.items():
        if other_arch == arch:
            return other
    seen[name] = arch
    return None


def run_benchmark(cfg: BenchConfig) -> Report:
    """Run the configured benchmark; returns the report (also written under ``cfg.out``)."""
    device = cfg.device
    start = time.perf_counter()
    deadline = start + cfg.budget_seconds
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    cfg.out.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report = Report(meta=environment(device))
    report.json_path = cfg.out / f"bench-{device.type}-{stamp}.json"
    report.csv_path = cfg.out / f"bench-{device.type}-{stamp}.csv"
    rate, rate_dtype = measure_matmul_tflops(device)
    report.meta.update({"matmul_tflops": rate, "matmul_dtype": rate_dtype, "config": {
        k: (list(v) if isinstance(v, (list, tuple)) else str(v)) for k, v in asdict(cfg).items()}})
    print(f"device {report.meta.get('gpu', report.meta.get('cpu'))}, torch {torch.__version__}, "
          f"measured {rate_dtype} matmul {rate:.3g} TFLOP/s", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="colorizer-bench-"))
    try:
        seen: dict[str, str] = {}
        bases: dict[str, nn.Module] = {}
        common = dict(render_factors=cfg.render_factors, batch_sizes=cfg.batch_sizes, matmul_tflops=rate,
                      workdir=workdir, compile_batch_sizes=cfg.compile_batch_sizes, min_seconds=cfg.min_seconds,
                      deadline=deadline)
        if cfg.interleave:
            for name in cfg.models:
                base = calibrated_random_model(resolve_arch(name), device, size=min(256, 16 * max(cfg.render_factors))).cpu()
                for rf in cfg.render_factors:
                    bench_interleaved(report, name, base, device, render_factor=rf, variants=cfg.variants,
                                      repeats=cfg.repeats, matmul_tflops=rate, workdir=workdir,
                                      cli_photo=cfg.cli_photo)
            return report
        # 1. model only, eager variants (and the baseline), every model
        for name in cfg.models:
            arch = resolve_arch(name)
            twin = _same_arch_as_earlier(name, arch, seen)
            if twin is not None:
                report.add(Row("model", name, None, None, "all", note=f"same architecture ({arch}) as {twin}: "
                                                                      f"same speed, measured once"))
                continue
            # calibrated on the device, then kept on the CPU: each variant copies it to the device, so
            # peak-memory rows hold that variant's weights and activations only
            base = calibrated_random_model(arch, device, size=min(256, 16 * max(cfg.render_factors))).cpu()
            bases[name] = base
            bench_model_only(report, name, base, device, variants=[v for v in cfg.variants if v != "compiled-pad"],
                             **common)
            if device.type == "cuda" and time.perf_counter() < deadline:
                bench_head(report, name, base, device, render_factor=max(cfg.render_factors),
                           batch=max(cfg.batch_sizes), min_seconds=cfg.min_seconds)
            _park(base, device)
        # 2. photos from disk to disk
        if cfg.photos:
            photos = make_test_photos(workdir / "photos", cfg.photos, size=tuple(cfg.photo_size))
            for name in cfg.e2e_models:
                if name not in bases:
                    continue
                base = bases[name]
                bench_photos(report, name, base, device, photos=photos, workdir=workdir,
                             render_factors=cfg.render_factors, batch_sizes=cfg.e2e_batch_sizes,
                             baseline_photos=cfg.baseline_photos, library_photos=cfg.library_photos,
                             compiled=cfg.e2e_compile and name in cfg.compile_models, deadline=deadline)
                _park(base, device)
        # 3. where the time goes
        if cfg.profile and device.type == "cuda" and "artistic" in bases and time.perf_counter() < deadline:
            base = bases["artistic"]
            profile_table(base, device, render_factor=max(cfg.render_factors), batch=8,
                          path=cfg.out / f"profile-artistic-{stamp}.txt")
            _park(base, device)
        # 4. compiled variants last: each shape costs about a minute of compilation
        if "compiled-pad" in cfg.variants:
            for name in cfg.compile_models:
                if name in bases:
                    base = bases[name]
                    bench_model_only(report, name, base, device, variants=["compiled-pad"], **common)
                    _park(base, device)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if hasattr(os, "getloadavg"):
            report.meta["loadavg_end"] = list(os.getloadavg())
        report.meta["wall_seconds"] = time.perf_counter() - start
        report.write()
        print(format_table(report.rows))
        print(f"results: {report.json_path} and {report.csv_path}")
    return report


def _park(model: nn.Module, device: torch.device) -> None:
    """Move a model back to the CPU between phases so device memory peaks belong to one model."""
    if device.type == "cuda":
        model.cpu()
        torch.cuda.empty_cache()


def profile_table(base: nn.Module, device: torch.device, *, render_factor: int, batch: int, path: Path) -> None:
    """Write torch.profiler's top kernels for the padded eager model (where the time goes)."""
    from torch.profiler import ProfilerActivity, profile

    dtype = resolve_dtype(None, device)
    texts = []
    for label, padded in (("eager", False), ("eager-pad", True)):
        model = fold_for_inference(copy.deepcopy(base).to(device))
        if padded:
            model = pad_channels(model)
        model = model.to(device=device, dtype=dtype).to(memory_format=torch.channels_last)
        x = random_input(batch, 16 * render_factor, device, dtype, True)
        with torch.inference_mode():
            for _ in range(2):
                model(x)
            _sync(device)
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                model(x)
                _sync(device)
        texts.append(f"== {label}, render factor {render_factor}, batch {batch}\n"
                     + prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=70))
        del model, x
    path.write_text("\n\n".join(texts))
    print(f"profile written to {path}", flush=True)
