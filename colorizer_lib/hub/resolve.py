"""Where weights come from, decided in one fixed order (:func:`resolve_weights`): an explicit local
file, else the cache, else a download from each mirror in turn; :func:`load_weights` does the same and
returns the verified state dict, loading the file once.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from colorizer_lib.errors import DownloadError, ModelArgumentError, VerificationError, WeightsError
from .cache import CACHE_ENV_VAR, _cache_path, _resolve_cache_dir
from .checkpoint import load_state_dict, read_manifest
from .fetch import DEFAULT_RETRIES, DEFAULT_TIMEOUT_S, Verifier, _Failure, _download_locked, _first_sentence
from .records import _read_hash_record, file_sha256, hash_record_path, record_file_hash

if TYPE_CHECKING:  # torch is imported where tensors are loaded, so downloads start fast
    import torch


WEIGHT_SUFFIXES = (".pth", ".pt", ".pkl", ".bin", ".ckpt", ".safetensors")


class WeightSource(Protocol):
    """What :func:`resolve_weights` needs from a weights record (``registry.WeightSpec`` has it)."""

    name: str
    filename: str
    urls: Sequence[str]
    size: int | None
    sha256: str | None


# --------------------------------------------------------------------------------------------
# resolving a weights source


def _looks_like_path(text: str) -> bool:
    return (
        "/" in text
        or "\\" in text
        or text.startswith(("~", "."))
        or text.lower().endswith(WEIGHT_SUFFIXES)
    )


def _local_file(path_like: str | os.PathLike) -> Path:
    text = os.fspath(path_like)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise ModelArgumentError(
            f"{path} is a directory, not a weights file. Pass the path of the .pth or "
            f".safetensors file itself."
        )
    if isinstance(path_like, os.PathLike) or _looks_like_path(text):
        raise ModelArgumentError(
            f"Weights file not found: {path} (absolute: {path.absolute()}). Check the path, or "
            f"pass a model name to download the weights."
        )
    raise ModelArgumentError(
        f"{text!r} is neither an existing weights file nor a weights record. Pass the path of a "
        f"weights file, or a model name to Colorizer.from_pretrained / `colorize models`."
    )


def _spec_urls(spec: WeightSource) -> tuple[str, ...]:
    urls = spec.urls or ()
    return (urls,) if isinstance(urls, str) else tuple(urls)


def _alternatives(spec: WeightSource) -> tuple[WeightSource, ...]:
    """The record's other files of the same model (``alternatives``; records without the field have none)."""
    return tuple(getattr(spec, "alternatives", ()) or ())


def _file_cached(spec: WeightSource, cache_dir: str | os.PathLike | None) -> bool:
    path = _cache_path(cache_dir) / spec.filename
    if not path.is_file():
        return False
    return spec.size is None or path.stat().st_size == spec.size


def is_cached(spec: WeightSource, cache_dir: str | os.PathLike | None = None) -> bool:
    """True when ``cache_dir/<spec.filename>`` exists and has ``spec.size`` bytes (when known), or
    one of the record's ``alternatives`` is cached so.

    Creates nothing (a listing of models must not need a writable cache).
    """
    return any(_file_cached(record, cache_dir) for record in (spec, *_alternatives(spec)))


def present_source(spec: WeightSource, cache_dir: str | os.PathLike | None = None) -> WeightSource:
    """Which of the record's files is in the cache: the record itself when its file is there (or when
    no file is), else the first of its ``alternatives`` whose file is. Creates nothing."""
    cache = _cache_path(cache_dir)
    return next((record for record in (spec, *_alternatives(spec)) if (cache / record.filename).is_file()), spec)


