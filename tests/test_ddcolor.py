"""DDColor against references made by running the ORIGINAL code (tests/fixtures/ddcolor/README.md).

Weights are ``deterministic_state_dict(manifest, seed=1)`` (tests/ddcolor_weights.py, a copy of the
fixture builder's generator): no released checkpoint is needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorizer_lib.color import rgb_to_lab
from colorizer_lib.errors import VerificationError
from colorizer_lib.models import available_architectures, build_generator
from colorizer_lib.models.ddcolor import DDColor, sine_position_embedding
from colorizer_lib.models.ddcolor_checkpoint import (LEGACY_HEAD_KEYS, build_ddcolor, ddcolor_checkpoint_filter,
                                                     read_ddcolor_checkpoint)
from colorizer_lib.models.ddcolor_pipeline import ddcolor_compose, ddcolor_model_input, to_uint8, upsample_chroma
from colorizer_lib.opencv_lab import lab_to_rgb_opencv, rgb_to_lab_opencv
from tests.ddcolor_weights import deterministic_state_dict

FIXTURES = Path(__file__).parent / "fixtures" / "ddcolor"


def _manifest(size: str) -> dict:
    return json.loads((FIXTURES / f"ddcolor_manifest_{size}.json").read_text())


@pytest.fixture(scope="module")
def reference() -> dict:
    return torch.load(FIXTURES / "ddcolor_tiny_reference.pt", weights_only=True)


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """The reference photo as the original read it (8-bit RGB / 255 in float32), (1, 3, 591, 768)."""
    arr = np.array(Image.open(FIXTURES / "dust-bowl-home.jpg").convert("RGB"))
    return torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255.0


@pytest.fixture(scope="module")
def pipeline_png() -> np.ndarray:
    return np.array(Image.open(FIXTURES / "ddcolor_tiny_pipeline_out.png").convert("RGB")).astype(np.int16)


@pytest.fixture(scope="module")
def tiny_state_dict() -> dict[str, torch.Tensor]:
    return deterministic_state_dict(_manifest("tiny"), seed=1)


@pytest.fixture(scope="module")
def tiny(tiny_state_dict) -> DDColor:
    model = DDColor(**_manifest("tiny")["constructor"])
    model.load_state_dict(tiny_state_dict, strict=True)
    return model.eval()


def _levels(rgb: torch.Tensor) -> np.ndarray:
    return to_uint8(rgb)[0].permute(1, 2, 0).numpy().astype(np.int16)


# --- architecture ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["tiny", "large"])
def test_state_dict_layout_equals_the_original(size):
    """Keys, shapes, dtypes and ORDER of the original ddcolor/model.py state dict."""
    manifest = _manifest(size)
    with torch.device("meta"):
        model = DDColor(**manifest["constructor"])
    got = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()]
    want = [(k, spec["shape"], spec["dtype"]) for k, spec in manifest["state_dict"].items()]
    assert got == want
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == manifest["n_parameters"]


def test_architectures_are_registered():
    assert {"ddcolor-large", "ddcolor-tiny"} <= set(available_architectures())
    with torch.device("meta"):
        large, tiny = build_generator("ddcolor-large"), build_generator("ddcolor-tiny")
    assert large.config["encoder_name"] == "convnext-l" and tiny.config["encoder_name"] == "convnext-t"


def test_unsupported_configurations_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="last_norm='Spectral'"):
        DDColor("convnext-t", last_norm="Weight")
    with pytest.raises(ValueError, match="encoder_name"):
        DDColor("convnext-b")
    with pytest.raises(ValueError, match="multiples of 32"):
        DDColor("convnext-t")(torch.zeros(1, 3, 48, 64))


def test_position_embedding_is_detrs_normalised_sine():
    """Spot values from the formula: row r of n has angle r / (n + 1e-6) * 2 pi at the lowest frequency."""
    pe = sine_position_embedding(4, 6, 256)
    assert pe.shape == (256, 4, 6)
    angle_row = torch.arange(1, 5, dtype=torch.float64) / (4 + 1e-6) * 2 * torch.pi
    angle_col = torch.arange(1, 7, dtype=torch.float64) / (6 + 1e-6) * 2 * torch.pi
    torch.testing.assert_close(pe[0, :, 0].double(), angle_row.sin(), atol=1e-6, rtol=0)
    torch.testing.assert_close(pe[1, :, 0].double(), angle_row.cos(), atol=1e-6, rtol=0)
    torch.testing.assert_close(pe[128, 0, :].double(), angle_col.sin(), atol=1e-6, rtol=0)
    # highest frequency pair 63: 10000 ** (126 / 128)
    torch.testing.assert_close(pe[127, :, 0].double(), (angle_row / 10000 ** (126 / 128)).cos(), atol=1e-6, rtol=0)


# --- forward against the original ----------------------------------------------------------------


def test_tiny_forward_matches_the_original(tiny, reference):
    """model_input -> model_output within 1e-3 a/b units (values reach +-73; the original's own
    1-vs-2-thread spread is 8.8e-5), plus the stored intermediate tensors."""
    captured = {}
    hooks = [
        tiny.encoder.arch.norm3.register_forward_hook(lambda m, i, o: captured.__setitem__("encoder_norm3", o)),
        tiny.decoder.color_decoder.color_embed.register_forward_hook(
            lambda m, i, o: captured.__setitem__("color_embed", o)),
    ]
    try:
        with torch.inference_mode():
            out = tiny(reference["model_input"])
    finally:
        for h in hooks:
            h.remove()
    assert out.shape == reference["model_output"].shape
    assert (out - reference["model_output"]).abs().max().item() < 1e-3
    # Encoder features are O(1) after 18 blocks: float32 summation-order differences stay near 1e-5.
    ref_norm3 = reference["intermediates"]["encoder_norm3"]
    assert (captured["encoder_norm3"] - ref_norm3).abs().max().item() < 1e-4
    # Colour embeddings reach |242| (the x200 head): 1e-3 is 4e-6 relative, a few float32 roundings.
    ref_embed = reference["intermediates"]["color_embed"]
    assert (captured["color_embed"] - ref_embed).abs().max().item() < 1e-3


@pytest.mark.slow  # 228 M deterministic weights (0.9 GB) are generated: several seconds even on an idle machine
def test_large_manifest_loads_strictly_and_runs():
    manifest = _manifest("large")
    model = build_ddcolor(deterministic_state_dict(manifest, seed=1), **manifest["constructor"])
    assert model.config["encoder_name"] == "convnext-l"
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        out = model(x.expand(1, 3, 64, 64))
    assert out.shape == (1, 2, 64, 64) and torch.isfinite(out).all()
    assert out.std() > 1.0  # the x200 head makes a/b spread by several units, not a constant map


# --- pipeline: pre- and post-processing, each from the original's stored tensors -----------------------


def test_preprocessing_reproduces_the_original_model_input(photo, reference):
    """Same float32 operations as OpenCV (table-based RGB -> Lab, bilinear stretch, Lab -> RGB): exact
    up to a float32 rounding or two (1e-6), and the full-resolution L keeps the photo's size."""
    model_input, full_l = ddcolor_model_input(photo, 256)
    assert model_input.shape == reference["model_input"].shape
    assert (model_input - reference["model_input"]).abs().max().item() <= 1e-6
    assert full_l.shape == (1, 1, 591, 768)


