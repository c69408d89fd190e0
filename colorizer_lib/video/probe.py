"""Probe a video file: size, rotation, pixel aspect, exact frame rate, frame count, audio and subtitles.

``probe(path)`` uses ffprobe's JSON output when ffprobe is available and otherwise parses the stream
summary that ``ffmpeg -i`` prints (the static ffmpeg of ``imageio-ffmpeg`` comes without ffprobe).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..errors import InputError
from .binaries import FFmpegTools, find_tools, run_tool, tail


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about a source video.

    ``width``/``height`` are the *display* size, i.e. after ffmpeg's automatic rotation (a phone
    video stored 1920x1080 with a 90 degree display matrix decodes as 1080x1920). ``fps`` is the
    average frame rate as an exact fraction (``30000/1001``), ``variable_frame_rate`` says whether the
    nominal and average rates differ (each frame's own time is kept either way). ``time_base`` is the
    video stream's time unit (None when unknown). ``frame_count`` is the container's count when it states one
    (None otherwise); ``estimated_frames`` is that or ``duration * fps``.
    """

    path: str
    width: int
    height: int
    fps: Fraction
    duration: float | None
    frame_count: int | None
    pix_fmt: str
    codec: str
    rotation: int = 0
    sample_aspect_ratio: Fraction = Fraction(1)
    variable_frame_rate: bool = False
    audio_codecs: tuple[str, ...] = ()
    subtitle_codecs: tuple[str, ...] = ()
    format_name: str = ""
    probed_with: str = "ffprobe"
    time_base: Fraction | None = None
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_codecs)

    @property
    def estimated_frames(self) -> int | None:
        if self.frame_count is not None:
            return self.frame_count
        if self.duration is None:
            return None
        return max(0, round(self.duration * self.fps))


def _fraction(text: str | None) -> Fraction | None:
    """Parse '30000/1001', '25', '1:1' into a Fraction; None for missing or zero denominators."""
    if not text:
        return None
    num, _, den = text.replace(":", "/").partition("/")
    try:
        value = Fraction(int(num), int(den or 1))
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _fps_from_decimal(value: float) -> Fraction:
    """Best exact rate for a rounded decimal printed by ``ffmpeg -i`` (29.97 -> 30000/1001)."""
    ntsc = Fraction(round(value * 1.001) * 1000, 1001)
    if value != round(value) and abs(float(ntsc) - value) < 0.006:
        return ntsc
    return Fraction(value).limit_denominator(1001)


def _display_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    return (height, width) if rotation % 180 == 90 else (width, height)


def _check_source(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"Video file {str(p)!r} does not exist. Check the path (or pass a URL).")
    if p.is_dir():
        raise InputError(f"{str(p)!r} is a directory, not a video file.")
    if p.stat().st_size == 0:
        raise InputError(f"Video file {str(p)!r} is empty (0 bytes). Re-download or re-export it.")
    return p


def probe(path: str | os.PathLike, tools: FFmpegTools | None = None) -> VideoInfo:
    """Describe the first video stream of ``path`` (cover-art pictures are not video).

    Raises :class:`InputError` when the file is missing or empty, is not a media file ffmpeg can read,
    or has no video stream (an audio-only file, for example).
    """
    src = _check_source(path)
    tools = tools or find_tools()
    info = _probe_ffprobe(src, tools) if tools.ffprobe else _probe_ffmpeg(src, tools)
    return _check_stream(info)


# The largest picture side accepted (16K). Anything bigger is a damaged header, and one frame of it
# would need gigabytes of memory before anything could go wrong more clearly.
MAX_SIDE = 16384


def _check_stream(info: VideoInfo) -> VideoInfo:
    """Refuse streams no video can have: no picture size, absurd sizes, no frames, no frame rate."""
    name = repr(info.path)
    if info.width <= 0 or info.height <= 0:
        raise InputError(
            f"{name} has a {info.codec} stream of {info.width}x{info.height} pixels: the file is corrupt or "
            "not a video (ffmpeg found no picture size). Re-download or re-export it."
        )
    if info.width > MAX_SIDE or info.height > MAX_SIDE:
        raise InputError(
            f"{name} claims {info.width}x{info.height} pixel frames, more than the {MAX_SIDE} pixels per side "
            "this tool accepts; the header is probably damaged. Re-export the video at a normal size."
        )
    if info.frame_count == 0 or info.duration is not None and info.duration <= 0 and not info.frame_count:
        raise InputError(f"{name} contains no video frames (its video stream is empty). Give a video with pictures.")
    if not info.fps or info.fps <= 0:
        raise InputError(f"{name} states no frame rate; it looks like a still image, not a video.")
    return info


def _no_video_error(src: Path, audio: int) -> InputError:
    what = f"only {audio} audio stream(s)" if audio else "no video stream"
    return InputError(f"{str(src)!r} has {what}; it is not a video. Give a file with a video track.")


