"""Fast inference paths for the generators, each a drop-in ``model`` callable.

Every runner here maps a normalised grey batch ``(B, 3, S, S)`` to the generator's normalised RGB
``(B, 3, S, S)`` exactly like the eager model it was built from (within the tolerance its test
states), so it can replace ``Colorizer.model``:

* :func:`pad_channels` - zero-pads the odd channel counts of DeOldify's full-resolution head
  (303 for Artistic, 259 for Stable/Video; 300 in Artistic's last decoder block) to a multiple of 8.
  GPU tensor cores (and cuDNN's channels-last kernels) want channel counts that are multiples of 8;
  the padded channels carry exact zeros, so the function is unchanged (bit-for-bit in float32 on
  CPU up to summation order). Works on a *folded* model (:func:`~colorizer_lib.models.fold.fold_for_inference`).
* :class:`CompiledModel` - ``torch.compile`` with one graph per input shape, compiled on first use
  of that shape, with the compile time recorded (``compile_seconds``), so a caller can decide
  whether it pays off; smaller batches of a compiled image size are padded to it. :func:`should_compile`
  is the policy `colorize image` and `colorize video` apply (`--compile auto`).
* :class:`OnnxRunner` - an ONNX Runtime session (CPU by default) behind the same call signature;
  :class:`OnnxCpuModel` exports per render factor on first use (cached on disk, verified) and is
  the faster CPU runtime; :func:`prefer_onnx_on_cpu` is the policy.
* :func:`colorize_files_pipelined` - disk-to-disk colorization of many photos with decoding and
  encoding overlapped with the model in worker threads (the end-to-end fast path of the benchmark);
  :func:`colorize_jobs_pipelined` - the same pipeline with the library's outputs (named outputs in
  any format, ICC profile and EXIF, alpha, comparisons, per-file failures): ``colorize image``'s path.

Nothing here needs torchvision or fastai: the pipeline uses torchvision's nvJPEG codecs when it
is installed and falls back to PIL otherwise.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import DependencyError, InputError

if TYPE_CHECKING:
    from PIL import Image

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
    channels; compiled, batch 16, render factor 35: 183 against 173 images/s with 304 channels on an
    H100, 186 against 177 on an H200; eager: no difference) and 8 for the wide ones (Stable/Video:
    259 -> 264; 32 not measured). What changes, with ``multiple=8`` (Artistic; Stable/Video likewise):

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
    from .models.deoldify import DeOldifyUnet, UnetBlockDeep

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

    Compiling Artistic costs 24-115 s per input shape on an H100 and saves 3-8 ms per image
    (measured break-even: about 4,300 images at render factor 35, 8,000 at 21; BENCHMARKS.md), so
    it pays off for long videos and very large folders (``expected_images >= min_images``), never
    for one photo in a notebook. Users can always force it either way.
    """
    return torch.device(device).type == "cuda" and expected_images >= min_images


# --------------------------------------------------------------------------------------------------
# ONNX Runtime


class OnnxRunner:
    """An ONNX Runtime session as a model callable: ``(B, 3, S, S)`` tensor -> ``(B, 3, S, S)`` tensor.

    Args:
        model_path: an ``.onnx`` file written by :func:`colorizer_lib.export.export_onnx` (or its bytes).
        threads: intra-op threads (default: ``torch.get_num_threads()``).
        providers: ONNX Runtime execution providers (default: CPU only).

    Raises:
        DependencyError: onnxruntime is not installed (``pip install colorizer[onnx]``).
    """

    def __init__(self, model_path: str | os.PathLike | bytes, *, threads: int | None = None,
                 providers: Sequence[str] = ("CPUExecutionProvider",)):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise DependencyError("onnxruntime is not installed; install it with `pip install onnxruntime` "
                                  "(or `pip install colorizer[onnx]`).") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = model_path if isinstance(model_path, bytes) else str(model_path)
        self.session = ort.InferenceSession(source, sess_options=options, providers=list(providers))
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.input_shape = self.session.get_inputs()[0].shape

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        expected = self.input_shape
        if x.dim() != 4 or any(isinstance(e, int) and e != s for e, s in zip(expected, x.shape)):
            raise InputError(f"this ONNX model takes inputs shaped {expected}, got {tuple(x.shape)}; "
                             "export it again for this render factor (`colorize export --render-factor N`).")
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        out = self.session.run([self.output_name], {self.input_name: array})[0]
        return torch.from_numpy(out)

    # Colorizer calls .eval()/.to() on models it is given; a session has nothing to move.
    def eval(self) -> "OnnxRunner":
        return self


