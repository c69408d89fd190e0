"""`colorize image` keeps only what it may keep, and replaces only what it wrote (issues 19 and 14).

Every case runs the command as a user does, on both code paths (`--pipeline off`, the simple path,
and `--pipeline on`, which runs on the CPU too), with the bundled compact model at a small render
factor. The pictures come from tests/hostile_files.py (seeded, a few kB each).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorizer_lib import jobs
from colorizer_lib.cli import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, build_parser, main
from colorizer_lib.colorizer import Colorizer
from colorizer_lib.errors import BatchError, InputError
from colorizer_lib.io import read_provenance, save_image
from colorizer_lib.registry import list_specs
from tests import hostile_files
from tests.http_server import closed_port_url

COLORIZE = ["--model", "compact", "--device", "cpu", "--runtime", "torch"]


@pytest.fixture(params=["off", "on"])
def pipeline(request) -> list[str]:
    return ["--pipeline", request.param]


@pytest.fixture(scope="module")
def compact():
    return Colorizer.from_pretrained("compact", device="cpu")


def _run(*args: str) -> int:
    return main(["image", *args, *COLORIZE])


def _photo(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    hostile_files.grey_scene(seed=seed).save(path, quality=90)
    return path


def test_resume_refuses_an_output_made_from_another_photo_of_the_same_name(tmp_path, pipeline, capsys):
    a, b = _photo(tmp_path / "a" / "photo.jpg", 1), _photo(tmp_path / "b" / "photo.jpg", 2)
    out = tmp_path / "out"
    assert _run(str(a), "-o", str(out), "-r", "8", *pipeline) == EXIT_OK
    made_from_a = (out / "photo.jpg").read_bytes()
    meta = read_provenance(out / "photo.jpg")
    assert meta[jobs.SOURCE_SIZE] == str(a.stat().st_size)
    assert meta[jobs.SOURCE_SHA256] == jobs.source_identity(str(a))[jobs.SOURCE_SHA256]

    capsys.readouterr()
    assert _run(str(b), "-o", str(out), "-r", "8", *pipeline) == EXIT_PARTIAL
    err = capsys.readouterr().err
    assert "0 skipped, 1 failed" in err and "colorized from a file of" in err and "--overwrite" in err
    assert (out / "photo.jpg").read_bytes() == made_from_a  # a's result is kept

    assert _run(str(a), "-o", str(out), "-r", "8", *pipeline) == EXIT_OK  # the same photo: finished
    assert "1 skipped" in capsys.readouterr().err

    assert _run(str(b), "-o", str(out), "-r", "8", "--overwrite", *pipeline) == EXIT_OK
    assert read_provenance(out / "photo.jpg")[jobs.SOURCE_SHA256] == jobs.source_identity(str(b))[jobs.SOURCE_SHA256]


def test_a_result_saved_from_python_is_recognised_by_the_command(tmp_path, compact, capsys):
    photo = _photo(tmp_path / "photo.jpg", 11)
    out = tmp_path / "out"
    compact.colorize(str(photo), render_factor=8).save(out / "photo.jpg")
    assert read_provenance(out / "photo.jpg")[jobs.SOURCE_SHA256] == jobs.source_identity(str(photo))[jobs.SOURCE_SHA256]
    assert _run(str(photo), "-o", str(out), "-r", "8") == EXIT_OK
    assert "1 skipped" in capsys.readouterr().err
    # from bytes there is no file to identify: the command keeps it and says why
    compact.colorize(photo.read_bytes(), render_factor=8).save(out / "photo.jpg")
    assert _run(str(photo), "-o", str(out), "-r", "8") == EXIT_PARTIAL
    assert "does not record which input" in capsys.readouterr().err


def test_device_codecs_record_the_input_too(tmp_path, compact):
    """The pipelined path's device JPEG codecs (torchvision's, here on the CPU) write the same
    input record as the other writers."""
    pytest.importorskip("torchvision")
    from colorizer_lib.jobs import FileJob
    from colorizer_lib.photos import colorize_jobs_pipelined

    photo = _photo(tmp_path / "photo.jpg", 12)
    job = FileJob(str(photo), tmp_path / "out" / "photo.jpg")
    stats = colorize_jobs_pipelined(compact, [job], render_factor=8, encoder="torchvision", decoder="torchvision")
    assert stats.failures == [] and stats.outputs == [job.output.resolve()]
    meta = read_provenance(job.output)
    assert meta[jobs.SOURCE_SIZE] == str(photo.stat().st_size)
    assert meta[jobs.SOURCE_SHA256] == jobs.source_identity(str(photo))[jobs.SOURCE_SHA256]


def test_an_unrelated_existing_file_is_never_replaced(tmp_path, pipeline, capsys):
    photo = _photo(tmp_path / "photo.jpg", 1)
    keep = tmp_path / "keep.jpg"
    Image.new("RGB", (30, 20), (200, 30, 30)).save(keep)
    before = keep.read_bytes()
    for extra in ([], ["--overwrite"]):
        capsys.readouterr()
        assert _run(str(photo), "-o", str(keep), *extra, *pipeline) == EXIT_PARTIAL
        err = capsys.readouterr().err
        assert "was not written by Colorizer" in err and "-> nothing written" in err
        assert keep.read_bytes() == before


def test_another_render_factor_keeps_the_earlier_output_and_its_comparison(tmp_path, pipeline, capsys):
    photo = _photo(tmp_path / "in" / "photo.png", 3)
    out = tmp_path / "out"
    assert _run(str(photo), "-o", str(out), "-r", "8", "--compare", *pipeline) == EXIT_OK
    result, compare = out / "photo.png", out / "photo.compare.jpg"
    first = result.read_bytes(), compare.read_bytes()

    capsys.readouterr()
    assert _run(str(photo), "-o", str(out), "-r", "10", "--compare", *pipeline) == EXIT_PARTIAL
    err = capsys.readouterr().err
    assert "render factor 8" in err and "render factor 10" in err and "--overwrite" in err
    assert (result.read_bytes(), compare.read_bytes()) == first

    assert _run(str(photo), "-o", str(out), "-r", "10", "--compare", "--overwrite", *pipeline) == EXIT_OK
    assert read_provenance(result)["colorizer:render_factor"] == "10"
    assert read_provenance(compare)["colorizer:render_factor"] == "10"
    # replaced without --compare: the old comparison (labelled render factor 10) goes with it
    assert _run(str(photo), "-o", str(out), "-r", "12", "--overwrite", *pipeline) == EXIT_OK
    assert read_provenance(result)["colorizer:render_factor"] == "12"
    assert not compare.exists()


def test_a_missing_comparison_is_written_on_the_rerun(tmp_path, pipeline, capsys):
    photo = _photo(tmp_path / "photo.jpg", 4)
    out = tmp_path / "out"
    assert _run(str(photo), "-o", str(out), "-r", "8", "--compare", *pipeline) == EXIT_OK
    (out / "photo.compare.jpg").unlink()  # what a failed comparison write leaves
    capsys.readouterr()
    assert _run(str(photo), "-o", str(out), "-r", "8", "--compare", *pipeline) == EXIT_OK
    assert "1 colorized, 0 skipped" in capsys.readouterr().err
    assert read_provenance(out / "photo.compare.jpg")["colorizer:model"] == "compact"


def test_stale_temporary_files_of_a_killed_run_are_removed(tmp_path, pipeline, capsys):
    photo = _photo(tmp_path / "photo.jpg", 5)
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [out / ".photo.jpg.k3x9_q2z.part", out / f".photo.jpg.{dead.pid}-a1b2c3d4.part",
             out / ".other.png.0123abcd.part"]
    alive = out / f".photo.jpg.{os.getppid()}-zzzzzzzz.part"  # a writer that is still running
    mine = out / ".notes.txt.12345678.part"  # not one of our output names
    for path in (*stale, alive, mine):
        path.write_bytes(b"half a picture")
    assert _run(str(photo), "-o", str(out), "-r", "8", *pipeline) == EXIT_OK
    assert "removed 3 unfinished temporary file(s)" in capsys.readouterr().err
    assert not any(p.exists() for p in stale)
    assert alive.exists() and mine.exists()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["photo.jpg"]


def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path, pipeline, capsys):
    photo = _photo(tmp_path / "photo.jpg", 6)
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the output folder should be")
    assert _run(str(photo), "-o", str(blocker / "out"), *pipeline) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"cannot write into the output folder {blocker / 'out'}" in err and "Nothing was colorized" in err
    assert "colorizing" not in err and ".part" not in err


def _run_into_unwritable_folder(tmp_path, monkeypatch, capsys, error: type[OSError], errno: int, reason: str
                                ) -> tuple[Path, str]:
    """``colorize image`` into an output folder whose probe file cannot be created (``error(errno, reason)``):
    root ignores folder permissions, so the failure is simulated where the check creates its probe file
    (the same call that fails on a real read-only or unwritable folder). Returns the folder and stderr."""
    photo = _photo(tmp_path / "photo.jpg", 7)
    out = tmp_path / "out"
    out.mkdir()

    def refuse(*args, dir=None, **kwargs):
        raise error(errno, reason, str(dir))

    monkeypatch.setattr(jobs.tempfile, "mkstemp", refuse)
    assert _run(str(photo), "-o", str(out)) == EXIT_USAGE
    return out, capsys.readouterr().err


def test_a_read_only_output_folder_is_refused_up_front(tmp_path, monkeypatch, capsys):
    out, err = _run_into_unwritable_folder(tmp_path, monkeypatch, capsys, OSError, 30, "Read-only file system")
    assert f"cannot write into the output folder {out} (Read-only file system" in err
    assert "mounted read-only" in err and ".part" not in err
    assert list(out.iterdir()) == []


def test_a_folder_without_write_permission_is_refused_up_front(tmp_path, monkeypatch, capsys):
    out, err = _run_into_unwritable_folder(tmp_path, monkeypatch, capsys, PermissionError, 13, "Permission denied")
    assert f"make it writable (chmod u+w {out})" in err


def test_a_failed_write_names_the_output_and_its_folder_not_a_temporary_file(tmp_path, monkeypatch):
    def denied(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(Path(dir) / ".x.jpg.1-abcdefgh.part"))

    monkeypatch.setattr("colorizer_lib.io.save.tempfile.mkstemp", denied)
    with pytest.raises(InputError) as caught:
        save_image(Image.new("RGB", (4, 4)), tmp_path / "x.jpg")
    message = str(caught.value)
    assert "Permission denied" in message and str(tmp_path) in message and ".part" not in message


def test_a_colour_photo_is_said_once_and_an_animation_warns_in_one_line(tmp_path, pipeline, capsys):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(colour).save(src / "holiday.jpg", quality=95)
    grey = np.asarray(hostile_files.grey_scene(seed=9), dtype=np.float32)[..., None] / 255
    sepia = np.round(grey * np.array([255, 200, 140], np.float32)).astype(np.uint8)  # a toned print
    Image.fromarray(sepia).save(src / "sepia.png")
    _photo(src / "grey.jpg", 8)
    frames = [hostile_files.grey_scene(seed=s).convert("P") for s in range(3)]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:])
    assert _run(str(src), "-o", str(tmp_path / "out"), "-r", "8", *pipeline) == EXIT_OK
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "already in colour" in line]
    assert len(notes) == 1 and "holiday.jpg" in notes[0] and "input file is not changed" in notes[0]
    gif_lines = [line for line in err.splitlines() if "anim.gif" in line]
    assert len(gif_lines) == 1 and gif_lines[0].startswith("colorize: warning:") and "3 frames" in gif_lines[0]
    assert "warnings.warn" not in err and "UserWarning" not in err


def test_toned_and_grey_pictures_are_not_called_colour():
    """The historical examples (scanned prints, several with a warm tint) are monochrome; a scene of
    muted colours that share their brightness (sky, grass, roof) is colour, also as a JPEG."""
    import io

    from colorizer_lib.io import has_colour

    examples = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.jpg"))
    assert len(examples) == 9
    for path in examples:
        with Image.open(path) as img:
            assert not has_colour(img), path
    assert not has_colour(hostile_files.grey_scene().convert("RGB"))

    grey = np.asarray(hostile_files.grey_scene(480, 360), dtype=np.float32)[..., None]
    hues = np.zeros((360, 480, 3), np.float32)
    hues[:120] = (-14, -4, 22)  # bluish sky
    hues[120:240, :240] = (-10, 14, -8)  # greenish field
    hues[240:, 240:] = (18, -6, -10)  # reddish roof
    scene = Image.fromarray(np.clip(np.round(grey + hues), 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    scene.save(buf, "JPEG", quality=85)
    assert has_colour(scene) and has_colour(Image.open(io.BytesIO(buf.getvalue())))


def test_a_failed_single_input_names_no_output(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a picture at all")
    assert _run(str(bad), "-o", str(tmp_path / "out.jpg")) == EXIT_PARTIAL
    err = capsys.readouterr().err
    assert "0 colorized, 0 skipped, 1 failed -> nothing written" in err
    assert not (tmp_path / "out.jpg").exists()


def test_help_gives_each_models_own_default_render_factor(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["image", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for spec in list_specs():
        assert f"{spec.name} {spec.default_render_factor}" in text
    assert "35 for photos" not in text


def test_provenance_of_a_very_large_output_is_read_from_its_headers(tmp_path):
    """A resume check on the output of a photo over Pillow's decompression-bomb limit (which would
    make Image.open refuse it): only the headers are read, the picture is never decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    side = 20_000  # 400 megapixels, over twice Pillow's limit
    text = b"colorizer:model\0compact"
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
           + chunk(b"tEXt", text) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    path = tmp_path / "huge.png"
    path.write_bytes(png)
    assert side * side > 2 * Image.MAX_IMAGE_PIXELS
    assert read_provenance(path)["colorizer:model"] == "compact"


