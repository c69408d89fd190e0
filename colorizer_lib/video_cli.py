"""``colorize video``: the command-line front end of :mod:`colorizer_lib.video`.

Hook for the main CLI (cli.py)::

    from .video_cli import add_video_parser
    add_video_parser(subparsers)          # registers "video" and sets func=run_video
    ...
    return args.func(args)                # run_video returns the process exit code

From Python with command-line arguments: :func:`colorizer_lib.cli.video_main`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli_args import (ENSEMBLE_HELP, MODEL_HELP, add_chroma_upsample_argument, add_common_arguments,
                       add_render_factor_argument, checked, positive_int, render_factors,
                       why_missing)
from .constants import VIDEO_PREVIEW_RENDER_FACTORS
from .errors import DependencyError, InputError


def _seconds(text: str) -> float:
    """'90', '90.5', '1:30' or '0:01:30.5' -> seconds."""
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (use seconds or [h:]m:s)") from None
    if len(parts) > 3 or any(p < 0 for p in parts):
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (use seconds or [h:]m:s)")
    total = 0.0
    for p in parts:
        total = total * 60 + p
    return total


def _segment_seconds(value: float) -> float:
    from .video.settings import check_segment_seconds

    return check_segment_seconds(value)


def _times(text: str) -> list[float]:
    return [_seconds(v) for v in text.split(",") if v.strip()]


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``colorize video`` options to ``parser``."""
    parser.add_argument("input", help="video file, or a URL (YouTube and other yt-dlp sites, Google Drive, file://)")
    parser.add_argument("-o", "--output", help="output video (.mp4, .mov, .mkv); default <input>_colorized.mp4")
    add_render_factor_argument(parser, help="model resolution is 16 x this (default: the model's own, 21 for video)")
    parser.add_argument("--smoothing", type=float, default=0.6,
                        help="temporal colour smoothing strength in [0, 1); 0 switches it off (default 0.6)")
    parser.add_argument("--start", type=_seconds, default=None, help="start time (seconds or [h:]m:s)")
    parser.add_argument("--duration", type=_seconds, default=None, help="length to colorize (seconds or [h:]m:s)")
    parser.add_argument("--preview", action="store_true",
                        help="only colorize a few frames at several render factors and save a comparison grid")
    parser.add_argument("--preview-times", type=_times, default=None, help="preview times, e.g. 5,30,1:10")
    parser.add_argument("--preview-render-factors", type=render_factors, default=None,
                        help=f"render factors to compare in the preview (default "
                             f"{','.join(map(str, VIDEO_PREVIEW_RENDER_FACTORS))}; DDColor's odd ones move to even)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="frames per model batch (default 16 GPU, 4 CPU)")  # video.settings.FRAME_BATCH_SIZES
    parser.add_argument("--crf", type=int, default=18,
                        help="encoder quality, lower is better: 0-51 for H.264/H.265, 0-63 for VP9/AV1 (default 18)")
    parser.add_argument("--preset", default="veryfast",
                        help="x264 speed preset (default veryfast; superfast is ~1.6x faster end to end on a fast GPU, "
                             "with files about twice as large at the same --crf)")
    parser.add_argument("--codec", default="libx264", help="ffmpeg video encoder, e.g. libx264, h264_nvenc")
    parser.add_argument("--segment-seconds", type=checked(_segment_seconds), default=60.0,
                        help="resumable unit in seconds (default 60): an interrupted run restarts after the last "
                             "finished segment")
    parser.add_argument("--no-resume", action="store_true", help="start over even if finished segments exist")
    parser.add_argument("--keep-segments", action="store_true", help="keep the segment folder after success")
    parser.add_argument("--compile", choices=["auto", "on", "off", "max-autotune"], default="auto",
                        help="torch.compile the model: a one-off wait of 1-2 minutes (max-autotune: about 7) "
                             "for about 2.4x (2.6x) the frame rate of the model on a GPU; auto: only on CUDA "
                             "for videos of 5,000+ frames")
    parser.add_argument("--ffmpeg", default=None, help="ffmpeg binary (default $COLORIZER_FFMPEG, PATH, imageio-ffmpeg)")
    parser.add_argument("--download-dir", default=None,
                        help="where URL downloads go and are reused by reruns (default: <weights cache>/videos)")
    parser.add_argument("--max-filesize", type=float, default=4096, help="URL download limit in MB (default 4096)")
    parser.add_argument("--max-duration", type=_seconds, default=None, help="URL download limit in seconds")
    # -q/--quiet (a common flag) is the documented spelling; --no-progress stays for existing scripts.
    parser.add_argument("--no-progress", dest="quiet", action="store_true", help=argparse.SUPPRESS)
    add_common_arguments(parser, model_help=f"{MODEL_HELP}, or {ENSEMBLE_HELP} (default: video; when it cannot be "
                                            f"downloaded, the embedded compact model, with a warning)")
    add_chroma_upsample_argument(parser)


def add_video_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``video`` sub-command on an ``argparse`` subparsers object; sets ``func=run_video``."""
    parser = subparsers.add_parser(
        "video", help="colorize a video file or URL",
        description="Colorize a video file or URL, keeping its audio, with a progress bar and ETA.",
    )
    add_video_arguments(parser)
    parser.set_defaults(func=run_video)
    return parser


def _load_colorizer(args):
    """``--model``, or by default the video model, falling back (with one warning line) to the embedded
    compact model when it can be neither found in the cache nor downloaded, as ``colorize image`` does."""
    from .colorizer import Colorizer

    upsample = getattr(args, "chroma_upsample", None)  # the model's own default unless given
    given = {} if upsample is None else {"chroma_upsample": upsample}
    return Colorizer.from_pretrained(args.model, device=args.device, dtype=args.dtype, cache_dir=args.cache_dir,
                                     progress=not args.quiet, prefer=("video",), **given)


def run_video(args: argparse.Namespace) -> int:
    """Run ``colorize video`` for parsed ``args``; returns 0, or raises :class:`ColorizerError` (the main
    CLI maps those to exit codes and messages)."""
    from . import video

    _check_arguments(args)  # before any slow download or model load
    try:
        tools = video.find_tools(args.ffmpeg)
    except DependencyError as exc:
        if args.ffmpeg is None:
            raise
        raise InputError(f"--ffmpeg {args.ffmpeg}: {exc}") from None  # a bad argument: exit code 2
    if not args.preview:
        video.check_encoder(tools.ffmpeg, args.codec)
    source = _local_source(args, tools)
    colorizer = _load_colorizer(args)
    if args.preview:
        return _run_preview(args, colorizer, source, tools)
    _maybe_compile(args, colorizer, source, tools)
    result = video.colorize_video(
        source, colorizer, args.output, render_factor=args.render_factor, smoothing=args.smoothing,
        batch_size=args.batch_size, start=args.start, duration=args.duration,
        encode=video.EncodeSettings(codec=args.codec, crf=args.crf, preset=args.preset),
        segment_seconds=args.segment_seconds, resume=not args.no_resume,
        keep_segments=args.keep_segments, progress=not args.quiet, tools=tools,
    )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    resumed = f", {result.resumed_frames} resumed" if result.resumed_frames else ""
    print(f"{result.path}  ({result.frames_out} frames{resumed}, {result.size[0]}x{result.size[1]}, "
          f"{result.duration:.2f} s, {result.audio_streams} audio stream(s), render factor "
          f"{result.render_factor}, done in {result.seconds:.1f} s, {result.processing_fps:.1f} frames/s)")
    return 0


def _maybe_compile(args: argparse.Namespace, colorizer, source: Path, tools) -> None:
    """``--compile``: compile when asked, or (``auto``) when the video is long enough on CUDA to
    repay the compile (:func:`~colorizer_lib.accel.should_compile`)."""
    from .accel import compile_mode, compile_message

    frames = 0
    if args.compile == "auto":
        from . import video

        info = video.probe(source, tools)
        frames = info.estimated_frames or 0
        if args.start:
            frames = max(0, frames - round(args.start * float(info.fps)))
        if args.duration is not None:
            frames = min(frames, round(args.duration * float(info.fps)))
    mode = compile_mode(args.compile, colorizer, frames)
    if mode:
        print(compile_message(mode, colorizer.device), file=sys.stderr)
        colorizer.compile(mode)


def _check_arguments(args: argparse.Namespace) -> None:
    """Refuse bad settings at once, not after a download and a model load."""
    from .video.settings import check_crf, output_format
    from .video.smoothing import ChromaSmoother

    ChromaSmoother(args.smoothing)  # validates the strength
    check_crf(args.codec, args.crf)  # the range depends on the encoder
    if args.output is not None and not args.preview:
        output_format(Path(args.output))


def _local_source(args: argparse.Namespace, tools) -> Path:
    """The input as a local file: URLs are downloaded once into --download-dir (default: the cache's
    ``videos`` folder) and reused by reruns, so an interrupted URL job resumes.

    For a URL without ``-o`` the output goes to the current folder as ``<name>_colorized.mp4``.
    """
    from . import video

    if not video.is_url(args.input):
        if not Path(args.input).exists():
            if Path(args.input).is_symlink():
                raise InputError(f"input {why_missing(args.input)}.")
            raise InputError(f"{args.input!r} is neither an existing file nor a URL (http(s)://, file://).")
        return Path(args.input)
    from .hub import cache_dir

    dest = Path(args.download_dir) if args.download_dir else cache_dir(args.cache_dir) / "videos"
    print(f"downloading {args.input} ...", file=sys.stderr)
    source = video.download_video(args.input, dest, max_filesize=int(args.max_filesize * 1e6),
                                  max_duration=args.max_duration, tools=tools, quiet=args.quiet)
    if args.output is None:
        args.output = str(Path.cwd() / f"{source.stem}_colorized.mp4")
    return source


def _run_preview(args, colorizer, source, tools) -> int:
    from . import video

    out = Path(args.output) if args.output else Path(source).with_name(f"{Path(source).stem}_preview.png")
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        out = out.with_suffix(".png")
    result = video.preview_video(source, colorizer, times=args.preview_times, output=out, tools=tools,
                                 render_factors=args.preview_render_factors or VIDEO_PREVIEW_RENDER_FACTORS)
    print(f"{result.path}  (render factors {', '.join(map(str, result.render_factors))} at "
          f"{', '.join(f'{t:.2f}s' for t in result.times)}){result.note}")
    return 0
