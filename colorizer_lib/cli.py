"""The ``colorize`` command.

    colorize image IN... [-o OUT] [--model NAME|PATH] [--render-factor N] [--compare] [--batch-size N]
                   [--pipeline auto|on|off] [--compile auto|on|off|max-autotune]
    colorize models [--download NAME]
    colorize video IN|URL ...          (see ``colorize video --help``)

Exit codes: 0 everything done; 1 some inputs failed (the others were done); 2 bad usage or input;
3 weights could not be downloaded or verified; 4 out of memory; 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from .errors import ColorizerError, ColorizerOutOfMemoryError, InputError, RenderFactorError, WeightsError

if TYPE_CHECKING:  # torch-heavy; imported when a command runs
    from .runtime import FileJob

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_WEIGHTS, EXIT_OOM, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

# Sub-commands contributed by other modules: name -> (module, function that adds the parser).
# Each adder takes the subparsers object and sets ``func`` on its parser. Imported lazily so that a
# heavy or optional dependency never slows down or breaks `colorize image`.
_EXTERNAL_COMMANDS: dict[str, tuple[str, str]] = {
    "video": ("colorizer_lib.video_cli", "add_video_parser"),
    "bench": ("colorizer_lib.bench", "add_bench_parser"),
    "bench-quality": ("colorizer_lib.quality", "add_quality_parser"),
    "export": ("colorizer_lib.export", "add_export_parser"),
}


class _Console:
    """stderr messages that ``--quiet`` silences (errors are always shown)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr)

    def error(self, message: str) -> None:
        print(f"colorize: error: {message}", file=sys.stderr)


# --------------------------------------------------------------------------------------------------
# colorize image


def _is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def _output_name(stem: str, suffix: str, out_format: str | None) -> str:
    """``stem`` with the requested format's extension, else the input's when we can write it with
    provenance (which resuming relies on), else PNG (GIF and BMP inputs)."""
    from .image import OUTPUT_FORMATS

    if out_format:
        return f"{stem}.{out_format.lstrip('.')}"
    keep = suffix.lower() in OUTPUT_FORMATS and suffix.lower() != ".bmp"
    return f"{stem}{suffix.lower() if keep else '.png'}"


def plan_jobs(inputs: Sequence[str], output: str | None, *, out_format: str | None, compare: bool) -> list[FileJob]:
    """Map the command line's inputs to jobs.

    * one file or URL with ``-o something.ext``: that file;
    * otherwise ``-o`` is a folder (default ``colorized``): files go to ``OUT/<name>``, URLs to
      ``OUT/<name from the URL>``, and a folder ``DIR`` to ``OUT/<DIR's name>/<same sub-path>``.

    Raises:
        InputError: an input that does not exist, or an output that would overwrite an input or
            another input's output.
    """
    from .image import OUTPUT_FORMATS, iter_image_files
    from .runtime import FileJob

    single_target = (
        output is not None and len(inputs) == 1 and Path(output).suffix.lower() in OUTPUT_FORMATS
        and (_is_url(inputs[0]) or Path(inputs[0]).is_file())
    )
    out_root = Path(output or "colorized")
    jobs: list[FileJob] = []

    def add(source: str, target: Path) -> None:
        cmp = target.with_name(f"{target.stem}.compare.jpg") if compare else None
        jobs.append(FileJob(source, target, cmp))

    for item in inputs:
        if _is_url(item):
            stem = Path(item.split("?")[0].rstrip("/")).stem or "image"
            add(item, Path(output) if single_target else out_root / _output_name(stem, ".png", out_format))
            continue
        path = Path(item).expanduser()
        if path.is_file():
            add(str(path), Path(output) if single_target else out_root / _output_name(path.stem, path.suffix, out_format))
        elif path.is_dir():
            base = out_root / path.resolve().name
            skip = base.resolve()
            for file in iter_image_files(path):
                if skip in file.resolve().parents:
                    continue  # never read our own earlier outputs back as inputs
                rel = file.relative_to(path)
                add(str(file), base / rel.parent / _output_name(rel.stem, rel.suffix, out_format))
        else:
            raise InputError(f"input {item} does not exist (give image files, folders or http(s) URLs).")
    inputs_resolved = {Path(j.source).resolve() for j in jobs if not _is_url(j.source)}
    claimed: dict[Path, str] = {}
    for job in jobs:
        target = job.output.resolve()
        if target in inputs_resolved:
            raise InputError(f"the output {job.output} would overwrite an input; choose another -o.")
        if target in claimed:
            raise InputError(f"{claimed[target]} and {job.source} would both be written to {job.output}; "
                             f"colorize them into different -o folders, or rename one.")
        claimed[target] = job.source
    return jobs


