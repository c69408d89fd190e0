"""Quality benchmark from a checkout: ``python benchmarks/quality.py FOLDER [...]``.

The logic lives in :mod:`colorizer_lib.quality` so that ``colorize bench-quality`` works from an
installed package too.
"""

import sys

from colorizer_lib.quality import main

if __name__ == "__main__":
    sys.exit(main())
