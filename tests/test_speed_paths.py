"""Fast paths equal the reference path: channel padding, bf16/channels-last, torch.compile wrapper,
the pipelined disk-to-disk path, and the benchmark itself (a tiny CPU run that writes its files).

Tolerances: padding and compilation keep float32 outputs within 1e-5 (summation order only);
bf16 + channels-last within 6 % relative L2 of the float32 output and a mean colour error under
3/255 (bf16 has 8 bits of mantissa; random-weight nets amplify rounding, measured 1.6-4.5 % and
0.7-2.0/255);
the pipelined path within 1/255 of the library's output per channel.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from colorizer_lib.bench.baseline import _yuv_merge_cpu
from colorizer_lib.models.random_weights import calibrated_random_model
from colorizer_lib.models.deoldify import DeOldifyUnet
from colorizer_lib.models.fold import fold_for_inference
from colorizer_lib.models.resnet import ResNetConfig
from colorizer_lib.colorizer import Colorizer
from colorizer_lib.accel import CompiledModel, call_in_chunks, is_index_limit_error, pad_channels, should_compile
from colorizer_lib.export import OnnxCpuModel
from colorizer_lib.photos import plan_jobs, run_jobs


def colorize_files_pipelined(col, sources, out, *, out_format=None, batch_size=8, **options):
    """``sources`` planned into the folder ``out`` as ``colorize image`` names them and run on the pipelined path."""
    jobs = plan_jobs([str(s) for s in sources], str(out), out_format=out_format)
    return run_jobs(col, jobs, pipeline="on", batch_size=batch_size, **options)


def _calibrate(model: nn.Module, size: int = 64, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, size, size))
    return model.eval()


def tiny_wide() -> DeOldifyUnet:
    """Wide (Stable/Video-shaped) U-Net whose head is 8 + 3 = 11 channels (padded to 16)."""
    torch.manual_seed(3)
    return _calibrate(DeOldifyUnet(ResNetConfig("bottleneck", (1, 1, 1, 1), 8, (8, 16, 32, 64)), "wide",
                                   Fraction(1, 16)))


def tiny_deep() -> DeOldifyUnet:
    """Deep (Artistic-shaped) U-Net: last block 6 channels (-> 8), head 9 channels (-> 16)."""
    torch.manual_seed(4)
    return _calibrate(DeOldifyUnet(ResNetConfig("basic", (1, 1, 1, 1), 8, (8, 16, 32, 64)), "deep", 0.75))


def _grey_batch(batch: int, size: int, seed: int = 5) -> torch.Tensor:
    from colorizer_lib.color import grey_to_rgb, normalize_imagenet

    g = torch.Generator().manual_seed(seed)
    return normalize_imagenet(grey_to_rgb(torch.rand(batch, 1, size, size, generator=g))).contiguous()


# -- channel padding ---------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [tiny_deep, tiny_wide], ids=["deep", "wide"])
@pytest.mark.parametrize("size", [80, 96], ids=["odd-rf5", "even-rf6"])
def test_pad_channels_keeps_outputs(build, size):
    folded = fold_for_inference(build())
    padded = pad_channels(copy.deepcopy(folded))
    x = _grey_batch(2, size)
    with torch.inference_mode():
        ref, out = folded(x), padded(x)
    assert torch.isfinite(ref).all()
    assert ref.std() > 1e-3  # a real, non-constant output, so equality means something
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("build", [tiny_deep, tiny_wide], ids=["deep", "wide"])
def test_pad_channels_makes_head_a_multiple_of_8(build):
    before = fold_for_inference(build())
    head_before = before.layers[10].layers[0][0].in_channels
    padded = pad_channels(copy.deepcopy(before))
    convs = [m for m in padded.modules() if isinstance(m, nn.Conv2d)]
    head = padded.layers[10].layers[0][0]
    assert head_before % 8 != 0  # the fixture really exercises padding
    assert head.in_channels % 8 == 0 and head.out_channels % 8 == 0
    assert head.in_channels % 32 == 0 if padded.kind == "deep" else head.in_channels < 32  # the measured defaults
    assert padded.layers[11][0].in_channels == head.in_channels
    if padded.kind == "deep":
        assert padded.layers[7].conv1[0].out_channels % 8 == 0
    assert len(convs) == len([m for m in before.modules() if isinstance(m, nn.Conv2d)])


def test_pad_channels_needs_a_folded_model():
    with pytest.raises(TypeError, match="fold_for_inference"):
        pad_channels(tiny_deep())


def test_pad_channels_leaves_other_models_alone():
    model = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1))
    assert pad_channels(model) is model
    assert model[0].out_channels == 5


def test_colorizer_pads_on_request_with_the_same_output():
    x = _grey_batch(2, 80)
    plain = Colorizer(tiny_deep(), name="tiny", device="cpu", pad=False)
    padded = Colorizer(tiny_deep(), name="tiny", device="cpu", pad=True)
    assert padded.model.layers[10].layers[0][0].in_channels % 8 == 0
    assert plain.model.layers[10].layers[0][0].in_channels % 8 != 0
    ref, out = plain.chroma_from_input(x, 5), padded.chroma_from_input(x, 5)
    assert ref.abs().mean() > 1e-3
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    default = Colorizer(tiny_deep(), name="tiny", device="cpu")
    assert default.model.layers[10].layers[0][0].in_channels % 8 != 0  # the default pads on CUDA only


# -- batches beyond 32-bit indexing --------------------------------------------------------------------


class _IndexLimited(nn.Module):
    """Doubles its input, but like a CUDA kernel with 32-bit index math refuses batches above ``limit``."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit, self.calls = limit, []

    def forward(self, x):
        self.calls.append(x.shape[0])
        if x.shape[0] > self.limit:
            raise RuntimeError("input tensor must fit into 32-bit index math")
        return x * 2