def _is_finished(job: FileJob, model_name: str, render_factor: int) -> bool:
    """True when ``job.output`` was written by an earlier run with the same model and render factor."""
    from .image import read_provenance

    if not job.output.is_file():
        return False
    try:
        meta = read_provenance(job.output)
    except ColorizerError:
        return False
    return meta.get("colorizer:model") == model_name and meta.get("colorizer:render_factor") == str(render_factor)


def run_image(args: argparse.Namespace) -> int:
    import torch

    from .colorizer import Colorizer, check_render_factor

    console = _Console(args.quiet)
    if args.render_factor is not None:
        check_render_factor(args.render_factor)
    jobs = plan_jobs(args.inputs, args.output, out_format=args.format, compare=args.compare)
    if not jobs:
        raise InputError("no images found in the given inputs (supported: jpg, png, webp, tif, bmp...).")
    # ONNX Runtime runs float32: asked for by name, the model is built so unless --dtype says otherwise.
    dtype = args.dtype or ("float32" if args.runtime == "onnx" else None)
    col = Colorizer.from_pretrained(args.model, device=args.device, dtype=dtype, cache_dir=args.cache_dir,
                                    progress=not args.quiet)
    rf = col.render_factor_or_default(args.render_factor)
    todo = [j for j in jobs if args.overwrite or not _is_finished(j, col.name, rf)]
    compiling = compile_mode(args.compile, col, len(todo))
    if compiling and args.runtime == "onnx":
        raise InputError("--compile and --runtime onnx exclude each other (ONNX Runtime does not compile); "
                         "choose one.")
    onnx_pays = args.runtime == "auto" and todo and _onnx_pays(col, len(todo), dtype_chosen=args.dtype is not None)
    if not compiling and (args.runtime == "onnx" or onnx_pays):
        if onnx_pays and col.dtype != torch.float32:  # this CPU's default bfloat16; ONNX Runtime takes float32
            col = Colorizer.from_pretrained(col.spec.name if col.spec else args.model, device=args.device,
                                            dtype="float32", cache_dir=args.cache_dir, progress=not args.quiet)
        console.info("using ONNX Runtime (the faster CPU runtime; the first run exports the model once)")
        col.use_onnx_runtime(args.cache_dir)
    if compiling and todo:
        console.info(compile_message(compiling, col.device))
        col.compile(compiling)
    if len(todo) < len(jobs):
        console.info(f"skipping {len(jobs) - len(todo)} image(s) already colorized with {col.name} at render factor {rf}")
    console.info(f"colorizing {len(todo)} image(s) with '{col.name}' at render factor {rf} on {col.device}")
    forbid = [Path(j.source) for j in jobs if not _is_url(j.source)]
    bar = _progress(len(todo), enabled=not args.quiet)
    batch_size = args.batch_size or (8 if col.device.type == "cuda" else 1)
    colorize = _colorize_pipelined if _use_pipeline(args.pipeline, col, len(todo)) else _colorize_in_batches
    failures = colorize(col, todo, rf, batch_size=batch_size, watermark=args.watermark, forbid=forbid, bar=bar)
    bar.close()
    done = len(todo) - len(failures)
    out_desc = jobs[0].output if len(jobs) == 1 else (args.output or "colorized")
    console.info(f"done: {done} colorized, {len(jobs) - len(todo)} skipped, {len(failures)} failed -> {out_desc}")
    for source, message in failures:
        console.error(f"{source}: {message}")
    return EXIT_PARTIAL if failures else EXIT_OK


# `--pipeline auto` takes the pipelined path on CUDA from this many photos on. There it overlaps
# decoding and encoding (worker threads, or nvJPEG on the GPU) with asynchronous device work: 64
# 12 MP JPEGs went through `colorize image` at 23 photos/s on an H200 (model loading included)
# against 1.7 on the simple path. Two photos already give it something to overlap; for one, its
# thread pool and page-locked buffers are only set-up. On a CPU the model is the bottleneck (and
# ONNX Runtime is used there), so the simple path stays.
PIPELINE_MIN_IMAGES = 2


def _use_pipeline(choice: str, col, n_images: int) -> bool:
    """Whether ``colorize image`` takes the pipelined path: ``--pipeline on|off``, or ``auto``'s policy."""
    if choice != "auto":
        return choice == "on"
    return col.device.type == "cuda" and n_images >= PIPELINE_MIN_IMAGES