def _probe_ffprobe(src: Path, tools: FFmpegTools) -> VideoInfo:
    cmd = [tools.ffprobe, "-v", "error", "-print_format", "json", "-show_streams", "-show_format", str(src)]
    proc = run_tool(cmd, "ffprobe", check=False)
    if proc.returncode != 0:
        raise InputError(f"{str(src)!r} is not a video ffmpeg can read: {tail(proc.stderr)}")
    data = json.loads(proc.stdout or "{}")
    streams = data.get("streams", [])
    fmt = data.get("format", {})
    audio = tuple(s.get("codec_name", "?") for s in streams if s.get("codec_type") == "audio")
    subs = tuple(s.get("codec_name", "?") for s in streams if s.get("codec_type") == "subtitle")
    videos = [
        s for s in streams
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
    ]
    if not videos:
        raise _no_video_error(src, len(audio))
    v = videos[0]
    rotation = 0
    for side in v.get("side_data_list", []):
        if "rotation" in side:
            rotation = int(round(float(side["rotation"])))
    if not rotation and "rotate" in v.get("tags", {}):
        rotation = int(v["tags"]["rotate"])
    rotation %= 360
    avg = _fraction(v.get("avg_frame_rate"))
    nominal = _fraction(v.get("r_frame_rate"))
    fps = avg or nominal
    if fps is None:
        raise InputError(f"{str(src)!r} states no frame rate; it looks like a still image, not a video.")
    duration = v.get("duration") or fmt.get("duration")
    nb_frames = v.get("nb_frames")
    width, height = _display_size(int(v["width"]), int(v["height"]), rotation)
    return VideoInfo(
        path=str(src), width=width, height=height, fps=fps,
        duration=float(duration) if duration not in (None, "N/A") else None,
        frame_count=int(nb_frames) if nb_frames and nb_frames.isdigit() else None,
        pix_fmt=v.get("pix_fmt", "?"), codec=v.get("codec_name", "?"), rotation=rotation,
        sample_aspect_ratio=_fraction(v.get("sample_aspect_ratio")) or Fraction(1),
        variable_frame_rate=bool(avg and nominal and avg != nominal),
        audio_codecs=audio, subtitle_codecs=subs, format_name=fmt.get("format_name", ""),
        probed_with="ffprobe", time_base=_fraction(v.get("time_base")),
    )


_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM = re.compile(r"Stream #0:\d+[^:]*: (Video|Audio|Subtitle): (\w+)(.*)")
_SIZE = re.compile(r", (\d+)x(\d+)(?: \[SAR (\d+):(\d+))?")
_PIXFMT = re.compile(r"Video: [^,]+, (\w+)")
_FPS = re.compile(r", (\d+(?:\.\d+)?)(k?) (fps|tbr)")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees|rotate\s*:\s*(-?\d+)")
_INPUT = re.compile(r"Input #0, ([\w,]+), from")
_TBN = re.compile(r", (\d+(?:\.\d+)?)(k?) tbn")


def _probe_ffmpeg(src: Path, tools: FFmpegTools) -> VideoInfo:
    """Fallback without ffprobe: parse the human-readable summary of ``ffmpeg -i``."""
    proc = run_tool([tools.ffmpeg, "-hide_banner", "-nostdin", "-i", str(src)], "ffmpeg -i", check=False)
    text = proc.stderr
    fmt = _INPUT.search(text)
    if fmt is None:
        raise InputError(f"{str(src)!r} is not a video ffmpeg can read: {tail(text)}")
    streams = [m for m in (_STREAM.search(line) for line in text.splitlines()) if m]
    audio = tuple(m.group(2) for m in streams if m.group(1) == "Audio")
    subs = tuple(m.group(2) for m in streams if m.group(1) == "Subtitle")
    videos = [m for m in streams if m.group(1) == "Video" and "attached pic" not in m.group(3)]
    if not videos:
        raise _no_video_error(src, len(audio))
    line = videos[0].group(0)
    size = _SIZE.search(line)
    if size is None:
        raise InputError(f"Could not read the frame size of {str(src)!r} from ffmpeg's summary: {line}")
    rates = {unit: float(num) * (1000 if k else 1) for num, k, unit in _FPS.findall(line)}
    rate = rates.get("fps") or rates.get("tbr")
    if not rate:
        raise InputError(f"{str(src)!r} states no frame rate; it looks like a still image, not a video.")
    # Rotation is printed in the block after the video stream line, before the next stream.
    block = text.split(line, 1)[1].split("Stream #", 1)[0]
    rot = _ROTATION.search(block)
    rotation = int(round(float(rot.group(1) or rot.group(2)))) % 360 if rot else 0
    dur = _DURATION.search(text)
    duration = int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else None
    sar = Fraction(int(size.group(3)), int(size.group(4))) if size.group(3) and int(size.group(4)) else Fraction(1)
    width, height = _display_size(int(size.group(1)), int(size.group(2)), rotation)
    fps = _fps_from_decimal(rate)
    pix = _PIXFMT.search(line)
    tbn = _TBN.search(line)
    tbn_den = round(float(tbn.group(1)) * (1000 if tbn.group(2) else 1)) if tbn else 0
    return VideoInfo(
        path=str(src), width=width, height=height, fps=fps, duration=duration, frame_count=None,
        pix_fmt=pix.group(1) if pix else "?", codec=videos[0].group(2), rotation=rotation,
        sample_aspect_ratio=sar or Fraction(1),
        variable_frame_rate="tbr" in rates and "fps" in rates and not math.isclose(rates["fps"], rates["tbr"]),
        audio_codecs=audio, subtitle_codecs=subs, format_name=fmt.group(1), probed_with="ffmpeg",
        time_base=Fraction(1, tbn_den) if tbn_den > 0 else None,
    )
