"""`colorize video` CLI, URL inputs (file://, local HTTP through yt-dlp and gdown) and the preview mode."""

from __future__ import annotations

import argparse

import pytest
import torch
from PIL import Image

from colorizer_lib.errors import InputError, RenderFactorError
from colorizer_lib.video import colorize_video, download_video, is_google_drive, is_url, preview_video, probe
from colorizer_lib.cli import video_main
from colorizer_lib.video_cli import add_video_parser, run_video

from .http_server import serve_directory
from .test_video_support import one_torch_thread  # noqa: F401 (autouse fixture)
from .test_video_support import make_clip, needs_ffmpeg, tiny_colorizer

pytestmark = needs_ffmpeg


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("cli") / "film.mp4", size="96x72", seconds=1.0)


def cli(*args: str) -> int:
    return video_main([*args, "--render-factor", "2", "--device", "cpu", "--dtype", "float32"])


@pytest.fixture()
def loaded_model(monkeypatch):
    """Skip re-loading the weights file for tests about other options (loading is tested once, below)."""
    import colorizer_lib.video_cli as video_cli

    colorizer = tiny_colorizer()
    monkeypatch.setattr(video_cli, "_load_colorizer", lambda args: colorizer)


def test_cli_colorizes_a_file_with_progress_and_eta(clip, weights, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert cli(str(clip), "-o", str(out), "--model", weights, "--smoothing", "0.5", "--segment-seconds", "0.4") == 0
    captured = capsys.readouterr()
    assert str(out) in captured.out and "25 frames" in captured.out
    assert "25/25" in captured.err and "<00:00" in captured.err  # tqdm's count and ETA
    info = probe(out)
    assert info.frame_count == 25 and info.has_audio


def test_cli_accepts_a_file_url(clip, weights, tmp_path, monkeypatch, capsys, loaded_model):
    monkeypatch.chdir(tmp_path)
    assert cli(clip.resolve().as_uri(), "--model", weights, "--no-progress") == 0
    out = tmp_path / "film_colorized.mp4"  # named after the downloaded title
    assert out.is_file() and probe(out).frame_count == 25
    assert str(out) in capsys.readouterr().out


def test_cli_url_rerun_reuses_the_download_and_resumes(clip, weights, tmp_path, monkeypatch, capsys, loaded_model):
    monkeypatch.chdir(tmp_path)
    args = (clip.resolve().as_uri(), "--model", weights, "--no-progress", "--keep-segments")
    assert cli(*args) == 0
    capsys.readouterr()
    assert cli(*args) == 0
    assert "25 resumed" in capsys.readouterr().out  # the same download, so the finished segments count


def test_cli_start_duration_and_times(clip, weights, tmp_path, loaded_model):
    out = tmp_path / "part.mkv"
    assert cli(str(clip), "-o", str(out), "--model", weights, "--start", "0:00.2", "--duration", "0.4",
               "--no-progress") == 0
    assert probe(out).duration == pytest.approx(0.4, abs=0.08)


def test_cli_compiles_when_asked_and_auto_counts_the_frames(clip, weights, tmp_path, capsys, monkeypatch,
                                                           loaded_model):
    import colorizer_lib.accel as accel

    frames_asked = []
    monkeypatch.setattr(accel, "should_compile", lambda device, n, **kw: frames_asked.append(n) or False)
    assert cli(str(clip), "-o", str(tmp_path / "auto.mp4"), "--model", weights, "--start", "0.2",
               "--no-progress") == 0
    assert frames_asked == [20] and "compiling" not in capsys.readouterr().err  # 25 frames, 5 skipped
    compiles = []
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: compiles.append(kw) or real(model, backend="aot_eager"))
    out = tmp_path / "on.mp4"
    assert cli(str(clip), "-o", str(out), "--model", weights, "--compile", "on", "--batch-size", "4",
               "--no-progress") == 0
    assert len(compiles) == 1 and "compiling the model" in capsys.readouterr().err
    assert probe(out).frame_count == 25


