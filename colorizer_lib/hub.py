"""Weights: cache directory, download (HTTP with resume, Google Drive), loading and verification.

One function decides where weights come from, in a fixed order (:func:`resolve_weights`):
an explicit local file, else the cache, else a download from each mirror in turn. Loading
(:func:`load_checkpoint`, :func:`load_state_dict`, :func:`load_weights`) is always
``weights_only=True`` and always verified; every error names the file and what to do next.

Files this module writes in the cache directory, for a weights file ``<name>``:

- ``<name>``: the finished, verified download (renamed into place atomically, and only after it
  loaded with ``weights_only=True`` and matched its manifest when the record has one);
- ``<name>.part``: an unfinished download, resumed with an HTTP ``Range`` request by the next
  attempt. It is kept after network failures and deleted when its content is known to be wrong
  (checksum or size mismatch, web page instead of weights);
- ``<name>.rejected``: the last file that failed verification (a download that is not these
  weights, or a cached file that stopped verifying), moved aside for inspection and named in the
  message; the next one replaces it, so at most one per weights file;
- ``<name>.lock``: the inter-process lock held while a download runs (:func:`cache_lock`); it is
  removed when released, so none stays behind after a failed download;
- ``<name>.sha256``: a small JSON record of the file's sha256, written after the first
  successful verified load of a file that has no published checksum, and checked on later loads.

HTTP uses only the standard library (``urllib``); Google Drive links go through ``gdown``,
imported only when such a link is used.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import os
import pickle
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import filelock
from tqdm.auto import tqdm

from .constants import __version__
from colorizer_lib.errors import (
    DownloadError,
    ModelArgumentError,
    NotWeightsError,
    VerificationError,
    WeightsError,
)

try:  # POSIX: locks whose file is removed on release (see cache_lock)
    import fcntl
except ImportError:  # Windows: filelock, which removes its file on release there
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:  # torch is imported where tensors are loaded, so downloads start fast
    import torch

__all__ = [
    "CACHE_ENV_VAR",
    "WeightSource",
    "cache_dir",
    "cache_path",
    "default_cache_dir",
    "normalize_url",
    "google_drive_file_id",
    "download",
    "resolve_weights",
    "is_cached",
    "cache_status",
    "file_sha256",
    "hash_record_path",
    "verified_file_hash",
    "record_file_hash",
    "load_checkpoint",
    "read_manifest",
    "state_dict_manifest",
    "verify_state_dict",
    "load_state_dict",
    "load_weights",
    "cache_lock",
    "quarantine",
]

CACHE_ENV_VAR = "COLORIZER_CACHE"
"""Environment variable that overrides the platform's default cache directory."""

CHUNK_SIZE = 1 << 18  # bytes per read / hash update
RETRY_DELAY_S = 0.5  # first pause before a retry; doubles per retry, capped at RETRY_DELAY_MAX_S
RETRY_DELAY_MAX_S = 8.0
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 3
RETRYABLE_HTTP_STATUS = frozenset({408, 429, 500, 502, 503, 504})
WEIGHT_SUFFIXES = (".pth", ".pt", ".pkl", ".bin", ".ckpt", ".safetensors")
USER_AGENT = f"colorizer/{__version__} (python-urllib)"

_HTML_PREFIXES = (b"<!doctype", b"<html", b"<head", b"<?xml")
_GDRIVE_HOSTS = frozenset({"drive.google.com", "docs.google.com", "drive.usercontent.google.com"})
_DROPBOX_HOSTS = frozenset({"dropbox.com", "www.dropbox.com"})


class WeightSource(Protocol):
    """What :func:`resolve_weights` needs from a weights record (``registry.WeightSpec`` has it)."""

    name: str
    filename: str
    urls: Sequence[str]
    size: int | None
    sha256: str | None


# --------------------------------------------------------------------------------------------
# cache directory


