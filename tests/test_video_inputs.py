"""Probing and awkward or bad inputs: rotation, odd sizes, 10-bit, grey, VFR, corrupt, audio-only, no ffmpeg..."""

from __future__ import annotations

import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from colorizer_lib.errors import DependencyError, InputError, VideoError
from colorizer_lib.video import FFmpegTools, colorize_video, find_tools, probe

from .test_video_support import one_torch_thread  # noqa: F401 (autouse fixture)
from .test_video_support import (FFMPEG, decode_rgb, ffmpeg, make_clip, needs_ffmpeg,
                                 stream_info, tiny_colorizer)

pytestmark = needs_ffmpeg


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    base = make_clip(d / "base.mp4", size="96x72", seconds=0.8)
    rot = d / "rot.mp4"
    ffmpeg("-i", str(base), "-c", "copy", "-metadata:s:v", "rotate=90", str(rot))
    return {
        "base": base,
        "rot": rot,
        "ntsc": make_clip(d / "ntsc.mp4", size="64x48", rate="30000/1001", seconds=0.5, audio=False),
        "vfr": make_clip(d / "vfr.mp4", size="64x48", rate="30", seconds=2, audio=False,
                         vf=r"select='lt(n\,20)+not(mod(n\,3))'",
                         out_args=("-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
                                   "yuv420p")),
        "odd": make_clip(d / "odd.mp4", size="317x241", seconds=0.2, audio=False,
                         out_args=("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p")),
        "ten": make_clip(d / "ten.mp4", size="64x48", seconds=0.4, audio=False,
                         out_args=("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le")),
        "gray": make_clip(d / "gray.mkv", size="64x48", seconds=0.4, audio=False,
                          out_args=("-c:v", "ffv1", "-pix_fmt", "gray")),
        "sar": make_clip(d / "sar.mp4", size="64x48", seconds=0.4, audio=False, vf="setsar=4/3"),
    }


@pytest.fixture(scope="module")
def colorizer():
    return tiny_colorizer()


def run(src, colorizer, out, **kw):
    return colorize_video(src, colorizer, out, render_factor=2, progress=False, **kw)


# ------------------------------------------------------------------------------------------ probing

def test_probe_reads_size_rate_count_audio(clips):
    info = probe(clips["base"])
    assert (info.width, info.height, info.fps, info.frame_count) == (96, 72, Fraction(25), 20)
    assert info.audio_codecs == ("aac",) and info.rotation == 0 and not info.variable_frame_rate
    assert probe(clips["ntsc"]).fps == Fraction(30000, 1001)


@pytest.mark.parametrize("name", ["base", "rot", "ntsc", "sar"])
def test_probe_without_ffprobe_agrees_with_ffprobe(clips, name):
    with_probe = probe(clips[name])
    fallback = probe(clips[name], FFmpegTools(ffmpeg=FFMPEG, ffprobe=None))
    assert fallback.probed_with == "ffmpeg"
    for field in ("width", "height", "fps", "rotation", "sample_aspect_ratio", "audio_codecs", "pix_fmt", "codec"):
        assert getattr(fallback, field) == getattr(with_probe, field), field
    assert fallback.duration == pytest.approx(with_probe.duration, abs=0.05)


def test_rotated_phone_video_is_colorized_upright(clips, colorizer, tmp_path):
    info = probe(clips["rot"])
    assert info.rotation in (90, 270) and (info.width, info.height) == (72, 96)
    result = run(clips["rot"], colorizer, tmp_path / "rot.mp4")
    assert result.size == (72, 96) and result.frames_out == 20
    out = probe(result.path)
    assert (out.width, out.height, out.rotation) == (72, 96, 0)


def test_variable_frame_rate_keeps_every_frame(clips, colorizer, tmp_path):
    info = probe(clips["vfr"])
    assert info.variable_frame_rate
    packets = int(stream_info(clips["vfr"])[0]["nb_read_packets"])
    result = run(clips["vfr"], colorizer, tmp_path / "vfr.mp4")
    assert result.frames_in == result.frames_out == packets
    assert abs(probe(result.path).duration - info.duration) < 2 / float(info.fps)


