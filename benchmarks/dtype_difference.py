"""How far a lower-precision run is from float32, in 8-bit levels of the output pictures.

    python benchmarks/dtype_difference.py [--model compact] [--dtype bfloat16] [--device cpu] [--json OUT.json]

Colorizes every photo in ``examples/`` (or the given files) twice through the library's normal path
(``Colorizer.colorize``: full resolution, the original luma kept), once in float32 and once in
``--dtype`` on the same device, and prints per photo the mean and the worst absolute difference
over all pixels and channels, in 8-bit levels. On a GPU float32 means no TF32 (set here).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from colorizer_lib import Colorizer  # noqa: E402
from colorizer_lib.bench import environment  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="*", help="default: examples/*.jpg")
    parser.add_argument("--model", default="compact")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--render-factor", type=int, default=None)
    parser.add_argument("--json", help="write the rows and the set-up here")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    photos = [Path(p) for p in args.photos] or sorted((ROOT / "examples").glob("*.jpg"))
    reference = Colorizer.from_pretrained(args.model, device=args.device, dtype="float32", progress=False)
    low = Colorizer.from_pretrained(args.model, device=args.device, dtype=args.dtype, progress=False)
    rows = []
    for photo in photos:
        a = np.asarray(reference.colorize(photo, args.render_factor).image).astype(np.int16)
        b = np.asarray(low.colorize(photo, args.render_factor).image).astype(np.int16)
        diff = np.abs(a - b)
        rows.append({"file": photo.name, "size": f"{a.shape[1]}x{a.shape[0]}",
                     "mean_abs_diff_levels": round(float(diff.mean()), 3), "max_abs_diff_levels": int(diff.max()),
                     "pixels_over_8_levels_pct": round(100 * float((diff.max(axis=-1) > 8).mean()), 3)})
        print(f"{photo.name:<32} {rows[-1]['size']:>9}  mean {diff.mean():6.3f}  max {diff.max():4d}  "
              f"pixels > 8 levels {rows[-1]['pixels_over_8_levels_pct']:.3f} %", flush=True)
    means = [r["mean_abs_diff_levels"] for r in rows]
    print(f"{len(rows)} photos, {args.model} rf {low.render_factor_or_default(args.render_factor)}, {args.dtype} vs "
          f"float32 on {args.device}: mean of means {np.mean(means):.3f} (range {min(means):.3f}-{max(means):.3f}), "
          f"worst pixel {max(r['max_abs_diff_levels'] for r in rows)} levels")
    if args.json:
        meta = environment(low.device)  # date, command, versions, the CPU's model and flags or the GPU
        meta.update(model=args.model, dtype=args.dtype, render_factor=low.render_factor_or_default(args.render_factor))
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
