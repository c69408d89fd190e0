"""Where the notebook runs: Colab or Jupyter, the Drive folder, and a one-line description of the device.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from colorizer_lib.errors import InputError


def in_colab() -> bool:
    """True when running inside Google Colab."""
    try:
        importlib.import_module("google.colab")
    except ImportError:
        return False
    return True


def drive_folder(subfolder: str, mount_point: str = "/content/drive") -> Path:
    """On Colab, mount Google Drive (asks for permission) and return ``MyDrive/<subfolder>``
    (created), so results and long video jobs survive a disconnect. Elsewhere raises
    ``InputError``: keep a local folder instead."""
    if not in_colab():
        raise InputError("Google Drive can only be mounted on Colab; set keep_on_drive = False and use a "
                         "local folder.")
    importlib.import_module("google.colab.drive").mount(mount_point)
    folder = Path(mount_point) / "MyDrive" / subfolder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def describe_runtime(torch_module: Any = None) -> str:
    """One paragraph saying whether a GPU is present and what that means for speed.

    ``torch_module`` defaults to the real ``torch``; tests pass a stand-in with ``cuda``.
    """
    if torch_module is None:
        import torch as torch_module
    cuda = torch_module.cuda
    if cuda.is_available():
        props = cuda.get_device_properties(0)
        gib = props.total_memory / 2**30
        return (f"GPU found: {cuda.get_device_name(0)} ({gib:.0f} GiB). A photo takes about a second and "
                "video renders at several frames per second.")
    return ("No GPU found: running on the CPU. The compact model colorizes a photo in seconds, the large "
            "DeOldify models take up to a minute per photo, and video is very slow (seconds per frame). "
            "On Colab choose Runtime > Change runtime type > GPU, then Run all again.")
