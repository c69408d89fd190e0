"""Locate and run the ffmpeg / ffprobe programs.

Resolution order for ffmpeg: explicit argument > ``COLORIZER_FFMPEG`` > ``ffmpeg`` on PATH > the static
binary shipped by the optional PyPI package ``imageio-ffmpeg``. ffprobe is optional (``COLORIZER_FFPROBE``
or PATH): without it, :mod:`colorizer_lib.video.probe` parses ``ffmpeg -i`` instead.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import DependencyError, InputError, VideoError

FFMPEG_ENV = "COLORIZER_FFMPEG"
FFPROBE_ENV = "COLORIZER_FFPROBE"


@dataclass(frozen=True)
class FFmpegTools:
    """Paths of the programs used by the video pipeline; ``ffprobe`` may be None."""

    ffmpeg: str
    ffprobe: str | None = None

    @property
    def version(self) -> tuple[int, int]:
        """(major, minor) of ffmpeg; git builds without a release number count as new (99, 0)."""
        return _ffmpeg_version(self.ffmpeg)

    def passthrough_args(self) -> list[str]:
        """Options that keep one output frame per decoded frame (``-fps_mode`` needs ffmpeg 5.1+)."""
        return ["-fps_mode", "passthrough"] if self.version >= (5, 1) else ["-vsync", "passthrough"]


def parse_ffmpeg_version(banner: str) -> tuple[int, int]:
    """'ffmpeg version 4.4.2-0ubuntu0.22.04.1 ...' -> (4, 4); 'n6.1.1' -> (6, 1); git 'N-1234-g...' -> (99, 0)."""
    match = re.match(r"\S+ version n?(\d+)\.(\d+)", banner)
    return (int(match.group(1)), int(match.group(2))) if match else (99, 0)


@functools.lru_cache(maxsize=8)
def _ffmpeg_version(ffmpeg: str) -> tuple[int, int]:
    proc = subprocess.run([ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True, errors="replace")
    return parse_ffmpeg_version(proc.stdout)


@functools.lru_cache(maxsize=8)
def _check_working(path: str, what: str) -> str:
    """``path`` if ``path -version`` answers like ``what`` (ffmpeg or ffprobe) does, else DependencyError."""
    try:
        proc = subprocess.run([path, "-version"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=30)
        output, rc = proc.stdout + proc.stderr, proc.returncode
    except (OSError, subprocess.TimeoutExpired) as exc:
        output, rc = str(exc), None
    if rc == 0 and re.match(rf"\s*{what} version ", output):
        return path
    said = f"exited with status {rc}" if rc is not None else "could not be run"
    printed = f"printed {tail(output, 3)!r}" if output.strip() else "printed nothing"
    raise DependencyError(
        f"{path!r} is not a working {what}: `{path} -version` {said} and {printed}. "
        f"Point {'--ffmpeg or $' + FFMPEG_ENV if what == 'ffmpeg' else '$' + FFPROBE_ENV} at a real {what} binary "
        "(apt install ffmpeg, or pip install imageio-ffmpeg)."
    )


@functools.lru_cache(maxsize=32)
def check_encoder(ffmpeg: str, codec: str) -> str:
    """Return ``codec`` if this ffmpeg has an encoder of that name, else raise :class:`InputError` naming it."""
    proc = subprocess.run([ffmpeg, "-hide_banner", "-h", f"encoder={codec}"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, errors="replace", timeout=30)
    if proc.returncode == 0 and proc.stdout.lstrip().startswith("Encoder "):
        return codec
    raise InputError(
        f"ffmpeg ({ffmpeg}) has no encoder named {codec!r}. Choose one it lists with `ffmpeg -encoders`, "
        "e.g. libx264 (the default), libx265 or h264_nvenc."
    )


def _check_executable(path: str, what: str) -> str:
    resolved = shutil.which(path)
    if resolved is None:
        raise DependencyError(
            f"{what} binary {path!r} was not found or is not executable. Install ffmpeg "
            f"(apt install ffmpeg, or pip install imageio-ffmpeg) or point {what.upper()} at it "
            f"with ${FFMPEG_ENV if what == 'ffmpeg' else FFPROBE_ENV}."
        )
    return resolved


def find_tools(ffmpeg: str | os.PathLike | None = None, ffprobe: str | os.PathLike | None = None) -> FFmpegTools:
    """Return the ffmpeg (required) and ffprobe (optional) binaries to use.

    Raises :class:`DependencyError` when no ffmpeg can be found, naming the ways to provide one, or when
    the program found does not answer ``-version`` as ffmpeg does (``--ffmpeg /bin/false``). An ffprobe
    path given explicitly (argument or environment) must exist and work too.
    """
    if ffmpeg is not None:
        ffmpeg_path = _check_executable(str(ffmpeg), "ffmpeg")
    elif os.environ.get(FFMPEG_ENV):
        ffmpeg_path = _check_executable(os.environ[FFMPEG_ENV], "ffmpeg")
    else:
        ffmpeg_path = shutil.which("ffmpeg")
        if ffmpeg_path is None:
            try:
                import imageio_ffmpeg  # optional: a static ffmpeg from PyPI

                ffmpeg_path = imageio_ffmpeg.get_ffmpeg_exe()
            except (ImportError, RuntimeError):
                raise DependencyError(
                    "ffmpeg was not found. Install it (apt install ffmpeg, conda install ffmpeg, or "
                    f"pip install imageio-ffmpeg) or set ${FFMPEG_ENV} to the path of an ffmpeg binary."
                ) from None
    _check_working(ffmpeg_path, "ffmpeg")
    if ffprobe is not None:
        ffprobe_path: str | None = _check_working(_check_executable(str(ffprobe), "ffprobe"), "ffprobe")
    elif os.environ.get(FFPROBE_ENV):
        ffprobe_path = _check_working(_check_executable(os.environ[FFPROBE_ENV], "ffprobe"), "ffprobe")
    else:
        ffprobe_path = shutil.which("ffprobe")
        if ffprobe_path is None:
            sibling = Path(ffmpeg_path).with_name("ffprobe")
            ffprobe_path = str(sibling) if sibling.is_file() and os.access(sibling, os.X_OK) else None
    return FFmpegTools(ffmpeg=ffmpeg_path, ffprobe=ffprobe_path)


def run_tool(cmd: list[str], what: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` (an argument list, never a shell string) and capture its output as text.

    With ``check`` a non-zero exit raises :class:`VideoError` naming ``what`` failed and the last lines
    of ffmpeg's stderr.
    """
    try:
        proc = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace", timeout=timeout
        )
    except FileNotFoundError as exc:
        raise DependencyError(f"Cannot run {cmd[0]!r}: {exc}. Install ffmpeg or set ${FFMPEG_ENV}.") from exc
    if check and proc.returncode != 0:
        raise VideoError(f"{what} failed (exit {proc.returncode}): {tail(proc.stderr)}")
    return proc


