"""A seeded, bounded mutation fuzzer: `colorize image FOLDER` on good and damaged pictures.

The folder holds one good picture of each kind (JPEG, JPEG with EXIF, PNG, TIFF, WEBP), 30 mutants
of them (tests/hostile_files.py: flipped header, EXIF or TIFF-tag bytes, wrong lengths, truncation,
junk), three known-broken files (a TIFF page without its width tag, a JPEG whose EXIF points past its
end, half a WEBP) and a symbolic link that loops. The command runs as a user runs it (a separate
process), on the simple and on the pipelined path, then again after a picture was added. Whatever a
mutant does, the run must end with no traceback, every good file done, every other file either done
or named in an error line, exit code 1, and nothing half-written.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from colorizer_lib import jobs
from colorizer_lib.io import read_provenance
from tests import hostile_files

REPO = Path(__file__).resolve().parents[1]
SEED, MUTANTS = 2026, 30


def _colorize(folder: Path, out: Path, pipeline: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "colorizer_lib.cli", "image", str(folder), "-o", str(out), "--model", "compact",
         "--device", "cpu", "--runtime", "torch", "-r", "4", "--pipeline", pipeline, "--batch-size", "8"],
        capture_output=True, text=True, env=env, timeout=600, cwd=REPO)


def _album(folder: Path) -> tuple[list[Path], list[Path]]:
    """(good pictures, pictures that must fail) written to ``folder``; the mutants are neither."""
    good = hostile_files.good_pictures(folder)
    hostile_files.mutants(folder, SEED, MUTANTS)
    bad = {"tiff-no-width.tif": hostile_files.broken_tiff_width_tag(), "half.webp": hostile_files.broken_webp()}
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    (folder / "exif-past-end.jpg").write_bytes(hostile_files.broken_exif_jpeg())
    os.symlink("loop.jpg", folder / "loop.jpg")
    return good, [folder / name for name in (*bad, "loop.jpg")]


def _check(folder: Path, out: Path, run: subprocess.CompletedProcess, must_do: list[Path], must_fail: list[Path]):
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode == 1, run.stderr
    named = {m.group(1) for m in re.finditer(r"^colorize: error: (.+?): ", run.stderr, re.MULTILINE)}
    done = set()
    for source in sorted(folder.iterdir()):
        output = out / folder.name / source.name  # every name here is lower case and a format we write
        if output.exists():
            meta = read_provenance(output)
            assert meta[jobs.SOURCE_SHA256] == jobs.source_identity(str(source))[jobs.SOURCE_SHA256]
            with Image.open(output) as img:  # complete: decodes to the end
                img.load()
                assert img.mode == "RGB"
            done.add(source)
            assert str(source) not in named, f"{source} is done and reported as failed"
        else:
            assert str(source) in named, f"{source} is neither done nor named:\n{run.stderr}"
    assert set(must_do) <= done
    assert not (set(must_fail) & done)
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".part") or p.name.startswith(".colorizer")]
    assert leftovers == []
    summary = re.search(r"done: (\d+) colorized, (\d+) skipped, (\d+) failed", run.stderr)
    assert summary is not None and int(summary.group(3)) == len(named)
    return done, summary


@pytest.mark.parametrize("pipeline", ["off", "on"])
def test_mutated_pictures_are_reported_and_the_rest_done(tmp_path, pipeline):
    folder = tmp_path / "album"
    good, bad = _album(folder)
    out = tmp_path / "out"
    first = _colorize(folder, out, pipeline)
    done, summary = _check(folder, out, first, good, bad)
    assert int(summary.group(1)) == len(done)

    # rerun after a picture was added: the earlier outputs (some carry a damaged input's EXIF) are
    # checked and skipped, the new one done, the bad ones named again
    added = folder / "added.jpg"
    added.write_bytes(hostile_files.encoded("exif.jpg", seed=99))
    second = _colorize(folder, out, pipeline)
    done_again, summary = _check(folder, out, second, [*good, added], bad)
    assert done_again == done | {added}
    assert (int(summary.group(1)), int(summary.group(2))) == (1, len(done))


def test_the_mutants_are_seeded():
    a = hostile_files.mutate(hostile_files.encoded("tif"), "tif", random.Random(7))
    b = hostile_files.mutate(hostile_files.encoded("tif"), "tif", random.Random(7))
    assert a == b and a[0] != hostile_files.encoded("tif")
