"""Settings of a video job, checked before any work: output container, encoder choices, numbers.

Both :func:`~colorizer_lib.video.pipeline.colorize_video` and ``colorize video`` (video_cli.py) call
these checks, so the command line refuses what the library refuses, with the same message.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

#: Output containers by file suffix (the ffmpeg muxer each one takes).
MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


@dataclass(frozen=True)
class EncodeSettings:
    """Encoder choices: ``codec`` (ffmpeg encoder), ``crf`` (quality, lower = better), ``preset``."""

    codec: str = "libx264"
    crf: int = 18
    preset: str | None = "veryfast"
    threads: int = 0


def output_format(output: Path) -> str:
    """The ffmpeg muxer for ``output``'s suffix (:data:`MUXERS`), else InputError naming the choices."""
    fmt = MUXERS.get(output.suffix.lower())
    if fmt is None:
        raise InputError(
            f"Cannot write {output.suffix or 'files without an extension'!r} video; name the output "
            f"with one of {', '.join(MUXERS)}."
        )
    return fmt


def prepare_output(source: Path, output: Path) -> None:
    """Refuse an output that is the source itself or sits in a folder that cannot be made or written."""
    if output.resolve() == source.resolve():
        raise InputError(f"The output {str(output)!r} is the source itself; choose another output name.")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Cannot create the output folder {str(output.parent)!r}: {exc}.") from exc
    if not os.access(output.parent, os.W_OK):
        raise InputError(f"The output folder {str(output.parent)!r} is not writable; choose another output.")


# Highest quality value (--crf, or -cq for NVENC) each encoder family takes; 51 for H.264/H.265.
_CRF_MAX = {"libvpx-vp9": 63, "libvpx": 63, "libaom-av1": 63, "libsvtav1": 63, "av1_nvenc": 51}


def check_crf(codec: str, crf) -> int:
    """``crf`` as an int if ``codec`` accepts it (0 to 51 for H.264/H.265, 63 for VP9/AV1), else InputError."""
    high = _CRF_MAX.get(codec, 51)
    if isinstance(crf, bool) or not isinstance(crf, numbers.Integral) or not 0 <= crf <= high:
        raise InputError(f"crf must be a whole number from 0 (lossless) to {high} (worst) for {codec}, got {crf!r}; "
                         "18 looks like the source, 23 is x264's usual default.")
    return int(crf)


def check_segment_seconds(seconds) -> float | None:
    """``segment_seconds`` as a float (None: the whole video in one segment), else InputError."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not 0 < seconds < float("inf"):
        raise InputError(f"the segment length must be a positive number of seconds, "
                         f"got {seconds!r}.")
    return float(seconds)


#: Frames per model batch when the caller gives none, by device type (``colorize video --batch-size``
#: documents the same numbers): enough frames to keep a GPU busy, few on a CPU, where the model dominates.
FRAME_BATCH_SIZES = {"cuda": 16, "cpu": 4}


def check_batch_size(batch) -> int | None:
    """``batch_size`` as an int (None: the default for the device), else InputError."""
    if batch is None:
        return None
    if isinstance(batch, bool) or not isinstance(batch, numbers.Integral) or batch < 1:
        raise InputError(f"batch_size must be a whole number of frames, 1 or more, got {batch!r}.")
    return int(batch)


def frame_batch_size(batch, device_type: str) -> int:
    """``batch`` checked (:func:`check_batch_size`), or :data:`FRAME_BATCH_SIZES` for the device type
    (``"cuda"``; any other device takes the CPU's)."""
    return check_batch_size(batch) or FRAME_BATCH_SIZES.get(device_type, FRAME_BATCH_SIZES["cpu"])


def default_output(source: str | os.PathLike) -> Path:
    """``clip.mov`` -> ``clip_colorized.mp4`` next to it."""
    src = Path(source)
    return src.with_name(f"{src.stem}_colorized.mp4")

