"""ONNX export of DDColor (the exporter takes any generator): DDColor-T with the deterministic test weights
(tests/ddcolor_weights.py) exports, runs in ONNX Runtime with a dynamic batch, and matches torch; the command
line refuses odd render factors for DDColor (its input side must be a multiple of 32) and says what it wrote."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install colorizer[onnx])")

from colorizer_lib import cli  # noqa: E402
from colorizer_lib.export import ONNX_TOLERANCE, OnnxRunner, export_onnx, verify_onnx  # noqa: E402
from colorizer_lib.models import build_generator, expected_state  # noqa: E402
from tests.ddcolor_weights import deterministic_state_dict  # noqa: E402

RF = 4  # 64 px: the smallest input DDColor's five halvings allow with a 2 x 2 deepest map


@pytest.fixture(scope="module")
def ddcolor_tiny() -> torch.nn.Module:
    with torch.device("meta"):
        model = build_generator("ddcolor-tiny")
    model.load_state_dict(deterministic_state_dict(expected_state("ddcolor-tiny"), seed=1), strict=True, assign=True)
    return model.eval()


def test_ddcolor_exports_and_matches_torch(tmp_path, ddcolor_tiny):
    path = export_onnx(ddcolor_tiny, tmp_path / "ddcolor-tiny-rf4.onnx", render_factor=RF)
    check = verify_onnx(path, ddcolor_tiny)  # random inputs, batches 1 and 2
    assert check.max_abs <= ONNX_TOLERANCE
    runner = OnnxRunner(path)
    x = torch.rand(3, 3, 16 * RF, 16 * RF, generator=torch.Generator().manual_seed(5))  # grey RGB in [0, 1]
    x = x[:, :1].expand(-1, 3, -1, -1).contiguous()
    got = runner(x)
    with torch.inference_mode():
        want = ddcolor_tiny(x)
    assert got.shape == want.shape == (3, 2, 16 * RF, 16 * RF)  # Lab a, b; the batch is dynamic
    assert want.abs().max() > 10  # real a/b spreads (units of Lab), so the comparison below means something
    # float32 on both sides: summation order only (DDColor's outputs are Lab units, up to ~70 here)
    assert (got - want).abs().max() <= ONNX_TOLERANCE


def test_export_command_refuses_odd_render_factors_for_ddcolor_and_names_the_output(tmp_path, capsys):
    odd = tmp_path / "odd.onnx"
    code = cli.main(["export", "--random-weights", "--model", "ddcolor-tiny", "-r", "5", "-o", str(odd)])
    assert code == cli.EXIT_USAGE and not odd.exists()
    err = capsys.readouterr().err
    assert "even render factor" in err and "use 4 or 6" in err
    out = tmp_path / "even.onnx"
    assert cli.main(["export", "--random-weights", "--model", "ddcolor-tiny", "-r", str(RF), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and f"output (B, 2, {16 * RF}, {16 * RF}) (Lab a, b)" in printed
    assert "verified with ONNX Runtime" in printed


def test_export_refuses_an_ensemble_and_says_what_to_do(tmp_path, capsys):
    out = tmp_path / "both.onnx"
    assert cli.main(["export", "--model", "compact+compact", "-o", str(out)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "ensemble" in err and "export each model on its own" in err and "Traceback" not in err
    assert not out.exists()


def test_a_ddcolor_colorizer_on_onnx_runtime_paints_what_torch_paints(tmp_path, ddcolor_tiny):
    """``use_onnx_runtime`` (what ``colorize image --runtime onnx`` and the CPU policy use) on a DDColor model:
    the same picture as torch. Tolerance: the a, b outputs differ by summation order only (``ONNX_TOLERANCE``,
    in Lab units); after the merge to 8 bits that moves a value by at most one level, and rarely."""
    import copy

    import numpy as np
    from PIL import Image

    from colorizer_lib import Colorizer

    grey = Image.fromarray(np.linspace(0, 255, 96 * 80, dtype=np.float32).reshape(80, 96).astype(np.uint8))
    col = Colorizer.from_model(copy.deepcopy(ddcolor_tiny), name="ddcolor-tiny-test",  # folds its own copy default_render_factor=RF, device="cpu",
                               dtype="float32")
    want = np.asarray(col.colorize(grey).image).astype(int)
    col.use_onnx_runtime(tmp_path / "cache", progress=False)
    got = np.asarray(col.colorize(grey).image).astype(int)
    assert got.shape == want.shape == (80, 96, 3)
    assert np.abs(want[..., 1] - want[..., 2]).max() > 3  # coloured: the check below compares colour
    diff = np.abs(got - want)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
