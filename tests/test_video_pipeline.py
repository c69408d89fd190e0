"""End-to-end video colorization: frame count, duration, audio, colour, segments, resume, integrity checks."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from colorizer_lib.errors import VideoError
from colorizer_lib.video import colorize_video, probe

from .test_video_support import one_torch_thread  # noqa: F401 (autouse fixture)
from .test_video_support import (FFPROBE, CountingColorizer, decode_gray, decode_rgb, ffmpeg, make_clip,
                                 needs_ffmpeg, stream_info, tiny_colorizer)

pytestmark = needs_ffmpeg


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """testsrc 160x120, 25 fps, 2 s (50 frames) with a sine audio track."""
    return make_clip(tmp_path_factory.mktemp("clip") / "src.mp4")


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    """testsrc 96x72, 25 fps, 1 s (25 frames) with audio, for the tests that run a video several times."""
    return make_clip(tmp_path_factory.mktemp("short") / "short.mp4", size="96x72", seconds=1.0)


@pytest.fixture(scope="module")
def colorizer():
    return tiny_colorizer()


def test_testsrc_with_audio_comes_back_complete_and_coloured(clip, colorizer, tmp_path):
    out = tmp_path / "out.mp4"
    result = colorize_video(clip, colorizer, out, render_factor=4, progress=False)

    assert result.path == out and out.is_file()
    assert result.frames_in == result.frames_out == 50
    assert result.audio_streams == 1 and result.frames_affected == 0 and result.decode_errors == 0
    streams = stream_info(out)
    video = [s for s in streams if s["codec_type"] == "video"]
    audio = [s for s in streams if s["codec_type"] == "audio"]
    assert len(video) == 1 and len(audio) == 1, streams
    assert int(video[0]["nb_read_packets"]) == 50
    assert video[0]["codec_name"] == "h264" and video[0]["pix_fmt"] == "yuv420p"
    src_video = [s for s in stream_info(clip) if s["codec_type"] == "video"][0]
    assert abs(float(video[0]["duration"]) - float(src_video["duration"])) <= 1 / 25 + 1e-6

    frames = decode_rgb(out, 160, 120).astype(np.int16)
    assert frames.shape[0] == 50
    saturation = (frames.max(axis=3) - frames.min(axis=3)).mean()
    assert saturation > 8, f"output looks grey (mean channel spread {saturation:.1f})"
    # The original luminance survives: compose keeps the source's luma (up to gamut clipping and coding).
    luma_in = decode_gray(clip, 160, 120).astype(np.float32)
    luma_out = decode_gray(out, 160, 120).astype(np.float32)
    assert np.corrcoef(luma_in.ravel(), luma_out.ravel())[0, 1] > 0.9
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir()), "work files left behind"


def test_segments_are_joined_without_losing_frames(clip, colorizer, tmp_path):
    result = colorize_video(clip, colorizer, tmp_path / "seg.mkv", render_factor=2, segment_seconds=0.36,
                            smoothing=0.0, progress=False)
    assert result.segments == 6  # 9 frames per segment: 5 full + 1 of 5 frames
    assert result.frames_out == 50
    streams = stream_info(result.path)
    assert int([s for s in streams if s["codec_type"] == "video"][0]["nb_read_packets"]) == 50
    assert any(s["codec_type"] == "audio" for s in streams)


def test_interrupted_run_resumes_from_last_finished_segment(clip, colorizer, tmp_path):
    out = tmp_path / "resume.mp4"
    interrupted = CountingColorizer(colorizer, stop_after=4)  # 4 batches of 4 frames, then a "disconnect"
    with pytest.raises(KeyboardInterrupt):
        colorize_video(clip, interrupted, out, render_factor=2, batch_size=4, segment_seconds=0.4, progress=False)
    assert not out.exists(), "a partial output must never look finished"
    work = tmp_path / ".resume.mp4.parts"
    manifest = json.loads((work / "manifest.json").read_text())
    done = sum(s["frames"] for s in manifest["segments"])
    assert done == 16 and not manifest["complete"]  # 4 batches of 4 were colorized and kept: 10 + 6
    assert not list(work.glob("*.tmp")), "the unfinished segment must be removed"

    again = CountingColorizer(colorizer)
    result = colorize_video(clip, again, out, render_factor=2, batch_size=4, segment_seconds=0.4, progress=False)
    assert result.resumed_frames == 16 and again.frames == 34
    assert result.frames_out == 50 and int(stream_info(out)[0]["nb_read_packets"]) == 50
    assert not work.exists()


def test_changed_settings_do_not_reuse_old_segments(short, colorizer, tmp_path):
    out = tmp_path / "o.mp4"
    with pytest.raises(KeyboardInterrupt):
        colorize_video(short, CountingColorizer(colorizer, stop_after=3), out, render_factor=2, batch_size=4,
                       segment_seconds=0.16, progress=False)
    assert json.loads((tmp_path / ".o.mp4.parts" / "manifest.json").read_text())["segments"]
    counting = CountingColorizer(colorizer)
    result = colorize_video(short, counting, out, render_factor=3, batch_size=4, segment_seconds=0.16,
                            progress=False)
    assert result.resumed_frames == 0 and counting.frames == 25


def test_frame_count_mismatch_is_an_error_and_leaves_no_output(short, colorizer, tmp_path):
    out = tmp_path / "bad.mp4"
    with pytest.raises(KeyboardInterrupt):
        colorize_video(short, CountingColorizer(colorizer, stop_after=4), out, render_factor=2, batch_size=4,
                       segment_seconds=0.16, progress=False)
    work = tmp_path / ".bad.mp4.parts"
    manifest = json.loads((work / "manifest.json").read_text())
    assert len(manifest["segments"]) >= 2
    # Damage the work folder: segment 0 replaced by a shorter one (as a failing disk or a user might).
    shutil.copy(work / "seg_00001.mp4", work / "seg_00000.mp4")
    tiny = make_clip(tmp_path / "tiny.mp4", size="96x72", seconds=0.08, audio=False)  # 2 frames, not 4
    shutil.copy(tiny, work / "seg_00001.mp4")
    with pytest.raises(VideoError, match="[Ff]rame count"):
        colorize_video(short, colorizer, out, render_factor=2, batch_size=4, segment_seconds=0.16, progress=False)
    assert not out.exists()
    assert not list(tmp_path.glob(".bad.partial*"))


def test_start_and_duration_select_a_part_with_matching_audio(clip, colorizer, tmp_path):
    result = colorize_video(clip, colorizer, tmp_path / "part.mp4", render_factor=2, start=0.4, duration=0.6,
                            progress=False)
    assert result.frames_out == 15
    info = probe(result.path)
    assert info.has_audio and info.frame_count == 15
    assert info.duration == pytest.approx(0.6, abs=0.1)


def test_all_audio_streams_subtitles_and_metadata_are_carried(colorizer, tmp_path):
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,400\nHello\n\n2\n00:00:00,400 --> 00:00:00,800\nWorld\n")
    src = tmp_path / "multi.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=0.8", "-f", "lavfi",
           "-i", "sine=frequency=440:duration=0.8", "-f", "lavfi", "-i", "sine=frequency=880:duration=0.8",
           "-i", str(srt), "-map", "0", "-map", "1", "-map", "2", "-map", "3", "-c:v", "libx264", "-preset",
           "ultrafast", "-c:a:0", "pcm_s16le", "-c:a:1", "flac", "-c:s", "srt", "-metadata", "title=Old Film",
           str(src))

    def kinds(path):
        return [(s["codec_type"], s["codec_name"]) for s in stream_info(path)]

    same = colorize_video(src, colorizer, tmp_path / "o.mkv", render_factor=2, progress=False)
    assert kinds(same.path)[1:] == kinds(src)[1:]  # Matroska takes every stream as it is: copied
    assert same.warnings == [] and probe(same.path).audio_codecs == ("pcm_s16le", "flac")
    mp4 = colorize_video(src, colorizer, tmp_path / "o.mp4", render_factor=2, progress=False)
    assert kinds(mp4.path)[1:] == [("audio", "aac"), ("audio", "aac"), ("subtitle", "mov_text")]
    assert any("re-encoded to AAC" in w for w in mp4.warnings)
    for out in (same.path, mp4.path):
        title = subprocess.run([FFPROBE, "-v", "error", "-show_entries", "format_tags=title", "-of",
                                "default=nw=1:nk=1", str(out)], capture_output=True, text=True).stdout.strip()
        assert title == "Old Film"


def test_work_dir_contents_are_never_deleted(short, colorizer, tmp_path):
    """The caller's work folder only ever receives a parts subfolder; its own files survive."""
    work = tmp_path / "mywork"
    work.mkdir()
    (work / "notes.txt").write_text("keep me")
    colorize_video(short, colorizer, tmp_path / "w_out.mp4", work_dir=work, segment_seconds=None)
    assert (work / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "w_out.mp4").is_file()