def default_cache_dir(
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Path:
    """The platform's cache directory for colorizer (not created).

    Linux and others: ``$XDG_CACHE_HOME/colorizer`` (when set to an absolute path), else
    ``~/.cache/colorizer``; macOS: ``~/Library/Caches/colorizer``; Windows:
    ``%LOCALAPPDATA%\\colorizer\\Cache`` (else ``~\\AppData\\Local\\colorizer\\Cache``).
    ``platform`` (a ``sys.platform`` value), ``environ`` and ``home`` default to this machine's.
    """
    platform = sys.platform if platform is None else platform
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else Path(home)
    if platform == "darwin":
        return home / "Library" / "Caches" / "colorizer"
    if platform.startswith("win") or platform == "cygwin":
        local = environ.get("LOCALAPPDATA")
        base = Path(local) if local else home / "AppData" / "Local"
        return base / "colorizer" / "Cache"
    xdg = environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".cache"
    return base / "colorizer"


def _cache_path(explicit: str | os.PathLike | None) -> Path:
    """The cache directory by precedence (argument > environment > default), not created."""
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser()
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    return default_cache_dir()


def _resolve_cache_dir(explicit: str | os.PathLike | None) -> Path:
    """:func:`_cache_path`, created on demand; ``WeightsError`` when that is impossible."""
    path = _cache_path(explicit)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(
            f"Cannot create the weights cache directory {path}: {exc}. Choose a writable folder "
            f"with the {CACHE_ENV_VAR} environment variable or the cache_dir argument."
        ) from exc
    if not path.is_dir():
        raise WeightsError(
            f"The weights cache path {path} exists but is not a directory. Remove it, or choose "
            f"another folder with {CACHE_ENV_VAR} or the cache_dir argument."
        )
    return path


def cache_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """The weights cache directory that :func:`cache_dir` would use, without creating it."""
    return _cache_path(cache_dir)


def cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the weights cache directory, creating it on demand.

    Precedence: the ``cache_dir`` argument, else the ``COLORIZER_CACHE`` environment variable,
    else :func:`default_cache_dir`. ``~`` is expanded. Raises ``WeightsError`` when the
    directory cannot be created.
    """
    return _resolve_cache_dir(cache_dir)


# --------------------------------------------------------------------------------------------
# URLs


def google_drive_file_id(url: str) -> str | None:
    """The file id of a Google Drive link, or None when ``url`` is not a Google Drive file link.

    Recognised: ``drive.google.com/file/d/<id>/...``, ``drive.google.com/open?id=<id>``,
    ``drive.google.com/uc?id=<id>`` (with or without ``export=download``), and the same on
    ``docs.google.com`` / ``drive.usercontent.google.com``.
    """
    parts = urllib.parse.urlsplit(url.strip())
    if parts.hostname not in _GDRIVE_HOSTS:
        return None
    match = re.search(r"/file/d/([A-Za-z0-9_-]+)", parts.path)
    if match:
        return match.group(1)
    ids = urllib.parse.parse_qs(parts.query).get("id")
    if ids and re.fullmatch(r"[A-Za-z0-9_-]+", ids[0]):
        return ids[0]
    return None


def normalize_url(url: str) -> str:
    """Rewrite share links into direct-download links; other URLs come back unchanged.

    - Dropbox share links (``www.dropbox.com/s/<key>/<name>?dl=0``, ``/scl/fi/...&rlkey=...``,
      or no ``dl`` at all) become ``https://www.dropbox.com/...?...&dl=1`` (other query
      parameters such as ``rlkey`` are kept).
    - Google Drive file links become ``https://drive.google.com/uc?id=<id>`` (downloaded with
      gdown by :func:`download`).
    """
    url = url.strip()
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    if host in _DROPBOX_HOSTS:
        query = [
            (key, value)
            for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
            if key not in ("dl", "raw")
        ]
        query.append(("dl", "1"))
        return urllib.parse.urlunsplit(
            ("https", "www.dropbox.com", parts.path, urllib.parse.urlencode(query), "")
        )
    file_id = google_drive_file_id(url)
    if file_id is not None:
        return f"https://drive.google.com/uc?id={file_id}"
    return url


# --------------------------------------------------------------------------------------------
# download


class _Failure(Exception):
    """Why one download attempt from one URL failed (internal; surfaced as DownloadError).

    ``reason``: a short statement of what happened; ``hint``: what the user can do about it;
    ``retry``: whether trying the same URL again (resuming) may help.
    """

    def __init__(self, reason: str, hint: str = "", retry: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint
        self.retry = retry

    def __str__(self) -> str:
        return self.reason


def _part_path(dest: Path) -> Path:
    return dest.with_suffix(dest.suffix + ".part")


def _lock_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".lock")


def _manual_fix(url: str, dest: Path) -> str:
    return (
        f"Download the file by hand (for example in a browser) from {url}, then either pass its "
        f"local path instead of the model name, or save it as {dest} (the weights cache "
        f"directory is {dest.parent})."
    )


def _looks_like_html(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").lower().startswith(_HTML_PREFIXES)


def _html_failure(detail: str) -> _Failure:
    return _Failure(
        f"the link gives a web page, not the weights file ({detail})",
        hint=(
            "Share links expire or start asking for a login or a virus-scan confirmation "
            "(Dropbox, Google Drive): open the link in a browser to check it, or use another "
            "mirror."
        ),
    )


def _describe_os_error(exc: BaseException, url: str, timeout: float) -> _Failure:
    """Map a socket-level error to a _Failure (no network, refused, timeout, reset...)."""
    host = urllib.parse.urlsplit(url).hostname
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return _Failure(f"the server did not answer within {timeout:g} s (timed out)", retry=False)
    if isinstance(exc, socket.gaierror):
        return _Failure(
            f"cannot resolve the host name {host!r} (no network connection, or DNS failure)",
            hint="Check your internet connection.",
        )
    if isinstance(exc, ConnectionRefusedError):
        return _Failure(
            f"connection refused by {host} (no server there, or no network access)",
            hint="Check your internet connection and proxy settings.",
        )
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return _Failure(f"the connection was dropped ({exc})", retry=True)
    return _Failure(f"network error: {exc}", hint="Check your internet connection.", retry=True)


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from a ``Content-Range`` header; None for what is absent."""
    if not header:
        return None, None
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", header)
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def _http_attempt(
    url: str,
    part: Path,
    *,
    expected_size: int | None,
    timeout: float,
    progress: bool,
    desc: str,
) -> None:
    """One HTTP request that appends to ``part`` (resuming from its size) until the body ends.

    Returns when the server's body has been received completely (``part`` then holds the whole
    file as far as the server says). Raises ``_Failure`` otherwise; ``part`` keeps what arrived.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        with exc:
            if exc.code == 416 and offset:
                _, total = _content_range(exc.headers.get("Content-Range"))
                if total == offset:
                    return  # the .part already holds the whole file
                part.unlink(missing_ok=True)  # larger than the file, or another file: restart
                return _http_attempt(
                    url, part, expected_size=expected_size, timeout=timeout, progress=progress,
                    desc=desc,
                )
            raise _Failure(
                f"HTTP {exc.code} {exc.reason}",
                hint=(
                    "The file is not at this address (moved or deleted)."
                    if exc.code in (404, 410)
                    else "The server refused the request; try again later or use another mirror."
                ),
                retry=exc.code in RETRYABLE_HTTP_STATUS,
            ) from exc
    except urllib.error.URLError as exc:
        reason = exc.reason if isinstance(exc.reason, BaseException) else OSError(str(exc.reason))
        raise _describe_os_error(reason, url, timeout) from exc
    except OSError as exc:  # timeout while waiting for the status line, reset...
        raise _describe_os_error(exc, url, timeout) from exc
    except http.client.HTTPException as exc:  # a malformed answer
        raise _Failure(f"the server sent an invalid HTTP answer ({exc!r})", retry=True) from exc

    with response:
        content_type = response.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
            raise _html_failure(f"Content-Type {content_type.split(';')[0].strip()}")
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                raise _Failure(
                    f"the server sent a range starting at byte {start} instead of {offset}",
                    hint=f"The server mishandles resumed downloads; delete {part} and retry.",
                )
            mode = "ab"
        else:  # 200: the whole file, whether or not we asked for a range
            offset, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if expected_size is not None and total is not None and total != expected_size:
            part.unlink(missing_ok=True)
            raise _Failure(
                f"the server offers {total} bytes but the weights file has {expected_size} bytes",
                hint="The link points to a different file; use another mirror.",
            )

        received = offset
        with open(part, mode) as out, tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=desc,
            disable=not progress,
            leave=True,
        ) as bar:
            while True:
                try:
                    chunk = response.read1(CHUNK_SIZE)  # what has arrived: a stall loses nothing
                except (OSError, ValueError, http.client.HTTPException) as exc:
                    # reset, stalled (timeout), or IncompleteRead of a chunked body
                    raise _Failure(
                        f"the connection dropped or stalled after {received} bytes "
                        f"({type(exc).__name__}: {exc})",
                        retry=True,
                    ) from exc
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if received == 0:
        raise _Failure("the server sent an empty file", hint="Use another mirror.")
    if total is not None and received < total:
        raise _Failure(
            f"the download is truncated: the server closed the connection after "
            f"{received} of {total} bytes",
            retry=True,
        )
    if total is not None and received > total:
        part.unlink(missing_ok=True)
        raise _Failure(f"the server sent {received} bytes, more than the {total} it announced")


def _gdrive_attempt(file_id: str, part: Path, *, timeout: float, progress: bool) -> None:
    """Download a Google Drive file into ``part`` with gdown; raise ``_Failure`` on any error."""
    try:
        import gdown
    except ImportError as exc:
        raise _Failure(
            "Google Drive links need the 'gdown' package, which is not installed",
            hint="Install it with `pip install gdown`.",
        ) from exc
    part.unlink(missing_ok=True)
    try:
        result = gdown.download(id=file_id, output=str(part), quiet=not progress, timeout=timeout)
    except Exception as exc:  # gdown raises its own errors, requests' errors and OSErrors
        raise _Failure(
            f"Google Drive download failed ({type(exc).__name__}: {exc})",
            hint=(
                "The file may be private, deleted, or over its download quota; open the link in "
                "a browser to check."
            ),
        ) from exc
    if result is None or not part.is_file():
        raise _Failure("Google Drive download failed (gdown returned no file)")


def _backoff(attempt: int) -> float:
    return min(RETRY_DELAY_S * 2 ** (attempt - 1), RETRY_DELAY_MAX_S)


def _existing_matches(dest: Path, expected_size: int | None, expected_sha256: str | None) -> bool:
    if not dest.is_file():
        return False
    if expected_size is not None and dest.stat().st_size != expected_size:
        return False
    return expected_sha256 is None or file_sha256(dest) == expected_sha256.lower()


Verifier = Callable[[Path], Any]
"""Checks a finished file before it takes its final name: returns what it loaded, raises
``VerificationError`` when the file is not what was asked for."""


def quarantine(path: str | os.PathLike) -> Path:
    """Move a file that failed verification aside to ``<name>.rejected`` and return that path.

    One such file is kept per name (a later one replaces it), so repeated failures never fill the
    disk; the file's ``.sha256`` record, now stale, is removed. Raises ``OSError`` when the folder
    is not writable.
    """
    path = Path(path)
    aside = path.with_name(path.name.removesuffix(".part") + ".rejected")
    os.replace(path, aside)
    hash_record_path(path).unlink(missing_ok=True)
    return aside


def _download_locked(
    url: str,
    dest: Path,
    *,
    expected_size: int | None,
    expected_sha256: str | None,
    timeout: float,
    progress: bool,
    retries: int,
    verify: Verifier | None = None,
) -> tuple[Path, Any]:
    """The body of :func:`download`; raises ``_Failure`` (the caller words the DownloadError).

    Returns ``(dest, what verify returned)``. With ``verify``, an existing ``dest`` is checked
    first (another process may have fetched it meanwhile; a broken one is moved aside with
    :func:`quarantine`), and a fetched file is checked before it takes the name ``dest``: one that
    fails is moved aside instead, and the failure names where it went.
    """
    url = normalize_url(url)
    dest = Path(dest).expanduser()
    part = _part_path(dest)
    held = contextlib.ExitStack()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        held.enter_context(cache_lock(dest, progress=progress, waiting=f"downloading {dest}"))
    except OSError as exc:
        raise _Failure(
            f"cannot create {dest.parent} or the lock file in it: {exc}",
            hint=f"Make the folder writable, or choose another one with {CACHE_ENV_VAR}.",
        ) from exc
    with held:
        try:
            if verify is not None and dest.is_file():
                try:  # finished meanwhile by another process, or a cached file that failed outside the lock
                    size = dest.stat().st_size
                    if expected_size is not None and size != expected_size:
                        raise VerificationError(f"{dest} has {size} bytes, not the {expected_size} of the weights.")
                    verified_file_hash(dest, expected_sha256)
                    return dest, verify(dest)
                except VerificationError as exc:
                    aside = quarantine(dest)
                    if progress:
                        print(f"{dest} failed verification ({_first_sentence(exc, dest, aside)}); moved it "
                              f"aside to {aside} and downloading it again ...", file=sys.stderr)
            elif verify is None and _existing_matches(dest, expected_size, expected_sha256):
                return dest, None  # finished meanwhile by another process, or already there
            _fetch_with_retries(url, part, timeout=timeout, progress=progress, retries=retries,
                                expected_size=expected_size)
            _check_part(part, expected_size, expected_sha256)
            loaded = None
            if verify is not None:
                try:
                    loaded = verify(part)
                except VerificationError as exc:
                    aside = quarantine(part)
                    raise _Failure(
                        f"what the server sent is not these weights ({_first_sentence(exc, part, aside)}); "
                        f"it was kept as {aside} for inspection",
                        hint=(
                            "A server answering with an error message (rate limit, login or quota "
                            "page) or with an incomplete or different file looks like this; try "
                            "again later or use another mirror."
                        ),
                    ) from exc
            os.replace(part, dest)
            hash_record_path(dest).unlink(missing_ok=True)  # a record of an older file is stale
            return dest, loaded
        except OSError as exc:  # network errors are _Failures already: this is the local disk
            raise _Failure(
                f"cannot write {part}: {exc}",
                hint=(
                    "Check the free disk space and the folder's permissions, or choose another "
                    f"folder with {CACHE_ENV_VAR}."
                ),
            ) from exc


def _first_sentence(exc: BaseException, old: Path, new: Path) -> str:
    """The first sentence of ``exc``'s message (what is wrong, not the advice that follows), with
    ``old`` (a file that has been moved) called ``new``."""
    text = str(exc).replace(str(old), str(new)).strip()
    cut = re.search(r"\.(\s|$)", text)
    return text[: cut.start()] if cut else text


# Errors by which a folder says it cannot do flock (network and FUSE mounts): use a lock file there.
_NO_FLOCK = frozenset({errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL})


class _FlockLock:
    """An exclusive ``flock`` on a lock file that is deleted on release.

    Deleting a lock file is safe only with a check on acquiring: a waiter may have opened the file
    just before the holder deleted it, and would then lock a file nobody else can see. So after
    locking, the descriptor must still be the file at the path; otherwise acquiring starts again.
    The holder deletes the file *before* unlocking, so whoever locks a deleted file sees it.
    Threads of one process exclude each other too (each opens its own descriptor).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self, blocking: bool) -> bool:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK) and not blocking:
                    return False
                if exc.errno in _NO_FLOCK:  # no process can flock it here: the file is of no use
                    with contextlib.suppress(OSError):
                        os.unlink(self.path)
                raise
            except BaseException:
                os.close(fd)
                raise
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            if current is not None and os.path.samestat(os.fstat(fd), current):
                self.fd = fd
                return True
            os.close(fd)  # the holder before us deleted this file: lock the current one

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                os.unlink(self.path)  # while still holding it (see acquire)
        finally:
            os.close(fd)  # closing the only descriptor releases the flock