def tail(text: str, lines: int = 6) -> str:
    """The last non-empty ``lines`` lines of ``text`` joined by ' | ' (for error messages)."""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) if kept else "(no message)"


def video_packet_times(tools: FFmpegTools, path: str | os.PathLike, stream: int = 0) -> list[int | None]:
    """Presentation times of the packets (= coded frames) of video stream ``stream`` of ``path``, in
    file order and the stream's time unit, read without decoding (None where a packet has none).

    Uses the ``framecrc`` muxer (one line per packet), which reports the same in ffmpeg 4 to 7.
    """
    cmd = [tools.ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-map", f"0:v:{stream}", "-c", "copy",
           "-f", "framecrc", "-"]
    proc = run_tool(cmd, f"Counting the frames of {path}")
    times: list[int | None] = []
    for line in proc.stdout.splitlines():
        if line and not line.startswith("#"):
            fields = [f.strip() for f in line.split(",")]
            times.append(int(fields[2]) if len(fields) > 2 and fields[2].lstrip("-").isdigit() else None)
    return times


def count_video_packets(tools: FFmpegTools, path: str | os.PathLike, stream: int = 0) -> int:
    """Number of packets (= coded frames) of video stream ``stream`` of ``path``, read without decoding."""
    return len(video_packet_times(tools, path, stream))


def steady_frame_rate(times: list[int | None]) -> bool:
    """Whether packet times (any order) are evenly spaced, allowing the rounding of a coarse time unit
    (33/34 ms for 30 fps in Matroska); False for variable frame rates and for gaps."""
    known = sorted(t for t in times if t is not None)
    gaps = [b - a for a, b in zip(known, known[1:])]
    if len(gaps) < 2:
        return True
    return min(gaps) > 0 and max(gaps) - min(gaps) <= max(1, min(gaps) // 16)
