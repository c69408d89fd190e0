"""What `colorize image` may do with each planned output before any picture is colorized.

An output file is only ever skipped or replaced when Colorizer wrote it: its provenance (PNG text,
or EXIF ImageDescription, see :func:`colorizer_lib.image.read_provenance`) names the model, the
render factor and the input it was made from (size and SHA-256 of the file, or its URL). Then:

* same input, same model and render factor, and the comparison picture there when one is asked
  for: the job is finished and skipped (an interrupted run resumes);
* made from another input, or with other settings, or without a record of its input (an older
  Colorizer, or the Python API given bytes or an image object): the file is kept and the job refused (reported, exit code 1), because redoing it would
  destroy a result the user may want; ``--overwrite`` replaces it, comparison picture included;
* any other existing file (not written by Colorizer, or unreadable): always refused and left alone,
  ``--overwrite`` or not. An input is never written either (see ``plan_jobs``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .errors import InputError

if TYPE_CHECKING:
    from .runtime import FileJob

SOURCE_SIZE = "colorizer:source_size"
SOURCE_SHA256 = "colorizer:source_sha256"
SOURCE_URL = "colorizer:source_url"
MODEL, RENDER_FACTOR = "colorizer:model", "colorizer:render_factor"


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def source_identity(source: str) -> dict[str, str]:
    """What identifies an input in its outputs' provenance: a file's size in bytes and SHA-256 (of
    its content, so a different photo with the same name is told apart), or a URL as given.

    Raises:
        InputError: the file cannot be read.
    """
    if is_url(source):
        return {SOURCE_URL: source}
    digest = hashlib.sha256()
    size = 0
    try:
        with open(source, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise InputError(f"Cannot read {source}: {exc.strerror or exc}. Check that it exists and is readable.") from exc
    return {SOURCE_SIZE: str(size), SOURCE_SHA256: digest.hexdigest()}


@dataclass
class Verdict:
    """``action``: ``"do"``, ``"skip"`` or ``"refuse"``; ``message`` says why for a refusal.
    ``stale``: an earlier comparison picture of ours that this run replaces the output of without
    writing a new one (removed once the new output is written)."""

    action: str
    message: str = ""
    stale: tuple[Path, ...] = ()


def _settings(meta: dict[str, str]) -> str:
    return f"model '{meta.get(MODEL)}' at render factor {meta.get(RENDER_FACTOR)}"


def _recorded_input(meta: dict[str, str]) -> str:
    if SOURCE_URL in meta:
        return meta[SOURCE_URL]
    if SOURCE_SHA256 in meta:
        return f"a file of {meta.get(SOURCE_SIZE, '?')} bytes, SHA-256 {meta[SOURCE_SHA256][:12]}..."
    return "an input it did not record"


def _same_input(meta: dict[str, str], identity: dict[str, str]) -> bool:
    keys = (SOURCE_URL,) if SOURCE_URL in identity else (SOURCE_SIZE, SOURCE_SHA256)
    return all(meta.get(k) == identity[k] for k in keys)


def decide(job: FileJob, model_name: str, render_factor: int, *, overwrite: bool) -> Verdict:
    """Whether ``job`` is done, skipped or refused, by the rules in this module's docstring.

    Raises:
        InputError: the job's input cannot be read (to compare it with an earlier output).
    """
    from .image import read_provenance

    targets = [job.output] + ([job.compare] if job.compare is not None else [])
    found: dict[Path, dict[str, str]] = {}
    for target in targets:
        if not os.path.lexists(target):
            continue
        if target.is_symlink() or not target.is_file():
            return Verdict("refuse", f"{target} already exists and is not a picture Colorizer wrote; it is left "
                                     "alone: move it away, or choose another -o.")
        try:
            meta = read_provenance(target)
        except InputError:
            meta = {}
        if MODEL not in meta:
            return Verdict("refuse", f"{target} already exists and was not written by Colorizer; it is left alone "
                                     "(even with --overwrite): move it away, or choose another -o.")
        found[target] = meta
    stale = ()
    if job.compare is None:  # a comparison of an earlier run beside an output this run may replace
        old = job.output.with_name(f"{job.output.stem}.compare.jpg")
        if job.output in found and old.is_file() and not old.is_symlink():
            try:
                stale = (old,) if MODEL in read_provenance(old) else ()
            except InputError:
                stale = ()
    if not found:
        return Verdict("do")
    identity = job.identity()
    for target, meta in found.items():
        if not (SOURCE_URL in meta or SOURCE_SHA256 in meta):
            why = ("does not record which input it was made from (an older Colorizer, or a picture given to the "
                   "Python API as bytes or an image object)")
        elif not _same_input(meta, identity):
            why = f"was colorized from {_recorded_input(meta)}, not from {job.source}"
        elif meta.get(MODEL) != model_name or meta.get(RENDER_FACTOR) != str(render_factor):
            why = (f"was made with {_settings(meta)}, and this run uses model '{model_name}' at render factor "
                   f"{render_factor}")
        else:
            continue
        if overwrite:
            return Verdict("do", stale=stale)
        return Verdict("refuse", f"{target} {why}; it is kept. Pass --overwrite to replace it (and its comparison "
                                 "picture), or choose another -o to keep both.")
    if len(found) == len(targets):
        return Verdict("do", stale=stale) if overwrite else Verdict("skip")
    return Verdict("do", stale=stale)  # the comparison picture is missing (its write failed): redo the job


def output_folders(jobs: Iterable[FileJob]) -> list[Path]:
    """The distinct folders that ``jobs`` write into, in order."""
    folders: dict[Path, None] = {}
    for job in jobs:
        for target in (job.output, job.compare):
            if target is not None:
                folders.setdefault(target.parent, None)
    return list(folders)


def check_writable(folder: Path) -> None:
    """Make sure a file can be created in ``folder`` (or, when it does not exist yet, in the
    nearest existing folder above it, where it would be created) before any picture is colorized.

    Raises:
        InputError: naming the folder and the fix.
    """
    probe_in = folder
    while not probe_in.exists() and probe_in.parent != probe_in:
        probe_in = probe_in.parent
    try:
        if not probe_in.is_dir():
            raise NotADirectoryError(20, "a file of that name is in the way", str(probe_in))
        fd, name = tempfile.mkstemp(dir=probe_in, prefix=".colorizer-write-test-")
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if isinstance(exc, NotADirectoryError):
            fix = f"remove or rename the file {probe_in}"
        elif exc.errno == errno.EROFS:
            fix = "its file system is mounted read-only: copy the photos to a writable disk"
        elif exc.errno == errno.ENOSPC:
            fix = "free some space"
        else:
            fix = f"make it writable (chmod u+w {probe_in})"
        raise InputError(f"cannot write into the output folder {folder} ({reason} in {probe_in}): {fix}, "
                         "or choose another -o. Nothing was colorized.") from exc


def remove_stale_temp_files(jobs: Iterable[FileJob]) -> list[Path]:
    """Delete the temporary files that an interrupted earlier run left in the output folders
    (:func:`colorizer_lib.image.remove_stale_temp_files`); returns what was removed."""
    from .image import remove_stale_temp_files as remove_in

    removed: list[Path] = []
    for folder in output_folders(jobs):
        removed.extend(remove_in(folder))
    return removed