def test_cli_preview_writes_a_render_factor_grid(clip, weights, tmp_path, capsys, loaded_model):
    out = tmp_path / "preview.png"
    assert video_main([str(clip), "--preview", "-o", str(out), "--model", weights, "--device", "cpu",
                           "--preview-times", "0.1,0.7", "--preview-render-factors", "2,3,4"]) == 0
    grid = Image.open(out)
    assert grid.size == (3 * 320, 2 * (240 + 16))
    assert "2, 3, 4" in capsys.readouterr().out


def test_cli_reports_bad_input_without_traceback(tmp_path, weights, capsys, loaded_model):
    assert cli(str(tmp_path / "missing.mp4"), "--model", weights) == 2  # bad input (README's exit codes)
    assert "error:" in capsys.readouterr().err
    text = tmp_path / "x.mp4"
    text.write_text("hello")
    assert cli(str(text), "--model", weights, "-q") == 2
    assert "not a video" in capsys.readouterr().err


def test_the_main_colorize_cli_runs_video_and_maps_errors(clip, tmp_path, capsys, loaded_model):
    from colorizer_lib.cli import main

    out = tmp_path / "main.mp4"
    assert main(["video", str(clip), "-o", str(out), "--render-factor", "2", "--no-progress"]) == 0
    assert probe(out).frame_count == 25
    assert main(["video", str(tmp_path / "missing.mp4")]) == 2  # the main CLI's usage/input exit code
    assert "missing.mp4" in capsys.readouterr().err


def test_add_video_parser_hooks_into_a_main_cli():
    parser = argparse.ArgumentParser(prog="colorize")
    add_video_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["video", "in.mp4", "--smoothing", "0", "--start", "1:30", "--preview"])
    assert args.func is run_video and args.smoothing == 0 and args.start == 90.0 and args.preview


# ------------------------------------------------------------------------- flags shared with `colorize image`

def _video_parser():
    from colorizer_lib.cli import build_parser

    parser = build_parser("video")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["video"]
    return parser, {a.dest: a for a in sub._actions}


@pytest.mark.parametrize("flag", ["-r", "--render-factor"])
@pytest.mark.parametrize("text, value", [("35", 35), ("35.0", 35), ("2", 2), ("100", 100)])
def test_render_factor_is_the_shared_flag_with_the_library_check(flag, text, value):
    from colorizer_lib import cli_args

    parser, actions = _video_parser()
    assert actions["render_factor"].type is cli_args.render_factor
    assert actions["render_factor"].option_strings == ["-r", "--render-factor"]
    args = parser.parse_args(["video", "in.mp4", flag, text])
    assert args.render_factor == value and type(args.render_factor) is int


@pytest.mark.parametrize("text, words", [("35.5", "render factor must be a whole number from 2 to 100"),
                                         ("1", "render factor 1 is outside the allowed range 2..100"),
                                         ("101", "render factor 101 is outside the allowed range 2..100"),
                                         ("nan", "render factor must be a whole number"),
                                         ("abc", "not a number: 'abc'")])
def test_render_factor_refusals_carry_the_library_message(text, words, capsys):
    from colorizer_lib.constants import check_render_factor

    parser, _ = _video_parser()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["video", "in.mp4", "-r", text])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument -r/--render-factor: {words}" in err
    if text != "abc":  # the very message the library raises
        with pytest.raises(ValueError) as library:
            check_render_factor(float(text))
        assert str(library.value) in err


def test_preview_render_factors_are_each_checked_as_the_render_factor(capsys):
    parser, actions = _video_parser()
    assert parser.parse_args(["video", "in.mp4", "--preview-render-factors", "14, 21,35.0"]).preview_render_factors \
        == [14, 21, 35]
    for bad, words in [("14,35.5", "render factor must be a whole number"), ("14,500", "render factor 500 is outside the allowed range"),
                       ("14,x", "not a number: 'x'")]:
        with pytest.raises(SystemExit):
            parser.parse_args(["video", "in.mp4", "--preview-render-factors", bad])
        assert f"argument --preview-render-factors: {words}" in capsys.readouterr().err


