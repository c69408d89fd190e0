"""Model wrappers below :class:`~colorizer_lib.colorizer.Colorizer`, each with the model's call signature.

Every wrapper here maps a normalised grey batch ``(B, 3, S, S)`` to the generator's normalised RGB
``(B, 3, S, S)`` exactly like the eager model it was built from (within the tolerance its test
states), so it can replace ``Colorizer.model``:

* :func:`pad_channels` - zero-pads the odd channel counts of DeOldify's full-resolution head
  (303 for Artistic, 259 for Stable/Video; 300 in Artistic's last decoder block) to a multiple of 8.
  GPU tensor cores (and cuDNN's channels-last kernels) want channel counts that are multiples of 8;
  the padded channels carry exact zeros, so the function is unchanged (bit-for-bit in float32 on
  CPU up to summation order). Works on a *folded* model (:func:`~colorizer_lib.models.fold.fold_for_inference`).
* :func:`call_in_chunks` - splits batches that a kernel's 32-bit indexing refuses.
* :class:`CompiledModel` - ``torch.compile`` with one graph per input shape, compiled on first use
  of that shape, with the compile time recorded (``compile_seconds``), so a caller can decide
  whether it pays off; smaller batches of a compiled image size are padded to it. :func:`should_compile`
  is the policy `colorize image` and `colorize video` apply (`--compile auto`, :func:`compile_mode`).

The ONNX Runtime wrappers live with the exporter in :mod:`colorizer_lib.export`; the photo
pipeline above the Colorizer in :mod:`colorizer_lib.photos`.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .models.deoldify import DeOldifyUnet, UnetBlockDeep
# --------------------------------------------------------------------------------------------------
# channel padding


@torch.no_grad()
def _padded_conv(conv: nn.Conv2d, in_channels: int | None = None, out_channels: int | None = None) -> nn.Conv2d:
    """A copy of ``conv`` with zero weights (and zero bias) for the added input/output channels."""
    in_c = in_channels or conv.in_channels
    out_c = out_channels or conv.out_channels
    if in_c < conv.in_channels or out_c < conv.out_channels or conv.groups != 1:
        raise ValueError(f"cannot pad {conv} to {in_c} -> {out_c} channels")
    new = nn.Conv2d(in_c, out_c, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    bias=conv.bias is not None or out_c != conv.out_channels,
                    padding_mode=conv.padding_mode).to(conv.weight.device, conv.weight.dtype)
    new.weight.zero_()
    new.weight[: conv.out_channels, : conv.in_channels] = conv.weight
    if new.bias is not None:
        new.bias.zero_()
        if conv.bias is not None:
            new.bias[: conv.out_channels] = conv.bias
    new.requires_grad_(False)
    return new


@torch.no_grad()
def _padded_bn(bn: nn.BatchNorm2d, channels: int) -> nn.BatchNorm2d:
    """A copy of an eval-mode BatchNorm whose added channels output exactly 0 (weight 0, bias 0)."""
    new = nn.BatchNorm2d(channels, eps=bn.eps).to(bn.weight.device, bn.weight.dtype).eval()
    n = bn.num_features
    new.weight.zero_()
    new.bias.zero_()
    new.running_mean.zero_()
    new.running_var.fill_(1.0)
    new.weight[:n], new.bias[:n] = bn.weight, bn.bias
    new.running_mean[:n], new.running_var[:n] = bn.running_mean, bn.running_var
    new.requires_grad_(False)
    return new


def _round_up(n: int, multiple: int) -> int:
    return int(math.ceil(n / multiple) * multiple)


def _only_conv(seq: nn.Sequential) -> nn.Conv2d:
    conv = seq[0]
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"expected a folded model (plain nn.Conv2d), found {type(conv).__name__}; "
                        "call colorizer_lib.models.fold.fold_for_inference(model) first.")
    return conv


@torch.no_grad()
def pad_channels(model: nn.Module, multiple: int | None = None) -> nn.Module:
    """Pad a folded DeOldify U-Net's odd channel counts to ``multiple`` (in place); returns ``model``.

    ``multiple=None`` picks the measured best: 32 for the deep U-Net (Artistic: head 303 -> 320
    channels; faster than 304 when compiled, no difference in eager mode: BENCHMARKS.md) and 8 for
    the wide ones (Stable/Video: 259 -> 264; 32 not measured). What changes, with ``multiple=8`` (Artistic; Stable/Video likewise):

    * ``layers.7`` (last decoder block, deep kind): its 300-channel convs get 304 outputs (and
      inputs), the BatchNorms after them 304 channels, and ``layers.8``'s conv 304 inputs.
    * ``layers.8`` (pixel shuffle to full resolution) gets extra zero output channels so that,
      after the shuffle and the concatenation with the 3-channel input, the head is 304 wide.
    * ``layers.10`` (the full-resolution residual block, about half of all the work) and
      ``layers.11`` (the final 1x1 conv) run on 304 channels.

    Every added channel is an exact zero at every layer (zero weights, zero bias, ReLU(0) = 0,
    blur of zeros = 0), so outputs are unchanged. Models other than DeOldify's U-Nets are returned
    untouched.
    """
    if not isinstance(model, DeOldifyUnet):
        return model
    if multiple is None:
        multiple = 32 if model.kind == "deep" else 8
    layers = model.layers
    last_block = layers[7]
    if isinstance(last_block, UnetBlockDeep):
        conv1, conv2 = _only_conv(last_block.conv1), _only_conv(last_block.conv2)
        nf = conv1.out_channels
        nf_pad = _round_up(nf, multiple)
        if nf_pad != nf and len(last_block.conv2) == 3:  # conv, ReLU, BN (no self-attention here)
            last_block.conv1[0] = _padded_conv(conv1, out_channels=nf_pad)
            last_block.conv1[2] = _padded_bn(last_block.conv1[2], nf_pad)
            last_block.conv2[0] = _padded_conv(conv2, in_channels=nf_pad, out_channels=nf_pad)
            last_block.conv2[2] = _padded_bn(last_block.conv2[2], nf_pad)
            shuf_conv = _only_conv(layers[8].conv)
            layers[8].conv[0] = _padded_conv(shuf_conv, in_channels=nf_pad)
    shuf_conv = _only_conv(layers[8].conv)
    up_c = shuf_conv.out_channels // 4  # channels after the pixel shuffle
    head = up_c + 3
    head_pad = _round_up(head, multiple)
    if head_pad == head:
        return model
    extra = head_pad - head
    # Extra zero channels must come out of the shuffle *before* the input's 3 channels are appended:
    # 4 conv outputs per shuffled channel, appended at the end (shuffle groups channels 4c..4c+3).
    layers[8].conv[0] = _padded_conv(shuf_conv, out_channels=(up_c + extra) * 4)
    for sub in layers[10].layers:
        sub[0] = _padded_conv(_only_conv(sub), in_channels=head_pad, out_channels=head_pad)
    final = _only_conv(layers[11])
    layers[11][0] = _padded_conv(final, in_channels=head_pad)
    # DeOldifyUnet.forward concatenates [h, x]: h now ends in `extra` zero channels, then the 3 input
    # channels follow, whereas the padded weights above expect [h, x, zeros]. Permute the residual
    # block's input and output channels (its output is added to its input) and layers.11's inputs:
    # new position p holds old channel order[p].
    order = torch.tensor(list(range(up_c)) + list(range(up_c + 3, head_pad)) + list(range(up_c, up_c + 3)),
                         device=final.weight.device)
    for sub in layers[10].layers:
        conv = sub[0]
        conv.weight.copy_(conv.weight[order][:, order])
        conv.bias.copy_(conv.bias[order])
    layers[11][0].weight.copy_(layers[11][0].weight[:, order])
    return model


# --------------------------------------------------------------------------------------------------
# batches too large for 32-bit indexing


def is_index_limit_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a kernel refusing a tensor of 2**31 or more elements (32-bit index math)."""
    return isinstance(exc, RuntimeError) and "32-bit index" in str(exc)


