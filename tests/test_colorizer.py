"""Colorizer: DeOldify's image semantics, render factors, batching, big images, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from colorizer_lib import colorizer as colorizer_module
from colorizer_lib import merge as merge_module
from colorizer_lib import loading
from colorizer_lib.color import rgb_to_luma
from colorizer_lib.colorizer import RENDER_FACTOR_RANGE, Colorizer, check_render_factor
from colorizer_lib.errors import ColorizerOutOfMemoryError, RenderFactorError, VerificationError, WeightsError
from colorizer_lib.io import load_image
from tests.conftest import BW_EXAMPLES, FIXTURES

PIPE_IN = FIXTURES / "deoldify_tiny_pipeline_in.png"
PIPE_OUT = FIXTURES / "deoldify_tiny_pipeline_out.png"


def _array(img) -> np.ndarray:
    return np.asarray(img.convert("RGB")).astype(np.int16)


def test_pipeline_reproduces_the_original_given_the_same_model_input(tiny_colorizer, tiny_reference):
    """From the original's own model input, our model + chroma + merge reproduce its output PNG.

    The original truncated the model's RGB to uint8 (up to -1 level per channel), resized it in 8-bit
    fixed point and merged in 8-bit YUV; we stay in float. Those roundings add up to at most 3
    levels, and the fixture itself varies by 2 levels between runs (fixture notes, section 6)."""
    chroma = tiny_colorizer.chroma_from_input(tiny_reference["inputs"]["x64"], 4)
    rgb = tiny_colorizer._compose_to_uint8(load_image(PIPE_IN), chroma)
    diff = np.abs(rgb.astype(np.int16) - _array(Image.open(PIPE_OUT)))
    assert diff.max() <= 3
    assert np.mean(diff <= 2) > 0.999
    assert diff.mean() < 0.5


def test_pipeline_end_to_end_from_the_input_png(tiny_colorizer):
    """End to end from the PNG. Our grey model input is resampled in float instead of PIL's 8-bit
    fixed point, which moves it by at most ~1 grey level; the random-weight tiny model amplifies that
    into larger chroma changes at a few pixels, so the bound is on the typical pixel."""
    result = tiny_colorizer.colorize(PIPE_IN, render_factor=4)
    diff = np.abs(_array(result.image) - _array(Image.open(PIPE_OUT)))
    assert result.image.size == (160, 120)
    assert diff.mean() < 1.5
    assert np.mean(diff <= 2) > 0.9
    assert np.percentile(diff, 99) <= 10


def test_model_input_matches_the_original_within_one_grey_level(tiny_colorizer, tiny_reference):
    x = tiny_colorizer.model_input(_luma(PIPE_IN), 4)
    level = 1 / 255 / 0.225  # one grey level in the most sensitive normalised channel
    assert (x - tiny_reference["inputs"]["x64"]).abs().max().item() < 1.5 * level


def _luma(path) -> torch.Tensor:
    from colorizer_lib.io import to_luma_tensor

    return to_luma_tensor(load_image(path))


def test_colorize_keeps_size_and_luminance_and_adds_colour(tiny_colorizer):
    src = Image.open(BW_EXAMPLES / "dust-bowl-home.jpg")
    result = tiny_colorizer.colorize(src, render_factor=6)
    out = np.asarray(result.image).astype(np.float32) / 255
    assert result.image.size == src.size and result.image.mode == "RGB"
    assert result.render_factor == 6 and result.model_name == "tiny"
    grey = np.asarray(src.convert("L")).astype(np.float32) / 255
    luma = rgb_to_luma(torch.from_numpy(out).permute(2, 0, 1)).numpy()[0]
    assert np.abs(luma - grey).mean() < 0.01  # the original luminance survives the merge
    assert np.abs(out[..., 0] - out[..., 2]).mean() > 0.005  # there is colour


def test_rgba_input_keeps_its_alpha(tiny_colorizer):
    rgba = Image.new("RGBA", (40, 30), (120, 120, 120, 255))
    alpha = np.zeros((30, 40), np.uint8)
    alpha[:, 20:] = 200
    rgba.putalpha(Image.fromarray(alpha))
    result = tiny_colorizer.colorize(rgba)
    assert result.image.mode == "RGBA"
    assert np.array_equal(np.asarray(result.image)[..., 3], alpha)


@pytest.mark.parametrize("bad", [0, 1, RENDER_FACTOR_RANGE[1] + 1, -5, 3.5, "35", None.__class__, True])
def test_invalid_render_factors_are_rejected_with_the_range(bad):
    with pytest.raises(RenderFactorError, match=f"{RENDER_FACTOR_RANGE[0]}.*{RENDER_FACTOR_RANGE[1]}"):
        check_render_factor(bad)


def test_render_factor_error_reaches_the_caller(tiny_colorizer):
    with pytest.raises(RenderFactorError):
        tiny_colorizer.colorize(PIPE_IN, render_factor=500)


def test_batch_equals_one_by_one(tiny_colorizer):
    sources = [BW_EXAMPLES / name for name in ("dust-bowl-home.jpg", "nagasaki-boats.jpg", "black-canyon.jpg")]
    batched = tiny_colorizer.colorize_batch(sources, render_factor=5, batch_size=3)
    single = [tiny_colorizer.colorize(s, render_factor=5) for s in sources]
    for b, s in zip(batched, single):
        assert np.abs(_array(b.image) - _array(s.image)).max() <= 1


def test_large_images_are_merged_in_strips_with_the_same_result(tiny_colorizer, monkeypatch):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (700, 900), dtype=np.uint8), "L")
    direct = tiny_colorizer.colorize(img, render_factor=4)
    monkeypatch.setattr(merge_module, "STRIP_PIXELS", 10_000)
    monkeypatch.setattr(merge_module, "STRIP_ROWS", 97)
    strips = tiny_colorizer.colorize(img, render_factor=4)
    assert np.abs(_array(direct.image) - _array(strips.image)).max() <= 1


def test_out_of_memory_is_a_typed_error_never_a_grey_image(tiny_colorizer, monkeypatch):
    def explode(x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(tiny_colorizer, "model", explode)
    with pytest.raises(ColorizerOutOfMemoryError, match="lower the render factor"):
        tiny_colorizer.colorize(PIPE_IN, render_factor=4)


def test_sixteen_bit_grey_keeps_full_precision_luma(tiny_colorizer):
    # A mid-grey ramp (far from the gamut edges, where saturated chroma would clip luma).
    ramp = (np.linspace(0.3, 0.7, 64 * 48).reshape(48, 64) * 65535).astype(np.uint16)
    result = tiny_colorizer.colorize(ramp, render_factor=4)
    out = np.asarray(result.image).astype(np.float32)
    luma = 0.299 * out[..., 0] + 0.587 * out[..., 1] + 0.114 * out[..., 2]
    assert np.abs(luma - ramp / 257.0).mean() < 1.5  # not clipped to white as PIL's convert('L') would


def test_saved_file_records_provenance(tiny_colorizer, tmp_path):
    from colorizer_lib.io import read_provenance

    result = tiny_colorizer.colorize(PIPE_IN, render_factor=4)
    path = result.save(tmp_path / "out.png")
    meta = read_provenance(path)
    assert meta.get("colorizer:model") == "tiny" and meta.get("colorizer:render_factor") == "4"
    with pytest.raises(Exception, match="input"):
        result.save(PIPE_IN, forbid=[PIPE_IN])


def test_compare_is_side_by_side(tiny_colorizer):
    result = tiny_colorizer.colorize(PIPE_IN, render_factor=4)
    pair = result.compare()
    assert pair.width >= 2 * 160 and pair.height >= 120


def test_from_pretrained_local_file_identifies_the_architecture(tiny_weights_file):
    col = Colorizer.from_pretrained(tiny_weights_file, device="cpu")
    assert col.name == "tiny_deep" and col.dtype == torch.float32
    assert col.colorize(PIPE_IN, render_factor=4).image.size == (160, 120)


def test_from_pretrained_rejects_a_wrong_models_file(tmp_path):
    path = tmp_path / "not_a_colorizer.pth"
    torch.save({"fc.weight": torch.zeros(10, 4), "fc.bias": torch.zeros(10)}, path)
    with pytest.raises(VerificationError, match="not_a_colorizer.pth"):
        Colorizer.from_pretrained(path, device="cpu")


def test_from_pretrained_unknown_name_lists_the_known_models():
    with pytest.raises(WeightsError, match="artistic.*stable.*video"):
        Colorizer.from_pretrained("nonsense-model", device="cpu")


def test_from_pretrained_missing_path_is_clear(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        Colorizer.from_pretrained(tmp_path / "nothing.pth", device="cpu")


def test_cuda_request_without_gpu_is_explained():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        colorizer_module.resolve_device("cuda")


def test_cpu_defaults_to_float32_and_dtype_override(tiny_deep):
    assert Colorizer.from_model(tiny_deep, device="cpu").dtype == torch.float32
    bf16 = Colorizer.from_model(tiny_deep, device="cpu", dtype="bf16", default_render_factor=4)
    assert bf16.dtype == torch.bfloat16
    assert bf16.colorize(PIPE_IN).image.size == (160, 120)


def test_embedded_compact_model_loads_verified_and_offline():
    from colorizer_lib.registry import get_spec

    spec = get_spec("compact")
    assert spec.bundled is not None and spec.bundled.stat().st_size == spec.size
    col = Colorizer.from_pretrained("compact", device="cpu")
    assert col.name == "compact" and col.default_render_factor == spec.default_render_factor
    out = np.asarray(col.colorize(BW_EXAMPLES / "black-canyon.jpg").image).astype(np.float32)
    assert np.abs(out[..., 0] - out[..., 2]).mean() > 3  # a real model: clearly coloured


def test_bundled_weights_are_checked_against_the_record(tmp_path, monkeypatch):
    import dataclasses
    import shutil

    from colorizer_lib import registry

    spec = registry.get_spec("compact")
    tampered = tmp_path / "compact.safetensors"
    shutil.copy(spec.bundled, tampered)
    with open(tampered, "r+b") as f:  # flip one byte at the end of the data, same size
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 0xFF]))
    monkeypatch.setattr(registry, "_SPECS", tuple(dataclasses.replace(s, bundled=tampered) if s.name == "compact" else s
                                                 for s in registry._SPECS))
    with pytest.raises(VerificationError):
        Colorizer.from_pretrained("compact", device="cpu")


def test_no_model_named_and_no_network_falls_back_to_the_embedded_model(monkeypatch, capsys):
    import dataclasses

    from tests.http_server import closed_port_url

    dead = closed_port_url()
    monkeypatch.setattr(loading, "with_mirrors",
                        lambda spec: dataclasses.replace(spec, urls=(f"{dead}/{spec.filename}",)))
    col = Colorizer.from_pretrained(None, device="cpu", progress=False)
    assert col.name == "compact"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "embedded 'compact'" in err and "colorize models --download" in err


def test_onnx_runtime_gives_the_same_picture(tiny_deep, tmp_path):
    torch_col = Colorizer.from_model(tiny_deep, name="tiny", default_render_factor=4, device="cpu")
    onnx_col = Colorizer.from_model(tiny_deep, name="tiny", default_render_factor=4, device="cpu")
    onnx_col.use_onnx_runtime(tmp_path)
    a = _array(torch_col.colorize(PIPE_IN).image)
    b = _array(onnx_col.colorize(PIPE_IN).image)
    assert np.abs(a - b).max() <= 1
    assert list((tmp_path / "onnx").glob("tiny-*-rf4.onnx"))  # exported once, cached for later runs


def test_onnx_runtime_refuses_gpu_precision(tiny_deep):
    col = Colorizer.from_model(tiny_deep, device="cpu", dtype="bfloat16")
    with pytest.raises(ValueError, match="CPU float32"):
        col.use_onnx_runtime()


@pytest.mark.parametrize("size", [(300, 400), (40, 30), (20, 400), (300, 24)])
def test_compose_resizes_chroma_like_an_antialiased_bilinear_filter(size):
    """Shrinking chroma (photos smaller than the model's input) is antialiased; growing it takes the
    plain bilinear kernel (much faster on a GPU), which gives the same values when upsampling.

    The two kernels give the same weights in exact arithmetic but compute them differently in float32,
    so when upsampling they differ by rounding, bounded from the tensors involved (eps = float32 eps):

    - Source position: both kernels compute where an output pixel falls in the source row, about
      ``scale * (i + 0.5)`` shifted by 0.5, in 3 roundings of a value below the source size S, each
      at most ``eps / 2 * S``; the two positions differ by at most ``3 * eps * S``. A position error
      moves the interpolation weight by as much, which changes the value by at most that times the
      largest step between neighbouring source values along that axis.
    - Weighted sums: up to 2 taps per axis (plus the antialiased kernel's normalisation), about
      ``3 * eps * max|chroma|`` per axis and kernel.
    - The two separable passes add; the chroma error then reaches RGB through the largest row sum of
      the YUV-to-RGB coefficients (2.032, blue), and the final ``luma + coef * chroma`` is rounded once
      more (``eps * max|rgb|`` per kernel).

    Here that is 9.4e-5 (about 800 float32 units at 1.0); builds were seen up to 27 units apart (3.2e-6),
    and the wrong kernel where it matters (antialiasing off when shrinking) differs by about 0.4.
    """
    import torch.nn.functional as F

    from colorizer_lib.color import compose_luma_chroma, yuv_to_rgb

    col = Colorizer.from_model(torch.nn.Identity(), device="cpu", fold=False)
    gen = torch.Generator().manual_seed(0)
    luma = torch.rand(1, 1, *size, generator=gen)
    chroma = torch.rand(1, 2, 64, 64, generator=gen) - 0.5
    want = compose_luma_chroma(luma, F.interpolate(chroma, size=size, mode="bilinear", align_corners=False,
                                                   antialias=True))
    eps = torch.finfo(torch.float32).eps
    magnitude = chroma.abs().max().item()
    chroma_error = sum(3 * eps * source * chroma.diff(dim=axis).abs().max().item() + 2 * 3 * eps * magnitude
                       for axis, source in ((-2, chroma.shape[-2]), (-1, chroma.shape[-1])))
    unit_u_and_v = torch.eye(3)[1:].reshape(2, 3, 1, 1)
    gain = yuv_to_rgb(unit_u_and_v).abs().sum(dim=0).max().item()
    rgb_rounding = 2 * eps * (luma.abs().max().item() + gain * magnitude)
    torch.testing.assert_close(col.compose(luma, chroma), want, rtol=0, atol=gain * chroma_error + rgb_rounding)
