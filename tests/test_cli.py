"""`colorize image` and `colorize models` as a shell user runs them."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import torch
from PIL import Image

from colorizer_lib.models.random_weights import calibrated_random_model
from colorizer_lib.cli import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_WEIGHTS, main
from colorizer_lib.io import read_provenance
from tests.conftest import BW_EXAMPLES, FIXTURES
from tests.http_server import closed_port_url, serve_directory


@pytest.fixture(scope="module")
def artistic_server(tmp_path_factory):
    """A real HTTP server on 127.0.0.1 serving ColorizeArtistic_gen.pth in fastai's wrapped layout."""
    root = tmp_path_factory.mktemp("weights_site")
    opt = {"state": {}, "param_groups": [{"lr": slice(None, 0.003, None), "params": [0]}]}
    model = calibrated_random_model("deoldify-deep-resnet34", torch.device("cpu"), size=64)
    torch.save({"model": model.state_dict(), "opt": opt}, root / "ColorizeArtistic_gen.pth")
    with serve_directory(root) as base_url:
        yield base_url


def test_colorize_folder_with_weights_from_a_local_server_then_resume(artistic_server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLORIZER_MIRROR", artistic_server)
    src = tmp_path / "photos"
    shutil.copytree(BW_EXAMPLES, src)
    (src / "nested").mkdir()
    shutil.copy(BW_EXAMPLES / "black-canyon.jpg", src / "nested" / "canyon copy.jpg")
    out = tmp_path / "out"

    code = main(["image", str(src), "-o", str(out), "-m", "artistic", "-r", "4", "--device", "cpu"])
    assert code == EXIT_OK
    inputs = sorted(p for p in src.rglob("*.jpg"))
    assert len(inputs) == 10
    for path in inputs:
        result = out / "photos" / path.relative_to(src)
        with Image.open(path) as a, Image.open(result) as b:
            assert b.size == a.size and b.mode == "RGB"
        meta = read_provenance(result)
        assert meta["colorizer:model"] == "artistic" and meta["colorizer:render_factor"] == "4"
    first_mtime = (out / "photos" / "nested" / "canyon copy.jpg").stat().st_mtime_ns

    capsys.readouterr()
    assert main(["image", str(src), "-o", str(out), "-m", "artistic", "-r", "4", "--device", "cpu"]) == EXIT_OK
    err = capsys.readouterr().err
    assert "skipping 10 image(s)" in err
    assert (out / "photos" / "nested" / "canyon copy.jpg").stat().st_mtime_ns == first_mtime


def test_single_file_to_named_output_with_compare(tiny_weights_file, tmp_path):
    out = tmp_path / "result.png"
    code = main(["image", str(FIXTURES / "deoldify_tiny_pipeline_in.png"), "-o", str(out), "-m",
                 str(tiny_weights_file), "-r", "4", "--compare", "-q"])
    assert code == EXIT_OK
    assert Image.open(out).size == (160, 120)
    assert Image.open(tmp_path / "result.compare.jpg").width >= 320


def test_never_overwrites_an_input(tiny_weights_file, tmp_path, capsys):
    src = tmp_path / "photo.png"
    shutil.copy(FIXTURES / "deoldify_tiny_pipeline_in.png", src)
    before = src.read_bytes()
    code = main(["image", str(src), "-o", str(src), "-m", str(tiny_weights_file), "-r", "4", "-q"])
    assert code == EXIT_USAGE
    assert "overwrite an input" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_bad_files_are_reported_and_the_rest_done(tiny_weights_file, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(FIXTURES / "deoldify_tiny_pipeline_in.png", src / "good.png")
    (src / "broken.jpg").write_bytes(b"this is not a jpeg")
    code = main(["image", str(src), "-o", str(tmp_path / "out"), "-m", str(tiny_weights_file), "-r", "4", "-q"])
    assert code == EXIT_PARTIAL
    assert (tmp_path / "out" / "in" / "good.png").is_file()
    assert not (tmp_path / "out" / "in" / "broken.jpg").exists()
    assert "broken.jpg" in capsys.readouterr().err


def test_invalid_render_factor_exit_code(tiny_weights_file, tmp_path, capsys):
    code = main(["image", str(FIXTURES / "deoldify_tiny_pipeline_in.png"), "-o", str(tmp_path), "-m",
                 str(tiny_weights_file), "-r", "0"])
    assert code == EXIT_USAGE
    assert "2..100" in capsys.readouterr().err


def test_missing_input_exit_code(tmp_path, capsys):
    assert main(["image", str(tmp_path / "nope.jpg"), "-m", "artistic"]) == EXIT_USAGE
    assert "nope.jpg does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["image", "video"])
def test_a_symbolic_link_given_as_input_that_loops_or_dangles_is_named(command, tmp_path, capsys):
    (tmp_path / "a.jpg").symlink_to(tmp_path / "b.jpg")
    (tmp_path / "b.jpg").symlink_to(tmp_path / "a.jpg")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    out = tmp_path / "out"
    assert main([command, str(tmp_path / "a.jpg"), "-o", str(out / "x.mp4"), "-m", "compact"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{tmp_path / 'a.jpg'} is a symbolic link that loops" in err and "fix or remove the link" in err
    assert main([command, str(tmp_path / "gone.jpg"), "-o", str(out / "x.mp4"), "-m", "compact"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{tmp_path / 'gone.jpg'} is a symbolic link to '{tmp_path / 'deleted.jpg'}', which does not exist" in err
    assert not out.exists()


def test_no_network_names_the_urls_and_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLORIZER_MIRROR", closed_port_url())
    # Official URLs are unreachable here as well; the mirror fails fast with "connection refused".
    code = main(["image", str(FIXTURES / "deoldify_tiny_pipeline_in.png"), "-o", str(tmp_path / "o"), "-m", "stable",
                 "-q"])
    err = capsys.readouterr().err
    assert code == EXIT_WEIGHTS
    assert "ColorizeStable_gen.pth" in err


def test_models_lists_the_registry(capsys, monkeypatch, tmp_path):
    from colorizer_lib.registry import list_specs

    assert main(["models"]) == EXIT_OK
    out = capsys.readouterr().out
    for spec in list_specs():
        assert spec.name in out
    assert "not downloaded" in out


def test_console_script_is_installed():
    exe = shutil.which("colorize")
    assert exe, "pip install -e . should install the `colorize` console script"
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "image" in proc.stdout and "models" in proc.stdout


def test_urls_are_colorized_and_web_pages_refused(tiny_weights_file, tmp_path, capsys):
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(FIXTURES / "deoldify_tiny_pipeline_in.png", site / "bird.png")
    (site / "page.html").write_text("<!DOCTYPE html><html><body>a photo page</body></html>")
    out = tmp_path / "out"
    with serve_directory(site) as base:
        code = main(["image", f"{base}/bird.png", f"{base}/page.html", "-o", str(out), "-m", str(tiny_weights_file),
                     "-r", "4", "-q"])
    assert code == EXIT_PARTIAL
    assert Image.open(out / "bird.png").size == (160, 120)
    err = capsys.readouterr().err
    assert "page.html" in err and "web page" in err


def test_cli_onnx_runtime(tiny_weights_file, tmp_path, capsys):
    out = tmp_path / "o.png"
    code = main(["image", str(FIXTURES / "deoldify_tiny_pipeline_in.png"), "-o", str(out), "-m", str(tiny_weights_file),
                 "-r", "4", "--runtime", "onnx", "--cache-dir", str(tmp_path / "cache")])
    assert code == EXIT_OK and Image.open(out).size == (160, 120)
    assert "ONNX Runtime" in capsys.readouterr().err


def test_two_inputs_with_one_output_name_are_refused(tiny_weights_file, tmp_path, capsys):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copy(FIXTURES / "deoldify_tiny_pipeline_in.png", tmp_path / sub / "x.png")
    code = main(["image", str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png"), "-o", str(tmp_path / "out"),
                 "-m", str(tiny_weights_file), "-r", "4", "-q"])
    assert code == EXIT_USAGE
    assert "would both be written" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_batch_size_must_be_positive(tiny_weights_file, tmp_path):
    assert main(["image", str(FIXTURES / "deoldify_tiny_pipeline_in.png"), "--batch-size", "-1"]) == EXIT_USAGE


def test_bmp_outputs_become_png_so_reruns_resume(tiny_weights_file, tmp_path, capsys):
    src = tmp_path / "scan.bmp"
    Image.open(FIXTURES / "deoldify_tiny_pipeline_in.png").save(src)
    args = ["image", str(src), "-o", str(tmp_path / "out"), "-m", str(tiny_weights_file), "-r", "4"]
    assert main(args) == EXIT_OK
    assert (tmp_path / "out" / "scan.png").is_file()
    capsys.readouterr()
    assert main(args) == EXIT_OK
    assert "skipping 1 image(s)" in capsys.readouterr().err


def test_folder_colorized_into_itself(tiny_weights_file, tmp_path):
    src = tmp_path / "album"
    src.mkdir()
    shutil.copy(FIXTURES / "deoldify_tiny_pipeline_in.png", src / "p.png")
    args = ["image", str(src), "-o", str(src), "-m", str(tiny_weights_file), "-r", "4", "-q"]
    assert main(args) == EXIT_OK
    assert (src / "album" / "p.png").is_file()
    assert main(args) == EXIT_OK  # the earlier output is not read back as an input
    assert not (src / "album" / "album").exists()
