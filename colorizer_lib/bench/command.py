"""``colorize bench`` and ``python -m colorizer_lib.bench``: arguments to a ``BenchConfig``, and the run.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import torch

from ..cli_args import add_common_arguments, comma_separated_ints
from ..colorizer import check_render_factor, resolve_device
from ..errors import InputError
from .model_only import MODEL_VARIANTS
from .photos import PHOTO_SIZE
from .run import BenchConfig, DEFAULT_MODELS, run_benchmark


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