def compile_mode(choice: str, col, n_images: int) -> str | None:
    """``--compile``: the ``torch.compile`` mode for this job, or None. ``auto`` compiles only where
    the one-off compile pays for itself (:func:`~colorizer_lib.runtime.should_compile`: CUDA, 5,000+
    images); ``on`` and ``max-autotune`` always do (the latter tunes kernels: slower to start)."""
    from .runtime import should_compile

    if choice == "auto":
        return "default" if should_compile(col.device, n_images) else None
    return {"off": None, "on": "default"}.get(choice, choice)


def compile_message(mode: str, device) -> str:
    """What the user is told before a compiled job starts (the first batch waits for the compiler)."""
    wait = "about 7 minutes" if mode == "max-autotune" else "1-2 minutes"
    where = " on a GPU" if getattr(device, "type", device) == "cuda" else ""
    return (f"compiling the model with torch.compile ({mode}): the first batch waits {wait}{where}, "
            "then it runs faster; --compile off skips this")


def _colorize_in_batches(col, jobs: list[FileJob], rf: int, *, batch_size: int, watermark: bool, forbid: list[Path],
                         bar) -> list[tuple[str, str]]:
    """The simple path: load a batch, colorize it, save each result, one step after the other.
    Returns ``(source, message)`` for each picture that could not be read or written."""
    from .image import load_image
    from .runtime import resolved_paths

    protected = resolved_paths(forbid)
    failures: list[tuple[str, str]] = []
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start:start + batch_size]
        loaded = []
        for job in batch:
            try:
                loaded.append((job, load_image(job.source)))
            except InputError as exc:
                failures.append((job.source, str(exc)))
                bar.update(1)
        if not loaded:
            continue
        results = col.colorize_batch([item for _, item in loaded], rf, batch_size=len(loaded), watermark=watermark)
        for (job, _), result in zip(loaded, results):
            try:
                job.save(result, forbid=job.guarded(protected))
            except (InputError, OSError) as exc:
                failures.append((job.source, str(exc)))
            bar.update(1)
    return failures


def _colorize_pipelined(col, jobs: list[FileJob], rf: int, *, batch_size: int, watermark: bool, forbid: list[Path],
                        bar) -> list[tuple[str, str]]:
    """The pipelined path (:func:`~colorizer_lib.runtime.colorize_jobs_pipelined`): the same outputs,
    metadata and failures as :func:`_colorize_in_batches`, with reading and writing overlapped with the model."""
    from .runtime import colorize_jobs_pipelined

    stats = colorize_jobs_pipelined(col, jobs, render_factor=rf, batch_size=batch_size, watermark=watermark,
                                    forbid=forbid, on_done=lambda job: bar.update(1))
    return stats.failures


def _onnx_pays(col, n_images: int, *, dtype_chosen: bool) -> bool:
    """ONNX Runtime (float32) for CPU jobs long enough to repay the one-off export, where it is the
    faster runtime (:func:`~colorizer_lib.runtime.prefer_onnx_on_cpu`); never against an explicit
    ``--dtype`` other than float32."""
    import torch

    from .runtime import prefer_onnx_on_cpu

    if dtype_chosen and col.dtype != torch.float32:
        return False
    return prefer_onnx_on_cpu(col.device, n_images, model=col.model, dtype=col.dtype)


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="img", desc="colorize", disable=not enabled)


# --------------------------------------------------------------------------------------------------
# colorize models


def models_table(cache_dir: str | None = None) -> list[dict[str, str]]:
    """One row per registered model: name, render factor, size, where it is, licence, description."""
    from . import hub
    from .registry import size_text, list_specs

    rows = []
    for spec in list_specs():
        if spec.bundled is not None:
            where = "bundled"
        elif hub.is_cached(spec, cache_dir=cache_dir):
            where = f"cached ({hub.cache_dir(cache_dir) / spec.filename})"
        else:
            where = "not downloaded"
        rows.append({"name": spec.name, "render factor": str(spec.default_render_factor), "size": size_text(spec),
                     "status": where, "license": spec.license, "description": spec.description})
    return rows


def run_models(args: argparse.Namespace) -> int:
    from . import hub
    from .registry import get_spec

    if args.download:
        for name in args.download:
            spec = get_spec(name)
            if spec.bundled is not None:
                print(f"{spec.name}: bundled with Colorizer, nothing to download")
                continue
            from .colorizer import expected_state, with_mirrors

            path = hub.resolve_weights(with_mirrors(spec), cache_dir=args.cache_dir, progress=not args.quiet)

            hub.load_state_dict(path, expected_state(spec.arch, spec.dtype), sha256=spec.sha256, record_hash=True)
            print(f"{spec.name}: verified {path}")
        return EXIT_OK
    rows = models_table(args.cache_dir)
    cols = ["name", "render factor", "size", "status"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    print("  ".join(c.upper().ljust(widths[c]) for c in cols))
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in cols))
    if args.verbose:
        for row in rows:
            print(f"\n{row['name']}: {row['description']}\n  licence: {row['license']}")
    print(f"\ncache: {hub.cache_dir(args.cache_dir)} (set COLORIZER_CACHE or --cache-dir to move it)")
    return EXIT_OK


