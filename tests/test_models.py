"""The DeOldify-compatible generators: layout, function, folding and the norm layers."""

from __future__ import annotations

import copy
import json
from fractions import Fraction

import pytest
import torch
from torch import nn

from colorizer_lib.models.random_weights import calibrated_random_model
from colorizer_lib.colorizer import expected_state
from colorizer_lib.models import build_generator
from colorizer_lib.models.deoldify import DeOldifyUnet
from colorizer_lib.models.fold import fold_for_inference
from colorizer_lib.models.layers import SpectralNormConv, WeightNormConv2d
from colorizer_lib.models.resnet import ResNetConfig
from tests.conftest import FIXTURES

TINY_ENCODER = ResNetConfig("basic", (1, 1, 1, 1), 8, (8, 16, 32, 64))


@pytest.mark.parametrize("name, arch", [
    ("artistic", "deoldify-deep-resnet34"),
    ("stable", "deoldify-wide-resnet101"),
    ("video", "deoldify-wide-resnet101"),
])
def test_state_dict_equals_released_manifest_entry_for_entry(name, arch):
    manifest = json.loads((FIXTURES / f"deoldify_manifest_{name}.json").read_text())["state_dict"]
    ours = expected_state(arch)
    assert list(ours) == list(manifest)  # same keys in the same order
    assert ours == manifest  # same shapes and dtypes


def test_parameter_counts_match_the_original():
    with torch.device("meta"):
        artistic, wide = build_generator("deoldify-deep-resnet34"), build_generator("deoldify-wide-resnet101")
    assert sum(p.numel() for p in artistic.parameters()) == 63_646_881
    assert sum(p.numel() for p in wide.parameters()) == 218_222_197


@pytest.mark.parametrize("kind, nf_factor", [("deep", 0.75), ("wide", Fraction(1, 8))])
def test_tiny_models_compute_the_original_function(tiny_reference, kind, nf_factor):
    ref = tiny_reference[kind]
    model = DeOldifyUnet(TINY_ENCODER, kind, nf_factor)
    model.load_state_dict(ref["state_dict"], strict=True)
    model.eval()
    with torch.no_grad():
        for key in ("x64", "x96", "x48"):  # x48 exercises the nearest resize to an odd skip size
            out = model(ref["inputs"][key])
            assert out.shape == ref["outputs"][key].shape
            assert (out - ref["outputs"][key]).abs().max().item() < 1e-4, key


