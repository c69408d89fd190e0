"""``colorize export``: the command-line front end of :mod:`colorizer_lib.export`.

Imported only when that command runs (see ``cli._EXTERNAL_COMMANDS``), so it imports what it needs at the top.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .cli_args import add_common_arguments
from .colorizer import Colorizer, check_render_factor
from .ensemble import parse_models
from .errors import InputError
from .export import ONNX_TOLERANCE, export_onnx, require_onnx_extra, verify_onnx
from .models.random_weights import calibrated_random_model
from .registry import list_specs, resolve_arch


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``colorize export`` on a subparsers object; sets ``func``."""
    parser = subparsers.add_parser(
        "export", help="export a model to ONNX (verified against torch with ONNX Runtime)",
        description="Export a model for ONNX Runtime and other ONNX engines. The file takes (B, 3, S, S) grey "
                    "inputs with S = 16 x render factor (fixed per file, batch dynamic): DeOldify's and compact "
                    "take ImageNet-normalised grey and return normalised RGB; DDColor's take grey RGB in [0, 1] "
                    "(S a multiple of 32: even render factors) and return Lab a, b (B, 2, S, S). The export is "
                    "checked against torch on random inputs.")
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="export format (onnx)")
    parser.add_argument("-r", "--render-factor", type=int, default=None,
                        help="the file's fixed input size is 16 x this (default: the model's own)")
    parser.add_argument("-o", "--output", default=None, help="output .onnx file (default <model>-rf<N>.onnx)")
    parser.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime check")
    parser.add_argument("--random-weights", action="store_true",
                        help="export the architecture with random weights (for speed tests; needs no download)")
    add_common_arguments(parser, model_default="artistic", skip=("device", "dtype"))  # ONNX files are float32, CPU
    parser.set_defaults(func=run_export)
    return parser


def run_export(args: argparse.Namespace) -> int:
    if args.render_factor is not None:
        check_render_factor(args.render_factor)
    require_onnx_extra("onnx", *(() if args.no_verify else ("onnxruntime",)))  # before any download
    if parse_models(args.model) is not None:
        raise InputError(f"{args.model!r} is an ensemble, which has no single ONNX graph: export each model on its "
                         f"own (--model NAME, once per member); `colorize image --runtime onnx --model "
                         f"{args.model}` runs every member on ONNX Runtime.")
    match = next((s for s in list_specs() if s.name == args.model), None)
    if args.random_weights:
        col = Colorizer.from_model(calibrated_random_model(resolve_arch(args.model), "cpu"),
                                   name=f"{args.model}-random", device="cpu", dtype="float32")
        if match is not None:
            col.default_render_factor = match.default_render_factor
    else:
        col = Colorizer.from_pretrained(args.model, device="cpu", dtype="float32", cache_dir=args.cache_dir,
                                        progress=not args.quiet)
        match = getattr(col, "spec", None) or match
    rf = col.render_factor_or_default(args.render_factor)  # DDColor's must be even: its family says so
    output = Path(args.output or f"{col.name}-rf{rf}.onnx")
    path = export_onnx(col.model, output, render_factor=rf)
    if not args.quiet:
        out_channels = _output_channels(path)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB): input (B, 3, {16 * rf}, {16 * rf}), output "
              f"(B, {out_channels}, {16 * rf}, {16 * rf})" + (" (Lab a, b)" if out_channels == 2 else " (RGB)"))
    if not args.no_verify:
        check = verify_onnx(path, col.model)
        if not args.quiet:
            print(f"verified with ONNX Runtime: max |difference| {check.max_abs:.1e} "
                  f"(tolerance {ONNX_TOLERANCE:.0e}), batches {', '.join(map(str, check.batches))}")
    return 0


def _output_channels(path: Path) -> int:
    """The channel count of the ONNX file's output (3: normalised RGB, DeOldify and ours; 2: Lab a, b, DDColor)."""
    import onnx

    dims = onnx.load(str(path), load_external_data=False).graph.output[0].type.tensor_type.shape.dim
    return int(dims[1].dim_value)
