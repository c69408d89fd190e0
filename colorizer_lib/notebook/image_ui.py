"""``ImageColorizerUI``: links, paths, uploads and zips colorized in the notebook, with the result views.
"""

from __future__ import annotations

import html
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import ipywidgets as W
from PIL import Image

from colorizer_lib.errors import InputError
from colorizer_lib.io import is_url
from .controls import (
    buttons_disabled, LABEL_STYLE, ProgressDisplay, StatusLine, call_in_output, clear, download_widget,
    nothing_given_message, report_exception, upload_controls,
)
from .environment import in_colab
from .images import (
    BatchReport, DISPLAY_SIZE, before_after_html, colorize_to_zip, encode_image, parse_factors, render_factor_sweep,
    thumbnail,
)
from .model_choice import ColorizerCache, ColorizerFactory, ModelPicker
from .sources import example_source, parse_sources, result_filename, source_stem
from .uploads import Upload, clear_upload, colab_upload, save_uploads, upload_files


@dataclass
class ImageOutcome:
    """One colorized photo shown by the UI: the ``ColorizeResult`` and the file it was saved to."""

    name: str
    result: Any
    path: Path


class ImageColorizerUI:
    """Model choice, render-factor slider, URL/path box, file upload, Colorize button, progress,
    status line and results (before/after view, side by side, download links).

    Parameters: ``model`` (registry name, alias or weights path; None = the embedded model),
    ``render_factor`` (None or 0 = the model's default), ``sources`` (initial text of the URL box;
    URLs, image paths, folders or zips), ``output_dir`` (where results are saved),
    ``factory`` (``name_or_path -> Colorizer``; default ``Colorizer.from_pretrained``).

    Python API: ``colorize()`` (what the button does) returns the list of ``ImageOutcome``;
    ``sweep(factors)`` returns the grid image of a render-factor sweep and saves it;
    ``outcomes``, ``batches`` (``BatchReport`` list), ``status.text``, ``last_error``.
    The object displays itself in a notebook.
    """

    def __init__(self, model: str | None = None, render_factor: int | None = None, sources: str = "",
                 output_dir: Path | str = "colorized", factory: ColorizerFactory | None = None,
                 max_shown: int = 6):
        self.cache = ColorizerCache(factory)
        self.status = StatusLine()
        self.output_dir = Path(output_dir)
        self.max_shown = max_shown
        self.outcomes: list[ImageOutcome] = []
        self.batches: list[BatchReport] = []
        self.last_error: str | None = None

        self.picker = ModelPicker(model, render_factor, self.cache, self.status)
        self.model, self.render_factor = self.picker.model, self.picker.render_factor
        self.urls = W.Textarea(value=sources or "", description="Links / paths", style=LABEL_STYLE,
                               placeholder="https://.../photo.jpg or a path, a folder, a .zip (one per line)",
                               layout=W.Layout(width="560px", height="60px"))
        self.colab = in_colab()
        self.upload, self.upload_log, upload_help = upload_controls("Upload photos or a .zip", "image/*,.zip",
                                                                    True, self.colab)
        self.button = W.Button(description="Colorize", button_style="primary", icon="paint-brush")
        self.button.add_class("colorizer-run")
        self.progress = ProgressDisplay("image")
        self.results = W.VBox([])
        self.results.add_class("colorizer-results")
        self.button.on_click(lambda _button: self.colorize())
        if self.colab:
            self.upload.on_click(lambda _button: self.upload_and_colorize())
        self.widget = W.VBox([
            W.HTML("<b>Colorize photos</b>: paste links or paths, or upload photos (or a .zip of them), "
                   "then press Colorize. Lower render factors give more vivid colour, higher ones more "
                   "stable colour on detailed photos."),
            self.model, self.render_factor, self.urls, W.HBox([self.upload, self.button]), upload_help,
            self.upload_log, self.picker.log, self.progress.widget, self.status.widget, self.results,
        ])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _colorizer(self):
        return self.picker.colorizer()

    def colorize(self, example_if_empty: bool = False) -> list[ImageOutcome]:
        """Colorize everything in the links box and the upload widget, save the results to
        ``output_dir`` and show them. With nothing given: the default example photo when
        ``example_if_empty`` (what the notebook's Run all does; the box stays empty), else an error
        saying what to give (and that a large upload may not have arrived). Errors are shown in the
        status line, never raised; returns the outcomes of this run (``[]`` after an error)."""
        return self._guarded(lambda: self._colorize(example_if_empty))

    def upload_and_colorize(self) -> list[ImageOutcome]:
        """Colab: ask for photos (or zips) with Colab's uploader, save them under
        ``output_dir/uploads`` and colorize exactly those (what the Colab upload button does)."""
        def run():
            paths = call_in_output(self.upload_log, colab_upload, self.output_dir / "uploads")
            clear(self.upload_log)
            if not paths:
                self.status.info("No file chosen: nothing was uploaded.")
                return []
            return self._run([str(path) for path in paths], [])

        return self._guarded(run)

    def _guarded(self, action: Callable[[], list[ImageOutcome]]) -> list[ImageOutcome]:
        self.last_error = None
        with buttons_disabled([self.button] + ([self.upload] if self.colab else [])):
            try:
                return action()
            except Exception as error:  # shown to the user in the widget, not as a traceback
                self.last_error = report_exception(self.status, error)
                if self.progress.active:
                    self.progress.finish(False)
                else:  # stopped before anything was counted: the last run's count would mislead
                    self.progress.reset()
                return []

    def _colorize(self, example_if_empty: bool) -> list[ImageOutcome]:
        entries = parse_sources(self.urls.value)
        uploads = [] if self.colab else upload_files(self.upload)
        if not entries and not uploads:
            if not example_if_empty:
                raise InputError(nothing_given_message("photo", self.colab))
            example = example_source()
            self.status.info(f"No photo given yet: colorizing the example {Path(example).name}.")
            return self._run([example], [])
        if not self.colab:
            clear_upload(self.upload)  # the next press does not redo these files
        return self._run(entries, uploads)

    def _run(self, entries: list[str], uploads: list[Upload]) -> list[ImageOutcome]:
        singles: list[tuple[str, str, str]] = []  # (stem, path or URL, suffix)
        batches: list[tuple[str, Any]] = []  # (name, folder path / zip path / zip bytes)
        for entry in entries:
            local = Path(entry).expanduser()
            if not is_url(entry) and (local.is_dir() or local.suffix.lower() == ".zip"):
                batches.append((local.name or "folder", local))
            else:
                singles.append((source_stem(entry), entry if is_url(entry) else str(local),
                                Path(urllib.parse.urlsplit(entry).path).suffix))
        photos_uploaded = [upload for upload in uploads if not upload.is_zip]
        if photos_uploaded:  # on disk, so that results record their input and a rerun resumes
            for upload, path in zip(photos_uploaded, save_uploads(photos_uploaded, self.output_dir / "uploads")):
                singles.append((source_stem(upload.name), str(path), Path(upload.name).suffix))
        batches += [(Path(upload.name).stem, upload.content) for upload in uploads if upload.is_zip]

        colorizer = self._colorizer()
        rf = int(self.render_factor.value)
        self.progress.start(len(singles))
        outcomes, failed = self._colorize_photos(colorizer, singles, rf) if singles else ([], [])
        reports = []
        for name, source in batches:
            self.status.info(f"Colorizing every photo in {name}...")
            zip_path = self.output_dir / f"{name}_colorized_rf{rf}.zip"
            reports.append(colorize_to_zip(colorizer, source, zip_path, rf, on_progress=self.progress.update))
        self.outcomes.extend(outcomes)
        self.batches.extend(reports)
        self._show(outcomes, reports)
        failed += [item for report in reports for item in report.failed]
        done = len(outcomes) + sum(len(r.done) for r in reports)
        message = f"Done: {done} photo{'s' if done != 1 else ''} colorized into {self.output_dir}."
        if failed:
            details = "\n".join(f"{name}: {text}" for name, text in failed)
            kept = " The results shown are from the earlier run." if not done and self.outcomes else ""
            self.status.error(f"{message} {len(failed)} could not be read and {'was' if len(failed) == 1 else 'were'}"
                              f" skipped:\n{details}{kept}")
        else:
            self.status.info(message)
        self.progress.finish(not failed)
        return outcomes

    def _colorize_photos(self, colorizer, singles: list[tuple[str, str, str]],
                         rf: int) -> tuple[list[ImageOutcome], list[tuple[str, str]]]:
        """The photo pipeline (:mod:`colorizer_lib.photos`) on ``singles``: each named
        ``<stem>_colorized_rf<N>`` (``<stem>_2...`` when that name holds another input's result or
        is taken in this run), finished ones shown again without colorizing them (resume), the
        rest batched (pipelined on a GPU). Returns the outcomes in order and ``(name, message)`` per failure."""
        from colorizer_lib import photos

        claimed: set[Path] = set()
        named: list[tuple[str, Any]] = []  # (stem, FileJob)
        failed: list[tuple[str, str]] = []
        for stem, source, suffix in singles:
            names = (self.output_dir / result_filename(s, rf, suffix) for s in photos.numbered(stem))
            try:
                named.append((stem, photos.claim_job(source, names, claimed, colorizer.name, rf)))
            except InputError as error:  # unreadable input: skipped, not fatal
                failed.append((stem, str(error)))
        jobs = [job for _, job in named]
        stem_of = {id(job): stem for stem, job in named}
        photos.prepare_outputs(jobs)
        planned = photos.sort_jobs(jobs, colorizer.name, rf, replace=("settings",))  # finished: shown again
        failed += [(stem_of[id(job)], message) for job, message in planned.refused]
        results: dict[int, Any] = {id(job): None for job in planned.skipped}
        base = len(singles) - len(planned.todo)
        self.progress.update(base, len(singles))
        if planned.todo:
            what = stem_of[id(planned.todo[0])] if len(planned.todo) == 1 else f"{len(planned.todo)} photos"
            self.status.info(f"Colorizing {what} at render factor {rf}...")

        def on_event(event) -> None:
            if event.kind == "done":
                results[id(event.job)] = event.result
            elif event.kind == "failed":
                failed.append((stem_of[id(event.job)], event.message))
            if event.kind != "colour":
                self.progress.update(base + event.finished, len(singles))

        photos.run_jobs(colorizer, planned.todo, render_factor=rf, forbid=photos.protected_inputs(jobs),
                        on_event=on_event)
        outcomes = []
        for stem, job in named:
            if id(job) not in results:
                continue
            try:
                result = results[id(job)]
                if result is None:  # finished earlier, or written by the pipelined path
                    result = photos.read_result(job, colorizer.name, rf)
            except InputError as error:  # a finished result or its input that is gone or unreadable now
                failed.append((stem, str(error)))
                continue
            outcomes.append(ImageOutcome(stem, result, job.output))
        return outcomes, failed

    def _show(self, outcomes: list[ImageOutcome], reports: list[BatchReport]) -> None:
        if not outcomes and not reports:
            return  # a run where everything failed keeps the earlier results on screen
        children = []
        for outcome in outcomes[: self.max_shown]:
            children.append(result_view(outcome))
        if len(outcomes) > self.max_shown:
            children.append(W.HTML(f"Showing {self.max_shown} of {len(outcomes)} results; all are saved in "
                                   f"<code>{html.escape(str(self.output_dir))}</code>."))
        children.extend(batch_view(report) for report in reports)
        self.results.children = tuple(children)

    def colorize_batch(self, source: Path | str) -> BatchReport:
        """Colorize a folder or ``.zip`` of photos (at the slider's render factor) into
        ``output_dir/<name>_colorized_rf<N>.zip``. Meant for a notebook cell: errors are raised
        (``InputError`` for a missing folder or one without photos), not only shown."""
        source = Path(source).expanduser()
        if not source.exists():
            raise InputError(f"{source} does not exist; give the path of a folder or a .zip of photos "
                             "(on Colab, tick keep_on_drive to reach your Drive under /content/drive/MyDrive).")
        rf = int(self.render_factor.value)
        self.progress.start(1)
        report = colorize_to_zip(self._colorizer(), source, self.output_dir / f"{source.stem}_colorized_rf{rf}.zip",
                                 rf, on_progress=self.progress.update)
        self.progress.finish(not report.failed)
        self.batches.append(report)
        return report

    def sweep(self, factors: str | Sequence[int] = (10, 20, 30, 40), source: Any = None) -> Image.Image:
        """Colorize one photo (``source``; default: the last result's source, else the default
        example) at each render factor, save the labelled grid to ``output_dir`` and return it."""
        if source is None:
            source = self.outcomes[-1].result.original if self.outcomes else example_source()
        name = self.outcomes[-1].name if self.outcomes and source is self.outcomes[-1].result.original \
            else source_stem(source) if isinstance(source, str) else "image"
        colorizer = self._colorizer()
        factors, moved = colorizer.fit_render_factors(parse_factors(factors))
        self.status.info(f"Sweep: colorizing {name} at render factors {', '.join(map(str, factors))}...{moved}")
        self.progress.unit = "render factor"  # the UI's progress bar counts the factors done
        try:
            self.progress.start(len(factors))
            _, grid = render_factor_sweep(colorizer, source, factors, on_progress=self.progress.update)
            self.progress.finish(True)
        except Exception:
            self.progress.finish(False)
            raise
        finally:
            self.progress.unit = "image"
        self.output_dir.mkdir(parents=True, exist_ok=True)
        grid.save(self.output_dir / f"{name}_sweep.png")
        self.status.info(f"Sweep saved to {self.output_dir / f'{name}_sweep.png'}.{moved}")
        return grid


