"""Colorizer: colorize and restore black-and-white photos and film (a modern DeOldify successor).

    from colorizer_lib import Colorizer
    result = Colorizer.from_pretrained("artistic").colorize("photo.jpg")
"""

from .constants import __version__

__all__ = ["Colorizer", "ColorizeResult", "__version__"]


def __getattr__(name: str):
    # Lazy, so `import colorizer_lib` stays cheap (torch loads only when a Colorizer is used).
    if name in ("Colorizer", "ColorizeResult"):
        from . import colorizer

        return getattr(colorizer, name)
    raise AttributeError(f"module 'colorizer_lib' has no attribute {name!r}")
