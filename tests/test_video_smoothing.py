"""Chroma smoothing, flicker measurement (CDC) and the GPU-side YUV conversion."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch

from colorizer_lib.errors import InputError
from colorizer_lib.metrics import cdc
from colorizer_lib.video import ChromaSmoother, colorize_video, rgb_to_yuv420p, yuv420p_to_rgb

from .test_video_support import one_torch_thread  # noqa: F401 (autouse fixture)
from .test_video_support import FFMPEG, decode_rgb, make_clip, needs_ffmpeg, tiny_colorizer

# ------------------------------------------------------------------------------------------ conversion

@needs_ffmpeg
def test_rgb_to_yuv420p_matches_ffmpeg():
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(1, 3, 8, 12, generator=g)
    rgb = torch.nn.functional.interpolate(rgb, size=(48, 64), mode="bilinear")  # smooth, so 4:2:0 is fair
    ours = rgb_to_yuv420p(rgb)[0].numpy().astype(np.int16)
    rgb8 = rgb[0].mul(255).round().byte().permute(1, 2, 0).contiguous().numpy()
    theirs = subprocess.run(
        [FFMPEG, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x48", "-i", "-",
         "-sws_flags", "bilinear+accurate_rnd+full_chroma_int", "-pix_fmt", "yuv420p", "-f", "rawvideo", "-"],
        input=rgb8.tobytes(), capture_output=True, check=True).stdout
    theirs = np.frombuffer(theirs, np.uint8).astype(np.int16)
    assert ours.shape == theirs.shape
    y = 64 * 48
    assert np.abs(ours[:y] - theirs[:y]).max() <= 1  # luma: same BT.601 limited-range maths
    assert np.abs(ours[y:] - theirs[y:]).mean() < 1.5  # chroma: same, up to the 2x2 filter


def test_yuv_known_values_and_round_trip():
    grey = torch.full((1, 3, 2, 2), 0.5)
    assert rgb_to_yuv420p(grey).tolist() == [[126, 126, 126, 126, 128, 128]]
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1
    assert rgb_to_yuv420p(red).tolist() == [[81, 81, 81, 81, 90, 240]]  # 16+219*0.299, 128-224*0.1687, 128+112
    g = torch.Generator().manual_seed(3)
    smooth = torch.nn.functional.interpolate(torch.rand(2, 3, 4, 4, generator=g), size=(32, 32), mode="bilinear")
    back = yuv420p_to_rgb(rgb_to_yuv420p(smooth), 32, 32)
    assert (back - smooth).abs().mean() < 0.03  # 8-bit rounding and nearest chroma upsampling
    with pytest.raises(ValueError):
        rgb_to_yuv420p(torch.rand(1, 3, 5, 4))


# ------------------------------------------------------------------------------------------ smoother

def _static_luma(n: int, value: float = 0.5) -> torch.Tensor:
    return torch.full((n, 1, 24, 24), value)


def test_smoothing_reduces_temporal_noise_on_a_static_scene():
    g = torch.Generator().manual_seed(1)
    chroma = 0.1 + 0.05 * torch.randn(40, 2, 8, 8, generator=g)
    smoothed = ChromaSmoother(0.8)(chroma, _static_luma(40))
    assert torch.equal(smoothed[0], chroma[0])  # no past yet
    raw_jitter = (chroma[1:] - chroma[:-1]).abs().mean()
    smooth_jitter = (smoothed[1:] - smoothed[:-1]).abs().mean()
    assert smooth_jitter < 0.35 * raw_jitter
    assert smoothed[10:].mean() == pytest.approx(0.1, abs=0.01)  # no bias


def test_off_switch_and_bad_strength():
    chroma = torch.rand(3, 2, 4, 4)
    assert ChromaSmoother(0.0)(chroma, _static_luma(3)) is chroma
    for bad in (-0.1, 1.0, 2):
        with pytest.raises(InputError, match=r"\[0, 1\)"):
            ChromaSmoother(bad)


def test_scene_cut_resets_and_is_counted():
    luma = torch.cat([_static_luma(5, 0.2), _static_luma(5, 0.8)])
    chroma = torch.cat([torch.full((5, 2, 8, 8), -0.2), torch.full((5, 2, 8, 8), 0.3)])
    smoother = ChromaSmoother(0.9)
    out = smoother(chroma, luma)
    assert torch.equal(out[5], chroma[5])  # the new scene does not inherit the old scene's colour
    assert smoother.scene_cuts == 1


def test_moving_parts_are_not_smeared():
    luma = torch.full((2, 1, 64, 64), 0.5)
    luma[1, :, :, :32] = 1.0  # the left half changed brightness strongly (something moved there)
    chroma = torch.stack([torch.zeros(2, 32, 32), torch.ones(2, 32, 32)])
    out = ChromaSmoother(0.9, cut_threshold=0.9)(chroma, luma)
    assert torch.allclose(out[1, :, :, :8], chroma[1, :, :, :8])  # follows the new colour where it moved
    assert torch.allclose(out[1, :, :, -8:], torch.full((2, 32, 8), 0.1))  # smoothed where static


def test_film_grain_is_not_mistaken_for_motion():
    g = torch.Generator().manual_seed(4)
    luma = (0.5 + 0.06 * torch.randn(2, 1, 64, 64, generator=g)).clamp(0, 1)  # per-pixel grain, no motion
    chroma = torch.stack([torch.zeros(2, 32, 32), torch.ones(2, 32, 32)])
    out = ChromaSmoother(0.9)(chroma, luma)
    assert out[1].mean() < 0.2  # mostly the past frame's colour (0.1 at full smoothing)


def test_batches_give_the_same_result_as_one_long_batch():
    g = torch.Generator().manual_seed(2)
    chroma = torch.randn(12, 2, 8, 8, generator=g)
    luma = torch.rand(12, 1, 16, 16, generator=g) * 0.05 + 0.4
    luma[7:] += 0.5  # a cut inside the second batch
    whole = ChromaSmoother(0.7)(chroma, luma)
    split = ChromaSmoother(0.7)
    parts = torch.cat([split(chroma[i:i + 5], luma[i:i + 5]) for i in range(0, 12, 5)])
    assert torch.allclose(whole, parts, atol=1e-6)


# ------------------------------------------------------------------------------------------ flicker

@needs_ffmpeg
def test_smoothing_lowers_flicker_of_a_static_scene_end_to_end(tmp_path):
    # A static scene with film-grain-like temporal noise: per-frame predictions jitter, smoothing steadies them.
    clip = make_clip(tmp_path / "grain.mp4", size="96x72", seconds=1.2, audio=False, source="testsrc",
                     vf="trim=end_frame=1,loop=loop=-1:size=1,noise=alls=5:allf=t,trim=end_frame=30",
                     out_args=("-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv420p"))
    col = tiny_colorizer()
    flicker = {}
    for strength in (0.0, 0.8):
        result = colorize_video(clip, col, tmp_path / f"s{strength}.mp4", render_factor=3, smoothing=strength,
                                progress=False)
        assert result.frames_out == 30 and result.scene_cuts == 0
        frames = torch.from_numpy(decode_rgb(result.path, 96, 72)).permute(0, 3, 1, 2).float() / 255
        flicker[strength] = cdc(frames)  # colour-distribution consistency (metrics.py): lower = steadier
    assert flicker[0.8] < 0.6 * flicker[0.0], flicker  # measured: 0.0035 off, 0.0017 at 0.6, 0.0014 at 0.8
