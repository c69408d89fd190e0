"""Step 2: filter, deduplicate, split and pack the scanned photos into shard sets.

    python benchmarks/train_v2/pack.py --scan /work/data/scan --raw /work/data/raw --out /work/data/shards

Filters (numbers from :func:`colorizer_lib.training.shards.photo_stats` on a 64 px thumbnail):
decodes; short side >= 64; colourfulness >= ``--min-colorfulness`` (not near-grey or sepia);
Caltech-101 only: not a white-background product shot or a drawing (border >= 50 % near-white, or
>= 35 % near-white overall, or >= 45 % flat pixels). Deduplication: perceptual hashes within
``--max-distance`` bits; a photo close to any photo of the project's shared training folder (which
holds the old 150-photo validation split) or of ``examples/`` is dropped, and of a close pair of
candidates the first (in source order) is kept.

Validation: ``--valid-per-source`` photos of every source (at most an eighth of it), seeded with
``--seed``; never packed for training. Written as ``OUT/valid`` (a shard set, the photo at 256 px
when its short side is >= 200, else 128) and ``OUT/valid.tsv`` (source and raw path, for the
end-to-end evaluation at full resolution).

Training shard sets: ``OUT/s128_NN`` (every training photo stretched to 128 px, sources interleaved
in a seeded order, about ``--set-mb`` each) and ``OUT/s256_NN`` (the photos of short side >= 200
stretched to 256 px). Any prefix of the numbered sets is a fair sample of all sources, so a GPU call
carries as many as fit. ``OUT/report.json`` has the counts per source at each step.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]

from sources import SOURCES  # noqa: E402
from colorizer_lib.training.shards import ShardWriter, near_duplicates  # noqa: E402


def is_product_shot(r: dict) -> bool:
    return r["white_border"] >= 0.5 or r["white"] >= 0.35 or r["flat"] >= 0.45


def write_sets(items: list[dict], key: str, side: int, out: Path, prefix: str, set_bytes: int) -> list[dict]:
    sets, n, writer, size = [], 0, None, 0
    for it in items:
        data = it["rec"][key]
        if writer is None or size + len(data) > set_bytes:
            if writer is not None:
                writer.close()
                sets.append({"name": writer.out.name, "count": writer.count, "bytes": writer.bytes})
            writer = ShardWriter(out / f"{prefix}_{n:02d}", side, shard_bytes=set_bytes + 1)
            n, size = n + 1, 0
        writer.add(f"{it['source']}/{it['rec']['path']}", it["source"], data, it["rec"]["width"], it["rec"]["height"])
        size += len(data)
    if writer is not None:
        writer.close()
        sets.append({"name": writer.out.name, "count": writer.count, "bytes": writer.bytes})
    return sets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scan", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--min-colorfulness", type=float, default=8.0)
    ap.add_argument("--max-distance", type=int, default=4)
    ap.add_argument("--valid-per-source", type=int, default=40)
    ap.add_argument("--set-mb", type=float, default=6.0)
    args = ap.parse_args()
    scan, out = Path(args.scan), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"args": vars(args), "sources": {}}

    # reference photos: never trained on as candidates' near-duplicates
    refs = [r for name in ("shared_train", "examples") for r in pickle.loads((scan / f"{name}.pkl").read_bytes())
            if "error" not in r]
    names = [s.name for s in SOURCES] + ["shared_train"]
    cands: list[dict] = []
    for name in names:
        recs = pickle.loads((scan / f"{name}.pkl").read_bytes())
        src = next((s for s in SOURCES if s.name == name), None)
        st = {"scanned": len(recs)}
        recs = [r for r in recs if "error" not in r]
        st["decodes"] = len(recs)
        recs = [r for r in recs if min(r["width"], r["height"]) >= 64]
        st["ge_64px"] = len(recs)
        if name == "shared_train":
            recs = [r for r in recs if not r["old_valid"]]  # the old validation split is never trained on
            st["not_old_valid"] = len(recs)
        else:
            recs = [r for r in recs if r["colorfulness"] >= args.min_colorfulness]
            st["not_near_grey"] = len(recs)
            if src.product_shots:
                recs = [r for r in recs if not is_product_shot(r)]
                st["not_product_shot_or_drawing"] = len(recs)
        report["sources"][name] = st
        cands += [{"source": name, "rec": r} for r in recs]

    # deduplicate: shared_train candidates are themselves references (kept); new photos near any reference go
    n_ref = len(refs)
    hashes = [r["phash"] for r in refs] + [c["rec"]["phash"] for c in cands]
    pairs = near_duplicates(hashes, args.max_distance)
    drop: set[int] = set()
    for i, j in pairs:  # indices into refs + cands; i < j
        ci, cj = i - n_ref, j - n_ref
        if cj < 0:
            continue  # two reference photos
        if cands[cj]["source"] == "shared_train" and (ci < 0 or cands[ci]["source"] == "shared_train"):
            continue  # the shared folder is kept as it is
        if ci < 0 or cands[ci]["source"] == "shared_train":
            drop.add(cj)
        elif ci not in drop:
            drop.add(cj)
    for k, c in enumerate(cands):
        if k in drop:
            c["dup"] = True
    report["near_duplicate_pairs"] = len(pairs)
    kept = [c for c in cands if not c.get("dup")]
    for name in names:
        report["sources"][name]["after_dedup"] = sum(c["source"] == name for c in kept)

    # validation split: per source, seeded
    rng = random.Random(args.seed)
    valid, train = [], []
    for name in names:
        members = sorted((c for c in kept if c["source"] == name), key=lambda c: c["rec"]["path"])
        k = 0 if name == "shared_train" else min(args.valid_per_source, len(members) // 8)
        picked = set(id(c) for c in rng.sample(members, k))
        valid += [c for c in members if id(c) in picked]
        train += [c for c in members if id(c) not in picked]
        report["sources"][name]["valid"] = k
        report["sources"][name]["train"] = len(members) - k
        report["sources"][name]["train_256"] = sum(c["rec"]["sq256"] is not None for c in members if id(c) not in picked)
    with ShardWriter(out / "valid", None) as w:
        for c in valid:
            r = c["rec"]
            w.add(f"{c['source']}/{r['path']}", c["source"], r["sq256"] or r["sq128"], r["width"], r["height"])
    (out / "valid.tsv").write_text("".join(f"{c['source']}\t{c['rec']['path']}\n" for c in valid))

    set_bytes = int(args.set_mb * (1 << 20))
    rng.shuffle(train)
    report["s128"] = write_sets(train, "sq128", 128, out, "s128", set_bytes)
    large = [c for c in train if c["rec"]["sq256"] is not None]
    report["s256"] = write_sets(large, "sq256", 256, out, "s256", set_bytes)
    report["totals"] = {"valid": len(valid), "train": len(train), "train_256": len(large),
                        "s128_bytes": sum(s["bytes"] for s in report["s128"]),
                        "s256_bytes": sum(s["bytes"] for s in report["s256"])}
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["sources"], indent=1))
    print(json.dumps(report["totals"]))


if __name__ == "__main__":
    main()
