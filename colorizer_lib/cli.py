"""The ``colorize`` command.

    colorize image IN... [-o OUT] [--model NAME|PATH] [--render-factor N] [--compare] [--batch-size N]
                   [--pipeline auto|on|off] [--compile auto|on|off|max-autotune]
    colorize models [--download NAME]
    colorize video IN|URL ...          (see ``colorize video --help``)

Exit codes (the table in :mod:`colorizer_lib.errors`, the same for every sub-command): 0 everything
done; 1 some inputs failed (the others were done); 2 bad usage or input; 3 weights could not be
downloaded or verified; 4 out of memory; 130 interrupted.

Flags every sub-command shares (-m/--model, --device, --dtype, --cache-dir, -q/--quiet) come from
:func:`colorizer_lib.cli_args.add_common_arguments`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Sequence

from .cli_args import (ENSEMBLE_HELP, MODEL_HELP, add_chroma_upsample_argument, add_common_arguments,
                       add_render_factor_argument, positive_int)
from .constants import PIPELINE_MIN_IMAGES
from .errors import (EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_WEIGHTS, EXIT_OOM,  # noqa: F401  (the table's names)
                     EXIT_INTERRUPTED, ColorizerError, DependencyError, InputError, exit_code)

# Sub-commands contributed by other modules: name -> (module, function that adds the parser, help).
# Each adder takes the subparsers object and sets ``func`` on its parser. A module is imported only
# when its command runs, so `colorize --help` stays fast and a heavy or optional dependency never
# slows down or breaks another command; one whose import fails is still listed and says why it
# cannot run when used.
_EXTERNAL_COMMANDS: dict[str, tuple[str, str, str]] = {
    "video": ("colorizer_lib.video_cli", "add_video_parser", "colorize a video file or URL"),
    "bench": ("colorizer_lib.bench", "add_bench_parser", "measure speed and memory of image inference (random weights)"),
    "bench-quality": ("colorizer_lib.quality", "add_quality_parser",
                      "quality metrics vs the grey baseline on colour photos"),
    "export": ("colorizer_lib.export_cli", "add_export_parser",
               "export a model to ONNX (verified against torch with ONNX Runtime)"),
}


class _Console:
    """stderr messages that ``--quiet`` silences (errors are always shown)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    def info(self, message: str) -> None:
        if not self.quiet:
            self._write(message)

    @staticmethod
    def _write(message: str) -> None:
        """On its own line, also while a progress bar is drawn (tqdm moves the bar below it)."""
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm is a dependency
            print(message, file=sys.stderr)
        else:
            tqdm.write(message, file=sys.stderr)

    def error(self, message: str) -> None:
        print(f"colorize: error: {message}", file=sys.stderr)


# --------------------------------------------------------------------------------------------------
# colorize image


def run_image(args: argparse.Namespace) -> int:
    console = _Console(args.quiet)
    with _one_line_warnings(console):
        return _run_image(args, console)


def _run_image(args: argparse.Namespace, console: _Console) -> int:
    """The photo pipeline (:mod:`colorizer_lib.photos`) with the command line's choices: plan, sort
    out finished and refused jobs, pick the runtime (ONNX Runtime, ``torch.compile``), run."""
    import torch

    from . import photos
    from .accel import compile_message, compile_mode
    from .colorizer import Colorizer, progress_bar

    jobs = photos.plan_jobs(args.inputs, args.output, out_format=args.format, compare=args.compare)
    if not jobs:
        raise InputError("no images found in the given inputs (supported: jpg, png, webp, tif, bmp...).")
    removed = photos.prepare_outputs(jobs)  # before any model is loaded or picture colorized
    if removed:
        console.info(f"removed {len(removed)} unfinished temporary file(s) that an interrupted run left behind")
    # ONNX Runtime runs float32: asked for by name, the model is built so unless --dtype says otherwise.
    dtype = args.dtype or ("float32" if args.runtime == "onnx" else None)
    # --chroma-upsample given: passed on; not given: the model's own default
    upsample = {"chroma_upsample": args.chroma_upsample} if args.chroma_upsample else {}
    col = Colorizer.from_pretrained(args.model, device=args.device, dtype=dtype, cache_dir=args.cache_dir,
                                    progress=not args.quiet, **upsample)
    rf = col.render_factor_or_default(args.render_factor)
    sorted_jobs = photos.sort_jobs(jobs, col.name, rf, overwrite=args.overwrite)
    todo, skipped = sorted_jobs.todo, len(sorted_jobs.skipped)
    compiling = compile_mode(args.compile, col, len(todo))
    if compiling and args.runtime == "onnx":
        raise InputError("--compile and --runtime onnx exclude each other (ONNX Runtime does not compile); "
                         "choose one.")
    onnx_pays = args.runtime == "auto" and todo and _onnx_pays(col, len(todo), dtype_chosen=args.dtype is not None)
    if not compiling and (args.runtime == "onnx" or onnx_pays):
        if onnx_pays and col.dtype != torch.float32:  # this CPU's default bfloat16; ONNX Runtime takes float32
            col = Colorizer.from_pretrained(col.spec.name if col.spec else args.model, device=args.device,
                                            dtype="float32", cache_dir=args.cache_dir, progress=not args.quiet,
                                            **upsample)
        console.info("using ONNX Runtime (the faster CPU runtime; the first run exports the model once)")
        col.use_onnx_runtime(args.cache_dir, progress=not args.quiet)
    if compiling and todo:
        console.info(compile_message(compiling, col.device))
        col.compile(compiling)
    if skipped:
        console.info(f"skipping {skipped} image(s) already colorized with {col.name} at render factor {rf} "
                     "from the same input")
    console.info(f"colorizing {len(todo)} image(s) with '{col.name}' at render factor {rf} on {col.device}")
    bar = progress_bar(len(todo), enabled=not args.quiet)

    def on_event(event: photos.PhotoEvent) -> None:
        if event.kind == "colour":
            console.info(f"note: {event.job.source} is already in colour; its colours are replaced by the "
                         "model's. The input file is not changed.")
        else:
            bar.update(1)

    report = photos.run_jobs(col, todo, render_factor=rf, batch_size=args.batch_size, pipeline=args.pipeline,
                             watermark=args.watermark, forbid=photos.protected_inputs(jobs), on_event=on_event)
    bar.close()
    failures = sorted_jobs.failures + report.failures
    done = len(report.outputs)
    if len(jobs) == 1:
        out_desc = jobs[0].output if done or skipped else "nothing written"
    else:
        out_desc = args.output or "colorized"
    console.info(f"done: {done} colorized, {skipped} skipped, {len(failures)} failed -> {out_desc}")
    for source, message in failures:
        console.error(f"{source}: {message}")
    return EXIT_PARTIAL if failures else EXIT_OK


