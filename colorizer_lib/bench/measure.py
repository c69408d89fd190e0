"""Measuring: test inputs, FLOPs per image (meta-free ``torch.utils.flop_counter``), timing with device
synchronisation, the device's matrix-multiply rate and peak memory.
"""

from __future__ import annotations

import copy
import statistics
import time
from typing import Any, Callable

import torch
from torch import nn

from ..color import grey_to_rgb, normalize_imagenet


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
