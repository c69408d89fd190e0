"""The DDColor-related parts of the `colorize` front door: `--chroma-upsample` on the commands that colorize,
`--model` help naming the DDColor models and the ensemble spellings, and `colorize models` with DDColor rows."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib

import pytest
import torch

from colorizer_lib import cli, hub, registry
from colorizer_lib.cli_args import CHROMA_UPSAMPLE_CHOICES
from colorizer_lib.models import expected_state
from tests.ddcolor_weights import deterministic_state_dict
from tests.http_server import local_http_server


def _sub(command: str) -> argparse.ArgumentParser:
    parser = cli.build_parser(command)
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]


@pytest.mark.parametrize("command", ["image", "video"])
def test_chroma_upsample_flag(command):
    parser = cli.build_parser(command)
    assert parser.parse_args([command, "x.jpg"]).chroma_upsample is None  # the model's own default
    for mode in CHROMA_UPSAMPLE_CHOICES:
        assert parser.parse_args([command, "x.jpg", "--chroma-upsample", mode]).chroma_upsample == mode
    with pytest.raises(SystemExit):
        parser.parse_args([command, "x.jpg", "--chroma-upsample", "bicubic"])
    assert CHROMA_UPSAMPLE_CHOICES == ("bilinear", "nearest")


@pytest.mark.parametrize("command", ["image", "video"])
def test_model_help_names_ddcolor_and_both_ensemble_spellings(command):
    help_text = " ".join(_sub(command).format_help().split())
    for text in ("ddcolor,", "ddcolor-tiny", "ddcolor+artistic", "ddcolor:0.6,artistic:0.4"):
        assert text in help_text, text


def test_export_help_offers_no_ensembles():
    assert "ddcolor+artistic" not in " ".join(_sub("export").format_help().split())


def test_models_lists_ddcolor_with_licence_and_cache_state(tmp_path, capsys):
    cache = tmp_path / "cache"
    assert cli.main(["models", "--cache-dir", str(cache)]) == cli.EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[:3] == ["NAME", "RENDER", "FACTOR"] and "LICENCE" in header
    rows = {line.split()[0]: line for line in lines[1:] if line and not line.startswith(("licences", "cache"))}
    for name in ("ddcolor", "ddcolor-paper", "ddcolor-artistic", "ddcolor-tiny"):
        assert " 32 " in rows[name] and "Apache-2.0" in rows[name] and rows[name].rstrip().endswith("not downloaded")
    assert "MIT" in rows["artistic"] and "MIT + data terms" in rows["compact"]
    # ModelScope's copy of ddcolor in the cache is ddcolor's state (not verified yet: nothing has loaded it)
    cache.mkdir()
    copy = cache / registry.get_spec("ddcolor").alternatives[0].filename
    copy.write_bytes(b"not read by the listing")
    assert cli.main(["models", "--cache-dir", str(cache)]) == cli.EXIT_OK
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("ddcolor "))
    assert f"cached, not verified yet: checked when first used ({copy})" in row
    assert cli.models_table(str(cache))[3]["license"].startswith("Apache-2.0 (DDColor's released weights")


def test_models_download_fetches_and_verifies_ddcolor_tiny(tmp_path, monkeypatch, capsys):
    """`colorize models --download ddcolor-tiny` through $COLORIZER_MIRROR (a local server holding the file under
    the record's name), strictly verified against DDColor-T's manifest, then listed as verified."""
    monkeypatch.setattr(hub.fetch, "RETRY_DELAY_S", 0.01)
    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    spec = registry.get_spec("ddcolor-tiny")
    weights = site / spec.filename
    torch.save(deterministic_state_dict(expected_state("ddcolor-tiny"), seed=1), weights)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    # the test weights are not the released file: the record takes their size and checksum
    monkeypatch.setattr(registry, "_SPECS", tuple(
        dataclasses.replace(s, size=weights.stat().st_size, sha256=digest, urls=()) if s.name == spec.name else s
        for s in registry._SPECS))
    with local_http_server(site) as server:
        monkeypatch.setenv("COLORIZER_MIRROR", server.base_url)
        assert cli.main(["models", "--download", "ddcolor-tiny", "--cache-dir", str(cache), "-q"]) == cli.EXIT_OK
        assert [r.path for r in server.requests] == [f"/{spec.filename}"]
    assert f"ddcolor-tiny: verified {cache / spec.filename}" in capsys.readouterr().out
    assert cli.main(["models", "--cache-dir", str(cache)]) == cli.EXIT_OK
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("ddcolor-tiny "))
    assert f"cached, verified ({cache / spec.filename})" in row
