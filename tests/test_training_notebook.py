"""Training.ipynb runs headless, top to bottom, with tiny parameters injected after its parameter cells."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
        "parameters-export": "PICK = 'gan_000002'\nRENDER_FACTOR = 2",
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
    assert Image.open(out / "example.jpg").size == (40, 32)
    assert (out / "3_gan" / "samples" / "gan_000002.png").is_file()
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") in ("display_data", "execute_result") and "image/png" in o.get("data", {})]
    assert len(images) >= 3  # loss plot / grids and the final comparison