@contextlib.contextmanager
def cache_lock(target: str | os.PathLike, *, progress: bool = True, waiting: str = "") -> Iterator[Path]:
    """Hold the inter-process lock of ``target`` (the file ``<target>.lock``) for the block.

    The one lock of the cache: downloads and ONNX exports take it, so two processes never write
    the same file; the second waits (printing ``Waiting for another process <waiting> ...`` when
    ``progress``), then finds the first one's result. The lock file is removed on release (on
    POSIX by :class:`_FlockLock`; on Windows filelock does it), so no empty ``.lock`` files pile
    up. Folders without OS-level locking (some network and FUSE mounts) get a lock-file lock
    (``<target>.softlock``, filelock's ``SoftFileLock``). Raises ``OSError`` when the lock file
    cannot be created (read-only folder). Yields the lock file's path.
    """
    target = Path(target)
    lock_path = _lock_path(target)
    notice = f"Waiting for another process {waiting or 'using ' + str(target)} ..."
    if fcntl is not None:
        native: _FlockLock | None = _FlockLock(lock_path)
        try:
            got = native.acquire(blocking=False)
        except OSError as exc:
            if exc.errno not in _NO_FLOCK:
                raise
            native = None
        if native is not None:
            if not got:
                if progress:
                    print(notice, file=sys.stderr)
                native.acquire(blocking=True)
            try:
                yield lock_path
            finally:
                native.release()
            return
        lock: filelock.BaseFileLock = filelock.SoftFileLock(str(target.with_name(target.name + ".softlock")))
    else:
        lock = filelock.FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0.05)
    except filelock.Timeout:
        if progress:
            print(notice, file=sys.stderr)
        lock.acquire()
    try:
        yield lock_path
    finally:
        lock.release()


