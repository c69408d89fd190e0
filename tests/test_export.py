"""ONNX export (``colorize export``) checked against torch with ONNX Runtime, on tiny models of every
generator family (deep = Artistic, wide = Stable/Video, compact) at odd and even render factors.

Tolerance: ``export.ONNX_TOLERANCE`` on the normalised output; float32 on both sides, so the
observed differences are far smaller (about 1e-5 to 1e-4 on these models; a wrong export, e.g. a
shifted bias, gives differences near 0.1 and more).
"""

from __future__ import annotations

import copy
from fractions import Fraction

import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install colorizer[onnx])")

from colorizer_lib import cli  # noqa: E402
from colorizer_lib.errors import InputError, VerificationError  # noqa: E402
from colorizer_lib.export import ONNX_TOLERANCE, OnnxRunner, export_onnx, verify_onnx  # noqa: E402
from colorizer_lib.models.fold import fold_for_inference  # noqa: E402

from .test_speed_paths import _grey_batch, tiny_deep, tiny_wide  # noqa: E402


def tiny_compact():
    from colorizer_lib.models.compact import CompactUnet

    torch.manual_seed(6)
    model = CompactUnet(decoder_channels=(16, 8, 8, 8))
    with torch.no_grad():  # non-trivial head so the output is not a constant grey
        model.decoder["head"].weight.normal_(0, 0.5)
    return model.eval()


@pytest.mark.parametrize("build,rf", [(tiny_deep, 5), (tiny_deep, 6), (tiny_wide, 5), (tiny_compact, 3)],
                         ids=["deep-odd", "deep-even", "wide-odd", "compact"])
def test_export_matches_torch(tmp_path, build, rf):
    model = fold_for_inference(build())
    path = export_onnx(model, tmp_path / "model.onnx", render_factor=rf)
    check = verify_onnx(path, model, batches=(1, 3))
    assert check.max_abs < ONNX_TOLERANCE and check.batches == (1, 3)
    # the batch dimension is dynamic, the size fixed
    runner = OnnxRunner(path)
    x = _grey_batch(2, 16 * rf, seed=9)
    with torch.inference_mode():
        expected = model(x)
    out = runner(x)
    assert out.shape == (2, 3, 16 * rf, 16 * rf)
    assert expected.std() > 1e-3
    torch.testing.assert_close(out, expected, rtol=0, atol=ONNX_TOLERANCE)
    assert not list(tmp_path.glob("*.part"))  # written atomically


def test_runner_names_the_fix_for_a_wrong_size(tmp_path):
    model = fold_for_inference(tiny_deep())
    path = export_onnx(model, tmp_path / "m.onnx", render_factor=4)
    with pytest.raises(InputError, match="render-factor"):
        OnnxRunner(path)(_grey_batch(1, 80))


def test_verify_catches_a_wrong_export(tmp_path):
    model = fold_for_inference(tiny_deep())
    path = export_onnx(model, tmp_path / "m.onnx", render_factor=4)
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.layers[11][0].bias.add_(0.5)  # a different model: outputs shift
    with pytest.raises(VerificationError, match="differ"):
        verify_onnx(path, other)


def test_export_refuses_bad_names_and_render_factors(tmp_path):
    from colorizer_lib.errors import RenderFactorError

    model = fold_for_inference(tiny_deep())
    with pytest.raises(InputError, match=".onnx"):
        export_onnx(model, tmp_path / "m.bin", render_factor=4)
    with pytest.raises(RenderFactorError):
        export_onnx(model, tmp_path / "m.onnx", render_factor=1)


def test_export_command(tmp_path, capsys):
    out = tmp_path / "tiny.onnx"
    code = cli.main(["export", "--format", "onnx", "--model", "deoldify-deep-tiny", "--random-weights",
                     "--render-factor", "4", "-o", str(out)])
    assert code == cli.EXIT_OK
    assert out.is_file() and out.stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "verified with ONNX Runtime" in printed and f"{ONNX_TOLERANCE:.0e}" in printed
    assert cli.main(["export", "--model", "deoldify-deep-tiny", "--random-weights", "-r", "1",
                     "-o", str(tmp_path / "x.onnx")]) == cli.EXIT_USAGE


def test_wide_fixture_is_really_wide():
    model = tiny_wide()
    assert model.kind == "wide" and model.nf_factor == Fraction(1, 16)


def test_onnx_cpu_model_exports_once_per_size_and_matches_torch(tmp_path):
    from colorizer_lib.colorizer import Colorizer
    from colorizer_lib.export import OnnxCpuModel, prefer_onnx_on_cpu

    col = Colorizer.from_model(tiny_deep(), name="tiny", default_render_factor=4, device="cpu")
    reference = copy.deepcopy(col.model)
    fast = OnnxCpuModel(col.model, cache_dir=tmp_path, name="tiny")
    x = _grey_batch(2, 64, seed=3)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), reference(x), rtol=0, atol=ONNX_TOLERANCE)
    path = fast.path_for(4)
    # the file and its sha256 record (checked before each reuse); no lock or partial file left
    assert path.is_file() and sorted((tmp_path / "onnx").iterdir()) == [path, path.with_name(path.name + ".sha256")]
    assert fast.exported == [path]
    mtime = path.stat().st_mtime_ns
    again = OnnxCpuModel(col.model, cache_dir=tmp_path, name="tiny")  # a new process would reuse the file
    again(x)
    assert path.stat().st_mtime_ns == mtime and again.exported == []
    # as the Colorizer's model: same chroma as the torch path
    col.model = fast
    luma = torch.rand(1, 1, 50, 70, generator=torch.Generator().manual_seed(1))
    torch_col = Colorizer.from_model(reference, name="tiny", default_render_factor=4, device="cpu", fold=False)
    torch.testing.assert_close(col.predict_chroma(luma), torch_col.predict_chroma(luma), rtol=0, atol=ONNX_TOLERANCE)
    with pytest.raises(InputError, match="16 x render factor"):
        fast(torch.zeros(1, 3, 60, 60))
    assert prefer_onnx_on_cpu("cpu", 10) and not prefer_onnx_on_cpu("cpu", 1)


def test_onnx_cpu_model_removes_a_failed_export(tmp_path, monkeypatch):
    from colorizer_lib import export
    from colorizer_lib.export import OnnxCpuModel

    def refuse(*args, **kwargs):
        raise VerificationError("differ")

    monkeypatch.setattr(export, "verify_onnx", refuse)
    fast = OnnxCpuModel(fold_for_inference(tiny_deep()), cache_dir=tmp_path, name="tiny")
    with pytest.raises(VerificationError):
        fast(_grey_batch(1, 64))
    assert not fast.path_for(4).exists()
