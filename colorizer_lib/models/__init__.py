"""Generator architectures, by name.

``ARCHITECTURES`` maps an architecture name (the ``arch`` field of a weight record) to a zero-argument
constructor (:mod:`.architectures`); each model module registers its own with
``@register_architecture("name")``, and importing this package imports them all.
"""

from __future__ import annotations

from . import compact, ddcolor, deoldify  # noqa: F401  (each registers its architectures)
from .architectures import ARCHITECTURES, available_architectures, build_generator, expected_state, register_architecture
from .deoldify import DeOldifyUnet

__all__ = ["ARCHITECTURES", "DeOldifyUnet", "available_architectures", "build_generator", "expected_state",
           "register_architecture"]
