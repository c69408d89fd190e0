"""ffmpeg decode and encode pipes: raw frames through stdin/stdout, never through files on disk."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import threading
from fractions import Fraction

import numpy as np

from ..errors import InputError, VideoError
from .binaries import FFmpegTools, tail

# ffmpeg decoder messages that mean one decoded picture was damaged (concealed) rather than lost.
_CONCEALED = re.compile(r"concealing \d+ DC", re.IGNORECASE)
_ERROR = re.compile(r"error|invalid|corrupt|missing|non-existing|overflow", re.IGNORECASE)


class _StderrCollector(threading.Thread):
    """Drains a process's stderr in the background so the pipe never fills up and blocks ffmpeg.

    Keeps the last 200 lines and counts error and concealment messages over the whole run.
    """

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: collections.deque[str] = collections.deque(maxlen=200)
        self.errors = 0
        self.concealed = 0

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if not line.strip():
                continue
            self.lines.append(line)
            self.errors += bool(_ERROR.search(line))
            self.concealed += bool(_CONCEALED.search(line))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class FrameReader:
    """Decode the first video stream of ``path`` into ``(H, W)`` uint8 grey (luma) frames.

    Frames arrive in display orientation (ffmpeg applies rotation metadata) and one per decoded
    picture (``-fps_mode passthrough``, ``-vsync`` before ffmpeg 5.1: variable frame rate sources are
    neither padded nor thinned).
    ``start``/``duration`` (seconds) select a part. Use as a context manager, call
    :meth:`read_into` until it returns fewer frames than asked, then :meth:`finish`.
    """

    def __init__(self, tools: FFmpegTools, path: str | os.PathLike, width: int, height: int,
                 start: float | None = None, duration: float | None = None):
        self.width, self.height = width, height
        self.frame_bytes = width * height
        self.frames_read = 0
        cmd = [tools.ffmpeg, "-nostdin", "-hide_banner", "-v", "error"]
        if start:
            cmd += ["-ss", f"{start:.6f}"]
        cmd += ["-i", str(path)]
        if duration is not None:
            cmd += ["-t", f"{duration:.6f}"]
        cmd += ["-map", "0:v:0", "-an", "-sn", "-dn", *tools.passthrough_args(),
                "-f", "rawvideo", "-pix_fmt", "gray", "-"]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._stderr = _StderrCollector(self._proc.stderr)
        self._stderr.start()

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read_into(self, out: np.ndarray) -> int:
        """Fill ``out`` (shape ``(n, H, W)``, uint8, C-contiguous) with up to n frames; return how many."""
        view = memoryview(out.reshape(-1)).cast("B")
        want = view.nbytes
        got = 0
        stdout = self._proc.stdout
        while got < want:
            n = stdout.readinto(view[got:])
            if not n:
                break
            got += n
        if got % self.frame_bytes:
            raise VideoError(
                f"The decoder stopped in the middle of a frame ({got % self.frame_bytes} of "
                f"{self.frame_bytes} bytes): {tail(self._stderr.text)}"
            )
        frames = got // self.frame_bytes
        self.frames_read += frames
        return frames

    def skip(self, frames: int) -> int:
        """Decode and discard ``frames`` frames (resuming after finished segments); return how many."""
        scratch = np.empty((min(frames, 16) or 1, self.height, self.width), np.uint8)
        done = 0
        while done < frames:
            n = self.read_into(scratch[: min(len(scratch), frames - done)])
            done += n
            if n == 0:
                break
        return done

    def finish(self) -> dict:
        """Wait for ffmpeg; raise :class:`VideoError` if it failed. Returns decode diagnostics.

        ``decode_errors`` counts ffmpeg's error lines; ``concealed`` counts pictures the decoder
        reports it repaired. Damaged packets that yield no picture show up as missing frames.
        """
        self._proc.stdout.close()
        rc = self._proc.wait()
        self._stderr.join(timeout=5)
        text = self._stderr.text
        if rc != 0 and self.frames_read == 0:
            raise InputError(f"The video contains no decodable video frames (zero-length or corrupt): {tail(text)}")
        if rc != 0:
            raise VideoError(f"Decoding failed (ffmpeg exit {rc}) after {self.frames_read} frames: {tail(text)}")
        return {
            "decode_errors": self._stderr.errors,
            "concealed": self._stderr.concealed,
            "messages": list(self._stderr.lines)[-20:],
        }

    def close(self) -> None:
        """Stop ffmpeg if it is still running (after an error elsewhere)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass


