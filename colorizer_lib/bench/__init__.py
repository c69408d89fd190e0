"""Speed and memory benchmark of image inference (``colorize bench``, ``benchmarks/bench_image.py``).

What it measures, for each model (random weights with calibrated BatchNorm statistics, which run
exactly as fast as trained ones) and render factor:

* ``model``: images per second of the network alone, per variant and batch size, with the peak
  device memory and the achieved TFLOP/s (FLOPs per image from ``torch.utils.flop_counter``) as a
  share of the device's measured bf16 (GPU) or float32 (CPU) matrix-multiply rate.
  Variants: ``baseline`` (DeOldify-style: unfolded spectral norm, float32, NCHW, batch 1),
  ``eager`` (the Colorizer today: folded, in the library's default dtype and layout: bf16 +
  channels-last on CUDA and on CPUs with native bf16, float32 NCHW on other CPUs), ``eager-fp32``
  (folded, float32, NCHW: the CPU path without bf16), ``eager-pad`` (plus
  :func:`~colorizer_lib.accel.pad_channels`), ``compiled-pad`` (plus ``torch.compile``),
  ``onnxruntime`` (CPU), and with ``--interleave`` only, ``cli``: ``colorize image`` on one photo as
  a subprocess, from start-up to the saved file.
* ``head``: the full-resolution residual block alone (where half of the work is), padded or not.
* ``latency-12mp``: one 4000 x 3000 JPEG from disk to disk, batch 1: the library path
  (``Colorizer.colorize`` + ``save``) and the pipelined path, with peak device memory.
* ``e2e``: 12-megapixel JPEGs from disk to disk (decode, model, merge, encode): the photo pipeline's
  simple path (``library``) and its pipelined path, both through :func:`~colorizer_lib.photos.run_jobs`
  as ``colorize image`` runs them, and the original project's own photo path as the baseline: DeOldify's
  (PIL resize, float32 model at batch 1, CPU YUV merge per image) or, for DDColor models, DDColor's
  ``ColorizationPipeline`` (OpenCV float Lab on the CPU, float32 model at batch 1, nearest a/b upsampling).

Results go to ``<out>/bench-<device>-<timestamp>.{json,csv}`` after every row (a run cut short keeps
what it measured), with the device, torch version, date and command line.

One job per module, importing only downwards in this order::

    measure     inputs, FLOPs, timing, matmul rate, peak memory
    report      rows, the JSON/CSV report, the table, the environment record
    baseline    the original projects' photo paths: DeOldify's and DDColor's ColorizationPipeline
    photos      12-megapixel JPEGs from disk to disk: library, pipelined and baseline paths
    model_only  the network alone, per variant (and `colorize image` on one photo); the full-resolution head
    run         `BenchConfig` and `run_benchmark`, the loop over models and sections
    command     `colorize bench` arguments and `python -m colorizer_lib.bench`
"""

from __future__ import annotations

from .baseline import ddcolor_style_photo, deoldify_style_photo
from .command import add_bench_arguments, add_bench_parser, config_from_args, main, run_bench_command
from .measure import count_flops, measure_matmul_tflops, peak_memory_gb, random_input, reset_peak, time_callable
from .model_only import MODEL_VARIANTS, bench_head, bench_interleaved, bench_model_only, build_variant
from .photos import PHOTO_SIZE, bench_photos, make_test_photos
from .report import Report, Row, environment, format_row, format_table
from .run import DEFAULT_MODELS, BenchConfig, profile_table, run_benchmark

__all__ = [
    "DEFAULT_MODELS", "MODEL_VARIANTS", "PHOTO_SIZE", "BenchConfig", "Report", "Row",
    "add_bench_arguments", "add_bench_parser", "bench_head", "bench_interleaved", "bench_model_only", "bench_photos",
    "build_variant", "config_from_args", "count_flops", "ddcolor_style_photo", "deoldify_style_photo", "environment", "format_row",
    "format_table", "main", "make_test_photos", "measure_matmul_tflops", "peak_memory_gb", "profile_table",
    "random_input", "reset_peak", "run_bench_command", "run_benchmark", "time_callable",
]