def test_call_in_chunks_splits_only_when_the_kernel_refuses():
    x = torch.arange(10 * 3, dtype=torch.float32).reshape(10, 3)
    cache: dict = {}
    fn = _IndexLimited(limit=3)
    torch.testing.assert_close(call_in_chunks(fn, x, cache), x * 2)
    assert cache == {((3,), torch.float32): 2}  # 10 -> 5 -> 2
    assert fn.calls == [10, 5, 2, 2, 2, 2, 2]  # whole batch, then halves until a chunk runs
    fn.calls.clear()
    torch.testing.assert_close(call_in_chunks(fn, x, cache), x * 2)
    assert fn.calls == [2, 2, 2, 2, 2]  # the cached chunk size is used at once
    fn.calls.clear()
    call_in_chunks(fn, x[:2], cache)
    assert fn.calls == [2]  # a batch within the cached size runs whole
    small: dict = {}
    torch.testing.assert_close(call_in_chunks(_IndexLimited(limit=10), x, small), x * 2)
    assert small == {}  # nothing refused, nothing cached


def test_call_in_chunks_lets_other_errors_through():
    x = torch.ones(4, 3)

    def broken(t):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    with pytest.raises(RuntimeError, match="illegal memory access"):
        call_in_chunks(broken, x, {})
    with pytest.raises(RuntimeError, match="32-bit index"):  # even one image is too big: nothing to split
        call_in_chunks(_IndexLimited(limit=0), x, {})
    assert is_index_limit_error(RuntimeError("input tensor must fit into 32-bit index math"))
    assert not is_index_limit_error(ValueError("32-bit index"))


# -- precision and memory layout -------------------------------------------------------------------


def test_bf16_channels_last_within_bf16_tolerance():
    ref_model = pad_channels(fold_for_inference(tiny_deep()))
    fast = copy.deepcopy(ref_model).to(torch.bfloat16).to(memory_format=torch.channels_last)
    x = _grey_batch(2, 80)
    with torch.inference_mode():
        ref = ref_model(x)
        out = fast(x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)).float()
    from colorizer_lib.color import denormalize_imagenet

    rel = (out - ref).norm() / ref.norm()
    assert rel < 6e-2, rel
    colour_error = (denormalize_imagenet(out).clamp(0, 1) - denormalize_imagenet(ref).clamp(0, 1)).abs().mean()
    assert colour_error < 3 / 255, colour_error


# -- torch.compile wrapper --------------------------------------------------------------------------


def test_compiled_model_equals_eager_and_caches_per_shape():
    eager = pad_channels(fold_for_inference(tiny_deep()))
    compiled = CompiledModel(eager, backend="aot_eager", max_shapes=1)
    a, b = _grey_batch(1, 64, seed=1), _grey_batch(1, 80, seed=2)
    with torch.inference_mode():
        torch.testing.assert_close(compiled(a), eager(a), rtol=1e-5, atol=1e-5)
        assert list(compiled.compile_seconds) == [((1, 3, 64, 64), torch.float32)]
        compiled(a)  # same shape: no new entry
        # a second shape exceeds max_shapes: runs eager, still correct, nothing compiled
        torch.testing.assert_close(compiled(b), eager(b), rtol=1e-5, atol=1e-5)
    assert len(compiled.compile_seconds) == 1