def test_postprocessing_reproduces_the_original_png(photo, reference, pipeline_png):
    """From the stored model_output: nearest a/b upsampling + full-resolution L -> the original's PNG.
    One float32 rounding apart can flip a value sitting at x.5 levels, so at most 1 level on
    <= 0.01 % of the pixels is allowed; the reproduction is exact today."""
    _, full_l = ddcolor_model_input(photo, 256)
    levels = _levels(ddcolor_compose(full_l, reference["model_output"], chroma_upsample="nearest"))
    diff = np.abs(levels - pipeline_png).max(axis=-1)
    assert diff.max() <= 1
    assert (diff > 0).sum() <= diff.size // 10_000


def test_bilinear_chroma_is_the_documented_alternative(photo, reference, pipeline_png):
    """Bilinear a/b upsampling is a different image (the original's own check measured 425,562 pixels
    changed by up to 62 levels) but keeps the full-resolution L: both modes agree where a/b is flat."""
    _, full_l = ddcolor_model_input(photo, 256)
    bilinear = _levels(ddcolor_compose(full_l, reference["model_output"], chroma_upsample="bilinear"))
    assert np.abs(bilinear - pipeline_png).max() > 10
    ab = torch.full((1, 2, 4, 4), 12.5)
    for mode in ("nearest", "bilinear"):
        torch.testing.assert_close(upsample_chroma(ab, (13, 17), mode), torch.full((1, 2, 13, 17), 12.5))
    with pytest.raises(ValueError, match="chroma_upsample"):
        upsample_chroma(ab, (8, 8), "bicubic")