def result_view(outcome: ImageOutcome) -> W.Widget:
    """Tabs for one result: a before/after divider view and the side-by-side comparison,
    then a download link for the full-resolution file."""
    result = outcome.result
    slider = W.HTML(before_after_html(result.original, result.image))
    compare = W.Image(value=encode_image(thumbnail(result.compare(), 2 * DISPLAY_SIZE), "JPEG"), format="jpeg")
    compare.add_class("colorizer-result-image")
    tabs = W.Tab(children=[slider, compare])
    tabs.set_title(0, "Before / after")
    tabs.set_title(1, "Side by side")
    caption = W.HTML(f"<b>{html.escape(outcome.name)}</b> · render factor {result.render_factor} · "
                     f"model {html.escape(str(result.model_name))} · {result.image.width}×{result.image.height}")
    return W.VBox([caption, tabs, download_widget(outcome.path)])


def batch_view(report: BatchReport) -> W.Widget:
    """A summary line for a batch (counts, failures) and the zip's download link."""
    text = f"<b>{html.escape(report.zip_path.name)}</b>: {len(report.done)} colorized"
    if report.failed:
        text += f", {len(report.failed)} failed (listed in FAILED.txt): " + html.escape(
            "; ".join(f"{name}: {message}" for name, message in report.failed))
    return W.VBox([W.HTML(text), download_widget(report.zip_path)])
