"""Running planned jobs: :func:`run_jobs` takes the simple path (load a batch, colorize it, save each
result) or the pipelined one (:func:`colorizer_lib.photos.gpu.colorize_jobs_pipelined`), chosen by
:func:`use_pipeline`, and reports each job through one event type, :class:`PhotoEvent`.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..colorizer import ColorizeResult, original_for_display
from ..constants import PIPELINE_MIN_IMAGES
from ..devices import default_batch_size
from ..errors import InputError, NonFiniteOutputError
from ..io import has_colour, load_image
from ..jobs import FileJob
from .gpu import NonFiniteTriage, PipelineStats, colorize_jobs_pipelined
from .plan import resolved_paths


def use_pipeline(choice: str, device, n_images: int) -> bool:
    """Whether ``n_images`` photos on ``device`` take the pipelined path: ``choice`` ``"on"`` or
    ``"off"``, or ``"auto"``: on CUDA from :data:`~colorizer_lib.constants.PIPELINE_MIN_IMAGES`
    photos on (why: its docstring)."""
    if choice not in ("auto", "on", "off"):
        raise InputError(f"pipeline must be 'auto', 'on' or 'off', got {choice!r}.")
    if choice != "auto":
        return choice == "on"
    return getattr(device, "type", str(device)) == "cuda" and n_images >= PIPELINE_MIN_IMAGES


@dataclass(frozen=True)
class PhotoEvent:
    """What happened to one job, for progress and reports.

    ``kind``: ``"colour"`` (the input is already in colour; reported before it is colorized),
    ``"done"`` (``path`` written; ``result``, the :class:`~colorizer_lib.colorizer.ColorizeResult`,
    on the simple path only) or ``"failed"`` (``message`` says why). ``finished``/``total``: jobs
    finished (done or failed) so far, this one included, of the run's total."""

    kind: str
    job: FileJob
    finished: int = 0
    total: int = 0
    path: Path | None = None
    message: str = ""
    result: Any = None


@dataclass
class RunReport:
    """What :func:`run_jobs` did: ``outputs`` (the files written, in job order), ``failures``
    (``(source, message)`` in job order), ``pipelined`` (which path ran), ``wall`` (seconds) and,
    on the pipelined path, its :class:`~colorizer_lib.photos.gpu.PipelineStats`."""

    outputs: list[Path] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    pipelined: bool = False
    wall: float = 0.0
    stats: PipelineStats | None = None

    @property
    def images_per_second(self) -> float:
        return len(self.outputs) / self.wall if self.wall else float("nan")


