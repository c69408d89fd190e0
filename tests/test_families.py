"""Model families through the Colorizer and the one merge: DeOldify's is today's path exactly, DDColor's
reproduces the original pipeline (references made by running the original code: tests/fixtures/ddcolor/)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from colorizer_lib import merge as merge_module
from colorizer_lib.color import compose_luma_chroma, denormalize_imagenet, grey_to_rgb, normalize_imagenet, rgb_to_chroma
from colorizer_lib.colorizer import Colorizer
from colorizer_lib.errors import RenderFactorError
from colorizer_lib.io import load_image, to_luma_tensor
from colorizer_lib.merge import compose_tensor
from colorizer_lib.models.ddcolor import DDColor
from colorizer_lib.models.ddcolor_pipeline import ddcolor_model_input
from colorizer_lib.models.families import DDColorFamily, DeOldifyFamily, family_for_model, grey_lightness
from colorizer_lib.opencv_lab import rgb_to_lab_opencv
from tests.conftest import FIXTURES as DEOLDIFY_FIXTURES
from tests.test_ddcolor import FIXTURES, _manifest, pipeline_png, reference, tiny_state_dict  # noqa: F401  (fixtures)

PHOTO = FIXTURES / "dust-bowl-home.jpg"


@pytest.fixture(scope="module")
def ddcolor_colorizer(tiny_state_dict) -> Colorizer:
    """The tiny DDColor with the fixtures' weights, as the original ran it (nearest a/b upsampling); its own
    copy of the model (the Colorizer folds the model it is given)."""
    model = DDColor(**_manifest("tiny")["constructor"])
    model.load_state_dict(tiny_state_dict, strict=True)
    return Colorizer.from_model(model, name="ddcolor-tiny", default_render_factor=16, device="cpu",
                                dtype="float32", family=DDColorFamily("nearest"))


# --- DDColor -------------------------------------------------------------------------------------


def test_grey_lightness_is_opencvs_lightness_of_the_grey_picture():
    """Exactly (not within a tolerance): every 8-bit level, the table's cell edges and random values, some
    outside [0, 1] (clipped as OpenCV does)."""
    gen = torch.Generator().manual_seed(0)
    edges = torch.arange(513, dtype=torch.float32) / 512
    values = torch.cat([torch.arange(256, dtype=torch.float32) / 255, edges, edges - 2e-5, edges + 2e-5,
                        torch.rand(200_000, generator=gen) * 1.2 - 0.1]).reshape(1, 1, 1, -1)
    want = rgb_to_lab_opencv(values.expand(1, 3, 1, values.shape[-1]), l_only=True)
    assert torch.equal(grey_lightness(values), want)


def test_ddcolor_model_input_from_luma_is_the_originals_for_a_grey_photo(ddcolor_colorizer):
    """The original reads a grey photo as R = G = B = level / 255; from that luma the Colorizer builds the
    same model input, bit for bit, without the three channels."""
    grey = torch.from_numpy(np.array(load_image(PHOTO).rgb.convert("L"))).float()[None, None] / 255
    original, full_l = ddcolor_model_input(grey.expand(1, 3, *grey.shape[-2:]), 256)
    assert torch.equal(ddcolor_colorizer.model_input(grey, 16), original)
    assert torch.equal(ddcolor_colorizer.family.luminance(grey), full_l)


def test_ddcolor_through_the_colorizer_reproduces_the_originals_png(ddcolor_colorizer, reference, pipeline_png):
    """From the original's model input: our model (folded for inference), the family's chroma and the one
    merge with the photo's full-resolution L give the original's PNG within test_ddcolor's end-to-end
    bound (the model differs from the original's by float32 summation order: a few pixels by 1 level)."""
    chroma = ddcolor_colorizer.chroma_from_input(reference["model_input"], 16)
    rgb = ddcolor_colorizer._compose_to_uint8(load_image(PHOTO), chroma)
    diff = np.abs(rgb.astype(np.int16) - pipeline_png).max(axis=-1)
    assert diff.max() <= 1
    assert (diff > 0).sum() <= diff.size // 1_000


def test_ddcolor_strips_equal_the_whole_picture(ddcolor_colorizer, reference, monkeypatch):
    """Nearest upsampling picks the same source rows strip by strip: exactly the whole-picture merge."""
    chroma = reference["model_output"]
    whole = ddcolor_colorizer._compose_to_uint8(load_image(PHOTO), chroma)
    monkeypatch.setattr(merge_module, "STRIP_PIXELS", 10_000)
    monkeypatch.setattr(merge_module, "STRIP_ROWS", 97)
    assert np.array_equal(ddcolor_colorizer._compose_to_uint8(load_image(PHOTO), chroma), whole)


def test_bilinear_is_ddcolors_default_and_nearest_the_option():
    with torch.device("meta"):
        model = DDColor(**_manifest("tiny")["constructor"])
    assert isinstance(family_for_model(model), DDColorFamily) and family_for_model(model).upsample == "bilinear"
    assert family_for_model(model, "nearest").upsample == "nearest"
    assert isinstance(family_for_model(torch.nn.Identity()), DeOldifyFamily)
    with pytest.raises(ValueError, match="chroma_upsample"):
        DDColorFamily("bicubic")


def test_ddcolor_needs_an_even_render_factor(ddcolor_colorizer):
    with pytest.raises(RenderFactorError, match=r"even render factor \(input side 272 px.*use 16 or 18"):
        ddcolor_colorizer.predict_chroma(torch.rand(1, 1, 40, 40), 17)
    with pytest.raises(RenderFactorError, match="even"):
        Colorizer.from_model(ddcolor_colorizer.model, default_render_factor=35, device="cpu", fold=False,
                             family=DDColorFamily())


# --- DeOldify: today's path exactly ---------------------------------------------------------------


def test_deoldify_family_is_the_colorizers_path_before_families(tiny_colorizer):
    """The model input, chroma and merge the Colorizer computed before the families, written out: equal
    bit for bit (same operations in the same order)."""
    luma = to_luma_tensor(load_image(DEOLDIFY_FIXTURES / "deoldify_tiny_pipeline_in.png"))
    x = F.interpolate(luma, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    want_input = normalize_imagenet(grey_to_rgb(x.clamp(0.0, 1.0)))
    assert isinstance(tiny_colorizer.family, DeOldifyFamily)
    assert torch.equal(tiny_colorizer.model_input(luma, 4), want_input)
    with torch.inference_mode():
        out = tiny_colorizer.model(want_input).float()
    want_chroma = rgb_to_chroma(denormalize_imagenet(out).clamp_(0.0, 1.0))
    assert torch.equal(tiny_colorizer.chroma_from_input(want_input, 4), want_chroma)
    want_rgb = compose_luma_chroma(luma, F.interpolate(want_chroma, size=luma.shape[-2:], mode="bilinear",
                                                       align_corners=False))
    assert torch.equal(tiny_colorizer.compose(luma, want_chroma), want_rgb)
    # and the photo path (8-bit luma read strip by strip from the picture) equals the tensor path
    rgb8 = tiny_colorizer._compose_to_uint8(load_image(DEOLDIFY_FIXTURES / "deoldify_tiny_pipeline_in.png"),
                                            want_chroma)
    assert np.array_equal(rgb8, want_rgb[0].mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy())


def test_merge_in_strips_bounds_what_it_holds_and_matches_the_whole(monkeypatch):
    """Above the threshold no strip is taller than STRIP_ROWS; bilinear strips equal the whole merge
    within float rounding: the strips resize one axis after the other (torch's 2-D kernel sums the four
    taps at once) and compute the vertical source position in float64. Bound as in test_colorizer's
    compose test: per axis a position error of 3 eps S moves the value by at most that times the
    largest step between neighbouring chroma values, and the sums round by 3 eps max|chroma| per kernel;
    the YUV -> RGB gain (2.032, blue) carries that into RGB, rounded once more."""
    gen = torch.Generator().manual_seed(0)
    luma = torch.rand(1, 1, 300, 200, generator=gen)
    chroma = torch.rand(1, 2, 64, 64, generator=gen) - 0.5
    family = DeOldifyFamily()
    whole = compose_tensor(family, luma, chroma)
    monkeypatch.setattr(merge_module, "STRIP_PIXELS", 10_000)
    monkeypatch.setattr(merge_module, "STRIP_ROWS", 97)
    heights = []
    original = family.compose
    monkeypatch.setattr(family, "compose", lambda lum, c: heights.append(lum.shape[-2]) or original(lum, c))
    eps = torch.finfo(torch.float32).eps
    magnitude = chroma.abs().max().item()
    chroma_error = sum(3 * eps * chroma.shape[axis] * chroma.diff(dim=axis).abs().max().item()
                       + 2 * 3 * eps * magnitude for axis in (-2, -1))
    gain = 2.032
    bound = gain * chroma_error + 2 * eps * (1 + gain * magnitude)
    torch.testing.assert_close(compose_tensor(family, luma, chroma), whole, atol=bound, rtol=0)
    assert heights == [97, 97, 97, 9]


def test_a_ddcolor_weights_file_loads_with_its_family(tiny_state_dict, tmp_path):
    """A local file of DDColor-T weights (no record): architecture identified from its tensors, DDColor's
    family (bilinear chroma by default) and its own default render factor, 32 (512 px)."""
    path = tmp_path / "my-ddcolor.pth"
    torch.save(tiny_state_dict, path)
    col = Colorizer.from_pretrained(path, device="cpu", dtype="float32")
    assert isinstance(col.family, DDColorFamily) and col.family.upsample == "bilinear"
    assert col.default_render_factor == 32 and col.name == "my-ddcolor"
    assert Colorizer.from_pretrained(path, device="cpu", dtype="float32", chroma_upsample="nearest").family.upsample \
        == "nearest"


def test_an_odd_render_factor_for_ddcolor_is_refused_before_any_work(tiny_state_dict):
    """The CLI asks ``render_factor_or_default`` once, before it plans or loads a photo: DDColor's even-only
    render factor is refused there, naming the values that work; an ensemble derives each member's own."""
    from colorizer_lib import Colorizer
    from colorizer_lib.errors import RenderFactorError
    from colorizer_lib.models import build_generator

    model = build_generator("ddcolor-tiny")
    model.load_state_dict(tiny_state_dict)
    col = Colorizer.from_model(model, name="ddcolor-tiny-test", default_render_factor=32)
    assert col.render_factor_or_default(None) == 32 and col.render_factor_or_default(30) == 30
    with pytest.raises(RenderFactorError, match="use 30 or 32"):
        col.render_factor_or_default(31)