def call_in_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, chunk_cache: dict) -> torch.Tensor:
    """``fn(x)``, run in smaller batch chunks where a kernel needs 32-bit indexing and the batch is too big.

    Some CUDA kernels (``replicate`` padding among them) refuse tensors of 2**31 elements or more;
    DeOldify's full-resolution head at render factor 35 holds about 95 M elements per image, so one
    forward of more than ~22 Artistic images fails. The batch is then halved until it runs, and the
    working chunk size is remembered in ``chunk_cache`` (keyed by the per-image shape) so later calls
    split at once. Results are concatenated in order: the same output as one big batch. Any other
    error, or the error at batch 1, propagates.
    """
    key = (tuple(x.shape[1:]), x.dtype)
    chunk = chunk_cache.get(key)
    if chunk is None or x.shape[0] <= chunk:
        try:
            return fn(x)
        except RuntimeError as exc:
            if not is_index_limit_error(exc) or x.shape[0] == 1:
                raise
            chunk = x.shape[0] // 2
    while True:
        try:
            out = torch.cat([fn(part) for part in x.split(chunk)])
        except RuntimeError as exc:
            if not is_index_limit_error(exc) or chunk == 1:
                raise
            chunk //= 2
            continue
        chunk_cache[key] = chunk
        return out


# --------------------------------------------------------------------------------------------------
# torch.compile