def _fetch_with_retries(
    url: str,
    part: Path,
    *,
    timeout: float,
    progress: bool,
    retries: int,
    expected_size: int | None,
) -> None:
    """Fetch ``url`` into ``part``, retrying (and resuming) retryable failures ``retries`` times."""
    drive_id = google_drive_file_id(url)
    attempt = 0
    while True:
        try:
            if drive_id is not None:
                _gdrive_attempt(drive_id, part, timeout=timeout, progress=progress)
            else:
                _http_attempt(url, part, expected_size=expected_size, timeout=timeout,
                              progress=progress, desc=part.name.removesuffix(".part"))
            return
        except _Failure as failure:
            attempt += 1
            if not failure.retry:
                raise
            if attempt > retries:
                failure.reason += f" (gave up after {attempt} attempts)"
                kept = part.stat().st_size if part.exists() else 0
                if kept:
                    failure.hint = (
                        f"The {kept} bytes received are kept in {part}; the next attempt "
                        f"resumes from there. {failure.hint}"
                    ).strip()
                raise
            if progress:
                print(f"{failure.reason}; retrying ({attempt}/{retries}) ...", file=sys.stderr)
            time.sleep(_backoff(attempt))


def _check_part(part: Path, expected_size: int | None, expected_sha256: str | None) -> None:
    """Check a finished ``part`` (not HTML, expected size and sha256); delete it when wrong."""
    with open(part, "rb") as handle:
        if _looks_like_html(handle.read(512)):
            part.unlink(missing_ok=True)
            raise _html_failure("its content is HTML")
    size = part.stat().st_size
    if expected_size is not None and size != expected_size:
        part.unlink(missing_ok=True)
        raise _Failure(
            f"the downloaded file has {size} bytes, expected {expected_size}",
            hint="The link points to a different or truncated file; use another mirror.",
        )
    if expected_sha256 is not None:
        actual = file_sha256(part)
        if actual != expected_sha256.lower():
            part.unlink(missing_ok=True)
            raise _Failure(
                f"sha256 mismatch: the downloaded file hashes to {actual}, "
                f"expected {expected_sha256.lower()}",
                hint="The link serves a different or corrupted file; use another mirror.",
            )


