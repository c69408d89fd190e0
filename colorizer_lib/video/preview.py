"""Preview: colorize a few frames of a video at several render factors to choose one before rendering."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..constants import VIDEO_PREVIEW_RENDER_FACTORS, check_render_factor
from ..errors import InputError
from .binaries import FFmpegTools, find_tools, tail
from .convert import gray_u8_to_luma
from .probe import VideoInfo, probe

DEFAULT_RENDER_FACTORS = VIDEO_PREVIEW_RENDER_FACTORS


@dataclass
class PreviewResult:
    """``images[(time, render_factor)]`` are full-size PIL RGB frames; ``grid`` shows them all labelled
    (one row per time, one column per render factor); ``path`` is where the grid was saved, if anywhere;
    ``note`` says which asked-for render factors the model does not take were moved (``""`` when none)."""

    times: list[float]
    render_factors: list[int]
    images: dict[tuple[float, int], Image.Image] = field(repr=False)
    grid: Image.Image = field(repr=False)
    path: Path | None = None
    note: str = ""


def extract_gray_frame(tools: FFmpegTools, info: VideoInfo, time: float) -> np.ndarray:
    """The ``(H, W)`` uint8 luma of the frame shown at ``time`` seconds (display orientation)."""
    cmd = [tools.ffmpeg, "-nostdin", "-v", "error", "-ss", f"{time:.6f}", "-i", info.path, "-map", "0:v:0",
           "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
    want = info.width * info.height
    if proc.returncode != 0 or len(proc.stdout) < want:
        why = tail(proc.stderr.decode("utf-8", "replace")) if proc.returncode else "no frame there"
        raise InputError(f"No frame at {time:.2f} s in {info.path!r} ({why}); pick a time inside the video.")
    return np.frombuffer(proc.stdout[:want], np.uint8).reshape(info.height, info.width)


def preview_video(source: str | os.PathLike, colorizer, times: list[float] | None = None, n_frames: int = 3,
                  render_factors=DEFAULT_RENDER_FACTORS, output: str | os.PathLike | None = None,
                  thumb_width: int = 320, tools: FFmpegTools | None = None) -> PreviewResult:
    """Colorize the frames at ``times`` (default: ``n_frames`` spread over the video) at each render factor.

    Uses the same ``predict_chroma -> compose`` path as the full render (without temporal smoothing).
    Saves the labelled grid to ``output`` (PNG/JPEG) when given.
    """
    # checked before any decoding, as colorize_video; values the model refuses (odd ones for DDColor) move to
    # the next it takes: the grid's labels show which ran, and ``note`` says so
    rfs, note = colorizer.fit_render_factors(check_render_factor(rf) for rf in render_factors)
    tools = tools or find_tools()
    info = probe(source, tools)
    if times is None:
        if not info.duration:
            raise InputError("The video states no duration; pass explicit preview times.")
        times = [round(info.duration * (k + 0.5) / n_frames, 3) for k in range(n_frames)]
    if not times or not rfs:
        raise InputError("Give at least one preview time and one render factor.")
    images: dict[tuple[float, int], Image.Image] = {}
    with torch.inference_mode():
        for t in times:
            gray = torch.from_numpy(extract_gray_frame(tools, info, t).copy())
            luma = gray_u8_to_luma(gray[None], colorizer.device)  # as the full render reads its frames
            for rf in rfs:
                rgb = colorizer.compose(luma, colorizer.predict_chroma(luma, rf))[0]
                arr = rgb.float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
                images[(t, rf)] = Image.fromarray(arr, "RGB")
    grid = _grid(images, times, rfs, thumb_width)
    path = None
    if output is not None:
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        grid.save(path)
    return PreviewResult(times=list(times), render_factors=rfs, images=images, grid=grid, path=path, note=note)


def _grid(images, times, rfs, thumb_width: int) -> Image.Image:
    first = next(iter(images.values()))
    tw = thumb_width
    th = max(1, round(first.height * tw / first.width))
    label_h = 16
    grid = Image.new("RGB", (tw * len(rfs), (th + label_h) * len(times)), "black")
    draw = ImageDraw.Draw(grid)
    for r, t in enumerate(times):
        for c, rf in enumerate(rfs):
            x, y = c * tw, r * (th + label_h)
            grid.paste(images[(t, rf)].resize((tw, th), Image.BILINEAR), (x, y + label_h))
            draw.text((x + 4, y + 2), f"render_factor {rf}  t={t:.2f}s", fill="white")
    return grid
