"""Small widget building blocks shared by both UIs: download links, progress, the status line, output
capture, error reporting, upload controls.
"""

from __future__ import annotations

import base64
import contextlib
import html
import importlib
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import ipywidgets as W

from colorizer_lib.errors import ColorizerError
from .environment import in_colab
from .uploads import UPLOAD_LIMIT_TEXT


#: Largest file offered as an inline (data URI) download link or inline video.
MAX_INLINE_BYTES = 64 * 2**20


#: Width of the labels left of the controls (all the same, so the controls line up).
LABEL_STYLE = {"description_width": "100px"}


def format_eta(done: int, total: int, elapsed: float, unit: str = "image") -> str:
    """Progress text such as ``"3/10 images · 1.2 s/image · ETA 8 s"`` (no ETA before the first item)."""
    plural = unit if total == 1 else unit + "s"
    text = f"{done}/{total} {plural}"
    if done <= 0 or elapsed <= 0:
        return text
    per_item = elapsed / done
    remaining = per_item * max(total - done, 0)
    return f"{text} · {_fmt_seconds(per_item)}/{unit} · ETA {_fmt_seconds(remaining)}"


def _fmt_seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def download_widget(path: Path | str, description: str | None = None) -> W.Widget:
    """A way to download ``path``: a button calling ``google.colab.files.download`` on Colab,
    else an HTML link with the file embedded as a data URI (files over ``MAX_INLINE_BYTES`` get a
    message with their path instead, as a browser cannot hold them in a link)."""
    path = Path(path)
    description = description or f"Download {path.name}"
    if in_colab():
        button = W.Button(description=description, icon="download", layout=W.Layout(width="auto"))

        def _download(_):
            importlib.import_module("google.colab.files").download(str(path))

        button.on_click(_download)
        return button
    size = path.stat().st_size
    if size > MAX_INLINE_BYTES:
        return W.HTML(f"{html.escape(path.name)} is {size / 2**20:.0f} MiB, too large for a browser link: "
                      f"find it at <code>{html.escape(str(path.resolve()))}</code>.")
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".zip": "application/zip",
            ".mp4": "video/mp4", ".webp": "image/webp"}.get(path.suffix.lower(), "application/octet-stream")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    link = W.HTML(f'<a class="colorizer-download" download="{html.escape(path.name)}" '
                  f'href="data:{mime};base64,{data}">&#x2B07; {html.escape(description)}</a>')
    link.add_class("colorizer-download")
    return link


