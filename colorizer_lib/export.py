"""ONNX export of the generators (``colorize export --format onnx``), verified with ONNX Runtime.

The exported graph is the *folded* model (spectral/weight norm in plain weights, conv+BN fused), in
float32, with the I/O of every generator here: input ``"input"`` = normalised grey ``(B, 3, S, S)``,
output ``"output"`` = normalised RGB ``(B, 3, S, S)`` in ``(-3, 3)``. ``S = 16 * render_factor`` is
fixed in the file (DeOldify's decoder resizes odd-sized maps depending on ``S``, and static shapes
let ONNX Runtime plan memory and pick kernels once); the batch dimension is dynamic. Export one
file per render factor you use.

Verification runs the file with ONNX Runtime on random inputs of two batch sizes and compares it
with the torch model: the largest absolute difference must stay within ``ONNX_TOLERANCE``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from .errors import DependencyError, InputError, VerificationError

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
    from .colorizer import check_render_factor

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
        VerificationError: the outputs differ by more than ``tolerance`` (or are not finite).
        DependencyError: onnxruntime is missing (from :class:`~colorizer_lib.runtime.OnnxRunner`).
    """
    from .color import grey_to_rgb, normalize_imagenet
    from .runtime import OnnxRunner

    runner = OnnxRunner(path)
    size = runner.input_shape[-1]
    model = model.eval().to("cpu", torch.float32)
    generator = torch.Generator().manual_seed(seed)
    worst, total, count = 0.0, 0.0, 0
    for batch in batches:
        x = normalize_imagenet(grey_to_rgb(torch.rand(batch, 1, size, size, generator=generator))).contiguous()
        with torch.inference_mode():
            expected = model(x)
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
# command line


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``colorize export`` on a subparsers object; sets ``func``."""
    parser = subparsers.add_parser(
        "export", help="export a model to ONNX (verified against torch with ONNX Runtime)",
        description="Export a model for ONNX Runtime and other ONNX engines. The file takes normalised grey "
                    "(B, 3, S, S) inputs with S = 16 x render factor (fixed per file, batch dynamic) and returns "
                    "normalised RGB. The export is checked against torch on random inputs.")
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="export format (onnx)")
    parser.add_argument("-m", "--model", default="artistic",
                        help="artistic, stable, video, compact, or a .pth/.safetensors path (default artistic)")
    parser.add_argument("-r", "--render-factor", type=int, default=None,
                        help="the file's fixed input size is 16 x this (default: the model's own)")
    parser.add_argument("-o", "--output", default=None, help="output .onnx file (default <model>-rf<N>.onnx)")
    parser.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime check")
    parser.add_argument("--random-weights", action="store_true",
                        help="export the architecture with random weights (for speed tests; needs no download)")
    parser.add_argument("--cache-dir", help="where downloaded weights are kept")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    parser.set_defaults(func=run_export)
    return parser


def run_export(args: argparse.Namespace) -> int:
    from .colorizer import Colorizer, check_render_factor

    if args.render_factor is not None:
        check_render_factor(args.render_factor)
    require_onnx_extra("onnx", *(() if args.no_verify else ("onnxruntime",)))  # before any download
    if args.random_weights:
        from .bench import calibrated_random_model, resolve_arch

        col = Colorizer.from_model(calibrated_random_model(resolve_arch(args.model), torch.device("cpu")),
                                   name=f"{args.model}-random", device="cpu", dtype="float32")
        from .registry import list_specs

        match = next((s for s in list_specs() if s.name == args.model), None)
        if match is not None:
            col.default_render_factor = match.default_render_factor
    else:
        col = Colorizer.from_pretrained(args.model, device="cpu", dtype="float32", cache_dir=args.cache_dir,
                                        progress=not args.quiet)
    rf = col.render_factor_or_default(args.render_factor)
    output = Path(args.output or f"{col.name}-rf{rf}.onnx")
    path = export_onnx(col.model, output, render_factor=rf)
    if not args.quiet:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB): input (B, 3, {16 * rf}, {16 * rf})")
    if not args.no_verify:
        check = verify_onnx(path, col.model)
        if not args.quiet:
            print(f"verified with ONNX Runtime: max |difference| {check.max_abs:.1e} "
                  f"(tolerance {ONNX_TOLERANCE:.0e}), batches {', '.join(map(str, check.batches))}")
    return 0
