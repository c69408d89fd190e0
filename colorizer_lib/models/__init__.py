"""Generator architectures, by name.

``ARCHITECTURES`` maps an architecture name (the ``arch`` field of a weight record) to a zero-argument
constructor. Architectures that other modules add (our compact model) register themselves here.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from .deoldify import DeOldifyUnet, deoldify_artistic, deoldify_wide

ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "deoldify-deep-resnet34": deoldify_artistic,
    "deoldify-wide-resnet101": deoldify_wide,
}


def register_architecture(name: str, factory: Callable[[], nn.Module]) -> None:
    """Add an architecture under ``name`` (used by optional model modules)."""
    ARCHITECTURES[name] = factory


def available_architectures() -> list[str]:
    """Names of every architecture, the optional ones included."""
    _load_optional_architectures()
    return sorted(ARCHITECTURES)


def build_generator(arch: str) -> nn.Module:
    """Build the generator ``arch`` with freshly initialised weights (load a state dict next)."""
    _load_optional_architectures()
    try:
        factory = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}") from None
    return factory()


def _load_optional_architectures() -> None:
    """Import model modules that register themselves (kept lazy so a missing one never breaks the rest)."""
    try:
        from . import compact  # noqa: F401  (registers "compact-*")
    except ImportError:
        pass
    from . import ddcolor  # noqa: F401  (registers "ddcolor-large", "ddcolor-tiny"; plain torch)


__all__ = ["ARCHITECTURES", "DeOldifyUnet", "available_architectures", "build_generator", "register_architecture"]


def _tiny_deep():
    """DeOldify's deep U-Net on a tiny 4-stage ResNet (the shape of the numerical reference fixture).

    Random-weight instances of it make fast stand-ins for tests, demos and notebook smoke runs.
    """
    from .resnet import ResNetConfig

    return DeOldifyUnet(ResNetConfig("basic", (1, 1, 1, 1), 8, (8, 16, 32, 64)), "deep", 0.75)


ARCHITECTURES["deoldify-deep-tiny"] = _tiny_deep
