"""Speed and memory benchmark of image inference (``colorize bench``, ``benchmarks/bench_image.py``).

What it measures, for each model (random weights with calibrated BatchNorm statistics, which run
exactly as fast as trained ones) and render factor:

* ``model``: images per second of the network alone, per variant and batch size, with the peak
  device memory and the achieved TFLOP/s (FLOPs per image from ``torch.utils.flop_counter``) as a
  share of the device's measured bf16 (GPU) or float32 (CPU) matrix-multiply rate.
  Variants: ``baseline`` (DeOldify-style: unfolded spectral norm, float32, NCHW, batch 1),
  ``eager`` (the Colorizer today: folded, in the library's default dtype and layout: bf16 +
  channels-last on CUDA and on CPUs with native bf16, float32 NCHW on other CPUs), ``eager-fp32``
  (folded, float32, NCHW: the CPU path without bf16), ``eager-pad`` (plus
  :func:`~colorizer_lib.accel.pad_channels`), ``compiled-pad`` (plus ``torch.compile``),
  ``onnxruntime`` (CPU), and with ``--interleave`` only, ``cli``: ``colorize image`` on one photo as
  a subprocess, from start-up to the saved file.
* ``head``: the full-resolution residual block alone (where half of the work is), padded or not.
* ``latency-12mp``: one 4000 x 3000 JPEG from disk to disk, batch 1: the library path
  (``Colorizer.colorize`` + ``save``) and the pipelined path, with peak device memory.
* ``e2e``: 12-megapixel JPEGs from disk to disk (decode, model, merge, encode): the library path
  as ``colorize image`` runs it, the pipelined path (:func:`~colorizer_lib.runtime.colorize_files_pipelined`)
  and the DeOldify-style baseline (PIL resize, float32 model at batch 1, CPU YUV merge per image).

Results go to ``<out>/bench-<device>-<timestamp>.{json,csv}`` after every row (a run cut short keeps
what it measured), with the device, torch version, date and command line.
"""

from __future__ import annotations

import argparse
import copy
import csv
import datetime as _dt
import functools
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .accel import CompiledModel, call_in_chunks, cpu_has_native_bf16, pad_channels, prefers_channels_last
from .cli_args import add_common_arguments, comma_separated_ints
from .color import IMAGENET_MEAN, IMAGENET_STD, grey_to_rgb, normalize_imagenet
from .colorizer import Colorizer, check_render_factor, resolve_device, resolve_dtype
from .errors import InputError
from .export import ONNX_TOLERANCE, OnnxRunner, export_onnx
from .models.deoldify import DeOldifyUnet
from .models.fold import fold_for_inference
from .models.random_weights import calibrated_random_model
from .registry import resolve_arch
from .runtime import colorize_files_pipelined

DEFAULT_MODELS = ("artistic", "stable", "video", "compact")
MODEL_VARIANTS = ("baseline", "eager", "eager-fp32", "eager-pad", "compiled-pad", "onnxruntime", "cli")
CLI_PHOTO = Path(__file__).resolve().parents[1] / "examples" / "nagasaki-boats.jpg"
PHOTO_SIZE = (4000, 3000)  # 12 megapixels


# --------------------------------------------------------------------------------------------------
# inputs


def random_input(batch: int, size: int, device: torch.device, dtype: torch.dtype, channels_last: bool,
                 seed: int = 1) -> torch.Tensor:
    """A normalised grey batch ``(batch, 3, size, size)`` as the Colorizer feeds the model."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = normalize_imagenet(grey_to_rgb(torch.rand(batch, 1, size, size, generator=g))).contiguous()
    x = x.to(device=device, dtype=dtype)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward of ``model`` on ``x`` (convolutions and matrix products, 2 per MAC).

    Counted on the meta device (shapes only, no arithmetic), so it costs nothing even on a CPU.
    """
    from torch.utils.flop_counter import FlopCounterMode

    # No gradients: the counter's module tracker trips over views of parameters made under inference mode
    # (DDColor expands its query embeddings to the batch).
    meta_model = copy.deepcopy(model).to("meta").requires_grad_(False)
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        meta_model(torch.empty(x.shape, dtype=x.dtype, device="meta"))
    return int(counter.get_total_flops())