def cache_status(spec: WeightSource, cache_dir: str | os.PathLike | None = None) -> str:
    """What ``colorize models`` says of ``cache_dir/<spec.filename>``, without reading the file:

    * ``"missing"``: no such file;
    * ``"verified"``: its sha256 record (written after a verified load) matches its size, and the
      file has not been modified since the record was written;
    * ``"unverified"``: no record yet (the file is verified, or moved aside and downloaded again,
      when it is first used);
    * ``"changed"``: not the file that was verified (another size or a later modification than its
      record, a size other than the published one, or an unreadable record): it fails
      verification when used, and is then moved aside and downloaded again.

    Creates nothing (a listing of models must not need a writable cache)."""
    path = _cache_path(cache_dir) / spec.filename
    if not path.is_file():
        return "missing"
    stat = path.stat()
    if spec.size is not None and stat.st_size != spec.size:
        return "changed"
    try:
        record = _read_hash_record(path)
        if record is None:
            return "unverified"
        recorded_at = hash_record_path(path).stat().st_mtime
    except (VerificationError, OSError):
        return "changed"
    return "verified" if record["size"] == stat.st_size and stat.st_mtime <= recorded_at else "changed"


def resolve_weights(
    spec_or_path: WeightSource | str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    expected: Mapping[str, Any] | str | os.PathLike | None = None,
) -> Path:
    """Return the local path of a weights file, downloading it into the cache when needed.

    Fixed order: a ``str``/``Path`` naming an existing file is returned as is (a missing path
    raises ``WeightsError``); for a weights record (anything with ``name``, ``filename``,
    ``urls``, ``size``, ``sha256``, such as ``registry.WeightSpec``) the cached file
    ``<cache_dir>/<filename>`` is used when present with the right size, else each URL is tried
    in turn (mirrors). When all fail, ``DownloadError`` lists every URL with its reason and the
    manual fix. A record with ``alternatives`` (other files of the same model, each a record of its
    own) uses whichever of its files is cached first, then tries each file's URLs in order; the
    entries a file's record lists in ``ignore_keys`` are dropped before verification.

    With a manifest (``expected``, else the record's ``manifest`` attribute when it has one, as
    ``registry.WeightSpec`` does), the file is verified too: a download must load with
    ``weights_only=True`` and match the manifest before it takes its final name, and a cached
    file that fails (a server's error message stored by an older version, a file damaged on
    disk) is moved aside (:func:`quarantine`, named on stderr) and downloaded again. That loads
    the file; :func:`load_weights` does the same and keeps what it loaded.
    """
    return _obtain(spec_or_path, cache_dir, progress, expected, keep=False)[0]


