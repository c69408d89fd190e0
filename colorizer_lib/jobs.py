"""What the photo pipeline (`colorize image`, the notebook) may do with each planned output before
any picture is colorized.

An output file is only ever skipped or replaced when Colorizer wrote it: its provenance (PNG text,
or EXIF ImageDescription, see :func:`colorizer_lib.io.read_provenance`) names the model, the
render factor and the input it was made from (size and SHA-256 of the file, or its URL). Then:

* same input, same model and render factor, and the comparison picture there when one is asked
  for: the job is finished and skipped (an interrupted run resumes);
* made from another input, or with other settings, or without a record of its input (an older
  Colorizer, or the Python API given bytes or an image object): the file is kept and the job
  refused (reported, exit code 1), because redoing it would destroy a result the user may want;
  ``--overwrite`` replaces it, comparison picture included (a front end that owns its outputs'
  names may replace such results of its own: :func:`colorizer_lib.photos.sort_jobs`);
* any other existing file (not written by Colorizer, or unreadable): always refused and left alone,
  ``--overwrite`` or not. An input is never written either (see :mod:`colorizer_lib.photos.plan`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .errors import InputError
from .io import is_url, read_provenance, save_image
from .io import remove_stale_temp_files as _remove_stale_in

SOURCE_SIZE = "colorizer:source_size"
SOURCE_SHA256 = "colorizer:source_sha256"
SOURCE_URL = "colorizer:source_url"
MODEL, RENDER_FACTOR = "colorizer:model", "colorizer:render_factor"


@dataclass
class FileJob:
    """One picture to colorize: where it comes from and where its result goes.

    Attributes:
        source: a file path or an http(s) URL.
        output: the result's path; its extension picks the format (any of
            :data:`~colorizer_lib.io.OUTPUT_FORMATS`).
        compare: where to write the original beside the result, or None.
        problem: why this input cannot be colorized, found while planning (a symbolic link that
            loops or points nowhere); such a job is reported, never run.
        stale: files of an earlier run to delete once this job's output is written (a comparison
            picture of replaced settings, see :func:`decide`).
    """

    source: str
    output: Path
    compare: Path | None = None
    problem: str | None = None
    stale: tuple[Path, ...] = ()
    _identity: dict[str, str] | None = field(default=None, repr=False, compare=False)

    def identity(self) -> dict[str, str]:
        """The input's identity recorded in the outputs' provenance (size and SHA-256, or the URL;
        :func:`source_identity`), computed once."""
        if self._identity is None:
            self._identity = source_identity(self.source)
        return self._identity

    def save(self, result, *, quality: int = 95, forbid: Iterable[str | os.PathLike] = ()) -> Path:
        """Write a :class:`~colorizer_lib.colorizer.ColorizeResult` to :attr:`output` (with its
        provenance, which records this job's input (:meth:`identity`), ICC profile and EXIF) and,
        when :attr:`compare` is set, the side-by-side picture there. Paths in ``forbid`` are never
        written. Returns the output's path.

        Raises:
            InputError: a forbidden path, a format that cannot hold the picture (alpha to JPEG) or a failed write.
        """
        result = dataclasses.replace(result, source_identity=self.identity())
        path = result.save(self.output, quality=quality, forbid=forbid)
        if self.compare is not None:
            save_image(result.compare().convert("RGB"), self.compare, provenance=result.provenance, forbid=forbid)
        self.remove_stale()
        return path

    def remove_stale(self) -> None:
        """Delete :attr:`stale` (once the new output is written)."""
        for path in self.stale:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def guarded(self, protected: frozenset[Path]) -> tuple[Path, ...]:
        """This job's targets (output, comparison) that are among ``protected`` (resolved paths, see
        :func:`colorizer_lib.photos.resolved_paths`): the ``forbid`` for :meth:`save`, found at once however many inputs
        a run has, where passing all of them would resolve each one again for every file."""
        return tuple(p for p in (self.output, self.compare) if p is not None and p.expanduser().resolve() in protected)



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
    writing a new one (removed once the new output is written). ``conflict``: what is in the way of
    a refused job: ``"foreign"`` (a file Colorizer did not write), ``"input"`` (a result of another
    input, or of an unrecorded one) or ``"settings"`` (of this input with other settings)."""

    action: str
    message: str = ""
    stale: tuple[Path, ...] = ()
    conflict: str = ""


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
    targets = [job.output] + ([job.compare] if job.compare is not None else [])
    found: dict[Path, dict[str, str]] = {}
    for target in targets:
        if not os.path.lexists(target):
            continue
        if target.is_symlink() or not target.is_file():
            return Verdict("refuse", f"{target} already exists and is not a picture Colorizer wrote; it is left "
                                     "alone: move it away, or choose another -o.", conflict="foreign")
        try:
            meta = read_provenance(target)
        except InputError:
            meta = {}
        if MODEL not in meta:
            return Verdict("refuse", f"{target} already exists and was not written by Colorizer; it is left alone "
                                     "(even with --overwrite): move it away, or choose another -o.", conflict="foreign")
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
        conflict = "input"
        if not (SOURCE_URL in meta or SOURCE_SHA256 in meta):
            why = ("does not record which input it was made from (an older Colorizer, or a picture given to the "
                   "Python API as bytes or an image object)")
        elif not _same_input(meta, identity):
            why = f"was colorized from {_recorded_input(meta)}, not from {job.source}"
        elif meta.get(MODEL) != model_name or meta.get(RENDER_FACTOR) != str(render_factor):
            conflict = "settings"
            why = (f"was made with {_settings(meta)}, and this run uses model '{model_name}' at render factor "
                   f"{render_factor}")
        else:
            continue
        if overwrite:
            return Verdict("do", stale=stale)
        return Verdict("refuse", f"{target} {why}; it is kept. Pass --overwrite to replace it (and its comparison "
                                 "picture), or choose another -o to keep both.", conflict=conflict)
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
    (:func:`colorizer_lib.io.remove_stale_temp_files`); returns what was removed."""
    removed: list[Path] = []
    for folder in output_folders(jobs):
        removed.extend(_remove_stale_in(folder))
    return removed