def test_compiled_model_pads_a_smaller_batch_to_a_compiled_one():
    """The last batch of a job runs through the graph compiled for the full batch (zero-padded), so
    a job never stops for a second compile, and its outputs are exactly the eager model's."""
    eager = pad_channels(fold_for_inference(tiny_deep()))
    compiled = CompiledModel(eager, backend="aot_eager", max_shapes=4)
    full, last = _grey_batch(4, 64, seed=3), _grey_batch(3, 64, seed=4)
    with torch.inference_mode():
        compiled(full)
        seen, channels_last = [], []

        class Spy(nn.Module):  # records the shapes that reach the compiled graph
            def __init__(self, graph):
                super().__init__()
                self.graph = graph

            def forward(self, x):
                seen.append(tuple(x.shape))
                channels_last.append(x.is_contiguous(memory_format=torch.channels_last))
                return self.graph(x)

        compiled.compiled = Spy(compiled.compiled)
        out = compiled(last)
        torch.testing.assert_close(out, eager(last), rtol=1e-5, atol=1e-5)
        assert seen == [(4, 3, 64, 64)] and list(compiled.compile_seconds) == [((4, 3, 64, 64), torch.float32)]
        cl = last.contiguous(memory_format=torch.channels_last)  # the layout the colorizer feeds on a GPU
        torch.testing.assert_close(compiled(cl), eager(cl), rtol=1e-5, atol=1e-5)
        compiled(_grey_batch(2, 80, seed=5))  # another image size: compiled for itself, not padded
    assert seen[1] == (4, 3, 64, 64) and seen[2] == (2, 3, 80, 80)
    assert channels_last[:2] == [False, True]  # the padded batch keeps the caller's layout (no re-trace)


def test_colorizer_compile_wraps_once_and_refuses_onnx_and_unknown_modes(monkeypatch):
    col = Colorizer.from_model(tiny_deep(), device="cpu")
    with pytest.raises(ValueError, match="unknown compile mode"):
        col.compile("fastest")
    col.compile("max-autotune")
    assert isinstance(col.model, CompiledModel) and col.model.mode == "max-autotune-no-cudagraphs"
    wrapped = col.model
    col.compile()
    assert col.model is wrapped
    onnx_col = Colorizer.from_model(tiny_deep(), device="cpu")
    monkeypatch.setattr(onnx_col, "model", OnnxCpuModel.__new__(OnnxCpuModel))
    with pytest.raises(ValueError, match="ONNX Runtime"):
        onnx_col.compile()


def test_compile_policy():
    assert should_compile("cuda", 10_000)
    assert not should_compile("cuda", 1000)  # measured break-even on an H100: 4,300-8,000 images
    assert not should_compile("cuda", 1)  # one photo in a notebook: never a minute of warm-up
    assert not should_compile("cpu", 10_000)
    with pytest.raises(ValueError):
        CompiledModel(nn.Identity(), max_shapes=0)


# -- pipelined disk-to-disk path ---------------------------------------------------------------------


def _grey_photo(path: Path, size=(150, 100), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size[1], 0:size[0]]
    grey = np.clip(128 + 60 * np.sin(xx / 9.0) + 40 * np.cos(yy / 7.0) + rng.normal(0, 8, xx.shape), 0, 255)
    Image.fromarray(grey.astype(np.uint8), "L").save(path)
    return path


def test_pipelined_path_matches_library(tmp_path):
    from colorizer_lib.colorizer import Colorizer
    from colorizer_lib.io import read_provenance

    col = Colorizer.from_model(tiny_deep(), name="tiny", default_render_factor=5, device="cpu")
    sources = [_grey_photo(tmp_path / f"in{i}.png", seed=i, size=(150 + 10 * i, 100)) for i in range(3)]
    stats = colorize_files_pipelined(col, sources, tmp_path / "out", batch_size=2, workers=2, out_format="png")
    assert stats.pipelined and len(stats.outputs) == 3 and [p.name for p in stats.outputs] == ["in0.png", "in1.png", "in2.png"]
    for src, out in zip(sources, stats.outputs):
        expected = np.asarray(col.colorize(src).image).astype(int)
        got = np.asarray(Image.open(out)).astype(int)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1
        assert np.abs(got[..., 0] - got[..., 2]).max() > 0  # really coloured, not grey passed through
        assert read_provenance(out)["colorizer:render_factor"] == "5"  # `colorize image` can resume on it


