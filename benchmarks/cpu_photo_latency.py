"""CPU latency of one photo, end to end in memory: ``python benchmarks/cpu_photo_latency.py [--model compact]``.

Resizes an example photo to ``--width`` pixels wide, colorizes it once to warm up, then ``--runs``
times, and prints the median with the load average (timings on a shared machine are noisy).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from PIL import Image

from colorizer_lib import Colorizer

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="compact")
    parser.add_argument("--photo", default=str(ROOT / "examples" / "nagasaki-boats.jpg"))
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--render-factor", type=int, default=None)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    col = Colorizer.from_pretrained(args.model, device="cpu")
    src = Image.open(args.photo).convert("RGB")
    src = src.resize((args.width, round(args.width * src.height / src.width)), Image.LANCZOS)
    col.colorize(src, args.render_factor)
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        col.colorize(src, args.render_factor)
        times.append(time.perf_counter() - start)
    rf = col.render_factor_or_default(args.render_factor)
    print(f"{col.name} rf {rf} {src.size[0]}x{src.size[1]}: median {statistics.median(times):.3f} s "
          f"(min {min(times):.3f}, max {max(times):.3f}, {args.runs} runs, {args.threads} threads, "
          f"torch {torch.__version__}, load average {open('/proc/loadavg').read().split()[0]})")


if __name__ == "__main__":
    main()
