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


class MissingFrameTime(VideoError):
    """ffmpeg ended before reporting the time of a frame (it was stopped, or it failed)."""


# Frame times travel between the processes in microseconds: exact for the usual time bases (1/1000
# for Matroska, 1/90000, 1/15360...) after rounding back to them, and the encoder's input unit.
TIME_UNITS = 1_000_000


class FrameTimes(threading.Thread):
    """Collects the presentation time (microseconds) and duration of each decoded frame, in order.

    Reads the ``framecrc`` lines ffmpeg writes for every frame (``stream, dts, pts, duration, size,
    crc``) from ``stream`` in the background; :meth:`get` waits for a frame's time to arrive.
    """

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream = stream
        self.pts: list[int | None] = []
        self.durations: list[int] = []
        self.finished = False
        self._cond = threading.Condition()

    def run(self) -> None:
        try:
            for raw in iter(self.stream.readline, b""):
                line = raw.decode("ascii", "replace").strip()
                if not line or line.startswith("#"):
                    continue
                fields = [f.strip() for f in line.split(",")]
                pts = int(fields[2]) if len(fields) > 3 and fields[2].lstrip("-").isdigit() else None
                dur = int(fields[3]) if len(fields) > 3 and fields[3].isdigit() else 0
                with self._cond:
                    self.pts.append(pts)
                    self.durations.append(dur)
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass  # the pipe was closed under us (the reader was stopped)
        finally:
            with self._cond:
                self.finished = True
                self._cond.notify_all()

    def get(self, index: int, stop: threading.Event | None = None) -> int | None:
        """The time of frame ``index`` (None if ffmpeg gave it none); waits until ffmpeg has reported it."""
        with self._cond:
            while len(self.pts) <= index and not self.finished:
                if stop is not None and stop.is_set():
                    raise VideoError("stopped while waiting for a frame time")
                self._cond.wait(0.1)
            if index >= len(self.pts):
                raise MissingFrameTime(f"ffmpeg reported no time for frame {index} (it stopped after "
                                       f"{len(self.pts)} frames).")
            return self.pts[index]


