"""``VideoColorizerUI``: a clip fetched (link, path or upload), a render-factor preview, the full render.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Callable, Sequence

import ipywidgets as W

from colorizer_lib.constants import VIDEO_PREVIEW_RENDER_FACTORS
from colorizer_lib.errors import InputError
from .controls import (
    buttons_disabled, LABEL_STYLE, MAX_INLINE_BYTES, StatusLine, call_in_output, clear, download_widget,
    nothing_given_message, report_exception, upload_controls,
)
from .environment import in_colab
from .images import DISPLAY_SIZE, encode_image, parse_factors, thumbnail
from .model_choice import ColorizerCache, ColorizerFactory, ModelPicker
from .sources import source_stem
from .uploads import clear_upload, colab_upload, save_uploads, upload_files


#: Render factors compared by the video preview (:data:`colorizer_lib.constants.VIDEO_PREVIEW_RENDER_FACTORS`).
VIDEO_PREVIEW_FACTORS = VIDEO_PREVIEW_RENDER_FACTORS


def fetch_video(source: str, work_dir: Path | str, download: Callable[..., Path] | None = None,
                on_download: Callable[[], None] | None = None) -> Path:
    """The local file for a video link or path.

    A local path must exist (``InputError`` otherwise). A link (what ``colorizer_lib.video.is_url``
    calls one, as ``colorize video`` does: http, https, file, www.) is downloaded with
    ``colorizer_lib.video.download_video`` into ``work_dir/downloads``, which reuses a download it
    finished before, so re-running after a disconnect reuses the file (and the render resumes from its
    finished segments). ``on_download`` is called just before a download starts (not when the file is
    reused); ``download`` replaces ``download_video`` in tests.
    """
    from colorizer_lib import video

    source = source.strip()
    if not source:
        raise InputError("No video given: paste a link (YouTube, Vimeo, a direct .mp4...) or the path of a "
                         "video file, or upload a clip.")
    if not video.is_url(source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise InputError(f"{source!r} is neither a link nor an existing video file. Paste a full link "
                             "(https://...) or the path of a video file.")
        return path
    downloads = Path(work_dir) / "downloads"
    if on_download is not None and video.finished_download(source, downloads) is None:
        on_download()
    return Path((download or video.download_video)(source, downloads))


def video_player(path: Path | str) -> W.Widget:
    """An inline player for an mp4/webm file (embedded in the notebook), or a message with the file's
    path when it is larger than ``MAX_INLINE_BYTES``."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_INLINE_BYTES:
        return W.HTML(f"{html.escape(path.name)} is {size / 2**20:.0f} MiB, too large to play inline; "
                      "use the download link.")
    player = W.Video(value=path.read_bytes(), format=path.suffix.lstrip(".").lower() or "mp4",
                     autoplay=False, loop=False, controls=True, layout=W.Layout(max_width="640px"))
    player.add_class("colorizer-video")
    return player


