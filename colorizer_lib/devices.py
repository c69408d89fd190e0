"""Devices, compute types and out-of-memory errors: the policy every Colorizer is built with.

``resolve_device`` and ``resolve_dtype`` turn what a user wrote (or nothing) into a checked device and
type (bfloat16 or float16 on GPUs, the CPU policy of :func:`~colorizer_lib.accel.default_cpu_dtype`);
``out_of_memory_guard`` turns the device's out-of-memory errors into
:class:`~colorizer_lib.errors.ColorizerOutOfMemoryError` with advice; ``cudnn_benchmark`` switches
cuDNN's algorithm search on for the colorizer's own forwards only.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from .accel import default_cpu_dtype
from .errors import ColorizerOutOfMemoryError, InputError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU; strings such as ``"cuda:1"`` are checked.

    Raises:
        InputError: a name that is no device (``"tpu9"``, ``"bogus"``), or a device this machine
            does not have (a ValueError too); the message lists what can be used here.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    here = ["cpu"]
    if torch.cuda.is_available():
        here += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        here.append("mps")
    usable = f"use one of: {', '.join(here)}"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"unknown device {str(device)!r}; {usable}.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {str(device)!r} was requested but no CUDA GPU is available; use device='cpu'.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"device {str(device)!r} does not exist: this machine has "
                         f"{torch.cuda.device_count()} CUDA GPU(s); {usable}.")
    if dev.type not in ("cpu", "cuda") and dev.type not in here:
        raise InputError(f"device {str(device)!r} is not available on this machine; {usable}.")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``None`` -> bfloat16 on GPUs that support it (else float16); on CPU bfloat16 where the processor
    has it natively, else float32 (:func:`~colorizer_lib.accel.default_cpu_dtype`)."""
    if dtype is None:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return default_cpu_dtype() if device.type == "cpu" else torch.float32
    if isinstance(dtype, str):
        names = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
                 "half": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
        if dtype.lower() not in names:
            raise ValueError(f"unknown dtype {dtype!r}; use one of float32, float16, bfloat16.")
        dtype = names[dtype.lower()]
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}.")
    return dtype


@contextlib.contextmanager
def cudnn_benchmark(on: bool) -> Iterator[None]:
    """cuDNN's algorithm search switched on for the colorizer's own forwards only (the process-wide
    setting is restored afterwards): input shapes are fixed per render factor, so the one-off search pays."""
    if not on:
        yield
        return
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


@contextlib.contextmanager
def out_of_memory_guard(render_factor: int, batch_size: int) -> Iterator[None]:
    """Turn the device's out-of-memory errors into :class:`ColorizerOutOfMemoryError` with advice."""
    try:
        yield
    except (RuntimeError, MemoryError) as exc:
        if not (_is_oom(exc) or isinstance(exc, MemoryError)) or isinstance(exc, ColorizerOutOfMemoryError):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        hint = f"lower the render factor (now {render_factor})"
        if batch_size > 1:
            hint += f" or the batch size (now {batch_size})"
        raise ColorizerOutOfMemoryError(f"out of memory while colorizing: {hint}, or use a smaller model.") from exc


__all__ = ["cudnn_benchmark", "default_batch_size", "out_of_memory_guard", "resolve_device", "resolve_dtype"]


def default_batch_size(device) -> int:
    """Photos per forward pass when none is asked for (``Colorizer.colorize_batch``, the photo pipeline,
    bench): 8 on a GPU, 1 on a CPU (where a batch only costs memory)."""
    return 8 if getattr(device, "type", str(device)) == "cuda" else 1
