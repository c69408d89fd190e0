"""DDColor's weight records and their download paths, against a real HTTP server on 127.0.0.1.

The server plays the authors' Hugging Face ``PyTorchModelHubMixin`` repositories (``<repo>/resolve/<revision>/
pytorch_model.bin`` or ``model.safetensors``) and ModelScope's file API (``{'params': state_dict}`` with the
legacy classification head). The weights are DDColor-T's deterministic test weights
(``tests/ddcolor_weights.py``), so every load below is the real 440-key strict check against the manifest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import urllib.parse
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from colorizer_lib import hub, registry
from colorizer_lib.errors import DownloadError, VerificationError
from colorizer_lib.models import available_architectures, build_generator, expected_state
from colorizer_lib.models.ddcolor_checkpoint import LEGACY_HEAD_KEYS
from tests.ddcolor_weights import deterministic_state_dict
from tests.http_server import local_http_server

DDCOLOR = ("ddcolor", "ddcolor-paper", "ddcolor-artistic", "ddcolor-tiny")
HF, MODELSCOPE = "https://huggingface.co", "https://modelscope.cn"


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch, tmp_path):
    monkeypatch.setattr(hub.fetch, "RETRY_DELAY_S", 0.01)
    monkeypatch.setenv(hub.CACHE_ENV_VAR, str(tmp_path / "env-cache"))


@pytest.fixture(scope="module")
def tiny_state() -> dict[str, torch.Tensor]:
    return deterministic_state_dict(expected_state("ddcolor-tiny"), seed=1)


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_state) -> dict[str, Path]:
    """The three released layouts of DDColor-T's test weights, written once."""
    root = tmp_path_factory.mktemp("ddcolor_files")
    bare, safetensors, modelscope = root / "pytorch_model.bin", root / "model.safetensors", root / "pytorch_model.pt"
    torch.save(tiny_state, bare)
    save_file({k: v.contiguous() for k, v in tiny_state.items()}, str(safetensors))
    head = {LEGACY_HEAD_KEYS[0]: torch.zeros(1000, 768), LEGACY_HEAD_KEYS[1]: torch.zeros(1000)}
    torch.save({"params": {**tiny_state, **head}}, modelscope)
    return {"bin": bare, "safetensors": safetensors, "modelscope": modelscope}


def _place(site: Path, url: str, source: Path) -> None:
    """Serve ``source`` at ``url``'s path (``site`` is the server's root; the query is ignored)."""
    target = site / urllib.parse.unquote(urllib.parse.urlsplit(url).path).lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(source, target)  # a hard link: the server serves nothing outside its root


