"""Resumable output: the frame stream cut into verified segment files, recorded in a manifest.

A job's parts folder holds ``seg_NNNNN.mp4`` files and ``manifest.json``, which names the job (a key
from the source and the settings), each finished segment (file, frames, start time) and, once every
frame is written, the decoder's diagnostics and the end time. A rerun with the same key resumes after
the last finished segment; any other parts folder content is discarded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from fractions import Fraction
from pathlib import Path

from ..errors import VideoError
from .binaries import FFmpegTools, count_video_packets
from .pipes import TIME_UNITS, FrameTimes, FrameWriter, MissingFrameTime
from .probe import VideoInfo
from .settings import EncodeSettings

MANIFEST = "manifest.json"


def save_manifest(work_dir: Path, manifest: dict) -> None:
    """Write ``manifest`` into ``work_dir`` atomically (a reader sees the old one or the new one)."""
    path = work_dir / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, path)


class Timeline:
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


class SegmentSink:
    """Splits the frame stream into segment files, verifies and records each one as it finishes.

    Each segment starts at time 0 with its frames at their source times relative to its first frame;
    the manifest records where it starts (``start``, microseconds), so assembling them keeps every
    frame's time."""

    def __init__(self, tools: FFmpegTools, work_dir: Path, manifest: dict, size: tuple[int, int],
                 timeline: Timeline, time_base: Fraction, sar: Fraction, encode: EncodeSettings,
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
        save_manifest(self.work_dir, self.manifest)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
        if self.tmp_path is not None and self.tmp_path.exists():
            self.tmp_path.unlink()


def job_key(source: Path, info: VideoInfo, settings: dict) -> str:
    """A short hash of the source file (path, size, mtime, frame size) and every setting that changes
    the output: segments are reused only by a job with the same key."""
    st = source.stat()
    blob = json.dumps({"source": str(source.resolve()), "size": st.st_size, "mtime": st.st_mtime_ns,
                       "w": info.width, "h": info.height, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_manifest(work_dir: Path, key: str, resume: bool) -> dict:
    """The manifest of the job ``key`` in ``work_dir`` when ``resume`` and all its segments are there;
    otherwise ``work_dir`` is emptied and a fresh manifest written."""
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
    save_manifest(work_dir, manifest)
    return manifest