class CompiledModel(nn.Module):
    """``torch.compile`` around a model, one static graph per input shape, compile times recorded.

    The first call with a new ``(shape, dtype)`` compiles (tens of seconds for the DeOldify nets on
    a GPU); later calls with that shape run the compiled graph. ``compile_seconds`` maps each shape
    to the time its first call took, so a notebook can tell the user what the warm-up cost. A batch
    smaller than one already compiled for the same image size (the last batch of a folder or a
    video) is zero-padded to that batch and the extra outputs dropped, instead of compiling again:
    the generators treat the images of a batch independently in eval mode, so this is exact.

    Args:
        model: the eager model (folded, on its device, in its dtype).
        mode: ``torch.compile`` mode (``None`` = default; ``"max-autotune-no-cudagraphs"`` tunes
            longer; ``"reduce-overhead"`` adds CUDA graphs, which only pay off at batch 1).
        max_shapes: distinct shapes to compile before falling back to eager for new ones (each render
            factor and batch size is a shape), so a sweep over render factors never stalls on compiles.
        backend: ``torch.compile`` backend (``"inductor"``; tests use ``"aot_eager"``, which traces the
            same graph without generating kernels).
    """

    def __init__(self, model: nn.Module, *, mode: str | None = None, max_shapes: int = 4, backend: str = "inductor"):
        super().__init__()
        if max_shapes < 1:
            raise ValueError(f"max_shapes must be at least 1, got {max_shapes}")
        self.model = model
        self.mode = mode
        self.max_shapes = max_shapes
        self.compiled = torch.compile(model, mode=mode, dynamic=False, backend=backend)
        self.compile_seconds: dict[tuple, float] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), x.dtype)
        if key in self.compile_seconds:
            return self.compiled(x)
        larger = [shape[0] for shape, dtype in self.compile_seconds
                  if dtype == x.dtype and shape[1:] == tuple(x.shape[1:]) and shape[0] > x.shape[0]]
        if larger:  # zero images appended on the batch dimension; F.pad keeps the input's memory layout
            padded = F.pad(x, (0, 0) * (x.dim() - 1) + (0, min(larger) - x.shape[0]))
            return self.compiled(padded)[: x.shape[0]]
        if len(self.compile_seconds) >= self.max_shapes:
            return self.model(x)
        start = time.perf_counter()
        out = self.compiled(x)
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        self.compile_seconds[key] = time.perf_counter() - start
        return out