def _download_error(url: str, dest: Path, failure: _Failure) -> DownloadError:
    text = f"Could not download {url}: {failure.reason}."
    if failure.hint:
        text += f" {failure.hint}"
    return DownloadError(f"{text} {_manual_fix(url, Path(dest).expanduser())}")


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: bool = True,
    retries: int = DEFAULT_RETRIES,
) -> Path:
    """Download ``url`` to ``dest`` safely and return ``dest`` as a Path.

    - Share links are normalised first (:func:`normalize_url`); Google Drive goes through gdown.
    - The body streams into ``<dest>.part`` with a tqdm progress bar (``progress=False``
      silences it and the notices); an existing ``.part`` is resumed with a ``Range`` request
      (a server answering 200 restarts it, a 416 is handled); dropped connections are retried
      ``retries`` times, resuming each time, with a growing pause.
    - An HTML page (by ``Content-Type`` or by its first bytes), a size other than
      ``Content-Length`` / ``expected_size``, or a sha256 other than ``expected_sha256`` is an
      error; only a complete, checked file is renamed to ``dest`` (``os.replace``).
    - A file lock (``<dest>.lock``, :func:`cache_lock`) covers the whole download: a second
      process waits, then finds the finished file. An existing ``dest`` matching the
      expectations is returned as is.
    - ``timeout`` (seconds) bounds each connect and each read.

    Raises ``DownloadError`` naming the URL, the reason and the manual fix (download by hand,
    then pass the path, or put the file at ``dest``).
    """
    dest = Path(dest).expanduser()
    try:
        return _download_locked(
            url,
            dest,
            expected_size=expected_size,
            expected_sha256=expected_sha256,
            timeout=timeout,
            progress=progress,
            retries=retries,
        )[0]
    except _Failure as failure:
        raise _download_error(url, dest, failure) from failure.__cause__


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


