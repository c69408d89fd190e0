"""`colorize image --pipeline on` writes what `--pipeline off` writes.

The same files under the same names, the same pixels (exactly: both paths make the model input and the
merge's luminance with one luma function and merge through the one `merge.merge`; only compiled kernels,
which sum in another order, may move a value by one level), the same provenance, ICC profile and EXIF,
the same failures and exit code; both resume each other's outputs and never write over an input.

Everything runs on the CPU: there the pipeline uses PIL's codecs, and torchvision's codec paths
(nvJPEG on a GPU) run through torchvision's CPU codecs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

import colorizer_lib.colorizer as colorizer_module
from colorizer_lib import accel, cli
from colorizer_lib.photos import gpu, run as photos_run
from colorizer_lib.cli import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, main
from colorizer_lib.io import read_provenance
from colorizer_lib.jobs import FileJob
from colorizer_lib.photos import colorize_jobs_pipelined, resolved_paths, use_pipeline
from tests.http_server import serve_directory

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
LAB = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # not an RGB profile: dropped
MAKE, DATETIME, ORIENTATION = 0x010F, 0x0132, 0x0112
TIFF_STRIP_TAGS = (273, 279)  # StripOffsets, StripByteCounts
COLORIZE = ["--model", "compact", "--device", "cpu", "--runtime", "torch", "-r", "8"]
# What `colorize image ALBUM` writes for the album below (broken.jpg and junk.png fail).
EXPECTED = ["album/alpha.png", "album/deep.png", "album/nested/wide.png", "album/old.png", "album/plain.jpg",
            "album/profiled.jpg", "album/rotated.jpg", "album/scan.tif"]


def _scene(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A grey ``(height, width)`` float picture in [0, 1] with edges, gradients and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    grey = 0.5 + 0.25 * np.sin(xx / (6.0 + seed)) + 0.15 * np.cos(yy / 5.0) + rng.normal(0, 0.03, xx.shape)
    grey[height // 3: height // 2, width // 4: width // 2] = 0.9  # a bright block: sharp edges
    return np.clip(grey, 0, 1)


def _grey8(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.round(_scene(width, height, seed) * 255).astype(np.uint8), "L")


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[MAKE] = "Kodak"
    exif[DATETIME] = "1936:03:01 12:00:00"
    return exif.tobytes()


def make_album(root: Path) -> Path:
    """Small photos of several sizes and kinds, and two files that cannot be read."""
    album = root / "album"
    (album / "nested").mkdir(parents=True)
    _grey8(160, 120, 0).save(album / "plain.jpg", quality=92)
    _grey8(150, 100, 1).convert("RGB").save(album / "rotated.jpg", quality=92, exif=_exif(6))  # shown portrait
    tint = np.stack([np.asarray(_grey8(140, 110, 2))] * 3, axis=-1).astype(int) + [12, 0, -12]  # a colour input
    Image.fromarray(np.clip(tint, 0, 255).astype(np.uint8)).save(album / "profiled.jpg", quality=92, icc_profile=SRGB)
    _grey8(200, 90, 3).save(album / "nested" / "wide.png")
    rgba = _grey8(120, 120, 4).convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, 120).astype(np.uint8), (120, 1))))
    rgba.save(album / "alpha.png")
    Image.fromarray(np.round(_scene(100, 80, 5) * 65535).astype(np.uint16)).save(album / "deep.png")  # 16-bit
    _grey8(90, 130, 6).save(album / "scan.tif")
    _grey8(96, 64, 7).save(album / "old.bmp")
    whole = io.BytesIO()
    _grey8(160, 120, 8).save(whole, "JPEG", quality=92)
    (album / "broken.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) * 2 // 3])  # headers fine, cut short
    (album / "junk.png").write_bytes(b"not a picture at all")
    return album


def run_cli(args: list[str]) -> tuple[int, str, bool]:
    """``main(args)``: exit code, stderr, and whether the pipelined path ran."""
    err = io.StringIO()
    with mock.patch.object(photos_run, "colorize_jobs_pipelined", wraps=gpu.colorize_jobs_pipelined) as spy, \
            contextlib.redirect_stderr(err):
        code = main(args)
    return code, err.getvalue(), spy.called


def outputs(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def assert_same_picture(a: Path, b: Path, tolerance: int = 0) -> None:
    """Same size, mode and pixels within ``tolerance`` levels (default 0: identical; lossless formats) or
    what JPEG re-encoding of such differences gives; coloured, not grey passed through."""
    with Image.open(a) as ia, Image.open(b) as ib:
        assert (ia.size, ia.mode) == (ib.size, ib.mode), a.name
        pa, pb = np.asarray(ia).astype(int), np.asarray(ib).astype(int)
        lossy = ia.format == "JPEG"
    diff = np.abs(pa - pb)
    assert diff.max() <= tolerance + 2 * lossy, a.name
    assert (diff > 0).mean() < (0.02 if lossy or tolerance > 1 else 1e-3), a.name
    assert np.abs(pa[..., 0] - pa[..., 2]).max() > 10, a.name  # really colorized


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The album colorized once with each path (batches of 3, so failures fall inside batches)."""
    root = tmp_path_factory.mktemp("pipeline")
    album = make_album(root)
    before = digests(album)
    done = {}
    for mode in ("on", "off"):
        out = root / f"out_{mode}"
        done[mode] = SimpleNamespace(out=out, result=run_cli(["image", str(album), "-o", str(out), "--pipeline", mode,
                                                             "--batch-size", "3", *COLORIZE]))
    return SimpleNamespace(root=root, album=album, before=before, **done)


