"""Planning: inputs -> :class:`~colorizer_lib.jobs.FileJob` s, before any model loads.

* :func:`plan_jobs` - ``colorize image``'s naming: files, folders (their tree kept) and URLs into
  one output file or folder, refusing an output that would overwrite an input or another input's output;
* :func:`claim_job` - the notebook's naming: the first free name of a series (:func:`numbered`:
  ``x``, ``x_2``...) that this run has not taken and that holds no result of another input;
* :func:`sort_jobs` - the finished-work check (:func:`colorizer_lib.jobs.decide`): what to do,
  what is already done (resume) and what is refused;
* :func:`prepare_outputs` - stale temporary files removed and every output folder checked writable;
* :func:`protected_inputs` / :func:`resolved_paths` - the inputs that no job may write over.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..errors import InputError, why_missing
from ..io import OUTPUT_FORMATS, is_url, iter_image_files, output_suffix
from ..jobs import FileJob, check_writable, decide, output_folders, remove_stale_temp_files


def output_name(stem: str, suffix: str, out_format: str | None = None) -> str:
    """``stem`` with the requested format's extension, else :func:`~colorizer_lib.io.output_suffix` of the input's."""
    if out_format:
        return f"{stem}.{out_format.lstrip('.')}"
    return f"{stem}{output_suffix(suffix)}"


def plan_jobs(inputs: Sequence[str], output: str | None, *, out_format: str | None = None,
              compare: bool = False) -> list[FileJob]:
    """Map ``colorize image``'s inputs to jobs.

    * one file or URL with ``-o something.ext``: that file;
    * otherwise ``output`` is a folder (default ``colorized``): files go to ``OUT/<name>``, URLs to
      ``OUT/<name from the URL>``, and a folder ``DIR`` to ``OUT/<DIR's name>/<same sub-path>``.

    Raises:
        InputError: an input that does not exist, or an output that would overwrite an input or
            another input's output.
    """
    single_target = (
        output is not None and len(inputs) == 1 and Path(output).suffix.lower() in OUTPUT_FORMATS
        and (is_url(inputs[0]) or Path(inputs[0]).is_file())
    )
    out_root = Path(output or "colorized")
    jobs: list[FileJob] = []

    def add(source: str, target: Path, problem: str | None = None) -> None:
        cmp = target.with_name(f"{target.stem}.compare.jpg") if compare else None
        jobs.append(FileJob(source, target, cmp, problem=problem))

    for item in inputs:
        if is_url(item):
            stem = Path(item.split("?")[0].rstrip("/")).stem or "image"
            add(item, Path(output) if single_target else out_root / output_name(stem, ".png", out_format))
            continue
        path = Path(item).expanduser()
        if path.is_file():
            add(str(path), Path(output) if single_target else out_root / output_name(path.stem, path.suffix, out_format))
        elif path.is_dir():
            base = out_root / path.resolve().name
            skip = base.resolve()
            for file in iter_image_files(path):
                rel = file.relative_to(path)
                target = base / rel.parent / output_name(rel.stem, rel.suffix, out_format)
                try:
                    if skip in file.resolve().parents:
                        continue  # never read our own earlier outputs back as inputs
                except (OSError, RuntimeError) as exc:  # a symbolic link that loops (3.11: RuntimeError)
                    add(str(file), target, f"is a symbolic link that cannot be followed ({exc}); fix or remove it")
                    continue
                add(str(file), target)
        else:
            raise InputError(f"input {why_missing(item)} (give image files, folders or http(s) URLs).")
    inputs_resolved = resolved_paths(protected_inputs(jobs))
    claimed: dict[Path, str] = {}
    for job in jobs:
        target = job.output.resolve()
        if target in inputs_resolved:
            raise InputError(f"the output {job.output} would overwrite an input; choose another -o.")
        if target in claimed:
            raise InputError(f"{claimed[target]} and {job.source} would both be written to {job.output}; "
                             f"colorize them into different -o folders, or rename one.")
        claimed[target] = job.source
    return jobs


def claim_job(source: str, names: Iterable[Path], claimed: set[Path], model_name: str, render_factor: int) -> FileJob:
    """A job for ``source`` at the first of ``names`` that this run has not ``claimed`` and that is
    free, or holds a result of this same input (finished: resumed; other settings: replaced), never
    one holding another input's result or a file Colorizer did not write. The name is added to
    ``claimed``. Raises ``InputError`` when ``source`` cannot be read (to compare it with a result)."""
    for target in names:
        if target.resolve() in claimed:
            continue
        job = FileJob(source, target)
        verdict = decide(job, model_name, render_factor, overwrite=False)
        if verdict.action != "refuse" or verdict.conflict == "settings":
            claimed.add(target.resolve())
            return job
    raise InputError(f"no free output name for {source}.")  # pragma: no cover - callers give endless series


def numbered(stem: str) -> Iterator[str]:
    """``stem``, ``stem_2``, ``stem_3``...: the stems :func:`claim_job` tries, in order."""
    yield stem
    n = 2
    while True:
        yield f"{stem}_{n}"
        n += 1


@dataclass
class SortedJobs:
    """:func:`sort_jobs`' answer: the jobs to run, those finished already, and ``(job, message)``
    for each refused or unreadable one (and each planned with a ``problem``)."""

    todo: list[FileJob] = field(default_factory=list)
    skipped: list[FileJob] = field(default_factory=list)
    refused: list[tuple[FileJob, str]] = field(default_factory=list)

    @property
    def failures(self) -> list[tuple[str, str]]:
        """``(source, message)`` for each refused job, as a report lists them."""
        return [(job.source, message) for job, message in self.refused]


def sort_jobs(jobs: Iterable[FileJob], model_name: str, render_factor: int, *, overwrite: bool = False,
              replace: Iterable[str] = ()) -> SortedJobs:
    """Each job to run, skip (finished by an earlier run: resume) or refuse, by
    :func:`colorizer_lib.jobs.decide`; a job to run carries the stale files it replaces.

    ``overwrite``: replace every result of ours that is not this job's finished one (``--overwrite``).
    ``replace``: the conflicts (:attr:`~colorizer_lib.jobs.Verdict.conflict`: ``"settings"``,
    ``"input"``) whose results are replaced without it, where a front end owns its outputs' names;
    a finished job is skipped either way, and a file Colorizer did not write is never replaced."""
    replace = frozenset(replace)
    out = SortedJobs()
    for job in jobs:
        if job.problem:
            out.refused.append((job, job.problem))
            continue
        try:
            verdict = decide(job, model_name, render_factor, overwrite=overwrite)
            if verdict.action == "refuse" and verdict.conflict in replace:
                verdict = decide(job, model_name, render_factor, overwrite=True)
        except InputError as exc:
            out.refused.append((job, str(exc)))
            continue
        if verdict.action == "skip":
            out.skipped.append(job)
        elif verdict.action == "refuse":
            out.refused.append((job, verdict.message))
        else:
            job.stale = verdict.stale
            out.todo.append(job)
    return out


def prepare_outputs(jobs: Sequence[FileJob]) -> list[Path]:
    """Remove the temporary files an interrupted run left in the jobs' output folders and check that
    each folder can be written, before any model loads. Returns the files removed.

    Raises:
        InputError: a folder that cannot be written, naming it and the fix.
    """
    removed = remove_stale_temp_files(jobs)
    for folder in output_folders(jobs):
        check_writable(folder)
    return removed


def protected_inputs(jobs: Iterable[FileJob]) -> list[Path]:
    """The local inputs of ``jobs``: paths that no job may write (``forbid`` of the runner)."""
    return [Path(job.source) for job in jobs if not is_url(job.source) and job.problem is None]


def resolved_paths(paths: Iterable[str | os.PathLike]) -> frozenset[Path]:
    """``paths`` resolved once, for :meth:`FileJob.guarded`."""
    return frozenset(Path(p).expanduser().resolve() for p in paths)
