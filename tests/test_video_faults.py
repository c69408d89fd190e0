"""Hostile inputs and settings for the video pipeline and `colorize video` (issues 14 and 19).

Every hostile file is made here, by code: seeded junk bytes, hand-written YUV4MPEG headers and
variable frame rate clips made with ffmpeg. Each case must end in a clear message and the README's
exit code, or (variable frame rates) in a correct video.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from colorizer_lib.errors import ColorizerOutOfMemoryError, InputError, VideoError, WeightsError
from colorizer_lib.video import colorize_video, probe
from colorizer_lib.video.pipes import FrameWriter
from colorizer_lib.cli import video_main

from .test_video_support import one_torch_thread  # noqa: F401 (autouse fixture)
from .test_video_support import FFPROBE, make_clip, needs_ffmpeg, tiny_colorizer

pytestmark = needs_ffmpeg


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("faults") / "film.mp4", size="96x72", seconds=1.0)


@pytest.fixture()
def no_download(monkeypatch):
    """Fail the test if a URL input is downloaded (settings must be refused before that)."""
    import colorizer_lib.video

    def refuse(*args, **kwargs):
        raise AssertionError("downloaded before checking the settings")

    monkeypatch.setattr(colorizer_lib.video, "download_video", refuse)


def _packets(path: Path, stream: str) -> list[tuple[float, float]]:
    """(time, duration) in seconds of the packets of the first ``stream`` ("v" or "a") of ``path``,
    sorted by time (a missing duration counts as 0)."""
    out = subprocess.run([FFPROBE, "-v", "error", "-select_streams", f"{stream}:0", "-show_entries",
                          "packet=pts_time,duration_time", "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, text=True).stdout
    rows = [line.split(",") for line in out.split() if line.strip()]
    return sorted((float(r[0]), float(r[1]) if len(r) > 1 and r[1] not in ("", "N/A") else 0.0) for r in rows)


def _stream_durations(path: Path) -> dict[str, float]:
    """Seconds from the start of the file to the end of its video / audio track, where the container
    states them (MP4 does, Matroska does not), and of the whole file ("format")."""
    out = subprocess.run([FFPROBE, "-v", "error", "-show_entries", "stream=codec_type,start_time,duration",
                          "-show_entries", "format=duration", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    data = json.loads(out)
    return {s["codec_type"]: float(s["start_time"]) + float(s["duration"]) for s in data["streams"]
            if s.get("duration") not in (None, "N/A")} | {"format": float(data["format"]["duration"])}


# ------------------------------------------------------------------------------------------ impossible streams

def _junk_jpeg(path: Path) -> Path:
    """19 seeded random bytes named .jpg: ffprobe reports a 0x0 mjpeg stream."""
    path.write_bytes(random.Random(19).randbytes(19))
    return path


def _y4m_header(path: Path, header: str, payload: bytes = b"") -> Path:
    """A YUV4MPEG2 file with a hand-written header (and ``payload`` after it)."""
    path.write_bytes(f"YUV4MPEG2 {header}\n".encode() + payload)
    return path


@pytest.mark.parametrize("make, words", [
    (lambda d: _junk_jpeg(d / "junk.jpg"), "0x0 pixels"),
    (lambda d: _y4m_header(d / "huge.y4m", "W20000 H10000 F25:1 Ip A1:1 C420jpeg", b"FRAME\nxxxx"), "20000x10000"),
    (lambda d: _y4m_header(d / "empty.y4m", "W64 H48 F25:1 Ip A1:1 C420jpeg"), "no video frames"),
], ids=["zero-size", "absurd-size", "no-frames"])
def test_impossible_streams_are_refused_at_probe_time(make, words, tmp_path):
    src = make(tmp_path)
    with pytest.raises(InputError, match=words) as info:
        probe(src)
    assert str(src) in str(info.value)
    with pytest.raises(InputError, match=words):
        colorize_video(src, tiny_colorizer(), tmp_path / "out.mp4", render_factor=2, progress=False)
    assert not (tmp_path / "out.mp4").exists()


def test_the_cli_names_a_corrupt_file_and_exits_2(tmp_path, weights, capsys):
    junk = _junk_jpeg(tmp_path / "junk.jpg")
    assert video_main([str(junk), "-o", str(tmp_path / "o.mp4"), "--model", weights, "--device", "cpu",
                           "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "junk.jpg" in err and "0x0" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------ variable frame rate

@pytest.fixture(scope="module")
def vfr_clips(tmp_path_factory):
    """4 s at 30 fps of which every frame of the first 0.67 s and then every third frame is kept, with
    their own times (``-fps_mode vfr``): 53 frames, in Matroska and in MP4, with a 4 s audio track."""
    d = tmp_path_factory.mktemp("vfr")
    clips = {}
    for ext in ("mkv", "mp4"):
        clips[ext] = make_clip(d / f"vfr.{ext}", size="64x48", rate="30", seconds=4.0,
                               vf=r"select='lt(n\,20)+not(mod(n\,3))'",
                               out_args=("-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast",
                                         "-pix_fmt", "yuv420p"))
    return clips


@pytest.mark.parametrize("container", ["mkv", "mp4"])
@pytest.mark.parametrize("out_ext", ["mp4", "mkv"])
def test_variable_frame_rate_keeps_every_frame_at_its_time(vfr_clips, container, out_ext, tmp_path):
    src = vfr_clips[container]
    result = colorize_video(src, tiny_colorizer(), tmp_path / f"out.{out_ext}", render_factor=2, progress=False,
                            segment_seconds=0.5)
    assert result.frames_out == 53 and result.segments > 1
    # Sync: each frame's time measured from the first audio packet (containers shift both differently:
    # MP4 starts the audio's encoder priming before 0, Matroska moves everything after it).
    timing = {}
    for name, path in (("source", src), ("output", result.path)):
        audio, video = _packets(path, "a"), _packets(path, "v")
        origin = audio[0][0]
        timing[name] = {"frames": [t - origin for t, _ in video], "audio_end": audio[-1][0] + audio[-1][1] - origin}
    source, output = timing["source"], timing["output"]
    assert len(source["frames"]) == 53 and source["frames"][-1] - source["frames"][0] > 3.85  # 1/30 s gaps, then 0.1 s
    # The source's times, to ffprobe's printed microseconds; Matroska stores whole milliseconds, so a
    # frame time and the audio origin may each be rounded by up to 0.5 ms when converting to or from it.
    assert output["frames"] == pytest.approx(source["frames"], abs=0.001 if "mkv" in (out_ext, container) else 1e-6)
    assert output["audio_end"] == pytest.approx(source["audio_end"], abs=0.03)  # one AAC frame
    longest_gap = 0.1
    got, want = _stream_durations(result.path), _stream_durations(src)
    if "video" in got and "video" in want:  # MP4 states the video track's length; Matroska does not
        assert abs(got["video"] - want["video"]) < longest_gap
    assert abs(got["format"] - want["format"]) < longest_gap
    assert abs(result.duration - (source["frames"][-1] - source["frames"][0] + 1 / 30)) < longest_gap
    assert probe(result.path).audio_codecs == ("aac",)


def test_an_interrupted_variable_frame_rate_run_resumes_with_the_same_times(vfr_clips, tmp_path):
    from .test_video_support import CountingColorizer

    src, out = vfr_clips["mkv"], tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        colorize_video(src, CountingColorizer(tiny_colorizer(), stop_after=5), out, render_factor=2, batch_size=4,
                       segment_seconds=0.5, progress=False)
    manifest = json.loads((tmp_path / ".out.mp4.parts" / "manifest.json").read_text())
    assert sum(seg["frames"] for seg in manifest["segments"]) == 20  # 5 batches of 4: segments of 15 + 5
    again = CountingColorizer(tiny_colorizer())
    result = colorize_video(src, again, out, render_factor=2, batch_size=4, segment_seconds=0.5, progress=False)
    assert result.resumed_frames == 20 and again.frames == 33 and result.frames_out == 53
    origin_out, origin_src = _packets(out, "a")[0][0], _packets(src, "a")[0][0]
    assert [t - origin_out for t, _ in _packets(out, "v")] == pytest.approx(
        [t - origin_src for t, _ in _packets(src, "v")], abs=1e-6)


# ------------------------------------------------------------------------------------------ settings

@pytest.mark.parametrize("bad, words", [
    (("--batch-size", "0"), "--batch-size: must be 1 or more"),
    (("--segment-seconds", "0"), "--segment-seconds: the segment length must be a positive"),
    (("--segment-seconds", "-5"), "--segment-seconds: the segment length must be a positive"),
    (("--segment-seconds", "inf"), "--segment-seconds: the segment length must be a positive"),
    (("--crf", "99"), "crf must be a whole number from 0 (lossless) to 51"),
    (("--crf", "-1"), "crf must be a whole number"),
    (("--render-factor", "35.5"), "render factor must be a whole number"),
    (("--codec", "bogus"), "no encoder named 'bogus'"),
    (("--ffmpeg", "{false}"), "'{false}' is not a working ffmpeg: `{false} -version` exited with status 1"),
])
def test_bad_settings_exit_2_before_any_download(bad, words, no_download, tmp_path, capsys):
    false = tmp_path / "false"  # a program that is not ffmpeg, as /bin/false
    false.write_text("#!/bin/sh\nexit 1\n")
    false.chmod(0o755)
    bad, words = [arg.format(false=false) for arg in bad], words.format(false=false)
    assert video_main(["https://example.invalid/film.mp4", *bad]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert "disk space" not in err and "no decodable video frames" not in err


def test_render_factor_takes_the_forms_images_take(clip, tmp_path):
    from colorizer_lib.cli import build_parser

    args = build_parser("video").parse_args(["video", "in.mp4", "--render-factor", "35.0"])
    assert args.render_factor == 35 and isinstance(args.render_factor, int)
    result = colorize_video(clip, tiny_colorizer(), tmp_path / "o.mp4", render_factor=2.0, progress=False)
    assert result.render_factor == 2 and result.frames_out == 25


def test_library_refuses_bad_numbers_before_any_work(clip, tmp_path):
    col = tiny_colorizer()
    for kwargs, words in [({"batch_size": 0}, "batch_size"), ({"segment_seconds": 0}, "segment length"),
                          ({"segment_seconds": -5}, "segment length")]:
        with pytest.raises(InputError, match=words):
            colorize_video(clip, col, tmp_path / "o.mp4", render_factor=2, progress=False, **kwargs)
    from colorizer_lib.video import EncodeSettings

    with pytest.raises(InputError, match="crf"):
        colorize_video(clip, col, tmp_path / "o.mp4", render_factor=2, progress=False,
                       encode=EncodeSettings(crf=99))
    with pytest.raises(InputError, match="no encoder named 'bogus'"):
        colorize_video(clip, col, tmp_path / "o.mp4", render_factor=2, progress=False,
                       encode=EncodeSettings(codec="bogus"))
    assert list(tmp_path.iterdir()) == []


def test_an_encoder_failure_quotes_ffmpeg_and_names_the_codec(clip, tmp_path):
    from colorizer_lib.video import EncodeSettings

    with pytest.raises(VideoError) as info:
        colorize_video(clip, tiny_colorizer(), tmp_path / "o.mp4", render_factor=2, progress=False,
                       encode=EncodeSettings(preset="no-such-preset"))
    message = str(info.value)
    assert "libx264" in message and "no-such-preset" in message and "disk" not in message
    # the file the user asked for, not the temporary segment in the hidden parts folder
    assert f"while writing {tmp_path / 'o.mp4'} (segment 1)" in message
    assert ".parts" not in message and ".tmp" not in message
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_frame_writer_refuses_times_that_do_not_increase(tmp_path):
    from colorizer_lib.video import find_tools

    writer = FrameWriter(find_tools(), tmp_path / "o.mp4", 16, 16)
    try:
        with pytest.raises(ValueError, match="increase"):
            writer.write(bytes(2 * 16 * 16 * 3 // 2), [0, 0])
    finally:
        writer.abort()


# ------------------------------------------------------------------------------------------ model and exit codes

def test_no_model_offline_falls_back_to_the_embedded_model_like_images(clip, tmp_path, monkeypatch, capsys):
    import socket

    def no_dns(*args, **kwargs):  # what an offline machine's resolver does, without asking one
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    out = tmp_path / "o.mp4"
    assert video_main([str(clip), "-o", str(out), "--device", "cpu", "--render-factor", "2",
                           "--no-progress"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "embedded" in line]
    assert len(lines) == 1 and "'compact'" in lines[0] and "--download video" in lines[0]
    assert probe(out).frame_count == 25


@pytest.mark.parametrize("error, code", [
    (lambda: InputError("bad input"), 2),
    (lambda: VideoError("encoding failed"), 1),
    (lambda: WeightsError("weights failed"), 3),
    (lambda: ColorizerOutOfMemoryError("out of memory"), 4),
    (lambda: KeyboardInterrupt(), 130),
])
def test_exit_codes_follow_the_readme_table(error, code, clip, tmp_path, monkeypatch, capsys):
    import colorizer_lib.video
    import colorizer_lib.video_cli as video_cli

    monkeypatch.setattr(video_cli, "_load_colorizer", lambda args: tiny_colorizer())

    def fail(*args, **kwargs):
        raise error()

    monkeypatch.setattr(colorizer_lib.video, "colorize_video", fail)
    assert video_main([str(clip), "-o", str(tmp_path / "o.mp4"), "--no-progress"]) == code
    assert "Traceback" not in capsys.readouterr().err


def test_a_missing_weights_file_is_bad_usage(clip, tmp_path, capsys):
    """A --model path that does not exist is a mistake in the command (exit 2, as for `colorize image`),
    not a weights download or verification failure (3)."""
    assert video_main([str(clip), "-o", str(tmp_path / "o.mp4"), "--model", str(tmp_path / "no.pth"),
                       "--no-progress"]) == 2
    assert "no.pth does not exist" in capsys.readouterr().err


class _OutOfMemoryIn:
    """A Colorizer whose ``compose`` (outside the model, which the Colorizer guards itself) runs out of memory."""

    def __init__(self, inner, error):
        self.inner, self.error = inner, error
        self.device, self.default_render_factor, self.name = inner.device, inner.default_render_factor, inner.name

    def predict_chroma(self, luma, render_factor=None):
        return self.inner.predict_chroma(luma, render_factor)

    def compose(self, luma, chroma):
        raise self.error


@pytest.mark.parametrize("error", [
    lambda: __import__("torch").OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    lambda: RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 123 bytes."),
])
def test_out_of_memory_anywhere_in_a_batch_gives_the_photos_advice_and_exit_4(error, clip, tmp_path, monkeypatch,
                                                                           capsys):
    """One translation of out-of-memory errors for photos and frames (colorizer.out_of_memory_guard): the
    render factor and batch size in use are named, on a CPU allocator failure as on a GPU one."""
    import torch

    from colorizer_lib.video import colorize_frames

    col = _OutOfMemoryIn(tiny_colorizer(), error())
    with pytest.raises(ColorizerOutOfMemoryError,
                       match=r"lower the render factor \(now 2\) or the batch size \(now 3\)"):
        colorize_frames(col, torch.zeros(3, 8, 10, dtype=torch.uint8), 2)
    with pytest.raises(ColorizerOutOfMemoryError, match=r"render factor \(now 4\)"):  # the colorizer's default
        colorize_frames(col, torch.zeros(1, 8, 10, dtype=torch.uint8), None)
    import colorizer_lib.video_cli as video_cli

    monkeypatch.setattr(video_cli, "_load_colorizer", lambda args: _OutOfMemoryIn(tiny_colorizer(), error()))
    out = tmp_path / "o.mp4"
    assert video_main([str(clip), "-o", str(out), "-r", "2", "--batch-size", "5", "-q"]) == 4
    err = capsys.readouterr().err
    assert "out of memory while colorizing: lower the render factor (now 2) or the batch size (now 5)" in err
    assert "Traceback" not in err and not out.exists()
