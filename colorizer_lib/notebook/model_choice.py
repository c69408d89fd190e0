"""Choosing a model: the memoised colorizer factory, the dropdown's options and labels, the render-factor
slider's bounds, and the ``ModelPicker`` that combines them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Union

import ipywidgets as W

from colorizer_lib.constants import RENDER_FACTOR_RANGE
from colorizer_lib.errors import RenderFactorError, WeightsError
from .controls import LABEL_STYLE, StatusLine, call_in_output, clear


#: The slider never offers more than this range, even if the library allows more (2..100):
#: above 64 the result rarely improves and a CPU takes minutes.
SLIDER_RANGE = (4, 64)


#: Longest model label in the dropdown: what its 560 px show whole (a longer one is cut by the browser).
MODEL_LABEL_CHARS = 56


ColorizerFactory = Callable[[Union[str, None]], Any]


def slider_bounds(default: int, allowed: tuple[int, int] | None = None) -> tuple[int, int]:
    """(min, max) of the render-factor slider: ``SLIDER_RANGE`` intersected with the library's
    allowed range, widened to include ``default``. Raises ``RenderFactorError`` if ``default``
    itself is not allowed."""
    lo_allowed, hi_allowed = allowed or RENDER_FACTOR_RANGE
    if not lo_allowed <= default <= hi_allowed:
        raise RenderFactorError(f"Render factor {default} is outside the allowed range "
                                f"{lo_allowed}..{hi_allowed}; pick a value in that range (35 is typical).")
    lo = max(SLIDER_RANGE[0], lo_allowed)
    hi = min(SLIDER_RANGE[1], hi_allowed)
    return min(lo, default), max(hi, default)


def default_factory(name_or_path: str | None):
    """``Colorizer.from_pretrained(name_or_path)``: a registry name, an alias or a weights file."""
    from colorizer_lib.colorizer import Colorizer

    return Colorizer.from_pretrained(name_or_path)


class ColorizerCache:
    """Memoises ``factory(name)`` so switching back to a model does not reload it."""

    def __init__(self, factory: ColorizerFactory | None = None):
        self.factory = factory or default_factory
        self._loaded: dict[str | None, Any] = {}

    def get(self, name: str | None):
        """The colorizer for ``name`` (loaded on first use; errors propagate unchanged)."""
        if name not in self._loaded:
            self._loaded[name] = self.factory(name)
        return self._loaded[name]

    def is_loaded(self, name: str | None) -> bool:
        return name in self._loaded


def find_spec(name: str | None):
    """The registry's ``WeightSpec`` for a model name or alias, or None (a file path, or unknown)."""
    from colorizer_lib import registry

    if not name:
        return None
    try:
        return registry.get_spec(name)
    except WeightsError:
        return None


def model_options(selected: str | None = None) -> list[tuple[str, str]]:
    """Dropdown options ``(label, value)``: every registered model (value = its name) labelled with what it is
    good at (its record's ``summary``, else the start of its description), plus ``selected`` first when it is
    not a registered name or alias (e.g. a weights file path)."""
    from colorizer_lib import registry

    options = []
    for spec in registry.list_specs():
        text = getattr(spec, "summary", "") or spec.description
        options.append((f"{spec.name}: {_first_sentence(text, MODEL_LABEL_CHARS - len(spec.name) - 2)}", spec.name))
    if selected and find_spec(selected) is None:
        if Path(selected).expanduser().exists():
            label = f"{Path(selected).name} (file)"
        elif "+" in selected or "," in selected:  # an ensemble (colorizer_lib.ensemble; not imported: torch)
            label = f"{selected} (ensemble: the models' colours averaged)"
        else:
            label = selected
        options.insert(0, (label, selected))
    return options


