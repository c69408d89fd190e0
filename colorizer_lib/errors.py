"""Typed errors. Every message names the problem and what the user can do about it."""

from __future__ import annotations

import errno
import os
from pathlib import Path


class ColorizerError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(ColorizerError, ValueError):
    """The image, video or URL given cannot be used (unreadable, wrong type, web page, too big...)."""


class RenderFactorError(ColorizerError, ValueError):
    """A render factor outside the allowed range."""


class WeightsError(ColorizerError):
    """Weights could not be found, downloaded or verified."""


class DownloadError(WeightsError):
    """A download failed (network, HTTP status, timeout, HTML instead of data...)."""


class VerificationError(WeightsError):
    """A weights file is corrupt, truncated, of the wrong model, or fails its checksum."""


class ModelArgumentError(WeightsError, InputError):
    """The model asked for does not exist as given: an unknown name, or a weights path that is missing
    or a folder (bad usage: ``colorize`` exits 2)."""


class NotWeightsError(VerificationError, InputError):
    """A file given as weights is something else altogether (text, a web page, a plain Python pickle);
    for a path the user gave, bad usage (``colorize`` exits 2)."""


class NonFiniteOutputError(WeightsError):
    """The model produced NaN or infinite values (broken weights, or an overflow in float16).

    ``indices``: the positions in the batch whose output is not finite."""

    def __init__(self, message: str, indices: tuple[int, ...] = ()):
        super().__init__(message)
        self.indices = tuple(indices)


class ColorizerOutOfMemoryError(ColorizerError, MemoryError):
    """The device ran out of memory. Lower the render factor or the batch size."""


class VideoError(ColorizerError):
    """A video could not be probed, decoded, colorized or encoded."""


class DependencyError(ColorizerError):
    """A required external program or optional package is missing."""


class BatchError(InputError):
    """Some pictures of a :meth:`Colorizer.colorize_batch <colorizer_lib.colorizer.Colorizer.colorize_batch>`
    call failed. ``results`` holds every item's outcome in input order: a ``ColorizeResult`` for each
    picture that was colorized, the :class:`InputError` for each one that was not."""

    def __init__(self, message: str, results: list):
        super().__init__(message)
        self.results = results

    @property
    def errors(self) -> list[tuple[int, InputError]]:
        """``(index, error)`` of each failed item."""
        return [(i, r) for i, r in enumerate(self.results) if isinstance(r, BaseException)]
# --------------------------------------------------------------------------------------------------
# process exit codes: the one table every `colorize` sub-command uses

EXIT_OK = 0  # everything asked for was done
EXIT_PARTIAL = 1  # some inputs failed (the others were done), or another ColorizerError
EXIT_USAGE = 2  # bad usage or input (argparse uses 2 as well)
EXIT_WEIGHTS = 3  # weights could not be found, downloaded or verified
EXIT_OOM = 4  # the device ran out of memory
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)

_EXIT_CODES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int], ...] = (
    (KeyboardInterrupt, EXIT_INTERRUPTED),
    (ColorizerOutOfMemoryError, EXIT_OOM),
    # usage before weights: a --model argument that names no model or no weights file is both
    ((InputError, RenderFactorError, ValueError), EXIT_USAGE),
    (WeightsError, EXIT_WEIGHTS),
    (ColorizerError, EXIT_PARTIAL),
)


def exit_code(exc: BaseException) -> int | None:
    """The process exit code for ``exc`` (first matching row of the table above), or None for an
    unexpected exception, which a command line should let propagate with its traceback."""
    for types, code in _EXIT_CODES:
        if isinstance(exc, types):
            return code
    return None


def why_missing(path: str) -> str:
    """Why the input ``path``, which is neither a file nor a folder, cannot be read: a symbolic link
    that loops or points nowhere is named as such (with what to do), anything else does not exist."""
    link = Path(path).expanduser()
    if link.is_symlink():
        try:
            link.resolve(strict=True)
        except (OSError, RuntimeError) as exc:  # a loop (Python 3.11 raises RuntimeError), or missing
            if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP:
                return (f"{path} is a symbolic link that loops ({exc}): it never reaches a file; fix or remove "
                        f"the link, or give the file it should point to")
        return (f"{path} is a symbolic link to {os.readlink(link)!r}, which does not exist; fix or remove the "
                f"link, or give the file it should point to")
    return f"{path} does not exist"