def test_quiet_is_the_documented_flag_and_no_progress_its_hidden_alias():
    parser, actions = _video_parser()
    for flag in ("-q", "--quiet", "--no-progress"):
        assert parser.parse_args(["video", "in.mp4", flag]).quiet is True
    assert parser.parse_args(["video", "in.mp4"]).quiet is False
    help_text = parser._subparsers._group_actions[0].choices["video"].format_help()
    assert "-q, --quiet" in help_text and "--no-progress" not in help_text


def test_the_batch_size_default_is_the_library_s_and_the_help_says_it(clip, tmp_path):
    from colorizer_lib.video.settings import FRAME_BATCH_SIZES, frame_batch_size

    from .test_video_support import CountingColorizer

    parser, actions = _video_parser()
    assert f"(default {FRAME_BATCH_SIZES['cuda']} GPU, {FRAME_BATCH_SIZES['cpu']} CPU)" in actions["batch_size"].help
    assert [frame_batch_size(None, d) for d in ("cuda", "cpu", "mps")] == [16, 4, 4]
    assert frame_batch_size(3, "cuda") == 3
    with pytest.raises(InputError, match="batch_size must be a whole number"):
        frame_batch_size(0, "cpu")
    col = CountingColorizer(tiny_colorizer())  # on the CPU: 25 frames in batches of 4
    colorize_video(clip, col, tmp_path / "o.mp4", render_factor=2, progress=False)
    assert (col.frames, col.batches) == (25, -(-25 // FRAME_BATCH_SIZES["cpu"]))


def test_video_help_and_argument_checks_import_no_torch():
    """`colorize video --help` and parsing (render factor included) stay torch-free, as `colorize --help`."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "from colorizer_lib.cli import build_parser, main\n"
        "args = build_parser('video').parse_args(['video', 'in.mp4', '-r', '35.0', '-q', '--device', 'cpu',\n"
        "                                         '--dtype', 'float32', '--cache-dir', 'c', '-m', 'compact'])\n"
        "assert args.render_factor == 35, args\n"
        "try:\n"
        "    main(['video', '--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert "TORCH False" in done.stdout and "--render-factor" in done.stdout, done.stdout + done.stderr


# ------------------------------------------------------------------------------------------ URLs

def test_finished_download_is_the_record_download_video_writes(clip, tmp_path):
    from colorizer_lib.video import finished_download

    url = clip.resolve().as_uri()
    assert finished_download(url, tmp_path) is None  # never downloaded
    path = download_video(url, tmp_path)
    assert finished_download(url, tmp_path) == path and download_video(url, tmp_path) == path
    marker = path.parent / "complete.json"
    for broken in ("{not json", "[]", '{"url": "x"}'):  # an interrupted or damaged record: not finished
        marker.write_text(broken)
        assert finished_download(url, tmp_path) is None
    marker.write_text('{"url": "%s", "file": "gone.mp4"}' % url)
    assert finished_download(url, tmp_path) is None  # the file it names is gone
    assert finished_download("www.example.org/v", tmp_path) is None
    assert (finished_download("www.example.org/v", tmp_path / "x") is None and not (tmp_path / "x").exists())


def test_url_detection():
    assert is_url("https://youtu.be/x") and is_url("file:///tmp/a.mp4") and is_url("www.example.com/v")
    assert not is_url("/tmp/a.mp4") and not is_url("C:/films/a.mp4")
    assert is_google_drive("https://drive.google.com/file/d/abc/view")
    assert not is_google_drive("https://example.com/drive.google.com")


def test_http_download_through_yt_dlp_and_refusal(clip, tmp_path):
    with serve_directory(clip.parent) as base:
        path = download_video(f"{base}/{clip.name}", tmp_path)
        assert probe(path).frame_count == 25
        with pytest.raises(InputError, match="Could not download"):
            download_video(f"{base}/{clip.name}?status=403", tmp_path)


def test_download_limits(clip, tmp_path):
    with pytest.raises(InputError, match="limit|max_filesize"):
        download_video(clip.resolve().as_uri(), tmp_path, max_filesize=1000)
    with pytest.raises(InputError, match="0 s limit|max_duration"):
        download_video(clip.resolve().as_uri(), tmp_path, max_duration=0.5)
    with pytest.raises(InputError, match="Could not download"):
        download_video((tmp_path / "nothing.mp4").as_uri(), tmp_path)


def test_gdown_route(clip, tmp_path):
    with serve_directory(clip.parent) as base:
        path = download_video(f"{base}/{clip.name}", tmp_path, via="gdown")
        assert probe(path).frame_count == 25


def test_preview_api_times_default_to_spread_frames(clip):
    result = preview_video(clip, tiny_colorizer(), n_frames=2, render_factors=(2, 4), thumb_width=48)
    assert result.times == [0.25, 0.75] and result.path is None
    assert set(result.images) == {(0.25, 2), (0.25, 4), (0.75, 2), (0.75, 4)}
    a, b = result.images[(0.25, 2)], result.images[(0.25, 4)]
    assert a.size == (96, 72) and a.tobytes() != b.tobytes()  # render factors give different colours
    with pytest.raises(InputError, match="No frame"):
        preview_video(clip, tiny_colorizer(), times=[5.0], render_factors=(2,))
    grid = preview_video(clip, tiny_colorizer(), times=[0.25], render_factors=(2.0, 4), thumb_width=48)
    assert grid.render_factors == [2, 4] and grid.images[(0.25, 2)].tobytes() == a.tobytes()  # 2.0 is 2, as images


def test_preview_with_ddcolor_moves_odd_render_factors_to_even_ones(clip, capsys, tmp_path):
    """DDColor takes even render factors: the preview shows the next even one and the command says so."""
    import torch

    from colorizer_lib import Colorizer
    from colorizer_lib.models import build_generator, expected_state
    from tests.ddcolor_weights import deterministic_state_dict

    model = build_generator("ddcolor-tiny")
    model.load_state_dict(deterministic_state_dict(expected_state("ddcolor-tiny"), seed=1))
    ddcolor = Colorizer.from_model(model, name="ddcolor-tiny-test", default_render_factor=4, device="cpu",
                                   dtype="float32")
    assert preview_video(clip, ddcolor, times=[0.25], render_factors=(4, 5), thumb_width=48).render_factors == [4, 6]
    weights = tmp_path / "ddcolor_tiny.bin"
    torch.save(deterministic_state_dict(expected_state("ddcolor-tiny"), seed=1), weights)
    assert video_main([str(clip), "--model", str(weights), "--preview", "--preview-render-factors", "4,5",
                       "--preview-times", "0.25", "-o", str(tmp_path / "grid.png")]) == 0
    out = capsys.readouterr().out
    assert "render factors 4, 6" in out and "5 -> 6" in out and (tmp_path / "grid.png").is_file()


def test_preview_refuses_bad_render_factors_before_decoding(monkeypatch):
    import colorizer_lib.video.preview as preview

    def no_probe(*args, **kwargs):
        raise AssertionError("probed before checking the render factors")

    monkeypatch.setattr(preview, "probe", no_probe)
    for bad, words in [((21, 35.5), "whole number from 2 to 100"), ((500,), "outside the allowed range 2..100")]:
        with pytest.raises(RenderFactorError, match=words):
            preview_video("film.mp4", tiny_colorizer(), render_factors=bad)


@pytest.mark.parametrize("bad, words", [(("--render-factor", "500"), "render factor"),
                                        (("--smoothing", "1"), "Smoothing strength"),
                                        (("-o", "film.avi"), "Cannot write")])
def test_bad_settings_are_refused_before_any_download(bad, words, monkeypatch, capsys):
    import colorizer_lib.video

    def no_download(*a, **k):
        raise AssertionError("downloaded before checking the settings")

    monkeypatch.setattr(colorizer_lib.video, "download_video", no_download)
    assert video_main(["https://example.invalid/film.mp4", *bad]) == 2
    assert words in capsys.readouterr().err
