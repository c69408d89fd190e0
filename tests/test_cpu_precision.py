"""The CPU precision policy: bfloat16 by default where the processor has it natively (AVX512-BF16 or
AMX), float32 elsewhere; ``dtype=`` / ``--dtype`` override it both ways. The capability checks are
mocked, so these tests say the same on every machine (``conftest.py`` answers "no native bf16" for
all other tests).

Tolerance of the bfloat16 picture test: bfloat16 keeps 8 significant bits, so every stored
activation and weight carries a relative rounding error of up to 2**-9 (0.2 %); through the ~40
layers of the compact network these add up to a few per cent of a chroma value (chroma spans about
+-0.44, so 1 % of it is about one 8-bit level): "a few levels" on average, bounded here at 3, while
luma is the original's in both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorizer_lib import accel, export
from colorizer_lib.cli import EXIT_OK, main
from colorizer_lib.colorizer import Colorizer, resolve_dtype

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


@pytest.fixture()
def tiny_deep() -> torch.nn.Module:
    """DeOldify's deep U-Net at test size, random weights with calibrated BatchNorm (finite outputs)."""
    from colorizer_lib.models.random_weights import calibrated_random_model

    return calibrated_random_model("deoldify-deep-tiny", CPU, size=64)


@pytest.fixture()
def tiny_weights_file(tiny_deep, tmp_path) -> Path:
    path = tmp_path / "tiny_deep.pth"
    torch.save(tiny_deep.state_dict(), path)
    return path


@pytest.fixture()
def cpu_caps(monkeypatch):
    """``set(avx512_bf16=..., amx=...)`` mocks torch's two capability checks and forgets the cached answer."""

    def set_caps(*, avx512_bf16: bool, amx: bool = False) -> None:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
        accel.cpu_has_native_bf16.cache_clear()

    return set_caps


@pytest.mark.parametrize("avx512_bf16, amx, native", [(True, False, True), (False, True, True), (True, True, True),
                                                      (False, False, False)])
def test_native_bf16_is_read_from_torchs_avx512_bf16_and_amx_checks(cpu_caps, avx512_bf16, amx, native):
    cpu_caps(avx512_bf16=avx512_bf16, amx=amx)
    assert accel.cpu_has_native_bf16() is native
    assert accel.default_cpu_dtype() == (torch.bfloat16 if native else torch.float32)
    assert resolve_dtype(None, CPU) == accel.default_cpu_dtype()


@pytest.mark.parametrize("flags, native", [("fpu avx2 avx512f avx512bw", False), ("fpu avx512f avx512_bf16", True),
                                           ("fpu amx_bf16 amx_tile", True), ("", False)])
def test_without_torchs_checks_the_cpuinfo_flags_decide(monkeypatch, tmp_path, flags, native):
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, name, raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    monkeypatch.setattr(accel, "_CPUINFO", cpuinfo)
    accel.cpu_has_native_bf16.cache_clear()
    assert accel.cpu_has_native_bf16() is native
    monkeypatch.setattr(accel, "_CPUINFO", tmp_path / "missing")
    accel.cpu_has_native_bf16.cache_clear()
    assert accel.cpu_has_native_bf16() is False


def test_gpu_default_and_explicit_dtypes_ignore_the_cpu_check(cpu_caps):
    for native in (True, False):
        cpu_caps(avx512_bf16=native)
        assert resolve_dtype("float32", CPU) == torch.float32
        assert resolve_dtype("bf16", CPU) == torch.bfloat16
        assert resolve_dtype(torch.float16, CPU) == torch.float16
        assert resolve_dtype(None, torch.device("meta")) == torch.float32


def test_colorizer_without_native_bf16_keeps_the_float32_path(cpu_caps, tiny_deep):
    """A CPU without native bf16 runs exactly what an explicit float32 colorizer runs: same weights,
    same layout, the same picture bit for bit (so nothing gets slower or changes there)."""
    cpu_caps(avx512_bf16=False)
    auto = Colorizer.from_model(tiny_deep, name="tiny", default_render_factor=4, device="cpu")
    explicit = Colorizer.from_model(tiny_deep, name="tiny", default_render_factor=4, device="cpu", dtype="float32")
    assert auto.dtype == torch.float32 and not auto.channels_last
    assert all(p.dtype == torch.float32 for p in auto.model.parameters())
    src = REPO / "examples" / "nagasaki-boats.jpg"
    assert np.array_equal(np.asarray(auto.colorize(src).image), np.asarray(explicit.colorize(src).image))


def test_colorizer_with_native_bf16_defaults_to_bf16_and_dtype_overrides(cpu_caps, tiny_deep):
    cpu_caps(avx512_bf16=True)
    auto = Colorizer.from_model(tiny_deep, name="tiny", default_render_factor=4, device="cpu")
    assert auto.dtype == torch.bfloat16 and auto.channels_last == accel.prefers_channels_last(CPU, torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in auto.model.parameters())
    forced = Colorizer.from_model(tiny_deep, name="tiny", default_render_factor=4, device="cpu", dtype="float32")
    assert forced.dtype == torch.float32 and all(p.dtype == torch.float32 for p in forced.model.parameters())


