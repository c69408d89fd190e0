"""ONNX export of the generators (``colorize export --format onnx``), verified with ONNX Runtime.

The exported graph is the *folded* model (spectral/weight norm in plain weights, conv+BN fused), in
float32, with the generator's own I/O: input ``"input"`` ``(B, 3, S, S)``, output ``"output"``. DeOldify's
and the compact model take normalised grey and return normalised RGB ``(B, 3, S, S)`` in ``(-3, 3)``;
DDColor takes grey RGB in ``[0, 1]`` and returns Lab a, b ``(B, 2, S, S)`` (``S`` a multiple of 32: even
render factors). Nothing here depends on the architecture. ``S = 16 * render_factor`` is
fixed in the file (DeOldify's decoder resizes odd-sized maps depending on ``S``, and static shapes
let ONNX Runtime plan memory and pick kernels once); the batch dimension is dynamic. Export one
file per render factor you use.

Verification runs the file with ONNX Runtime on random inputs of two batch sizes and compares it
with the torch model: the largest absolute difference must stay within ``ONNX_TOLERANCE``.

Running the files: :class:`OnnxRunner` - an ONNX Runtime session (CPU by default) behind the model's
call signature; :class:`OnnxCpuModel` exports per render factor on first use (cached on disk,
verified) and is the faster CPU runtime; :func:`prefer_onnx_on_cpu` is the policy. The command line
(``colorize export``) is :mod:`colorizer_lib.export_cli`.
"""

from __future__ import annotations

import os
import secrets
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from . import hub
from .accel import cpu_has_native_bf16
from .color import grey_to_rgb, normalize_imagenet
from .constants import check_render_factor
from .errors import DependencyError, InputError, NonFiniteOutputError, VerificationError
from .models.deoldify import DeOldifyUnet

ONNX_TOLERANCE = 2e-3
"""Largest allowed |ONNX Runtime - torch| on the normalised output (range (-3, 3)); 2e-3 there is about
0.13/255 of a colour level, far below what a JPEG or a screen shows. Float32 both sides: the differences
come from summation order only (seen: ~1e-5 on the tiny model, ~1e-4 on the full ones)."""

OPSET = 17