# --------------------------------------------------------------------------------------------------
# parser and entry point


def comma_separated_ints(text: str) -> list[int]:
    """argparse type for lists such as render factors: ``"14,21,28"`` -> ``[14, 21, 28]``."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: a GPU when there is one)")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"],
                        help="compute precision (default: bfloat16 on GPUs (float16 on older ones) and on CPUs "
                             "with native bfloat16 (AVX512-BF16 or AMX), float32 on other CPUs)")
    parser.add_argument("--cache-dir", help="where downloaded weights are kept (default: $COLORIZER_CACHE or "
                                            "the platform's cache folder)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or messages, only errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="colorize", description="Colorize old black-and-white photos and film.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    image = sub.add_parser("image", help="colorize photos: files, folders (recursively) and URLs",
                           description="Colorize photos. Folders are processed recursively and their tree is kept; "
                                       "outputs finished by an earlier run are skipped, so an interrupted run resumes.")
    image.add_argument("inputs", nargs="+", metavar="IN", help="image files, folders or http(s) URLs")
    image.add_argument("-o", "--output", help="output file (one input) or folder (default: ./colorized)")
    image.add_argument("-m", "--model", default=None,
                       help="artistic, stable, video, compact, or a .pth/.safetensors path "
                            "(default: the best model available)")
    image.add_argument("-r", "--render-factor", type=int, default=None,
                       help="model resolution is 16 x this; default: the model's own (35 for photos)")
    image.add_argument("--compare", action="store_true", help="also write <name>.compare.jpg, original beside result")
    image.add_argument("--batch-size", type=_positive_int, default=None, help="images per forward pass (default 8 on GPU, 1 on CPU)")
    image.add_argument("--format", choices=["png", "jpg", "webp", "tif"], help="output format (default: the input's)")
    image.add_argument("--watermark", action="store_true", help="add DeOldify's small palette mark (off by default)")
    image.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    image.add_argument("--runtime", choices=["auto", "torch", "onnx"], default="auto",
                       help="CPU runtime: auto picks ONNX Runtime (faster) when installed and there are 4+ "
                            "images, except for the DeOldify models on CPUs with native bfloat16, where torch "
                            "bfloat16 is faster")
    image.add_argument("--pipeline", choices=["auto", "on", "off"], default="auto",
                       help="overlap reading and writing photos with the model (nvJPEG on a GPU when torchvision "
                            f"is installed); same outputs. auto: on with CUDA and {PIPELINE_MIN_IMAGES}+ images")
    image.add_argument("--compile", choices=["auto", "on", "off", "max-autotune"], default="auto",
                       help="torch.compile the model: a one-off wait of 1-2 minutes (max-autotune: about 7) "
                            "for about 2.4x (2.6x) the model's speed on a GPU; auto: only on CUDA for 5,000+ images")
    _add_common(image)
    image.set_defaults(func=run_image)

    models = sub.add_parser("models", help="list the models, their sizes and what is cached")
    models.add_argument("--download", nargs="+", metavar="NAME", help="download and verify these models now")
    models.add_argument("-v", "--verbose", action="store_true", help="also print descriptions and licences")
    _add_common(models)
    models.set_defaults(func=run_models)

    for name, (module_name, adder) in _EXTERNAL_COMMANDS.items():
        add = _optional_command(module_name, adder)
        if add is not None:
            add(sub)
    return parser


def _optional_command(module_name: str, adder: str) -> Callable | None:
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return getattr(module, adder, None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    console = _Console(getattr(args, "quiet", False))
    try:
        return args.func(args)
    except KeyboardInterrupt:
        console.error("interrupted; finished outputs are kept and the next run resumes from there.")
        return EXIT_INTERRUPTED
    except ColorizerOutOfMemoryError as exc:
        console.error(str(exc))
        return EXIT_OOM
    except WeightsError as exc:
        console.error(str(exc))
        return EXIT_WEIGHTS
    except (InputError, RenderFactorError, ValueError) as exc:
        console.error(str(exc))
        return EXIT_USAGE
    except ColorizerError as exc:
        console.error(str(exc))
        return EXIT_PARTIAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