def run_jobs(colorizer, jobs: Sequence[FileJob], *, render_factor: int | None = None, batch_size: int | None = None,
             pipeline: str = "auto", watermark: bool = False, forbid: Iterable[str | os.PathLike] = (),
             on_event: Callable[[PhotoEvent], None] | None = None, quality: int = 95, **pipeline_options) -> RunReport:
    """Colorize ``jobs`` (planned by :mod:`colorizer_lib.photos.plan`; each written with
    :meth:`FileJob.save`: provenance, ICC profile and EXIF, alpha, comparison) on the path
    :func:`use_pipeline` picks for ``pipeline``; both write the same files.

    A picture that cannot be read or written fails alone (a ``"failed"`` event, listed in
    ``failures``); so does one whose output is not finite, unless the weights are to blame
    (:class:`~colorizer_lib.photos.gpu.NonFiniteTriage`). Other errors (out of memory, a broken
    model) propagate. ``forbid``: paths never written (:func:`~colorizer_lib.photos.plan.protected_inputs`).
    ``on_event`` gets each :class:`PhotoEvent`, one call at a time (from worker threads on the
    pipelined path). ``pipeline_options``: ``workers``, ``encoder``, ``decoder``,
    ``max_batches_in_flight`` of :func:`~colorizer_lib.photos.gpu.colorize_jobs_pipelined` (unused
    when ``"auto"`` takes the simple path; refused with ``"off"``).
    """
    jobs = list(jobs)
    rf = colorizer.render_factor_or_default(render_factor)
    batch_size = default_batch_size(colorizer.device) if batch_size is None else batch_size
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    report = RunReport(pipelined=use_pipeline(pipeline, colorizer.device, len(jobs)))
    lock = threading.Lock()
    written: dict[int, Path] = {}
    failed: dict[int, str] = {}
    index = {id(job): i for i, job in enumerate(jobs)}

    def emit(kind: str, job: FileJob, path: Path | None = None, message: str = "", result=None) -> None:
        with lock:
            if kind == "done":
                written[index[id(job)]] = path
            elif kind == "failed":
                failed[index[id(job)]] = message
            if on_event is not None:
                on_event(PhotoEvent(kind, job, len(written) + len(failed), len(jobs), path, message, result))

    start = time.perf_counter()
    if report.pipelined:
        def done(job: FileJob, path: Path | None, error: str | None) -> None:
            if error is None:
                emit("done", job, path)
            else:
                emit("failed", job, message=error)

        report.stats = colorize_jobs_pipelined(colorizer, jobs, render_factor=rf, batch_size=batch_size,
                                               watermark=watermark, forbid=forbid, quality=quality, on_done=done,
                                               on_colour=lambda job: emit("colour", job), **pipeline_options)
    else:
        if pipeline_options and pipeline == "off":
            raise TypeError(f"{', '.join(pipeline_options)}: options of the pipelined path, which pipeline='off' "
                            "turns off")
        _run_simple(colorizer, jobs, rf, batch_size=batch_size, watermark=watermark, quality=quality,
                    protected=resolved_paths(forbid), emit=emit)
    report.wall = time.perf_counter() - start
    report.outputs = [written[i] for i in sorted(written)]
    report.failures = [(jobs[i].source, failed[i]) for i in sorted(failed)]
    return report


def _run_simple(colorizer, jobs: list[FileJob], rf: int, *, batch_size: int, watermark: bool, quality: int,
                protected: frozenset[Path], emit: Callable[..., None]) -> None:
    """The simple path: load a batch, colorize it (``Colorizer.colorize_batch``), save each result,
    one step after the other."""
    triage = NonFiniteTriage(colorizer, len(jobs))
    for first in range(0, len(jobs), batch_size):
        loaded = []
        for job in jobs[first:first + batch_size]:
            try:
                item = load_image(job.source)
                job.identity()
            except InputError as exc:
                emit("failed", job, message=str(exc))
                continue
            if has_colour(item.rgb):
                emit("colour", job)
            loaded.append((job, item))
        results = []
        while loaded:
            try:
                results = colorizer.colorize_batch([item for _, item in loaded], rf, batch_size=len(loaded),
                                                   watermark=watermark)
            except NonFiniteOutputError as exc:  # those pictures fail alone, unless it is the weights
                bad = triage.failing(exc, len(loaded))
                for position in bad:
                    emit("failed", loaded[position][0], message=triage.message())
                loaded = [item for position, item in enumerate(loaded) if position not in bad]
                continue
            triage.passed(len(loaded))
            break
        for (job, _), result in zip(loaded, results):
            try:
                path = job.save(result, quality=quality, forbid=job.guarded(protected))
            except (InputError, OSError) as exc:
                emit("failed", job, message=str(exc))
            else:
                emit("done", job, path, result=result)


def read_result(job: FileJob, model_name: str, render_factor: int):
    """The :class:`~colorizer_lib.colorizer.ColorizeResult` of a finished ``job`` read back from its
    output and its input (a job skipped as finished, or one the pipelined path wrote without keeping
    the pictures), for front ends that show results.

    Raises:
        InputError: the output or the input cannot be read.
    """
    image = original_for_display(load_image(job.output))
    original = original_for_display(load_image(job.source))
    return ColorizeResult(image, original, render_factor, model_name, source=job.source,
                          source_identity=job.identity())

