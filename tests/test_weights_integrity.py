"""Integrity of weights, the cache and the messages about them (issues 19 and 14), tested as a user meets them:
hostile files built here (seeded and bounded in size), downloads from a real HTTP server on 127.0.0.1, the
``colorize`` command run in-process or as real processes.

The hostile bodies are what a misbehaving mirror answers with a 200: a rate-limit text, a JSON error, and
half of a real weights file (in the zip format of torch >= 1.6 and in the legacy format of DeOldify's released
files) served with a matching ``Content-Length``.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorizer_lib import cli, hub, registry
from colorizer_lib.colorizer import Colorizer
from colorizer_lib.errors import (DownloadError, ModelArgumentError, NonFiniteOutputError,
                                  NotWeightsError, WeightsError)
from colorizer_lib.models import build_generator
from tests.http_server import closed_port_url, local_http_server

REPO_ROOT = Path(__file__).resolve().parents[1]
ARCH = "deoldify-deep-tiny"  # DeOldify's deep U-Net, a few hundred kB: real loading and verification, fast
NAME = "tinytest"


def tiny_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return build_generator(ARCH).eval().state_dict()


def saved(state: dict[str, torch.Tensor], legacy: bool = False) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


@functools.lru_cache(maxsize=1)
def good_file() -> bytes:
    return saved(tiny_state())


@functools.lru_cache(maxsize=1)
def hostile_bodies() -> dict[str, bytes]:
    """What a broken mirror sends with a 200 in place of the weights (each smaller than the real file)."""
    good, legacy = good_file(), saved(tiny_state(), legacy=True)  # the legacy format's bytes vary per call
    return {
        "text": b"rate limit exceeded\n",
        "json": json.dumps({"error": {"code": 429, "message": "Too Many Requests"}}).encode(),
        "half": good[: len(good) // 2],
        "legacy-half": legacy[: len(legacy) // 2],
    }


HOSTILE = ["half", "json", "legacy-half", "text"]


@pytest.fixture(autouse=True)
def _fast_and_offline(monkeypatch):
    monkeypatch.setattr(hub.fetch, "RETRY_DELAY_S", 0.01)
    monkeypatch.delenv("COLORIZER_MIRROR", raising=False)


@pytest.fixture
def site(tmp_path) -> Path:
    root = tmp_path / "site"
    (root / "good").mkdir(parents=True)
    (root / "good" / f"{NAME}.pth").write_bytes(good_file())
    for kind, body in hostile_bodies().items():
        (root / kind).mkdir()
        (root / kind / f"{NAME}.pth").write_bytes(body)
    return root


@pytest.fixture
def server(site):
    with local_http_server(site) as srv:
        yield srv


def register_tiny(monkeypatch, urls) -> registry.WeightSpec:
    spec = registry.WeightSpec(name=NAME, arch=ARCH, filename=f"{NAME}.pth", urls=tuple(urls), default_render_factor=4,
                               description="a tiny DeOldify U-Net for tests", license="test")
    monkeypatch.setattr(registry, "_SPECS", tuple(s for s in registry._SPECS if s.name != NAME) + (spec,))
    return spec


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    grey = np.add.outer(np.arange(48), np.arange(64)).astype(np.uint8) * 2
    Image.fromarray(grey, "L").save(path)
    return path


def leftovers(folder: Path) -> list[str]:
    """Lock files and partial downloads left in a cache folder."""
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith((".lock", ".part", ".softlock")))


# ------------------------------------------------------------------------------- a poisoned download


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_poisoned_mirror_never_leaves_its_body_under_the_final_name(kind, server, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    register_tiny(monkeypatch, [server.url(f"{kind}/{NAME}.pth"), server.url(f"good/{NAME}.pth")])
    col = Colorizer.from_pretrained(NAME, device="cpu", cache_dir=cache, progress=True)
    assert col.name == NAME
    # the next mirror's file was verified and kept; the poisoned body is kept aside for inspection, named
    assert (cache / f"{NAME}.pth").read_bytes() == good_file()
    rejected = cache / f"{NAME}.pth.rejected"
    assert rejected.read_bytes() == hostile_bodies()[kind]
    err = capsys.readouterr().err
    assert "is not these weights" in err and str(rejected) in err and "trying the next mirror" in err
    assert leftovers(cache) == []

    register_tiny(monkeypatch, [server.url(f"{kind}/{NAME}.pth")])  # only the poisoned mirror
    (cache / f"{NAME}.pth").unlink()
    with pytest.raises(DownloadError, match="is not these weights") as info:
        Colorizer.from_pretrained(NAME, device="cpu", cache_dir=cache, progress=False)
    assert str(rejected) in str(info.value)
    assert not (cache / f"{NAME}.pth").exists() and leftovers(cache) == []


@pytest.mark.parametrize("entry", ["models --download", "image", "from_pretrained"])
@pytest.mark.parametrize("kind", HOSTILE)
def test_a_poisoned_cache_is_moved_aside_and_downloaded_again(kind, entry, server, tmp_path, photo, monkeypatch,
                                                              capsys):
    """What an older version stored under the final name is found, set aside and replaced on the first use."""
    cache = tmp_path / "cache"
    cache.mkdir()
    cached = cache / f"{NAME}.pth"
    cached.write_bytes(hostile_bodies()[kind])
    register_tiny(monkeypatch, [server.url(f"good/{NAME}.pth")])
    if entry == "models --download":
        assert cli.main(["models", "--download", NAME, "--cache-dir", str(cache)]) == cli.EXIT_OK
    elif entry == "image":
        out = tmp_path / "out.png"
        code = cli.main(["image", str(photo), "-o", str(out), "--model", NAME, "--cache-dir", str(cache),
                         "--device", "cpu"])
        assert code == cli.EXIT_OK and out.is_file()
    else:
        Colorizer.from_pretrained(NAME, device="cpu", cache_dir=cache, progress=True)
    assert cached.read_bytes() == good_file()
    assert (cache / f"{NAME}.pth.rejected").read_bytes() == hostile_bodies()[kind]
    out, err = capsys.readouterr()
    if entry == "models --download":
        assert f"{NAME}: verified {cached}" in out
    assert f"moved it aside to {cache / f'{NAME}.pth.rejected'}" in err and "Traceback" not in err
    assert leftovers(cache) == []
    # the next run uses the verified file as it is
    requests = len(server.requests_for(f"good/{NAME}.pth"))
    Colorizer.from_pretrained(NAME, device="cpu", cache_dir=cache, progress=False)
    assert len(server.requests_for(f"good/{NAME}.pth")) == requests


@pytest.mark.parametrize("kind", ["text", "half"])
def test_the_default_model_falls_back_to_the_embedded_one_with_one_warning(kind, server, tmp_path, photo, monkeypatch,
                                                                           capsys):
    """Plain `colorize image` (no --model) with a poisoned cache and a mirror that keeps answering with junk."""
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv(hub.CACHE_ENV_VAR, str(cache))
    poisoned = {}
    for name in ("artistic", "stable"):  # the default candidates, made small, served only by the broken mirror
        spec = dataclasses.replace(registry.get_spec(name), arch=ARCH, urls=(server.url(f"{kind}/{NAME}.pth"),))
        poisoned[name] = spec
        (cache / spec.filename).write_bytes(hostile_bodies()[kind])
    monkeypatch.setattr(registry, "_SPECS", tuple(poisoned.get(s.name, s) for s in registry._SPECS))

    out = tmp_path / "out.png"
    assert cli.main(["image", str(photo), "-o", str(out), "--device", "cpu"]) == cli.EXIT_OK
    from colorizer_lib.io import read_provenance

    assert read_provenance(out)["colorizer:model"] == "compact"
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "embedded 'compact'" in line]
    assert len(warnings) == 1 and "could not get verified artistic or stable weights" in warnings[0]
    assert "Traceback" not in err
    for spec in poisoned.values():  # nothing poisoned is left under a final name
        assert not (cache / spec.filename).exists()
    assert leftovers(cache) == []

    col = Colorizer.from_pretrained(None, device="cpu", progress=False)  # the library says the same, once
    assert col.name == "compact"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "embedded 'compact'" in err


# ------------------------------------------------------------------------------- locks


@pytest.mark.parametrize("url", ["status=404", "refused", "text"])
def test_failed_downloads_leave_no_lock_files(url, server, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    address = {"status=404": server.url(f"good/{NAME}.pth", status=404), "refused": f"{closed_port_url()}/x.pth",
               "text": server.url(f"text/{NAME}.pth")}[url]
    register_tiny(monkeypatch, [address])
    with pytest.raises(DownloadError):
        Colorizer.from_pretrained(NAME, device="cpu", cache_dir=cache, progress=False)
    assert leftovers(cache) == [] and not (cache / f"{NAME}.pth").exists()


LOCK_WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from colorizer_lib import hub

    target, rounds = Path(sys.argv[1]), int(sys.argv[2])
    counter = target.with_name("counter")
    for _ in range(rounds):
        with hub.cache_lock(target, progress=False):
            value = int(counter.read_text())  # read, pause, write: lost updates unless the lock excludes
            time.sleep(0.002)
            counter.write_text(str(value + 1))
""")


