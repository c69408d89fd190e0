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

from ..errors import DependencyError, VideoError

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

    Raises :class:`DependencyError` when no ffmpeg can be found, naming the ways to provide one.
    An ffprobe path given explicitly (argument or environment) must exist.
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
    if ffprobe is not None:
        ffprobe_path: str | None = _check_executable(str(ffprobe), "ffprobe")
    elif os.environ.get(FFPROBE_ENV):
        ffprobe_path = _check_executable(os.environ[FFPROBE_ENV], "ffprobe")
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


def count_video_packets(tools: FFmpegTools, path: str | os.PathLike, stream: int = 0) -> int:
    """Number of packets (= coded frames) of video stream ``stream`` of ``path``, read without decoding.

    Uses the ``framecrc`` muxer (one line per packet), which reports the same in ffmpeg 5 to 7.
    """
    cmd = [tools.ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-map", f"0:v:{stream}", "-c", "copy",
           "-f", "framecrc", "-"]
    proc = run_tool(cmd, f"Counting the frames of {path}")
    return sum(1 for line in proc.stdout.splitlines() if line and not line.startswith("#"))