def test_forced_paths_run_and_fail_alike(runs):
    for mode, pipelined in (("on", True), ("off", False)):
        code, err, used = runs.__dict__[mode].result
        assert used is pipelined, mode
        assert code == EXIT_PARTIAL, err
        assert "done: 8 colorized, 0 skipped, 2 failed" in err
        assert "broken.jpg" in err and "truncated" in err and "junk.png" in err, err
    assert outputs(runs.on.out) == outputs(runs.off.out) == EXPECTED  # no .part leftovers, nothing for the bad files


def test_same_pixels(runs):
    for name in EXPECTED:
        assert_same_picture(runs.on.out / name, runs.off.out / name)
    with Image.open(runs.on.out / "album/rotated.jpg") as img:
        assert img.size == (100, 150)  # EXIF orientation 6 applied
    with Image.open(runs.on.out / "album/alpha.png") as out, Image.open(runs.album / "alpha.png") as src:
        assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], np.asarray(src)[..., 3])


def test_same_metadata(runs):
    for name in EXPECTED:
        on, off = runs.on.out / name, runs.off.out / name
        meta = read_provenance(on)
        assert meta == read_provenance(off), name
        assert meta["colorizer:model"] == "compact" and meta["colorizer:render_factor"] == "8", name
        with Image.open(on) as a, Image.open(off) as b:
            assert a.info.get("icc_profile") == b.info.get("icc_profile"), name
            exif_a, exif_b = dict(a.getexif()), dict(b.getexif())
        for layout in TIFF_STRIP_TAGS if name.endswith(".tif") else ():  # the files' own layout: sizes differ
            exif_a.pop(layout), exif_b.pop(layout)
        assert exif_a == exif_b, name
    with Image.open(runs.on.out / "album/profiled.jpg") as img:
        assert img.info["icc_profile"] == SRGB
    with Image.open(runs.on.out / "album/rotated.jpg") as img:
        exif = img.getexif()
        assert exif[MAKE] == "Kodak" and exif[DATETIME] == "1936:03:01 12:00:00"
        assert exif.get(ORIENTATION, 1) == 1  # the pixels are upright now