@contextlib.contextmanager
def _one_line_warnings(console: _Console):
    """Python warnings (an animated GIF's "only the first frame", a damaged file's "corrupt EXIF")
    printed as one ``colorize: warning:`` line each, without the source line Python adds."""
    import warnings

    from .io import source_being_loaded

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message).strip()
        source = source_being_loaded()
        if source and source not in text:
            text = f"{source}: {text}"
        console.info(f"colorize: warning: {text}")

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


def _onnx_pays(col, n_images: int, *, dtype_chosen: bool) -> bool:
    """ONNX Runtime (float32) for CPU jobs long enough to repay the one-off export, where it is the
    faster runtime (:func:`~colorizer_lib.export.prefer_onnx_on_cpu`); never against an explicit
    ``--dtype`` other than float32."""
    import torch

    from .export import prefer_onnx_on_cpu

    if dtype_chosen and col.dtype != torch.float32:
        return False
    return prefer_onnx_on_cpu(col.device, n_images, model=col.model, dtype=col.dtype)


# --------------------------------------------------------------------------------------------------
# colorize models


def models_table(cache_dir: str | None = None) -> list[dict[str, str]]:
    """One row per registered model: name, render factor, size, licence (short, and in full as ``license``),
    where it is (bundled, not downloaded, or cached: verified, not yet verified, or changed since;
    :func:`~colorizer_lib.hub.cache_status`, which reads no weights; for a model with other files, such as
    ModelScope's copy of ``ddcolor``, the one in the cache), description."""
    from . import hub
    from .registry import list_specs, short_license, size_text

    rows = []
    for spec in list_specs():
        present = hub.present_source(spec, cache_dir)
        path = hub.cache_path(cache_dir) / present.filename
        status = "bundled" if spec.bundled is not None else hub.cache_status(present, cache_dir)
        where = {"bundled": "bundled", "missing": "not downloaded",
                 "verified": f"cached, verified ({path})",
                 "unverified": f"cached, not verified yet: checked when first used ({path})",
                 "changed": f"cached but NOT the verified file: replaced when next used ({path})"}[status]
        rows.append({"name": spec.name, "render factor": str(spec.default_render_factor), "size": size_text(spec),
                     "licence": short_license(spec), "status": where, "license": spec.license,
                     "description": spec.description})
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

            # verified before it takes its name in the cache; a cached file that fails is moved aside and
            # downloaded again
            hub.load_weights(with_mirrors(spec), expected_state(spec.arch, spec.dtype), cache_dir=args.cache_dir,
                             progress=not args.quiet)
            present = hub.present_source(spec, args.cache_dir)  # ModelScope's copy of ddcolor, say
            print(f"{spec.name}: verified {hub.cache_dir(args.cache_dir) / present.filename}")
        return EXIT_OK
    rows = models_table(args.cache_dir)
    cols = ["name", "render factor", "size", "licence", "status"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    print("  ".join(c.upper().ljust(widths[c]) for c in cols))
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in cols))
    if args.verbose:
        for row in rows:
            print(f"\n{row['name']}: {row['description']}\n  licence: {row['license']}")
    if not args.verbose:
        print("\nlicences in full, with each model's description: colorize models -v")
    print(f"\ncache: {hub.cache_path(args.cache_dir)} (set COLORIZER_CACHE or --cache-dir to move it)")
    return EXIT_OK