def weights_fingerprint(model: nn.Module) -> str:
    """A short sha256 of every parameter and buffer of ``model`` (names, shapes and values)."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class OnnxCpuModel(nn.Module):
    """The faster CPU runtime as a drop-in model: ONNX Runtime, one session per input size.

    The first input of a given size ``S = 16 * render_factor`` exports the (folded, float32) model to
    ``<cache_dir>/onnx/<name>-<fingerprint>-rf<N>.onnx`` (once per machine: later processes reuse the
    file), verifies it against torch when ``verify`` (one extra forward of each), and opens a
    session. Measured on the 2-core development VM: ONNX Runtime 15.5-32.7 s against torch's
    20.8-39.5 s per Artistic rf 35 forward, round-robin under the same load (docs/PERF_NOTES.md).

    Args:
        model: the folded generator (CPU, float32).
        cache_dir: folder for the exported files (the weights cache is a good place).
        name: a readable prefix for the file names.
        verify: check each new export with :func:`colorizer_lib.export.verify_onnx`.
    """

    def __init__(self, model: nn.Module, *, cache_dir: str | os.PathLike, name: str = "model", verify: bool = True,
                 threads: int | None = None):
        super().__init__()
        self.model = model.eval()
        self.folder = Path(cache_dir) / "onnx"
        self.name = name
        self.verify = verify
        self.threads = threads
        self.fingerprint = weights_fingerprint(model)
        self.runners: dict[int, OnnxRunner] = {}

    def path_for(self, render_factor: int) -> Path:
        return self.folder / f"{self.name}-{self.fingerprint}-rf{render_factor}.onnx"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-1]
        if x.dim() != 4 or x.shape[-2] != size or size % 16:
            raise InputError(f"ONNX models take (B, 3, S, S) inputs with S = 16 x render factor, got {tuple(x.shape)}.")
        runner = self.runners.get(size)
        if runner is None:
            runner = self.runners[size] = self._open(size)
        return runner(x)

    def _open(self, size: int) -> OnnxRunner:
        from .export import export_onnx, verify_onnx

        path = self.path_for(size // 16)
        if not path.is_file():
            export_onnx(self.model, path, render_factor=size // 16)
            if self.verify:
                try:
                    verify_onnx(path, self.model, batches=(1,))
                except Exception:
                    path.unlink(missing_ok=True)  # never leave an unverified file to be reused
                    raise
        return OnnxRunner(path, threads=self.threads)


def prefer_onnx_on_cpu(device: torch.device | str, expected_images: int, *, min_images: int = 4,
                       model: nn.Module | None = None, dtype: torch.dtype = torch.float32) -> bool:
    """The CPU runtime policy: ONNX Runtime (float32) when it is installed and the job is long enough to
    repay the one-off export (about a minute for Artistic, cached on disk afterwards), except for a
    ``model`` that runs faster in torch's ``dtype`` = bfloat16 on a CPU with native bfloat16: DeOldify's
    U-Nets, made of dense convolutions, where bfloat16 doubles the arithmetic rate. The compact model
    (depthwise convolutions, small feature maps) stays faster in ONNX Runtime float32 even there.
    Measured on the 2-core Zen 4 VM, interleaved (BENCHMARKS.md). A float16 model never uses it."""
    from .models.deoldify import DeOldifyUnet

    if torch.device(device).type != "cpu" or expected_images < min_images:
        return False
    if dtype == torch.bfloat16 and (not cpu_has_native_bf16() or isinstance(model, DeOldifyUnet)):
        return False
    if dtype not in (torch.float32, torch.bfloat16):
        return False
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


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


# --------------------------------------------------------------------------------------------------
# disk-to-disk pipeline


def read_jpeg_luma(path: str | os.PathLike) -> np.ndarray:
    """Decode a picture's luma as ``(H, W)`` uint8, EXIF orientation applied.

    For JPEGs the decoder outputs the stored Y plane directly (no colour conversion or chroma
    upsampling): for greyscale JPEGs that is exactly the library's luma; for colour JPEGs it
    differs from ``0.299 R + 0.587 G + 0.114 B`` of the decoded RGB by rounding (at most 1/255).
    """
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft("L", img.size)
        img = ImageOps.exif_transpose(img)
        return np.asarray(img.convert("L"))


@dataclass
class PipelineStats:
    """What a pipelined run did: counts and times (seconds).

    ``gpu`` is the time the device spent on the batches (CUDA events, so queued work that overlaps
    the host is counted once); on CPU it is the wall time of the model-and-merge stage.
    ``encoder`` and ``decoder`` say which JPEG codecs ran: ``"pil"`` or ``"torchvision"``.
    ``outputs`` are the files written, in input order; ``failures`` the ``(source, message)`` of
    each picture that could not be read or written (:func:`colorize_jobs_pipelined` only; the
    other function raises instead).
    """

    images: int = 0
    wall: float = 0.0
    gpu: float = 0.0
    outputs: list[Path] = field(default_factory=list)
    encoder: str = "pil"
    decoder: str = "pil"
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.images / self.wall if self.wall else float("nan")


@dataclass
class FileJob:
    """One picture to colorize: where it comes from and where its result goes.

    Attributes:
        source: a file path or an http(s) URL.
        output: the result's path; its extension picks the format (any of
            :data:`~colorizer_lib.image.OUTPUT_FORMATS`).
        compare: where to write the original beside the result, or None.
    """

    source: str
    output: Path
    compare: Path | None = None

    def save(self, result, *, quality: int = 95, forbid: Iterable[str | os.PathLike] = ()) -> Path:
        """Write a :class:`~colorizer_lib.colorizer.ColorizeResult` to :attr:`output` (with its
        provenance, ICC profile and EXIF) and, when :attr:`compare` is set, the side-by-side picture
        there. Paths in ``forbid`` are never written. Returns the output's path.

        Raises:
            InputError: a forbidden path, a format that cannot hold the picture (alpha to JPEG) or a failed write.
        """
        from .image import save_image

        path = result.save(self.output, quality=quality, forbid=forbid)
        if self.compare is not None:
            save_image(result.compare().convert("RGB"), self.compare, provenance=result.provenance, forbid=forbid)
        return path

    def guarded(self, protected: frozenset[Path]) -> tuple[Path, ...]:
        """This job's targets (output, comparison) that are among ``protected`` (resolved paths, see
        :func:`resolved_paths`): the ``forbid`` for :meth:`save`, found at once however many inputs
        a run has, where passing all of them would resolve each one again for every file."""
        return tuple(p for p in (self.output, self.compare) if p is not None and p.expanduser().resolve() in protected)


def resolved_paths(paths: Iterable[str | os.PathLike]) -> frozenset[Path]:
    """``paths`` resolved once, for :meth:`FileJob.guarded`."""
    return frozenset(Path(p).expanduser().resolve() for p in paths)


def colorize_files_pipelined(colorizer, paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                             render_factor: int | None = None, batch_size: int = 8, workers: int | None = None,
                             quality: int = 95, out_format: str = "jpg", max_batches_in_flight: int = 3,
                             encoder: str = "auto", decoder: str = "auto",
                             reader: Callable[[str | os.PathLike], np.ndarray] = read_jpeg_luma) -> PipelineStats:
    """Colorize picture files into ``out_dir`` (``<stem>.<out_format>``, jpg or png) with I/O
    overlapped with the model. Outputs carry the library's provenance metadata (written atomically
    by :func:`colorizer_lib.image.save_image`), but not the inputs' ICC profile or EXIF, and the
    first file that cannot be read or written raises (:func:`colorize_jobs_pipelined` writes what
    the library writes and reports such files instead).

    Three stages overlap. Worker threads decode ahead of the model (PIL releases the GIL while
    decoding and encoding) and, on CUDA, copy each luma into page-locked memory. The calling thread
    only *queues* device work: upload, model and full-resolution merge (``predict_chroma`` then
    ``compose`` semantics: luma kept at full resolution, chroma upsampled bilinearly) and the
    download into page-locked buffers, then goes on to the next batch without waiting for the
    device. Worker threads wait for each batch's CUDA event and encode. At most
    ``max_batches_in_flight`` batches are queued or being encoded, so host and device memory stay
    bounded for any number of files.

    ``encoder``: ``"pil"`` encodes on the CPU (libjpeg-turbo, about 80 ms per 12 MP photo per core);
    ``"torchvision"`` encodes JPEGs with ``torchvision.io.encode_jpeg`` on the colorizer's device
    (nvJPEG on CUDA: about 1,600 12 MP photos/s on an H100, so only the small compressed files
    leave the GPU); ``"auto"`` picks torchvision on CUDA for JPEG output when it is installed, PIL
    otherwise. ``decoder``: ``"pil"`` decodes with ``reader`` in the worker threads;
    ``"torchvision"`` reads the files in the workers and decodes complete baseline greyscale/colour
    JPEGs on the device in one batch (``torchvision.io.decode_jpeg``, nvJPEG on CUDA; EXIF
    orientation applied; other files, and any the device decoder rejects, still go through
    ``reader``); ``"auto"``: torchvision on CUDA when installed.
    The CPU decoders hold Python's GIL for part of each 12 MP photo, which starves the thread that
    drives the GPU, so device decoding is what lets the pipeline keep up with the model.

    Returns:
        :class:`PipelineStats` with the images done, the wall time, the device time and the output paths.
    """
    from PIL import Image

    from .colorizer import provenance_metadata
    from .image import save_image, save_jpeg_bytes

    if out_format not in ("jpg", "png"):
        raise InputError(f"out_format must be 'jpg' or 'png', got {out_format!r}.")
    _check_pipeline_arguments(batch_size, max_batches_in_flight)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rf = colorizer.render_factor_or_default(render_factor)
    cuda = colorizer.device.type == "cuda"
    stats = PipelineStats(encoder=_pick_codec("encoder", encoder, cuda and out_format == "jpg"),
                          decoder=_pick_codec("decoder", decoder, cuda))
    if stats.encoder == "torchvision" and out_format != "jpg":
        raise InputError(f"encoder='torchvision' writes JPEG only; use out_format='jpg' or encoder='pil' for {out_format}.")
    device_jpeg = stats.encoder == "torchvision"
    # The same provenance as Colorizer results, so `colorize image`'s resume logic recognises the outputs.
    provenance = provenance_metadata(colorizer.name, rf)
    jobs = [FileJob(str(path), out_dir / f"{Path(path).stem}.{out_format}") for path in paths]

    def decode(job: FileJob, device_may_decode: bool) -> _Decoded:
        if device_may_decode and stats.decoder == "torchvision":
            jpeg = _read_plain_jpeg(job.source)
            if jpeg is not None:
                return _Decoded(jpeg, device_jpeg=device_jpeg)
        return _Decoded(_staged(reader(job.source), cuda), device_jpeg=device_jpeg)

    def finish(job: FileJob, decoded: _Decoded, host: torch.Tensor) -> Path:
        if decoded.device_jpeg:  # already a JPEG stream
            return save_jpeg_bytes(host.numpy().tobytes(), job.output, provenance=provenance)
        return save_image(Image.fromarray(host.numpy(), "RGB"), job.output, provenance=provenance, quality=quality)

    _run_pipeline(colorizer, jobs, decode, finish, stats, rf=rf, batch_size=batch_size, workers=workers,
                  max_batches_in_flight=max_batches_in_flight, jpeg_quality=quality)
    return stats


def colorize_jobs_pipelined(colorizer, jobs: Sequence[FileJob], *, render_factor: int | None = None,
                            batch_size: int = 8, workers: int | None = None, quality: int = 95,
                            max_batches_in_flight: int = 3, encoder: str = "auto", decoder: str = "auto",
                            watermark: bool = False, forbid: Iterable[str | os.PathLike] = (),
                            on_done: Callable[[FileJob], None] | None = None) -> PipelineStats:
    """Colorize ``jobs`` with the pipeline of :func:`colorize_files_pipelined`, writing what
    :meth:`Colorizer.colorize <colorizer_lib.colorizer.Colorizer.colorize>` and :meth:`FileJob.save`
    write: ``colorize image``'s fast path.

    * Inputs are read by :func:`~colorizer_lib.image.load_image` in the worker threads (any
      format, URLs, EXIF orientation, alpha, 16-bit luma, CMYK, ICC profile and EXIF), and the model
      gets the same luma as in ``Colorizer.colorize``. With the device decoder, complete baseline
      JPEG files are decoded on the device instead (not for comparisons, which need the original
      picture); their ICC profile and EXIF come from the headers
      (:func:`~colorizer_lib.image.carried_metadata`), with ``load_image``'s checks and pixel limit.
    * Results are written by :meth:`FileJob.save` (every output format, comparisons, alpha
      re-attached, ``watermark``), or, with the device encoder, JPEG outputs with none of those
      are encoded on the device and written by :func:`~colorizer_lib.image.save_jpeg_bytes` with
      the same provenance, ICC profile and EXIF.
    * A picture that cannot be read or written (:class:`InputError`, or ``OSError``) is recorded in
      ``failures`` as ``(source, message)`` and the others go on; other errors (out of memory, a
      broken model) propagate once the work in progress has stopped.

    Pixels equal ``Colorizer.colorize``'s within 1/255 per channel: the merge is ``Colorizer.compose``
    on the luma the model saw, where the library merges a luma computed in another order (equal but
    for the last float bit), and in strips for photos over 4 megapixels. The device decoder
    (nvJPEG on CUDA) reads the stored luma plane: for greyscale and neutral RGB JPEGs the values
    PIL's decoding gives (measured on an H200, up to float rounding), for colour JPEGs up to about
    3/255 away from the luma of PIL's RGB; and nvJPEG encodes differently from libjpeg.

    Args:
        colorizer: the :class:`~colorizer_lib.colorizer.Colorizer`.
        jobs: what to colorize and where to write it (``colorize image`` plans them).
        watermark: add the palette mark, as ``Colorizer.colorize(..., watermark=True)``.
        forbid: paths never written (``colorize image`` passes its inputs).
        on_done: called with each job once it is written or has failed, from the thread that
            finished it, one call at a time (a progress bar).
        render_factor, batch_size, workers, quality, max_batches_in_flight: as in
            :func:`colorize_files_pipelined`.
        encoder, decoder: as in :func:`colorize_files_pipelined`; ``"auto"`` picks torchvision's
            codecs on CUDA when installed. The encoder only ever applies to JPEG outputs.

    Returns:
        :class:`PipelineStats`, with ``outputs`` in job order and ``failures``.
    """
    from PIL import Image

    from .colorizer import ColorizeResult, _original_for_display, provenance_metadata
    from .image import OUTPUT_FORMATS, apply_watermark, load_image, save_jpeg_bytes, to_luma_tensor

    _check_pipeline_arguments(batch_size, max_batches_in_flight)
    rf = colorizer.render_factor_or_default(render_factor)
    cuda = colorizer.device.type == "cuda"
    stats = PipelineStats(encoder=_pick_codec("encoder", encoder, cuda), decoder=_pick_codec("decoder", decoder, cuda))
    protected = resolved_paths(forbid)
    provenance = provenance_metadata(colorizer.name, rf)

    def device_jpeg(job: FileJob, alpha) -> bool:
        """Whether the device encodes this job's output: a JPEG that PIL need not touch (no mark,
        no comparison; no alpha, which FileJob.save refuses to put in a JPEG, as the library does)."""
        return (stats.encoder == "torchvision" and OUTPUT_FORMATS.get(job.output.suffix.lower()) == "JPEG"
                and not watermark and job.compare is None and alpha is None)

    def decode(job: FileJob, device_may_decode: bool) -> _Decoded:
        if device_may_decode and stats.decoder == "torchvision" and job.compare is None:
            jpeg = _read_plain_jpeg(job.source)
            if jpeg is not None:
                return _Decoded(jpeg, icc_profile=jpeg.icc_profile, exif=jpeg.exif, device_jpeg=device_jpeg(job, None))
        loaded = load_image(job.source)
        return _Decoded(_staged(to_luma_tensor(loaded)[0, 0].numpy(), cuda), alpha=loaded.alpha,
                        original=_original_for_display(loaded) if job.compare is not None else None,
                        icc_profile=loaded.icc_profile, exif=loaded.exif, device_jpeg=device_jpeg(job, loaded.alpha))

    def finish(job: FileJob, decoded: _Decoded, host: torch.Tensor) -> Path:
        metadata = {"icc_profile": decoded.icc_profile, "exif": decoded.exif}
        forbid = job.guarded(protected)
        if decoded.device_jpeg:
            return save_jpeg_bytes(host.numpy().tobytes(), job.output, provenance=provenance, forbid=forbid, **metadata)
        image = Image.fromarray(host.numpy(), "RGB")
        if decoded.alpha is not None:
            image.putalpha(decoded.alpha)
        result = ColorizeResult(apply_watermark(image) if watermark else image, decoded.original, rf, colorizer.name,
                                source=job.source, watermarked=watermark, **metadata)
        return job.save(result, quality=quality, forbid=forbid)

    _run_pipeline(colorizer, list(jobs), decode, finish, stats, rf=rf, batch_size=batch_size, workers=workers,
                  max_batches_in_flight=max_batches_in_flight, jpeg_quality=quality, failed=(InputError, OSError),
                  on_done=on_done)
    return stats


def _check_pipeline_arguments(batch_size: int, max_batches_in_flight: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    if max_batches_in_flight < 1:
        raise ValueError(f"max_batches_in_flight must be at least 1, got {max_batches_in_flight}")


@dataclass
class _JpegFile:
    """A JPEG file's bytes (1-D uint8 tensor) and its EXIF orientation, for decoding on the device,
    with the ICC profile and EXIF that ``load_image`` would carry to the output."""

    data: torch.Tensor
    orientation: int
    icc_profile: bytes | None = None
    exif: bytes | None = None


@dataclass
class _Decoded:
    """One input ready for the device stage, and what its output needs from the input."""

    luma: torch.Tensor | _JpegFile | None  # (H, W) uint8 or float32 host tensor, a JPEG; None once uploaded
    alpha: Image.Image | None = None
    original: Image.Image | None = None  # the input as loaded, for a comparison picture
    icc_profile: bytes | None = None
    exif: bytes | None = None
    device_jpeg: bool = False  # the result is encoded to JPEG on the device


def _run_pipeline(colorizer, jobs: Sequence[FileJob], decode: Callable[[FileJob, bool], _Decoded],
                  finish: Callable[[FileJob, _Decoded, torch.Tensor], Path], stats: PipelineStats, *, rf: int,
                  batch_size: int, workers: int | None, max_batches_in_flight: int, jpeg_quality: int,
                  failed: tuple[type[BaseException], ...] = (),
                  on_done: Callable[[FileJob], None] | None = None) -> None:
    """The three overlapping stages of the pipelined functions (see :func:`colorize_files_pipelined`); fills ``stats``.

    ``decode(job, True)`` runs in the worker threads; ``decode(job, False)`` runs here for a file
    the device decoder rejected and must decode on the CPU. This thread queues the device work of
    each batch (:func:`_lumas_on_device`, :func:`_colorize_lumas`); ``finish(job, decoded, host)``
    runs in the worker threads once the batch's results are on the host, writes the output and
    returns its path. An exception of a type in ``failed`` from ``decode`` or ``finish`` is recorded
    in ``stats.failures`` and its job skipped; any other propagates, queued work being cancelled.
    """
    from .colorizer import out_of_memory_guard

    workers = workers or max(2, (os.cpu_count() or 2) - 1)
    cuda = colorizer.device.type == "cuda"
    start = time.perf_counter()
    lock = threading.Lock()
    failures: dict[int, str] = {}

    def settle(index: int, error: BaseException | None = None) -> None:
        with lock:
            if error is not None:
                failures[index] = str(error)
            if on_done is not None:
                on_done(jobs[index])

    def write(index: int, decoded: _Decoded, host: torch.Tensor, done) -> Path | None:
        try:
            if done is not None:
                done.synchronize()  # this batch's download has landed (releases the GIL while waiting)
            path = finish(jobs[index], decoded, host)
        except failed as exc:
            settle(index, exc)
            return None
        settle(index)
        return path

    def upload(batch: list[tuple[int, _Decoded]]) -> list[tuple[int, _Decoded, torch.Tensor]]:
        """The batch's lumas on the device; a file that the device decoder rejects is decoded on
        the CPU here instead (rare: it holds up this thread)."""
        uploaded = []
        for (index, decoded), luma in zip(batch, _lumas_on_device([d.luma for _, d in batch], colorizer.device)):
            if luma is None:
                try:
                    decoded = decode(jobs[index], False)
                except failed as exc:
                    settle(index, exc)
                    continue
                luma = _lumas_on_device([decoded.luma], colorizer.device)[0]
            decoded.luma = None  # the upload keeps what it needs
            uploaded.append((index, decoded, luma))
        return uploaded

    def written(futures: list[Future]) -> list[Path]:
        return [path for path in (future.result() for future in futures) if path is not None]

    device_spans = []  # (start, end) CUDA events per batch
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        decoding: dict[int, Future] = {}
        ahead = 2 * batch_size  # decoding runs at most two batches ahead
        in_flight: list[list[Future]] = []
        for first in range(0, len(jobs), batch_size):
            for i in range(first, min(first + batch_size + ahead, len(jobs))):
                if i not in decoding:
                    decoding[i] = pool.submit(decode, jobs[i], True)
            batch = []
            for i in range(first, min(first + batch_size, len(jobs))):
                try:
                    batch.append((i, decoding.pop(i).result()))
                except failed as exc:
                    settle(i, exc)
            while len(in_flight) >= max_batches_in_flight:
                stats.outputs.extend(written(in_flight.pop(0)))
            if not batch:
                continue
            stage_start = time.perf_counter()
            if cuda:
                began = torch.cuda.Event(enable_timing=True)
                began.record()
            with torch.inference_mode(), out_of_memory_guard(rf, len(batch)):
                ready = upload(batch)
                host = _colorize_lumas(colorizer, [luma for _, _, luma in ready], rf, jpeg_quality,
                                       [d.device_jpeg for _, d, _ in ready]) if ready else []
            done = None
            if cuda:
                done = torch.cuda.Event(enable_timing=True)
                done.record()
                device_spans.append((began, done))
            else:
                stats.gpu += time.perf_counter() - stage_start
            in_flight.append([pool.submit(write, i, d, rgb, done) for (i, d, _), rgb in zip(ready, host)])
        for futures in in_flight:
            stats.outputs.extend(written(futures))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if device_spans:
        stats.gpu = sum(a.elapsed_time(b) for a, b in device_spans) / 1e3
    stats.failures = [(jobs[i].source, failures[i]) for i in sorted(failures)]
    stats.images = len(stats.outputs)
    stats.wall = time.perf_counter() - start


_HOST_DTYPES = {np.dtype(np.uint8): torch.uint8, np.dtype(np.float32): torch.float32}


def _staged(luma: np.ndarray, pin: bool) -> torch.Tensor:
    """An ``(H, W)`` uint8 or float32 luma copied into a host tensor, page-locked when ``pin`` (on
    CUDA) so that its upload is a true asynchronous copy."""
    staged = torch.empty(luma.shape, dtype=_HOST_DTYPES[luma.dtype], pin_memory=pin)
    staged.numpy()[...] = luma
    return staged


def _read_plain_jpeg(path) -> _JpegFile | None:
    """The file as a :class:`_JpegFile` when it is a complete baseline greyscale or YCbCr JPEG that
    nvJPEG decodes, within ``load_image``'s pixel limit; ``None`` for anything else, including what
    is no readable local file or ends early (the caller decodes those on the CPU, which says what is
    wrong with them)."""
    from .image import carried_metadata, open_header

    try:
        img = open_header(path)
    except InputError:
        return None
    with img:  # the headers only
        if img.format != "JPEG" or img.mode not in ("L", "RGB") or img.info.get("progressive") \
                or img.info.get("progression"):
            return None
        orientation = int(img.getexif().get(0x0112, 1) or 1)
        icc_profile, exif = carried_metadata(img, str(path))
    data = Path(path).read_bytes()
    if not data.rstrip(b"\0").endswith(b"\xff\xd9"):  # truncated: PIL refuses it, nvJPEG may not
        return None
    return _JpegFile(torch.frombuffer(bytearray(data), dtype=torch.uint8), orientation if 1 <= orientation <= 8 else 1,
                     icc_profile, exif)


def orient(grey: torch.Tensor, orientation: int) -> torch.Tensor:
    """Apply an EXIF orientation (1-8) to an ``(H, W)`` tensor, exactly as PIL's ``exif_transpose``."""
    ops = {
        2: lambda t: t.flip(-1),
        3: lambda t: t.flip(-2, -1),
        4: lambda t: t.flip(-2),
        5: lambda t: t.transpose(-2, -1),
        6: lambda t: torch.rot90(t, -1, (-2, -1)),
        7: lambda t: t.flip(-2, -1).transpose(-2, -1),
        8: lambda t: torch.rot90(t, 1, (-2, -1)),
    }
    return ops[orientation](grey) if orientation in ops else grey