@pytest.mark.parametrize("kind, nf_factor", [("deep", 0.75), ("wide", Fraction(1, 8))])
def test_folded_model_equals_unfolded(tiny_reference, kind, nf_factor):
    """Folding computes the same function, and loses no float32 accuracy doing it.

    The tolerances come from this network's own float32 rounding on this input, measured against the
    same unfolded model run in float64 (``exact``): ``e32 = max|model32(x) - exact|``, i.e.
    ``units = e32 / eps32`` float32 rounding units, the product of the values' magnitude, the terms each
    convolution accumulates and the ~20 layers the errors compound through (measured, because a
    worst-case bound for a network this deep is orders of magnitude looser than what happens).

    - In float64 the same operations accumulate ``units * eps64``. The folded and unfolded models are two
      such computations (the folded one has fewer roundings per layer: the norms' scale and shift are
      applied to the weights once, one rounding per fused weight), so they differ by at most about
      ``2 * units * eps64``; twice that again for how the maximum over 38,400 outputs of two differently
      rounded computations spreads: ``8 * units * eps64`` (about 5e-13 here; scaling one fused layer's
      weights by 1 + 1e-9 already moves the output by 1e-9 to 3e-8).
    - In float32 the folded model's error against ``exact`` is of the same size as the original's own,
      ``e32``; the same factor 2 for the spread of a maximum, and 2 for the fused weights' own rounding,
      gives ``4 * e32``. (The old fixed bound of 1e-4 on ``|folded32 - model32|`` was one build away from
      the two models' combined rounding, 3e-5 to 8e-5 on an unseeded input.)
    """
    model = DeOldifyUnet(TINY_ENCODER, kind, nf_factor)
    model.load_state_dict(tiny_reference[kind]["state_dict"])
    model.eval()
    folded = fold_for_inference(model)
    assert not any(isinstance(m, (SpectralNormConv, WeightNormConv2d)) for m in folded.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules()) < sum(
        isinstance(m, nn.BatchNorm2d) for m in model.modules())
    model64 = copy.deepcopy(model).double()
    folded64 = fold_for_inference(model64)
    x = torch.randn(2, 3, 80, 80, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        exact = model64(x.double())
        e32 = (model(x).double() - exact).abs().max().item()
        units = e32 / torch.finfo(torch.float32).eps
        assert (folded64(x.double()) - exact).abs().max().item() <= 8 * units * torch.finfo(torch.float64).eps
        assert (folded(x).double() - exact).abs().max().item() <= 4 * e32
    # The original is untouched (fold works on a copy).
    assert any(isinstance(m, SpectralNormConv) for m in model.modules())


def test_full_size_artistic_loads_deoldify_layout_and_matches(tmp_path):
    """A full Artistic model saved as fastai v1's Learner.save does ({'model', 'opt'} with slice lrs)
    loads through Colorizer.from_pretrained and computes the same outputs."""
    from colorizer_lib.colorizer import Colorizer

    original = calibrated_random_model("deoldify-deep-resnet34", torch.device("cpu"), size=64)
    opt_state = {"state": {}, "param_groups": [{"lr": slice(None, 0.003, None), "betas": (0.9, 0.99), "params": [0]}]}
    path = tmp_path / "ColorizeArtistic_gen.pth"
    torch.save({"model": original.state_dict(), "opt": opt_state}, path)

    col = Colorizer.from_pretrained(path, device="cpu")
    assert col.default_render_factor == 35  # recognised as the Artistic architecture
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = original(x)
        got = col.model(x)
    assert torch.isfinite(expected).all()
    assert (got - expected).abs().max().item() < 1e-3




def test_spectral_norm_matches_torch_in_train_and_eval():
    torch.manual_seed(1)
    ref = nn.utils.spectral_norm(nn.Conv2d(6, 5, 3, padding=1, bias=True))
    ours = SpectralNormConv(6, 5, 3, padding=1, bias=True)
    missing = ours.load_state_dict(ref.state_dict(), strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    x = torch.randn(2, 6, 9, 9)
    for _ in range(3):  # train mode: one power iteration per forward, same u/v updates
        ref.train(), ours.train()
        assert torch.allclose(ours(x), ref(x), atol=1e-6)
        assert torch.allclose(ours.weight_u, ref.weight_u, atol=1e-7)
        assert torch.allclose(ours.weight_v, ref.weight_v, atol=1e-7)
    ref.eval(), ours.eval()
    assert torch.allclose(ours(x), ref(x), atol=1e-6)


def test_weight_norm_matches_torch():
    torch.manual_seed(2)
    ref = nn.utils.weight_norm(nn.Conv2d(4, 8, 1))
    ours = WeightNormConv2d(4, 8, 1)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(3, 4, 5, 5)
    assert torch.allclose(ours(x), ref(x), atol=1e-6)


@pytest.mark.parametrize("arch", ["deoldify-deep-resnet34", "deoldify-wide-resnet101"])
def test_full_models_run_at_an_odd_render_factor(arch):
    """Render factor 3 (48 px) forces the nearest resize deep in the decoder, as rf 35 does."""
    torch.manual_seed(0)
    model = build_generator(arch).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 48, 48))
    assert out.shape == (1, 3, 48, 48)
    assert out.abs().max() <= 3


def test_inference_path_imports_neither_fastai_nor_torchvision():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import colorizer_lib.colorizer, colorizer_lib.hub, colorizer_lib.io, colorizer_lib.registry\n"
        "import colorizer_lib.models, colorizer_lib.cli\n"
        "colorizer_lib.models.build_generator('deoldify-deep-resnet34')\n"
        "bad = [m for m in ('fastai', 'torchvision') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_architecture_names_are_unique_and_test_models_are_not_shipped():
    import subprocess
    import sys

    from colorizer_lib.models import ARCHITECTURES, register_architecture

    before = dict(ARCHITECTURES)
    with pytest.raises(ValueError, match="'deoldify-deep-resnet34' is already registered .*deoldify_artistic"):
        @register_architecture("deoldify-deep-resnet34")
        def impostor():  # pragma: no cover - never called
            raise AssertionError
    assert ARCHITECTURES == before  # the original stays
    shipped = subprocess.run([sys.executable, "-c", "import colorizer_lib.models as m; print(sorted(m.ARCHITECTURES))"],
                             capture_output=True, text=True, check=True).stdout
    assert "deoldify-deep-resnet34" in shipped and "compact-efficientnet-lite0" in shipped and "ddcolor-tiny" in shipped
    assert "deoldify-deep-tiny" not in shipped  # registered by tests/architectures.py only