def test_pipelined_device_jpeg_encoder_matches_pil_encoder(tmp_path):
    pytest.importorskip("torchvision")  # installed with the [train] extra (fastai needs it), so in CI
    from colorizer_lib.colorizer import Colorizer
    from colorizer_lib.io import read_provenance

    col = Colorizer.from_model(tiny_deep(), name="tiny", default_render_factor=5, device="cpu")
    sources = [_grey_photo(tmp_path / f"in{i}.png", seed=i, size=(160, 120 + 8 * i)) for i in range(3)]
    pil = colorize_files_pipelined(col, sources, tmp_path / "pil", batch_size=2, workers=2, encoder="pil",
                                   out_format="jpg")
    tv = colorize_files_pipelined(col, sources, tmp_path / "tv", batch_size=2, workers=2, encoder="torchvision",
                                  out_format="jpg")
    assert [p.name for p in tv.outputs] == ["in0.jpg", "in1.jpg", "in2.jpg"]
    assert (pil.stats.encoder, tv.stats.encoder, tv.stats.decoder) == ("pil", "torchvision", "pil")  # "auto" decoder on CPU: PIL
    for a, b in zip(pil.outputs, tv.outputs):
        with Image.open(a) as ia, Image.open(b) as ib:
            assert ib.format == "JPEG" and ib.size == ia.size
            pa, pb = np.asarray(ia.convert("RGB")).astype(float), np.asarray(ib.convert("RGB")).astype(float)
        assert np.abs(pa - pb).mean() < 2.0  # two JPEG encoders at quality 95: the same picture
        assert np.abs(pb[..., 0] - pb[..., 2]).max() > 0  # coloured
        assert read_provenance(b) == read_provenance(a)  # same EXIF provenance, so resume recognises it
        assert read_provenance(b)["colorizer:render_factor"] == "5"
    assert not list((tmp_path / "tv").glob("*.part"))


def test_pipelined_device_jpeg_decoder_matches_pil_decoder(tmp_path):
    pytest.importorskip("torchvision")
    from colorizer_lib.colorizer import Colorizer

    col = Colorizer.from_model(tiny_deep(), name="tiny", default_render_factor=5, device="cpu")
    grey = Image.open(_grey_photo(tmp_path / "g.png", size=(120, 90))).convert("L")
    sources = []
    for orientation in (1, 6, 3, 8):  # EXIF rotations are applied as PIL's exif_transpose does
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.jpg"
        grey.convert("RGB").save(path, quality=92, exif=exif.tobytes())
        sources.append(path)
    grey.save(tmp_path / "prog.jpg", quality=92, progressive=True)  # not for nvJPEG: decoded on the CPU
    sources += [tmp_path / "prog.jpg", tmp_path / "g.png"]
    from colorizer_lib.photos.gpu import _read_plain_jpeg

    assert [_read_plain_jpeg(p) is not None for p in sources] == [True] * 4 + [False, False]
    assert _read_plain_jpeg(sources[1]).orientation == 6
    pil = colorize_files_pipelined(col, sources, tmp_path / "pil", batch_size=3, workers=2, out_format="png",
                                   decoder="pil")
    tv = colorize_files_pipelined(col, sources, tmp_path / "tv", batch_size=3, workers=2, out_format="png",
                                  decoder="torchvision")
    assert (pil.stats.decoder, tv.stats.decoder, tv.stats.encoder) == ("pil", "torchvision", "pil")
    for a, b in zip(pil.outputs, tv.outputs):
        pa, pb = np.asarray(Image.open(a)).astype(int), np.asarray(Image.open(b)).astype(int)
        assert pa.shape == pb.shape, a.name
        assert np.abs(pa - pb).max() <= 2, a.name
    assert np.asarray(Image.open(tv.outputs[1])).shape[:2] == (120, 90)  # orientation 6: portrait


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_equals_pil_exif_transpose(orientation):
    from colorizer_lib.photos.gpu import orient

    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    ops = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}
    expected = np.asarray(Image.fromarray(a).transpose(ops[orientation])) if orientation in ops else a
    assert np.array_equal(orient(torch.from_numpy(a), orientation).numpy(), expected)