def _pick_codec(argument: str, choice: str, auto_uses_torchvision: bool) -> str:
    """``"pil"`` or ``"torchvision"`` for :func:`colorize_files_pipelined`'s ``encoder`` or
    ``decoder`` argument (named by ``argument``): ``"auto"`` means torchvision when
    ``auto_uses_torchvision`` and it is installed."""
    if choice not in ("auto", "pil", "torchvision"):
        raise InputError(f"{argument} must be 'auto', 'pil' or 'torchvision', got {choice!r}.")
    if choice == "pil" or (choice == "auto" and not auto_uses_torchvision):
        return "pil"
    try:
        import torchvision.io  # noqa: F401
    except ImportError as exc:
        if choice == "auto":
            return "pil"
        raise DependencyError(f"{argument}='torchvision' needs torchvision (`pip install torchvision`); "
                              f"or use {argument}='pil'.") from exc
    return "torchvision"


def _lumas_on_device(lumas: Sequence[torch.Tensor | _JpegFile], device: torch.device) -> list[torch.Tensor | None]:
    """Each luma as a ``(1, 1, H, W)`` float32 tensor in [0, 1] on ``device``: host tensors (``(H, W)``
    uint8, or float32 already in [0, 1]) are uploaded (asynchronously from page-locked memory), JPEG
    files decoded there in one batch (nvJPEG on CUDA; EXIF orientation applied); ``None`` for a file
    that the device decoder rejects."""
    on_device: list = [None] * len(lumas)
    jpegs = [i for i, t in enumerate(lumas) if isinstance(t, _JpegFile)]
    for i, grey in zip(jpegs, _decode_jpegs([lumas[i].data for i in jpegs], device)):
        if grey is not None:
            on_device[i] = orient(grey[0], lumas[i].orientation)
    for i, t in enumerate(lumas):
        if not isinstance(t, _JpegFile):
            on_device[i] = t.to(device, non_blocking=True)
    return [None if t is None else (t.float().div_(255.0) if t.dtype == torch.uint8 else t.float())[None, None]
            for t in on_device]


