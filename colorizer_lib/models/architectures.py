"""The table of generator architectures, by name, and the decorator that fills it.

``ARCHITECTURES`` maps an architecture name (the ``arch`` field of a weight record) to a zero-argument
constructor. Model modules register their constructors with :func:`register_architecture`; importing
:mod:`colorizer_lib.models` imports all of them, so the table is complete from then on.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import torch
from torch import nn

ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {}

Factory = TypeVar("Factory", bound=Callable[[], nn.Module])


def register_architecture(name: str) -> Callable[[Factory], Factory]:
    """Decorator: register a zero-argument generator constructor under ``name``.

    Raises:
        ValueError: ``name`` is already registered (two models would answer to one name).
    """

    def register(factory: Factory) -> Factory:
        if name in ARCHITECTURES:
            existing = ARCHITECTURES[name]
            raise ValueError(f"architecture {name!r} is already registered (by {existing.__module__}."
                             f"{existing.__qualname__}); give {factory.__module__}.{factory.__qualname__} "
                             f"another name.")
        ARCHITECTURES[name] = factory
        return factory

    return register


def available_architectures() -> list[str]:
    """Names of every registered architecture."""
    return sorted(ARCHITECTURES)


def build_generator(arch: str) -> nn.Module:
    """Build the generator ``arch`` with freshly initialised weights (load a state dict next)."""
    try:
        factory = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}") from None
    return factory()


@functools.lru_cache(maxsize=None)
def expected_state(arch: str, float_dtype: str = "float32") -> dict[str, dict[str, Any]]:
    """The (cached, read-only) state-dict manifest of ``arch`` (``{key: {"shape": [...], "dtype": "float32"}}``), built on
    the meta device so no memory or time is spent on weights. ``float_dtype`` is the storage type
    of floating tensors in the file (our own weights ship as float16)."""
    with torch.device("meta"):
        model = build_generator(arch)

    def dtype_name(t: torch.Tensor) -> str:
        return float_dtype if t.is_floating_point() else str(t.dtype).removeprefix("torch.")

    return {k: {"shape": list(v.shape), "dtype": dtype_name(v)} for k, v in model.state_dict().items()}
