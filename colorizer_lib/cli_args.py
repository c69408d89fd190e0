"""Argument types and flags shared by every ``colorize`` sub-command (no torch: ``--help`` stays fast).

Each sub-command adds the common flags with :func:`add_common_arguments`, so they are spelled,
defaulted and documented once::

    add_common_arguments(parser)                                     # -m/--model --device --dtype --cache-dir -q/--quiet
    add_common_arguments(parser, model_default="video")              # another default model
    add_common_arguments(parser, skip=("device", "dtype"))           # flags that make no sense for the command
    add_chroma_upsample_argument(parser)                             # --chroma-upsample (commands that colorize)

Parsed, they are ``args.model``, ``args.device``, ``args.dtype``, ``args.cache_dir`` and ``args.quiet``.
A new common flag goes into :data:`COMMON_FLAGS` and :func:`add_common_arguments`; a new choice of
an existing one (a dtype, say) into its constant here.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable, Iterable

from .constants import check_render_factor
from .errors import ColorizerError

from .errors import why_missing  # noqa: F401  (video_cli's import)

COMMON_FLAGS = ("model", "device", "dtype", "cache_dir", "quiet")
"""The flags :func:`add_common_arguments` adds, by their ``args`` attribute name."""

DTYPE_CHOICES = ("float32", "float16", "bfloat16")

MODEL_HELP = ("artistic, stable, video, compact, ddcolor, ddcolor-artistic, ddcolor-paper, ddcolor-tiny "
              "(`colorize models` lists them), or a .pth/.safetensors path")
ENSEMBLE_HELP = ("an ensemble of two or more: ddcolor+artistic (their colours averaged) or "
                 "ddcolor:0.6,artistic:0.4 (weighted)")
"""For the commands that colorize (image, video): their ``--model`` also takes ensembles."""

CHROMA_UPSAMPLE_CHOICES = ("bilinear", "nearest")


def comma_separated_ints(text: str) -> list[int]:
    """argparse type for lists such as render factors: ``"14,21,28"`` -> ``[14, 21, 28]``."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type for counts that must be 1 or more (batch sizes)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def checked(check: Callable[[Any], Any], convert: Callable[[str], Any] = float) -> Callable[[str], Any]:
    """An argparse type from a library check: the text is converted with ``convert`` and validated by
    ``check``, so a command line refuses what the library refuses, with the library's message."""
    def parse(text: str):
        try:
            return check(convert(text))
        except (ValueError, ColorizerError) as exc:
            message = str(exc) if isinstance(exc, ColorizerError) else f"not a number: {text!r}"
            raise argparse.ArgumentTypeError(message) from None
    parse.__name__ = getattr(check, "__name__", "value")  # argparse names the type in some messages
    return parse


render_factor = checked(check_render_factor)
"""argparse type of ``-r/--render-factor``: what :func:`~colorizer_lib.constants.check_render_factor`
accepts (``35``, ``35.0``) as an int, else its message."""


def render_factors(text: str) -> list[int]:
    """argparse type for lists of render factors (``"14,21,35.0"``), each checked as :data:`render_factor`."""
    return [render_factor(v) for v in text.split(",") if v.strip()]


def add_render_factor_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``-r/--render-factor`` (default None: the model's own), checked as the library checks it."""
    parser.add_argument("-r", "--render-factor", type=render_factor, default=None, help=help)


def add_common_arguments(parser: argparse.ArgumentParser, *, model_default: str | None = None,
                         model_help: str | None = None, skip: Iterable[str] = ()) -> None:
    """Add the flags every sub-command shares (:data:`COMMON_FLAGS`), except those named in ``skip``.

    Args:
        parser: the sub-command's parser.
        model_default: ``--model``'s default (None: the best model available).
        model_help: ``--model``'s help text (default: the registered names or a weights file, and the default).
        skip: names from :data:`COMMON_FLAGS` the command does not take.
    """
    skip = set(skip)
    unknown = skip - set(COMMON_FLAGS)
    if unknown:
        raise ValueError(f"unknown common flag(s) {sorted(unknown)}; choose from {COMMON_FLAGS}")
    if "model" not in skip:
        default_text = model_default or "the best model available"
        parser.add_argument("-m", "--model", default=model_default,
                            help=model_help or f"{MODEL_HELP} (default: {default_text})")
    if "device" not in skip:
        parser.add_argument("--device", help="cpu, cuda or cuda:N (default: a GPU when there is one)")
    if "dtype" not in skip:
        parser.add_argument("--dtype", choices=list(DTYPE_CHOICES),
                            help="compute precision (default: bfloat16 on GPUs (float16 on older ones) and on CPUs "
                                 "with native bfloat16 (AVX512-BF16 or AMX), float32 on other CPUs)")
    if "cache_dir" not in skip:
        parser.add_argument("--cache-dir", help="where downloaded weights are kept (default: $COLORIZER_CACHE or "
                                                "the platform's cache folder)")
    if "quiet" not in skip:
        parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or messages, only errors")


def add_chroma_upsample_argument(parser: argparse.ArgumentParser) -> None:
    """``--chroma-upsample {bilinear,nearest}`` (``args.chroma_upsample``, None when not given: the model's own
    default), for the commands that colorize (image, video)."""
    parser.add_argument("--chroma-upsample", choices=list(CHROMA_UPSAMPLE_CHOICES), default=None,
                        help="how the colour predicted at model resolution is enlarged to the photo's size: "
                             "bilinear (smooth colour edges) or nearest (DDColor's original code, blocky colour "
                             "cells on large photos; for comparing with it). Default: the model's own")