@pytest.mark.parametrize("model", ["compact"])
def test_every_model_family_follows_the_policy(cpu_caps, model):
    """The policy lives in ``resolve_dtype``, which every way of building a Colorizer goes through:
    the embedded (trained) compact model here; the DeOldify U-Nets in the test above."""
    for native, dtype in ((True, torch.bfloat16), (False, torch.float32)):
        cpu_caps(avx512_bf16=native)
        col = Colorizer.from_pretrained(model, device="cpu", progress=False)
        assert col.dtype == dtype and {p.dtype for p in col.model.parameters()} == {dtype}


def test_bf16_picture_stays_close_to_float32_with_the_trained_compact_model(cpu_caps):
    cpu_caps(avx512_bf16=True)
    bf16 = Colorizer.from_pretrained("compact", device="cpu", progress=False)
    fp32 = Colorizer.from_pretrained("compact", device="cpu", dtype="float32", progress=False)
    # The photo that suffered most when the compact model's input range change ran in bfloat16 (7.6
    # levels on average, against 1.3 now; all nine examples/ photos: BENCHMARKS.md).
    src = REPO / "examples" / "march-pastoral.jpg"
    a = np.asarray(bf16.colorize(src).image).astype(np.int16)
    b = np.asarray(fp32.colorize(src).image).astype(np.int16)
    diff = np.abs(a - b)
    assert diff.mean() < 3.0, diff.mean()
    assert not np.array_equal(a, b)  # it did run in bfloat16


def _four_photos(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        Image.open(REPO / "examples" / "march-pastoral.jpg").convert("L").resize((96, 48)).save(folder / f"p{i}.png")
    return folder


def test_runtime_policy(cpu_caps, tiny_deep):
    """ONNX Runtime float32 for 4+ images, except a DeOldify U-Net in bfloat16 on a CPU with native
    bfloat16 (torch is faster there); the compact model keeps ONNX Runtime (BENCHMARKS.md)."""
    from colorizer_lib.models.compact import CompactUnet

    compact = CompactUnet()
    for native in (True, False):
        cpu_caps(avx512_bf16=native)
        assert export.prefer_onnx_on_cpu("cpu", 4, model=tiny_deep, dtype=torch.float32)
        assert not export.prefer_onnx_on_cpu("cpu", 4, model=tiny_deep, dtype=torch.bfloat16)
        # bfloat16 without native support only runs when asked for: then it stays (ONNX is float32)
        assert export.prefer_onnx_on_cpu("cpu", 4, model=compact, dtype=torch.bfloat16) is native
        assert not export.prefer_onnx_on_cpu("cpu", 3, model=compact, dtype=torch.float32)
        assert not export.prefer_onnx_on_cpu("cpu", 9, model=compact, dtype=torch.float16)
        assert not export.prefer_onnx_on_cpu("meta", 9, model=compact, dtype=torch.float32)


@pytest.mark.parametrize("native, extra, onnx", [(False, [], True), (True, [], False), (True, ["--dtype", "float32"], True),
                                                 (True, ["--runtime", "onnx"], True),
                                                 (True, ["--dtype", "bfloat16", "--runtime", "torch"], False)])
def test_cli_runtime_policy_follows_the_cpu(cpu_caps, tiny_weights_file, tmp_path, capsys, native, extra, onnx):
    """4+ photos of a DeOldify model: ONNX Runtime (float32) on CPUs without native bf16, torch bfloat16
    on CPUs with it; ``--dtype float32`` or ``--runtime onnx`` bring ONNX Runtime back."""
    cpu_caps(avx512_bf16=native)
    code = main(["image", str(_four_photos(tmp_path)), "-o", str(tmp_path / "out"), "-m", str(tiny_weights_file),
                 "-r", "4", "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), *extra])
    assert code == EXIT_OK and len(list((tmp_path / "out").rglob("*.png"))) == 4
    assert ("ONNX Runtime" in capsys.readouterr().err) is onnx


def test_cli_compact_on_a_bf16_cpu_takes_onnx_runtime_in_float32(cpu_caps, tmp_path, capsys):
    """The compact model runs faster in ONNX Runtime float32 than in torch bfloat16, so a 4-photo job
    reloads it in float32 for ONNX Runtime, and the pictures equal a float32 torch run's within ONNX
    Runtime's rounding (1 level)."""
    cpu_caps(avx512_bf16=True)
    folder = _four_photos(tmp_path)
    common = ["-m", "compact", "-r", "4", "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "-q"]
    assert main(["image", str(folder), "-o", str(tmp_path / "auto"), *common]) == EXIT_OK
    assert main(["image", str(folder), "-o", str(tmp_path / "ref"), "--runtime", "torch", "--dtype", "float32",
                 *common]) == EXIT_OK
    assert list((tmp_path / "cache" / "onnx").glob("compact-*-rf4.onnx"))  # ONNX Runtime ran
    for out in (tmp_path / "auto").rglob("*.png"):
        ref = tmp_path / "ref" / out.relative_to(tmp_path / "auto")
        a, b = (np.asarray(Image.open(p)).astype(np.int16) for p in (out, ref))
        assert np.abs(a - b).max() <= 1
