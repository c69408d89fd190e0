"""Compiled Artistic model-only speed by channel padding, with a kernel profile (CUDA only).

``python benchmarks/profile_compiled.py --out DIR [--multiples 8,32] [--render-factor 35] [--batch 16]``
(2026-11-23, H100: 173.3 img/s with multiple 8, 182.8 with 32; H200: 176.9 and 186.2;
H100, multiple 32: ``--configs max-autotune`` 199.0 and 200.5 in two runs)

For each padding multiple: fold, pad (:func:`colorizer_lib.accel.pad_channels`), bf16,
channels-last, ``torch.compile`` (one static shape), then time batches of random grey inputs and
report images/s and the share of the GPU's measured bf16 matmul rate. Each row's output is compared
with the unpadded model in float32 (no TF32) and with the first row's (bf16 kernels differ in
summation order); ``--configs`` picks Inductor settings (``eager``: not compiled). The
``--profile`` multiple also gets a kernel table (``profile-pad<N>.txt``: time per CUDA kernel,
largest first), which is how the rows of ``docs/PERF_NOTES.md`` (second round) were found.
Writes ``compiled-padding.json``. Random weights with calibrated BatchNorm: same speed as trained.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from colorizer_lib import bench
from colorizer_lib.accel import pad_channels
from colorizer_lib import registry
from colorizer_lib.models import random_weights
from colorizer_lib.models.fold import fold_for_inference



# Inductor options per named configuration (``torch.compile(options=...)``). "max-autotune" is what
# ``mode="max-autotune-no-cudagraphs"`` sets (CUDA graphs do not matter at ~90 ms per batch);
# "freezing" treats the weights as constants (constant folding, layout choices made for them).
CONFIGS = {
    "eager": None,  # not compiled: the bf16 rounding every compiled row is compared against
    "default": {},
    "freezing": {"freezing": True},
    "max-autotune": {"max_autotune": True, "coordinate_descent_tuning": True},
    "freezing+max-autotune": {"freezing": True, "max_autotune": True, "coordinate_descent_tuning": True},
}


def kernel_table(fn, rows: int = 40) -> str:
    """torch.profiler's CUDA kernels of one call of ``fn``, by total time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    kernels = sorted(((e.key, e.device_time_total, e.count) for e in prof.key_averages()), key=lambda r: -r[1])
    total = sum(t for _, t, _ in kernels)
    lines = [f"total {total / 1e3:.1f} ms"]
    lines += [f"{t / 1e3:9.2f} ms {100 * t / total:5.1f}% x{n:4d} {name[:150]}" for name, t, n in kernels[:rows]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="artistic")
    parser.add_argument("--multiples", default="8,32", help="comma-separated padding multiples")
    parser.add_argument("--render-factor", type=int, default=35)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--configs", default="default",
                        help="comma-separated Inductor configurations to compile with, each measured at every "
                             f"multiple: {', '.join(CONFIGS)}")
    parser.add_argument("--seconds", type=float, default=3, help="time each row for at least this long")
    parser.add_argument("--profile", type=int, default=8, help="padding multiple to profile (0: none; CUDA only)")
    parser.add_argument("--device", default="cuda", help="cuda (the measurement); cpu only checks the script")
    args = parser.parse_args()
    unknown = set(args.configs.split(",")) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown --configs {sorted(unknown)}; choose from {', '.join(CONFIGS)}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here; the numbers this script is for need one (--device cpu only checks it)")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.backends.cudnn.benchmark = True
    tflops, _ = bench.measure_matmul_tflops(device)
    base = random_weights.calibrated_random_model(registry.resolve_arch(args.model), device)
    x = bench.random_input(args.batch, 16 * args.render_factor, device, torch.bfloat16, True)
    flops = bench.count_flops(fold_for_inference(copy.deepcopy(base)), x[:1].float())
    results = {"environment": bench.environment(device), "bf16_tflops": tflops, "flops_per_image": flops,
               "model": args.model, "render_factor": args.render_factor, "batch": args.batch, "rows": []}
    reference = None
    with torch.inference_mode():
        # float32 without TF32, unpadded: what every bf16 row's rounding is measured against
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        exact = fold_for_inference(copy.deepcopy(base)).to(device, torch.float32)
        fp32 = exact(x.float())
        del exact
        torch.backends.cudnn.allow_tf32 = True
        for multiple, config in ((int(m), c) for m in args.multiples.split(",") for c in args.configs.split(",")):
            model = pad_channels(fold_for_inference(copy.deepcopy(base)), multiple)
            model = model.to(device, torch.bfloat16).to(memory_format=torch.channels_last)
            options = CONFIGS[config] or None
            compiled = model if config == "eager" else torch.compile(model, dynamic=False, options=options)
            start = time.perf_counter()
            out = compiled(x).float()
            bench.measure._sync(device)
            compile_s = time.perf_counter() - start
            reference = out if reference is None else reference
            times = bench.time_callable(lambda: compiled(x), device, min_seconds=args.seconds, min_runs=5, warmup=1)
            ips = args.batch / statistics.median(times)
            error = (out - fp32).abs()
            row = {"multiple": multiple, "config": config, "images_per_s": ips,
                   "share_of_bf16_rate": ips * flops / 1e12 / tflops,
                   "images_per_s_range": [args.batch / max(times), args.batch / min(times)], "runs": len(times),
                   "compile_s": compile_s, "max_abs_diff_vs_first": (out - reference).abs().max().item(),
                   "max_abs_diff_vs_fp32": error.max().item(), "mean_abs_diff_vs_fp32": error.mean().item()}
            results["rows"].append(row)
            print(json.dumps(row), flush=True)
            if multiple == args.profile and device.type == "cuda":
                (args.out / f"profile-pad{multiple}-{config}.txt").write_text(kernel_table(lambda: compiled(x)))
            (args.out / "compiled-padding.json").write_text(json.dumps(results, indent=1))
            del compiled, model
            torch._dynamo.reset()
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
