"""Tests for colorizer_lib.metrics: hand-computed cases, reference data and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from colorizer_lib import metrics
from colorizer_lib.color import rgb_to_chroma
from colorizer_lib.errors import InputError
from colorizer_lib.metrics import (
    as_batch,
    cdc,
    ciede2000,
    colorfulness,
    delta_colorfulness,
    delta_e_ciede2000,
    grey_baseline,
    lab_to_rgb,
    psnr,
    quality_report,
    rgb_to_lab,
    ssim,
)

# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula: implementation notes,
# supplementary test data, and mathematical observations", Table 1: L1 a1 b1 L2 a2 b2 dE00.
SHARMA_PAIRS = """
50.0000 2.6772 -79.7751 50.0000 0.0000 -82.7485 2.0425
50.0000 3.1571 -77.2803 50.0000 0.0000 -82.7485 2.8615
50.0000 2.8361 -74.0200 50.0000 0.0000 -82.7485 3.4412
50.0000 -1.3802 -84.2814 50.0000 0.0000 -82.7485 1.0000
50.0000 -1.1848 -84.8006 50.0000 0.0000 -82.7485 1.0000
50.0000 -0.9009 -85.5211 50.0000 0.0000 -82.7485 1.0000
50.0000 0.0000 0.0000 50.0000 -1.0000 2.0000 2.3669
50.0000 -1.0000 2.0000 50.0000 0.0000 0.0000 2.3669
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0009 7.1792
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0010 7.1792
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0011 7.2195
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0012 7.2195
50.0000 -0.0010 2.4900 50.0000 0.0009 -2.4900 4.8045
50.0000 -0.0010 2.4900 50.0000 0.0010 -2.4900 4.8045
50.0000 -0.0010 2.4900 50.0000 0.0011 -2.4900 4.7461
50.0000 2.5000 0.0000 50.0000 0.0000 -2.5000 4.3065
50.0000 2.5000 0.0000 73.0000 25.0000 -18.0000 27.1492
50.0000 2.5000 0.0000 61.0000 -5.0000 29.0000 22.8977
50.0000 2.5000 0.0000 56.0000 -27.0000 -3.0000 31.9030
50.0000 2.5000 0.0000 58.0000 24.0000 15.0000 19.4535
50.0000 2.5000 0.0000 50.0000 3.1736 0.5854 1.0000
50.0000 2.5000 0.0000 50.0000 3.2972 0.0000 1.0000
50.0000 2.5000 0.0000 50.0000 1.8634 0.5757 1.0000
50.0000 2.5000 0.0000 50.0000 3.2592 0.3350 1.0000
60.2574 -34.0099 36.2677 60.4626 -34.1751 39.4387 1.2644
63.0109 -31.0961 -5.8663 62.8187 -29.7946 -4.0864 1.2630
61.2901 3.7196 -5.3901 61.4292 2.2480 -4.9620 1.8731
35.0831 -44.1164 3.7933 35.0232 -40.0716 1.5901 1.8645
22.7233 20.0904 -46.6940 23.0331 14.9730 -42.5619 2.0373
36.4612 47.8580 18.3852 36.2715 50.5065 21.2231 1.4146
90.8027 -2.0831 1.4410 91.1528 -1.6435 0.0447 1.4441
90.9257 -0.5406 -0.9208 88.6381 -0.8985 -0.7239 1.5381
6.7747 -0.2908 -2.4247 5.8714 -0.0985 -2.2286 0.6377
2.0776 0.0795 -1.1350 0.9033 -0.0636 -0.5514 0.9082
"""


def sharma_table() -> torch.Tensor:
    rows = [[float(v) for v in line.split()] for line in SHARMA_PAIRS.strip().splitlines()]
    return torch.tensor(rows, dtype=torch.float64)


def random_images(seed: int, shape=(2, 3, 32, 40)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------ CIEDE2000


def test_ciede2000_matches_sharma_test_data():
    table = sharma_table()
    assert table.shape == (34, 7)
    lab1 = table[:, 0:3].T.reshape(1, 3, 1, 34)
    lab2 = table[:, 3:6].T.reshape(1, 3, 1, 34)
    got = delta_e_ciede2000(lab1, lab2).flatten()
    torch.testing.assert_close(got, table[:, 6], atol=1e-4, rtol=0)
    # symmetric, as the formula is
    torch.testing.assert_close(delta_e_ciede2000(lab2, lab1).flatten(), table[:, 6], atol=1e-4, rtol=0)


def test_ciede2000_hue_rotation_term_matters():
    # Pair 1 lies in the blue region (mean hue ~ 275 degrees) where R_T is largest. Without the
    # rotation term the published value cannot be reached, so this pins R_T's sign and size.
    table = sharma_table()[:3]
    lab1 = table[:, 0:3].T.reshape(1, 3, 1, 3)
    lab2 = table[:, 3:6].T.reshape(1, 3, 1, 3)
    d_l_only = (lab2[:, 0] - lab1[:, 0]).abs()
    assert (delta_e_ciede2000(lab1, lab2)[0] > d_l_only).all()
    torch.testing.assert_close(delta_e_ciede2000(lab1, lab2).flatten(), table[:, 6], atol=1e-4, rtol=0)


def test_ciede2000_of_rgb_images():
    a = random_images(0)
    assert ciede2000(a, a) == 0.0
    # two greys differ only in lightness: dE00 = |dL| / S_L (hand-computed)
    g1, g2 = torch.full((1, 3, 4, 4), 0.5), torch.full((1, 3, 4, 4), 0.6)
    l1 = float(rgb_to_lab(g1.double())[0, 0, 0, 0])
    l2 = float(rgb_to_lab(g2.double())[0, 0, 0, 0])
    l_bar = (l1 + l2) / 2
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / math.sqrt(20 + (l_bar - 50) ** 2)
    assert ciede2000(g1, g2) == pytest.approx(abs(l2 - l1) / s_l, abs=1e-9)
    per_image = ciede2000(random_images(1), random_images(2), reduction="none")
    assert per_image.shape == (2,) and (per_image > 1).all()


# ------------------------------------------------------------------------------------ Lab


def test_lab_reference_points_and_round_trip():
    white = torch.ones(1, 3, 1, 1, dtype=torch.float64)
    torch.testing.assert_close(rgb_to_lab(white).flatten(), torch.tensor([100.0, 0, 0], dtype=torch.float64),
                               atol=1e-3, rtol=0)
    red = torch.tensor([1.0, 0, 0], dtype=torch.float64).view(1, 3, 1, 1)
    # sRGB red in CIELAB D65 is about (53.24, 80.09, 67.20)
    torch.testing.assert_close(rgb_to_lab(red).flatten(), torch.tensor([53.24, 80.09, 67.20], dtype=torch.float64),
                               atol=0.05, rtol=0)
    rgb = random_images(3).double()
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------ PSNR / SSIM


def test_identical_images():
    a = random_images(4)
    assert psnr(a, a) == math.inf
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    assert delta_colorfulness(a, a) == 0.0


def test_psnr_hand_computed():
    target = torch.zeros(1, 3, 8, 8)
    assert psnr(target + 0.1, target) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01
    half = target.clone()
    half[..., :4] = 0.5  # MSE = 0.25 / 2 = 0.125
    assert psnr(half, target) == pytest.approx(10 * math.log10(8), abs=1e-4)
    per = psnr(torch.stack([target[0] + 0.1, target[0]]), torch.zeros(2, 3, 8, 8), reduction="none")
    assert per[0] == pytest.approx(20.0, abs=1e-4) and per[1] == math.inf


def test_ssim_constant_images_hand_computed():
    x, y = torch.full((1, 3, 16, 16), 0.5), torch.full((1, 3, 16, 16), 0.25)
    c1 = 0.01**2
    expected = (2 * 0.5 * 0.25 + c1) / (0.5**2 + 0.25**2 + c1)  # sigma terms cancel: C2 / C2
    assert ssim(x, y) == pytest.approx(expected, rel=1e-5)


def test_ssim_orders_degradations_and_checks_size():
    clean = random_images(5)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(6))
    mild, strong = (clean + 0.05 * noise).clamp(0, 1), (clean + 0.3 * noise).clamp(0, 1)
    assert 1 > ssim(mild, clean) > ssim(strong, clean) > 0
    assert ssim(mild, clean) == pytest.approx(ssim(clean, mild), abs=1e-6)
    with pytest.raises(InputError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 10, 30), torch.zeros(1, 3, 10, 30))


def test_ssim_matches_a_direct_windowed_computation():
    # Independent check at one pixel: explicit 11x11 Gaussian weights, numpy, channel by channel.
    x, y = random_images(7, (1, 3, 11, 11)).double(), random_images(8, (1, 3, 11, 11)).double()
    coords = np.arange(11) - 5
    g = np.exp(-(coords**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    values = []
    for c in range(3):
        a, b = x[0, c].numpy(), y[0, c].numpy()
        mu_a, mu_b = (w * a).sum(), (w * b).sum()
        var_a = (w * (a - mu_a) ** 2).sum()
        var_b = (w * (b - mu_b) ** 2).sum()
        cov = (w * (a - mu_a) * (b - mu_b)).sum()
        c1, c2 = 0.01**2, 0.03**2
        values.append(((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    assert ssim(x, y) == pytest.approx(np.mean(values), abs=1e-10)


# ------------------------------------------------------------------------------------ colourfulness


def test_colorfulness_grey_is_zero_and_hand_case():
    grey = torch.rand(1, 1, 20, 20, generator=torch.Generator().manual_seed(9)).expand(1, 3, 20, 20)
    assert colorfulness(grey) == pytest.approx(0.0, abs=1e-4)
    # half pure red, half pure green: rg = +-255 (mean 0, std 255), yb = 127.5 (std 0)
    img = torch.zeros(1, 3, 4, 4)
    img[0, 0, :, :2] = 1
    img[0, 1, :, 2:] = 1
    assert colorfulness(img) == pytest.approx(255 + 0.3 * 127.5, rel=1e-6)
    assert delta_colorfulness(img, grey[:, :, :4, :4]) == pytest.approx(293.25, rel=1e-4)


def test_colorfulness_accepts_pil_and_numpy():
    arr = np.zeros((4, 4, 3), dtype=np.uint8)
    arr[:, :2, 0] = 255
    arr[:, 2:, 1] = 255
    assert colorfulness(arr) == pytest.approx(293.25, rel=1e-6)
    assert colorfulness(Image.fromarray(arr)) == pytest.approx(293.25, rel=1e-6)
    assert colorfulness(arr.astype(np.float32) / 255) == pytest.approx(293.25, rel=1e-6)


# ------------------------------------------------------------------------------------ CDC


def test_cdc_identical_frames_is_zero():
    frame = random_images(10, (1, 3, 16, 16))
    assert cdc(frame.expand(6, 3, 16, 16)) == 0.0


def test_cdc_hand_computed_flicker():
    black, white = torch.zeros(3, 8, 8), torch.ones(3, 8, 8)
    ln2 = math.log(2)
    assert cdc(torch.stack([black, white])) == pytest.approx(ln2)  # only dilation 1 has a pair
    # B W B W B: d=1 pairs all differ (ln 2), d=2 and d=4 pairs all match (0)
    flicker = torch.stack([black, white, black, white, black])
    assert cdc(flicker) == pytest.approx(ln2 / 3)
    # streamed as a list of PIL images gives the same number
    pil_frames = [Image.new("RGB", (8, 8), (0, 0, 0) if i % 2 == 0 else (255, 255, 255)) for i in range(5)]
    assert cdc(pil_frames) == pytest.approx(ln2 / 3)


def test_cdc_grows_with_colour_flicker():
    ramp = torch.linspace(0.1, 0.6, 256).view(1, 1, 256).expand(3, 16, 256)  # every level in 0.1..0.6 used
    red = torch.tensor([1.0, 0, 0]).view(3, 1, 1)

    def flicker(amount: float) -> torch.Tensor:
        return torch.stack([ramp + (amount if t % 2 else 0.0) * red for t in range(8)])

    steady, mild, strong = flicker(0.0), flicker(0.02), flicker(0.3)
    assert cdc(steady) == 0.0
    assert 0 < cdc(mild) < cdc(strong)
    # only the red channel flickers, at odd distances: d=1 pairs differ, d=2 and d=4 match
    ramp_hist = metrics._channel_histograms(ramp)
    shifted_hist = metrics._channel_histograms(ramp + 0.3 * red)
    red_js = float(metrics._js_divergence(ramp_hist[0], shifted_hist[0]))
    assert cdc(strong) == pytest.approx(red_js / 3 / 3)


def test_cdc_errors():
    with pytest.raises(InputError, match="at least 2 frames"):
        cdc(torch.zeros(1, 3, 4, 4))
    with pytest.raises(InputError, match="one size"):
        cdc([torch.zeros(3, 4, 4), torch.zeros(3, 5, 4)])


# ------------------------------------------------------------------------------------ report, baseline


def test_grey_baseline_has_zero_chroma_and_target_luma():
    target = random_images(12)
    grey = grey_baseline(target)
    assert grey.shape == target.shape
    assert rgb_to_chroma(grey).abs().max() < 1e-6
    expected = 0.299 * target[:, 0] + 0.587 * target[:, 1] + 0.114 * target[:, 2]
    torch.testing.assert_close(grey[:, 1], expected)
    assert colorfulness(grey) == pytest.approx(0.0, abs=1e-3)


def test_quality_report_tensors_and_lists():
    target = random_images(13)
    pred = (target + 0.05).clamp(0, 1)
    report = quality_report(pred, target)
    assert set(report) == {"psnr", "ssim", "colorfulness", "delta_colorfulness", "ciede2000", "count"}
    assert report["count"] == 2
    assert report["psnr"] == pytest.approx(psnr(pred, target), rel=1e-6)
    assert report["ciede2000"] == pytest.approx(ciede2000(pred, target), rel=1e-9)
    # lists of differently sized pairs are averaged image by image
    small = random_images(14, (1, 3, 16, 16))
    listed = quality_report([pred[0], small], [target[0], small])
    assert listed["count"] == 2 and listed["psnr"] == math.inf
    assert listed["ciede2000"] == pytest.approx((ciede2000(pred[0], target[0]) + 0) / 2, rel=1e-9)
    grey_report = quality_report(grey_baseline(target), target)
    assert grey_report["colorfulness"] < report["colorfulness"]
    with pytest.raises(InputError, match="2 predictions but 1 targets"):
        quality_report([pred[0], pred[1]], [target[0]])


def test_shape_and_type_errors_are_clear():
    with pytest.raises(InputError, match="differ in shape"):
        psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    with pytest.raises(InputError, match=r"\(B, 3, H, W\)"):
        as_batch(torch.zeros(1, 1, 8, 8))
    with pytest.raises(InputError, match="Cannot use a str"):
        as_batch("image.png")
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        as_batch(np.full((2, 2, 3), 2.0))
    with pytest.raises(InputError, match="reduction"):
        psnr(torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2), reduction="sum")
    assert as_batch(torch.full((3, 2, 2), 255, dtype=torch.uint8)).max() == 1.0
    assert metrics.as_batch(torch.zeros(3, 2, 2, dtype=torch.bfloat16)).dtype == torch.float32


def test_ciede2000_blocks_give_the_same_mean(monkeypatch):
    a, b = random_images(15), random_images(16)
    whole = ciede2000(a, b, reduction="none")
    monkeypatch.setattr(metrics, "CIEDE_BLOCK", 7)  # 1280 pixels in uneven blocks
    torch.testing.assert_close(ciede2000(a, b, reduction="none"), whole, atol=1e-9, rtol=0)
    direct = delta_e_ciede2000(rgb_to_lab(a.double()), rgb_to_lab(b.double())).flatten(1).mean(1)
    torch.testing.assert_close(whole, direct, atol=1e-9, rtol=0)