def test_odd_size_is_padded_to_even_and_said_so(clips, colorizer, tmp_path):
    result = run(clips["odd"], colorizer, tmp_path / "odd.mp4")
    assert result.size == (318, 242) and result.frames_out == 5
    assert any("317x241" in w for w in result.warnings)
    frames = decode_rgb(result.path, 318, 242).astype(np.int16)
    # The added column and row repeat their neighbours (up to chroma subsampling and coding).
    assert np.abs(frames[:, :, -1] - frames[:, :, -2]).mean() < 6
    assert np.abs(frames[:, -1] - frames[:, -2]).mean() < 6


@pytest.mark.parametrize("name,pix_fmt", [("ten", "yuv420p10le"), ("gray", "gray")])
def test_ten_bit_and_grey_sources(clips, colorizer, tmp_path, name, pix_fmt):
    assert probe(clips[name]).pix_fmt == pix_fmt
    result = run(clips[name], colorizer, tmp_path / f"{name}.mp4")
    assert result.frames_out == 10
    frames = decode_rgb(result.path, 64, 48).astype(np.int16)
    assert (frames.max(axis=3) - frames.min(axis=3)).mean() > 5  # coloured


def test_pixel_aspect_ratio_is_kept(clips, colorizer, tmp_path):
    assert probe(clips["sar"]).sample_aspect_ratio == Fraction(4, 3)
    result = run(clips["sar"], colorizer, tmp_path / "sar.mp4")
    assert probe(result.path).sample_aspect_ratio == Fraction(4, 3)


# ------------------------------------------------------------------------------------------ bad input

def test_corrupt_packets_are_decoded_around_and_counted(clips, colorizer, tmp_path):
    src = make_clip(tmp_path / "c.mp4", size="96x72", seconds=2.0, audio=False)
    data = bytearray(src.read_bytes())
    for off in range(len(data) // 3, len(data) // 3 + 3000, 7):  # scribble over packets in the middle
        data[off] = (data[off] * 31 + 7) % 256
    src.write_bytes(bytes(data))
    result = run(src, colorizer, tmp_path / "c_out.mp4")
    assert 0 < result.frames_out < 50 and result.frames_in == result.frames_out
    assert result.decode_errors > 0
    assert result.frames_affected >= 50 - result.frames_out > 0
    assert any("affected" in w for w in result.warnings)
    assert int(stream_info(result.path)[0]["nb_read_packets"]) == result.frames_out


def test_not_a_video(tmp_path, colorizer):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(InputError, match="not a video"):
        run(text, colorizer, tmp_path / "o.mp4")


def test_missing_and_empty_files(tmp_path, colorizer):
    with pytest.raises(InputError, match="does not exist"):
        run(tmp_path / "nope.mp4", colorizer, tmp_path / "o.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        run(tmp_path / "empty.mp4", colorizer, tmp_path / "o.mp4")


def test_audio_only_file(tmp_path, colorizer):
    wav = tmp_path / "tone.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", "-c:a", "aac", str(wav))
    with pytest.raises(InputError, match="audio stream"):
        run(wav, colorizer, tmp_path / "o.mp4")


def test_zero_length_video(tmp_path, colorizer):
    zero = tmp_path / "zero.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1", "-frames:v", "0", "-c:v", "libx264",
           str(zero))
    with pytest.raises(InputError, match="no video stream"):
        run(zero, colorizer, tmp_path / "o.mp4")


def test_video_whose_frames_all_fail_to_decode(tmp_path, colorizer):
    src = make_clip(tmp_path / "v.mp4", size="64x48", seconds=1.0, audio=False,
                    out_args=("-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart"))
    data = bytearray(src.read_bytes())
    start = data.find(b"mdat") + 4
    data[start:] = bytes(len(data) - start)  # every packet zeroed: the index is intact, no picture decodes
    src.write_bytes(bytes(data))
    assert probe(src).frame_count == 25
    with pytest.raises(InputError, match="no decodable video frames"):
        run(src, colorizer, tmp_path / "o.mp4")
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / ".o.mp4.parts").exists()