def test_nearest_chroma_makes_blocks_and_bilinear_does_not():
    ab = torch.tensor([[0.0, 40.0], [-40.0, 20.0]]).expand(1, 2, 2, 2)
    near = upsample_chroma(ab, (8, 8), "nearest")[0, 0]
    smooth = upsample_chroma(ab, (8, 8), "bilinear")[0, 0]
    assert len(torch.unique(near[0])) == 2 and torch.equal(near[:4, :4], torch.zeros(4, 4))
    assert len(torch.unique(smooth[0])) > 4


def test_end_to_end_matches_the_original_png(tiny, photo, pipeline_png):
    """Photo -> model input -> model -> composition. The model output differs from the original's by
    float32 summation order only, which (like the original run with 1 thread instead of 2: 19 pixels)
    moves a few pixels by 1 level."""
    model_input, full_l = ddcolor_model_input(photo, 256)
    with torch.inference_mode():
        ab = tiny(model_input)
    diff = np.abs(_levels(ddcolor_compose(full_l, ab)) - pipeline_png).max(axis=-1)
    assert diff.max() <= 1
    assert (diff > 0).sum() <= diff.size // 1_000


def test_model_input_sizes_are_checked(photo):
    with pytest.raises(ValueError, match="multiple of 32"):
        ddcolor_model_input(photo, 200)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        ddcolor_model_input(photo[:, :1], 256)


# --- OpenCV's Lab maths, checked against the textbook formulas -------------------------------------


def test_opencv_lab_is_close_to_the_exact_formulas_with_its_documented_error():
    """OpenCV's table approximation: |L| error < 0.25 and |a|,|b| < 0.6 against exact CIELAB (D65)."""
    levels = torch.arange(256, dtype=torch.float32) / 255
    grid = torch.stack(torch.meshgrid(levels[::5], levels[::5], levels[::5], indexing="ij")).reshape(1, 3, -1, 1)
    approx, exact = rgb_to_lab_opencv(grid), rgb_to_lab(grid.double()).float()
    err = (approx - exact).abs().amax(dim=(0, 2, 3))
    assert err[0] < 0.25 and err[1:].max() < 0.6
    assert err[0] > 0.01  # really the table, not the formulas
    torch.testing.assert_close(rgb_to_lab_opencv(grid, l_only=True), approx[:, :1], atol=0, rtol=0)


def test_opencv_lab_round_trip_and_grey_axis():
    levels = (torch.arange(256, dtype=torch.float32) / 255).reshape(1, 1, 16, 16)
    grey = levels.expand(1, 3, 16, 16)
    lab = rgb_to_lab_opencv(grey)
    assert lab[:, 1:].abs().max() <= 0.13  # grey gets a small a/b from the table (OpenCV does too)
    back = lab_to_rgb_opencv(torch.cat([lab[:, :1], torch.zeros_like(lab[:, 1:])], dim=1))
    assert (back - grey).abs().max() < 2 / 255  # L is quantised by the table, grey comes back within 2 levels
    assert torch.allclose(back[:, 0], back[:, 1]) and torch.allclose(back[:, 1], back[:, 2], atol=2e-6)
    # The top of the range (1.0, the table's last point) and pure red: the textbook values within the
    # table's rounding (L, a, b on grids of 100/2**14 and 1/64)
    white_red = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]]).reshape(1, 3, 1, 2)
    torch.testing.assert_close(rgb_to_lab_opencv(white_red), rgb_to_lab(white_red.double()).float(),
                               atol=0.02, rtol=0)
    assert rgb_to_lab_opencv(white_red)[0, 0, 0, 0] == 100.0
    with pytest.raises(ValueError, match="3 channels"):
        rgb_to_lab_opencv(torch.zeros(1, 2, 4, 4))


