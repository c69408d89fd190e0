"""Which photos train and which validate: fastai-free, so quality benchmarks run without it."""

from __future__ import annotations

import random
from pathlib import Path

from ..errors import InputError
from ..io.files import INPUT_EXTENSIONS

#: Photos a training set is made of: what the library reads (``io.INPUT_EXTENSIONS``) except GIF,
#: whose 256-colour palettes are poor colour targets.
IMAGE_SUFFIXES = tuple(sorted(INPUT_EXTENSIONS - {".gif"}))


def list_images(folders: str | Path | list[str | Path]) -> list[Path]:
    """Sorted image files (by suffix, recursively) under one folder or several.

    Raises :class:`InputError` when a folder is missing or holds no image.
    """
    folders = [folders] if isinstance(folders, (str, Path)) else list(folders)
    found: list[Path] = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise InputError(f"training folder {folder} does not exist; point the config at a folder of colour photos")
        found += sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not found:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {', '.join(map(str, folders))}")
    return found


def split_items(items: list[Path], n_valid: int, seed: int = 42) -> tuple[list[Path], list[Path]]:
    """Deterministic (train, valid) split; ``n_valid`` photos drawn from every parent folder in proportion.

    The same ``items`` and ``seed`` always give the same split, whatever the order of ``items``.
    Raises :class:`InputError` unless ``0 < n_valid < len(items)``.
    """
    if not 0 < n_valid < len(items):
        raise InputError(f"validation size {n_valid} must be between 1 and {len(items) - 1} (there are {len(items)} photos)")
    groups: dict[Path, list[Path]] = {}
    for p in sorted(items):
        groups.setdefault(p.parent, []).append(p)
    rng = random.Random(seed)
    valid: list[Path] = []
    # Largest-remainder apportionment so the quotas add up to n_valid exactly.
    quotas = {k: n_valid * len(v) / len(items) for k, v in groups.items()}
    counts = {k: int(q) for k, q in quotas.items()}
    for k in sorted(groups, key=lambda k: counts[k] - quotas[k])[: n_valid - sum(counts.values())]:
        counts[k] += 1
    for k, members in groups.items():
        valid += rng.sample(members, counts[k])
    valid_set = set(valid)
    return [p for p in sorted(items) if p not in valid_set], sorted(valid)
