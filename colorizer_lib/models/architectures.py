"""The table of generator architectures, by name, and the decorator that fills it.

``ARCHITECTURES`` maps an architecture name (the ``arch`` field of a weight record) to a zero-argument
constructor. Model modules register their constructors with :func:`register_architecture`; importing
:mod:`colorizer_lib.models` imports all of them, so the table is complete from then on.
"""

from __future__ import annotations

from typing import Callable, TypeVar

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
