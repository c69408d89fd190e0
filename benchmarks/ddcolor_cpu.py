"""DDColor on the CPU under the dtype policy: ``python benchmarks/ddcolor_cpu.py WEIGHTS`` (a DDColor-T file,
e.g. ``pytorch_model.bin`` of ``ddcolor-tiny``, or deterministic test weights written with
``tests/ddcolor_weights.py``: the speed does not depend on the values). Prints, for the default dtype
(the CPU policy), float32 and bfloat16, the median of 5 end-to-end colorizations of a 1024 px photo in
memory and of 5 model-only forwards at 512 px (render factor 32), with the load average.
"""
import os
import statistics
import sys
import time

import torch
from PIL import Image

from colorizer_lib import Colorizer

torch.set_num_threads(2)
src = Image.open("examples/nagasaki-boats.jpg").convert("RGB")
src = src.resize((1024, round(1024 * src.height / src.width)), Image.LANCZOS)
for dtype in (None, "float32", "bfloat16"):
    col = Colorizer.from_pretrained(sys.argv[1], device="cpu", dtype=dtype, progress=False)
    col.colorize(src)
    t = []
    for _ in range(5):
        s = time.perf_counter(); col.colorize(src); t.append(time.perf_counter() - s)
    luma = torch.rand(1, 1, 512, 512)
    x = col.model_input(luma, 32)
    m = []
    for _ in range(5):
        s = time.perf_counter(); col.chroma_from_input(x, 32); m.append(time.perf_counter() - s)
    print(f"dtype={dtype} -> {col.dtype}: photo 1024px e2e median {statistics.median(t):.2f} s; model-only 512 median {statistics.median(m):.2f} s (load {os.getloadavg()[0]:.2f})")