def _first_sentence(text: str, limit: int = 70) -> str:
    """At most ``limit`` characters of a description: the part before its first ": ", without a
    parenthesis that does not fit, else cut at a word boundary (never inside a word)."""
    text = text.split(": ")[0] if len(text) > limit else text
    if len(text) > limit and " (" in text:
        text = text.split(" (")[0]
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;(")
    return cut + "…"


def embedded_model_name() -> str | None:
    """The name of the first registered model whose weights ship inside the package, or None."""
    from colorizer_lib import registry

    return next((spec.name for spec in registry.list_specs() if getattr(spec, "bundled", None)), None)


def model_value(selected: str | None) -> str | None:
    """The dropdown value for ``selected``: the canonical registry name for a name or alias,
    else ``selected`` unchanged (a file path)."""
    spec = find_spec(selected)
    return spec.name if spec is not None else selected


def render_factor_step(name: str | None) -> int:
    """The multiple a model's render factors must be (its record's ``render_factor_step``: 2 for DDColor, whose
    input side must be a multiple of 32 px); 1 for other models, files and unknown names."""
    spec = find_spec(name)
    return max(1, int(getattr(spec, "render_factor_step", 1) or 1)) if spec is not None else 1


def snap_render_factor(value: int, step: int, lo: int, hi: int) -> int:
    """``value`` moved up to the next multiple of ``step`` (down when that passes ``hi``), within ``lo..hi``."""
    if step <= 1:
        return value
    up = value + (-value) % step
    snapped = up if up <= hi else up - step
    return snapped if snapped >= lo else snapped + step


def spec_default_render_factor(name: str | None) -> int | None:
    """The registry's default render factor for a model name or alias, or None (files, unknown names)."""
    spec = find_spec(name)
    return int(spec.default_render_factor) if spec is not None else None


class ModelPicker:
    """The model dropdown and the render-factor slider, shared by both UIs.

    Choosing a registered model moves the slider to that model's default render factor, and makes it step by
    the model's ``render_factor_step`` (2 for DDColor: even render factors only).
    ``colorizer()`` returns the chosen model's colorizer (loaded once through ``cache``); a
    first-time weights download shows its progress bar in ``log`` (an Output widget).
    """

    def __init__(self, model: str | None, render_factor: int | None, cache: ColorizerCache, status: StatusLine):
        self.cache, self.status = cache, status
        self.log = W.Output()
        self.model = W.Dropdown(options=model_options(model), description="Model", style=LABEL_STYLE,
                                layout=W.Layout(width="560px"))
        model = model or embedded_model_name()
        if model:
            self.model.value = model_value(model)
        default_rf = int(render_factor) if render_factor else (spec_default_render_factor(self.model.value) or 35)
        self._bounds = slider_bounds(default_rf)
        lo, hi = self._bounds
        self.render_factor = W.IntSlider(value=default_rf, min=lo, max=hi, step=1, description="Render factor",
                                         continuous_update=False, style=LABEL_STYLE, layout=W.Layout(width="560px"))
        self.render_factor.add_class("colorizer-render-factor")
        self._fit_step(self.model.value, default_rf)
        self.model.observe(self._on_model_change, names="value")

    def _on_model_change(self, change) -> None:
        default = spec_default_render_factor(change["new"])
        self._fit_step(change["new"], self.render_factor.value if default is None else default)

    def _fit_step(self, name: str | None, wanted: int) -> None:
        """Set the slider's step for model ``name`` (its positions are then ``min + k * step``, so ``min`` is a
        multiple of the step too) and its value to ``wanted``, kept within the bounds and on a step."""
        step = render_factor_step(name)
        lo, hi = self._bounds
        lo = lo + (-lo) % step
        hi = hi - hi % step
        slider = self.render_factor
        value = snap_render_factor(max(lo, min(hi, int(wanted))), step, lo, hi)
        # widen first, then narrow: a value is never outside [min, max] on the way
        slider.min, slider.max = min(slider.min, lo), max(slider.max, hi)
        slider.step, slider.value = step, value
        slider.min, slider.max = lo, hi

    def colorizer(self):
        name = self.model.value
        clear(self.log)  # what an earlier load printed (a mirror failing...) is stale now
        if self.cache.is_loaded(name):
            return self.cache.get(name)
        spec = find_spec(name)
        downloads = spec is not None and not getattr(spec, "bundled", None)
        self.status.info(f"Loading model {name}" + (" (the first time downloads the weights)..." if downloads
                                                     else "..."))
        colorizer = call_in_output(self.log, self.cache.get, name)
        clear(self.log)
        return colorizer
