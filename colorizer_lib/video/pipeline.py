"""Colorize a whole video: :func:`colorize_video`, the one entry point, and :class:`VideoResult`.

A job checks its settings (settings.py), probes the source, opens or resumes its parts folder
(segments.py), runs the threaded decode -> colorize -> encode loop over the frames not done yet
(loop.py), then joins the segments with the source's audio, subtitles and metadata (assemble.py).
The output is written in segments of ``segment_seconds`` (video only, each verified and renamed when
complete, listed in a manifest), so an interrupted run resumes after its last finished segment. The
frame count is checked against the frames decoded, and only then is the file renamed to its final name.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import torch

from ..constants import check_render_factor
from ..errors import InputError, VideoError
from .assemble import assemble
from .binaries import FFmpegTools, check_encoder, count_video_packets, find_tools, steady_frame_rate, video_packet_times
from .loop import ColorizerLike, run_frames
from .pipes import TIME_UNITS
from .probe import probe
from .segments import job_key, load_manifest
from .settings import (EncodeSettings, check_batch_size, check_crf, check_segment_seconds, default_output,
                       frame_batch_size, output_format, prepare_output)
from .smoothing import ChromaSmoother


@dataclass
class VideoResult:
    """What :func:`colorize_video` produced.

    ``frames_in`` frames were decoded and ``frames_out`` written (always equal, or an error is
    raised). ``frames_affected`` counts frames the decoder reported damaged or could not decode
    (source packets without a picture plus concealed pictures). ``resumed_frames`` came from an
    earlier interrupted run. ``seconds`` is this call's wall time.
    """

    path: Path
    frames_in: int
    frames_out: int
    fps: Fraction
    size: tuple[int, int]
    seconds: float
    render_factor: int
    smoothing: float
    frames_affected: int = 0
    decode_errors: int = 0
    scene_cuts: int = 0
    resumed_frames: int = 0
    segments: int = 0
    audio_streams: int = 0
    source: str = ""
    warnings: list[str] = field(default_factory=list)
    seconds_of_video: float | None = None

    @property
    def duration(self) -> float:
        """Length of the output's video in seconds (from the frames' own times)."""
        return self.seconds_of_video if self.seconds_of_video is not None else float(self.frames_out / self.fps)

    @property
    def processing_fps(self) -> float:
        """Frames colorized per second of wall time in this call (resumed frames excluded)."""
        return (self.frames_out - self.resumed_frames) / self.seconds if self.seconds > 0 else 0.0


def colorize_video(
    source: str | os.PathLike,
    colorizer: ColorizerLike,
    output: str | os.PathLike | None = None,
    *,
    render_factor: int | None = None,
    smoothing: float = 0.6,
    batch_size: int | None = None,
    start: float | None = None,
    duration: float | None = None,
    encode: EncodeSettings = EncodeSettings(),
    segment_seconds: float | None = 60.0,
    work_dir: str | os.PathLike | None = None,
    resume: bool = True,
    keep_segments: bool = False,
    progress: bool = True,
    tools: FFmpegTools | None = None,
) -> VideoResult:
    """Colorize the video file ``source`` into ``output`` (default ``<stem>_colorized.mp4``).

    ``smoothing`` is the chroma EMA strength in [0, 1) (0 = off); ``start``/``duration`` (seconds)
    select a part; ``segment_seconds`` sets the resumable unit (None: one segment). Segments live in
    ``.<output name>.parts`` inside ``work_dir`` (default: the output's folder) until the final file is
    done; only that parts folder is ever deleted.
    Raises :class:`InputError` for unusable input, :class:`VideoError` when decoding, encoding,
    muxing or the final frame-count check fails; the output name then holds no file.
    """
    t0 = time.perf_counter()
    rf = check_render_factor(render_factor if render_factor is not None else colorizer.default_render_factor)
    smoother = ChromaSmoother(smoothing) if smoothing else None
    batch_size = check_batch_size(batch_size)
    segment_seconds = check_segment_seconds(segment_seconds)
    check_crf(encode.codec, encode.crf)
    if start is not None and start < 0 or duration is not None and duration <= 0:
        raise InputError("start must be >= 0 and duration > 0 (seconds).")
    tools = tools or find_tools()
    check_encoder(tools.ffmpeg, encode.codec)
    src = Path(source)
    info = probe(src, tools)
    out = Path(output) if output is not None else default_output(src)
    fmt = output_format(out)
    prepare_output(src, out)
    if info.duration is not None and start and start >= info.duration:
        raise InputError(f"start={start}s is past the end of the video ({info.duration:.2f}s).")
    device = torch.device(colorizer.device)
    cuda = device.type == "cuda"
    batch = frame_batch_size(batch_size, device.type)
    width, height = info.width, info.height
    size = (width + width % 2, height + height % 2)
    warnings: list[str] = []
    if size != (width, height):
        warnings.append(f"{width}x{height} is odd-sized; yuv420p needs even sizes, so the output is "
                        f"{size[0]}x{size[1]} (last row/column repeated).")
    fps = info.fps
    frames_per_segment = max(1, round(segment_seconds * fps)) if segment_seconds else 2**62
    # Frames keep their source times (variable frame rates included), encoded in the source's time unit.
    time_base = info.time_base if info.time_base and info.time_base >= Fraction(1, TIME_UNITS) \
        else Fraction(1, TIME_UNITS)
    steady = not info.variable_frame_rate and steady_frame_rate(video_packet_times(tools, src))
    settings = {"rf": rf, "smoothing": smoothing, "start": start, "duration": duration, "encode": asdict(encode),
                "fps": str(fps), "per_segment": frames_per_segment, "timing": 2, "time_base": str(time_base),
                "b_frames": steady,
                "model": getattr(colorizer, "name", type(colorizer).__name__)}
    # The parts folder is always one Colorizer creates and may delete: never the caller's folder itself.
    wdir = (Path(work_dir) if work_dir is not None else out.parent) / f".{out.name}.parts"
    manifest = load_manifest(wdir, job_key(src, info, settings), resume)
    resumed = sum(s["frames"] for s in manifest["segments"])

    if not manifest["complete"]:
        if smoother is not None and resumed:
            smoother.reset()
        try:
            run_frames(tools, info, colorizer, rf, smoother, batch, start, duration, manifest, wdir,
                        size, time_base, steady, encode, frames_per_segment, resumed, progress, cuda, output=out)
        except BaseException:
            if not manifest["segments"]:  # nothing worth resuming from
                shutil.rmtree(wdir, ignore_errors=True)
            raise
    frames = sum(s["frames"] for s in manifest["segments"])
    diag = manifest["decode"]
    affected = diag.get("concealed", 0)
    whole = start is None and duration is None
    if whole and (diag.get("decode_errors") or info.frame_count not in (None, frames)):
        affected += max(0, count_video_packets(tools, src) - frames)  # packets that gave no picture
    if diag.get("decode_errors"):
        warnings.append(f"the decoder reported {diag['decode_errors']} errors; {affected} frame(s) affected.")
    if manifest.get("repaired_times"):
        warnings.append(f"{manifest['repaired_times']} frame(s) had no time or one out of order in the source; "
                        "each was placed one frame after the frame before it.")
    tmp_out = out.with_name(f".{out.stem}.partial{out.suffix}")
    try:
        warnings += assemble(tools, wdir, manifest, src, info, tmp_out, fmt, start, duration, output=out)
        written = count_video_packets(tools, tmp_out)
        if written != frames:
            raise VideoError(
                f"Frame count mismatch: {frames} frames were decoded and colorized but {written} are in "
                f"the assembled file. The result was discarded; the segments in {wdir} are kept."
            )
        os.replace(tmp_out, out)
    finally:
        if tmp_out.exists():
            tmp_out.unlink()
    if not keep_segments:
        shutil.rmtree(wdir, ignore_errors=True)
    return VideoResult(
        path=out, frames_in=frames, frames_out=written, fps=fps, size=size, seconds=time.perf_counter() - t0,
        render_factor=rf, smoothing=smoothing, frames_affected=affected,
        decode_errors=diag.get("decode_errors", 0), scene_cuts=smoother.scene_cuts if smoother else 0,
        resumed_frames=resumed, segments=len(manifest["segments"]), audio_streams=len(info.audio_codecs),
        source=str(src), warnings=warnings,
        seconds_of_video=(manifest["end"] - manifest["segments"][0]["start"]) / TIME_UNITS,
    )

