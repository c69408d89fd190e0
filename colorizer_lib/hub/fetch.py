"""Downloading one weights file: HTTP with resume (``Range``), retries with backoff, Google Drive through
``gdown`` (imported only for such links), under the cache lock; a file takes its final name only after
it is checked (size, sha256, and the caller's verification).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..constants import __version__
from colorizer_lib.errors import DownloadError, VerificationError
from .cache import CACHE_ENV_VAR, cache_lock
from .checkpoint import _looks_like_html
from .records import CHUNK_SIZE, file_sha256, hash_record_path, verified_file_hash


RETRY_DELAY_S = 0.5  # first pause before a retry; doubles per retry, capped at RETRY_DELAY_MAX_S
RETRY_DELAY_MAX_S = 8.0
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 3
RETRYABLE_HTTP_STATUS = frozenset({408, 429, 500, 502, 503, 504})


USER_AGENT = f"colorizer/{__version__} (python-urllib)"


_GDRIVE_HOSTS = frozenset({"drive.google.com", "docs.google.com", "drive.usercontent.google.com"})
_DROPBOX_HOSTS = frozenset({"dropbox.com", "www.dropbox.com"})


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


def _manual_fix(url: str, dest: Path) -> str:
    return (
        f"Download the file by hand (for example in a browser) from {url}, then either pass its "
        f"local path instead of the model name, or save it as {dest} (the weights cache "
        f"directory is {dest.parent})."
    )


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