def _local(spec: registry.WeightSpec, base: str, **fields) -> registry.WeightSpec:
    """``spec`` with its hosts (and its alternatives' hosts) replaced by the local server."""
    def moved(urls):
        return tuple(u.replace(HF, base).replace(MODELSCOPE, base) for u in urls)

    alternatives = tuple(dataclasses.replace(a, urls=moved(a.urls)) for a in spec.alternatives)
    return dataclasses.replace(spec, urls=moved(spec.urls), alternatives=alternatives, **fields)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _loads_strictly(state: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> None:
    with torch.device("meta"):
        model = build_generator("ddcolor-tiny")
    model.load_state_dict(state, strict=True, assign=True)
    assert set(state) == set(reference)
    assert all(torch.equal(state[k], reference[k]) for k in reference)


# ------------------------------------------------------------------------------------------ records


def test_the_four_ddcolor_records():
    specs = [registry.get_spec(name) for name in DDCOLOR]
    assert [s.name for s in specs] == list(DDCOLOR)
    assert registry.get_spec("ddcolor-modelscope").name == "ddcolor"
    assert [s.arch for s in specs] == ["ddcolor-large", "ddcolor-large", "ddcolor-large", "ddcolor-tiny"]
    names = [n for s in registry.list_specs() for n in (s.name, *s.aliases)]
    assert len(names) == len(set(names))
    assert len({s.filename for s in registry.list_specs()}) == len(registry.list_specs())
    for spec in specs:
        assert spec.arch in available_architectures()
        assert spec.default_render_factor == 32  # 16 x 32 = 512 px, DDColor's own input size
        assert spec.license.startswith("Apache-2.0")
        assert "\n" not in spec.description and 40 < len(spec.description) < 260
        assert spec.sha256 is None or len(spec.sha256) == 64
        assert all(u.startswith(f"{HF}/piddnad/") for u in spec.urls)
        revision = spec.urls[0].split("/resolve/")[1].split("/")[0]
        files = [u.rsplit("/", 1)[1] for u in spec.urls]
        # a pinned revision names its one file; an unpinned one tries the mixin's names, older first
        assert files == (["pytorch_model.bin"] if revision != "main" else ["pytorch_model.bin", "model.safetensors"])
        assert (spec.sha256 is None) == (revision == "main")  # no checksum without a pinned file
    (modelscope,) = registry.get_spec("ddcolor").alternatives
    assert modelscope.urls[0].startswith(f"{MODELSCOPE}/api/v1/models/damo/cv_ddcolor_image-colorization/")
    assert "FilePath=pytorch_model.pt" in modelscope.urls[0] and modelscope.sha256 is None
    assert modelscope.arch == "ddcolor-large" and modelscope.filename != registry.get_spec("ddcolor").filename
    assert modelscope.ignore_keys == registry.DDCOLOR_LEGACY_KEYS == LEGACY_HEAD_KEYS


def test_readme_model_table_lists_ddcolor_with_its_licence():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert registry.markdown_table() in readme
    for name in DDCOLOR:
        assert f"| `{name}` |" in registry.markdown_table()


# ------------------------------------------------------------------------------------------ downloads


def test_hugging_face_file_downloads_verifies_and_records_its_checksum(tmp_path, files, tiny_state):
    spec = registry.get_spec("ddcolor-tiny")
    site, cache = tmp_path / "site", tmp_path / "cache"
    _place(site, spec.urls[0], files["bin"])
    with local_http_server(site) as server:
        local = _local(spec, server.base_url, size=files["bin"].stat().st_size, sha256=_sha(files["bin"]))
        state = hub.load_weights(local, cache_dir=cache, progress=False)
        _loads_strictly(state, tiny_state)
        assert hub.cache_status(local, cache) == "verified"
        again = hub.load_weights(local, cache_dir=cache, progress=False)  # from the cache, checked again
        assert len(server.requests) == 1
    _loads_strictly(again, tiny_state)
    # the released checksum is enforced: a file with another sha256 is refused and kept aside
    (cache / spec.filename).unlink()
    (cache / hub.hash_record_path(cache / spec.filename).name).unlink()
    with local_http_server(site) as server:
        wrong = _local(spec, server.base_url, size=None, sha256="0" * 64)
        with pytest.raises(DownloadError, match="sha256 mismatch"):
            hub.load_weights(wrong, cache_dir=cache, progress=False)
    assert not (cache / spec.filename).exists()


def test_unpinned_repo_falls_back_to_the_mixins_safetensors_name(tmp_path, files, tiny_state):
    spec = dataclasses.replace(registry.get_spec("ddcolor-paper"), arch="ddcolor-tiny",
                               urls=tuple(u.replace("ddcolor_paper", "ddcolor_paper_tiny")
                                          for u in registry.get_spec("ddcolor-paper").urls))
    site, cache = tmp_path / "site", tmp_path / "cache"
    _place(site, spec.urls[1], files["safetensors"])  # only model.safetensors is there
    with local_http_server(site) as server:
        local = _local(spec, server.base_url)
        state = hub.load_weights(local, expected_state("ddcolor-tiny"), cache_dir=cache, progress=False)
        asked = [r.path.rsplit("/", 1)[1] for r in server.requests]
    assert asked == ["pytorch_model.bin", "model.safetensors"]  # 404, then the next name
    _loads_strictly(state, tiny_state)
    # no published checksum: the first verified load's sha256 is recorded (trust on first use) ...
    record = json.loads(hub.hash_record_path(cache / spec.filename).read_text())
    assert record["sha256"] == _sha(files["safetensors"])
    assert hub.cache_status(local, cache) == "verified"
    # ... and a later change of the file on disk is caught
    with open(cache / spec.filename, "r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 1]))
    assert hub.cache_status(local, cache) == "changed"


def test_modelscope_copy_is_used_when_hugging_face_fails(tmp_path, files, tiny_state, capsys):
    spec = dataclasses.replace(registry.get_spec("ddcolor"), arch="ddcolor-tiny", size=None, sha256=None)
    (modelscope,) = spec.alternatives
    site, cache = tmp_path / "site", tmp_path / "cache"
    _place(site, modelscope.urls[0], files["modelscope"])  # Hugging Face answers 404
    with local_http_server(site) as server:
        local = _local(spec, server.base_url)
        local = dataclasses.replace(local, alternatives=(dataclasses.replace(local.alternatives[0],
                                                                             arch="ddcolor-tiny"),))
        manifest = expected_state("ddcolor-tiny")
        state = hub.load_weights(local, manifest, cache_dir=cache, progress=True)
        assert "trying its next source" in capsys.readouterr().err
        _loads_strictly(state, tiny_state)  # {'params': ...} unwrapped, the legacy head dropped
        assert not set(LEGACY_HEAD_KEYS) & set(state)
        assert (cache / modelscope.filename).is_file() and not (cache / spec.filename).exists()
        assert hub.is_cached(local, cache)
        assert hub.present_source(local, cache).filename == modelscope.filename
        assert hub.cache_status(hub.present_source(local, cache), cache) == "verified"
        n = len(server.requests)
        again = hub.load_weights(local, manifest, cache_dir=cache, progress=False)
        assert len(server.requests) == n  # the cached copy is used before any download
    _loads_strictly(again, tiny_state)


def test_every_failed_source_is_named(tmp_path):
    spec = registry.get_spec("ddcolor")
    (tmp_path / "site").mkdir()
    with local_http_server(tmp_path / "site") as server:
        with pytest.raises(DownloadError) as info:
            hub.load_weights(_local(spec, server.base_url), cache_dir=tmp_path / "cache", progress=False)
    message = str(info.value)
    assert "from any of its 2 files" in message
    assert "ddcolor_modelscope.bin" in message and "ddcolor_modelscope.pt" in message
    assert message.count("HTTP 404") == 2 and "by hand" in message


def test_local_files_of_every_layout_load(files, tiny_state):
    for layout in ("bin", "safetensors"):
        _loads_strictly(hub.load_state_dict(files[layout], expected_state("ddcolor-tiny")), tiny_state)
    # ModelScope's layout: unwrapped by the hub; its dead head is what the records' ignore_keys drop
    assert registry.ignored_keys() == LEGACY_HEAD_KEYS
    state = hub.load_state_dict(files["modelscope"], expected_state("ddcolor-tiny"), drop_keys=registry.ignored_keys())
    _loads_strictly(state, tiny_state)
    with pytest.raises(VerificationError, match="unexpected 2: encoder.arch.head_cls"):  # strict without the drop
        hub.load_state_dict(files["modelscope"], expected_state("ddcolor-tiny"))
    assert hub.resolve_weights(str(files["modelscope"])) == files["modelscope"]


def test_only_exact_wrappers_are_unwrapped():
    sd = {"w": torch.zeros(1)}
    assert hub.unwrap_checkpoint({"params": sd}) is sd
    assert hub.unwrap_checkpoint({"params": sd, "params_ema": {"w": torch.ones(1)}}) is sd
    assert hub.unwrap_checkpoint({"model": sd, "opt": {}}) is sd
    other = {"params": sd, "iter": torch.zeros(1)}
    assert hub.unwrap_checkpoint(other) is other
    assert hub.unwrap_checkpoint(sd) is sd


# ------------------------------------------------------------------------------------------ default model


def _fake_cached(cache: Path, spec: registry.WeightSpec) -> None:
    """A file of the record's exact size in the cache (sparse: no disk used); nothing reads it."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / spec.filename, "wb") as handle:
        handle.truncate(spec.size or 1)


def test_default_model_order_prefers_cached_ddcolor(tmp_path):
    cache = tmp_path / "cache"

    def order():
        return registry.default_model_order(lambda spec: hub.is_cached(spec, cache))

    assert order() == ("artistic", "stable")
    assert not cache.exists()  # creates nothing
    _fake_cached(cache, registry.get_spec("stable"))
    assert order() == ("stable", "artistic")
    _fake_cached(cache, registry.get_spec("ddcolor-artistic"))
    assert order() == ("ddcolor-artistic", "stable", "artistic")
    _fake_cached(cache, registry.get_spec("ddcolor"))
    _fake_cached(cache, registry.get_spec("ddcolor-tiny"))  # never a default: a named choice for CPUs
    assert order() == ("ddcolor", "ddcolor-artistic", "stable", "artistic")
    # ModelScope's copy of `ddcolor` counts as `ddcolor` being cached
    (cache / registry.get_spec("ddcolor").filename).unlink()
    _fake_cached(cache, registry.get_spec("ddcolor").alternatives[0])
    assert order()[0] == "ddcolor"
    # a partial file (another size than the published one) is not "cached"
    (cache / registry.get_spec("ddcolor-artistic").filename).write_bytes(b"partial")
    assert "ddcolor-artistic" not in order()


def test_default_load_takes_a_cached_ddcolor_first(tmp_path, monkeypatch, files):
    """With no model named, a verified DDColor in the cache is loaded before DeOldify is even looked for
    (``loading.load_default`` follows ``registry.default_model_order``)."""
    from colorizer_lib import loading

    cache = tmp_path / "cache"
    cache.mkdir()
    source = files["bin"]
    spec = dataclasses.replace(registry.get_spec("ddcolor-tiny"), name="ddcolor-cached-test", aliases=(),
                               filename="ddcolor_cached_test.bin", size=source.stat().st_size, sha256=_sha(source),
                               urls=("http://127.0.0.1:9/unreachable.bin",), alternatives=())
    monkeypatch.setattr(registry, "_SPECS", registry._SPECS)  # restored after the test
    registry.register(spec)
    monkeypatch.setattr(registry, "DEFAULT_PREFERENCE", (spec.name, *registry.DEFAULT_PREFERENCE))
    os.link(source, cache / spec.filename)
    chosen, state, path = loading.load_default(cache_dir=cache, progress=False)
    assert chosen.name == spec.name and Path(path) == cache / spec.filename
    _loads_strictly(state, deterministic_state_dict(expected_state("ddcolor-tiny"), seed=1))


def test_modelscope_file_given_as_a_path_loads(files):
    """ModelScope's ``pytorch_model.pt`` passed as a file: unwrapped, its legacy head dropped, identified as
    DDColor-T; a bare ``.bin`` name counts as a path, not as a model name."""
    from colorizer_lib import loading

    for path in (files["modelscope"], files["bin"]):
        loaded = loading.load_model(str(path), progress=False)
        assert type(loaded.model).__name__ == type(build_generator("ddcolor-tiny")).__name__
        assert loaded.default_render_factor == registry.get_spec("ddcolor-tiny").default_render_factor
