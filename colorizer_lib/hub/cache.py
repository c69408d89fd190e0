"""The weights cache: where it is (``COLORIZER_CACHE``, else the platform's cache folder) and its one
inter-process lock (:func:`cache_lock`), used by downloads and ONNX exports.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import filelock

from colorizer_lib.errors import WeightsError

try:  # POSIX: locks whose file is removed on release (see cache_lock)
    import fcntl
except ImportError:  # Windows: filelock, which removes its file on release there
    fcntl = None  # type: ignore[assignment]


CACHE_ENV_VAR = "COLORIZER_CACHE"
"""Environment variable that overrides the platform's default cache directory."""


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


def _lock_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".lock")


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
