"""The ONNX Runtime cache (``<cache>/onnx``, used automatically for 4+ images on a CPU) under faults (issue 19,
issue 14): two processes exporting the same model at once, a truncated or foreign cached file, a cache that
cannot be written. The model is DeOldify's deep U-Net in a tiny size (seeded), so exports take seconds."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install colorizer[onnx])")

from colorizer_lib import cli, hub  # noqa: E402
from colorizer_lib.export import ONNX_TOLERANCE  # noqa: E402
from colorizer_lib.models import build_generator  # noqa: E402
from colorizer_lib.models.fold import fold_for_inference  # noqa: E402
from colorizer_lib.export import OnnxCpuModel  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
RF = 4


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return fold_for_inference(build_generator("deoldify-deep-tiny").eval())


def grey_batch(batch: int = 1, seed: int = 3) -> torch.Tensor:
    from colorizer_lib.color import grey_to_rgb, normalize_imagenet

    luma = torch.rand(batch, 1, 16 * RF, 16 * RF, generator=torch.Generator().manual_seed(seed))
    return normalize_imagenet(grey_to_rgb(luma)).contiguous()


def run(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x)


@pytest.fixture(scope="module")
def reference():
    model = tiny_model()
    x = grey_batch()
    return model, x, run(model, x)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith((".lock", ".part", ".softlock")))


@pytest.mark.parametrize("damage", ["truncated", "foreign bytes", "no checksum record"])
def test_a_broken_cached_export_is_rebuilt_not_a_traceback(damage, reference, tmp_path, capsys):
    model, x, expected = reference
    first = OnnxCpuModel(model, cache_dir=tmp_path, name="tiny")
    run(first, x)
    path = first.path_for(RF)
    data = path.read_bytes()
    if damage == "truncated":  # a full disk or a killed process at the time of an older version
        path.write_bytes(data[: len(data) // 2])
    elif damage == "foreign bytes":
        path.write_bytes(np.random.default_rng(5).bytes(len(data)))
    else:
        hub.hash_record_path(path).unlink()
    capsys.readouterr()

    again = OnnxCpuModel(model, cache_dir=tmp_path, name="tiny")  # what the next process does
    torch.testing.assert_close(run(again, x), expected, rtol=0, atol=ONNX_TOLERANCE)
    assert again.exported == [path] and again.fallback_reason is None
    assert path.read_bytes() == data  # the same export as before
    err = capsys.readouterr().err
    assert f"the cached ONNX model {path} is unusable" in err and "exporting it again" in err
    assert leftovers(tmp_path) == []


def test_a_cache_that_cannot_be_written_runs_torch_with_one_warning(reference, tmp_path, capsys):
    model, x, expected = reference
    (tmp_path / "onnx").write_text("a file where the ONNX folder should be")  # mkdir fails, as read-only would
    fast = OnnxCpuModel(model, cache_dir=tmp_path, name="tiny")
    torch.testing.assert_close(run(fast, x), expected, rtol=0, atol=0)  # torch itself
    run(fast, x)
    run(fast, torch.zeros(1, 3, 16 * (RF + 1), 16 * (RF + 1)))  # another render factor: still one warning
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "running the model with torch instead" in err
    assert str(tmp_path / "onnx") in err and fast.fallback_reason and fast.exported == []


def test_colorize_image_finishes_every_photo_when_the_onnx_cache_cannot_be_written(tmp_path, capsys):
    """`colorize image` with 4 photos on a CPU takes ONNX Runtime automatically; a cache it cannot write used to
    abort the job with 0 images done."""
    weights = tmp_path / "tiny.pth"
    torch.manual_seed(0)
    torch.save(build_generator("deoldify-deep-tiny").state_dict(), weights)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        grey = (np.add.outer(np.arange(40), np.arange(56)) * (i + 1) % 256).astype(np.uint8)
        Image.fromarray(grey, "L").save(photos / f"p{i}.png")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "onnx").write_text("blocked")
    out = tmp_path / "out"
    code = cli.main(["image", str(photos), "-o", str(out), "--model", str(weights), "--cache-dir", str(cache),
                     "--device", "cpu", "-r", str(RF)])
    assert code == cli.EXIT_OK
    assert sorted(p.name for p in (out / "photos").iterdir()) == [f"p{i}.png" for i in range(4)]
    err = capsys.readouterr().err
    assert "using ONNX Runtime" in err  # the automatic choice was made...
    assert err.count("running the model with torch instead") == 1 and "Traceback" not in err  # ...and fell back


def test_nan_weights_on_the_automatic_onnx_path_are_named_not_blamed_on_the_export(tmp_path, capsys):
    """Broken weights met while exporting (torch's own reference output is NaN): no export is cached, and the
    message names the weights as on the torch path, instead of asking to export the model again."""
    state = build_generator("deoldify-deep-tiny").state_dict()
    last = [k for k, v in state.items() if v.is_floating_point()][-1]
    state[last] = torch.full_like(state[last], float("nan"))
    weights = tmp_path / "nan.pth"
    torch.save(state, weights)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        Image.fromarray(np.full((40, 56), 40 * i, np.uint8), "L").save(photos / f"p{i}.png")
    cache, out = tmp_path / "cache", tmp_path / "out"
    code = cli.main(["image", str(photos), "-o", str(out), "--model", str(weights), "--cache-dir", str(cache),
                     "--device", "cpu", "-r", str(RF)])
    err = capsys.readouterr().err
    assert code == cli.EXIT_WEIGHTS, err
    assert "using ONNX Runtime" in err  # the automatic path was taken
    assert f"the model 'nan' ({weights}) produced NaN or infinite values" in err and "export the model" not in err
    assert not list((cache / "onnx").glob("*.onnx")) and leftovers(cache) == []
    assert not out.exists() or not any(out.rglob("*.png"))


RACE_WORKER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import torch
    sys.path.insert(0, sys.argv[3])
    import tests.architectures  # noqa: F401  (registers deoldify-deep-tiny)
    from tests.test_onnx_cache import grey_batch, run, tiny_model
    from colorizer_lib.export import OnnxCpuModel

    cache, go = Path(sys.argv[1]), Path(sys.argv[2])
    model, x = tiny_model(), grey_batch()
    fast = OnnxCpuModel(model, cache_dir=cache, name="tiny")
    while not go.exists():  # both processes start exporting at the same moment
        time.sleep(0.005)
    out = run(fast, x)
    print(json.dumps({"exported": [str(p) for p in fast.exported], "sum": float(out.double().sum()),
                      "fallback": fast.fallback_reason}))
""")


def test_two_processes_exporting_the_same_model_share_one_export(reference, tmp_path):
    _, _, expected = reference
    cache, go = tmp_path / "cache", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", RACE_WORKER, str(cache), str(go), str(REPO_ROOT)],
                              cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    import time

    time.sleep(1.0)  # let both import torch and build the model
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(len(r["exported"]) for r in results) == [0, 1]  # one exported, the other waited and reused it
    assert all(r["fallback"] is None for r in results)
    for r in results:
        assert abs(r["sum"] - float(expected.double().sum())) <= ONNX_TOLERANCE * expected.numel()
    files = sorted(p.name for p in (cache / "onnx").iterdir())
    assert len(files) == 2 and files[0].endswith(".onnx") and files[1].endswith(".onnx.sha256")
    assert leftovers(cache) == []
