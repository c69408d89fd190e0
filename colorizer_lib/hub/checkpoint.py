"""Loading and verifying state dicts: ``weights_only=True`` always, fastai ``{'model', 'opt'}`` and BasicSR
``{'params'}`` wrappers unwrapped, keys/shapes/dtypes checked against a manifest; every error names the file
and the fix.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colorizer_lib.errors import NotWeightsError, VerificationError, WeightsError
from .records import file_sha256, record_file_hash, verified_file_hash

if TYPE_CHECKING:  # torch is imported where tensors are loaded, so downloads start fast
    import torch


_HTML_PREFIXES = (b"<!doctype", b"<html", b"<head", b"<?xml")


def _looks_like_html(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").lower().startswith(_HTML_PREFIXES)


# --------------------------------------------------------------------------------------------
# loading and verifying state dicts


def _corrupt(path: Path, exc: BaseException) -> VerificationError:
    lines = str(exc).strip().splitlines()
    if "weights_only" in str(exc):  # torch's advice to load unsafely: never passed on
        detail = f"{type(exc).__name__}: torch's safe loader cannot read it"
    else:
        detail = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return VerificationError(
        f"The weights file {path} is truncated or corrupt ({detail}). Delete it and download it "
        f"again (an interrupted download or a full disk are the usual causes)."
    )


def _text_start(head: bytes) -> str | None:
    """The first line of ``head`` when the file is text (UTF-8, no control characters but
    whitespace), else None. Weights files (zip, pickle, safetensors) never are."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # a character cut at the end of the head is still text
            return None
        text = head[: exc.start].decode("utf-8")
    if not text.strip() or any(ord(c) < 32 and c not in "\t\r\n\f" for c in text):
        return None
    first = text.strip().splitlines()[0]
    return first if len(first) <= 80 else first[:77] + "..."


def _not_weights_text(path: Path, first_line: str) -> NotWeightsError:
    return NotWeightsError(
        f"{path} is a text file, not a weights file (it begins {first_line!r}). A server's error "
        f"message saved in place of the weights looks like this, or the wrong file was given. "
        f"Pass the path of a .pth or .safetensors weights file, or a model name; delete the file "
        f"if it is a broken download."
    )


def _old_pickle(path: Path) -> NotWeightsError:
    return NotWeightsError(
        f"{path} is a plain Python pickle (an old format, not torch's tensor format), which "
        f"Colorizer refuses to load: unpickling it could run code hidden in it. If you trust its "
        f"source, convert it once where running code can do no harm (a throwaway container or "
        f"virtual machine): load it there with the tool that wrote it and save its tensors with "
        f"torch.save(state_dict, 'model.pth') or safetensors' save_file; the converted file "
        f"loads here safely."
    )


def _is_safetensors(path: Path, head: bytes) -> bool:
    if path.suffix.lower() == ".safetensors":
        return True
    # safetensors: 8-byte little-endian header length, then a JSON object
    return len(head) > 9 and head[8:9] == b"{" and not head.startswith(b"PK")


_WRAPPERS = (
    ({"model", "opt"}, "model"),  # fastai's Learner.save: {'model': state_dict, 'opt': optimizer state}
    ({"params"}, "params"),  # BasicSR's training output and ModelScope's copies (DDColor's pytorch_model.pt)
    ({"params", "params_ema"}, "params"),  # BasicSR with an EMA copy: 'params' is the one its inference loads
)


def unwrap_checkpoint(loaded: Any) -> Any:
    """The state dict inside a known training wrapper (fastai ``{'model', 'opt'}``, BasicSR / ModelScope
    ``{'params'[, 'params_ema']}``, recognised by their exact top-level keys); anything else as it is."""
    if isinstance(loaded, Mapping):
        keys = set(loaded.keys())
        for wrapper_keys, inner in _WRAPPERS:
            if keys == wrapper_keys and isinstance(loaded[inner], Mapping):
                return loaded[inner]
    return loaded


