"""Shared helpers for the widget and notebook tests: a tiny deterministic colorizer and test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The colour the tiny model paints everything (before the luma of the input is put back).
TINT = (0.85, 0.45, 0.15)


class TintModel(nn.Module):
    """A generator stand-in that predicts the constant colour ``TINT`` (ImageNet-normalised output,
    as the library expects from every generator) for any input of shape (B, 3, S, S)."""

    def __init__(self, tint=TINT):
        super().__init__()
        value = [(c - m) / s for c, m, s in zip(tint, IMAGENET_MEAN, IMAGENET_STD)]
        self.register_buffer("value", torch.tensor(value).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.expand(x.shape[0], 3, x.shape[2], x.shape[3]).clone()


def tint_colorizer(name: str = "tiny", default_render_factor: int = 8):
    """A real ``Colorizer`` around ``TintModel`` (fast on the CPU, deterministic)."""
    from colorizer_lib.colorizer import Colorizer

    return Colorizer.from_model(TintModel(), name=name, default_render_factor=default_render_factor,
                                device="cpu")


def grey_photo(path: Path, size=(96, 64)) -> Path:
    """Write a grey horizontal gradient (mid tones, so chroma is visible) and return its path."""
    width, height = size
    ramp = np.linspace(60, 200, width, dtype=np.float32)[None, :].repeat(height, axis=0)
    Image.fromarray(ramp.astype(np.uint8), "L").convert("RGB").save(path)
    return path


def mean_rgb(image: Image.Image) -> np.ndarray:
    """Mean (R, G, B) of an image in 0..255."""
    return np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(axis=0)


def is_tinted(image: Image.Image) -> bool:
    """True when the image is clearly warm (R > G > B by a margin), as the tint model paints it."""
    r, g, b = mean_rgb(image)
    return r - b > 25 and r > g > b


def register_test_architectures(ipython_dir: str | Path) -> Path:
    """Make IPython kernels started with ``IPYTHONDIR=ipython_dir`` import :mod:`tests.architectures`
    first, so a notebook can load :func:`tiny_weights` (the test-only ``deoldify-deep-tiny``).
    Returns the startup file written."""
    startup = Path(ipython_dir) / "profile_default" / "startup" / "00-test-architectures.py"
    startup.parent.mkdir(parents=True, exist_ok=True)
    root = str(Path(__file__).resolve().parents[2])
    startup.write_text(f"import sys\nsys.path.insert(0, {root!r})\nimport tests.architectures  # noqa: F401\n")
    return startup


def tiny_weights(path: Path, tint_logits=(40.0, 0.0, -40.0)) -> Path:
    """Save a tiny random-weight DeOldify U-Net (``deoldify-deep-tiny``, 0.3 M parameters) whose final
    bias saturates the output to a strong orange: red at its maximum, blue at its minimum.
    ``.safetensors`` paths get the architecture in the metadata (fast to load); others use torch.save.

    ``Colorizer.from_pretrained(path)`` recognises the architecture from the state dict, so a
    notebook's ``model`` parameter can point at this file (in a kernel that registered it:
    :func:`register_test_architectures`). Colorized images come out warm
    (``is_tinted``) whatever the input.
    """
    from colorizer_lib.models import build_generator

    torch.manual_seed(0)
    model = build_generator("deoldify-deep-tiny")
    state = model.state_dict()
    key = next(k for k in state if k.endswith(".bias") and state[k].shape == (3,) and k.startswith("layers.11"))
    state[key] = torch.tensor(tint_logits, dtype=state[key].dtype)
    if Path(path).suffix == ".safetensors":  # with the arch recorded, as colorizer_lib's exports do
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"arch": "deoldify-deep-tiny"})
    else:
        torch.save(state, path)
    return path


def make_clip(path: Path, seconds: float = 1.0, size: str = "64x48", rate: int = 10) -> Path:
    """A grey ffmpeg test-pattern clip with a sine soundtrack (H.264 + AAC in MP4)."""
    import subprocess

    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}:"
                    f"duration={seconds}", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    "-vf", "format=gray,format=yuv420p", "-c:v", "libx264", "-c:a", "aac", "-shortest", str(path)],
                   check=True)
    return path