class FrameWriter:
    """Encode raw ``yuv420p`` frames (BT.601 limited range) from a pipe into a video-only file.

    ``codec`` is an ffmpeg encoder name (``libx264``, ``h264_nvenc``, ``libx265``...); ``crf`` the
    quality (lower is better; used as ``-cq`` for NVENC); ``preset`` the speed preset. The file is
    written to ``path`` with the muxer ``fmt``. Call :meth:`write` with bytes-like frames, then
    :meth:`finish`.
    """

    def __init__(self, tools: FFmpegTools, path: str | os.PathLike, width: int, height: int, fps: Fraction,
                 codec: str = "libx264", crf: int = 18, preset: str | None = "veryfast",
                 sample_aspect_ratio: Fraction = Fraction(1), fmt: str = "mp4", threads: int = 0):
        if width % 2 or height % 2:
            raise ValueError("yuv420p frames need an even width and height; pad them first")
        self.path = str(path)
        self.frame_bytes = width * height * 3 // 2
        self.frames_written = 0
        cmd = [tools.ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}",
               "-framerate", f"{fps.numerator}/{fps.denominator}", "-i", "-", "-map", "0:v", "-c:v", codec]
        if codec.endswith("_nvenc"):
            cmd += ["-rc", "vbr", "-cq", str(crf), "-b:v", "0"]
            if preset:
                cmd += ["-preset", preset]
        else:
            cmd += ["-crf", str(crf)]
            if preset:
                cmd += ["-preset", preset]
            if threads:
                cmd += ["-threads", str(threads)]
        if sample_aspect_ratio != 1:
            cmd += ["-vf", f"setsar={sample_aspect_ratio.numerator}/{sample_aspect_ratio.denominator}"]
        cmd += ["-pix_fmt", "yuv420p", "-color_range", "tv", "-colorspace", "smpte170m",
                "-color_primaries", "smpte170m", "-color_trc", "smpte170m", "-f", fmt, self.path]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._stderr = _StderrCollector(self._proc.stderr)
        self._stderr.start()

    def write(self, data) -> None:
        """Write whole frames (a bytes-like object of ``k * frame_bytes`` bytes)."""
        view = memoryview(data).cast("B")
        if view.nbytes % self.frame_bytes:
            raise ValueError(f"{view.nbytes} bytes is not a whole number of {self.frame_bytes}-byte frames")
        try:
            self._proc.stdin.write(view)
        except (BrokenPipeError, OSError) as exc:
            self._proc.wait()
            self._stderr.join(timeout=5)
            raise VideoError(
                f"The encoder stopped while writing {self.path}: {tail(self._stderr.text)} ({exc}). "
                "Check free disk space and that the output folder is writable."
            ) from exc
        self.frames_written += view.nbytes // self.frame_bytes

    def finish(self) -> int:
        """Close the pipe and wait for ffmpeg; raise :class:`VideoError` on failure. Returns frames written."""
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        rc = self._proc.wait()
        self._stderr.join(timeout=5)
        if rc != 0:
            raise VideoError(
                f"Encoding {self.path} failed (ffmpeg exit {rc}): {tail(self._stderr.text)}. "
                "Check free disk space and that the output folder is writable."
            )
        return self.frames_written

    def abort(self) -> None:
        """Kill ffmpeg (after an error elsewhere); the partial file is the caller's to delete."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stderr):
            if stream and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass
