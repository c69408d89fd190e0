"""Colorize a whole video: decode pipe -> batched predict_chroma -> smoothing -> compose -> encode pipe.

Three threads overlap the work: a reader fills pinned uint8 luma batches from ffmpeg, the calling
thread runs the model on the Colorizer's device, a writer feeds the encoder. The output is written
in segments of ``segment_seconds`` (video only, each verified and renamed when complete, listed in a
manifest), so an interrupted run resumes after its last finished segment. At the end the segments
are joined without re-encoding, the source's audio, subtitles and metadata are muxed in, the frame
count is checked against the frames decoded, and only then is the file renamed to its final name.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import queue
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import torch

from ..constants import check_render_factor
from ..errors import ColorizerOutOfMemoryError, InputError, VideoError
from .binaries import (FFmpegTools, check_encoder, count_video_packets, find_tools, run_tool, steady_frame_rate,
                       tail, video_packet_times)
from .convert import gray_u8_to_luma, pad_to_even, rgb_to_yuv420p
from .pipes import TIME_UNITS, FrameReader, FrameTimes, FrameWriter, MissingFrameTime
from .probe import VideoInfo, probe
from .smoothing import ChromaSmoother

MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
_TEXT_SUBS_FOR = {"mp4": "mov_text", "mov": "mov_text", "matroska": "srt"}
MANIFEST = "manifest.json"


class ColorizerLike(Protocol):
    """The two Colorizer methods (docs/ARCHITECTURE.md) the video pipeline needs, plus its device."""

    device: torch.device
    default_render_factor: int

    def predict_chroma(self, luma: torch.Tensor, render_factor: int | None = None) -> torch.Tensor: ...

    def compose(self, luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor: ...


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


@dataclass(frozen=True)
class EncodeSettings:
    """Encoder choices: ``codec`` (ffmpeg encoder), ``crf`` (quality, lower = better), ``preset``."""

    codec: str = "libx264"
    crf: int = 18
    preset: str | None = "veryfast"
    threads: int = 0


@torch.inference_mode()
def colorize_frames(colorizer: ColorizerLike, frames: torch.Tensor, render_factor: int | None,
                    smoother: ChromaSmoother | None = None) -> torch.Tensor:
    """Colorize a batch of decoded frames: ``(B, H, W)`` uint8 luma -> ``(B, H'*W'*3/2)`` uint8 yuv420p.

    The same ``predict_chroma -> compose`` path as still images, with the chroma smoothed across
    frames in between; H' and W' are H and W rounded up to even (edge pixels replicated).
    """
    try:
        luma = gray_u8_to_luma(frames, colorizer.device)
        chroma = colorizer.predict_chroma(luma, render_factor)
        if smoother is not None:
            chroma = smoother(chroma, luma)
        rgb = colorizer.compose(luma, chroma)
        return rgb_to_yuv420p(pad_to_even(rgb.float()))
    except torch.cuda.OutOfMemoryError as exc:
        torch.cuda.empty_cache()
        raise ColorizerOutOfMemoryError(
            f"Out of GPU memory on a batch of {frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]}: "
            "lower batch_size (--batch-size) or the render factor. Finished frames are kept; rerun to resume."
        ) from exc


# --------------------------------------------------------------------------------------------- helpers

class _Stop(Exception):
    """Raised inside a worker thread when the main thread asked everybody to stop."""


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stop
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event):
    while True:
        if stop.is_set():
            raise _Stop
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue


@dataclass
class _Done:
    diagnostics: dict


@dataclass
class _Failed:
    error: BaseException


def _output_format(output: Path) -> str:
    fmt = MUXERS.get(output.suffix.lower())
    if fmt is None:
        raise InputError(
            f"Cannot write {output.suffix or 'files without an extension'!r} video; name the output "
            f"with one of {', '.join(MUXERS)}."
        )
    return fmt


def _prepare_output(source: Path, output: Path) -> None:
    if output.resolve() == source.resolve():
        raise InputError(f"The output {str(output)!r} is the source itself; choose another output name.")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Cannot create the output folder {str(output.parent)!r}: {exc}.") from exc
    if not os.access(output.parent, os.W_OK):
        raise InputError(f"The output folder {str(output.parent)!r} is not writable; choose another output.")


def _atomic_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


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


def check_batch_size(batch) -> int | None:
    """``batch_size`` as an int (None: the default for the device), else InputError."""
    if batch is None:
        return None
    if isinstance(batch, bool) or not isinstance(batch, numbers.Integral) or batch < 1:
        raise InputError(f"batch_size must be a whole number of frames, 1 or more, got {batch!r}.")
    return int(batch)


def default_output(source: str | os.PathLike) -> Path:
    """``clip.mov`` -> ``clip_colorized.mp4`` next to it."""
    src = Path(source)
    return src.with_name(f"{src.stem}_colorized.mp4")


# --------------------------------------------------------------------------------------------- job

class _Timeline:
    """Frame times in microseconds, made safe for an encoder: a frame ffmpeg gave no time, or one not
    after its predecessor (a damaged source), is placed one nominal frame (at least 1 ms) after it.
    Computed in frame order from frame 0, so a resumed run gets the same times."""

    def __init__(self, times: FrameTimes, fps: Fraction, stop: threading.Event):
        self.times, self.stop = times, stop
        self.step = max(1000, round(TIME_UNITS / fps))
        self.fixed: list[int] = []
        self.repaired = 0

    def __getitem__(self, index: int) -> int:
        while len(self.fixed) <= index:
            i = len(self.fixed)
            pts = self.times.get(i, self.stop)
            prev = self.fixed[-1] if self.fixed else None
            if pts is None or prev is not None and pts <= prev:
                self.repaired += 1
                pts = 0 if prev is None else prev + self.step
            self.fixed.append(pts)
        return self.fixed[index]

    def end(self, last: int, limit: float | None) -> int:
        """When frame ``last`` (the final one) stops showing: its time plus its duration (or the
        typical gap between frames), at most ``limit`` seconds."""
        dur = self.times.durations[last] if last < len(self.times.durations) else 0
        if dur <= 0:
            gaps = sorted(b - a for a, b in zip(self.fixed[max(0, last - 50):last], self.fixed[max(1, last - 49):last + 1]))
            dur = gaps[len(gaps) // 2] if gaps else self.step
        end = self[last] + dur
        return min(end, round(limit * TIME_UNITS)) if limit is not None and limit * TIME_UNITS > self[last] else end


class _SegmentSink:
    """Splits the frame stream into segment files, verifies and records each one as it finishes.

    Each segment starts at time 0 with its frames at their source times relative to its first frame;
    the manifest records where it starts (``start``, microseconds), so assembling them keeps every
    frame's time."""

    def __init__(self, tools: FFmpegTools, work_dir: Path, manifest: dict, size: tuple[int, int],
                 timeline: _Timeline, time_base: Fraction, sar: Fraction, encode: EncodeSettings,
                 frames_per_segment: int, b_frames: bool = True, output: Path | None = None):
        self.tools, self.work_dir, self.manifest = tools, work_dir, manifest
        self.output = output  # the final file, which messages name (segments are temporary)
        self.size, self.timeline, self.time_base, self.sar, self.encode = size, timeline, time_base, sar, encode
        self.frames_per_segment, self.b_frames = frames_per_segment, b_frames
        self.writer: FrameWriter | None = None
        self.tmp_path: Path | None = None
        self.segment_start = 0

    @property
    def next_index(self) -> int:
        return len(self.manifest["segments"])

    @property
    def next_frame(self) -> int:
        """Index (from the first decoded frame) of the next frame to write."""
        done = sum(seg["frames"] for seg in self.manifest["segments"])
        return done + (self.writer.frames_written if self.writer is not None else 0)

    def write(self, data) -> None:
        frame_bytes = self.size[0] * self.size[1] * 3 // 2
        n = len(data) // frame_bytes if isinstance(data, (bytes, bytearray)) else data.shape[0]
        pos = 0
        while pos < n:
            if self.writer is None:
                self._open()
            take = min(n - pos, self.frames_per_segment - self.writer.frames_written)
            first = self.next_frame
            times: list[int] = []
            try:
                for i in range(first, first + take):
                    times.append(self.timeline[i] - self.segment_start)
            except MissingFrameTime:
                self.writer.write(data[pos:pos + len(times)], times)  # keep the frames whose time is known
                raise
            self.writer.write(data[pos:pos + take], times)
            pos += take
            if self.writer.frames_written == self.frames_per_segment:
                self.close_segment()

    def _open(self) -> None:
        name = f"seg_{self.next_index:05d}.mp4"
        self.segment_start = self.timeline[self.next_frame]
        self.tmp_path = self.work_dir / f"{name}.tmp"
        self.writer = FrameWriter(self.tools, self.tmp_path, *self.size, time_base=self.time_base,
                                  codec=self.encode.codec, crf=self.encode.crf, preset=self.encode.preset,
                                  sample_aspect_ratio=self.sar, fmt="mp4", threads=self.encode.threads,
                                  b_frames=self.b_frames, label=self._segment_label())

    def _segment_label(self) -> str:
        """The open segment as messages name it: ``out.mp4 (segment 3)``."""
        return f"{self.output or self.work_dir} (segment {self.next_index + 1})"

    def close_segment(self) -> None:
        """Finish the open segment: wait for the encoder, check its frame count, rename, record."""
        if self.writer is None:
            return
        writer, tmp = self.writer, self.tmp_path
        label = self._segment_label()
        self.writer = None
        if writer.frames_written == 0:  # stopped before its first frame: nothing to keep
            writer.abort()
            tmp.unlink(missing_ok=True)
            return
        frames = writer.finish()
        try:
            packets = count_video_packets(self.tools, tmp)
        except VideoError as exc:
            free = shutil.disk_usage(self.work_dir).free / 1e6
            hint = "the disk is probably full; free some space or choose another output folder" if free < 100 \
                else "check the encoder settings (codec, preset)"
            raise VideoError(
                f"The encoder wrote an unreadable file for {label} ({exc}). {free:.1f} MB are free in "
                f"{self.work_dir}: {hint}. Finished segments are kept and the next run resumes from them."
            ) from exc
        if packets != frames:
            raise VideoError(f"The encoder wrote {packets} frames for {label} but was given {frames}.")
        final = tmp.with_suffix("")
        os.replace(tmp, final)
        self.manifest["segments"].append({"file": final.name, "frames": frames, "start": self.segment_start})
        _atomic_json(self.work_dir / MANIFEST, self.manifest)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
        if self.tmp_path is not None and self.tmp_path.exists():
            self.tmp_path.unlink()


def _job_key(source: Path, info: VideoInfo, settings: dict) -> str:
    st = source.stat()
    blob = json.dumps({"source": str(source.resolve()), "size": st.st_size, "mtime": st.st_mtime_ns,
                       "w": info.width, "h": info.height, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _load_manifest(work_dir: Path, key: str, resume: bool) -> dict:
    path = work_dir / MANIFEST
    if resume and path.is_file():
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            manifest = {}
        if manifest.get("key") == key and all((work_dir / s["file"]).is_file() for s in manifest["segments"]):
            return manifest
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    manifest = {"key": key, "segments": [], "complete": False, "decode": {}}
    _atomic_json(path, manifest)
    return manifest


def _pool(count: int, shape: tuple[int, ...], pin: bool) -> queue.Queue:
    q: queue.Queue = queue.Queue()
    for _ in range(count):
        q.put(torch.empty(shape, dtype=torch.uint8, pin_memory=pin))
    return q


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
    fmt = _output_format(out)
    _prepare_output(src, out)
    if info.duration is not None and start and start >= info.duration:
        raise InputError(f"start={start}s is past the end of the video ({info.duration:.2f}s).")
    device = torch.device(colorizer.device)
    cuda = device.type == "cuda"
    batch = batch_size or (16 if cuda else 4)
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
    manifest = _load_manifest(wdir, _job_key(src, info, settings), resume)
    resumed = sum(s["frames"] for s in manifest["segments"])

    if not manifest["complete"]:
        if smoother is not None and resumed:
            smoother.reset()
        try:
            _run_frames(tools, info, colorizer, rf, smoother, batch, start, duration, manifest, wdir,
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
        warnings += _assemble(tools, wdir, manifest, src, info, tmp_out, fmt, start, duration, output=out)
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


def _run_frames(tools, info, colorizer, rf, smoother, batch, start, duration, manifest, wdir, size, time_base,
                b_frames, encode, frames_per_segment, skip, progress, cuda, output: Path | None = None) -> None:
    """Decode, colorize and encode every frame after the first ``skip``; record segments in ``manifest``."""
    from tqdm.auto import tqdm

    width, height = info.width, info.height
    frame_bytes = size[0] * size[1] * 3 // 2
    stop = threading.Event()  # everybody stops (the writer failed)
    stop_read = threading.Event()  # only the reader stops (the model failed or was interrupted)
    in_pool = _pool(4, (batch, height, width), cuda)
    out_pool = _pool(4, (batch, frame_bytes), cuda)
    q_in: queue.Queue = queue.Queue(maxsize=2)
    q_out: queue.Queue = queue.Queue(maxsize=2)
    reader = FrameReader(tools, info.path, width, height, start=start, duration=duration)
    timeline = _Timeline(reader.times, info.fps, stop)
    sink = _SegmentSink(tools, wdir, manifest, size, timeline, time_base, info.sample_aspect_ratio, encode,
                        frames_per_segment, b_frames, output=output)
    total = info.estimated_frames
    if duration is not None:
        total = round(duration * info.fps)
    elif start and total is not None:
        total = max(0, total - round(start * info.fps))
    bar = tqdm(total=total, initial=skip, unit="frame", desc="colorizing", disable=not progress, smoothing=0.1)
    errors: list[BaseException] = []

    def read_loop() -> None:
        try:
            if reader.skip(skip) < skip:
                raise VideoError("The source has fewer frames than the finished segments of the earlier run; "
                                 "delete the work folder or pass resume=False.")
            while True:
                buf = _get(in_pool, stop_read)
                n = reader.read_into(buf.numpy())
                if n:
                    _put(q_in, (buf, n), stop_read)
                else:
                    in_pool.put(buf)
                if n < batch:
                    break
            _put(q_in, _Done(reader.finish()), stop_read)
        except _Stop:
            pass
        except BaseException as exc:  # handed to the main thread
            try:
                _put(q_in, _Failed(exc), stop_read)
            except _Stop:
                pass

    def write_loop() -> None:
        try:
            while True:
                item = _get(q_out, stop)
                if item is None:
                    break
                buf, n, event = item
                if event is not None:
                    event.synchronize()
                sink.write(buf.numpy()[:n])
                out_pool.put(buf)
                bar.update(n)
            sink.close_segment()
        except _Stop:
            pass
        except MissingFrameTime as exc:
            if not stop_read.is_set():
                errors.append(exc)
                stop.set()
                return
            # Decoding was stopped (interrupted, or the model failed) before ffmpeg told the time of the
            # last frames: keep those with a time as a finished segment, to resume after; drop the rest.
            try:
                sink.close_segment()
                while _get(q_out, stop) is not None:
                    pass
            except _Stop:
                pass
            except BaseException as exc2:
                errors.append(exc2)
                stop.set()
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=read_loop, daemon=True), threading.Thread(target=write_loop, daemon=True)]
    for t in threads:
        t.start()
    pending = None  # (input buffer, event) of the batch whose output is still being copied off the device
    diagnostics: dict = {}
    try:
        try:
            while True:
                item = _get(q_in, stop)
                if isinstance(item, _Failed):
                    raise item.error
                if isinstance(item, _Done):
                    diagnostics = item.diagnostics
                    break
                buf, n = item
                yuv = colorize_frames(colorizer, buf[:n], rf, smoother)
                out_buf = _get(out_pool, stop)
                out_buf[:n].copy_(yuv, non_blocking=cuda)
                event = torch.cuda.Event() if cuda else None
                if event is not None:
                    event.record()
                # This batch is queued on the device; now hand back the previous batch's input buffer.
                if pending is not None:
                    if pending[1] is not None:
                        pending[1].synchronize()
                    in_pool.put(pending[0])
                pending = (buf, event)
                _put(q_out, (out_buf, n, event), stop)
        except _Stop:
            raise (errors[0] if errors else VideoError("The video pipeline stopped unexpectedly.")) from None
        except BaseException:
            # Interrupted (Ctrl-C) or the model failed: stop decoding, but let the writer finish the
            # frames already colorized and record them as a (short) segment, so a rerun resumes there.
            stop_read.set()
            reader.close()
            if not errors:
                try:
                    _put(q_out, None, stop)
                    threads[1].join()
                except _Stop:
                    pass
            raise
        _put(q_out, None, stop)
        threads[1].join()
        if errors:
            raise errors[0]
    except BaseException:
        stop.set()
        stop_read.set()
        reader.close()
        for t in threads:
            t.join(timeout=10)
        sink.abort()
        raise
    finally:
        bar.close()
    threads[0].join(timeout=10)
    frames = sum(s["frames"] for s in manifest["segments"])
    if frames != reader.frames_read:
        raise VideoError(f"{reader.frames_read} frames were decoded but {frames} encoded; the result was discarded.")
    if frames == 0:
        shutil.rmtree(wdir, ignore_errors=True)
        raise InputError(f"{info.path!r} contains no decodable video frames (zero-length or fully corrupt).")
    manifest["decode"] = {k: v for k, v in diagnostics.items() if k != "messages"}
    manifest["end"] = timeline.end(frames - 1, duration)
    manifest["repaired_times"] = timeline.repaired
    manifest["complete"] = True
    _atomic_json(wdir / MANIFEST, manifest)


def _assemble(tools: FFmpegTools, wdir: Path, manifest: dict, src: Path, info: VideoInfo, tmp_out: Path,
              fmt: str, start: float | None, duration: float | None, output: Path | None = None) -> list[str]:
    """Join the segments (stream copy) with the source's audio, subtitles and metadata into ``tmp_out``
    (which becomes ``output``, the name messages use).

    Audio is copied when the container accepts it and re-encoded to AAC otherwise (always when a part
    is selected with ``start``/``duration``, since stream copy cuts only at packet boundaries and keeps
    pre-roll); subtitles are copied, converted to the container's text format, or dropped with a
    warning. Returns warnings.
    """
    segments = manifest["segments"]
    ends = [seg["start"] for seg in segments[1:]] + [manifest["end"]]
    listing = wdir / "segments.txt"
    # Each segment lasts until the next one starts, so every frame lands at its source time; the first
    # starts where the source's first frame does (relative to the audio).
    listing.write_text("".join(f"file '{seg['file']}'\nduration {(end - seg['start']) / TIME_UNITS:.6f}\n"
                               for seg, end in zip(segments, ends)))
    base = [tools.ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y",
            "-itsoffset", f"{segments[0]['start'] / TIME_UNITS:.6f}", "-f", "concat", "-safe", "0", "-i", str(listing)]
    has_audio, has_subs = bool(info.audio_codecs), bool(info.subtitle_codecs)
    if has_audio or has_subs:
        if start:
            base += ["-ss", f"{start:.6f}"]
        if duration is not None:
            base += ["-t", f"{duration:.6f}"]
        base += ["-i", str(src)]
    base += ["-map", "0:v:0", "-c:v", "copy"]
    attempts: list[tuple[list[str], str | None]] = []
    if has_audio or has_subs:
        meta = ["-map_metadata", "1"]
        audio = ["-map", "1:a?"] if has_audio else []
        subs = ["-map", "1:s?"] if has_subs else []
        if not (start or duration is not None):  # a trimmed part needs sample-exact audio: re-encode
            attempts.append((meta + audio + subs + ["-c:a", "copy", "-c:s", "copy"], None))
        attempts.append((meta + audio + subs + ["-c:a", "aac", "-b:a", "192k", "-c:s", _TEXT_SUBS_FOR[fmt]],
                         None if start or duration is not None else
                         "audio was re-encoded to AAC (the source codec does not fit the container)."))
        if has_subs:
            attempts.append((meta + audio + ["-c:a", "aac", "-b:a", "192k", "-sn"],
                             f"subtitles ({', '.join(info.subtitle_codecs)}) could not be carried into {fmt}; "
                             "they were left out (use an .mkv output to keep them)."))
    else:
        attempts.append(([], None))
    failures = []
    for extra, warning in attempts:
        proc = run_tool(base + extra + ["-f", fmt, str(tmp_out)], "Muxing", check=False)
        if proc.returncode == 0:
            return [warning] if warning else []
        failures.append(tail(proc.stderr, 3))
        if "No space left" in proc.stderr:
            break
    if tmp_out.exists():
        tmp_out.unlink()
    raise VideoError(f"Assembling {output or tmp_out} failed: {' || '.join(failures)}. Check free disk space; the "
                     f"finished segments are kept in {wdir}, so running again resumes from them.")
