"""Training.ipynb runs headless, top to bottom, with tiny parameters injected after its parameter cells."""

from __future__ import annotations

import io
import json
import os
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorizer_lib.errors import InputError

pytest.importorskip("fastai", reason="training extras (fastai) not installed")
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "Training.ipynb"


def _overrides(photos: Path, out: Path) -> dict[str, str]:
    return {
        "parameters": f"DATA_FOLDERS = [{str(photos)!r}]\nOUT_DIR = {str(out)!r}\nN_VALID = 4\nPACK_SIZE = 32",
        "parameters-generator": "gen_cfg = dataclasses.replace(gen_cfg, sizes=(32,), epochs=(1,), bs=(4,), "
                                "frozen_epochs=0, mixed_precision=False, n_samples=2, device='cpu')",
        "parameters-critic": "crit_cfg = dataclasses.replace(crit_cfg, size=32, bs=4, epochs=1, nf=8, n_blocks=1, "
                             "mixed_precision=False, device='cpu')",
        "parameters-gan": "gan_cfg = dataclasses.replace(gan_cfg, size=32, bs=4, iterations=2, save_every=2, "
                          "n_samples=2, mixed_precision=False, device='cpu')",
        "parameters-export": "PICK = 'gan_000002'\nRENDER_FACTOR = 2\nWEIGHTS_LICENSE = 'CC-BY-4.0'\n"
                             "DATA_LICENSE = 'photos by the test'",
    }


def test_training_notebook_runs_headless(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        arr = np.zeros((32, 40, 3), np.uint8)
        arr[:] = rng.integers(0, 256, 3)
        arr[8:24, 10:30] = rng.integers(0, 256, 3)
        Image.fromarray(arr).save(photos / f"{i:02d}.png")
    out = tmp_path / "run"

    nb = nbformat.read(NOTEBOOK, as_version=4)
    tags = _overrides(photos, out)
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        for tag in cell.get("metadata", {}).get("tags", []):
            if tag in tags:
                cells.append(nbformat.v4.new_code_cell(tags.pop(tag)))
    assert not tags, f"notebook lacks parameter cells tagged {sorted(tags)}"
    nb.cells = cells

    env_dirs = {name: str(tmp_path / name.lower()) for name in
                ("JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "IPYTHONDIR", "MPLCONFIGDIR")}
    old = {k: os.environ.get(k) for k in env_dirs}
    os.environ.update(env_dirs)
    os.environ["MPLBACKEND"] = "Agg"
    try:
        client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                         resources={"metadata": {"path": str(Path(__file__).resolve().parents[1])}})
        client.execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)

    weights = out / "my_model.safetensors"
    record = json.loads((out / "my_model.json").read_text())
    assert weights.is_file() and record["size"] == weights.stat().st_size
    assert record["default_render_factor"] == 2 and "ciede2000" in record["metrics"]
    # The record carries the licence the user gave, not the project's.
    assert record["license"] == "CC-BY-4.0" and record["data_license"] == "photos by the test"
    assert Image.open(out / "example.jpg").size == (40, 32)
    assert (out / "3_gan" / "samples" / "gan_000002.png").is_file()
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") in ("display_data", "execute_result") and "image/png" in o.get("data", {})]
    assert len(images) >= 3  # loss plot / grids and the final comparison
    texts = [json.dumps(o) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not any("shadowing an attribute" in t for t in texts)
    assert not any("<tbody></tbody>" in t for t in texts)  # no empty fastai table
    assert any("Ready to train: torch" in t for t in texts)  # the install cell says what is there


def test_training_notebook_asks_colab_for_a_t4():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.metadata.get("accelerator") == "GPU" and nb.metadata["colab"]["gpuType"] == "T4"


def photo_zip(path: Path, n: int = 3) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(n):
            buffer = io.BytesIO()
            Image.new("RGB", (20, 16), (40 * i, 100, 200)).save(buffer, "PNG")
            zf.writestr(f"holiday/{i}.png", buffer.getvalue())
    return path


@pytest.fixture
def fake_colab(monkeypatch):
    """``google.colab`` as on Colab: ``files.upload(target_dir)`` writes the chosen files there and
    returns ``{name: bytes}``; ``drive.mount`` records its mount point."""
    picks, mounts = [], []

    def upload(target_dir=""):
        chosen = picks.pop(0)
        for name, content in chosen:
            (Path(target_dir) / name).write_bytes(content)
        return dict(chosen)

    google = types.ModuleType("google")
    colab = types.ModuleType("google.colab")
    files = types.ModuleType("google.colab.files")
    drive = types.ModuleType("google.colab.drive")
    files.upload, drive.mount = upload, mounts.append
    google.colab, colab.files, colab.drive = colab, files, drive
    for name, module in (("google", google), ("google.colab", colab), ("google.colab.files", files),
                         ("google.colab.drive", drive)):
        monkeypatch.setitem(sys.modules, name, module)
    return types.SimpleNamespace(choose=picks.append, mounts=mounts)


def test_training_folders_on_colab_asks_for_a_zip(tmp_path, fake_colab, capsys):
    from colorizer_lib.training.sources import training_folders

    fake_colab.choose([("family.zip", photo_zip(tmp_path / "family.zip").read_bytes())])
    folders = training_folders(["data/train"], tmp_path / "run")
    assert "data/train is not on this Colab machine" in capsys.readouterr().out
    [folder] = folders
    assert sorted(p.name for p in Path(folder).rglob("*.png")) == ["0.png", "1.png", "2.png"]
    assert Path(folder) == tmp_path / "run" / "photos" / "family"
    fake_colab.choose([("notes.txt", b"hello")])
    with pytest.raises(InputError, match="No .zip was uploaded"):
        training_folders(["data/train"], tmp_path / "run")


def test_training_folders_elsewhere(tmp_path):
    from colorizer_lib.training.sources import training_folders

    with pytest.raises(InputError, match="No training photos: data/train holds none"):
        training_folders(["data/train"], tmp_path, colab=False)
    photos = tmp_path / "mine"
    photos.mkdir()
    Image.new("RGB", (8, 8)).save(photos / "a.jpg")
    assert training_folders([str(photos), "data/train"], tmp_path, colab=False) == [str(photos)]
    zipped = training_folders([], tmp_path / "run", data_zip=str(photo_zip(tmp_path / "z.zip")), colab=False)
    assert len(list(Path(zipped[0]).rglob("*.png"))) == 3
    with pytest.raises(InputError, match="DRIVE_FOLDER works on Colab only"):
        training_folders([], tmp_path, drive_folder="MyDrive/photos", colab=False)


def test_missing_requirements_reads_the_extra(monkeypatch):
    import importlib.metadata as metadata

    from colorizer_lib.training.sources import missing_requirements

    requires = ['torch>=2.1', 'fastai>=2.8; extra == "train"', 'onnx>=1.15; extra == "onnx"',
                'accelerate>=0.30; extra == "train"']
    installed = {"torch", "accelerate"}

    def version(name):
        if name not in installed:
            raise metadata.PackageNotFoundError(name)
        return "1.0"

    monkeypatch.setattr(metadata, "requires", lambda dist: requires)
    monkeypatch.setattr(metadata, "version", version)
    assert missing_requirements("train") == ["fastai>=2.8"]
    installed.add("fastai")
    assert missing_requirements("train") == []
