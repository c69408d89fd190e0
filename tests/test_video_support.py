"""Helpers shared by the video tests (no tests here): synthetic clips made with ffmpeg, a tiny colorizer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None or FFPROBE is None, reason="ffmpeg/ffprobe not installed")


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-y", *args], check=True)


def make_clip(path: Path, size: str = "160x120", rate: str = "25", seconds: float = 2.0, audio: bool = True,
              source: str = "testsrc", vf: str | None = None, out_args: tuple[str, ...] = ()) -> Path:
    """A ``testsrc`` (or other lavfi source) clip, H.264 yuv420p, with a 440 Hz ``sine`` track when ``audio``."""
    args = ["-f", "lavfi", "-i", f"{source}=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    if vf:
        args += ["-vf", vf]
    if not out_args:
        out_args = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
    args += [*out_args]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    ffmpeg(*args, str(path))
    return path


def decode_rgb(path: Path, width: int, height: int) -> np.ndarray:
    """All frames of ``path`` as ``(T, H, W, 3)`` uint8 RGB."""
    raw = subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3).copy()


def decode_gray(path: Path, width: int, height: int) -> np.ndarray:
    raw = subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width).copy()


def stream_info(path: Path) -> list[dict]:
    """ffprobe's stream list (codec_type, width, height, nb_read_packets, duration...) for ``path``."""
    import json

    out = subprocess.run([FFPROBE, "-v", "error", "-count_packets", "-print_format", "json", "-show_streams",
                          str(path)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["streams"]


def tiny_model(seed: int = 0):
    """DeOldify's deep U-Net on a tiny ResNet with seeded random weights (fast on a CPU)."""
    from colorizer_lib.models import build_generator

    torch.manual_seed(seed)
    return build_generator("deoldify-deep-tiny").eval()


def tiny_colorizer(seed: int = 0):
    from colorizer_lib.colorizer import Colorizer

    return Colorizer.from_model(tiny_model(seed), name="tiny", default_render_factor=4, device="cpu")


class CountingColorizer:
    """Wraps a Colorizer, counting frames sent to the model; raises KeyboardInterrupt after ``stop_after``
    batches to simulate a user or a Colab disconnect interrupting a long run."""

    def __init__(self, inner, stop_after: int | None = None):
        self.inner, self.stop_after = inner, stop_after
        self.device, self.default_render_factor, self.name = inner.device, inner.default_render_factor, inner.name
        self.batches = self.frames = 0

    def predict_chroma(self, luma, render_factor=None):
        if self.stop_after is not None and self.batches >= self.stop_after:
            raise KeyboardInterrupt("simulated interruption")
        self.batches += 1
        self.frames += luma.shape[0]
        return self.inner.predict_chroma(luma, render_factor)

    def compose(self, luma, chroma):
        return self.inner.compose(luma, chroma)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: ffmpeg runs beside torch, and OpenMP spinning on 2 shared cores is up to 30x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
