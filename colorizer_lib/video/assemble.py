"""The last step of a video job: the finished segments joined (no re-encoding) with the source's
audio, subtitles and metadata into one file."""

from __future__ import annotations

from pathlib import Path

from ..errors import VideoError
from .binaries import FFmpegTools, run_tool, tail
from .pipes import TIME_UNITS
from .probe import VideoInfo

_TEXT_SUBS_FOR = {"mp4": "mov_text", "mov": "mov_text", "matroska": "srt"}


def assemble(tools: FFmpegTools, wdir: Path, manifest: dict, src: Path, info: VideoInfo, tmp_out: Path,
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