def test_pipelined_encoder_choice_is_checked(tmp_path):
    from colorizer_lib.colorizer import Colorizer
    from colorizer_lib.errors import InputError

    col = Colorizer.from_model(tiny_deep(), name="tiny", default_render_factor=5, device="cpu")
    src = [_grey_photo(tmp_path / "in.png")]
    with pytest.raises(InputError, match="encoder must be"):
        colorize_files_pipelined(col, src, tmp_path / "o", encoder="nvjpeg")
    with pytest.raises(InputError, match="decoder must be"):
        colorize_files_pipelined(col, src, tmp_path / "o", decoder="nvjpeg")
    if importlib.util.find_spec("torchvision"):  # the device encoder only ever applies to JPEG outputs
        run = colorize_files_pipelined(col, src, tmp_path / "tv", encoder="torchvision", out_format="png")
        assert run.outputs[0].suffix == ".png" and not run.failures
    # "auto" on CPU keeps the PIL encoder and PNG output works
    assert colorize_files_pipelined(col, src, tmp_path / "o", out_format="png").outputs[0].suffix == ".png"


def test_pipelined_path_rejects_bad_arguments(tmp_path):
    from colorizer_lib.colorizer import Colorizer
    from colorizer_lib.errors import InputError

    col = Colorizer.from_model(tiny_deep(), name="tiny", default_render_factor=5, device="cpu")
    with pytest.raises(InputError, match="pipeline must be"):
        run_jobs(col, [], pipeline="yes")
    with pytest.raises(ValueError, match="batch size"):
        colorize_files_pipelined(col, [], tmp_path, batch_size=0)


# -- the benchmark -----------------------------------------------------------------------------------


def test_baseline_yuv_merge_keeps_luma_and_takes_chroma():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    orig = np.repeat(grey[..., None], 3, axis=2)
    color = rng.integers(40, 200, (20, 30, 3), dtype=np.uint8)
    merged = _yuv_merge_cpu(orig, color).astype(float)
    luma = merged @ np.array([0.299, 0.587, 0.114])
    inside = (merged > 0).all(-1) & (merged < 255).all(-1)  # clipping changes luma, as in DeOldify
    assert np.abs(luma - grey)[inside].max() <= 1.5
    chroma_in = (color[..., 2] - color.astype(float) @ np.array([0.299, 0.587, 0.114]))
    chroma_out = merged[..., 2] - luma
    assert np.abs(chroma_out - chroma_in)[inside].mean() < 1.5


def test_calibrated_random_model_is_finite():
    model = calibrated_random_model("deoldify-deep-tiny", torch.device("cpu"), size=64)
    with torch.inference_mode():
        out = model(_grey_batch(1, 96))
    assert not model.training and torch.isfinite(out).all()


def test_bench_runs_on_cpu_and_writes_results(tmp_path, capsys):
    from colorizer_lib import cli

    parser = cli.build_parser("bench")
    args = parser.parse_args(["bench", "--device", "cpu", "--models", "deoldify-deep-tiny", "--render-factors", "3",
                              "--variants", "baseline,eager,eager-pad", "--batch-sizes", "2", "--photos", "1",
                              "--photo-size", "64,48", "--baseline-photos", "1", "--e2e-batch-sizes", "1",
                              "--min-seconds", "0", "--out", str(tmp_path)])
    assert args.func(args) == 0
    (json_path,) = tmp_path.glob("bench-cpu-*.json")
    (csv_path,) = tmp_path.glob("bench-cpu-*.csv")
    data = json.loads(json_path.read_text())
    assert data["meta"]["torch"] == torch.__version__ and "date_utc" in data["meta"] and "command" in data["meta"]
    assert data["meta"]["matmul_tflops"] > 0
    rows = data["rows"]
    model_rows = [r for r in rows if r["kind"] == "model"]
    assert {(r["variant"], r["batch"]) for r in model_rows} == {("baseline", 1), ("eager", 2), ("eager-pad", 2)}
    for r in model_rows:
        assert r["per_second"] > 0 and r["gflop_per_image"] > 0 and "NON-FINITE" not in r["note"]
    kinds = {(r["kind"], r["variant"]) for r in rows}
    assert {("latency-12mp", "library"), ("latency-12mp", "pipelined"), ("e2e", "library"),
            ("e2e", "pipelined"), ("e2e", "baseline")} <= kinds
    assert len(csv_path.read_text().strip().splitlines()) == len(rows) + 1
    assert "per second" in capsys.readouterr().out  # the table was printed


