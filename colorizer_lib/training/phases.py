"""The NoGAN recipe as three phase functions, each driven by one config dataclass.

1. :func:`pretrain_generator` (:class:`GeneratorConfig`): feature + pixel loss, ``fit_one_cycle``,
   encoder frozen first, then unfrozen with discriminative learning rates, over progressive sizes.
2. :func:`pretrain_critic` (:class:`CriticConfig`): the generator's outputs on the training photos are
   saved once (``generated.npy``), then a spectral-norm patch critic learns real vs generated.
3. :func:`train_gan` (:class:`GanConfig`): fastai's ``GANLearner`` with an ``AdaptiveGANSwitcher``,
   a checkpoint + sample grid + validation metrics every ``save_every`` iterations, so the user can
   pick the checkpoint "just before glitches start".

Every phase writes into its own ``out_dir`` (``models/`` checkpoints, ``state.json`` progress,
``metrics.jsonl``, ``samples/*.png``) and, with ``resume=True`` (the default), continues an
interrupted run from its last checkpoint instead of starting again. Data comes from
:func:`prepare_data` (:class:`DataConfig`). Runs on CPU, one GPU, or several GPUs when started under
``torchrun``/``accelerate launch`` with ``distributed=True`` (fastai's ``distrib_ctx``).
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from dataclasses import KW_ONLY, asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import fastai.callback.fp16  # noqa: F401  (patches to_bf16/to_fp16 onto Learner)
import fastai.callback.schedule  # noqa: F401  (patches fit_one_cycle onto Learner)
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from fastai.optimizer import Adam
from fastai.torch_core import rank_distrib, set_seed
from fastai.vision.gan import AdaptiveGANSwitcher, AdaptiveLoss, GANDiscriminativeLR, GANLearner, accuracy_thresh_expand
from fasttransform import ItemTransform
from torch import nn

from ..color import normalize_imagenet
from ..errors import InputError
from ..hub import load_checkpoint
from ..models import build_generator
from ..models.compact import ARCH_NAME as COMPACT_ARCH
from ..models.compact import CompactUnet
from ..models.critic import PatchCritic
from .callbacks import EpochCheckpoint, GanCheckpoints, ValidationMetrics, read_state, save_sample_grid, write_state
from .data import CrappifyConfig, list_images, make_dataloaders, pack_images, random_resized_crop, split_items
from .evaluate import generator_predict
from .losses import FeatureLoss

# --------------------------------------------------------------------------------------------------
# data


@dataclass
class DataConfig:
    """Where the photos are and how the validation split is drawn.

    ``folders``: one or more folders of colour photos (searched recursively). ``n_valid`` photos,
    drawn with ``seed`` from every folder in proportion, are held out and never trained on.
    ``pack_size``: side of the square each photo is stored at (>= the largest training size).
    """

    folders: Sequence[str]
    n_valid: int = 150
    seed: int = 42
    pack_size: int = 288
    cache_dir: str | None = None
    workers: int = 8


@dataclass
class PreparedData:
    """Packed photos: ``train``/``valid`` are ``uint8 (N, 3, pack, pack)``; the paths say which is which."""

    train_paths: list[Path]
    valid_paths: list[Path]
    train: torch.Tensor
    valid: torch.Tensor


def prepare_data(cfg: DataConfig) -> PreparedData:
    """List, split and pack the photos of ``cfg.folders`` (cached under ``cfg.cache_dir`` when given)."""
    items = list_images(list(cfg.folders))
    train_paths, valid_paths = split_items(items, cfg.n_valid, cfg.seed)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else None
    train = pack_images(train_paths, cfg.pack_size, cache / "train.npy" if cache else None, cfg.workers)
    valid = pack_images(valid_paths, cfg.pack_size, cache / "valid.npy" if cache else None, cfg.workers)
    return PreparedData(train_paths, valid_paths, train, valid)


# --------------------------------------------------------------------------------------------------
# shared helpers


def encoder_decoder_splitter(model: nn.Module) -> list[list[nn.Parameter]]:
    """Two parameter groups, encoder then the rest (for ``freeze`` and discriminative learning rates).

    Knows the compact U-Net (``model.encoder``) and the DeOldify U-Nets (``model.layers[0]``).
    """
    if hasattr(model, "encoder"):
        encoder = model.encoder
    elif hasattr(model, "layers"):
        encoder = model.layers[0]
    else:
        raise ValueError(f"cannot find the encoder of {type(model).__name__}: expected .encoder or .layers[0]")
    enc_ids = {id(p) for p in encoder.parameters()}
    return [list(encoder.parameters()), [p for p in model.parameters() if id(p) not in enc_ids]]


def build_model(arch: str, init_weights: str | None = None, decoder_channels: Sequence[int] | None = None) -> nn.Module:
    """A generator to train: ``"compact"`` (ImageNet encoder) or a registered architecture name.

    ``init_weights``: a weights file to start from (e.g. DeOldify's ColorizeArtistic_gen.pth to
    fine-tune it on your photos), loaded through :func:`colorizer_lib.hub.load_checkpoint`.
    """
    if arch in ("compact", COMPACT_ARCH):
        model = CompactUnet(tuple(decoder_channels) if decoder_channels else CompactUnet().decoder_channels,
                            pretrained_encoder=init_weights is None)
    else:
        model = build_generator(arch)
    if init_weights is not None:
        model.load_state_dict(load_checkpoint(init_weights), strict=True)
    return model


def _device(device: str | None) -> torch.device:
    return torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _mixed_precision(learn, enabled: bool, device: torch.device) -> None:
    if enabled and device.type == "cuda":
        learn.to_bf16() if torch.cuda.is_bf16_supported() else learn.to_fp16()


def _distrib(learn, distributed: bool):
    if not distributed:
        return contextlib.nullcontext()
    import fastai.distributed  # noqa: F401  (needs accelerate; patches distrib_ctx onto Learner)

    return learn.distrib_ctx()


def _is_main() -> bool:
    return rank_distrib() == 0


def _fixed_samples(images: torch.Tensor, n: int) -> torch.Tensor:
    idx = np.linspace(0, len(images) - 1, num=min(n, len(images))).round().astype(int)
    return images[torch.as_tensor(idx)]


@dataclass
class PhaseResult:
    """What a phase returns: the trained network, the fastai learner, the metrics history and outputs."""

    model: nn.Module
    learn: object
    history: list[dict]
    out_dir: Path


# --------------------------------------------------------------------------------------------------
# 1. generator pretraining


@dataclass
class PhaseConfig:
    """What every phase shares: where it writes (``out_dir``, positional) and how it runs (keywords).

    ``resume`` continues from the last checkpoint in ``out_dir``; ``distributed`` trains data-parallel
    through fastai's ``distrib_ctx`` (launch with ``accelerate launch`` or ``torchrun``).
    """

    out_dir: str
    _: KW_ONLY
    mixed_precision: bool = True
    distributed: bool = False
    resume: bool = True
    seed: int = 42
    device: str | None = None
    num_workers: int = 0


@dataclass
class _GeneratorTraining(PhaseConfig):
    """What the phases that train the generator share: its loss, degradations and sample grids."""

    _: KW_ONLY
    feature_backbone: str = "efficientnet-lite0"
    pixel_weight: float = 1.0
    crappify: CrappifyConfig = field(default_factory=CrappifyConfig)
    n_samples: int = 8


@dataclass
class GeneratorConfig(_GeneratorTraining):
    """Phase 1: generator pretraining with feature loss.

    Stages: ``frozen_epochs`` at ``sizes[0]`` with the encoder frozen (lr ``lr``), then for each size
    ``epochs[i]`` unfrozen epochs with discriminative learning rates ``slice(*unfrozen_lr)``;
    ``bs[i]`` is the batch size per GPU at ``sizes[i]``.
    """

    arch: str = "compact"
    init_weights: str | None = None
    decoder_channels: tuple[int, ...] | None = None
    sizes: tuple[int, ...] = (64, 128, 192)
    epochs: tuple[int, ...] = (4, 4, 4)
    bs: tuple[int, ...] = (64, 32, 16)
    frozen_epochs: int = 2
    lr: float = 1e-3
    unfrozen_lr: tuple[float, float] = (3e-5, 3e-4)
    pct_start: float = 0.3
    wd: float = 1e-3
    metrics_every: int = 1

    def stages(self) -> list[dict]:
        if not (len(self.sizes) == len(self.epochs) == len(self.bs)):
            raise InputError(f"sizes {self.sizes}, epochs {self.epochs} and bs {self.bs} need the same length")
        out = [{"size": self.sizes[0], "epochs": self.frozen_epochs, "bs": self.bs[0], "frozen": True}] if self.frozen_epochs else []
        out += [{"size": s, "epochs": e, "bs": b, "frozen": False} for s, e, b in zip(self.sizes, self.epochs, self.bs)]
        return [st for st in out if st["epochs"] > 0]


def pretrain_generator(cfg: GeneratorConfig, data: PreparedData) -> PhaseResult:
    """Phase 1 (see :class:`GeneratorConfig`). Returns the generator, in eval mode, and its metrics history.

    Writes ``out_dir/models/gen_last.pth`` (model + optimizer, every epoch), ``out_dir/generator.pth``
    (weights only, at the end), ``state.json``, ``metrics.jsonl`` and ``samples/stage<i>.png``.
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = _device(cfg.device)
    set_seed(cfg.seed, reproducible=False)
    stages = cfg.stages()
    state_path = out / "state.json"
    state = read_state(state_path) if cfg.resume else {}
    if not cfg.resume:
        for stale in (state_path, out / "metrics.jsonl"):
            stale.unlink(missing_ok=True)
    model = build_model(cfg.arch, cfg.init_weights, cfg.decoder_channels)
    loss = FeatureLoss(cfg.feature_backbone, pixel_weight=cfg.pixel_weight).to(device)
    first = stages[0]
    dls = make_dataloaders(data.train, data.valid, first["size"], first["bs"], crap=cfg.crappify, device=device,
                           num_workers=cfg.num_workers)
    learn = Learner(dls, model, loss_func=loss, opt_func=Adam, splitter=encoder_decoder_splitter, wd=cfg.wd,
                    path=out, model_dir="models")
    _mixed_precision(learn, cfg.mixed_precision, device)
    samples = _fixed_samples(data.valid, cfg.n_samples)
    history: list[dict] = [json_line for json_line in _read_jsonl(out / "metrics.jsonl")] if state else []
    if state.get("done"):
        learn.load("gen_last", with_opt=False)
        stages = []
    start_stage, start_epoch = (state.get("stage", 0), state.get("epoch", 0)) if state else (0, 0)
    if state and not state.get("done"):
        learn.load(state["checkpoint"], with_opt=True)
    for i, st in enumerate(stages):
        if i < start_stage or (i == start_stage and start_epoch >= st["epochs"]):
            continue
        learn.dls = make_dataloaders(data.train, data.valid, st["size"], st["bs"], crap=cfg.crappify, device=device,
                                     num_workers=cfg.num_workers)
        learn.freeze() if st["frozen"] else learn.unfreeze()
        lr = cfg.lr if st["frozen"] else slice(*cfg.unfrozen_lr)
        skip = start_epoch if i == start_stage else 0
        metrics_cb = ValidationMetrics(data.valid, st["size"], out / "metrics.jsonl", f"stage{i}_{st['size']}px",
                                       every=cfg.metrics_every, start_epoch=skip)
        cbs = [EpochCheckpoint(state_path, i, "gen_last", start_epoch=skip)] + ([metrics_cb] if _is_main() else [])
        with _distrib(learn, cfg.distributed):
            learn.fit_one_cycle(st["epochs"], lr, pct_start=cfg.pct_start, cbs=cbs, start_epoch=skip)
        history += metrics_cb.history
        if _is_main():
            save_sample_grid(learn.model, samples, st["size"], out / "samples" / f"stage{i}_{st['size']}px.png")
    learn.unfreeze()
    if _is_main():
        torch.save(learn.model.state_dict(), out / "generator.pth")
        write_state(state_path, {**read_state(state_path), "done": True, "config": _jsonable(asdict(cfg))})
    learn.model.eval()
    return PhaseResult(learn.model, learn, history, out)


