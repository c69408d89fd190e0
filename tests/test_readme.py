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