def test_bench_rejects_unknown_names(tmp_path):
    from colorizer_lib import cli
    from colorizer_lib.registry import resolve_arch
    from colorizer_lib.errors import InputError

    with pytest.raises(InputError, match="unknown model"):
        resolve_arch("no-such-model")
    assert cli.main(["bench", "--device", "cpu", "--variants", "warp-drive", "--out", str(tmp_path)]) == cli.EXIT_USAGE


def test_bench_interleaved_times_the_cli_beside_the_baseline(tmp_path, monkeypatch):
    """``--interleave`` with the cli variant: ``colorize image`` on one photo in a fresh process,
    timed round-robin with the in-process forwards; each row names its speed-up over the baseline and
    the in-process outputs their difference from float32."""
    from colorizer_lib import cli
    from tests.architectures import python_path_registering_them

    # the cli variant's own process must know the test-only architecture too
    monkeypatch.setenv("PYTHONPATH", python_path_registering_them(tmp_path / "site"))

    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (80, 60), (120, 120, 120)).save(photo)
    args = cli.build_parser("bench").parse_args(
        ["bench", "--device", "cpu", "--models", "deoldify-deep-tiny", "--render-factors", "3", "--interleave",
         "--repeats", "1", "--variants", "baseline,eager-fp32,cli", "--cli-photo", str(photo), "--out", str(tmp_path)])
    assert args.func(args) == 0
    data = json.loads(next(tmp_path.glob("bench-cpu-*.json")).read_text())
    rows = {r["variant"]: r for r in data["rows"]}
    assert set(rows) == {"baseline", "eager-fp32", "cli"} and rows["cli"]["kind"] == "cli-photo"
    assert all(r["ms"] > 0 and "CPU time median" in r["note"] for r in rows.values())
    assert "speed-up over baseline" in rows["cli"]["note"] and "speed-up" not in rows["baseline"]["note"]
    assert "|diff| vs eager-fp32" in rows["baseline"]["note"]
    assert "cpu_model" in data["meta"] and "cpu_native_bf16" in data["meta"] and "-r 3" in data["meta"]["cli_command"]
    assert cli.main(["bench", "--device", "cpu", "--variants", "cli", "--out", str(tmp_path)]) == cli.EXIT_USAGE


def test_ddcolor_baseline_is_the_original_pipeline(tmp_path):
    """The bench's DDColor baseline (the original ``ColorizationPipeline``'s steps; here without OpenCV: the
    same maths as this library's bit-exact torch ops) paints what the library paints with the original's
    nearest a/b upsampling. The two differ only in float rounding: the model input from 601 luma rather
    than from RGB (equal for grey pixels up to float32 rounding of 0.299v + 0.587v + 0.114v) and the
    library's folded model (another summation order); after rounding to 8 bits that moves a value by at
    most one level, and only where it lay within that rounding of a half level."""
    from colorizer_lib.bench import ddcolor_style_photo
    from colorizer_lib.models import build_generator, expected_state
    from colorizer_lib.models.families import DDColorFamily
    from tests.ddcolor_weights import deterministic_state_dict

    model = build_generator("ddcolor-tiny")
    model.load_state_dict(deterministic_state_dict(expected_state("ddcolor-tiny"), seed=1))
    model.eval()
    grey = Image.open(Path(__file__).resolve().parents[1] / "examples" / "dust-bowl-home.jpg").convert("L").resize((200, 150), Image.BILINEAR).convert("RGB")
    grey.save(tmp_path / "in.png")
    how = ddcolor_style_photo(model, torch.device("cpu"), tmp_path / "in.png", tmp_path / "baseline.png", 4)
    assert how == ("opencv" if importlib.util.find_spec("cv2") else "torch-cpu")
    col = Colorizer.from_model(copy.deepcopy(model), name="ddcolor-tiny-test", default_render_factor=4,
                               device="cpu", dtype="float32", family=DDColorFamily("nearest"))
    want = np.asarray(col.colorize(str(tmp_path / "in.png")).image).astype(int)
    got = np.asarray(Image.open(tmp_path / "baseline.png")).astype(int)
    assert got.shape == want.shape == (150, 200, 3)
    assert want.std() > 10  # coloured, so the comparison means something
    diff = np.abs(got - want)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
