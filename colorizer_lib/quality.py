"""Colorization quality on a folder of colour photos, against the trivial grey baseline.

Each photo is made grey (ITU-R 601 luma), colorized by a model through the normal inference path
(:class:`colorizer_lib.colorizer.Colorizer`: grey at ``16 * render_factor``, chroma upsampled and
merged with the full-resolution luma) and compared with the original; photos larger than
``--max-side`` (default 1024 pixels on the long side; 0 lifts the cap) are shrunk first, since the
metrics at 12 megapixels take most of a minute per photo on a CPU. A progress bar counts the photos. Reported means: PSNR, SSIM,
colourfulness (Hasler & Suesstrunk), delta-colourfulness against the ground truth and CIEDE2000
delta-E, for the model and for the grey baseline (true luma, zero chroma) on the same photos.

Usage::

    colorize bench-quality FOLDER [--model compact] [--render-factor N] [--limit N] [--max-side PX] [--json out.json]
    python benchmarks/quality.py FOLDER ...      # the same, from a checkout

``--split valid`` evaluates only the held-out validation split that ``colorizer_lib.training`` draws
from the folder's subfolders (seeded; the split the compact model never saw in training).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .cli_args import add_common_arguments, add_render_factor_argument
from .colorizer import Colorizer
from .training.evaluate import evaluate_paths
from .training.split import list_images, split_items

METRICS = ("psnr", "ssim", "colorfulness", "delta_colorfulness", "ciede2000")

#: Photos are measured at most this many pixels on their long side unless ``--max-side`` says otherwise.
DEFAULT_MAX_SIDE = 1024


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add this benchmark's arguments to ``parser`` (used by the script and by ``colorize bench-quality``)."""
    parser.add_argument("folder", type=Path, nargs="+", help="folder(s) of colour photos (searched recursively)")
    add_render_factor_argument(parser, help="render factor (default: the model's)")
    parser.add_argument("--split", choices=("all", "valid"), default="all",
                        help="'valid': only the seeded validation split of the training pipeline")
    parser.add_argument("--n-valid", type=int, default=150, help="validation size for --split valid (default 150)")
    parser.add_argument("--seed", type=int, default=42, help="split seed for --split valid (default 42)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate at most this many photos")
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                        help=f"shrink photos to at most this many pixels on the long side before colorizing and "
                             f"measuring (default {DEFAULT_MAX_SIDE}: SSIM and CIEDE2000 at 12 megapixels take most "
                             "of a minute per photo on a CPU); 0: full resolution")
    # -q/--quiet (a common flag) is the documented spelling; --no-progress stays for existing scripts.
    parser.add_argument("--no-progress", dest="quiet", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    add_common_arguments(parser, model_default="compact")
    return parser


def add_quality_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``colorize bench-quality`` on the CLI's sub-parsers."""
    parser = subparsers.add_parser("bench-quality", help="quality metrics vs the grey baseline on colour photos",
                                   description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.set_defaults(func=_run_command)
    return parser


def _run_command(args: argparse.Namespace) -> int:
    run(args)
    return 0


def collect(folders: list[Path], split: str, n_valid: int, seed: int, limit: int | None) -> list[Path]:
    """The photos to evaluate (all of them, or the training pipeline's validation split)."""
    paths = list_images(folders)
    if split == "valid":
        paths = split_items(paths, n_valid, seed)[1]
    return paths[:limit] if limit else paths


def format_table(results: dict) -> str:
    """Markdown table: one row for the model, one for the grey baseline."""
    head = "| | " + " | ".join(METRICS) + " |\n|---|" + "---|" * len(METRICS) + "\n"
    rows = []
    for label, key in ((results.get("model_name", "model"), "model"), ("grey baseline", "grey")):
        rows.append(f"| {label} | " + " | ".join(f"{results[key][m]:.3f}" for m in METRICS) + " |")
    return head + "\n".join(rows)


def run(args: argparse.Namespace) -> dict:
    """Evaluate and print; returns the results dict (``model``, ``grey``, ``count``, settings)."""
    paths = collect(list(args.folder), args.split, args.n_valid, args.seed, args.limit)
    colorizer = Colorizer.from_pretrained(args.model, device=args.device, dtype=args.dtype, cache_dir=args.cache_dir)
    max_side = args.max_side or None
    size_note = (f"photos shrunk to at most {max_side} px on the long side (--max-side 0: full resolution)"
                 if max_side else "photos at full resolution")
    if not args.quiet:
        print(f"bench-quality: {len(paths)} photos with '{colorizer.name}', {size_note}", file=sys.stderr)
    start = time.perf_counter()
    results = evaluate_paths(colorizer, paths, render_factor=args.render_factor, max_side=max_side,
                             progress=not args.quiet)
    results.update({"model_name": colorizer.name, "render_factor": colorizer.render_factor_or_default(args.render_factor),
                    "split": args.split, "seconds": round(time.perf_counter() - start, 2),
                    "folders": [str(f) for f in args.folder], "max_side": max_side})
    print(f"{results['count']} photos, render factor {results['render_factor']}, {size_note}, {results['seconds']} s")
    print(format_table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


def main(argv: list[str] | None = None) -> int:
    """Script entry point."""
    parser = add_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
