"""Training data: colour photos -> (grey input, colour target) pairs, built on the GPU.

Pipeline:

1. :func:`list_images` finds the photos of one or more folders; :func:`split_items` holds out a
   seeded validation split drawn from every folder in proportion.
2. :func:`pack_images` decodes each photo once, stretches it to a ``pack x pack`` square (the
   colorizer stretches to a square at inference too) and stores everything as one ``uint8`` array
   ``(N, 3, pack, pack)`` (cached as ``.npy``, memory-mapped), so epochs never decode JPEG again.
3. :func:`make_dataloaders` wraps the arrays in fastai ``DataLoader``s whose ``after_batch``
   (:class:`PairMaker`) runs on the batch's device: random resized crop + flip, the grey input made
   as at inference (ITU-R 601 luma replicated to 3 channels), optional "crappify" degradations of the
   input only (:class:`CrappifyConfig`), and ImageNet normalisation of both. Validation batches are
   the whole (uncropped) picture, never degraded, so validation numbers are comparable across runs.

Only this package imports fastai.
"""

from __future__ import annotations

import hashlib
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fasttransform import ItemTransform
from PIL import Image, ImageOps

from ..color import grey_to_rgb, normalize_imagenet, rgb_to_luma
from ..errors import InputError
from .split import IMAGE_SUFFIXES, list_images, split_items  # noqa: F401  (re-exported)

def _load_square(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        im.draft("RGB", (size, size))
        im = im.resize((size, size), Image.BICUBIC, reducing_gap=3.0)
        return np.asarray(im).transpose(2, 0, 1).copy()


def pack_images(paths: list[Path], size: int, cache: str | Path | None = None, workers: int = 8) -> torch.Tensor:
    """Decode ``paths`` into one ``uint8`` tensor ``(N, 3, size, size)`` (each photo stretched to a square).

    With ``cache`` (a ``.npy`` path) the array is written once and memory-mapped afterwards; the cache
    is keyed by the file list and size (a different list rewrites it).
    """
    key = hashlib.sha256(("\n".join(map(str, paths)) + f"|{size}").encode()).hexdigest()[:16]
    if cache is not None:
        cache = Path(cache)
        stamp = cache.with_suffix(".key")
        if cache.is_file() and stamp.is_file() and stamp.read_text() == key:
            return torch.from_numpy(np.load(cache, mmap_mode="r").copy())
    with ThreadPoolExecutor(max_workers=workers) as pool:
        arrays = list(pool.map(lambda p: _load_square(p, size), paths))
    packed = np.stack(arrays)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, packed)
        cache.with_suffix(".key").write_text(key)
    return torch.from_numpy(packed)