class ProgressDisplay:
    """A progress bar with a text line (count, speed and ETA); ``widget`` is an HBox."""

    def __init__(self, unit: str = "image"):
        self.unit = unit
        self.bar = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="320px"))
        self.label = W.Label("")
        self.widget = W.HBox([self.bar, self.label])
        self._start = time.monotonic()
        self.active = False  # between start() and finish()

    def reset(self) -> None:
        """An empty bar and no text (a run that stopped before it began: nothing to count)."""
        self.bar.value, self.bar.bar_style, self.label.value, self.active = 0, "", "", False

    def start(self, total: int, text: str = "") -> None:
        self.active = True
        self.bar.max = max(int(total), 1)
        self.bar.value = 0
        self.bar.bar_style = "info"
        self._start = time.monotonic()
        self.label.value = text or format_eta(0, total, 0.0, self.unit)

    def update(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.bar.max = max(int(total), 1)
        self.bar.value = min(int(done), self.bar.max)
        self.label.value = format_eta(int(done), int(self.bar.max), time.monotonic() - self._start, self.unit)

    def finish(self, ok: bool) -> None:
        """Colour the bar green (``ok``) or red; on success the label gives the count and the time taken."""
        self.active = False
        self.bar.bar_style = "success" if ok else "danger"
        if ok:
            self.bar.value = self.bar.max
            total = self.bar.max
            self.label.value = (f"{total} {self.unit if total == 1 else self.unit + 's'} in "
                                f"{_fmt_seconds(time.monotonic() - self._start)}")


class StatusLine:
    """An HTML line for progress messages and readable errors (``widget``; ``text`` is the last
    message as plain text, for tests)."""

    def __init__(self):
        self.widget = W.HTML("")
        self.widget.add_class("colorizer-status")
        self.text = ""
        self.is_error = False

    def info(self, message: str) -> None:
        self.text, self.is_error = message, False
        self.widget.value = f'<span style="color:#555">{html.escape(message)}</span>'

    def error(self, message: str) -> None:
        self.text, self.is_error = message, True
        self.widget.value = (f'<div class="colorizer-error" style="color:#b00020;border-left:4px solid #b00020;'
                             f'padding:4px 8px;white-space:pre-wrap">{html.escape(message)}</div>')


def clear(output: W.Output) -> None:
    """Empty an Output widget in the front end (``clear_output``) and in its synced ``outputs``."""
    output.clear_output()
    output.outputs = ()


def call_in_output(output: W.Output, function: Callable[..., Any], *args, **kwargs) -> Any:
    """``function(*args, **kwargs)`` with what it displays (progress bars) going to ``output``.

    Unlike a bare ``with output:``, which in a kernel prints an exception's traceback into the
    widget and swallows it, this re-raises the exception so the caller can show it readably.
    """
    error: BaseException | None = None
    with output:
        try:
            value = function(*args, **kwargs)
        except Exception as caught:  # re-raised below, outside the Output context
            error = caught
    if error is not None:
        raise error
    return value


@contextlib.contextmanager
def buttons_disabled(buttons: Iterable[W.Widget]) -> Iterator[None]:
    """Disable ``buttons`` while a run lasts (no second click starts a second run), and enable them
    again however it ends."""
    buttons = list(buttons)
    for button in buttons:
        button.disabled = True
    try:
        yield
    finally:
        for button in buttons:
            button.disabled = False


def report_exception(status: StatusLine, error: BaseException) -> str:
    """Show ``error`` in ``status`` readably and return the traceback text (kept by the UI)."""
    if isinstance(error, ColorizerError):
        status.error(str(error))
    else:
        status.error(f"Unexpected error ({type(error).__name__}): {error}\nPlease report it; the full "
                     "traceback is in the UI's last_error attribute.")
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def upload_controls(description: str, accept: str, multiple: bool, colab: bool) -> tuple[W.Widget, W.Output, W.HTML]:
    """The upload button, an Output for the uploader, and a help line.

    On Colab: a plain button (the UI calls ``colab_upload`` when it is pressed: Colab's own
    uploader, with no size limit, shows in the Output). Elsewhere: a ``FileUpload``, with a line
    saying that large files must be given by path."""
    log = W.Output()
    if colab:
        button = W.Button(description=description, icon="upload", layout=W.Layout(width="auto"))
        button.add_class("colorizer-upload")
        note = W.HTML('<div style="font-size:12px;color:#666;line-height:1.4">Upload opens Colab\'s file picker '
                      "(any size); the files are saved on the runtime's disk and used at once.</div>")
        return button, log, note
    upload = W.FileUpload(accept=accept, multiple=multiple, description=description, layout=W.Layout(width="auto"))
    upload.add_class("colorizer-upload")
    note = W.HTML(f'<div style="font-size:12px;color:#666;line-height:1.4">Uploads: {UPLOAD_LIMIT_TEXT}; give '
                  "larger files by path in the box above.</div>")
    return upload, log, note


def nothing_given_message(kind: str, colab: bool) -> str:
    """What a Colorize press with no input says: what to give, and why a chosen upload may be missing."""
    what = ("Paste a link or the path of a video file, or upload a clip" if kind == "video" else
            "Paste links or paths (one per line), or upload photos or a .zip")
    if colab:
        return f"No {kind} given. {what} with the Upload button."
    return (f"No {kind} given. {what}. If you chose a file with the upload button and still see this, it did not "
            f"arrive: {UPLOAD_LIMIT_TEXT}. Put the file on this machine's disk (e.g. the Jupyter file browser's "
            "upload, which has no such limit) and paste its path in the box.")