def _obtain(
    spec_or_path: WeightSource | str | os.PathLike,
    cache_dir: str | os.PathLike | None,
    progress: bool,
    expected: Mapping[str, Any] | str | os.PathLike | None,
    *,
    keep: bool,
) -> tuple[Path, dict[str, torch.Tensor] | None]:
    """:func:`resolve_weights`, returning ``(path, state dict)``: the state dict is the verified
    load when there was one (always with ``keep``), else None."""
    if isinstance(spec_or_path, (str, os.PathLike)):
        path = _local_file(spec_or_path)
        return path, (load_state_dict(path, expected) if keep else None)
    fields = ("name", "filename", "urls", "size", "sha256")
    missing = [name for name in fields if not hasattr(spec_or_path, name)]
    if missing:
        raise TypeError(
            f"resolve_weights expects a path or a weights record with name, filename, urls, size "
            f"and sha256; got {type(spec_or_path).__name__} without {', '.join(missing)}."
        )
    spec = spec_or_path
    if expected is None:
        expected = getattr(spec, "manifest", None)
    manifest = read_manifest(expected) if isinstance(expected, (str, os.PathLike)) else expected
    alternatives = _alternatives(spec)
    if not alternatives:
        return _obtain_file(spec, cache_dir, progress, manifest, keep=keep)
    # another file of the same model: a cached one before any download, then each record's URLs in order
    records = sorted((spec, *alternatives), key=lambda record: not _file_cached(record, cache_dir))
    failures: list[WeightsError] = []
    for record in records:
        try:
            return _obtain_file(record, cache_dir, progress, manifest, keep=keep)
        except WeightsError as exc:  # DownloadError, or a VerificationError of a file with no address
            failures.append(exc)
            if progress and len(failures) < len(records):
                print(f"{record.name}: {_first_line(exc)}; trying its next source ...", file=sys.stderr)
    lines = "\n".join(f"  * {record.name} ({record.filename}): {str(exc).strip()}"
                      for record, exc in zip(records, failures))
    raise DownloadError(
        f"Could not get the weights {spec.name!r} from any of its {len(records)} files:\n{lines}"
    ) from failures[-1]


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _obtain_file(
    spec: WeightSource,
    cache_dir: str | os.PathLike | None,
    progress: bool,
    manifest: Mapping[str, Any] | None,
    *,
    keep: bool,
) -> tuple[Path, dict[str, torch.Tensor] | None]:
    """:func:`_obtain` for one file of a record: the cache, else each of its URLs (mirrors) in turn."""
    drop_keys = tuple(getattr(spec, "ignore_keys", ()) or ())
    target = _resolve_cache_dir(cache_dir) / spec.filename
    verify: Verifier | None = None
    if manifest is not None or keep:

        def verify(path: Path) -> dict[str, torch.Tensor]:
            # a download's checksum was checked by _check_part; the cached file's is checked here
            return load_state_dict(path, manifest, sha256=spec.sha256 if path == target else None,
                                   drop_keys=drop_keys)

    cached_failure: VerificationError | None = None
    if _file_cached(spec, target.parent):
        if verify is None:
            return target, None
        try:
            return target, _loaded_and_recorded(target, verify(target), spec.sha256)
        except VerificationError as exc:
            cached_failure = exc  # moved aside and downloaded again below, under the lock
    urls = _spec_urls(spec)
    failures: list[tuple[str, _Failure]] = []
    for url in urls:
        try:
            path, state = _download_locked(
                url,
                target,
                expected_size=spec.size,
                expected_sha256=spec.sha256,
                timeout=DEFAULT_TIMEOUT_S,
                progress=progress,
                retries=DEFAULT_RETRIES,
                verify=verify,
            )
            return path, (None if state is None else _loaded_and_recorded(path, state, spec.sha256))
        except _Failure as failure:
            failures.append((url, failure))
            if progress and len(failures) < len(urls):
                print(f"{url}: {failure.reason}; trying the next mirror ...", file=sys.stderr)
    if not urls:
        if cached_failure is not None:
            raise cached_failure
        raise DownloadError(
            f"No download address is known for the weights {spec.name!r} ({spec.filename}). "
            f"Put the file at {target} or pass its local path."
        )
    lines = "\n".join(
        f"  - {url}: {failure.reason}." + (f" {failure.hint}" if failure.hint else "")
        for url, failure in failures
    )
    before = ""
    if cached_failure is not None:
        aside = target.with_name(target.name + ".rejected")
        before = (
            f"The cached file failed verification ({_first_sentence(cached_failure, target, aside)}) "
            f"and was moved aside to {aside}. "
        )
    raise DownloadError(
        f"{before}Could not download the weights {spec.name!r} ({spec.filename}) from any of its "
        f"{len(urls)} address(es):\n{lines}\n"
        f"Fix: download {spec.filename} by hand from one of these addresses (for example in a "
        f"browser) and pass its local path instead of the model name, or save it as {target} "
        f"(weights cache directory: {target.parent}; set {CACHE_ENV_VAR} to use another)."
    )


def _loaded_and_recorded(
    path: Path, state: dict[str, torch.Tensor], known_sha256: str | None
) -> dict[str, torch.Tensor]:
    """``state`` (just verified from ``path``), after writing ``path``'s sha256 record when it has
    none yet: later loads then detect changes on disk (when there is no published checksum), and
    :func:`cache_status` can tell a verified file without reading it."""
    if not hash_record_path(path).exists():
        with contextlib.suppress(OSError):  # a read-only cache still works, unrecorded
            record_file_hash(path, known_sha256 or file_sha256(path))
    return state


def load_weights(
    spec_or_path: WeightSource | str | os.PathLike,
    expected: Mapping[str, Any] | str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """Resolve (:func:`resolve_weights`), check and load weights in one call; return the state dict.

    ``expected`` defaults to the record's ``manifest`` attribute (a manifest path or mapping)
    when it has one. The record's ``sha256`` is checked when known; otherwise a file in the
    cache gets a ``.sha256`` record after its first verified load and is checked against it on
    later loads. A download is verified before it takes its final name, and a cached file that
    fails verification is moved aside and downloaded again (:func:`resolve_weights`); the file is
    loaded once. Explicit local files are verified but never get a record written next to them.
    """
    state = _obtain(spec_or_path, cache_dir, progress, expected, keep=True)[1]
    assert state is not None
    return state