def _read_jsonl(path: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj if isinstance(obj, (int, float, str, bool, type(None))) else str(obj)


# --------------------------------------------------------------------------------------------------
# 2. critic pretraining


@dataclass
class CriticConfig(PhaseConfig):
    """Phase 2: critic pretraining on real vs generated photos at ``size`` px.

    ``valid_pct`` of the (real + generated) pairs is held out to report the critic's accuracy.
    """

    size: int = 128
    bs: int = 32
    epochs: int = 4
    lr: float = 1e-3
    nf: int = 64
    n_blocks: int = 3
    dropout: float = 0.15
    valid_pct: float = 0.1


class CriticBatch(ItemTransform):
    """``(uint8 images (B,3,P,P), labels (B,))`` -> ``(normalised crops (B,3,size,size), labels float)``."""

    def __init__(self, size: int, train: bool):
        super().__init__()
        self.size, self.train = size, train

    def encodes(self, batch):
        images, labels = batch
        rgb = images.float() / 255.0
        rgb = random_resized_crop(rgb, self.size, scale=(0.6, 1.0)) if self.train else torch.nn.functional.interpolate(
            rgb, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return normalize_imagenet(rgb.clamp(0, 1)), labels.float()


class _LabelledImages(torch.utils.data.Dataset):
    n_inp = 1

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


@torch.no_grad()
def generate_images(generator: nn.Module, images: torch.Tensor, size: int, bs: int = 64,
                    device: torch.device | None = None) -> torch.Tensor:
    """The generator's colorization of each packed photo at ``size``: ``uint8 (N, 3, size, size)``."""
    device = device or next(generator.parameters()).device
    generator.eval()
    out = []
    for i in range(0, len(images), bs):
        rgb = images[i:i + bs].to(device).float() / 255.0
        rgb = torch.nn.functional.interpolate(rgb, size=(size, size), mode="bilinear", antialias=True,
                                              align_corners=False).clamp(0, 1)
        out.append((generator_predict(generator, rgb, size) * 255).round().byte().cpu())
    return torch.cat(out)


def pretrain_critic(cfg: CriticConfig, data: PreparedData, generator: nn.Module) -> PhaseResult:
    """Phase 2 (see :class:`CriticConfig`). Returns the critic and its accuracy history.

    Writes ``generated.npy`` (reused on resume), ``models/critic_last.pth``, ``critic.pth``, ``state.json``.
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = _device(cfg.device)
    set_seed(cfg.seed, reproducible=False)
    state_path = out / "state.json"
    state = read_state(state_path) if cfg.resume else {}
    gen_path = out / "generated.npy"
    if cfg.resume and gen_path.is_file() and state.get("generated_size") == cfg.size:
        fake = torch.from_numpy(np.load(gen_path))
    else:
        fake = generate_images(generator.to(device), data.train, cfg.size, device=device)
        if _is_main():
            np.save(gen_path, fake.numpy())
            write_state(state_path, {"generated_size": cfg.size})
        state = {}
    real = torch.nn.functional.interpolate(data.train.float(), size=(cfg.size, cfg.size), mode="bilinear",
                                           antialias=True, align_corners=False).round().clamp(0, 255).byte()
    images = torch.cat([real, fake])
    labels = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))])
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(cfg.seed))
    n_valid = max(1, int(len(images) * cfg.valid_pct))
    valid_idx, train_idx = order[:n_valid], order[n_valid:]
    if cfg.bs > len(train_idx):
        raise InputError(f"critic batch size {cfg.bs} is larger than its training set ({len(train_idx)}); lower bs")
    dls = DataLoaders(
        DataLoader(_LabelledImages(images[train_idx], labels[train_idx]), bs=cfg.bs, shuffle=True, drop_last=True,
                   device=device, num_workers=cfg.num_workers, after_batch=CriticBatch(cfg.size, True)),
        DataLoader(_LabelledImages(images[valid_idx], labels[valid_idx]), bs=cfg.bs, shuffle=False,
                   device=device, num_workers=cfg.num_workers, after_batch=CriticBatch(cfg.size, False)),
        device=device)
    critic = PatchCritic(nf=cfg.nf, n_blocks=cfg.n_blocks, p=cfg.dropout)
    learn = Learner(dls, critic, loss_func=AdaptiveLoss(nn.BCEWithLogitsLoss()), metrics=accuracy_thresh_expand,
                    opt_func=Adam, wd=1e-3, path=out, model_dir="models")
    _mixed_precision(learn, cfg.mixed_precision, device)
    start = 0
    if state.get("done"):
        learn.load("critic_last", with_opt=False)
        start = cfg.epochs
    elif state.get("checkpoint"):
        learn.load(state["checkpoint"], with_opt=True)
        start = state.get("epoch", 0)
    if start < cfg.epochs:
        with _distrib(learn, cfg.distributed):
            learn.fit_one_cycle(cfg.epochs, cfg.lr, cbs=[EpochCheckpoint(state_path, 0, "critic_last",
                                                                         {"generated_size": cfg.size}, start)],
                                start_epoch=start)
    history = [{"epoch": i, "train_loss": float(v[0]), "valid_loss": float(v[1]), "accuracy": float(v[2])}
               for i, v in enumerate(learn.recorder.values)]
    if _is_main():
        torch.save(learn.model.state_dict(), out / "critic.pth")
        write_state(state_path, {**read_state(state_path), "done": True, "config": _jsonable(asdict(cfg))})
    return PhaseResult(learn.model, learn, history, out)


# --------------------------------------------------------------------------------------------------
# 3. GAN


@dataclass
class GanConfig(_GeneratorTraining):
    """Phase 3: a short GAN phase with adaptive switching (DeOldify: critic threshold 0.65, generator loss
    ``weights_gen[0] * critic + weights_gen[1] * feature loss``, Adam with betas (0, 0.9), the critic's
    learning rate ``critic_lr_mult`` times the generator's)."""

    size: int = 192
    bs: int = 16
    lr: float = 2e-5
    iterations: int = 200
    save_every: int = 50
    critic_thresh: float = 0.65
    weights_gen: tuple[float, float] = (1.0, 1.5)
    critic_lr_mult: float = 5.0


def train_gan(cfg: GanConfig, data: PreparedData, generator: nn.Module, critic: nn.Module) -> PhaseResult:
    """Phase 3 (see :class:`GanConfig`). Returns the generator and the list of saved checkpoints with metrics.

    Every ``save_every`` iterations: ``models/gan_<iteration>.pth`` (both nets + optimizer),
    ``samples/gan_<iteration>.png`` and a line in ``metrics.jsonl``. The caller picks a checkpoint
    (:func:`load_gan_generator`); the returned model is the last one.
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = _device(cfg.device)
    set_seed(cfg.seed, reproducible=False)
    state_path = out / "state.json"
    state = read_state(state_path) if cfg.resume else {}
    dls = make_dataloaders(data.train, data.valid, cfg.size, cfg.bs, crap=cfg.crappify, device=device,
                           num_workers=cfg.num_workers)
    feature_loss = FeatureLoss(cfg.feature_backbone, pixel_weight=cfg.pixel_weight).to(device)
    gen_learn = Learner(dls, generator.to(device), loss_func=feature_loss)
    crit_learn = Learner(dls, critic.to(device), loss_func=AdaptiveLoss(nn.BCEWithLogitsLoss()))
    done = state.get("iterations", 0)
    ckpt = GanCheckpoints(out, cfg.save_every, cfg.iterations, done, _fixed_samples(data.valid, cfg.n_samples),
                          data.valid, cfg.size, state_path, out / "metrics.jsonl")
    cbs = [GANDiscriminativeLR(mult_lr=cfg.critic_lr_mult)] + ([ckpt] if _is_main() else [])
    learn = GANLearner.from_learners(gen_learn, crit_learn, switcher=AdaptiveGANSwitcher(critic_thresh=cfg.critic_thresh),
                                     weights_gen=cfg.weights_gen, show_img=False, cbs=cbs,
                                     opt_func=functools.partial(Adam, mom=0.0, sqr_mom=0.9), wd=1e-3,
                                     path=out, model_dir="models")
    learn.model.to(device)
    if cfg.mixed_precision and device.type == "cuda" and torch.cuda.is_bf16_supported():
        learn.to_bf16()
    history = _read_jsonl(out / "metrics.jsonl") if state else []
    if state.get("checkpoint"):
        learn.load(state["checkpoint"], with_opt=True)
    if done < cfg.iterations:
        n_epochs = -(-(cfg.iterations - done) // max(1, len(dls.train))) + 1
        # The fit stops after cfg.iterations, inside an epoch: fastai's per-epoch table would stay an empty
        # header (no logging; the checkpoints' metrics are the record), and its GAN callbacks set attributes
        # that fastai warns "shadow" the learner's: expected, so not shown.
        with _distrib(learn, cfg.distributed), learn.no_logging(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="You are shadowing an attribute", category=UserWarning)
            learn.fit(n_epochs, cfg.lr)
        history += ckpt.saved
    gen = learn.model.generator.eval()
    return PhaseResult(gen, learn, history, out)


def load_gan_generator(cfg: GanConfig, tag: str, generator: nn.Module) -> nn.Module:
    """Load the generator of GAN checkpoint ``tag`` (e.g. ``"gan_000150"``) into ``generator`` (in place)."""
    path = Path(cfg.out_dir) / "models" / f"{tag}_generator.pth"
    if not path.is_file():
        raise InputError(f"no GAN checkpoint {path}; pick a tag listed in {Path(cfg.out_dir) / 'metrics.jsonl'}")
    generator.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return generator.eval()