@pytest.mark.skipif(hub.cache.fcntl is None, reason="the POSIX lock; Windows uses filelock's")
def test_the_cache_lock_excludes_processes_although_it_removes_its_file(tmp_path):
    """Removing a lock file on release is safe only if a process that locked a removed file notices; three
    processes incrementing one counter through read-pause-write lose no update, and no lock file is left."""
    target = tmp_path / "weights.pth"
    (tmp_path / "counter").write_text("0")
    workers, rounds = 3, 60
    procs = [subprocess.Popen([sys.executable, "-c", LOCK_WORKER, str(target), str(rounds)], cwd=REPO_ROOT)
             for _ in range(workers)]
    assert [p.wait(timeout=120) for p in procs] == [0] * workers
    assert int((tmp_path / "counter").read_text()) == workers * rounds
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter"]


# ------------------------------------------------------------------------------- an interrupted chunked body


def test_a_chunked_download_cut_mid_body_resumes_and_a_lasting_cut_keeps_the_part(server, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    good = good_file()
    register_tiny(monkeypatch, [server.url(f"good/{NAME}.pth", chunked=1, cut_chunked=len(good) // 3)])
    Colorizer.from_pretrained(NAME, device="cpu", cache_dir=cache, progress=False)
    first, second = server.requests_for(f"good/{NAME}.pth")
    assert "range" not in first.headers and second.headers["range"] == f"bytes={len(good) // 3}-"
    assert (cache / f"{NAME}.pth").read_bytes() == good and leftovers(cache) == []

    # a server that cuts every time: a clear error, the bytes kept for the next run, nothing under the final name
    monkeypatch.setattr(hub.resolve, "DEFAULT_RETRIES", 1)
    (cache / f"{NAME}.pth").unlink()
    register_tiny(monkeypatch, [server.url(f"good/{NAME}.pth", chunked=1, truncate=len(good) // 2)])
    with pytest.raises(DownloadError, match="the connection dropped") as info:
        Colorizer.from_pretrained(NAME, device="cpu", cache_dir=cache, progress=False)
    part = cache / f"{NAME}.pth.part"
    assert part.read_bytes() == good[: len(good) // 2]
    assert str(part) in str(info.value) and "resumes from there" in str(info.value)
    assert not (cache / f"{NAME}.pth").exists()


def test_an_image_url_cut_mid_chunked_body_is_reported_not_a_traceback(server, site, tmp_path, photo, capsys):
    (site / "good" / "photo.png").write_bytes(photo.read_bytes())
    url = server.url("good/photo.png", chunked=1, truncate=200)
    code = cli.main(["image", url, "-o", str(tmp_path / "out"), "--model", "compact", "--device", "cpu", "-q"])
    assert code == cli.EXIT_PARTIAL
    err = capsys.readouterr().err
    assert "photo.png" in err and "cut off" in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


# ------------------------------------------------------------------------------- messages


def test_a_text_file_as_the_model_is_a_usage_error(tmp_path, photo, capsys):
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    assert cli.main(["image", str(photo), "-o", str(tmp_path / "o.png"), "--model", str(passwd)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{passwd} is a text file, not a weights file" in err and "root:x:0:0" in err
    with pytest.raises(NotWeightsError):
        Colorizer.from_pretrained(passwd, device="cpu")


def test_weights_of_another_architecture_are_a_usage_error_naming_what_they_resemble(tmp_path, photo, capsys):
    state = tiny_state()
    state["extra.weight"] = torch.zeros(3)  # the tiny U-Net plus one tensor no architecture has
    state.pop(next(iter(state)))
    near = tmp_path / "near.pth"
    torch.save(state, near)
    other = tmp_path / "classifier.pth"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(8, 2)).state_dict(), other)
    for path in (near, other):
        out = tmp_path / "o.png"
        assert cli.main(["image", str(photo), "-o", str(out), "--model", str(path)]) == cli.EXIT_USAGE
        err = capsys.readouterr().err
        assert f"{path} is not the weights of a model Colorizer can run" in err and "Traceback" not in err
        # what is expected: every architecture, with the model names that use it
        assert "compact-efficientnet-lite0 (compact)" in err and "deoldify-deep-resnet34 (artistic)" in err
        assert not out.exists()
    near_err = pytest.raises(NotWeightsError, Colorizer.from_pretrained, near, device="cpu").value
    n = len(tiny_state())
    assert f"resembles {ARCH} but is not it: {n - 1} of its {n} tensors match" in str(near_err)
    assert "unexpected: 'extra.weight'" in str(near_err) and "missing: " in str(near_err)
    other_err = pytest.raises(NotWeightsError, Colorizer.from_pretrained, other, device="cpu").value
    assert "holds 4 tensor(s) ('0.weight', '0.bias', '1.weight' and 1 more) of which none" in str(other_err)


@pytest.mark.parametrize("device", ["tpu9", "bogus", "cuda:7"])
def test_an_unknown_device_is_a_usage_error(device, tmp_path, photo, capsys):
    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    assert cli.main(["image", str(photo), "-o", str(tmp_path / "o.png"), "--model", "compact",
                     "--device", device]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{device!r}" in err and "cpu" in err and "Traceback" not in err
    assert not (tmp_path / "o.png").exists()


def test_an_unknown_model_name_is_a_usage_error_listing_the_known_ones(tmp_path, photo, capsys):
    for argv in (["models", "--download", "nonsense"], ["image", str(photo), "--model", "nonsense"]):
        assert cli.main(argv) == cli.EXIT_USAGE
        err = capsys.readouterr().err
        known = ", ".join(spec.name for spec in registry.list_specs())  # every registered name, in display order
        assert "unknown model 'nonsense'" in err and f"Known models: {known};" in err and "ddcolor-tiny" in known
    assert cli.main(["image", str(photo), "--model", str(tmp_path / "missing.pth")]) == cli.EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ModelArgumentError):
        Colorizer.from_pretrained("nonsense", device="cpu")


def test_an_old_format_pickle_is_refused_without_suggesting_an_unsafe_load(tmp_path):
    """torch's own message suggests weights_only=False, which "will likely succeed" and would run the file's
    code; ours says what the file is, that we refuse it, and how to convert it safely."""
    legacy = tmp_path / "old.pth"
    with open(legacy, "wb") as handle:
        pickle.dump({"conv.weight": np.ones((3, 3), np.float32)}, handle, protocol=4)
    with pytest.raises(NotWeightsError) as info:
        hub.load_checkpoint(legacy)
    text = str(info.value)
    assert "plain Python pickle" in text and "refuses to load" in text and "convert" in text
    assert "weights_only" not in text and "likely succeed" not in text and "truncated or corrupt" not in text
    objects = tmp_path / "objects.pth"
    torch.save({"conv.weight": np.ones((3, 3), np.float32)}, objects)  # torch's format, numpy objects inside
    with pytest.raises(NotWeightsError, match="pickled Python objects") as info:
        hub.load_checkpoint(objects)
    assert "weights_only" not in str(info.value)


def test_export_without_the_onnx_extra_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # what an install without the extra looks like to imports
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    code = cli.main(["export", "--format", "onnx", "--model", ARCH, "--random-weights", "-r", "4",
                     "-o", str(tmp_path / "m.onnx")])
    assert code != cli.EXIT_OK
    err = capsys.readouterr().err
    assert 'pip install "colorizer[onnx]"' in err and 'pip install -e ".[onnx]"' in err
    assert not (tmp_path / "m.onnx").exists()


# ------------------------------------------------------------------------------- non-finite output


def nan_weights_file(tmp_path: Path) -> Path:
    state = tiny_state()
    last = [k for k, v in state.items() if v.is_floating_point()][-1]
    state[last] = torch.full_like(state[last], float("nan"))
    path = tmp_path / "nan_weights.pth"
    torch.save(state, path)
    return path


@pytest.mark.parametrize("pipeline", ["off", "on"])
def test_nan_weights_fail_with_a_message_naming_them_not_a_black_image(pipeline, tmp_path, photo, capsys):
    weights = nan_weights_file(tmp_path)
    out = tmp_path / "out.png"
    code = cli.main(["image", str(photo), "-o", str(out), "--model", str(weights), "--device", "cpu",
                     "--pipeline", pipeline, "--runtime", "torch"])
    assert code == cli.EXIT_WEIGHTS
    err = capsys.readouterr().err
    assert str(weights) in err and "NaN or infinite" in err
    assert not out.exists()


def test_the_check_names_which_images_of_a_batch_are_not_finite():
    class OverflowsOnBrightImages(torch.nn.Module):  # as a model overflowing in float16 on some inputs
        def forward(self, x):
            bright = x.mean(dim=(1, 2, 3)) > 1.0  # normalised: white is about 2.2, black about -1.8
            return x * torch.where(bright, float("inf"), 1.0)[:, None, None, None]

    col = Colorizer.from_model(OverflowsOnBrightImages(), name="broken", default_render_factor=2, device="cpu",
                               fold=False)
    luma = torch.rand(3, 1, 40, 40, generator=torch.Generator().manual_seed(0)) * 0.2
    luma[1] = 1.0
    with pytest.raises(NonFiniteOutputError, match="'broken' produced NaN or infinite values for 1 of 3 image") as info:
        col.predict_chroma(luma)  # the video path's call
    assert info.value.indices == (1,) and isinstance(info.value, WeightsError)
    assert col.predict_chroma(luma[[0, 2]]).isfinite().all()


class OverflowsOnBrightImages(torch.nn.Module):
    """A model whose output is infinite for bright pictures only (as float16 overflows on some content);
    ``everywhere=True``: for every picture, although its (lone) parameter is finite."""

    def __init__(self, everywhere: bool = False):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones(()))
        self.everywhere = everywhere

    def forward(self, x):
        bright = x.mean(dim=(1, 2, 3)) > 1.0  # normalised: white is about 2.2, black about -1.8
        if self.everywhere:
            bright = torch.ones_like(bright)
        return x * self.gain * torch.where(bright, float("inf"), 1.0)[:, None, None, None]


def overflowing_cli(monkeypatch, everywhere: bool = False) -> Colorizer:
    col = Colorizer.from_model(OverflowsOnBrightImages(everywhere), name="overflowing", default_render_factor=2,
                               device="cpu", fold=False)
    monkeypatch.setattr(Colorizer, "from_pretrained", classmethod(lambda cls, *args, **kwargs: col))
    return col


def dark_and_bright_photos(folder: Path) -> tuple[list[Path], Path]:
    """``a_bright.png`` (white, first in the folder's order) and three dark grey pictures."""
    folder.mkdir()
    bright = folder / "a_bright.png"
    Image.new("L", (40, 32), 255).save(bright)
    rng = np.random.default_rng(0)
    dark = []
    for i in range(3):
        dark.append(folder / f"dark{i}.png")
        Image.fromarray(rng.integers(0, 50, (32, 40), dtype=np.uint8), "L").save(dark[-1])
    return dark, bright


@pytest.mark.parametrize("pipeline,batch_size", [("off", 1), ("off", 4), ("on", 1), ("on", 4)])
def test_one_overflowing_picture_fails_alone_and_the_others_are_done(pipeline, batch_size, tmp_path, monkeypatch,
                                                                     capsys):
    overflowing_cli(monkeypatch)
    dark, bright = dark_and_bright_photos(tmp_path / "in")
    out = tmp_path / "out"
    code = cli.main(["image", str(tmp_path / "in"), "-o", str(out), "--runtime", "torch", "--pipeline", pipeline,
                     "--batch-size", str(batch_size)])
    err = capsys.readouterr().err
    assert code == cli.EXIT_PARTIAL, err
    assert "done: 3 colorized, 0 skipped, 1 failed" in err
    assert f"{bright}: the model 'overflowing' produced NaN or infinite values for this picture" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in (out / "in").iterdir()) == ["dark0.png", "dark1.png", "dark2.png"]
    for path in dark:  # each a real, finite colorization (the model keeps the grey: not black)
        assert np.asarray(Image.open(out / "in" / path.name).convert("L")).max() > 0


@pytest.mark.parametrize("pipeline,batch_size", [("off", 1), ("off", 4), ("on", 1), ("on", 4)])
def test_a_model_that_overflows_on_every_picture_stops_the_job_naming_the_weights(pipeline, batch_size, tmp_path,
                                                                                  monkeypatch, capsys):
    overflowing_cli(monkeypatch, everywhere=True)
    dark_and_bright_photos(tmp_path / "in")
    out = tmp_path / "out"
    code = cli.main(["image", str(tmp_path / "in"), "-o", str(out), "--runtime", "torch", "--pipeline", pipeline,
                     "--batch-size", str(batch_size)])
    err = capsys.readouterr().err
    assert code == cli.EXIT_WEIGHTS, err
    assert "the model 'overflowing' produced NaN or infinite values" in err and "weights are broken" in err
    assert not any(out.rglob("*.png"))


@pytest.mark.parametrize("pipeline", ["off", "on"])
def test_nan_weights_stop_a_folder_job_at_the_first_picture(pipeline, tmp_path, capsys):
    weights = nan_weights_file(tmp_path)
    dark_and_bright_photos(tmp_path / "in")
    out = tmp_path / "out"
    code = cli.main(["image", str(tmp_path / "in"), "-o", str(out), "--model", str(weights), "--device", "cpu",
                     "--pipeline", pipeline, "--runtime", "torch", "--batch-size", "1", "-r", "2"])
    assert code == cli.EXIT_WEIGHTS
    err = capsys.readouterr().err
    assert str(weights) in err and "NaN or infinite" in err and "for 1 of 1 image" in err
    assert not any(out.rglob("*.png"))


# ------------------------------------------------------------------------------- `colorize models` listing


def listed_status(capsys, cache: Path) -> str:
    assert cli.main(["models", "--cache-dir", str(cache)]) == cli.EXIT_OK
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(NAME + " "))
    return line


@pytest.mark.parametrize("kind", HOSTILE)
def test_models_lists_a_poisoned_cached_file_as_unverified_then_a_verified_one_as_verified(kind, server, tmp_path,
                                                                                       monkeypatch, capsys):
    cache = tmp_path / "cache"
    cache.mkdir()
    cached = cache / f"{NAME}.pth"
    cached.write_bytes(hostile_bodies()[kind])  # what an older version stored under the final name
    register_tiny(monkeypatch, [server.url(f"good/{NAME}.pth")])
    assert "cached, not verified yet: checked when first used" in listed_status(capsys, cache)
    assert cli.main(["models", "--download", NAME, "--cache-dir", str(cache), "-q"]) == cli.EXIT_OK
    assert f"cached, verified ({cached})" in listed_status(capsys, cache)
    # replaced behind our back (same size, later modification): no longer called verified
    data = bytearray(cached.read_bytes())
    data[-1] ^= 0xFF
    time_before = cached.stat().st_mtime
    cached.write_bytes(bytes(data))
    os.utime(cached, (time_before + 5, time_before + 5))
    assert "cached but NOT the verified file: replaced when next used" in listed_status(capsys, cache)


def test_listing_models_reads_no_weights_and_creates_no_cache(tmp_path, monkeypatch, capsys):
    def no_reading(*args, **kwargs):
        raise AssertionError("the listing read a weights file")

    monkeypatch.setattr(hub, "file_sha256", no_reading)
    monkeypatch.setattr(torch, "load", no_reading)
    cache = tmp_path / "absent" / "cache"
    assert cli.main(["models", "--cache-dir", str(cache)]) == cli.EXIT_OK
    assert "not downloaded" in capsys.readouterr().out
    assert not cache.exists()
