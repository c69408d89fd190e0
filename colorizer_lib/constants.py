"""Constants shared by every layer, and the one check of the render factor.

Nothing here imports torch or numpy, so front ends can validate arguments before a model loads.
"""

from __future__ import annotations

import numbers
from typing import Any

from .errors import RenderFactorError

__version__ = "0.1.0"

RENDER_FACTOR_RANGE = (2, 100)
"""Allowed render factors, inclusive. The model sees a square of ``16 * render_factor`` pixels."""

VIDEO_PREVIEW_RENDER_FACTORS = (14, 21, 28, 35)
"""The render factors a video preview compares unless told otherwise (DeOldify's video model was tuned for 21)."""

RENDER_BASE = 16

PIPELINE_MIN_IMAGES = 2
"""The photo pipeline's ``pipeline="auto"`` takes the pipelined path on CUDA from this many photos on
(:func:`colorizer_lib.photos.use_pipeline`): there it overlaps decoding and encoding (worker threads,
or nvJPEG on the GPU) with asynchronous device work. Two photos already give it something to overlap;
for one, its thread pool and page-locked buffers are only set-up. On a CPU the model is the
bottleneck, so the simple path stays. Here so that ``colorize --help`` can quote it without torch."""


def check_render_factor(render_factor: Any) -> int:
    """Return ``render_factor`` as an int, or raise :class:`RenderFactorError` naming the range."""
    low, high = RENDER_FACTOR_RANGE
    if isinstance(render_factor, bool) or not isinstance(render_factor, numbers.Integral) and not (
        isinstance(render_factor, float) and render_factor.is_integer()
    ):
        raise RenderFactorError(f"render factor must be a whole number from {low} to {high}, got {render_factor!r}.")
    rf = int(render_factor)
    if not low <= rf <= high:
        raise RenderFactorError(
            f"render factor {rf} is outside the allowed range {low}..{high} "
            f"(the model works on a square of 16 x render factor pixels; 35 is typical for photos, 21 for video)."
        )
    return rf