def _decode_jpegs(streams: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """JPEG streams decoded to ``(1, H, W)`` uint8 grey on ``device`` in one batch; ``None`` for a
    stream that the decoder rejects, which does not fail the others."""
    if not streams:
        return []
    from torchvision.io import ImageReadMode, decode_jpeg

    def run(batch: list[torch.Tensor]) -> list[torch.Tensor]:
        return decode_jpeg(batch, mode=ImageReadMode.GRAY, device=device)

    try:
        return run(streams)
    except RuntimeError:  # one bad stream fails the whole batch: find it
        pass
    decoded = []
    for stream in streams:
        try:
            decoded.append(run([stream])[0])
        except RuntimeError:
            decoded.append(None)
    return decoded


def _colorize_lumas(colorizer, lumas: list[torch.Tensor], rf: int, jpeg_quality: int | None = None,
                    device_jpeg: Sequence[bool] | None = None) -> list[torch.Tensor]:
    """Queue the batched model and the library's full-resolution merge (``Colorizer.compose``) for
    ``(1, 1, H, W)`` float lumas on the colorizer's device (:func:`_lumas_on_device`). Returns ``(H, W, 3)`` uint8 RGB host tensors,
    filled asynchronously on CUDA (page-locked; valid once the stream reaches a later event) and
    ready at once on CPU; or, with ``jpeg_quality``, for the photos flagged in ``device_jpeg``
    (default: all), the photo's JPEG stream (1-D uint8, encoded on the device, ready)."""
    cuda = colorizer.device.type == "cuda"
    if device_jpeg is None or jpeg_quality is None:
        device_jpeg = [jpeg_quality is not None] * len(lumas)
    inputs = torch.cat([colorizer.model_input(t, rf) for t in lumas])
    chroma = colorizer.chroma_from_input(inputs, rf)
    results = []
    for luma, c, as_jpeg in zip(lumas, chroma, device_jpeg):
        rgb = colorizer.compose(luma, c[None])[0].mul_(255).round_().to(torch.uint8)
        if as_jpeg:
            results.append(rgb.contiguous())  # (3, H, W), as encode_jpeg wants
            continue
        rgb = rgb.permute(1, 2, 0).contiguous()
        if cuda:
            host = torch.empty(rgb.shape, dtype=torch.uint8, pin_memory=True)
            host.copy_(rgb, non_blocking=True)
        else:
            host = rgb
        results.append(host)
    to_encode = [i for i, as_jpeg in enumerate(device_jpeg) if as_jpeg]
    if to_encode:
        from torchvision.io import encode_jpeg

        for i, data in zip(to_encode, encode_jpeg([results[i] for i in to_encode], quality=jpeg_quality)):
            results[i] = data.cpu()
    return results