# --------------------------------------------------------------------------------------------------
# parser and entry point


def _default_render_factors() -> str:
    """``"artistic 35, stable 35, ..."``: each registered model's default render factor, from its record."""
    from .registry import list_specs

    return ", ".join(f"{spec.name} {spec.default_render_factor}" for spec in list_specs())


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``colorize`` parser. ``command`` names the sub-command about to run: of the commands other
    modules contribute, only its module is imported (``None``: none, as ``colorize --help`` needs)."""
    parser = argparse.ArgumentParser(prog="colorize", description="Colorize old black-and-white photos and film.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    image = sub.add_parser("image", help="colorize photos: files, folders (recursively) and URLs",
                           description="Colorize photos. Folders are processed recursively and their tree is kept; "
                                       "outputs finished by an earlier run from the same input with the same model and "
                                       "render factor are skipped, so an interrupted run resumes; other existing "
                                       "files are never replaced (see --overwrite).")
    image.add_argument("inputs", nargs="+", metavar="IN", help="image files, folders or http(s) URLs")
    image.add_argument("-o", "--output", help="output file (one input) or folder (default: ./colorized)")
    add_render_factor_argument(image, help=f"model resolution is 16 x this; default: each model's own "
                                           f"({_default_render_factors()})")
    image.add_argument("--compare", action="store_true", help="also write <name>.compare.jpg, original beside result")
    image.add_argument("--batch-size", type=positive_int, default=None, help="images per forward pass (default 8 on GPU, 1 on CPU)")
    image.add_argument("--format", choices=["png", "jpg", "webp", "tif"], help="output format (default: the input's)")
    image.add_argument("--watermark", action="store_true", help="add DeOldify's small palette mark (off by default)")
    image.add_argument("--overwrite", action="store_true",
                       help="replace outputs that Colorizer wrote earlier from another input or with other settings "
                            "(they are kept otherwise); files Colorizer did not write are never replaced")
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
    add_common_arguments(image, model_help=f"{MODEL_HELP}, or {ENSEMBLE_HELP} (default: the best model available: "
                                           f"a downloaded DDColor, else DeOldify Artistic, else the embedded compact)")
    add_chroma_upsample_argument(image)
    image.set_defaults(func=run_image)

    models = sub.add_parser("models", help="list the models, their sizes and what is cached")
    models.add_argument("--download", nargs="+", metavar="NAME", help="download and verify these models now")
    models.add_argument("-v", "--verbose", action="store_true", help="also print descriptions and licences")
    add_common_arguments(models, skip=("model",))
    models.set_defaults(func=run_models)

    for name, (module_name, adder, help_text) in _EXTERNAL_COMMANDS.items():
        if name == command:
            _add_external_command(sub, name, module_name, adder, help_text)
        else:  # listed in `colorize --help`; its module loads only when the command runs
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _add_external_command(sub, name: str, module_name: str, adder: str, help_text: str) -> None:
    """Import ``module_name`` and let ``adder`` register the command; if that fails, register a
    command that explains why it cannot run instead of letting it vanish from the parser."""
    import importlib

    try:
        getattr(importlib.import_module(module_name), adder)(sub)
    except ImportError as exc:
        reason = (f"`colorize {name}` cannot run: {exc}. Install the missing package "
                  f"(see README.md, Install: the optional extras), then try again.")

        def unavailable(args: argparse.Namespace) -> int:
            raise DependencyError(reason)

        # No options of its own (not even -h), so whatever follows the name reaches `unavailable`.
        stub = sub.add_parser(name, help=f"{help_text} (unavailable: {exc})", add_help=False, prefix_chars="\0")
        stub.add_argument("rest", nargs=argparse.REMAINDER)
        stub.set_defaults(func=unavailable)


def _command_name(argv: Sequence[str]) -> str | None:
    """The sub-command in ``argv``: the first word that is not an option (the top level takes none but -h)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """``colorize`` with ``argv`` (default ``sys.argv[1:]``): the exit code (:func:`colorizer_lib.errors.exit_code`'s
    table), argparse's own exits included (``--help`` 0, a refused argument 2, already printed)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_name(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else EXIT_USAGE
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    console = _Console(getattr(args, "quiet", False))
    try:
        return args.func(args)
    except KeyboardInterrupt:
        console.error("interrupted; finished outputs are kept and the next run resumes from there.")
        return EXIT_INTERRUPTED
    except (ColorizerError, ValueError) as exc:
        console.error(str(exc))
        return exit_code(exc)


def video_main(argv: Sequence[str] | None = None) -> int:
    """``colorize video`` with ``argv`` (default ``sys.argv[1:]``), as a function that returns the exit code:
    the main CLI's parsing, messages and exit codes (0 done, 2 bad usage or input, 3 weights, 4 out of
    memory, 1 the video failed, 130 interrupted), argparse's own exits included."""
    return main(["video", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
