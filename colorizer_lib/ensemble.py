"""Ensembles: several models' chroma averaged in one colour space, composed once.

What :class:`colorizer_lib.colorizer.Ensemble` (``Colorizer.from_pretrained("ddcolor+artistic")``)
needs besides the Colorizers themselves: reading an ensemble's description
(:func:`parse_models`), its weights (:func:`normalise_weights`) and its name
(:func:`ensemble_name`), the render factor of each member (:func:`member_render_factors`), and
:func:`average_chroma`, which brings each member's chroma into the ensemble's colour space and size
and takes the weighted mean.

The colour space is the **first model's family's** (docs/ARCHITECTURE.md, "Ensembles"): ITU-R 601
U, V for DeOldify's family, OpenCV CIELAB a, b for DDColor's. Members of the same family are averaged
as they are (so an ensemble of one family is exactly that family's merge: a model with itself gives
the model's own picture); a member of another family is converted at its own model resolution
through RGB (its chroma joined with its own luminance there, then the leading family's chroma of that
RGB). Chroma of different sizes meets at the largest (bilinear), then the one merge upsamples it to
the photo once.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Sequence

import torch

from .constants import RENDER_FACTOR_RANGE
from .errors import ModelArgumentError, RenderFactorError
from .merge import upsample_chroma

_FORMS = "name the models joined by '+' (equal weights, e.g. 'ddcolor+artistic') or give each a weight " \
         "('ddcolor:0.6,artistic:0.4')"


def parse_models(spec: Any) -> list[tuple[str | Path, float | None]] | None:
    """The members of an ensemble description, ``[(name or path, weight or None), ...]`` (a list of one for
    a list of one model); ``None`` when ``spec`` names one model (or is ``None``).

    Accepted: a list or tuple of names, paths, ``"name:weight"`` strings or ``(name, weight)`` pairs;
    ``"a+b"`` (equal weights); ``"a:0.6,b:0.4"`` (``+`` and ``,`` both separate members). An existing
    file's path is one model even if its name holds ``+`` or ``,``.

    Raises:
        ModelArgumentError: an empty name, a weight on a single model, weights on some members only,
            or a weight that is not a positive number; the message shows the accepted forms.
    """
    if spec is None or isinstance(spec, Path):
        return None
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise ModelArgumentError(f"an empty list of models was given; {_FORMS}.")
        parts = [_member(item, spec) for item in spec]
    elif isinstance(spec, str):
        if os.path.isfile(os.path.expanduser(spec)):
            return None
        pieces = re.split(r"[+,]", spec)
        if len(pieces) == 1 and _member(spec, spec)[1] is None:
            return None
        parts = [_member(piece, spec) for piece in pieces]
    else:
        raise ModelArgumentError(f"a model is a name, a path or a list of them, not {type(spec).__name__}; {_FORMS}.")
    weighted = [w is not None for _, w in parts]
    if len(parts) == 1 and parts[0][1] is not None:
        raise ModelArgumentError(f"{spec!r} gives a weight to a single model; an ensemble needs two or more: {_FORMS}.")
    if any(weighted) and not all(weighted):
        raise ModelArgumentError(f"{spec!r} gives weights to some models only; give every model a weight or "
                                 f"none: {_FORMS}.")
    return parts


def _member(item: Any, whole: Any) -> tuple[str | Path, float | None]:
    if isinstance(item, tuple) and len(item) == 2:
        name, weight = item
        return _checked_name(name, whole), _checked_weight(weight, whole)
    if isinstance(item, Path):
        return item, None
    if not isinstance(item, str):
        raise ModelArgumentError(f"{whole!r}: each model is a name, a path or a (name, weight) pair, not "
                                 f"{item!r}; {_FORMS}.")
    text = item.strip()
    name, sep, tail = text.rpartition(":")
    if sep and re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*|\s*[-+]?(nan|inf)\s*", tail, re.I):
        return _checked_name(name, whole), _checked_weight(float(tail), whole)
    return _checked_name(text, whole), None


def _checked_name(name: Any, whole: Any) -> str | Path:
    if isinstance(name, Path):
        return name
    if not isinstance(name, str) or not name.strip():
        raise ModelArgumentError(f"{whole!r} has an empty model name; {_FORMS}.")
    return name.strip()


def _checked_weight(weight: Any, whole: Any) -> float:
    try:
        value = float(weight)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(weight, bool) or not math.isfinite(value) or value <= 0:
        raise ModelArgumentError(f"{whole!r}: a model's weight must be a positive number, got {weight!r}; {_FORMS}.")
    return value


def normalise_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """Weights summing to 1 (equal ones for ``None``)."""
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise ModelArgumentError(f"{len(weights)} weight(s) for {count} models; give one weight per model.")
    checked = [_checked_weight(w, list(weights)) for w in weights]
    total = sum(checked)
    return [w / total for w in checked]


def ensemble_name(names: Sequence[str], weights: Sequence[float]) -> str:
    """``"a+b"`` for equal weights, else ``"a:0.6,b:0.4"`` (what ``from_pretrained`` reads back)."""
    if max(weights) - min(weights) <= 1e-12:
        return "+".join(names)
    return ",".join(f"{name}:{weight:.4g}" for name, weight in zip(names, weights))


def member_render_factors(render_factor: int, defaults: Sequence[int], families: Sequence[Any]) -> list[int]:
    """Each member's render factor for the ensemble's ``render_factor``: its own default scaled by
    ``render_factor / defaults[0]`` (the first model's is the ensemble's), so the ensemble's default runs
    every model at its own default, rounded to the nearest one its family accepts (DDColor: even)."""
    low, high = RENDER_FACTOR_RANGE
    out = []
    for default, family in zip(defaults, families):
        wanted = render_factor * default / defaults[0]
        nearest = min(max(round(wanted), low), high)
        for candidate in sorted({nearest, max(nearest - 1, low), min(nearest + 1, high)},
                                key=lambda c: (abs(c - wanted), c != nearest, c)):
            try:
                family.input_size(candidate)
            except RenderFactorError:
                continue
            out.append(candidate)
            break
        else:  # pragma: no cover - every family accepts one of three neighbours
            raise RenderFactorError(f"no render factor near {wanted:g} suits {family!r}.")
    return out


def average_chroma(lead: Any, parts: Sequence[tuple[Any, torch.Tensor, torch.Tensor]],
                   weights: Sequence[float]) -> torch.Tensor:
    """The weighted mean of the members' chroma in the leading family's colour space.

    Args:
        lead: the first model's family (its space and merge are the ensemble's).
        parts: per member ``(family, input_luma (B, 1, S, S), chroma (B, 2, S, S))`` at its model size.
        weights: summing to 1.

    Returns:
        ``(B, 2, S_max, S_max)`` float32.
    """
    height = max(chroma.shape[-2] for _, _, chroma in parts)
    width = max(chroma.shape[-1] for _, _, chroma in parts)
    total: torch.Tensor | None = None
    for (family, luma, chroma), weight in zip(parts, weights):
        if family.chroma_space != lead.chroma_space:
            chroma = lead.from_rgb(family.to_rgb(family.luminance(luma), chroma))
        if tuple(chroma.shape[-2:]) != (height, width):
            chroma = upsample_chroma(chroma, (height, width), "bilinear")
        term = chroma.float() * weight
        total = term if total is None else total.add_(term)
    assert total is not None
    return total


__all__ = ["average_chroma", "ensemble_name", "member_render_factors", "normalise_weights", "parse_models"]
