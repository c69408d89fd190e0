"""The `colorize` front door: fast help without torch, commands that cannot load say why, the flags
every command shares, and the one exit-code table."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from colorizer_lib import cli, errors
from colorizer_lib.cli_args import COMMON_FLAGS, add_common_arguments

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_help_lists_every_command_without_importing_torch():
    code = (
        "import runpy, sys\n"
        "sys.argv = ['colorize', '--help']\n"
        "try:\n"
        "    runpy.run_module('colorizer_lib.cli', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'PIL') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert "HEAVY []" in done.stdout, done.stdout
    for command in ("image", "models", *cli._EXTERNAL_COMMANDS):
        assert f"\n    {command}" in done.stdout, (command, done.stdout)


def test_a_command_whose_module_cannot_load_is_listed_and_says_why(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "colorizer_lib.video_cli", None)  # importing it raises ImportError
    help_text = cli.build_parser().format_help()
    assert "video" in help_text
    for argv in (["video", "clip.mp4", "-o", "out.mp4"], ["video", "--help"], ["video"]):
        assert cli.main(argv) == errors.EXIT_PARTIAL, argv
        err = capsys.readouterr().err
        assert "`colorize video` cannot run" in err and "colorizer_lib.video_cli" in err and "Install" in err
        assert "invalid choice" not in err and "unrecognized" not in err


def test_only_the_chosen_command_module_is_imported(monkeypatch):
    for name, (module, _, _) in cli._EXTERNAL_COMMANDS.items():
        monkeypatch.delitem(sys.modules, module, raising=False)
    cli.build_parser("export")
    assert "colorizer_lib.export_cli" in sys.modules
    assert "colorizer_lib.video_cli" not in sys.modules and "colorizer_lib.bench" not in sys.modules


@pytest.mark.parametrize("command, skipped", [
    ("image", ()), ("video", ()), ("export", ("device", "dtype")), ("bench-quality", ()),
    ("models", ("model",)), ("bench", ("model", "dtype", "cache_dir", "quiet")),
])
def test_commands_share_the_common_flags(command, skipped):
    parser = cli.build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    dests = {a.dest for a in sub._actions}
    for flag in COMMON_FLAGS:
        assert (flag in dests) == (flag not in skipped), (command, flag)
    if "dtype" not in skipped:
        with pytest.raises(SystemExit):
            parser.parse_args([command, "x", "--dtype", "float64"])


@pytest.mark.parametrize("command, positional", [("video", "in.mp4"), ("bench-quality", "photos")])
def test_render_factor_and_quiet_are_spelled_and_checked_once(command, positional, capsys):
    """`-r/--render-factor` is cli_args' flag (the library's check: 35.0 is 35) and `-q` the documented quiet
    flag; the old `--no-progress` still works but is not offered."""
    from colorizer_lib import cli_args

    parser = cli.build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    assert next(a for a in sub._actions if a.dest == "render_factor").type is cli_args.render_factor
    assert parser.parse_args([command, positional, "-r", "35.0"]).render_factor == 35
    for flag in ("-q", "--no-progress"):
        assert parser.parse_args([command, positional, flag]).quiet is True
    assert "--no-progress" not in sub.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args([command, positional, "--render-factor", "35.5"])
    assert "render factor must be a whole number from 2 to 100" in capsys.readouterr().err


def test_common_flags_refuse_unknown_names():
    with pytest.raises(ValueError, match="unknown common flag"):
        add_common_arguments(argparse.ArgumentParser(), skip=("colour",))


@pytest.mark.parametrize("exc, code", [
    (KeyboardInterrupt(), errors.EXIT_INTERRUPTED),
    (errors.ColorizerOutOfMemoryError("oom"), errors.EXIT_OOM),
    (errors.DownloadError("offline"), errors.EXIT_WEIGHTS),
    (errors.VerificationError("bad sha"), errors.EXIT_WEIGHTS),
    (errors.InputError("no such file"), errors.EXIT_USAGE),
    (errors.RenderFactorError("rf 500"), errors.EXIT_USAGE),
    (ValueError("bad device"), errors.EXIT_USAGE),
    (errors.VideoError("ffmpeg failed"), errors.EXIT_PARTIAL),
    (errors.DependencyError("no onnxruntime"), errors.EXIT_PARTIAL),
    (RuntimeError("a bug"), None),
])
def test_one_exit_code_table(exc, code):
    assert errors.exit_code(exc) == code


def test_main_maps_errors_through_the_table(tmp_path, capsys):
    assert cli.main(["image", str(tmp_path / "missing.jpg")]) == errors.EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err