def test_colorize_batch_gives_per_item_results_when_one_url_is_unreachable(tmp_path, compact):
    good = [_photo(tmp_path / f"p{i}.jpg", i) for i in range(3)]
    sources = [str(good[0]), closed_port_url() + "/photo.jpg", good[1], str(good[2])]
    results = compact.colorize_batch(sources, render_factor=8, batch_size=2, errors="return")
    assert len(results) == 4 and isinstance(results[1], InputError) and "photo.jpg" in str(results[1])
    for i in (0, 2, 3):
        assert results[i].image.size == (48, 40) and results[i].render_factor == 8
    # the same pictures alone give the same results: the failure shifted nothing in the batches
    alone = compact.colorize(good[1], render_factor=8)
    assert np.array_equal(np.asarray(alone.image), np.asarray(results[2].image))

    with pytest.raises(BatchError) as caught:  # the old call: still raises an InputError...
        compact.colorize_batch(sources, render_factor=8)
    assert isinstance(caught.value, InputError) and "1 of 4" in str(caught.value) and "item 1" in str(caught.value)
    kept = caught.value.results  # ...which now carries the good results
    assert [isinstance(r, InputError) for r in kept] == [False, True, False, False]
    assert caught.value.errors[0][0] == 1
    assert len(compact.colorize_batch([good[0], good[1]], render_factor=8)) == 2  # all good: a plain list


def test_bench_quality_shows_progress_and_says_the_size_it_measures(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (300, 1400, 3), dtype=np.uint8)).save(photos / "wide.png")
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(photos / "small.png")
    assert main(["bench-quality", str(photos), "--model", "compact", "--device", "cpu", "--render-factor", "4"]) == 0
    captured = capsys.readouterr()
    assert "at most 1024 px on the long side (--max-side 0: full resolution)" in captured.err
    assert "2/2" in captured.err  # the progress bar counted both photos
    assert "2 photos" in captured.out


def test_bench_quality_cap_is_what_the_metrics_see(tmp_path):
    from colorizer_lib.training.evaluate import load_rgb

    path = tmp_path / "wide.png"
    Image.new("RGB", (1400, 300), (10, 120, 200)).save(path)
    assert load_rgb(path, 1024).shape[-2:] == (219, 1024)
    assert load_rgb(path, None).shape[-2:] == (300, 1400)