# --------------------------------------------------------------------------------------------------
# timing


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_callable(fn: Callable[[], Any], device: torch.device, *, min_seconds: float = 1.0, min_runs: int = 3,
                  max_runs: int = 50, warmup: int = 2) -> list[float]:
    """Run ``fn`` ``warmup`` times, then until ``min_seconds`` have passed (at least ``min_runs``
    runs); returns each run's seconds (device-synchronised)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    begin = time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - begin < min_seconds and len(times) < max_runs):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def measure_matmul_tflops(device: torch.device, *, n: int | None = None) -> tuple[float, str]:
    """The device's measured dense matrix-multiply rate: bf16 on CUDA, float32 on CPU (TFLOP/s, dtype)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    n = n or (8192 if device.type == "cuda" else 1536)
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    times = time_callable(lambda: torch.mm(a, b), device, min_seconds=1.0, min_runs=5)
    return 2 * n**3 / statistics.median(times) / 1e12, str(dtype).removeprefix("torch.")


def peak_memory_gb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**30


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


# --------------------------------------------------------------------------------------------------
# results


@dataclass
class Row:
    """One measurement. ``per_second`` is images (or photos) per second; ``ms`` the median time of one
    batch (model rows) or one photo (latency rows)."""

    kind: str
    model: str
    render_factor: int | None
    batch: int | None
    variant: str
    per_second: float | None = None
    ms: float | None = None
    peak_gb: float | None = None
    gflop_per_image: float | None = None
    tflops: float | None = None
    pct_of_matmul: float | None = None
    runs: int | None = None
    note: str = ""


@dataclass
class Report:
    """All rows of a run plus how they were obtained; written to JSON and CSV after every row."""

    meta: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    json_path: Path | None = None
    csv_path: Path | None = None

    def add(self, row: Row, *, echo: bool = True) -> None:
        self.rows.append(row)
        if echo:
            print(format_row(row), flush=True)
        self.write()

    def write(self) -> None:
        if self.json_path is None:
            return
        self.json_path.write_text(json.dumps({"meta": self.meta, "rows": [asdict(r) for r in self.rows]}, indent=1))
        with open(self.csv_path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(Row.__dataclass_fields__))
            writer.writeheader()
            for r in self.rows:
                writer.writerow(asdict(r))


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_row(r: Row) -> str:
    return (f"{r.kind:<13} {r.model:<9} rf={_fmt(r.render_factor, '>3')} bs={_fmt(r.batch, '>3')} "
            f"{r.variant:<14} {_fmt(r.per_second, '>9.2f')}/s {_fmt(r.ms, '>10.1f')} ms "
            f"peak {_fmt(r.peak_gb, '>6.2f')} GB {_fmt(r.tflops, '>7.3g')} TFLOP/s "
            f"({_fmt(r.pct_of_matmul, '.0f')}%) {r.note}")


def format_table(rows: Sequence[Row]) -> str:
    header = ("kind          model     rf  batch variant        per second     ms/batch   peak GB  TFLOP/s  "
              "% of matmul  note")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.kind:<13} {r.model:<9} {_fmt(r.render_factor, '>3')} {_fmt(r.batch, '>5')} "
                     f"{r.variant:<14} {_fmt(r.per_second, '>10.2f')} {_fmt(r.ms, '>12.1f')} "
                     f"{_fmt(r.peak_gb, '>9.2f')} {_fmt(r.tflops, '>8.3g')} {_fmt(r.pct_of_matmul, '>12.0f')}  {r.note}")
    return "\n".join(lines)