def export_onnx(model: nn.Module, path: str | os.PathLike, *, render_factor: int, opset: int = OPSET) -> Path:
    """Write ``model`` (a folded generator, any device/dtype; exported in float32 on the CPU) to ``path``.

    Args:
        model: the generator; fold it first (:func:`colorizer_lib.models.fold.fold_for_inference`,
            as ``Colorizer`` does) so the file holds plain convolutions.
        path: the ``.onnx`` file to write (atomically: a partial file never appears under this name).
        render_factor: the file takes ``(B, 3, 16 * render_factor, 16 * render_factor)`` inputs.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    rf = check_render_factor(render_factor)
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise InputError(f"the ONNX file name must end in .onnx, got {path.name}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().to("cpu", torch.float32)
    size = 16 * rf
    example = torch.zeros(1, 3, size, size)
    require_onnx_extra("onnx")
    # a name of its own per export, removed on any failure: two exports never write one file
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.part")  # the umask's file mode
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about shape checks (static here by design)
            torch.onnx.export(model, (example,), str(tmp), dynamo=False, opset_version=opset,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def require_onnx_extra(*modules: str) -> None:
    """Raise :class:`DependencyError` naming the install command unless ``modules`` (of the ``onnx``
    extra: ``onnx`` exports, ``onnxruntime`` runs and verifies) are importable."""
    import importlib.util

    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise DependencyError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed: ONNX export and ONNX "
            f"Runtime need Colorizer's onnx extra. Install it with `pip install \"colorizer[onnx]\"` (from a "
            f"clone: `pip install -e \".[onnx]\"`).")


@dataclass
class OnnxCheck:
    """Result of :func:`verify_onnx`: the largest and the mean absolute difference over all checks."""

    max_abs: float
    mean_abs: float
    batches: tuple[int, ...]


def verify_onnx(path: str | os.PathLike, model: nn.Module, *, batches: Sequence[int] = (1, 2), seed: int = 0,
                tolerance: float = ONNX_TOLERANCE) -> OnnxCheck:
    """Run ``path`` with ONNX Runtime and ``model`` with torch on the same random normalised grey
    inputs (one draw per batch size); raise unless they agree within ``tolerance``.

    Raises:
        VerificationError: the outputs differ by more than ``tolerance`` (or ONNX Runtime's are not finite).
        NonFiniteOutputError: torch's outputs are not finite (broken weights: nothing to compare with).
        DependencyError: onnxruntime is missing (from :class:`OnnxRunner`).
    """
    runner = OnnxRunner(path)
    size = runner.input_shape[-1]
    model = model.eval().to("cpu", torch.float32)
    generator = torch.Generator().manual_seed(seed)
    worst, total, count = 0.0, 0.0, 0
    for batch in batches:
        x = normalize_imagenet(grey_to_rgb(torch.rand(batch, 1, size, size, generator=generator))).contiguous()
        with torch.inference_mode():
            expected = model(x)
        if not torch.isfinite(expected).all():
            raise NonFiniteOutputError(f"{path} cannot be checked: torch's own output of the model is NaN or infinite "
                                       f"for random grey inputs, so its weights are broken; nothing is exported.")
        got = runner(x)
        if got.shape != expected.shape or not torch.isfinite(got).all():
            raise VerificationError(f"{path}: ONNX Runtime returned shape {tuple(got.shape)} or non-finite values "
                                    f"where torch gives {tuple(expected.shape)}; export the model again.")
        diff = (got - expected).abs()
        worst = max(worst, float(diff.max()))
        total += float(diff.sum())
        count += diff.numel()
    check = OnnxCheck(max_abs=worst, mean_abs=total / count, batches=tuple(batches))
    if not worst <= tolerance:
        raise VerificationError(f"{path}: ONNX Runtime and torch differ by up to {worst:.2e} (tolerance "
                                f"{tolerance:.0e}); the export is wrong for this model. Report it with the model name.")
    return check


# --------------------------------------------------------------------------------------------------
# ONNX Runtime


class OnnxRunner:
    """An ONNX Runtime session as a model callable: ``(B, 3, S, S)`` tensor -> ``(B, 3, S, S)`` tensor.

    Args:
        model_path: an ``.onnx`` file written by :func:`export_onnx` (or its bytes).
        threads: intra-op threads (default: ``torch.get_num_threads()``).
        providers: ONNX Runtime execution providers (default: CPU only).

    Raises:
        DependencyError: onnxruntime is not installed (``pip install colorizer[onnx]``).
    """

    def __init__(self, model_path: str | os.PathLike | bytes, *, threads: int | None = None,
                 providers: Sequence[str] = ("CPUExecutionProvider",)):
        require_onnx_extra("onnxruntime")
        import onnxruntime as ort
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
    file), verifies it against torch when ``verify`` (one extra forward of each), records its sha256
    (``<file>.sha256``) and opens a session. Measured on the 2-core development VM: ONNX Runtime
    15.5-32.7 s against torch's 20.8-39.5 s per Artistic rf 35 forward, round-robin under the same load
    (docs/PERF_NOTES.md).

    The cache is shared safely: the export runs under the cache's file lock
    (:func:`colorizer_lib.hub.cache_lock`), so a second process exporting the same file waits and then
    reuses it; a cached file is used only when it matches its recorded sha256 and opens in ONNX Runtime,
    and is exported again otherwise (a truncated or foreign file); and when the cache cannot be written
    (a read-only folder, a full disk) the model runs with torch instead, with one warning on stderr
    (the same results, slower), rather than failing the job.

    Args:
        model: the folded generator (CPU, float32).
        cache_dir: folder for the exported files (the weights cache is a good place).
        name: a readable prefix for the file names.
        verify: check each new export with :func:`verify_onnx`.
        progress: say when waiting for another process's export (warnings are always shown).

    Attributes:
        exported: the files this object exported (the others it used were already cached).
        fallback_reason: why the model runs with torch (the cache could not be written), else None.
    """

    def __init__(self, model: nn.Module, *, cache_dir: str | os.PathLike, name: str = "model", verify: bool = True,
                 threads: int | None = None, progress: bool = True):
        super().__init__()
        self.progress = progress
        self.model = model.eval()
        self.folder = Path(cache_dir) / "onnx"
        self.name = name
        self.verify = verify
        self.threads = threads
        self.fingerprint = weights_fingerprint(model)
        self.runners: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {}
        self.exported: list[Path] = []
        self.fallback_reason: str | None = None

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

    def _open(self, size: int) -> Callable[[torch.Tensor], torch.Tensor]:
        path = self.path_for(size // 16)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with hub.cache_lock(path, progress=self.progress, waiting=f"exporting {path.name}"):
                runner = self._cached(path)
                if runner is None:
                    self._export(path, size // 16)
                    runner = OnnxRunner(path, threads=self.threads)
            return runner
        except NonFiniteOutputError:  # broken weights, no export: torch runs, and the colorizer's check names them
            return self.model
        except OSError as exc:  # a read-only folder, a full disk: torch computes the same
            return self._torch_instead(f"cannot write the ONNX Runtime cache in {self.folder} ({exc})")

    def _cached(self, path: Path) -> OnnxRunner | None:
        """A session on the cached file when it is intact (its recorded sha256, and ONNX Runtime opens
        it); None when there is none, or it was broken and has been removed to be exported again."""
        if not path.is_file():
            return None
        try:
            if hub.verified_file_hash(path) is None:
                raise VerificationError(f"{path} has no checksum record (an export that did not finish)")
            return OnnxRunner(path, threads=self.threads)
        except DependencyError:
            raise
        except Exception as exc:  # noqa: BLE001 - VerificationError, or ONNX Runtime's InvalidProtobuf, Fail...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"colorizer: the cached ONNX model {path} is unusable ({type(exc).__name__}: {first[:200]}); "
                  f"exporting it again", file=sys.stderr)
            path.unlink(missing_ok=True)
            hub.hash_record_path(path).unlink(missing_ok=True)
            return None

    def _export(self, path: Path, render_factor: int) -> None:
        export_onnx(self.model, path, render_factor=render_factor)
        try:
            if self.verify:
                verify_onnx(path, self.model, batches=(1,))
            hub.record_file_hash(path, hub.file_sha256(path))
        except BaseException:
            path.unlink(missing_ok=True)  # never leave an unverified file to be reused
            raise
        self.exported.append(path)

    def _torch_instead(self, reason: str) -> nn.Module:
        if self.fallback_reason is None:
            print(f"colorizer: warning: {reason}; running the model with torch instead (the same results, slower "
                  f"on a CPU). Free disk space or make the folder writable (or set COLORIZER_CACHE) to use ONNX "
                  f"Runtime.", file=sys.stderr)
            self.fallback_reason = reason
        return self.model


def prefer_onnx_on_cpu(device: torch.device | str, expected_images: int, *, min_images: int = 4,
                       model: nn.Module | None = None, dtype: torch.dtype = torch.float32) -> bool:
    """The CPU runtime policy: ONNX Runtime (float32) when it is installed and the job is long enough to
    repay the one-off export (about a minute for Artistic, cached on disk afterwards), except for a
    ``model`` that runs faster in torch's ``dtype`` = bfloat16 on a CPU with native bfloat16: DeOldify's
    U-Nets, made of dense convolutions, where bfloat16 doubles the arithmetic rate. The compact model
    (depthwise convolutions, small feature maps) stays faster in ONNX Runtime float32 even there.
    Measured on the 2-core Zen 4 VM, interleaved (BENCHMARKS.md). A float16 model never uses it."""
    if torch.device(device).type != "cpu" or expected_images < min_images:
        return False
    if dtype == torch.bfloat16 and (not cpu_has_native_bf16() or isinstance(model, DeOldifyUnet)):
        return False
    if dtype not in (torch.float32, torch.bfloat16):
        return False
    import importlib.util

    # both halves of the extra: onnx exports the model, onnxruntime runs it
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))
