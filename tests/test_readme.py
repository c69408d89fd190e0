"""The README stays true: its model table is the registry's, its commands exist."""

from __future__ import annotations

from pathlib import Path

from colorizer_lib.registry import list_specs, markdown_table

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_model_table_is_generated_from_the_registry():
    assert markdown_table() in README, "run `python docs/update_readme.py`"
    for spec in list_specs():
        assert f"`{spec.name}`" in README


def test_quick_start_example_photo_exists():
    root = Path(__file__).resolve().parents[1]
    assert "examples/dust-bowl-home.jpg" in README
    assert (root / "examples" / "dust-bowl-home.jpg").is_file()


def test_ci_installs_the_way_the_readme_says():
    """`.ci/run` is the README's install, CPU-only variant included, so a user's install is what CI tested."""
    root = Path(__file__).resolve().parents[1]
    ci = (root / ".ci" / "run").read_text()
    assert 'pip install -e ".[train,onnx,dev]"' in README and 'pip install -q -e ".[train,onnx,dev]"' in ci
    cpu_index = "https://download.pytorch.org/whl/cpu"
    assert f"pip install torch torchvision --index-url {cpu_index}" in README
    assert f"CPU_INDEX={cpu_index}" in ci and 'pip install -q torch torchvision --index-url "$CPU_INDEX"' in ci
