"""Architectures that exist only for the tests, registered in the production table when imported.

``conftest.py`` imports this module, so every test can build them; processes the tests start (notebook
kernels, subprocesses) import it themselves (see ``tests/browser/support.py:register_test_architectures``).
"""

from __future__ import annotations

from colorizer_lib.models import register_architecture
from colorizer_lib.models.deoldify import DeOldifyUnet
from colorizer_lib.models.resnet import ResNetConfig

TINY_DEEP = "deoldify-deep-tiny"


@register_architecture(TINY_DEEP)
def tiny_deep() -> DeOldifyUnet:
    """DeOldify's deep U-Net on a tiny 4-stage ResNet (the shape of the numerical reference fixture).

    Random-weight instances of it make fast stand-ins for tests, demos and notebook smoke runs.
    """
    return DeOldifyUnet(ResNetConfig("basic", (1, 1, 1, 1), 8, (8, 16, 32, 64)), "deep", 0.75)


def python_path_registering_them(folder) -> str:
    """A ``PYTHONPATH`` value under which every Python process registers these architectures at start-up
    (a ``sitecustomize`` module written into ``folder``), for tests whose code under test starts
    ``python -m colorizer_lib.cli`` itself. Returns the value to put in the environment."""
    import os
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        f"import sys\nsys.path.insert(0, {root!r})\nimport tests.architectures  # noqa: F401\n")
    return os.pathsep.join(p for p in (str(folder), root, os.environ.get("PYTHONPATH", "")) if p)