def environment(device: torch.device) -> dict[str, Any]:
    """Device, library versions, date, command line and (on CPU) the load average."""
    meta: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        meta["gpu"] = torch.cuda.get_device_name(device)
        meta["cuda"] = torch.version.cuda
        meta["cudnn"] = torch.backends.cudnn.version()
    else:
        meta["cpu"] = platform.processor() or platform.machine()
        meta["cpu_model"], meta["cpu_flags"] = _cpu_model_and_flags()
        meta["cpu_native_bf16"] = cpu_has_native_bf16()
    try:
        import onnxruntime

        meta["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if hasattr(os, "getloadavg"):
        meta["loadavg_start"] = list(os.getloadavg())
    return meta


def _cpu_model_and_flags() -> tuple[str, list[str]]:
    """The CPU's model name and its vector-extension flags (AVX, AMX) from ``/proc/cpuinfo`` (Linux)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine(), []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return model, sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))


# --------------------------------------------------------------------------------------------------
# model-only variants


def build_variant(variant: str, base: nn.Module, device: torch.device, render_factor: int,
                  workdir: Path) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.dtype, bool]:
    """The model callable for ``variant``, its input dtype and whether it wants channels-last input."""
    if variant == "baseline":
        return copy.deepcopy(base).float().to(device), torch.float32, False
    dtype = torch.float32 if variant == "eager-fp32" else resolve_dtype(None, device)
    channels_last = variant != "eager-fp32" and prefers_channels_last(device, dtype)
    if variant == "onnxruntime":
        path = workdir / f"model-rf{render_factor}.onnx"
        export_onnx(fold_for_inference(copy.deepcopy(base).cpu()), path, render_factor=render_factor)
        return OnnxRunner(path), torch.float32, False
    model = fold_for_inference(copy.deepcopy(base))
    if variant in ("eager-pad", "compiled-pad"):
        model = pad_channels(model)
    model = model.to(device=device, dtype=dtype)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if variant == "compiled-pad":
        return CompiledModel(model), dtype, channels_last
    if variant not in ("eager", "eager-fp32", "eager-pad"):
        raise InputError(f"unknown variant {variant!r}; use one of {', '.join(MODEL_VARIANTS)}.")
    return model, dtype, channels_last


def bench_model_only(report: Report, name: str, base: nn.Module, device: torch.device, *, render_factors: Sequence[int],
                     batch_sizes: Sequence[int], variants: Sequence[str], matmul_tflops: float, workdir: Path,
                     compile_batch_sizes: Sequence[int], min_seconds: float, deadline: float) -> None:
    """Model-only rows for one model: every variant x render factor x batch size (baseline at batch 1)."""
    if not isinstance(base, DeOldifyUnet):  # nothing to pad: the padded variants equal the plain ones
        variants = [{"eager-pad": "eager", "compiled-pad": "compiled-pad"}.get(v, v) for v in variants]
        variants = list(dict.fromkeys(variants))
    for rf in render_factors:
        size = 16 * rf
        flops = count_flops(fold_for_inference(copy.deepcopy(base)), random_input(1, size, device, torch.float32, False))
        for variant in variants:
            sizes = [1] if variant in ("baseline", "onnxruntime") else list(batch_sizes)
            if variant == "compiled-pad":
                sizes = [b for b in sizes if b in compile_batch_sizes]
            if not sizes:
                continue
            if time.perf_counter() > deadline:
                report.add(Row("model", name, rf, None, variant, note="skipped: time budget spent"))
                continue
            reset_peak(device)
            chunks: dict = {}
            try:
                fn, dtype, cl = build_variant(variant, base, device, rf, workdir)
            except Exception as exc:  # noqa: BLE001  (recorded, the run goes on)
                report.add(Row("model", name, rf, None, variant, note=f"failed: {type(exc).__name__}: {exc}"[:300]))
                continue
            for bs in sizes:
                if time.perf_counter() > deadline:
                    report.add(Row("model", name, rf, bs, variant, note="skipped: time budget spent"))
                    continue
                reset_peak(device)
                x = random_input(bs, size, device, dtype, cl)
                fn_bs = functools.partial(call_in_chunks, fn, chunk_cache=chunks)
                note = ""
                try:
                    with torch.inference_mode():
                        if variant == "compiled-pad":
                            fn_bs(x)
                            note = f"compile {sum(fn.compile_seconds.values()):.0f} s"
                        out = fn_bs(x)
                        finite = bool(torch.isfinite(out.float()).all())
                        chunk = chunks.get((tuple(x.shape[1:]), x.dtype))
                        if chunk is not None and chunk < bs:
                            note = f"{note} run as chunks of {chunk} (32-bit index limit)".strip()
                        times = time_callable(lambda fn_bs=fn_bs, x=x: fn_bs(x), device, min_seconds=min_seconds,
                                              warmup=1 if variant in ("baseline", "onnxruntime") or device.type == "cpu" else 2)
                except torch.OutOfMemoryError:
                    report.add(Row("model", name, rf, bs, variant, note="out of memory"))
                    continue
                t = statistics.median(times)
                tflops = flops * bs / t / 1e12
                report.add(Row("model", name, rf, bs, variant, per_second=bs / t, ms=t * 1e3,
                               peak_gb=peak_memory_gb(device), gflop_per_image=flops / 1e9, tflops=tflops,
                               pct_of_matmul=100 * tflops / matmul_tflops, runs=len(times),
                               note=(note + ("" if finite else " NON-FINITE OUTPUT")).strip()))
                del x
            del fn


def bench_interleaved(report: Report, name: str, base: nn.Module, device: torch.device, *, render_factor: int,
                      variants: Sequence[str], repeats: int, matmul_tflops: float, workdir: Path,
                      cli_photo: Path | None = None) -> None:
    """Batch-1 latency of ``variants`` measured round-robin (A, B, C, A, B, C...), so that on a shared
    machine every variant sees the same background load; one row per variant with the median wall
    time, the median CPU time (all threads; less sensitive to other jobs than wall time), the median
    of the per-round speed-ups over ``baseline`` when it is among the variants, and each output's
    difference from the float32 one (``eager-fp32``, else ``baseline``) on the same input (ONNX
    Runtime's checked against its tolerance).

    ``cli`` runs ``colorize image`` on ``cli_photo`` in a fresh Python process (start-up, imports,
    loading the weights from a file, decoding, model, merge, saving), with ``base``'s weights."""
    import resource
    import subprocess

    size = 16 * render_factor
    flops = count_flops(fold_for_inference_copy(base), random_input(1, size, device, torch.float32, False))
    built: dict[str, Any] = {v: build_variant(v, base, device, render_factor, workdir) for v in variants if v != "cli"}
    if "cli" in variants:
        weights = workdir / f"{name}-random.pth"
        torch.save(base.state_dict(), weights)
        photo = Path(cli_photo or CLI_PHOTO)
        if not photo.is_file():
            raise InputError(f"the photo for the cli variant, {photo}, does not exist; give one with --cli-photo.")
        command = [sys.executable, "-m", "colorizer_lib.cli", "image", str(photo), "-m", str(weights),
                   "-r", str(render_factor), "--device", str(device), "-q", "--overwrite"]
        report.meta["cli_command"] = " ".join(command[1:] + ["-o", "OUT"])
        report.meta["cli_photo"] = f"{photo.name} {_size_text(photo)}"
    times: dict[str, list[float]] = {v: [] for v in variants}
    cpu_times: dict[str, list[float]] = {v: [] for v in variants}
    loads: list[float] = []
    outputs: dict[str, torch.Tensor] = {}
    for run in range(repeats + 1):  # the first round is the warm-up
        for v in variants:
            cpu_start = time.process_time()
            children_start = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            if v == "cli":
                subprocess.run(command + ["-o", str(workdir / f"cli-{run}{photo.suffix}")], check=True,
                               cwd=Path(__file__).resolve().parents[1])
            else:
                fn, dtype, cl = built[v]
                x = random_input(1, size, device, dtype, cl)
                start = time.perf_counter()
                cpu_start = time.process_time()
                with torch.inference_mode():
                    out = fn(x)
                _sync(device)
            elapsed = time.perf_counter() - start
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = time.process_time() - cpu_start + (children.ru_utime + children.ru_stime
                                                       - children_start.ru_utime - children_start.ru_stime)
            if run:
                times[v].append(elapsed)
                cpu_times[v].append(cpu)
                if hasattr(os, "getloadavg"):
                    loads.append(os.getloadavg()[0])
            if v != "cli":
                outputs[v] = out.float().cpu()
    reference_name = "eager-fp32" if "eager-fp32" in outputs else "baseline" if "baseline" in outputs else None
    reference = outputs.get(reference_name)
    for v in variants:
        t = statistics.median(times[v])
        note = (f"round-robin median of {repeats}, runs {', '.join(f'{s:.1f}' for s in times[v])} s, "
                f"CPU time median {statistics.median(cpu_times[v]):.1f} s")
        if "baseline" in times and v != "baseline":
            ratios = [b / a for a, b in zip(times[v], times["baseline"])]
            cpu_ratios = [b / a for a, b in zip(cpu_times[v], cpu_times["baseline"])]
            note += (f"; speed-up over baseline per round {', '.join(f'{r:.2f}' for r in ratios)} "
                     f"(median {statistics.median(ratios):.2f}x wall, {statistics.median(cpu_ratios):.2f}x CPU time)")
        if v in outputs and reference is not None and v != reference_name:
            diff = (outputs[v] - reference).abs()
            note += f"; |diff| vs {reference_name} mean {float(diff.mean()):.1e} max {float(diff.max()):.1e}"
            if v == "onnxruntime":
                note += " (ok)" if float(diff.max()) <= ONNX_TOLERANCE else f" (OVER {ONNX_TOLERANCE:.0e})"
        report.add(Row("cpu-latency" if v != "cli" else "cli-photo", name, render_factor, 1, v, per_second=1 / t,
                       ms=t * 1e3, gflop_per_image=flops / 1e9, tflops=flops / t / 1e12 if v != "cli" else None,
                       pct_of_matmul=100 * flops / t / 1e12 / matmul_tflops if v != "cli" else None,
                       runs=len(times[v]), note=note))
    if loads:
        report.meta.setdefault("loadavg_during", {})[f"{name}-rf{render_factor}"] = [min(loads), max(loads)]


def fold_for_inference_copy(model: nn.Module) -> nn.Module:
    return fold_for_inference(copy.deepcopy(model))


def bench_head(report: Report, name: str, base: nn.Module, device: torch.device, *, render_factor: int,
               batch: int, min_seconds: float) -> None:
    """Time the full-resolution head (``layers.10`` residual block + ``layers.11``) alone, padded or not."""
    if not isinstance(base, DeOldifyUnet):
        return
    dtype = resolve_dtype(None, device)
    size = 16 * render_factor
    for padded in (False, True):
        model = fold_for_inference(copy.deepcopy(base))
        if padded:
            model = pad_channels(model)
        head = nn.Sequential(model.layers[10], model.layers[11]).to(device=device, dtype=dtype)
        channels = head[0].layers[0][0].in_channels
        cl = device.type == "cuda"
        if cl:
            head = head.to(memory_format=torch.channels_last)
        g = torch.Generator(device="cpu").manual_seed(2)
        x = torch.randn(batch, channels, size, size, generator=g).to(device, dtype)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        flops = count_flops(head, x[:1])
        with torch.inference_mode():
            times = time_callable(lambda head=head, x=x: head(x), device, min_seconds=min_seconds)
        t = statistics.median(times)
        report.add(Row("head", name, render_factor, batch, f"{channels}-channels", per_second=batch / t, ms=t * 1e3,
                       gflop_per_image=flops / 1e9, tflops=flops * batch / t / 1e12, runs=len(times),
                       note="layers.10 + layers.11 alone"))
        del head, x, model


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


def deoldify_style_photo(model: nn.Module, device: torch.device, src: Path, dst: Path, render_factor: int) -> None:
    """DeOldify's per-image path (visualize.py / filters.py), as the baseline: PIL load and bilinear
    resize to the square, grey, float32 model at batch 1, PIL resize back, YUV merge on the CPU."""
    from PIL import Image

    size = 16 * render_factor
    orig = Image.open(src).convert("RGB")
    small = orig.resize((size, size), resample=Image.BILINEAR).convert("LA").convert("RGB")
    x = torch.from_numpy(np.asarray(small, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        out = model(((x - mean) / std).to(device)).cpu()
    rgb = ((out * std + mean).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    color = np.asarray(Image.fromarray(rgb).resize(orig.size, resample=Image.BILINEAR))
    merged = _yuv_merge_cpu(np.asarray(orig), color)
    Image.fromarray(merged).save(dst, quality=95)


def _yuv_merge_cpu(orig_rgb: np.ndarray, color_rgb: np.ndarray) -> np.ndarray:
    """Y of ``orig``, U and V of ``color`` (OpenCV 8-bit YUV, as DeOldify's post-processing)."""
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        y = cv2.cvtColor(orig_rgb, cv2.COLOR_RGB2YUV)
        uv = cv2.cvtColor(color_rgb, cv2.COLOR_RGB2YUV)
        y[..., 1:] = uv[..., 1:]
        return cv2.cvtColor(y, cv2.COLOR_YUV2RGB)
    o = orig_rgb.astype(np.float32)
    c = color_rgb.astype(np.float32)
    y = 0.299 * o[..., 0] + 0.587 * o[..., 1] + 0.114 * o[..., 2]
    yc = 0.299 * c[..., 0] + 0.587 * c[..., 1] + 0.114 * c[..., 2]
    u, v = 0.492 * (c[..., 2] - yc), 0.877 * (c[..., 0] - yc)
    out = np.stack([y + 1.140 * v, y - 0.395 * u - 0.581 * v, y + 2.032 * u], axis=-1)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


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
        bs = 8 if device.type == "cuda" else 1
        start = time.perf_counter()
        for i, result in enumerate(library.colorize_batch(photos[:n], rf, batch_size=bs)):
            result.save(out / f"library-{i}.jpg")
        t = time.perf_counter() - start
        report.add(Row("e2e", name, rf, bs, "library", per_second=n / t, ms=t / n * 1e3,
                       note=f"{n} photos, colorize_batch + save, one thread"))
        del library
        # the pipelined fast path
        fast = _fast_colorizer(base, device, name, rf, compiled and device.type == "cuda")
        colorize_files_pipelined(fast, photos[:2], out / "warm", render_factor=rf, batch_size=1)
        reset_peak(device)
        start = time.perf_counter()
        colorize_files_pipelined(fast, photos[:1], out / "single", render_factor=rf, batch_size=1)
        report.add(Row("latency-12mp", name, rf, 1, "pipelined", ms=(time.perf_counter() - start) * 1e3,
                       peak_gb=peak_memory_gb(device), note=f"one {_size_text(photos[0])} JPEG"))
        for bs in batch_sizes:
            if time.perf_counter() > deadline:
                report.add(Row("e2e", name, rf, bs, "pipelined", note="skipped: time budget spent"))
                continue
            if compiled and device.type == "cuda":
                colorize_files_pipelined(fast, photos[:bs], out / "warm", render_factor=rf, batch_size=bs)
            reset_peak(device)
            stats = colorize_files_pipelined(fast, photos, out / f"bs{bs}", render_factor=rf, batch_size=bs)
            report.add(Row("e2e", name, rf, bs, "pipelined-compiled" if compiled and device.type == "cuda" else "pipelined",
                           per_second=stats.images_per_second, ms=stats.wall / stats.images * 1e3,
                           peak_gb=peak_memory_gb(device),
                           note=f"{stats.images} photos, device busy {100 * stats.gpu / stats.wall:.0f}% of wall, "
                                f"JPEG encoder {stats.encoder}, decoder {stats.decoder}"))
        del fast
        # DeOldify-style baseline
        if baseline_photos:
            model = copy.deepcopy(base).float().to(device)
            deoldify_style_photo(model, device, photos[0], out / "warm-baseline.jpg", rf)
            n = min(baseline_photos, len(photos))
            reset_peak(device)
            start = time.perf_counter()
            for i in range(n):
                deoldify_style_photo(model, device, photos[i], out / f"baseline-{i}.jpg", rf)
            t = time.perf_counter() - start
            report.add(Row("e2e", name, rf, 1, "baseline", per_second=n / t, ms=t / n * 1e3,
                           peak_gb=peak_memory_gb(device), note=f"{n} photos, DeOldify-style"))
            del model
        shutil.rmtree(out, ignore_errors=True)


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


# --------------------------------------------------------------------------------------------------
# command line


def _name_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``colorize bench`` on a subparsers object; sets ``func``."""
    parser = subparsers.add_parser(
        "bench", help="measure speed and memory of image inference (random weights)",
        description="Benchmark models x render factors x batch sizes: model-only images/s, 12-megapixel "
                    "latency, end-to-end photos/s from disk to disk, peak GPU memory, FLOPs and TFLOP/s, with "
                    "a DeOldify-style baseline in the same run. Results go to --out as JSON and CSV.")
    add_bench_arguments(parser)
    parser.set_defaults(func=run_bench_command)
    return parser


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, skip=("model", "dtype", "cache_dir", "quiet"))  # random weights, its own dtypes
    parser.add_argument("--models", type=_name_list, default=None,
                        help="comma-separated: artistic,stable,video,compact (default: all)")
    parser.add_argument("--render-factors", type=comma_separated_ints, default=None, help="default 21,35")
    parser.add_argument("--batch-sizes", type=comma_separated_ints, default=None, help="default 1,8,32 on GPU, 1 on CPU")
    parser.add_argument("--variants", type=_name_list, default=None,
                        help=f"model variants among {','.join(MODEL_VARIANTS)} (default: GPU baseline,eager,"
                             f"eager-pad,compiled-pad; CPU baseline,eager,onnxruntime)")
    parser.add_argument("--compile-models", type=_name_list, default=None,
                        help="models to torch.compile (compiling costs ~1 min per shape; default artistic)")
    parser.add_argument("--compile-batch-sizes", type=comma_separated_ints, default=None, help="default 32")
    parser.add_argument("--photos", type=int, default=None,
                        help="12-megapixel JPEGs for the end-to-end rows (0 skips them; default 32 on GPU, 0 on CPU)")
    parser.add_argument("--photo-size", type=comma_separated_ints, default=None,
                        help="width,height of the test photos (default 4000,3000: 12 megapixels)")
    parser.add_argument("--e2e-models", type=_name_list, default=None, help="models for the photo rows (default all)")
    parser.add_argument("--e2e-batch-sizes", type=comma_separated_ints, default=None, help="default 8,32")
    parser.add_argument("--baseline-photos", type=int, default=6, help="photos for the DeOldify-style baseline")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="time each configuration at least this long")
    parser.add_argument("--budget", type=float, default=480.0,
                        help="seconds after which remaining configurations are skipped (and recorded as skipped)")
    parser.add_argument("--out", default="benchmarks/results", help="folder for the JSON and CSV results")
    parser.add_argument("--e2e-compile", action="store_true",
                        help="also torch.compile the photo rows of the --compile-models (one compile per batch size)")
    parser.add_argument("--interleave", action="store_true",
                        help="batch-1 latency only, variants measured round-robin (fair on a shared CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds for --interleave (after one warm-up round)")
    parser.add_argument("--cli-photo", default=None,
                        help="photo for the cli variant of --interleave (default examples/nagasaki-boats.jpg)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    device = resolve_device(args.device)
    cpu = device.type == "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = args.variants or (["baseline", "eager", "onnxruntime"] if cpu else
                                 ["baseline", "eager", "eager-pad", "compiled-pad"])
    unknown = [v for v in variants if v not in MODEL_VARIANTS]
    if unknown:
        raise InputError(f"unknown variant(s) {', '.join(unknown)}; use {', '.join(MODEL_VARIANTS)}.")
    if "cli" in variants and not args.interleave:
        raise InputError("the cli variant (one photo through `colorize image`) runs only with --interleave.")
    rfs = args.render_factors or [21, 35]
    for rf in rfs:
        check_render_factor(rf)
    models = args.models or list(DEFAULT_MODELS)
    return BenchConfig(
        device=device, models=models, render_factors=rfs,
        batch_sizes=args.batch_sizes or ([1] if cpu else [1, 8, 32]), variants=variants,
        compile_models=args.compile_models if args.compile_models is not None else ["artistic"],
        compile_batch_sizes=args.compile_batch_sizes or [32],
        photos=args.photos if args.photos is not None else (0 if cpu else 32),
        photo_size=tuple(args.photo_size) if args.photo_size else PHOTO_SIZE,
        e2e_models=args.e2e_models or models, e2e_batch_sizes=args.e2e_batch_sizes or [8, 32],
        baseline_photos=args.baseline_photos, e2e_compile=args.e2e_compile, interleave=args.interleave,
        repeats=args.repeats, min_seconds=args.min_seconds, budget_seconds=args.budget,
        out=Path(args.out), cli_photo=Path(args.cli_photo) if args.cli_photo else None)


def run_bench_command(args: argparse.Namespace) -> int:
    run_benchmark(config_from_args(args))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m colorizer_lib.bench`` / ``benchmarks/bench_image.py`` entry point."""
    parser = argparse.ArgumentParser(prog="bench_image", description=add_bench_parser.__doc__)
    add_bench_arguments(parser)
    return run_bench_command(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
