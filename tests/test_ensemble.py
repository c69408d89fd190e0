"""Ensembles: several models' chroma averaged in one colour space and composed once."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from colorizer_lib.colorizer import Colorizer, Ensemble
from colorizer_lib.ensemble import ensemble_name, member_render_factors, parse_models
from colorizer_lib.errors import InputError, ModelArgumentError
from colorizer_lib.io import load_image, to_luma_tensor
from colorizer_lib.models.families import DDColorFamily, DeOldifyFamily
from tests.conftest import BW_EXAMPLES

PHOTO = BW_EXAMPLES / "black-canyon.jpg"


@pytest.fixture(scope="module")
def compact() -> Colorizer:
    return Colorizer.from_pretrained("compact", device="cpu", dtype="float32")


class Flipped(nn.Module):
    """A model seeing the picture mirrored: ``flip(model(flip(x)))`` (left-right)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.inner = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.flip(-1)).flip(-1)


def test_an_ensemble_of_a_model_with_itself_is_the_model(compact):
    """Same family, same size: the mean of two equal chromas is that chroma (x/2 + x/2 = x exactly in
    float), so the picture is the model's own, byte for byte."""
    ensemble = Colorizer.from_pretrained("compact+compact", device="cpu", dtype="float32")
    assert isinstance(ensemble, Ensemble) and ensemble.name == "compact+compact"
    assert ensemble.weights == [0.5, 0.5] and ensemble.default_render_factor == compact.default_render_factor
    alone, both = compact.colorize(PHOTO), ensemble.colorize(PHOTO)
    assert np.array_equal(np.asarray(alone.image), np.asarray(both.image))
    assert both.model_name == "compact+compact"


def test_an_ensemble_with_a_flipped_copy_is_the_average_of_their_chromas(compact):
    """The flipped copy predicts other chroma (the model is not mirror-symmetric); the ensemble's chroma is
    the mean of the two within float rounding (a x + b y against (x + y) / 2: one rounding of each
    product and of the sum, eps per unit of the largest chroma), and its picture is that chroma
    composed once."""
    flipped = Colorizer.from_model(Flipped(compact.model), name="compact-flipped", fold=False, device="cpu",
                                   dtype="float32", default_render_factor=compact.default_render_factor)
    ensemble = Ensemble([compact, flipped])
    luma = to_luma_tensor(load_image(PHOTO))
    a, b = compact.predict_chroma(luma), flipped.predict_chroma(luma)
    assert (a - b).abs().max() > 0.01  # really two different predictions
    mean = (a + b) / 2
    got = ensemble.predict_chroma(luma)
    eps = torch.finfo(torch.float32).eps
    torch.testing.assert_close(got, mean, atol=2 * eps * mean.abs().max().item(), rtol=0)
    picture = np.asarray(ensemble.colorize(PHOTO).image).astype(np.int16)
    composed = ensemble._compose_to_uint8(load_image(PHOTO), mean).astype(np.int16)
    assert np.abs(picture - composed).max() <= 1  # the chroma agrees to float rounding, which can flip a level


def test_weights_are_normalised_and_named(compact):
    ensemble = Colorizer.from_pretrained("compact:3,compact:1", device="cpu", dtype="float32")
    assert ensemble.weights == [0.75, 0.25] and ensemble.name == "compact:0.75,compact:0.25"
    assert Colorizer.from_pretrained(["compact", "compact"], device="cpu", dtype="float32").weights == [0.5, 0.5]
    assert Ensemble([compact, compact], [2, 2]).name == "compact+compact"
    assert ensemble_name(["a", "b"], [0.6, 0.4]) == "a:0.6,b:0.4"


@pytest.mark.parametrize("spec, message", [
    ("compact+", "empty model name"),
    ("+compact", "empty model name"),
    ("compact:0.5", "single model"),
    ("compact:0.6,compact", "some models only"),
    ("compact:0,compact:1", "positive number"),
    ("compact:-1+compact:2", "positive number"),
    ("compact:nan,compact:1", "positive number"),
    ([], "empty list"),
    (["compact", 3], "name, a path or a"),
    (["compact", ("compact", "heavy")], "positive number"),
])
def test_bad_ensemble_descriptions_say_the_accepted_forms(spec, message):
    with pytest.raises(ModelArgumentError, match=message) as info:
        Colorizer.from_pretrained(spec, device="cpu")
    assert isinstance(info.value, InputError)
    assert "'ddcolor+artistic'" in str(info.value) and "'ddcolor:0.6,artistic:0.4'" in str(info.value)


def test_single_models_are_not_ensembles(tmp_path, compact):
    assert parse_models("compact") is None and parse_models(None) is None
    alone = Colorizer.from_pretrained(["compact"], device="cpu", dtype="float32")
    assert not isinstance(alone, Ensemble) and alone.name == "compact"
    odd = tmp_path / "a+b,c.pth"
    odd.write_bytes(b"")
    assert parse_models(str(odd)) is None  # an existing file's name is one model
    assert parse_models([("a", 1), ("b", 2)]) == [("a", 1.0), ("b", 2.0)]
    assert parse_models("a:0.6, b:.4") == [("a", 0.6), ("b", 0.4)]
    with pytest.raises(ModelArgumentError, match="some models only"):
        parse_models(["a", ("b", 2)])


def test_unknown_member_names_the_known_models():
    with pytest.raises(ModelArgumentError, match="compact"):
        Colorizer.from_pretrained("compact+no-such-model", device="cpu")


def test_member_render_factors_scale_each_models_own_default():
    """At the ensemble's default (the first model's) each model runs at its own default; other values scale
    them alike, DDColor's rounded to an even render factor."""
    families = [DDColorFamily(), DeOldifyFamily()]
    assert member_render_factors(32, [32, 35], families) == [32, 35]
    assert member_render_factors(16, [32, 35], families) == [16, 18]  # 17.5 rounds to even
    assert member_render_factors(35, [35, 32], [DeOldifyFamily(), DDColorFamily()]) == [35, 32]
    assert member_render_factors(21, [35, 32], [DeOldifyFamily(), DDColorFamily()]) == [21, 20]  # 19.2 -> 20 (even)


def test_families_meet_in_the_first_models_space(compact):
    """A DDColor-family member in a DeOldify-led ensemble is converted through RGB at its own size: for a
    DDColor 'model' that predicts zero a, b (grey), the ensemble's chroma is the DeOldify member's halved
    plus the chroma of that grey: OpenCV's Lab2RGB of (L, 0, 0) has channels equal within 2e-6
    (test_ddcolor), so its U, V stay below 0.877 x 2e-6 and half of that enters the mean."""

    class GreyDDColor(nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], 2, *x.shape[-2:])

    grey = Colorizer.from_model(GreyDDColor(), name="grey", default_render_factor=16, fold=False, device="cpu",
                                dtype="float32", family=DDColorFamily())
    ensemble = Ensemble([compact, grey])
    luma = to_luma_tensor(load_image(PHOTO))
    torch.testing.assert_close(ensemble.predict_chroma(luma), compact.predict_chroma(luma) / 2, atol=2e-6, rtol=0)
    with pytest.raises(InputError, match="two or more"):
        Ensemble([compact])
