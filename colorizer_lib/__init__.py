"""Colorizer: colorize and restore black-and-white photos and film (a modern DeOldify successor)."""

__version__ = "0.1.0"
