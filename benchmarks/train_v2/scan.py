"""Step 1: look at every candidate photo once (decode, measure, hash, re-encode small squares).

    python benchmarks/train_v2/scan.py --raw /work/data/raw --shared-train ../shared/data/train --out /work/data/scan

Per source it writes ``OUT/<source>.pkl``: a list of dicts (``path`` relative to RAW, ``width``,
``height``, ``phash``, ``colorfulness``, ``white``, ``white_border``, ``flat``, ``sq128``: the photo
stretched to 128x128 as JPEG q75 (64x64 for photos of short side < 96), ``sq256``: 256x256 JPEG q75
for photos of short side >= 200, else None; ``error`` for files that do not decode).
The shared training folder is scanned the same way under the source name ``shared_train`` (the
old 150-photo validation split is marked ``old_valid``), and ``examples/`` as ``examples`` (reference
only: never packed).
"""

from __future__ import annotations

import argparse
import pickle
import random
import sys
from multiprocessing import Pool
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]

from sources import SOURCES  # noqa: E402
from colorizer_lib.errors import InputError  # noqa: E402
from colorizer_lib.training.shards import open_rgb, perceptual_hash, photo_stats, square_jpeg  # noqa: E402
from colorizer_lib.training.split import IMAGE_SUFFIXES, list_images, split_items  # noqa: E402

SMALL_SIDE, LARGE_SIDE, LARGE_MIN, QUALITY = 128, 256, 200, 75


def scan_one(args: tuple[str, str]) -> dict:
    root, rel = args
    rec: dict = {"path": rel}
    try:
        im = open_rgb(Path(root) / rel)
    except InputError as exc:
        return {**rec, "error": str(exc)}
    w, h = im.size
    rec.update(width=w, height=h, phash=perceptual_hash(im), **photo_stats(im))
    short = min(w, h)
    rec["sq128"] = square_jpeg(im, SMALL_SIDE if short >= 96 else 64, QUALITY) if short >= 64 else None
    rec["sq256"] = square_jpeg(im, LARGE_SIDE, QUALITY) if short >= LARGE_MIN else None
    return rec


def candidates(root: Path, paths: tuple[str, ...], cap: int | None, seed: int) -> list[str]:
    files = []
    for p in paths:
        files += sorted(str(f.relative_to(root)) for f in (root / p).rglob("*")
                        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if cap is not None and len(files) > cap:
        files = sorted(random.Random(seed).sample(files, cap))
    return files


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True, help="folder holding one extracted folder per source")
    ap.add_argument("--shared-train", required=True, help="the project's shared data/train folder")
    ap.add_argument("--examples", default="examples")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", nargs="*", help="scan only these sources")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, Path, list[str], set[str]]] = []
    for s in SOURCES:
        root = Path(args.raw) / s.name
        jobs.append((s.name, root, candidates(root, s.paths, s.scan_cap, args.seed), set()))
    shared = Path(args.shared_train)
    items = list_images(shared)
    _, old_valid = split_items(items, 150, 42)  # the split `colorize bench-quality --split valid` uses
    jobs.append(("shared_train", shared, [str(p.relative_to(shared)) for p in items],
                 {str(p.relative_to(shared)) for p in old_valid}))
    ex = Path(args.examples)
    jobs.append(("examples", ex, [str(p.relative_to(ex)) for p in list_images(ex)], set()))
    with Pool(args.workers) as pool:
        for name, root, files, old in jobs:
            if args.only and name not in args.only:
                continue
            if (out / f"{name}.pkl").exists():
                print(name, "already scanned", flush=True)
                continue
            recs = pool.map(scan_one, [(str(root), f) for f in files], chunksize=64)
            for r in recs:
                r["old_valid"] = r["path"] in old
            (out / f"{name}.pkl.tmp").write_bytes(pickle.dumps(recs))
            (out / f"{name}.pkl.tmp").rename(out / f"{name}.pkl")
            bad = sum("error" in r for r in recs)
            print(f"{name}: {len(recs)} scanned, {bad} undecodable", flush=True)


if __name__ == "__main__":
    main()
