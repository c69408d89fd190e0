"""Tests of colorizer_lib.hub against a real HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from colorizer_lib import hub
from colorizer_lib.errors import DownloadError, VerificationError, WeightsError
from tests.conftest import FIXTURES  # one place says where the fixtures are (no absolute path here)
from tests.http_server import closed_port_url, local_http_server, serve_directory, silent_server

WRAPPED_DEEP = FIXTURES / "deoldify_tiny_wrapped_deep.pth"
ARTISTIC_MANIFEST = FIXTURES / "deoldify_manifest_artistic.json"
REPO_ROOT = Path(__file__).resolve().parents[1]
SIZE = 300_000


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch, tmp_path):
    """Fast retries, and a cache that never lands in the real home directory."""
    monkeypatch.setattr(hub.fetch, "RETRY_DELAY_S", 0.01)
    monkeypatch.setenv(hub.CACHE_ENV_VAR, str(tmp_path / "env-cache"))


@pytest.fixture
def payload() -> bytes:
    return random.Random(1234).randbytes(SIZE)


@pytest.fixture
def site(tmp_path, payload) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "weights.bin").write_bytes(payload)
    (root / "page.html").write_text("<!DOCTYPE html>\n<html><body>Sign in to Dropbox</body></html>\n")
    shutil.copy(WRAPPED_DEEP, root / "tiny.pth")
    return root


@pytest.fixture
def server(site):
    with local_http_server(site) as srv:
        yield srv


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spec_for(filename: str, urls, size=None, sha256=None, manifest=None) -> SimpleNamespace:
    """Any object with these attributes is a weights record for hub (duck typing)."""
    return SimpleNamespace(
        name="tiny", filename=filename, urls=urls, size=size, sha256=sha256, manifest=manifest
    )


# ------------------------------------------------------------------------------- cache dir


def test_cache_dir_argument_beats_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv(hub.CACHE_ENV_VAR, str(tmp_path / "from-env"))
    got = hub.cache_dir(tmp_path / "from-arg" / "nested")
    assert got == tmp_path / "from-arg" / "nested"
    assert got.is_dir()
    assert not (tmp_path / "from-env").exists()


def test_cache_dir_env_var_beats_default(tmp_path, monkeypatch):
    monkeypatch.setenv(hub.CACHE_ENV_VAR, str(tmp_path / "from-env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.cache_dir() == tmp_path / "from-env"
    assert (tmp_path / "from-env").is_dir()
    assert not (tmp_path / "xdg").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="checks the Linux default on this machine")
def test_cache_dir_default_on_linux_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv(hub.CACHE_ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.cache_dir() == tmp_path / "xdg" / "colorizer"
    assert (tmp_path / "xdg" / "colorizer").is_dir()


@pytest.mark.parametrize(
    ("platform", "environ", "expected"),
    [
        ("linux", {"XDG_CACHE_HOME": "/xdg/cache"}, "/xdg/cache/colorizer"),
        ("linux", {"XDG_CACHE_HOME": "relative/cache"}, "/home/u/.cache/colorizer"),
        ("linux", {}, "/home/u/.cache/colorizer"),
        ("darwin", {"XDG_CACHE_HOME": "/xdg/cache"}, "/home/u/Library/Caches/colorizer"),
        ("win32", {"LOCALAPPDATA": "/appdata/Local"}, "/appdata/Local/colorizer/Cache"),
        ("win32", {}, "/home/u/AppData/Local/colorizer/Cache"),
    ],
)
def test_default_cache_dir_per_platform(platform, environ, expected):
    got = hub.default_cache_dir(platform=platform, environ=environ, home=Path("/home/u"))
    assert got == Path(expected)


def test_cache_dir_that_is_a_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    with pytest.raises(WeightsError, match="COLORIZER_CACHE"):
        hub.cache_dir(blocker)
    with pytest.raises(WeightsError, match="cache"):
        hub.cache_dir(blocker / "sub")


# ------------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://www.dropbox.com/s/axsd2g85uyixaho/ColorizeStable_gen.pth?dl=0",
            "https://www.dropbox.com/s/axsd2g85uyixaho/ColorizeStable_gen.pth?dl=1",
        ),
        (
            "https://www.dropbox.com/s/zkehq1uwahhbc2o/ColorizeArtistic_gen.pth",
            "https://www.dropbox.com/s/zkehq1uwahhbc2o/ColorizeArtistic_gen.pth?dl=1",
        ),
        (
            "http://dropbox.com/s/abc/x.pth?raw=1",
            "https://www.dropbox.com/s/abc/x.pth?dl=1",
        ),
        (
            "https://www.dropbox.com/scl/fi/k3y/model.pth?rlkey=r7x&dl=0",
            "https://www.dropbox.com/scl/fi/k3y/model.pth?rlkey=r7x&dl=1",
        ),
        (
            "https://drive.google.com/file/d/1AbC-d_9/view?usp=sharing",
            "https://drive.google.com/uc?id=1AbC-d_9",
        ),
        ("https://drive.google.com/open?id=1AbC-d_9", "https://drive.google.com/uc?id=1AbC-d_9"),
        (
            "https://drive.google.com/uc?export=download&id=1AbC-d_9",
            "https://drive.google.com/uc?id=1AbC-d_9",
        ),
        (
            "https://data.deepai.org/deoldify/ColorizeArtistic_gen.pth",
            "https://data.deepai.org/deoldify/ColorizeArtistic_gen.pth",
        ),
        ("http://127.0.0.1:8000/w.pth?dl=0", "http://127.0.0.1:8000/w.pth?dl=0"),
    ],
)
def test_normalize_url(url, expected):
    assert hub.normalize_url(url) == expected


def test_google_drive_file_id():
    assert hub.google_drive_file_id("https://drive.google.com/file/d/XyZ_1-2/edit") == "XyZ_1-2"
    assert hub.google_drive_file_id("https://drive.google.com/drive/folders/abc") is None
    assert hub.google_drive_file_id("https://example.com/file/d/XyZ/view") is None


# ------------------------------------------------------------------------------- download


def test_download_success_streams_to_part_and_renames(server, payload, tmp_path, capsys):
    dest = tmp_path / "out" / "weights.bin"
    got = hub.download(server.url("weights.bin"), dest, expected_size=SIZE,
                       expected_sha256=sha(payload), progress=False)
    assert got == dest
    assert dest.read_bytes() == payload
    assert not dest.with_name("weights.bin.part").exists()
    (request,) = server.requests_for("weights.bin")
    assert "range" not in request.headers
    assert request.headers["user-agent"].startswith("colorizer/")
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_download_progress_bar_is_shown_unless_disabled(server, tmp_path, capsys):
    hub.download(server.url("weights.bin"), tmp_path / "a.bin", progress=True)
    err = capsys.readouterr().err
    assert "a.bin" in err and "100%" in err


def test_download_resumes_after_dropped_connection(server, payload, tmp_path):
    dest = tmp_path / "weights.bin"
    hub.download(server.url("weights.bin", drop_after=100_000), dest, progress=False)
    assert dest.read_bytes() == payload
    first, second = server.requests_for("weights.bin")
    assert "range" not in first.headers
    assert second.headers["range"] == "bytes=100000-"


def test_download_resumes_after_a_stalled_connection(server, payload, tmp_path):
    dest = tmp_path / "weights.bin"
    start = time.monotonic()
    hub.download(server.url("weights.bin", stall_after=70_000), dest, timeout=0.5, progress=False)
    assert time.monotonic() - start < 5
    assert dest.read_bytes() == payload
    first, second = server.requests_for("weights.bin")
    assert second.headers["range"] == "bytes=70000-"


def test_download_resumes_existing_part_file(server, payload, tmp_path):
    dest = tmp_path / "weights.bin"
    Path(f"{dest}.part").write_bytes(payload[:123_456])
    hub.download(server.url("weights.bin"), dest, progress=False)
    assert dest.read_bytes() == payload
    (request,) = server.requests_for("weights.bin")
    assert request.headers["range"] == "bytes=123456-"


def test_download_restarts_when_server_ignores_range(server, payload, tmp_path):
    dest = tmp_path / "weights.bin"
    Path(f"{dest}.part").write_bytes(b"\0" * 5000)  # wrong bytes: appending would corrupt
    hub.download(server.url("weights.bin", ignore_range=1), dest, progress=False)
    assert dest.read_bytes() == payload
    (request,) = server.requests_for("weights.bin")
    assert request.headers["range"] == "bytes=5000-"


def test_download_416_with_complete_part_finishes(server, payload, tmp_path):
    dest = tmp_path / "weights.bin"
    Path(f"{dest}.part").write_bytes(payload)
    hub.download(server.url("weights.bin"), dest, expected_sha256=sha(payload), progress=False)
    assert dest.read_bytes() == payload
    assert len(server.requests_for("weights.bin")) == 1


def test_download_416_with_oversized_part_restarts(server, payload, tmp_path):
    dest = tmp_path / "weights.bin"
    Path(f"{dest}.part").write_bytes(payload + b"junk")
    hub.download(server.url("weights.bin"), dest, progress=False)
    assert dest.read_bytes() == payload
    first, second = server.requests_for("weights.bin")
    assert first.headers["range"] == f"bytes={SIZE + 4}-"
    assert "range" not in second.headers


def test_download_404_names_status_and_url(server, tmp_path):
    dest = tmp_path / "missing.bin"
    url = server.url("missing.bin")
    with pytest.raises(DownloadError) as info:
        hub.download(url, dest, progress=False)
    message = str(info.value)
    assert "HTTP 404" in message and url in message and str(dest) in message
    assert len(server.requests_for("missing.bin")) == 1  # a 404 is not retried
    assert not dest.exists() and not Path(f"{dest}.part").exists()


def test_download_retries_server_errors_then_reports_status(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 503"):
        hub.download(server.url("weights.bin", status=503), tmp_path / "w.bin",
                     progress=False, retries=2)
    assert len(server.requests_for("weights.bin")) == 3


@pytest.mark.parametrize("faults", [{}, {"content_type": "application/octet-stream"}])
def test_download_html_page_is_refused(server, tmp_path, faults):
    dest = tmp_path / "weights.pth"
    with pytest.raises(DownloadError, match="web page, not the weights file") as info:
        hub.download(server.url("page.html", **faults), dest, progress=False)
    assert "by hand" in str(info.value) and "Dropbox" in str(info.value)
    assert not dest.exists() and not Path(f"{dest}.part").exists()
    assert len(server.requests_for("page.html")) == 1


def test_download_truncated_every_time_fails_and_keeps_part(server, payload, tmp_path):
    dest = tmp_path / "weights.bin"
    with pytest.raises(DownloadError, match="truncated") as info:
        hub.download(server.url("weights.bin", truncate=100_000), dest,
                     progress=False, retries=2)
    assert "gave up after 3 attempts" in str(info.value)
    assert not dest.exists()
    part = Path(f"{dest}.part")
    assert part.read_bytes() == payload[:100_000]  # kept on purpose: the next call resumes
    assert str(part) in str(info.value)
    requests = server.requests_for("weights.bin")
    assert [r.headers.get("range") for r in requests] == [None, "bytes=100000-", "bytes=100000-"]


def test_download_wrong_checksum_is_an_error_and_leaves_nothing(server, tmp_path):
    dest = tmp_path / "weights.bin"
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        hub.download(server.url("weights.bin"), dest, expected_sha256="0" * 64, progress=False)
    assert not dest.exists() and not Path(f"{dest}.part").exists()


def test_download_wrong_size_is_an_error(server, tmp_path):
    dest = tmp_path / "weights.bin"
    with pytest.raises(DownloadError, match=f"offers {SIZE} bytes but the weights file has 999"):
        hub.download(server.url("weights.bin"), dest, expected_size=999, progress=False)
    assert not dest.exists()


def test_download_refuses_an_empty_body(server, site, tmp_path):
    (site / "empty.bin").write_bytes(b"")
    with pytest.raises(DownloadError, match="empty file"):
        hub.download(server.url("empty.bin"), tmp_path / "e.bin", progress=False)
    assert not (tmp_path / "e.bin").exists()


def test_download_local_disk_errors_are_download_errors(server, tmp_path):
    dest = tmp_path / "weights.bin"
    Path(f"{dest}.part").mkdir()  # the .part cannot be opened as a file
    with pytest.raises(DownloadError, match="cannot write .*weights.bin.part.*disk space"):
        hub.download(server.url("weights.bin"), dest, progress=False)
    assert not dest.exists()


def test_download_times_out_quickly_on_a_silent_server(tmp_path):
    with silent_server() as url:
        start = time.monotonic()
        with pytest.raises(DownloadError, match="did not answer within 1 s"):
            hub.download(f"{url}/w.pth", tmp_path / "w.pth", timeout=1, progress=False)
        assert time.monotonic() - start < 3


def test_download_connection_refused_explains_the_manual_fix(tmp_path):
    url = f"{closed_port_url()}/ColorizeArtistic_gen.pth"
    dest = tmp_path / "cache" / "ColorizeArtistic_gen.pth"
    with pytest.raises(DownloadError) as info:
        hub.download(url, dest, progress=False)
    message = str(info.value)
    assert "refused" in message and url in message
    assert "by hand" in message and "local path" in message and str(dest) in message


def test_download_dns_failure_explains_the_manual_fix(tmp_path, monkeypatch):
    import socket

    def no_dns(*args, **kwargs):  # what an offline machine's resolver does, without asking one
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    url = "https://data.example.invalid/ColorizeArtistic_gen.pth"
    with pytest.raises(DownloadError) as info:
        hub.download(url, tmp_path / "w.pth", progress=False)
    message = str(info.value)
    assert "cannot resolve the host name 'data.example.invalid'" in message
    assert url in message and "by hand" in message and str(tmp_path / "w.pth") in message


def test_download_reuses_a_finished_file(server, payload, tmp_path):
    dest = tmp_path / "weights.bin"
    dest.write_bytes(payload)
    hub.download(server.url("weights.bin"), dest, expected_sha256=sha(payload), progress=False)
    assert server.requests_for("weights.bin") == []


def test_download_replaces_a_file_of_the_wrong_size(server, payload, tmp_path):
    dest = tmp_path / "weights.bin"
    dest.write_bytes(b"old")
    hub.download(server.url("weights.bin"), dest, expected_size=SIZE, progress=False)
    assert dest.read_bytes() == payload


def test_concurrent_downloads_in_threads_fetch_once(server, payload, tmp_path):
    dest = tmp_path / "weights.bin"
    url = server.url("weights.bin", chunk_delay=0.05)
    results, errors = [], []

    def worker():
        try:
            results.append(hub.download(url, dest, progress=False))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert results == [dest, dest]
    assert dest.read_bytes() == payload
    assert len(server.requests_for("weights.bin")) == 1


def test_concurrent_download_from_another_process_waits_for_it(server, payload, tmp_path, capsys):
    dest = tmp_path / "weights.bin"
    url = server.url("weights.bin", chunk_delay=0.2)  # about 1 s for the other process
    script = (
        "import sys; from colorizer_lib import hub; "
        "hub.download(sys.argv[1], sys.argv[2], progress=False)"
    )
    other = subprocess.Popen([sys.executable, "-c", script, url, str(dest)], cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 30
        while not server.requests_for("weights.bin") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.requests_for("weights.bin"), "the other process never started downloading"
        assert hub.download(url, dest, progress=True) == dest  # waits on the lock
        assert "Waiting for another process downloading" in capsys.readouterr().err
        assert dest.read_bytes() == payload
    finally:
        assert other.wait(timeout=30) == 0
    assert dest.read_bytes() == payload
    assert len(server.requests_for("weights.bin")) == 1


@pytest.mark.skipif(hub.cache.fcntl is None, reason="POSIX flock")
def test_folders_without_os_locks_fall_back_to_a_lock_file(server, payload, tmp_path, monkeypatch):
    import errno

    def no_flock(fd, operation):  # what flock says on mounts without it (some NFS and FUSE)
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(hub.cache.fcntl, "flock", no_flock)
    dest = tmp_path / "cache" / "weights.bin"
    assert hub.download(server.url("weights.bin"), dest, progress=False) == dest
    assert dest.read_bytes() == payload
    assert sorted(p.name for p in dest.parent.iterdir()) == ["weights.bin"]  # the .softlock released and removed


# ------------------------------------------------------------------------------- Google Drive


def test_hub_imports_gdown_lazily():
    code = "import sys; import colorizer_lib.hub; print('gdown' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


def test_google_drive_links_go_through_gdown(monkeypatch, payload, tmp_path):
    import gdown

    calls = []

    def fake_download(*, id, output, quiet, timeout):  # noqa: A002 - gdown's keyword
        calls.append((id, quiet))
        Path(output).write_bytes(payload)
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    dest = tmp_path / "w.bin"
    url = "https://drive.google.com/file/d/1AbC-d_9/view?usp=sharing"
    assert hub.download(url, dest, expected_sha256=sha(payload), progress=False) == dest
    assert dest.read_bytes() == payload
    assert calls == [("1AbC-d_9", True)]


def test_google_drive_failures_become_download_errors(monkeypatch, tmp_path):
    import gdown

    def failing(**kwargs):
        raise gdown.exceptions.FileURLRetrievalError("Too many users have viewed this file")

    monkeypatch.setattr(gdown, "download", failing)
    with pytest.raises(DownloadError, match="Google Drive download failed.*Too many users"):
        hub.download("https://drive.google.com/open?id=XYZ", tmp_path / "w.bin", progress=False)

    def html_page(*, output, **kwargs):
        Path(output).write_text("<html><body>Virus scan warning</body></html>")
        return output

    monkeypatch.setattr(gdown, "download", html_page)
    with pytest.raises(DownloadError, match="web page"):
        hub.download("https://drive.google.com/open?id=XYZ", tmp_path / "w.bin", progress=False)
    assert not (tmp_path / "w.bin").exists()


# ------------------------------------------------------------------------------- resolve_weights


def test_resolve_weights_uses_an_existing_local_file(tmp_path):
    local = tmp_path / "mine.pth"
    local.write_bytes(b"x")
    assert hub.resolve_weights(local) == local
    assert hub.resolve_weights(str(local)) == local


@pytest.mark.parametrize("given", ["models/nothing.pth", "nothing.safetensors", "./nothing"])
def test_resolve_weights_missing_path_is_a_clear_error(given, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsError, match="Weights file not found"):
        hub.resolve_weights(given)


def test_resolve_weights_rejects_directories_and_bare_words(tmp_path):
    with pytest.raises(WeightsError, match="is a directory"):
        hub.resolve_weights(tmp_path)
    with pytest.raises(WeightsError, match="neither an existing weights file"):
        hub.resolve_weights("no-such-model-name")
    with pytest.raises(TypeError, match="without"):
        hub.resolve_weights(SimpleNamespace(filename="x.pth"))


def test_resolve_weights_downloads_into_cache_then_reuses_it(server, payload, tmp_path):
    spec = spec_for("weights.bin", [server.url("weights.bin")], size=SIZE)
    cache = tmp_path / "cache"
    assert not hub.is_cached(spec, cache)
    path = hub.resolve_weights(spec, cache_dir=cache, progress=False)
    assert path == cache / "weights.bin"
    assert path.read_bytes() == payload
    assert hub.is_cached(spec, cache)
    assert hub.resolve_weights(spec, cache_dir=cache, progress=False) == path
    assert len(server.requests_for("weights.bin")) == 1


def test_is_cached_creates_nothing(tmp_path):
    spec = spec_for("weights.bin", [], size=SIZE)
    assert not hub.is_cached(spec, tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_resolve_weights_uses_env_cache_by_default(server, tmp_path):
    spec = spec_for("weights.bin", (server.url("weights.bin"),), size=SIZE)
    path = hub.resolve_weights(spec, progress=False)
    assert path == tmp_path / "env-cache" / "weights.bin"


def test_resolve_weights_redownloads_a_cached_file_of_wrong_size(server, payload, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "weights.bin").write_bytes(payload[:1000])
    spec = spec_for("weights.bin", [server.url("weights.bin")], size=SIZE)
    assert not hub.is_cached(spec, cache)
    assert hub.resolve_weights(spec, cache, progress=False).read_bytes() == payload


def test_resolve_weights_falls_back_to_mirrors(server, payload, tmp_path):
    urls = [closed_port_url() + "/w.bin", server.url("gone.bin"), server.url("weights.bin")]
    spec = spec_for("weights.bin", urls, size=SIZE, sha256=sha(payload))
    path = hub.resolve_weights(spec, cache_dir=tmp_path / "c", progress=False)
    assert path.read_bytes() == payload


def test_resolve_weights_reports_every_failed_mirror(server, tmp_path):
    refused = closed_port_url() + "/w.bin"
    urls = [refused, server.url("gone.bin"), server.url("page.html")]
    spec = spec_for("tiny.pth", urls, size=None)
    cache = tmp_path / "c"
    with pytest.raises(DownloadError) as info:
        hub.resolve_weights(spec, cache_dir=cache, progress=False)
    message = str(info.value)
    assert f"{refused}: connection refused" in message
    assert f"{urls[1]}: HTTP 404" in message
    assert f"{urls[2]}: the link gives a web page" in message
    assert str(cache / "tiny.pth") in message and "by hand" in message
    assert not (cache / "tiny.pth").exists()


def test_resolve_weights_without_urls_says_where_to_put_the_file(tmp_path):
    spec = spec_for("orphan.pth", [], size=None)
    with pytest.raises(DownloadError, match="No download address.*orphan.pth"):
        hub.resolve_weights(spec, cache_dir=tmp_path, progress=False)


# ------------------------------------------------------------------------------- load_checkpoint


def small_state_dict() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=generator),
        "conv.bias": torch.randn(4, generator=generator),
        "bn.num_batches_tracked": torch.tensor(7),
    }


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], ordered=True) -> None:
    assert list(a) == list(b) if ordered else sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def test_load_checkpoint_bare_state_dict(tmp_path):
    sd = small_state_dict()
    torch.save(sd, tmp_path / "bare.pth")
    assert_same(hub.load_checkpoint(tmp_path / "bare.pth"), sd)


def test_load_checkpoint_unwraps_fastai_learner_file_with_slices():
    sd = hub.load_checkpoint(WRAPPED_DEEP)
    assert len(sd) == 234
    assert all(isinstance(v, torch.Tensor) for v in sd.values())
    assert all(k.startswith("layers.") for k in sd)


def test_load_checkpoint_only_unwraps_exactly_model_and_opt(tmp_path):
    sd = small_state_dict()
    torch.save({"model": sd, "opt": {}, "epoch": 3}, tmp_path / "other.pth")
    with pytest.raises(VerificationError, match="not a state dict of tensors"):
        hub.load_checkpoint(tmp_path / "other.pth")


def test_load_checkpoint_safetensors(tmp_path):
    sd = small_state_dict()
    save_file(sd, tmp_path / "w.safetensors")
    assert_same(hub.load_checkpoint(tmp_path / "w.safetensors"), sd, ordered=False)


def test_load_checkpoint_html_page_saved_as_weights(tmp_path, site):
    fake = tmp_path / "ColorizeStable_gen.pth"
    shutil.copy(site / "page.html", fake)
    with pytest.raises(VerificationError, match="web page") as info:
        hub.load_checkpoint(fake)
    assert str(fake) in str(info.value) and "download" in str(info.value)


@pytest.mark.parametrize("fraction", [0.5, 0.999])
def test_load_checkpoint_truncated_real_file(tmp_path, fraction):
    data = WRAPPED_DEEP.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(VerificationError, match="truncated or corrupt") as info:
        hub.load_checkpoint(cut)
    assert str(cut) in str(info.value) and "Delete it" in str(info.value)


def test_load_checkpoint_truncated_safetensors(tmp_path):
    save_file(small_state_dict(), tmp_path / "w.safetensors")
    data = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "w.safetensors").write_bytes(data[:-40])
    with pytest.raises(VerificationError, match="truncated or corrupt"):
        hub.load_checkpoint(tmp_path / "w.safetensors")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ([torch.zeros(2)], "does not contain a state dict.*list"),
        ({}, "empty dict"),
        ({"a": torch.zeros(1), "lr": 0.1}, "'lr' \\(float\\)"),
    ],
)
def test_load_checkpoint_rejects_non_state_dicts(tmp_path, content, match):
    torch.save(content, tmp_path / "odd.pth")
    with pytest.raises(VerificationError, match=match) as info:
        hub.load_checkpoint(tmp_path / "odd.pth")
    assert str(tmp_path / "odd.pth") in str(info.value)


def test_load_checkpoint_refuses_pickled_modules(tmp_path):
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pth")
    with pytest.raises(VerificationError, match="pickled Python objects.*state_dict"):
        hub.load_checkpoint(tmp_path / "module.pth")


def test_load_checkpoint_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(VerificationError, match="empty"):
        hub.load_checkpoint(tmp_path / "empty.pth")
    with pytest.raises(WeightsError, match="not found"):
        hub.load_checkpoint(tmp_path / "absent.pth")


# ------------------------------------------------------------------------------- verification


def test_verify_state_dict_wrong_model():
    sd = hub.load_checkpoint(WRAPPED_DEEP)
    manifest = hub.read_manifest(ARTISTIC_MANIFEST)
    with pytest.raises(VerificationError) as info:
        hub.verify_state_dict(sd, manifest, source="tiny.pth")
    message = str(info.value)
    assert message.startswith("tiny.pth: this looks like the weights of a different model")
    assert "34 of 378 expected keys match" in message
    assert "missing 144: " in message and "wrong shape 200: " in message


def test_verify_state_dict_accepts_matching_shapes_and_dtypes():
    entries = hub.read_manifest(ARTISTIC_MANIFEST)
    sd = {
        key: torch.empty(spec["shape"], dtype=getattr(torch, spec["dtype"]), device="meta")
        for key, spec in entries.items()
    }
    assert hub.verify_state_dict(sd, entries, source="meta") is None
    whole_file = json.loads(ARTISTIC_MANIFEST.read_text())
    assert hub.verify_state_dict(sd, whole_file, source="meta") is None


def test_verify_state_dict_lists_offending_keys():
    sd = small_state_dict()
    manifest = hub.state_dict_manifest(sd)
    assert manifest["conv.weight"] == {"shape": [4, 3, 3, 3], "dtype": "float32"}
    assert manifest["bn.num_batches_tracked"] == {"shape": [], "dtype": "int64"}

    half = dict(sd, **{"conv.weight": sd["conv.weight"].half()})
    wanted = "another precision.*conv.weight float16 \\(expected float32\\)"
    with pytest.raises(VerificationError, match=wanted):
        hub.verify_state_dict(half, manifest, source="half.pth")

    extra = dict(sd, **{"head.weight": torch.zeros(1)})
    with pytest.raises(VerificationError, match="unexpected 1: head.weight"):
        hub.verify_state_dict(extra, manifest, source="extra.pth")

    fewer = {k: v for k, v in sd.items() if k != "conv.bias"}
    with pytest.raises(VerificationError, match="extra.pth|fewer.pth: .*missing 1: conv.bias"):
        hub.verify_state_dict(fewer, manifest, source="fewer.pth")


def test_load_state_dict_with_manifest_path(tmp_path):
    sd = small_state_dict()
    torch.save({"model": sd, "opt": {}}, tmp_path / "w.pth")
    (tmp_path / "m.json").write_text(json.dumps({"state_dict": hub.state_dict_manifest(sd)}))
    assert_same(hub.load_state_dict(tmp_path / "w.pth", expected=tmp_path / "m.json"), sd)
    with pytest.raises(VerificationError, match="different model"):
        hub.load_state_dict(tmp_path / "w.pth", expected=ARTISTIC_MANIFEST)
    assert not hub.hash_record_path(tmp_path / "w.pth").exists()


# ------------------------------------------------------------------------------- sha256 records


def test_sha256_is_recorded_after_first_verified_load_then_checked(server, tmp_path):
    cache = tmp_path / "cache"
    spec = spec_for("tiny.pth", [server.url("tiny.pth")], manifest=None)
    sd = hub.load_weights(spec, cache_dir=cache, progress=False)
    assert len(sd) == 234
    path = cache / "tiny.pth"
    record = json.loads(hub.hash_record_path(path).read_text())
    assert record["sha256"] == sha(path.read_bytes())
    assert record["size"] == path.stat().st_size

    assert len(hub.load_weights(spec, cache_dir=cache, progress=False)) == 234  # record matches

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    path.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match="changed on disk since it was verified") as info:
        hub.load_state_dict(path, sha256=None)
    assert str(path) in str(info.value) and "Delete it" in str(info.value)
    # through the cache: moved aside for inspection, downloaded again, recorded again
    assert len(hub.load_weights(spec, cache_dir=cache, progress=False)) == 234
    assert path.read_bytes() == WRAPPED_DEEP.read_bytes()
    assert (cache / "tiny.pth.rejected").read_bytes() == bytes(data)
    assert json.loads(hub.hash_record_path(path).read_text())["sha256"] == record["sha256"]

    path.write_bytes(bytes(data[:-10]))  # a different size is caught without hashing
    with pytest.raises(VerificationError, match="changed on disk"):
        hub.load_state_dict(path)
    assert len(hub.load_weights(spec, cache_dir=cache, progress=False)) == 234
    assert (cache / "tiny.pth.rejected").read_bytes() == bytes(data[:-10])  # one kept per name, the last
    assert sorted(p.name for p in cache.iterdir()) == ["tiny.pth", "tiny.pth.rejected", "tiny.pth.sha256"]


def test_a_download_of_another_model_never_takes_the_final_name(server, tmp_path):
    cache = tmp_path / "cache"
    spec = spec_for("tiny.pth", [server.url("tiny.pth")], manifest=str(ARTISTIC_MANIFEST))
    with pytest.raises(DownloadError, match="different model") as info:
        hub.load_weights(spec, cache_dir=cache, progress=False)
    assert not (cache / "tiny.pth").exists()
    assert not hub.hash_record_path(cache / "tiny.pth").exists()
    assert (cache / "tiny.pth.rejected").read_bytes() == WRAPPED_DEEP.read_bytes()
    assert str(cache / "tiny.pth.rejected") in str(info.value)


def test_published_sha256_is_checked_on_every_load(server, tmp_path):
    cache = tmp_path / "cache"
    digest = sha(WRAPPED_DEEP.read_bytes())
    size = WRAPPED_DEEP.stat().st_size
    good = spec_for("tiny.pth", [server.url("tiny.pth")], size=size, sha256=digest)
    assert len(hub.load_weights(good, cache_dir=cache, progress=False)) == 234
    # recorded (what `colorize models` reads to call it verified), with the published checksum
    assert json.loads(hub.hash_record_path(cache / "tiny.pth").read_text())["sha256"] == digest

    path = cache / "tiny.pth"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    assert hub.is_cached(good, cache)  # right size, so the cache is used and the hash catches it
    with pytest.raises(VerificationError, match="published sha256") as info:
        hub.load_state_dict(path, sha256=digest)
    assert str(path) in str(info.value)
    assert len(hub.load_weights(good, cache_dir=cache, progress=False)) == 234  # moved aside, downloaded again
    assert path.read_bytes() == WRAPPED_DEEP.read_bytes()
    assert (cache / "tiny.pth.rejected").read_bytes() == bytes(data)
    assert len(server.requests_for("tiny.pth")) == 2


def test_explicit_local_files_get_no_record(tmp_path):
    local = tmp_path / "mine.pth"
    shutil.copy(WRAPPED_DEEP, local)
    assert len(hub.load_weights(local, progress=False)) == 234
    assert not hub.hash_record_path(local).exists()


def test_download_drops_a_stale_hash_record(server, payload, tmp_path):
    dest = tmp_path / "weights.bin"
    dest.write_bytes(b"old weights")
    hub.record_file_hash(dest, sha(b"old weights"))
    hub.download(server.url("weights.bin"), dest, expected_size=SIZE, progress=False)
    assert dest.read_bytes() == payload
    assert not hub.hash_record_path(dest).exists()


def test_serve_directory_yields_a_base_url(site, payload):
    import urllib.request

    with serve_directory(site) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{base_url}/weights.bin", timeout=5) as response:
            assert response.read() == payload
