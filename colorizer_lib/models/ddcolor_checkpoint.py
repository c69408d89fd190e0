"""Reading DDColor's released checkpoints into :class:`~colorizer_lib.models.ddcolor.DDColor`, strictly.

Released layouts (all float32 state dicts of the same keys; their records are in :mod:`colorizer_lib.registry`):

* Hugging Face ``PyTorchModelHubMixin`` repos (``piddnad/ddcolor_*``): ``pytorch_model.bin``
  (``torch.save(state_dict)``) or, from huggingface_hub 0.21 on, ``model.safetensors``;
* BasicSR training output and ModelScope's ``pytorch_model.pt``: ``{'params': state_dict}``, which
  may still carry ``encoder.arch.head_cls.{weight,bias}``, an unused classification head that
  DDColor's code dropped in 2023 (ModelScope's own model class still defines it);
* a bare ``state_dict`` file of any name.

Files load with ``weights_only=True`` (no code runs while reading), the wrapper and the dead head
are removed by :func:`ddcolor_checkpoint_filter`, keys are matched by name (the training code
wrote the colour decoder's entries in another order), and every key and shape is verified before
a strict load, so a wrong or truncated file is named instead of half-loaded (the original loads
with ``strict=False``, which hides such mistakes).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import VerificationError
from ..hub import load_checkpoint, state_dict_manifest, unwrap_checkpoint, verify_state_dict
from .ddcolor import DDColor

#: keys of the classification head that older DDColor code (and ModelScope's copy) saved (the registry's
#: ``DDCOLOR_LEGACY_KEYS``, which stays torch-free, is the same tuple; a test keeps them equal)
LEGACY_HEAD_KEYS = ("encoder.arch.head_cls.weight", "encoder.arch.head_cls.bias")
#: first-stage width of each encoder, read from ``encoder.arch.downsample_layers.0.0.weight``
_STEM_KEY = "encoder.arch.downsample_layers.0.0.weight"
_ENCODER_BY_STEM_WIDTH = {96: "convnext-t", 192: "convnext-l"}


def ddcolor_checkpoint_filter(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The model's state dict from a loaded checkpoint: unwraps ``{'params': ...}`` and drops the
    legacy ``head_cls`` keys. Raises ``VerificationError`` for anything that is not a dict of tensors."""
    checkpoint = unwrap_checkpoint(checkpoint)
    if not isinstance(checkpoint, Mapping) or not checkpoint:
        raise VerificationError(
            f"not a DDColor checkpoint: expected a state dict or {{'params': state_dict}}, found "
            f"{type(checkpoint).__name__ if not isinstance(checkpoint, Mapping) else 'an empty dict'}.")
    bad = [str(k) for k, v in checkpoint.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise VerificationError(
            f"not a DDColor checkpoint: {len(bad)} entries are not name -> tensor (e.g. {', '.join(bad[:3])}); "
            f"pass the released pytorch_model.bin / model.safetensors / pytorch_model.pt file.")
    return {k: v for k, v in checkpoint.items() if k not in LEGACY_HEAD_KEYS}


def read_ddcolor_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a released DDColor file (any layout above) on the CPU and return the filtered state dict.

    Torch zip files are memory-mapped and read with ``weights_only=True``; safetensors files and
    everything else go through :func:`colorizer_lib.hub.load_checkpoint` (which names HTML pages,
    empty and truncated files).
    """
    path = Path(path).expanduser()
    if path.is_file() and zipfile.is_zipfile(path):
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except pickle.UnpicklingError as exc:
            raise VerificationError(
                f"{path} holds pickled Python objects besides tensors, and loading it could run "
                f"arbitrary code; it is not a released DDColor file. Use the published "
                f"pytorch_model.bin / model.safetensors / pytorch_model.pt.") from exc
        except (RuntimeError, EOFError, OSError, ValueError) as exc:
            raise VerificationError(
                f"The weights file {path} is truncated or corrupt ({type(exc).__name__}). Delete it and "
                f"download it again.") from exc
    else:
        loaded = load_checkpoint(path)
    try:
        return ddcolor_checkpoint_filter(loaded)
    except VerificationError as exc:
        raise VerificationError(f"{path}: {exc}") from None


def encoder_name_of(state_dict: Mapping[str, torch.Tensor]) -> str:
    """``"convnext-t"`` or ``"convnext-l"``, from the stem's width; ``VerificationError`` otherwise."""
    stem = state_dict.get(_STEM_KEY)
    width = None if stem is None else int(stem.shape[0])
    if width not in _ENCODER_BY_STEM_WIDTH:
        raise VerificationError(
            f"not a DDColor checkpoint: {_STEM_KEY} is {'missing' if stem is None else tuple(stem.shape)}; "
            f"DDColor-T has 96 stem channels and DDColor-L 192.")
    return _ENCODER_BY_STEM_WIDTH[width]


def build_ddcolor(source: str | os.PathLike | Mapping[str, torch.Tensor], **config: Any) -> DDColor:
    """A DDColor in eval mode with the weights of ``source`` (a file path or a state dict), strictly loaded.

    ``config`` takes the constructor arguments of a Hugging Face ``config.json``; the encoder is
    read from the weights when not given. The model is built on the meta device and takes the
    loaded tensors over (no second copy of the ~0.9 GB of weights).
    """
    name = str(source) if isinstance(source, (str, os.PathLike)) else "the given state dict"
    state_dict = read_ddcolor_checkpoint(source) if isinstance(source, (str, os.PathLike)) \
        else ddcolor_checkpoint_filter(source)
    config.setdefault("encoder_name", encoder_name_of(state_dict))
    with torch.device("meta"):
        model = DDColor(**config)
    verify_state_dict(state_dict, state_dict_manifest(model.state_dict()), source=name)
    model.load_state_dict(state_dict, strict=True, assign=True)
    return model.eval()


__all__ = ["LEGACY_HEAD_KEYS", "build_ddcolor", "ddcolor_checkpoint_filter", "encoder_name_of",
           "read_ddcolor_checkpoint"]