def is_cached(spec: WeightSource, cache_dir: str | os.PathLike | None = None) -> bool:
    """True when ``cache_dir/<spec.filename>`` exists and has ``spec.size`` bytes (when known).

    Creates nothing (a listing of models must not need a writable cache).
    """
    path = _cache_path(cache_dir) / spec.filename
    if not path.is_file():
        return False
    return spec.size is None or path.stat().st_size == spec.size


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
    manual fix.

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
    target = _resolve_cache_dir(cache_dir) / spec.filename
    verify: Verifier | None = None
    if manifest is not None or keep:

        def verify(path: Path) -> dict[str, torch.Tensor]:
            # a download's checksum was checked by _check_part; the cached file's is checked here
            return load_state_dict(path, manifest, sha256=spec.sha256 if path == target else None)

    cached_failure: VerificationError | None = None
    if is_cached(spec, target.parent):
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


# --------------------------------------------------------------------------------------------
# sha256 bookkeeping


def file_sha256(path: str | os.PathLike) -> str:
    """Lower-case hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_SIZE * 4), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_record_path(path: str | os.PathLike) -> Path:
    """Where the sha256 record of ``path`` lives: ``<path>.sha256`` next to it."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def _read_hash_record(path: Path) -> dict[str, Any] | None:
    record_path = hash_record_path(path)
    if not record_path.exists():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if not isinstance(record.get("sha256"), str) or not isinstance(record.get("size"), int):
            raise ValueError("missing 'sha256' or 'size'")
    except (OSError, ValueError, AttributeError) as exc:
        raise VerificationError(
            f"The checksum record {record_path} is unreadable ({exc}). Delete it; it is "
            f"written again on the next successful load of {path.name}."
        ) from exc
    return record


