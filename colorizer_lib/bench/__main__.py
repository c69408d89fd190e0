"""``python -m colorizer_lib.bench``: the same as ``colorize bench``."""

import sys

from .command import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
