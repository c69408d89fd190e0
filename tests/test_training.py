"""Training pipeline (fastai v2 NoGAN): data, degradations, losses, the three phases, resume, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastai", reason="training extras (fastai) not installed: pip install -r requirements-train.txt")

from colorizer_lib.color import denormalize_imagenet, rgb_to_luma  # noqa: E402
from colorizer_lib.errors import InputError  # noqa: E402
from colorizer_lib.training import data as tdata  # noqa: E402
from colorizer_lib.training.losses import FeatureLoss  # noqa: E402


def _photo(rng: np.random.Generator, w: int = 40, h: int = 32) -> Image.Image:
    """A synthetic colour 'photo': a coloured background and two coloured rectangles."""
    arr = np.empty((h, w, 3), np.uint8)
    arr[:] = rng.integers(0, 256, 3)
    for _ in range(2):
        x0, y0 = rng.integers(0, w // 2), rng.integers(0, h // 2)
        arr[y0:y0 + h // 2, x0:x0 + w // 2] = rng.integers(0, 256, 3)
    return Image.fromarray(arr)


@pytest.fixture(scope="module")
def photo_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for folder, n in (("a", 10), ("b", 6)):
        (root / folder).mkdir()
        for i in range(n):
            _photo(rng).save(root / folder / f"{i:02d}.png")
    return [root / "a", root / "b"]


# -- data ------------------------------------------------------------------------------------------


def test_split_is_deterministic_proportional_and_disjoint(photo_dirs):
    items = tdata.list_images(photo_dirs)
    train, valid = tdata.split_items(items, 8, seed=3)
    train2, valid2 = tdata.split_items(list(reversed(items)), 8, seed=3)
    assert (train, valid) == (train2, valid2)
    assert not set(train) & set(valid) and len(train) + len(valid) == 16
    assert sum(p.parent.name == "a" for p in valid) == 5 and sum(p.parent.name == "b" for p in valid) == 3
    assert tdata.split_items(items, 8, seed=4)[1] != valid


def test_split_and_listing_errors_name_the_fix(photo_dirs, tmp_path):
    items = tdata.list_images(photo_dirs)
    with pytest.raises(InputError, match="between 1 and 15"):
        tdata.split_items(items, 16)
    with pytest.raises(InputError, match="does not exist"):
        tdata.list_images(tmp_path / "nope")
    with pytest.raises(InputError, match="no images"):
        tdata.list_images(tmp_path)


def test_training_photos_are_the_files_the_library_reads_except_gif(tmp_path):
    from colorizer_lib.io import INPUT_EXTENSIONS
    from colorizer_lib.training.split import IMAGE_SUFFIXES

    assert set(IMAGE_SUFFIXES) == INPUT_EXTENSIONS - {".gif"}
    rng = np.random.default_rng(1)
    for name in ("a.JPG", "b.webp", "c.tiff", "d.gif", "e.txt"):
        _photo(rng).save(tmp_path / name, format="JPEG" if name.endswith(("JPG", "txt")) else None)
    assert [p.name for p in tdata.list_images(tmp_path)] == ["a.JPG", "b.webp", "c.tiff"]


def test_pack_images_stretches_to_squares_and_caches(photo_dirs, tmp_path):
    items = tdata.list_images(photo_dirs)[:3]
    packed = tdata.pack_images(items, 24, cache=tmp_path / "p.npy")
    assert packed.shape == (3, 3, 24, 24) and packed.dtype == torch.uint8
    again = tdata.pack_images(items, 24, cache=tmp_path / "p.npy")
    assert torch.equal(packed, again)
    assert tdata.pack_images(items[:2], 24, cache=tmp_path / "p.npy").shape[0] == 2  # new list -> rebuilt


def test_pair_maker_makes_grey_input_from_colour_target():
    images = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8)
    x, y = tdata.PairMaker(32, train=False).encodes((images,))
    assert x.shape == y.shape == (4, 3, 32, 32)
    grey = denormalize_imagenet(x)
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-5) and torch.allclose(grey[:, 1], grey[:, 2], atol=1e-5)
    assert torch.allclose(grey[:, :1], rgb_to_luma(denormalize_imagenet(y)), atol=1e-4)
    xt, yt = tdata.PairMaker(16, train=True, crap=tdata.CrappifyConfig()).encodes((images,))
    assert xt.shape == yt.shape == (4, 3, 16, 16)


def test_crappify_degrades_only_when_enabled():
    torch.manual_seed(0)
    grey = torch.rand(6, 1, 32, 32)
    assert torch.equal(tdata.crappify(grey, tdata.CrappifyConfig(enabled=False)), grey)
    everything = tdata.CrappifyConfig(p_noise=1, p_blur=1, p_jpeg=1, p_tone=1)
    out = tdata.crappify(grey, everything)
    assert out.shape == grey.shape and out.min() >= 0 and out.max() <= 1
    assert (out - grey).abs().mean() > 0.02


def test_jpeg_artifacts_blocky_at_low_quality_and_near_identity_at_high():
    torch.manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(1, 1, 8, 8), size=(32, 32), mode="bilinear")
    high = tdata.jpeg_artifacts(smooth, torch.tensor([100]))
    low = tdata.jpeg_artifacts(smooth, torch.tensor([5]))
    assert (high - smooth).abs().max() < 0.02
    assert (low - smooth).abs().mean() > (high - smooth).abs().mean() * 3


def test_random_resized_crop_flip_shapes():
    images = torch.rand(3, 3, 40, 40)
    out = tdata.random_resized_crop(images, 24)
    assert out.shape == (3, 3, 24, 24)
    full = tdata.random_resized_crop(images, 40, scale=(1.0, 1.0), flip=False)
    assert torch.allclose(full, images, atol=1e-5)


def test_feature_loss_zero_on_identity_positive_otherwise():
    loss = FeatureLoss()
    x = torch.randn(2, 3, 32, 32)
    assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    y = x + 0.3
    value = loss(x.requires_grad_(), y)
    assert float(value) > 0.3  # pixel term alone is 0.3
    value.backward()
    assert x.grad is not None and not any(p.requires_grad for p in loss.features.parameters())
    with pytest.raises(ValueError, match="unknown feature backbone"):
        FeatureLoss("resnet")


# -- the three phases, resume, export --------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(photo_dirs, tmp_path_factory):
    """One tiny NoGAN run through all phases (seconds): phase configs small enough for 2 CPU cores."""
    from colorizer_lib.training import phases as ph

    out = tmp_path_factory.mktemp("run")
    data = ph.prepare_data(ph.DataConfig([str(p) for p in photo_dirs], n_valid=4, pack_size=32,
                                         cache_dir=str(out / "cache"), workers=2))
    small = dict(sizes=(32,), bs=(4,), frozen_epochs=1, mixed_precision=False,
                 n_samples=2, device="cpu")
    gen = ph.pretrain_generator(ph.GeneratorConfig(str(out / "gen"), epochs=(1,), **small), data)
    crit = ph.pretrain_critic(ph.CriticConfig(str(out / "crit"), size=32, bs=4, epochs=1, nf=8, n_blocks=1,
                                              device="cpu", mixed_precision=False), data, gen.model)
    gan = ph.train_gan(ph.GanConfig(str(out / "gan"), size=32, bs=4, iterations=4, save_every=2, n_samples=2,
                                    device="cpu", mixed_precision=False), data, gen.model, crit.model)
    return {"out": out, "data": data, "gen": gen, "crit": crit, "gan": gan, "small": small, "ph": ph}


def test_generator_phase_writes_checkpoint_metrics_and_grids(tiny_run):
    out = tiny_run["out"] / "gen"
    state = json.loads((out / "state.json").read_text())
    assert state["done"] and state["stage"] == 1 and state["epoch"] == 1
    assert (out / "generator.pth").is_file() and (out / "models" / "gen_last.pth").is_file()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["tag"] for r in lines] == ["stage0_32px", "stage1_32px"]
    assert {"psnr", "ssim", "colorfulness", "delta_colorfulness", "ciede2000"} <= set(lines[-1])
    grid = Image.open(out / "samples" / "stage1_32px.png")
    assert grid.size == (2 * 32, 3 * 32)  # 2 samples x (grey, prediction, truth)


def test_critic_phase_saves_generated_images_and_accuracy(tiny_run):
    out = tiny_run["out"] / "crit"
    generated = np.load(out / "generated.npy")
    assert generated.shape == (len(tiny_run["data"].train), 3, 32, 32) and generated.dtype == np.uint8
    hist = tiny_run["crit"].history
    assert len(hist) == 1 and 0.0 <= hist[0]["accuracy"] <= 1.0


def test_gan_phase_checkpoints_every_n_iterations(tiny_run):
    out = tiny_run["out"] / "gan"
    tags = [r["tag"] for r in tiny_run["gan"].history]
    assert tags == ["gan_000002", "gan_000004"]
    assert all((out / "samples" / f"{t}.png").is_file() and (out / "models" / f"{t}.pth").is_file() for t in tags)
    assert json.loads((out / "state.json").read_text())["iterations"] == 4
    ph = tiny_run["ph"]
    g = ph.load_gan_generator(ph.GanConfig(str(out)), "gan_000002", ph.build_model("compact"))
    assert not g.training
    with pytest.raises(InputError, match="no GAN checkpoint"):
        ph.load_gan_generator(ph.GanConfig(str(out)), "gan_999999", g)


def test_resumed_generator_phase_continues_where_it_stopped(tiny_run):
    """A state file saying 'stage 1, epoch 1 of 2' (an interrupted run) -> exactly one more epoch, no restart."""
    ph, out = tiny_run["ph"], tiny_run["out"] / "gen"
    state = json.loads((out / "state.json").read_text())
    state.pop("done")
    (out / "state.json").write_text(json.dumps(state))
    res = ph.pretrain_generator(ph.GeneratorConfig(str(out), epochs=(2,), **tiny_run["small"]), tiny_run["data"])
    state = json.loads((out / "state.json").read_text())
    assert state["done"] and state["stage"] == 1 and state["epoch"] == 2
    tags = [r["tag"] for r in res.history]
    assert tags == ["stage0_32px", "stage1_32px", "stage1_32px"]  # two old records + one new epoch
    assert len(res.learn.recorder.losses) == 3  # 12 train photos / bs 4: exactly one epoch was trained


def test_export_loads_in_colorizer_and_colorizes(tiny_run, tmp_path):
    from colorizer_lib.colorizer import Colorizer
    from colorizer_lib.models.compact import ARCH_NAME, CompactUnet
    from colorizer_lib.training.export import export_generator, weight_record

    model = tiny_run["gan"].model
    assert isinstance(model, CompactUnet)
    path = export_generator(model, tmp_path / "tiny.safetensors", ARCH_NAME)
    record = weight_record(path, name="tiny", arch=ARCH_NAME, default_render_factor=8, description="test",
                           data_license="synthetic")
    assert record["size"] == path.stat().st_size and len(record["sha256"]) == 64
    col = Colorizer.from_pretrained(path, device="cpu")
    img = _photo(np.random.default_rng(1), 64, 48).convert("L").convert("RGB")
    result = col.colorize(img, render_factor=2)
    assert result.image.size == (64, 48)
    with pytest.raises(ValueError, match="safetensors"):
        export_generator(model, tmp_path / "x.pth", ARCH_NAME)
