"""The notebooks: structure (valid, stripped, Colab-ready) and headless Run all on the CPU.

Each notebook runs top to bottom in a real kernel (nbclient) with a tiny model and tiny inputs
injected after its parameters cell (papermill style); the tests then check what it produced:
files, sizes, colour, frame counts.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

from colorizer_lib import project
from tests.browser.support import grey_photo, is_tinted, make_clip, register_test_architectures, tiny_weights

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ["ImageColorizer.ipynb", "VideoColorizer.ipynb"]


def load(name: str):
    return nbformat.read(ROOT / name, as_version=4)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_structure(name):
    nb = load(name)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), "outputs must be stripped"
    assert project.colab_url(name) in nb.cells[0].source and "colab-badge.svg" in nb.cells[0].source
    assert "![" in nb.cells[0].source  # the intro shows a picture
    # One install cell, Colab only, %pip (never !pip), nothing that touches torch.
    installs = [c for c in code if "pip install" in c.source]
    assert len(installs) == 1
    install = installs[0].source
    assert "import google.colab" in install and "\n    %pip install" in install and "!pip" not in install
    assert f'%pip install -q "{project.pip_requirement("video")}"' in install
    assert not re.search(r"pip install[^\n]*torch", install)  # never fights Colab's own torch
    # Exactly one parameters cell, with Colab form fields.
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and params[0].source.count("#@param") >= 5
    assert any("describe_runtime()" in c.source for c in code)
    # No logic beyond calling the library: no definitions, loops or imports of internals.
    for cell in code:
        assert not re.search(r"^\s*(def|class|for|while|with|lambda)\b", cell.source, re.M), cell.source


@pytest.mark.parametrize("name", project.FILES_NAMING_IT)
def test_every_repository_address_is_the_projects_one(name):
    """Colab badges, install cells and picture links all name ``project.REPOSITORY`` (a fork changes
    that one line and runs ``python -m colorizer_lib.project``)."""
    text = (ROOT / name).read_text(encoding="utf-8")
    found = project.addresses(text)
    assert found, f"{name} names no repository address"
    assert {repo for repo, _ in found} == {project.REPOSITORY}
    assert {branch for _, branch in found} <= {project.BRANCH, ""}
    assert project.rewrite(text) == text
    if name.endswith(".ipynb"):
        assert project.colab_url(name) in text


def test_a_fork_rewrites_every_address(tmp_path, monkeypatch, capsys):
    for name in project.FILES_NAMING_IT:
        (tmp_path / name).write_text((ROOT / name).read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(project, "REPOSITORY", "someone/fork")
    monkeypatch.setattr(project, "BRANCH", "dev")
    assert project.main(tmp_path) == 0
    for name in project.FILES_NAMING_IT:
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert set(project.addresses(text)) <= {("someone/fork", "dev"), ("someone/fork", "")}
        assert "colorizer-project" not in text
    text = (tmp_path / "ImageColorizer.ipynb").read_text(encoding="utf-8")
    assert "https://colab.research.google.com/github/someone/fork/blob/dev/ImageColorizer.ipynb" in text
    assert "git+https://github.com/someone/fork" in text
    nbformat.validate(nbformat.read(tmp_path / "ImageColorizer.ipynb", as_version=4))
    assert "someone/fork" in capsys.readouterr().out


@pytest.fixture(scope="module")
def hermetic_env(tmp_path_factory):
    base = tmp_path_factory.mktemp("jupyter")
    env = {name: str(base / name.lower()) for name in
           ("JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "IPYTHONDIR", "MPLCONFIGDIR", "JUPYTER_DATA_DIR")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    register_test_architectures(env["IPYTHONDIR"])  # the kernels load the tiny test model
    yield env
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def execute(name: str, params: dict, env) -> nbformat.NotebookNode:
    """Run notebook ``name`` from the repository root with ``params`` injected after its parameters cell."""
    from nbclient import NotebookClient

    nb = load(name)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, injected)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return nb


def text_outputs(nb) -> str:
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def widget_models(nb) -> list[dict]:
    """Every widget model (``model_name``, ``state``) in the widget state nbclient saved."""
    return list(nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
                .get("state", {}).values())


def widget_values(nb) -> list[str]:
    """The ``value`` of every string-valued widget in the saved widget state."""
    return [m["state"]["value"] for m in widget_models(nb) if isinstance(m.get("state", {}).get("value"), str)]


def luma(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float64)


@pytest.mark.slow
def test_image_notebook_runs_headless(tmp_path, hermetic_env):
    weights = tiny_weights(tmp_path / "tiny.safetensors")
    batch = tmp_path / "album"
    batch.mkdir()
    grey_photo(batch / "a.png")
    grey_photo(batch / "b.png", size=(40, 30))
    out = tmp_path / "out"
    nb = execute("ImageColorizer.ipynb", {"model": str(weights), "render_factor": 8, "sweep_factors": "4, 8",
                                         "batch_folder": str(batch), "output_dir": str(out)}, hermetic_env)
    assert "No GPU found" in text_outputs(nb)
    # Run all with no photo given colorizes the default historical example.
    example = ROOT / "examples" / "dust-bowl-home.jpg"
    result = out / "dust-bowl-home_colorized_rf8.jpg"
    colour, original = Image.open(result), Image.open(example)
    assert colour.size == original.size and colour.mode == "RGB" and is_tinted(colour)
    assert np.corrcoef(luma(colour).ravel(), luma(original).ravel())[0, 1] > 0.95  # the photo's own detail is kept
    # The sweep grid: two labelled cells, both colorized.
    sweep = Image.open(out / "dust-bowl-home_sweep.png")
    assert sweep.size == (2 * 320, 320 + 26)
    assert is_tinted(sweep.crop((0, 26 + 80, 320, 26 + 240))) and is_tinted(sweep.crop((320, 26 + 80, 640, 26 + 240)))
    # Batch mode: the folder became one zip of colorized photos of the same sizes.
    with zipfile.ZipFile(out / "album_colorized_rf8.zip") as zf:
        assert sorted(zf.namelist()) == ["a_colorized.png", "b_colorized.png"]
        b = Image.open(io.BytesIO(zf.read("b_colorized.png")))
        assert b.size == (40, 30) and is_tinted(b)
    # The UI was displayed, and its saved widget state shows the result and the status line.
    views = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) >= 2  # the UI and the batch download
    state = widget_values(nb)
    # The status line's last message is the sweep's (it ran after the photo).
    assert any("Sweep saved to" in v and "dust-bowl-home_sweep.png" in v for v in state)
    # The kernel ran the ipywidgets this test runs under (.ci/run runs these tests under 7.7.1 and 8.x).
    import ipywidgets

    controls = {m["model_module_version"] for m in widget_models(nb) if m["model_module"] == "@jupyter-widgets/controls"}
    assert controls == {"1.5.0" if ipywidgets.__version__.startswith("7.") else "2.0.0"}
    # The links box stays empty after Run all: the example is not what the user gives next.
    boxes = [m["state"] for m in widget_models(nb) if m["model_name"] == "TextareaModel"]
    assert len(boxes) == 1 and boxes[0]["value"] == ""
    assert any('download="dust-bowl-home_colorized_rf8.jpg"' in v for v in state)
    assert any("colorizer-before-after" in v for v in state)


@pytest.mark.slow
def test_video_notebook_runs_headless(tmp_path, hermetic_env):
    weights = tiny_weights(tmp_path / "tiny.safetensors")
    clip = make_clip(tmp_path / "film.mp4")
    out = tmp_path / "out"
    nb = execute("VideoColorizer.ipynb", {"model": str(weights), "render_factor": 4, "video_url": str(clip),
                                         "preview_factors": "4, 6", "preview_frames": 2, "output_dir": str(out)},
                 hermetic_env)
    preview = Image.open(out / "film_preview.png")
    assert preview.width > 2 * 64 and is_tinted(preview.crop((preview.width // 2, preview.height // 3,
                                                                 preview.width, preview.height)))
    video = out / "film_colorized_rf4.mp4"
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json",
                                       str(video)], capture_output=True, text=True, check=True).stdout)
    streams = {s["codec_type"]: s for s in probe["streams"]}
    assert int(streams["video"]["nb_read_frames"]) == 10 and "audio" in streams
    assert (int(streams["video"]["width"]), int(streams["video"]["height"])) == (64, 48)
    frame = subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-vf", "select=eq(n\\,5)", "-frames:v", "1",
                            "-f", "image2pipe", "-vcodec", "png", "-"], capture_output=True, check=True).stdout
    assert is_tinted(Image.open(io.BytesIO(frame)))
    # The status line reports the render; no error is shown.
    assert any("Done: 10 frames" in v for v in widget_values(nb))
    # The render's progress bar (count, rate and ETA) was shown inside the UI and reached 10/10.
    bars = [m["state"] for m in widget_models(nb) if m["model_name"] == "FloatProgressModel"]
    assert any(b["value"] == b["max"] == 10 for b in bars)
    assert any(re.search(r"10/10.\[\d\d:\d\d(<|&lt;)\d\d:\d\d", v) for v in widget_values(nb))  # elapsed<ETA
