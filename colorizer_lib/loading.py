"""Choosing and loading weights: a model name, a weights file or nothing (the best available) -> the
verified state dict, its record and its architecture.

:func:`load_source` resolves a registered name (through :mod:`colorizer_lib.hub`: cache, mirrors,
download, verification) or loads a local file; :func:`load_default` picks the best available model;
:func:`identify_architecture` names the registered architecture a local file's tensors belong to.
:class:`colorizer_lib.colorizer.Colorizer` builds its model from what these return.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from . import hub
from .errors import ModelArgumentError, NotWeightsError, WeightsError
from .models import available_architectures, build_generator, expected_state
from .models.families import family_for_model
from .registry import WeightSpec, default_model_order, get_spec, ignored_keys, list_specs


# --------------------------------------------------------------------------------------------------
# architecture identification for local files


def identify_architecture(state_dict: dict[str, torch.Tensor], source: str, hint: str | None = None) -> str:
    """The registered architecture whose keys and shapes equal ``state_dict``'s.

    ``hint`` (e.g. the ``arch`` recorded in a safetensors file's metadata) is tried first.

    Raises:
        NotWeightsError: no architecture matches: the file given is no model Colorizer can run (bad
            usage); the message names the architectures it resembles, what differs, and what is expected.
    """
    candidates = available_architectures()
    if hint in candidates:
        candidates = [hint] + [a for a in candidates if a != hint]
    scored = []
    for arch in candidates:
        manifest = expected_state(arch)
        same = sum(1 for k, v in manifest.items() if k in state_dict and list(state_dict[k].shape) == v["shape"])
        if same == len(manifest) == len(state_dict):
            return arch
        scored.append((same / max(len(manifest), len(state_dict), 1), same, arch, manifest))
    scored.sort(key=lambda item: -item[0])
    resembles = [item for item in scored if item[1] > 0][:2]
    if resembles:
        _, same, arch, manifest = resembles[0]
        missing = [k for k in manifest if k not in state_dict]
        extra = [k for k in state_dict if k not in manifest]
        reshaped = [k for k in manifest if k in state_dict and list(state_dict[k].shape) != manifest[k]["shape"]]
        what = "; ".join(f"{label}: {_some(keys)}" for label, keys in
                         (("missing", missing), ("unexpected", extra), ("other shapes", reshaped)) if keys)
        also = "".join(f"; it also resembles {a} ({n} of {len(m)})" for _, n, a, m in resembles[1:])
        found = (f"resembles {arch} but is not it: {same} of its {len(manifest)} tensors match, and the file has "
                 f"{len(state_dict)} ({what}){also}")
    else:
        found = (f"holds {len(state_dict)} tensor(s) ({_some(list(state_dict))}) of which none has the name and "
                 f"shape of any Colorizer architecture's")
    models: dict[str, list[str]] = {}
    for spec in list_specs():
        models.setdefault(spec.arch, []).append(spec.name)
    expected = ", ".join(f"{a} ({'/'.join(models[a])})" if a in models else a for a in candidates)
    raise NotWeightsError(
        f"{source} is not the weights of a model Colorizer can run: it {found}. --model takes the weights of one of "
        f"these architectures: {expected}; for example DeOldify's ColorizeArtistic_gen.pth, ColorizeStable_gen.pth "
        f"or ColorizeVideo_gen.pth, DDColor's released checkpoints, or a model exported by `colorizer_lib.training`; "
        f"or a model name."
    )


def _some(keys: list[str], shown: int = 3) -> str:
    """The first ``shown`` of ``keys``, quoted, and how many more."""
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(repr(k) for k in keys[:shown]) + more


def safetensors_arch(path: Path) -> str | None:
    """The ``arch`` entry of a safetensors file's metadata (our exports write it), else None."""
    if path.suffix != ".safetensors":
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("arch")
    except Exception:  # unreadable metadata: fall back to matching shapes; load errors surface elsewhere
        return None


# --------------------------------------------------------------------------------------------------
# choosing weights


def load_source(name_or_path: str | Path, *, cache_dir, progress: bool
                 ) -> tuple[WeightSpec | None, dict[str, torch.Tensor], str]:
    """Load and verify the weights of a registered name or a file path: ``(spec or None, state dict, the
    file's path)``. A download is verified before it takes its name in the cache, and a cached file that
    fails verification is moved aside and downloaded again (:func:`colorizer_lib.hub.load_weights`)."""
    text = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or any(sep in text for sep in ("/", "\\")) or text.endswith(
        (".pth", ".pt", ".bin", ".safetensors"))
    if looks_like_path:
        path = Path(text).expanduser()
        if path.is_dir():
            raise ModelArgumentError(f"{path} is a folder, not a weights file. Pass the .pth or .safetensors file "
                                     f"itself, or a model name: {', '.join(s.name for s in list_specs())}.")
        if not path.is_file():
            raise ModelArgumentError(f"weights file {path} does not exist. Check the path, or use a model name: "
                                     f"{', '.join(s.name for s in list_specs())}.")
        # A file of unknown model may hold entries no model uses (ModelScope's DDColor: a legacy head).
        return None, hub.load_state_dict(path, drop_keys=ignored_keys()), str(path)
    spec = get_spec(text)
    expected = expected_state(spec.arch, spec.dtype)
    if spec.bundled is not None:
        if not spec.bundled.is_file():
            raise WeightsError(f"the bundled weights of {spec.name!r} are missing at {spec.bundled}; reinstall Colorizer.")
        return spec, hub.load_state_dict(spec.bundled, expected, sha256=spec.sha256), str(spec.bundled)
    state = hub.load_weights(with_mirrors(spec), expected, cache_dir=cache_dir, progress=progress)
    # the file that was loaded: the record's own, or one of its alternatives (ModelScope's copy of DDColor)
    return spec, state, str(hub.cache_dir(cache_dir) / hub.present_source(spec, cache_dir).filename)


MIRROR_ENV = "COLORIZER_MIRROR"


def with_mirrors(spec: WeightSpec) -> WeightSpec:
    """``spec`` with the base URLs listed in ``$COLORIZER_MIRROR`` (space separated) tried first.

    For air-gapped sites and classrooms: put the ``.pth`` files on any web server and point the
    variable at it; each mirror is asked for ``<base>/<spec.filename>``.
    """
    bases = os.environ.get(MIRROR_ENV, "").split()
    if not bases:
        return spec
    mirrors = tuple(f"{base.rstrip('/')}/{spec.filename}" for base in bases)
    return dataclasses.replace(spec, urls=mirrors + tuple(spec.urls))


def load_default(*, cache_dir=None, progress: bool = True, prefer: Sequence[str] | None = None
                  ) -> tuple[WeightSpec, dict[str, torch.Tensor], str]:
    """The model used when none is named, loaded as :func:`load_source` does: the first of ``prefer`` that
    is cached or can be downloaded and passes verification, else the embedded ``compact`` model, saying so
    in one line on stderr (with the first reason). ``prefer=None`` is the best available model
    (:func:`colorizer_lib.registry.default_model_order`: a cached DDColor-L first, else Artistic, Stable)."""
    if prefer is None:
        prefer = default_model_order(lambda spec: hub.is_cached(spec, cache_dir=cache_dir))
    specs = [get_spec(n) for n in prefer]
    specs.sort(key=lambda spec: not hub.is_cached(spec, cache_dir=cache_dir))  # cached ones first
    reasons = []
    for spec in specs:
        try:
            return load_source(spec.name, cache_dir=cache_dir, progress=progress)
        except WeightsError as exc:
            reasons.append(f"{spec.name}: {_summary(exc)}")
    fallback = next((s for s in list_specs() if s.bundled is not None), None)
    if fallback is None:
        raise WeightsError("no model could be downloaded and no embedded model is installed; "
                           "pass the path of a downloaded DeOldify .pth file.")
    print(f"colorizer: could not get verified {' or '.join(prefer)} weights ({reasons[0]}); using the embedded "
          f"'{fallback.name}' model. Download them later with `colorize models --download {prefer[0]}` for "
          f"richer colours.", file=sys.stderr)
    return load_source(fallback.name, cache_dir=cache_dir, progress=progress)


def _summary(exc: BaseException, limit: int = 240) -> str:
    """The first two lines of an error message (a download error's second line is its first mirror's reason),
    on one line, shortened to ``limit`` characters."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()][:2]
    text = " ".join(lines) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class LoadedModel:
    """A generator with its verified weights loaded, and what names it."""

    model: nn.Module
    name: str
    default_render_factor: int
    spec: WeightSpec | None
    source: str  # the weights file, named in errors


def load_model(name_or_path: str | Path | None, *, cache_dir=None, progress: bool = True,
               prefer: Sequence[str] | None = None) -> LoadedModel:
    """The generator of a registered name or a weights file (``None``: :func:`load_default`), built on the
    meta device and loaded strictly with the verified weights (no second copy of them). A local file's
    architecture is identified from its tensors (:func:`identify_architecture`); its name is the file's
    stem, its default render factor that of a registered model of the same architecture (else its
    family's: DeOldify 35, DDColor 32)."""
    if name_or_path is None:
        spec, state, source = load_default(cache_dir=cache_dir, progress=progress, prefer=prefer)
    else:
        spec, state, source = load_source(name_or_path, cache_dir=cache_dir, progress=progress)
    arch = spec.arch if spec is not None else identify_architecture(state, source,
                                                                    hint=safetensors_arch(Path(source)))
    with torch.device("meta"):
        model = build_generator(arch)
    model.load_state_dict(state, strict=True, assign=True)
    if spec is not None:
        return LoadedModel(model, spec.name, spec.default_render_factor, spec, source)
    match = next((s for s in list_specs() if s.arch == arch), None)
    rf = match.default_render_factor if match else family_for_model(model).default_render_factor
    return LoadedModel(model, Path(source).stem, rf, None, source)


__all__ = ["MIRROR_ENV", "LoadedModel", "identify_architecture", "load_model", "load_default", "load_source", "safetensors_arch", "with_mirrors"]