class FrameReader:
    """Decode the first video stream of ``path`` into ``(H, W)`` uint8 grey (luma) frames.

    Frames arrive in display orientation (ffmpeg applies rotation metadata) and one per decoded
    picture (``-fps_mode passthrough``, ``-vsync`` before ffmpeg 5.1: variable frame rate sources are
    neither padded nor thinned). The same ffmpeg reports each frame's presentation time on a second
    output (:class:`FrameTimes`, ``self.times``), so the encoder can give every frame its own time.
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
        # Two outputs of the same frames: first one line per frame with its time in microseconds
        # (framecrc's format; first, so a frame's time is usually sent before its pixels), then the pixels.
        select = ["-map", "0:v:0", *tools.passthrough_args()]
        if duration is not None:
            select += ["-t", f"{duration:.6f}"]
        times_read, times_write = os.pipe()
        cmd += [*select, "-enc_time_base", f"1:{TIME_UNITS}", "-c:v", "wrapped_avframe", "-flush_packets", "1",
                "-f", "framecrc", f"pipe:{times_write}",
                *select, "-an", "-sn", "-dn", "-f", "rawvideo", "-pix_fmt", "gray", "-"]
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, pass_fds=(times_write,))
        finally:
            os.close(times_write)
        self.times = FrameTimes(os.fdopen(times_read, "rb"))
        self.times.start()
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
        self.times.join(timeout=5)
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
        self.times.join(timeout=5)
        for stream in (self._proc.stdout, self._proc.stderr, self.times.stream):
            if stream and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass


def _ebml_size(n: int) -> bytes:
    for length in range(1, 9):
        if n < (1 << (7 * length)) - 1:
            return (n | (1 << (7 * length))).to_bytes(length, "big")
    raise ValueError(f"{n} bytes is too large for one Matroska element")


def _ebml(element_id: int, payload: bytes) -> bytes:
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big") + _ebml_size(len(payload)) + payload


def _ebml_uint(element_id: int, value: int) -> bytes:
    return _ebml(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _matroska_header(width: int, height: int) -> bytes:
    """The start of a Matroska stream with one uncompressed I420 (yuv420p) video track, timed in microseconds.

    Raw frames with their own times need a container; this is the smallest one every ffmpeg since 2.x
    reads (``V_UNCOMPRESSED`` with a ColourSpace FourCC), written as a stream (Segment of unknown size).
    """
    ebml = _ebml(0x1A45DFA3, _ebml_uint(0x4286, 1) + _ebml_uint(0x42F7, 1) + _ebml_uint(0x42F2, 4)
                 + _ebml_uint(0x42F3, 8) + _ebml(0x4282, b"matroska") + _ebml_uint(0x4287, 4)
                 + _ebml_uint(0x4285, 2))
    segment = (0x18538067).to_bytes(4, "big") + b"\x01\xff\xff\xff\xff\xff\xff\xff"  # unknown size
    info = _ebml(0x1549A966, _ebml_uint(0x2AD7B1, 1_000_000_000 // TIME_UNITS) + _ebml(0x4D80, b"colorizer")
                 + _ebml(0x5741, b"colorizer"))
    video = _ebml(0xE0, _ebml_uint(0xB0, width) + _ebml_uint(0xBA, height) + _ebml(0x2EB524, b"I420"))
    track = _ebml(0xAE, _ebml_uint(0xD7, 1) + _ebml_uint(0x73C5, 1) + _ebml_uint(0x83, 1)
                  + _ebml(0x86, b"V_UNCOMPRESSED") + video)
    return ebml + segment + info + _ebml(0x1654AE6B, track)


def _matroska_frame_header(pts: int, frame_bytes: int) -> bytes:
    """A Cluster at ``pts`` (microseconds) holding one key-frame SimpleBlock of ``frame_bytes``; the frame follows."""
    block_head = b"\x81\x00\x00\x80"  # track 1, relative time 0, key frame
    block = (0xA3).to_bytes(1, "big") + _ebml_size(len(block_head) + frame_bytes) + block_head
    timestamp = _ebml_uint(0xE7, pts)
    return (0x1F43B675).to_bytes(4, "big") + _ebml_size(len(timestamp) + len(block) + frame_bytes) + timestamp + block


# NVENC has no x264 preset names (the default --preset veryfast would stop it): the nearest of its own,
# which every ffmpeg with NVENC knows.
_NVENC_PRESETS = {"ultrafast": "fast", "superfast": "fast", "veryfast": "fast", "faster": "fast",
                  "fast": "fast", "medium": "medium", "slow": "slow", "slower": "slow", "veryslow": "slow"}


class FrameWriter:
    """Encode raw ``yuv420p`` frames (BT.601 limited range), each with its own time, into a video-only file.

    Frames travel to ffmpeg in a minimal Matroska stream that carries their presentation times
    (microseconds, from :class:`FrameTimes`), and ffmpeg passes the times through to the encoder at
    ``time_base`` (the source's), so variable frame rate video keeps its timing in any container.
    ``codec`` is an ffmpeg encoder name (``libx264``, ``h264_nvenc``, ``libx265``...); ``crf`` the
    quality (lower is better; used as ``-cq`` for NVENC); ``preset`` the speed preset. The file is
    written to ``path`` with the muxer ``fmt``. ``b_frames=False`` encodes without B-frames: with
    unevenly spaced frames, reordering delay would vary and MP4 (which counts a track's length in
    decoding order) would end the video early. Call :meth:`write` with bytes-like frames and their
    times, then :meth:`finish`. ``label`` is what error messages call the file (default: ``path``).
    """

    def __init__(self, tools: FFmpegTools, path: str | os.PathLike, width: int, height: int,
                 time_base: Fraction = Fraction(1, TIME_UNITS), codec: str = "libx264", crf: int = 18,
                 preset: str | None = "veryfast", sample_aspect_ratio: Fraction = Fraction(1), fmt: str = "mp4",
                 threads: int = 0, b_frames: bool = True, label: str | None = None):
        if width % 2 or height % 2:
            raise ValueError("yuv420p frames need an even width and height; pad them first")
        self.path = str(path)
        self.label = label or self.path  # what messages call the file (the user's output, not a temporary file)
        self.codec = codec
        self.frame_bytes = width * height * 3 // 2
        self.frames_written = 0
        self._last_pts: int | None = None
        cmd = [tools.ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y",
               "-f", "matroska", "-i", "-", "-map", "0:v", *tools.passthrough_args(),
               "-enc_time_base", f"{time_base.numerator}:{time_base.denominator}", "-c:v", codec]
        if codec.endswith("_nvenc"):
            cmd += ["-rc", "vbr", "-cq", str(crf), "-b:v", "0"]
            if preset:
                cmd += ["-preset", _NVENC_PRESETS.get(preset, preset)]
        else:
            cmd += ["-crf", str(crf)]
            if preset:
                cmd += ["-preset", preset]
            if threads:
                cmd += ["-threads", str(threads)]
        if not b_frames:
            cmd += ["-bf", "0"]
        if sample_aspect_ratio != 1:
            cmd += ["-vf", f"setsar={sample_aspect_ratio.numerator}/{sample_aspect_ratio.denominator}"]
        cmd += ["-pix_fmt", "yuv420p", "-color_range", "tv", "-colorspace", "smpte170m",
                "-color_primaries", "smpte170m", "-color_trc", "smpte170m", "-f", fmt, self.path]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._stderr = _StderrCollector(self._proc.stderr)
        self._stderr.start()
        self._send(_matroska_header(width, height))

    def _failure(self, what: str) -> VideoError:
        text = self._stderr.text
        hint = " The disk is full: free some space or choose another output folder." if "No space left" in text \
            else ""
        return VideoError(f"The {self.codec} encoder {what} while writing {self.label}: {tail(text)}.{hint}")

    def _send(self, data) -> None:
        try:
            self._proc.stdin.write(data)
        except (BrokenPipeError, OSError) as exc:
            self._proc.wait()
            self._stderr.join(timeout=5)
            raise self._failure(f"stopped (ffmpeg exit {self._proc.returncode})") from exc

    def write(self, data, times: list[int]) -> None:
        """Write whole frames (a bytes-like object of ``k * frame_bytes`` bytes) shown at ``times``
        (microseconds from the start of this file, increasing, one per frame)."""
        view = memoryview(data).cast("B")
        if view.nbytes % self.frame_bytes:
            raise ValueError(f"{view.nbytes} bytes is not a whole number of {self.frame_bytes}-byte frames")
        count = view.nbytes // self.frame_bytes
        if len(times) != count:
            raise ValueError(f"{count} frames but {len(times)} times")
        for i, pts in enumerate(times):
            if pts < 0 or self._last_pts is not None and pts <= self._last_pts:
                raise ValueError(f"frame times must increase from 0; got {pts} after {self._last_pts}")
            self._send(_matroska_frame_header(pts, self.frame_bytes))
            self._send(view[i * self.frame_bytes:(i + 1) * self.frame_bytes])
            self._last_pts = pts
            self.frames_written += 1

    def finish(self) -> int:
        """Close the pipe and wait for ffmpeg; raise :class:`VideoError` on failure. Returns frames written."""
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        rc = self._proc.wait()
        self._stderr.join(timeout=5)
        if rc != 0:
            raise self._failure(f"failed (ffmpeg exit {rc})")
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