def record_file_hash(path: str | os.PathLike, sha256: str) -> Path:
    """Write the sha256 record of ``path`` (JSON: file, size, sha256, recorded) and return it."""
    path = Path(path)
    record = {
        "file": path.name,
        "size": path.stat().st_size,
        "sha256": sha256.lower(),
        "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    record_path = hash_record_path(path)
    tmp = record_path.with_name(record_path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, record_path)
    return record_path


def verified_file_hash(path: str | os.PathLike, known_sha256: str | None = None) -> str | None:
    """Check ``path`` against its checksum; return its sha256, or None when there is nothing to check.

    With ``known_sha256`` (a published checksum) the file must hash to it. Without it, a record
    written by :func:`record_file_hash` (``<path>.sha256``) is checked when one exists; with
    neither, nothing is hashed and None is returned. A mismatch raises ``VerificationError``
    naming the file and the fix (delete it so that it is downloaded again).
    """
    path = Path(path)
    if known_sha256 is not None:
        actual = file_sha256(path)
        if actual != known_sha256.lower():
            raise VerificationError(
                f"{path} does not have the published sha256 checksum (it hashes to {actual}, "
                f"expected {known_sha256.lower()}): it is corrupt or a different file. Delete it "
                f"so that it is downloaded again."
            )
        return actual
    record = _read_hash_record(path)
    if record is None:
        return None
    size = path.stat().st_size
    actual = file_sha256(path) if size == record["size"] else None
    if actual != record["sha256"]:
        raise VerificationError(
            f"{path} changed on disk since it was verified on {record.get('recorded', '?')} "
            f"(recorded sha256 {record['sha256']}, {record['size']} bytes; now "
            f"{actual or 'not hashed'}, {size} bytes). Delete it (and "
            f"{hash_record_path(path).name}) so that it is downloaded again."
        )
    return actual


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


def load_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state dict from a ``.pth``/``.pt`` (torch) or ``.safetensors`` file, on the CPU.

    Torch files load with ``weights_only=True`` (Python ``slice`` allowed, as in fastai's saved
    learning rates); fastai's ``{'model': state_dict, 'opt': ...}`` wrapper is unwrapped.
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
    if isinstance(loaded, Mapping) and set(loaded.keys()) == {"model", "opt"}:
        loaded = loaded["model"]
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
) -> dict[str, torch.Tensor]:
    """Load and verify a weights file; return ``{name: Tensor}`` on the CPU.

    1. Checksum (:func:`verified_file_hash`): against ``sha256`` when given, else against the
       file's ``.sha256`` record when one exists.
    2. :func:`load_checkpoint`, then :func:`verify_state_dict` when ``expected`` (a manifest
       mapping, or the path of a manifest JSON) is given.
    3. With ``record_hash=True``, a file that passed without a known checksum gets its
       ``.sha256`` record (so that later loads detect changes on disk).

    Raises ``VerificationError`` (or ``WeightsError`` for a missing file) naming the file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"Weights file not found: {path}. Check the path or download it again.")
    digest = verified_file_hash(path, sha256)
    state_dict = load_checkpoint(path)
    if expected is not None:
        manifest = (
            read_manifest(expected) if isinstance(expected, (str, os.PathLike)) else expected
        )
        verify_state_dict(state_dict, manifest, source=str(path))
    if record_hash and digest is None:
        record_file_hash(path, file_sha256(path))
    return state_dict


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