# --- checkpoints --------------------------------------------------------------------------------


def _training_order(sd: dict) -> dict:
    """The key order the training code (basicsr) writes: colour decoder's query/level/input_proj last."""
    first = ("query_feat", "query_embed", "level_embed", "input_proj")
    moved = [k for k in sd if k.startswith("decoder.color_decoder.") and k.split(".")[2] in first]
    rest = [k for k in sd if k not in moved]
    at = rest.index("decoder.color_decoder.color_embed.layers.0.weight")
    return {k: sd[k] for k in rest[:at] + moved + rest[at:]}


def test_released_layouts_load_strictly(tmp_path, tiny_state_dict):
    from safetensors.torch import save_file

    bare = tmp_path / "pytorch_model.bin"
    torch.save(tiny_state_dict, bare)
    safetensors = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_state_dict.items()}, str(safetensors))
    modelscope = tmp_path / "pytorch_model.pt"
    wrapped = _training_order(dict(tiny_state_dict))
    wrapped[LEGACY_HEAD_KEYS[0]], wrapped[LEGACY_HEAD_KEYS[1]] = torch.randn(4, 768), torch.randn(4)
    torch.save({"params": wrapped}, modelscope)
    for path in (bare, safetensors, modelscope):
        model = build_ddcolor(path)
        assert model.config["encoder_name"] == "convnext-t" and not model.training
        loaded = model.state_dict()
        assert list(loaded) == list(tiny_state_dict)
        assert all(torch.equal(loaded[k], v) for k, v in tiny_state_dict.items()), path.name


def test_bad_checkpoints_are_named(tmp_path, tiny_state_dict):
    missing = dict(tiny_state_dict)
    del missing["refine_net.0.0.weight_u"]
    with pytest.raises(VerificationError, match="refine_net.0.0.weight_u"):
        build_ddcolor(missing)
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in tiny_state_dict.items()}
    with pytest.raises(VerificationError, match=r"float16 \(expected float32\)"):
        build_ddcolor(half)
    with pytest.raises(VerificationError, match="stem channels"):
        build_ddcolor({"encoder.arch.downsample_layers.0.0.weight": torch.zeros(64, 3, 4, 4)})
    with pytest.raises(VerificationError, match="name -> tensor"):
        ddcolor_checkpoint_filter({"params": {"a": 1}})
    pickled = tmp_path / "whole_model.pt"
    torch.save({"params": {"x": torch.zeros(1)}, "note": Path("not a tensor")}, pickled)
    with pytest.raises(VerificationError, match="pickled Python objects"):
        read_ddcolor_checkpoint(pickled)
    page = tmp_path / "pytorch_model.bin"
    page.write_bytes(b"<!DOCTYPE html><html><body>Sign in</body></html>")
    with pytest.raises(VerificationError, match="HTML"):
        read_ddcolor_checkpoint(page)


def test_flops_are_countable_on_the_meta_device():
    """The benchmark's FLOP counter handles DDColor; cost grows about 4x per doubling of the side, and
    DDColor-L's ConvNeXt-L encoder makes it cost more than DDColor-T."""
    from colorizer_lib.bench import count_flops

    flops = {}
    for enc in ("convnext-l", "convnext-t"):
        with torch.device("meta"):
            model = DDColor(enc).eval()
        flops[enc] = [count_flops(model, torch.empty(1, 3, s, s, device="meta")) for s in (256, 512)]
    for small, big in flops.values():
        assert 3.7 < big / small < 4.0  # the 100 colour queries' attention costs grow slower than the pixels
    assert flops["convnext-l"][1] > 2 * flops["convnext-t"][1]