class VideoColorizerUI:
    """Model choice, render-factor slider, link/path box, upload, Preview and Colorize buttons,
    progress (with ETA), status line, preview grid and the inline player with a download link.

    Parameters: ``model``, ``render_factor`` (None or 0 = the model's default), ``source`` (a link
    or path), ``output_dir`` (results, uploads, downloads and the resumable segments),
    ``preview_factors``, ``preview_frames`` (frames per preview), ``smoothing`` (temporal chroma
    smoothing strength, 0 = off), ``segment_seconds`` (resumable unit), ``factory``.

    Python API (what the buttons do; errors are shown in the status line, never raised):
    ``preview()`` -> ``PreviewResult`` or None, ``render()`` -> ``VideoResult`` or None;
    ``source_path()`` resolves the link, path or upload to a local file. ``last_error`` keeps the
    traceback of the last failure. The object displays itself in a notebook.
    """

    def __init__(self, model: str | None = None, render_factor: int | None = None, source: str = "",
                 output_dir: Path | str = "colorized_video", factory: ColorizerFactory | None = None,
                 preview_factors: str | Sequence[int] = VIDEO_PREVIEW_FACTORS, preview_frames: int = 3,
                 smoothing: float = 0.6, segment_seconds: float = 60.0):
        self.cache = ColorizerCache(factory)
        self.status = StatusLine()
        self.output_dir = Path(output_dir)
        self.preview_factors = parse_factors(preview_factors)
        self.preview_frames = int(preview_frames)
        self.smoothing = float(smoothing)
        self.segment_seconds = segment_seconds
        self.last_error: str | None = None
        self.last_preview = None
        self.last_result = None
        self.picker = ModelPicker(model or "video", render_factor, self.cache, self.status)
        self.model, self.render_factor = self.picker.model, self.picker.render_factor
        self.url = W.Text(value=source or "", description="Link / path", style=LABEL_STYLE,
                          placeholder="https://www.youtube.com/watch?v=... or /path/to/film.mp4",
                          layout=W.Layout(width="560px"))
        self.colab = in_colab()
        self.upload, self.upload_log, upload_help = upload_controls("Upload a clip", "video/*", False, self.colab)
        if self.colab:
            self.upload.on_click(lambda _button: self._guarded(self.upload_clip))
        self.preview_button = W.Button(description="Preview frames", icon="images")
        self.render_button = W.Button(description="Colorize video", button_style="primary", icon="film")
        self.preview_button.add_class("colorizer-preview")
        self.render_button.add_class("colorizer-run")
        self.progress = W.Output()  # the pipeline's progress bar (count, rate, ETA) appears here
        self.preview_area = W.VBox([])
        self.result_area = W.VBox([])
        self.result_area.add_class("colorizer-results")
        self.preview_button.on_click(lambda _button: self.preview())
        self.render_button.on_click(lambda _button: self.render())
        self.widget = W.VBox([
            W.HTML("<b>Colorize a film</b>: paste a link (YouTube and most video sites) or a path, or upload "
                   "a short clip. <i>Preview frames</i> shows a few frames at several render factors; pick "
                   "one on the slider, then <i>Colorize video</i>. An interrupted render resumes where it "
                   "stopped when you press Colorize again."),
            self.model, self.render_factor, self.url,
            W.HBox([self.upload, self.preview_button, self.render_button]), upload_help, self.upload_log,
            self.picker.log, self.progress, self.status.widget, self.preview_area, self.result_area,
        ])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _guarded(self, action: Callable[[], Any]):
        self.last_error = None
        with buttons_disabled((self.preview_button, self.render_button) + ((self.upload,) if self.colab else ())):
            try:
                return action()
            except Exception as error:  # shown to the user in the widget, not as a traceback
                self.last_error = report_exception(self.status, error)
                return None

    def upload_clip(self) -> Path | None:
        """Colab: ask for a clip with Colab's uploader (no size limit), keep it under
        ``output_dir/uploads`` and put its path in the box (what the Colab upload button does)."""
        paths = call_in_output(self.upload_log, colab_upload, self.output_dir / "uploads")
        clear(self.upload_log)
        if not paths:
            self.status.info("No file chosen: nothing was uploaded.")
            return None
        self.url.value = str(paths[-1])
        self.status.info(f"Uploaded {paths[-1].name}. Press Preview frames or Colorize video.")
        return paths[-1]

    def source_path(self) -> Path:
        """The local video file: the uploaded clip (saved under ``output_dir/uploads``), else the
        link (downloaded once, see ``fetch_video``) or path in the box."""
        uploads = [] if self.colab else upload_files(self.upload)
        if uploads:
            [path] = save_uploads(uploads[-1:], self.output_dir / "uploads")
            clear_upload(self.upload)
            self.url.value = str(path)
            return path
        if not self.url.value.strip():
            raise InputError(nothing_given_message("video", self.colab))
        return fetch_video(self.url.value, self.output_dir,
                           on_download=lambda: self.status.info("Downloading the video..."))

    def output_path(self, source: Path) -> Path:
        """Where the render of ``source`` goes: ``output_dir/<stem>_colorized_rf<N>.mp4``."""
        return self.output_dir / f"{source_stem(str(source))}_colorized_rf{int(self.render_factor.value)}.mp4"

    def preview(self):
        """Colorize ``preview_frames`` frames at each of ``preview_factors``; show and save the grid
        (``output_dir/<stem>_preview.png``). Returns the ``PreviewResult`` (None after an error)."""
        return self._guarded(self._preview)

    def _preview(self):
        from colorizer_lib import video

        source = self.source_path()
        colorizer = self.picker.colorizer()
        self.status.info(f"Previewing {self.preview_frames} frames at render factors "
                         f"{', '.join(map(str, self.preview_factors))}...")
        result = video.preview_video(source, colorizer, n_frames=self.preview_frames,
                                     render_factors=self.preview_factors,
                                     output=self.output_dir / f"{source_stem(str(source))}_preview.png")
        image = W.Image(value=encode_image(thumbnail(result.grid, 2 * DISPLAY_SIZE), "JPEG"), format="jpeg")
        image.add_class("colorizer-preview-image")
        self.preview_area.children = (W.HTML("<b>Preview</b>: one row per moment, one column per render "
                                             "factor. Set the slider to the column you like best."), image)
        self.status.info(f"Preview saved to {result.path}.{result.note}")
        self.last_preview = result
        return result

    def render(self):
        """Colorize the whole video (resuming finished segments of an interrupted run), then show
        the player and a download link. Returns the ``VideoResult`` (None after an error)."""
        return self._guarded(self._render)

    def _render(self):
        from colorizer_lib import video

        source = self.source_path()
        colorizer = self.picker.colorizer()
        output = self.output_path(source)
        self.status.info(f"Colorizing {source.name} at render factor {self.render_factor.value} "
                         f"into {output}...")
        self.progress.clear_output()
        result = call_in_output(self.progress, video.colorize_video, source, colorizer, output,
                                render_factor=int(self.render_factor.value), smoothing=self.smoothing,
                                segment_seconds=self.segment_seconds, resume=True, progress=True)
        summary = (f"Done: {result.frames_out} frames ({result.duration:.1f} s of video) in {result.seconds:.0f} s"
                   f" ({result.processing_fps:.1f} frames/s)")
        if result.resumed_frames:
            summary += f"; {result.resumed_frames} frames came from the interrupted run"
        self.status.info(summary + "." + "".join(f" Note: {w}" for w in result.warnings))
        self.result_area.children = (video_player(result.path), download_widget(result.path))
        self.last_result = result
        return result