@dataclass
class CrappifyConfig:
    """Degradations applied to the grey input only (each with its own probability per image).

    Old photos are noisy, soft, JPEG-damaged, faded, and their tones are shifted (sepia prints turn
    into odd tone curves once reduced to luma). ``enabled=False`` switches all of them off.
    """

    enabled: bool = True
    p_noise: float = 0.3
    noise_max: float = 0.06        # std of gaussian noise, in [0, 1] units
    p_blur: float = 0.3
    blur_max: float = 1.5          # gaussian sigma in pixels
    p_jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (15, 70)
    p_tone: float = 0.5
    contrast: tuple[float, float] = (0.7, 1.2)
    gamma: tuple[float, float] = (0.7, 1.4)
    fade_max: float = 0.15         # lift of the blacks / drop of the whites


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image gaussian blur of ``(B, 1, H, W)`` with sigmas ``(B,)`` (a 9-tap separable kernel)."""
    taps = torch.arange(-4, 5, device=x.device, dtype=x.dtype)
    k = torch.exp(-(taps[None, :] ** 2) / (2 * sigma[:, None].clamp_min(1e-3) ** 2))
    k = k / k.sum(dim=1, keepdim=True)
    b = x.shape[0]
    out = F.conv2d(F.pad(x.transpose(0, 1), (4, 4, 0, 0), mode="reflect"), k[:, None, None, :], groups=b)
    out = F.conv2d(F.pad(out, (0, 0, 4, 4), mode="reflect"), k[:, None, :, None], groups=b)
    return out.transpose(0, 1)


_JPEG_LUMA_TABLE = torch.tensor([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=torch.float32).view(8, 8)


def _dct_matrix(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    n = torch.arange(8, dtype=torch.float64)
    m = torch.cos((2 * n[None, :] + 1) * n[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    m[0] /= math.sqrt(2)
    return m.to(device=device, dtype=dtype)


def jpeg_artifacts(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """JPEG-like blocking/ringing on grey ``(B, 1, H, W)`` in [0, 1]: 8x8 DCT quantised with the standard
    luminance table scaled for ``quality`` (per image, 1..100), then inverted. (Entropy coding is lossless,
    so this is the lossy part of a real JPEG encoder.)"""
    b, _, h, w = x.shape
    ph, pw = (-h) % 8, (-w) % 8
    y = F.pad(x, (0, pw, 0, ph), mode="replicate") * 255 - 128
    hh, ww = y.shape[-2:]
    blocks = y.view(b, hh // 8, 8, ww // 8, 8).permute(0, 1, 3, 2, 4)
    d = _dct_matrix(x.device, x.dtype)
    coef = d @ blocks @ d.T
    q = quality.to(x.dtype).clamp(1, 100)
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q) / 100
    table = (_JPEG_LUMA_TABLE.to(x.device, x.dtype)[None] * scale[:, None, None]).clamp_min(1)
    coef = torch.round(coef / table[:, None, None]) * table[:, None, None]
    out = (d.T @ coef @ d).permute(0, 1, 3, 2, 4).reshape(b, 1, hh, ww)
    return ((out + 128) / 255)[..., :h, :w].clamp(0, 1)


def crappify(grey: torch.Tensor, cfg: CrappifyConfig) -> torch.Tensor:
    """Degrade a batch of grey images ``(B, 1, H, W)`` in [0, 1] as configured (see :class:`CrappifyConfig`)."""
    if not cfg.enabled:
        return grey
    b, dev = grey.shape[0], grey.device

    def pick(p: float) -> torch.Tensor:
        return (torch.rand(b, device=dev) < p).view(b, 1, 1, 1)

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.empty(b, device=dev).uniform_(lo, hi)

    x = grey
    tone = pick(cfg.p_tone)
    mean = x.mean(dim=(2, 3), keepdim=True)
    toned = ((x - mean) * uniform(*cfg.contrast).view(b, 1, 1, 1) + mean).clamp(0, 1)
    toned = toned.clamp_min(1e-4) ** uniform(*cfg.gamma).view(b, 1, 1, 1)
    lift, drop = uniform(0, cfg.fade_max).view(b, 1, 1, 1), uniform(0, cfg.fade_max).view(b, 1, 1, 1)
    toned = lift + toned * (1 - lift - drop)
    x = torch.where(tone, toned, x)
    x = torch.where(pick(cfg.p_blur), _gaussian_blur(x, uniform(0.3, cfg.blur_max)), x)
    x = torch.where(pick(cfg.p_noise), x + torch.randn_like(x) * uniform(0, cfg.noise_max).view(b, 1, 1, 1), x)
    x = x.clamp(0, 1)
    q = torch.randint(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1, (b,), device=dev)
    return torch.where(pick(cfg.p_jpeg), jpeg_artifacts(x, q), x)


def random_resized_crop(images: torch.Tensor, size: int, scale: tuple[float, float] = (0.5, 1.0),
                        flip: bool = True) -> torch.Tensor:
    """Per-image random crop (area fraction in ``scale``, aspect kept) + horizontal flip, resized to ``size``.

    ``images``: ``(B, 3, P, P)`` float; returns ``(B, 3, size, size)`` (one ``grid_sample`` call).
    """
    b, dev = images.shape[0], images.device
    side = torch.empty(b, device=dev).uniform_(*scale).sqrt()
    cx = (torch.rand(b, device=dev) * 2 - 1) * (1 - side)
    cy = (torch.rand(b, device=dev) * 2 - 1) * (1 - side)
    sign = torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0) if flip else torch.ones(b, device=dev)
    theta = torch.zeros(b, 2, 3, device=dev, dtype=images.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = side * sign, cx
    theta[:, 1, 1], theta[:, 1, 2] = side, cy
    grid = F.affine_grid(theta, (b, 3, size, size), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class PairMaker(ItemTransform):
    """fastai ``after_batch``: ``(uint8 (B,3,P,P),)`` on any device -> ``(grey input, colour target)``,
    both normalised ``(B, 3, size, size)``.

    Training: random crop + flip, crappified input. Validation (``train=False``): the whole picture
    resized to ``size``, clean input.
    """

    def __init__(self, size: int, train: bool, crap: CrappifyConfig | None = None):
        super().__init__()
        self.size, self.train, self.crap = size, train, crap or CrappifyConfig(enabled=False)

    def encodes(self, batch):
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        rgb = images.float() / 255.0
        if self.train:
            rgb = random_resized_crop(rgb, self.size)
        elif rgb.shape[-1] != self.size:
            rgb = F.interpolate(rgb, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        rgb = rgb.clamp(0, 1)
        grey = rgb_to_luma(rgb)
        if self.train:
            grey = crappify(grey, self.crap)
        return normalize_imagenet(grey_to_rgb(grey).contiguous()), normalize_imagenet(rgb)


class PackedImages(torch.utils.data.Dataset):
    """Dataset over a packed ``uint8`` array: item ``i`` is the tuple ``(images[i],)``."""

    n_inp = 1

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return (self.images[i],)


def make_dataloaders(train: torch.Tensor, valid: torch.Tensor, size: int, bs: int, *,
                     crap: CrappifyConfig | None = None, device: torch.device | str | None = None,
                     num_workers: int = 0, valid_bs: int | None = None) -> DataLoaders:
    """fastai ``DataLoaders`` of (grey input, colour target) pairs at ``size`` from packed arrays.

    The training loader shuffles and drops the last partial batch; augmentation runs on ``device``.
    """
    if bs > len(train):
        raise InputError(f"batch size {bs} is larger than the training set ({len(train)} photos); lower bs")
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dl_train = DataLoader(PackedImages(train), bs=bs, shuffle=True, drop_last=True, num_workers=num_workers,
                          device=dev, after_batch=PairMaker(size, True, crap))
    dl_valid = DataLoader(PackedImages(valid), bs=valid_bs or bs, shuffle=False, drop_last=False,
                          num_workers=num_workers, device=dev, after_batch=PairMaker(size, False))
    return DataLoaders(dl_train, dl_valid, device=dev)


def extract_zip(zip_path: str | Path, dest: str | Path) -> Path:
    """Unpack an uploaded zip of photos into ``dest`` (refusing paths that escape it); returns ``dest``.

    Raises :class:`InputError` for a missing or invalid zip, or one that holds no image.
    """
    import zipfile

    zip_path, dest = Path(zip_path), Path(dest)
    if not zipfile.is_zipfile(zip_path):
        raise InputError(f"{zip_path} is not a zip file; upload a .zip of your colour photos")
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with zipfile.ZipFile(zip_path) as zf:
        for member in zf.infolist():
            target = (dest / member.filename).resolve()
            if root not in target.parents and target != root:
                raise InputError(f"{zip_path} contains an unsafe path {member.filename!r}; re-create the zip")
        zf.extractall(dest)
    list_images(dest)  # raises when the zip held no photos
    return dest