def test_each_path_resumes_the_others_outputs_and_inputs_stay(runs):
    for mode, out in (("on", runs.off.out), ("off", runs.on.out)):
        before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
        code, err, _ = run_cli(["image", str(runs.album), "-o", str(out), "--pipeline", mode, *COLORIZE])
        assert code == EXIT_PARTIAL  # the two bad files are tried again, and fail again
        assert "skipping 8 image(s)" in err and "done: 0 colorized, 8 skipped, 2 failed" in err
        assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    assert digests(runs.album) == runs.before


def test_compare_watermark_format_and_urls(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _grey8(130, 100, 9).save(site / "street.png")
    shutil.copy(make_album(tmp_path) / "rotated.jpg", tmp_path / "rotated.jpg")
    with serve_directory(site) as base:
        for mode in ("on", "off"):
            code, err, used = run_cli(["image", f"{base}/street.png", f"{base}/missing.png", str(tmp_path / "rotated.jpg"),
                                       "-o", str(tmp_path / mode), "--pipeline", mode, "--compare", "--watermark",
                                       "--format", "tif", *COLORIZE])
            assert code == EXIT_PARTIAL and "missing.png" in err and used is (mode == "on")
    names = ["rotated.compare.jpg", "rotated.tif", "street.compare.jpg", "street.tif"]
    assert outputs(tmp_path / "on") == outputs(tmp_path / "off") == names
    for name in names:
        assert_same_picture(tmp_path / "on" / name, tmp_path / "off" / name)
        assert read_provenance(tmp_path / "on" / name) == read_provenance(tmp_path / "off" / name)


def test_progress_advances_once_per_photo(tmp_path, monkeypatch):
    album = make_album(tmp_path)
    steps = []
    # the command's bar (colorize_batch draws none: its progress is off, so its bar counts nothing)
    monkeypatch.setattr(colorizer_module, "progress_bar", lambda total, enabled=True, **kwargs: SimpleNamespace(
        update=steps.append if enabled else (lambda n: None), close=lambda: None))
    for mode in ("on", "off"):
        steps.clear()
        code, _, _ = run_cli(["image", str(album / "plain.jpg"), str(album / "junk.png"), str(album / "deep.png"),
                              "-o", str(tmp_path / mode), "--pipeline", mode, *COLORIZE])
        assert code == EXIT_PARTIAL and steps == [1, 1, 1], mode


def test_auto_takes_the_pipeline_on_cuda_for_two_or_more_images():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert use_pipeline("auto", cuda, 2) and use_pipeline("auto", cuda, 500)
    assert not use_pipeline("auto", cuda, 1)
    assert not use_pipeline("auto", cpu, 500)  # the model dominates on a CPU
    assert use_pipeline("on", cpu, 1) and not use_pipeline("off", cuda, 500)
    assert cli.build_parser().parse_args(["image", "x.jpg"]).pipeline == "auto"


def test_auto_keeps_the_simple_path_on_cpu(tmp_path):
    album = make_album(tmp_path)
    code, _, used = run_cli(["image", str(album / "plain.jpg"), str(album / "old.bmp"), "-o", str(tmp_path / "o"),
                             *COLORIZE])
    assert code == EXIT_OK and not used


def test_compile_on_gives_the_same_pictures_and_says_so(tmp_path, monkeypatch):
    """`--compile on` runs the job through torch.compile (traced with the aot_eager backend here, which
    generates no kernels) and writes what `--compile off` writes; the user is told about the wait."""
    album = make_album(tmp_path)
    photos = [str(album / "plain.jpg"), str(album / "old.bmp"), str(album / "scan.tif")]
    code, _, _ = run_cli(["image", *photos, "-o", str(tmp_path / "off"), "--compile", "off", *COLORIZE])
    assert code == EXIT_OK
    compiles = []
    real = torch.compile

    def traced(model, **kwargs):
        compiles.append(kwargs)
        return real(model, dynamic=False, backend="aot_eager")

    monkeypatch.setattr(torch, "compile", traced)
    code, err, _ = run_cli(["image", *photos, "-o", str(tmp_path / "on"), "--compile", "on", "--batch-size", "2",
                            *COLORIZE])
    assert code == EXIT_OK and len(compiles) == 1 and "compiling the model" in err
    for name in ("plain.jpg", "old.png", "scan.tif"):
        assert_same_picture(tmp_path / "on" / name, tmp_path / "off" / name, tolerance=1)  # compiled kernels sum in another order


def test_compile_choices():
    cuda, cpu = SimpleNamespace(device=torch.device("cuda")), SimpleNamespace(device=torch.device("cpu"))
    assert accel.compile_mode("auto", cuda, 10_000) == "default"
    assert accel.compile_mode("auto", cuda, 200) is None  # a folder of photos: the compile would not pay
    assert accel.compile_mode("auto", cpu, 10_000) is None
    assert accel.compile_mode("on", cpu, 1) == "default" and accel.compile_mode("off", cuda, 10**6) is None
    assert accel.compile_mode("max-autotune", cuda, 1) == "max-autotune"
    assert "7 minutes" in accel.compile_message("max-autotune", torch.device("cuda"))


def test_compile_and_onnx_runtime_exclude_each_other(tmp_path):
    album = make_album(tmp_path)
    code, err, _ = run_cli(["image", str(album / "plain.jpg"), "-o", str(tmp_path / "o"), "--compile", "on",
                            "--model", "compact", "--device", "cpu", "--runtime", "onnx", "-r", "8"])
    assert code == EXIT_USAGE and "--runtime onnx" in err and not (tmp_path / "o").exists()


# -- the pipeline's own guarantees, through the function the CLI calls ------------------------------


@pytest.fixture(scope="module")
def compact():
    from colorizer_lib.colorizer import Colorizer

    return Colorizer.from_pretrained("compact", device="cpu", progress=False)


def reference(col, job: FileJob, folder: Path) -> Path:
    """What the simple path writes for ``job``, under ``folder``."""
    target = FileJob(job.source, folder / job.output.name)
    return target.save(col.colorize(job.source, 8))


def test_device_codecs_keep_metadata_and_report_bad_files(tmp_path, compact):
    pytest.importorskip("torchvision")  # the [train] extra installs it; on CUDA these are nvJPEG
    album = make_album(tmp_path)
    _grey8(120, 90, 10).save(album / "lab.jpg", quality=92, icc_profile=LAB)
    out = tmp_path / "out"
    jobs = [FileJob(str(album / name), out / f"{Path(name).stem}.jpg")
            for name in ("plain.jpg", "broken.jpg", "rotated.jpg", "profiled.jpg", "alpha.png", "lab.jpg", "deep.png")]
    jobs.append(FileJob(str(album / "plain.jpg"), out / "plain2.jpg", compare=out / "plain2.compare.jpg"))
    assert gpu._read_plain_jpeg(album / "broken.jpg") is None  # cut short: left to the CPU, which says so
    assert gpu._read_plain_jpeg(album / "rotated.jpg").exif is not None
    finished = []
    stats = colorize_jobs_pipelined(compact, jobs, render_factor=8, batch_size=3, workers=2, encoder="torchvision",
                                    decoder="torchvision", on_done=lambda job, path, error: finished.append(job))
    assert (stats.encoder, stats.decoder) == ("torchvision", "torchvision")
    assert sorted(j.output.name for j in finished) == sorted(j.output.name for j in jobs)
    failed = dict(stats.failures)
    assert list(failed) == [str(album / "broken.jpg"), str(album / "alpha.png")]  # in job order
    assert "truncated" in failed[str(album / "broken.jpg")]
    assert "transparency" in failed[str(album / "alpha.png")]  # as the simple path: no alpha in a JPEG
    written = [j for j in jobs if str(j.source) not in failed]
    assert stats.outputs == [j.output.resolve() for j in written]
    for job in written:
        ref = reference(compact, job, tmp_path / "ref")
        with Image.open(job.output) as got, Image.open(ref) as want:
            assert got.size == want.size, job.output.name
            diff = np.abs(np.asarray(got).astype(float) - np.asarray(want).astype(float))
            assert diff.mean() < 2.0, job.output.name  # two JPEG encoders at quality 95: the same picture
            assert got.info.get("icc_profile") == want.info.get("icc_profile"), job.output.name
            assert dict(got.getexif()) == dict(want.getexif()), job.output.name
        assert read_provenance(job.output) == read_provenance(ref)
    with Image.open(out / "profiled.jpg") as a, Image.open(out / "lab.jpg") as b, Image.open(out / "rotated.jpg") as c:
        assert a.info["icc_profile"] == SRGB and "icc_profile" not in b.info and c.getexif()[MAKE] == "Kodak"
    assert (out / "plain2.compare.jpg").is_file()


def test_a_file_the_device_decoder_rejects_is_decoded_on_the_cpu(tmp_path, compact, monkeypatch):
    tv_io = pytest.importorskip("torchvision.io")
    album = make_album(tmp_path)
    rejected = torch.frombuffer(bytearray((album / "rotated.jpg").read_bytes()), dtype=torch.uint8)
    real, calls = tv_io.decode_jpeg, []

    def picky_decode(streams, **kwargs):
        calls.append(len(streams))
        if any(s.numel() == rejected.numel() and torch.equal(s, rejected) for s in streams):
            raise RuntimeError("unsupported JPEG")
        return real(streams, **kwargs)

    monkeypatch.setattr(tv_io, "decode_jpeg", picky_decode)
    jobs = [FileJob(str(album / n), tmp_path / "out" / f"{Path(n).stem}.png") for n in ("plain.jpg", "rotated.jpg")]
    stats = colorize_jobs_pipelined(compact, jobs, render_factor=8, batch_size=2, workers=2, decoder="torchvision")
    assert calls == [2, 1, 1] and not stats.failures  # the batch, then one by one
    for job in jobs:  # plain.jpg went through torchvision's libjpeg, rotated.jpg through PIL's
        assert_same_picture(job.output, reference(compact, job, tmp_path / "ref"), tolerance=2)


def test_inputs_in_forbid_are_never_written(tmp_path, compact):
    album = make_album(tmp_path)
    before = (album / "plain.jpg").read_bytes()
    job = FileJob(str(album / "plain.jpg"), album / "plain.jpg")
    stats = colorize_jobs_pipelined(compact, [job], render_factor=8, forbid=[album / "plain.jpg"])
    assert stats.outputs == [] and "would be overwritten" in stats.failures[0][1]
    assert (album / "plain.jpg").read_bytes() == before


def test_guarded_finds_a_jobs_protected_targets_however_spelled(tmp_path):
    (tmp_path / "a").mkdir()
    protected = resolved_paths([tmp_path / "a" / "x.jpg", tmp_path / "y.compare.jpg"])
    assert FileJob("in.png", tmp_path / "a" / ".." / "a" / "x.jpg").guarded(protected) == (
        tmp_path / "a" / ".." / "a" / "x.jpg",)
    job = FileJob("in.png", tmp_path / "y.jpg", compare=tmp_path / "y.compare.jpg")
    assert job.guarded(protected) == (tmp_path / "y.compare.jpg",)
    assert FileJob("in.png", tmp_path / "z.jpg").guarded(protected) == ()


def test_save_jpeg_bytes_writes_the_metadata_pil_writes(tmp_path):
    from colorizer_lib.io import save_image, save_jpeg_bytes

    picture = _grey8(64, 48).convert("RGB")
    encoded = io.BytesIO()
    picture.save(encoded, "JPEG", quality=95)
    provenance = {"Software": "Colorizer test", "colorizer:model": "m"}
    for icc in (SRGB, SRGB + bytes(70_000)):  # the second needs two ICC_PROFILE segments
        ours = save_jpeg_bytes(encoded.getvalue(), tmp_path / "ours.jpg", provenance=provenance, icc_profile=icc,
                               exif=_exif(1))
        pils = save_image(picture, tmp_path / "pil.jpg", provenance=provenance, icc_profile=icc, exif=_exif(1))
        assert ours.read_bytes() == pils.read_bytes()