def test_missing_ffmpeg_binary(monkeypatch, tmp_path):
    monkeypatch.setenv("COLORIZER_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
    with pytest.raises(DependencyError, match="COLORIZER_FFMPEG"):
        find_tools()
    monkeypatch.delenv("COLORIZER_FFMPEG")
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH; imageio-ffmpeg is not installed here
    try:
        import imageio_ffmpeg
    except ImportError:
        with pytest.raises(DependencyError, match="ffmpeg was not found"):
            find_tools()
    else:
        assert find_tools().ffmpeg  # the PyPI static binary is the fallback


def test_explicit_ffmpeg_path_and_env(monkeypatch, tmp_path):
    link = tmp_path / "my-ffmpeg"
    link.symlink_to(FFMPEG)
    monkeypatch.setenv("COLORIZER_FFMPEG", str(link))
    assert find_tools().ffmpeg == str(link)
    assert find_tools(ffmpeg=FFMPEG).ffmpeg == FFMPEG


def test_bad_settings_are_refused_before_any_work(clips, colorizer, tmp_path):
    from colorizer_lib.errors import RenderFactorError

    out = tmp_path / "o.mp4"
    with pytest.raises(RenderFactorError, match=r"2\.\.100"):
        colorize_video(clips["base"], colorizer, out, render_factor=1, progress=False)
    with pytest.raises(InputError, match=r"\[0, 1\)"):
        run(clips["base"], colorizer, out, smoothing=1.5)
    with pytest.raises(InputError, match="past the end"):
        run(clips["base"], colorizer, out, start=30.0)
    assert list(tmp_path.iterdir()) == []


def test_unusable_outputs(clips, colorizer, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(InputError, match="Cannot create the output folder"):
        run(clips["base"], colorizer, blocker / "out.mp4")
    with pytest.raises(InputError, match="one of"):
        run(clips["base"], colorizer, tmp_path / "out.avi")
    with pytest.raises(InputError, match="source itself"):
        run(clips["base"], colorizer, clips["base"])


def _mount_tiny_tmpfs(path: Path) -> bool:
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_disk_full_fails_clearly_and_leaves_no_finished_looking_file(clips, colorizer, tmp_path):
    full = tmp_path / "full"
    if not _mount_tiny_tmpfs(full):
        pytest.skip("needs root to mount a 64 KiB tmpfs as a full disk")
    try:
        big = make_clip(tmp_path / "big.mp4", size="320x240", seconds=2.0, source="testsrc2",
                        out_args=("-c:v", "libx264", "-preset", "ultrafast", "-crf", "10"))
        with pytest.raises(VideoError, match="space|disk"):
            run(big, colorizer, full / "out.mp4")
        assert not (full / "out.mp4").exists()
        assert not list(full.glob(".out.partial*"))
    finally:
        subprocess.run(["umount", str(full)], check=False)


def test_ffmpeg_versions_and_the_pre_5_1_passthrough_option(clips, colorizer, tmp_path, monkeypatch):
    from colorizer_lib.video import binaries

    assert binaries.parse_ffmpeg_version("ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright") == (4, 4)  # Colab
    assert binaries.parse_ffmpeg_version("ffmpeg version 7.0.2-static https://") == (7, 0)  # imageio-ffmpeg
    assert binaries.parse_ffmpeg_version("ffmpeg version N-113000-gabc Copyright") == (99, 0)  # git build
    assert find_tools().passthrough_args() == ["-fps_mode", "passthrough"]
    # An ffmpeg older than 5.1 gets -vsync passthrough, which must keep every frame of a VFR source too.
    monkeypatch.setattr(binaries, "_ffmpeg_version", lambda path: (4, 4))
    tools = find_tools()
    assert tools.passthrough_args() == ["-vsync", "passthrough"]
    packets = int(stream_info(clips["vfr"])[0]["nb_read_packets"])
    result = colorize_video(clips["vfr"], colorizer, tmp_path / "v.mp4", render_factor=2, progress=False,
                            tools=tools)
    assert result.frames_out == packets