def load_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state dict from a ``.pth``/``.pt`` (torch) or ``.safetensors`` file, on the CPU.

    Torch files load with ``weights_only=True`` (Python ``slice`` allowed, as in fastai's saved
    learning rates); fastai's ``{'model': state_dict, 'opt': ...}`` and BasicSR's ``{'params': ...}``
    wrappers are unwrapped (:func:`unwrap_checkpoint`).
    Returns ``{name: Tensor}`` in file order (safetensors files store names sorted). Raises
    ``VerificationError`` naming the file for an HTML page saved as weights, a truncated or
    corrupt file, a pickle with objects other than tensors, or anything that is not a non-empty
    dict of tensors; ``WeightsError`` when the file does not exist.
    """
    import torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"Weights file not found: {path}. Check the path or download it again.")
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head:
        raise VerificationError(
            f"The weights file {path} is empty (0 bytes): the download did not complete. "
            f"Delete it and download it again."
        )
    if _looks_like_html(head):
        raise NotWeightsError(
            f"{path} is a web page (HTML), not a weights file: the download link returned a page "
            f"(an expired Dropbox/Google Drive link, a login or an error page) instead of the "
            f"file. Delete it and download the weights again from a working link."
        )
    if _is_safetensors(path, head):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            loaded: Any = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise _corrupt(path, exc) from exc
    else:
        first_line = _text_start(head)
        if first_line is not None:
            raise _not_weights_text(path, first_line)
        try:
            with torch.serialization.safe_globals([slice]), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Detected pickle protocol")  # we say what it is
                loaded = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            text = str(exc).lower()
            if "weights only load failed" in text and "unsupported global" in text:
                raise NotWeightsError(
                    f"{path} holds pickled Python objects, not just tensors (for example a whole "
                    f"model or fastai Learner), and loading it could run arbitrary code. Save the "
                    f"model's state_dict() instead (torch.save(model.state_dict(), path))."
                ) from exc
            if "weights only load failed" in text and head[:1] == b"\x80":
                raise _old_pickle(path) from exc  # a pickle stream the safe loader refuses
            raise _corrupt(path, exc) from exc
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the safe loader: not loadable weights
            # (zip and EOF errors for truncated files; IndexError, KeyError... for other bytes)
            raise _corrupt(path, exc) from exc
    loaded = unwrap_checkpoint(loaded)
    if not isinstance(loaded, Mapping) or not loaded:
        kind = type(loaded).__name__ if not isinstance(loaded, Mapping) else "an empty dict"
        raise VerificationError(
            f"{path} does not contain a state dict (found {kind}). Expected a dict of parameter "
            f"names to tensors, as written by torch.save(model.state_dict(), path)."
        )
    bad = [
        f"{key!r} ({type(value).__name__})"
        for key, value in loaded.items()
        if not isinstance(key, str) or not isinstance(value, torch.Tensor)
    ]
    if bad:
        raise VerificationError(
            f"{path} is not a state dict of tensors: {len(bad)} entries are not "
            f"name -> tensor, e.g. {', '.join(bad[:3])}. Pass a file written by "
            f"torch.save(model.state_dict(), path)."
        )
    return dict(loaded)


def read_manifest(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read a state-dict manifest JSON: either ``{"state_dict": {...}, ...}`` or the mapping itself.

    Returns ``{key: {"shape": [ints], "dtype": "float32"}}``. Raises ``WeightsError`` when the
    file is missing or malformed.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"Cannot read the state-dict manifest {path}: {exc}.") from exc
    entries = data.get("state_dict", data) if isinstance(data, dict) else None
    if not isinstance(entries, dict) or not all(
        isinstance(v, dict) and "shape" in v and "dtype" in v for v in entries.values()
    ):
        raise WeightsError(
            f"{path} is not a state-dict manifest: expected {{key: {{'shape': [...], "
            f"'dtype': 'float32'}}}}, optionally under a 'state_dict' entry."
        )
    return entries


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def state_dict_manifest(state_dict: Mapping[str, torch.Tensor]) -> dict[str, dict[str, Any]]:
    """The manifest of a state dict: ``{key: {"shape": [...], "dtype": "float32"}}`` in order."""
    return {
        key: {"shape": list(tensor.shape), "dtype": _dtype_name(tensor.dtype)}
        for key, tensor in state_dict.items()
    }


def _first(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def verify_state_dict(
    sd: Mapping[str, torch.Tensor],
    manifest: Mapping[str, Mapping[str, Any]],
    *,
    source: str,
) -> None:
    """Check a state dict's keys, shapes and dtypes against a manifest; return None when they match.

    ``manifest``: ``{key: {"shape": [ints], "dtype": "float32"}}`` (the ``"state_dict"`` entry
    of a manifest file; a whole manifest file's dict with that entry is accepted too).
    ``source``: the file (or other origin) named in the error. Raises ``VerificationError``
    listing how many keys match and the first few missing, unexpected, mis-shaped and
    mis-typed keys.
    """
    if "state_dict" in manifest and isinstance(manifest["state_dict"], Mapping):
        manifest = manifest["state_dict"]
    missing = [key for key in manifest if key not in sd]
    unexpected = [key for key in sd if key not in manifest]
    wrong_shape: list[str] = []
    wrong_dtype: list[str] = []
    for key, want in manifest.items():
        if key not in sd:
            continue
        tensor = sd[key]
        if list(tensor.shape) != list(want["shape"]):
            wrong_shape.append(f"{key} {list(tensor.shape)} (expected {list(want['shape'])})")
        elif _dtype_name(tensor.dtype) != want["dtype"]:
            wrong_dtype.append(f"{key} {_dtype_name(tensor.dtype)} (expected {want['dtype']})")
    if not (missing or unexpected or wrong_shape or wrong_dtype):
        return
    total = len(manifest)
    matching = total - len(missing) - len(wrong_shape) - len(wrong_dtype)
    if matching < total / 2 or wrong_shape:
        verdict = (
            f"this looks like the weights of a different model ({matching} of {total} expected "
            f"keys match in name, shape and dtype; the file has {len(sd)} entries)"
        )
        fix = "Check that the file belongs to the model you chose, or pick the model it belongs to."
    elif wrong_dtype and not (missing or unexpected):
        verdict = f"the weights are stored in another precision ({matching} of {total} keys match)"
        fix = "Use the float32 file published for this model, or convert it with .float() first."
    else:
        verdict = (
            f"the file is incomplete or from another version of the model ({matching} of {total} "
            f"expected keys match)"
        )
        fix = "Delete it and download it again, or check that it is this model's published file."
    details = []
    if missing:
        details.append(f"missing {len(missing)}: {_first(missing)}")
    if unexpected:
        details.append(f"unexpected {len(unexpected)}: {_first(unexpected)}")
    if wrong_shape:
        details.append(f"wrong shape {len(wrong_shape)}: {_first(wrong_shape, 3)}")
    if wrong_dtype:
        details.append(f"wrong dtype {len(wrong_dtype)}: {_first(wrong_dtype, 3)}")
    raise VerificationError(f"{source}: {verdict}. {'; '.join(details)}. {fix}")


def load_state_dict(
    path: str | os.PathLike,
    expected: Mapping[str, Any] | str | os.PathLike | None = None,
    *,
    sha256: str | None = None,
    record_hash: bool = False,
    drop_keys: Sequence[str] = (),
) -> dict[str, torch.Tensor]:
    """Load and verify a weights file; return ``{name: Tensor}`` on the CPU.

    1. Checksum (:func:`verified_file_hash`): against ``sha256`` when given, else against the
       file's ``.sha256`` record when one exists.
    2. :func:`load_checkpoint`, then the entries named in ``drop_keys`` (ones the file may hold
       that the model does not use: a record's ``ignore_keys``) are removed, then
       :func:`verify_state_dict` when ``expected`` (a manifest mapping, or the path of a manifest
       JSON) is given.
    3. With ``record_hash=True``, a file that passed without a known checksum gets its
       ``.sha256`` record (so that later loads detect changes on disk).

    Raises ``VerificationError`` (or ``WeightsError`` for a missing file) naming the file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"Weights file not found: {path}. Check the path or download it again.")
    digest = verified_file_hash(path, sha256)
    state_dict = load_checkpoint(path)
    for key in drop_keys:
        state_dict.pop(key, None)
    if expected is not None:
        manifest = (
            read_manifest(expected) if isinstance(expected, (str, os.PathLike)) else expected
        )
        verify_state_dict(state_dict, manifest, source=str(path))
    if record_hash and digest is None:
        record_file_hash(path, file_sha256(path))
    return state_dict