def should_compile(device: torch.device | str, expected_images: int, *, min_images: int = 5000) -> bool:
    """The library's compile policy: compile only on CUDA and only for long jobs.

    Compiling costs tens of seconds to minutes per input shape and saves milliseconds per image
    (the measured break-even, thousands of images, is in BENCHMARKS.md), so
    it pays off for long videos and very large folders (``expected_images >= min_images``), never
    for one photo in a notebook. Users can always force it either way.
    """
    return torch.device(device).type == "cuda" and expected_images >= min_images


def compile_mode(choice: str, col, n_images: int) -> str | None:
    """``--compile``: the ``torch.compile`` mode for this job, or None. ``auto`` compiles only where
    the one-off compile pays for itself (:func:`should_compile`: CUDA, 5,000+
    images); ``on`` and ``max-autotune`` always do (the latter tunes kernels: slower to start)."""
    if choice == "auto":
        return "default" if should_compile(col.device, n_images) else None
    return {"off": None, "on": "default"}.get(choice, choice)


def compile_message(mode: str, device) -> str:
    """What the user is told before a compiled job starts (the first batch waits for the compiler)."""
    wait = "about 7 minutes" if mode == "max-autotune" else "1-2 minutes"
    where = " on a GPU" if getattr(device, "type", device) == "cuda" else ""
    return (f"compiling the model with torch.compile ({mode}): the first batch waits {wait}{where}, "
            "then it runs faster; --compile off skips this")


# --------------------------------------------------------------------------------------------------
# CPU precision


_CPUINFO = Path("/proc/cpuinfo")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively: AVX512-BF16 (AMD Zen 4 and later, Intel Cooper
    Lake and Sapphire Rapids Xeons and later) or AMX-BF16 (Intel Sapphire Rapids and later).

    Read from PyTorch's cpuinfo-based tests of those instruction sets,
    ``torch.cpu._is_avx512_bf16_supported()`` and ``torch.cpu._is_amx_tile_supported()`` (every CPU
    with AMX tiles has AMX-BF16); where this torch lacks them, from the ``avx512_bf16`` / ``amx_bf16``
    flags of ``/proc/cpuinfo``. Two look-alike checks do *not* answer this question:
    ``torch.backends.cpu.get_cpu_capability()`` names ATen's vector level (``"AVX512"`` on every
    AVX-512 CPU, bf16 or not), and ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` says that oneDNN
    can run bfloat16 at all, which it also does on AVX-512 CPUs without BF16 by converting to
    float32 around float32 arithmetic: slower than float32 itself (BENCHMARKS.md). Cached: the
    answer cannot change while the process runs.
    """
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if all(check is not None for check in checks):
        return any(check() for check in checks)
    try:
        text = _CPUINFO.read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def default_cpu_dtype() -> torch.dtype:
    """The CPU's default compute type for every model: bfloat16 where the CPU has it natively
    (:func:`cpu_has_native_bf16`), float32 elsewhere, where emulated bfloat16 would be slower.

    On the 2-core AMD EPYC (Zen 4) development VM, Artistic at render factor 35 ran 2-3x faster in
    bfloat16 than in float32, with outputs as close to float32's as the GPU's bfloat16 (BENCHMARKS.md).
    ``dtype=`` / ``--dtype`` override it either way."""
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def prefers_channels_last(device: torch.device, dtype: torch.dtype) -> bool:
    """The memory layout the models run in: channels-last on CUDA (cuDNN's tensor-core kernels) and
    for bfloat16 on CPU (oneDNN's bfloat16 convolutions; measured faster in BENCHMARKS.md); plain
    NCHW for float32 on CPU, where channels-last was slower (docs/PERF_NOTES.md)."""
    return device.type == "cuda" or (device.type == "cpu" and dtype == torch.bfloat16)
