"""The network alone: each variant (``baseline``, ``eager``, ``eager-pad``, ``compiled-pad``, ``onnxruntime``)
per batch size, interleaved comparisons, and the full-resolution head block.
"""

from __future__ import annotations

import copy
import functools
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..accel import CompiledModel, call_in_chunks, pad_channels, prefers_channels_last
from ..colorizer import resolve_dtype
from ..errors import InputError
from ..export import ONNX_TOLERANCE, OnnxRunner, export_onnx
from ..models.deoldify import DeOldifyUnet
from ..models.fold import fold_for_inference
from .measure import _sync, count_flops, peak_memory_gb, random_input, reset_peak, time_callable
from .photos import _size_text
from .report import Report, Row


MODEL_VARIANTS = ("baseline", "eager", "eager-fp32", "eager-pad", "compiled-pad", "onnxruntime", "cli")
CLI_PHOTO = Path(__file__).resolve().parents[2] / "examples" / "nagasaki-boats.jpg"


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
                               cwd=Path(__file__).resolve().parents[2])
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
