#!/usr/bin/env python
"""Image inference benchmark: a thin wrapper around :mod:`colorizer_lib.bench` (same as `colorize bench`).

Examples:
    python benchmarks/bench_image.py                      # the full matrix on the GPU (results in benchmarks/results)
    python benchmarks/bench_image.py --device cpu --models artistic --render-factors 35
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorizer_lib.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
