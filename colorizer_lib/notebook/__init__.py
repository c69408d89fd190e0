"""ipywidgets front ends for the notebooks: ``ImageColorizerUI`` and ``VideoColorizerUI``.

The notebooks only build these objects; every action a button performs is a plain method
(``ImageColorizerUI.colorize()``, ``VideoColorizerUI.preview()`` / ``.render()``) or a
function of this package, so tests drive everything from Python without a browser.

Design rules:

* The colorizer comes from an injectable *factory* ``factory(name_or_path) -> Colorizer``
  (default: ``Colorizer.from_pretrained``), memoised by ``ColorizerCache``.
* Errors never escape a button callback as a traceback: a ``ColorizerError`` is shown in the
  UI's status line with its message (which says what to do next); anything else is shown as an
  unexpected error with its type and message, and the traceback is kept in ``ui.last_error``.
* Works with ipywidgets 7 and 8 (``upload_files`` reads both ``FileUpload`` formats) and in
  Colab and in Jupyter. Uploads: on Colab through ``google.colab.files.upload`` (no size limit; the
  files land on the runtime's disk), in Jupyter through ``FileUpload``, whose files travel in one
  widget message and silently never arrive above the server's message limit (about 10 MB): a
  Colorize press with nothing to colorize says so instead of colorizing something else.
  Downloads: ``google.colab.files`` on Colab, data-URI links in Jupyter.

One job per module, importing only downwards in this order::

    environment   Colab or Jupyter, the Drive folder, the device in one line
    sources       links and paths typed by the user, output names, the example photo
    uploads       FileUpload values (ipywidgets 7 and 8), Colab's uploader, saving uploads
    images        display copies, before/after view, render-factor sweep, photos to a zip
    controls      widget building blocks: downloads, progress, status line, errors
    model_choice  the colorizer factory and cache, model dropdown, render-factor slider
    image_ui      ImageColorizerUI
    video_ui      VideoColorizerUI

The names below are the package's public interface; notebooks import ``colorizer_lib.notebook``.
"""

from __future__ import annotations

from .environment import describe_runtime, drive_folder, in_colab
from .sources import (
    DEFAULT_EXAMPLE, EXAMPLES_URL, example_source, output_suffix, parse_sources, result_filename, source_stem,
)
from .uploads import UPLOAD_LIMIT_TEXT, clear_upload, colab_upload, parse_upload, save_uploads, Upload, upload_files
from .images import (
    DISPLAY_SIZE, BatchReport, before_after_html, colorize_to_zip, encode_image, parse_factors,
    render_factor_sweep, sweep_grid, thumbnail,
)
from .controls import (
    LABEL_STYLE, MAX_INLINE_BYTES, call_in_output, clear, download_widget, format_eta, nothing_given_message,
    ProgressDisplay, report_exception, StatusLine, upload_controls,
)
from .model_choice import (
    MODEL_LABEL_CHARS, SLIDER_RANGE, ColorizerCache, ColorizerFactory, default_factory, embedded_model_name,
    find_spec, model_options, model_value, ModelPicker, slider_bounds, spec_default_render_factor,
)
from .image_ui import batch_view, ImageColorizerUI, ImageOutcome, result_view
from .video_ui import VIDEO_PREVIEW_FACTORS, fetch_video, video_player, VideoColorizerUI

__all__ = [
    "in_colab",
    "drive_folder",
    "describe_runtime",
    "EXAMPLES_URL",
    "DEFAULT_EXAMPLE",
    "parse_sources",
    "source_stem",
    "output_suffix",
    "result_filename",
    "example_source",
    "Upload",
    "UPLOAD_LIMIT_TEXT",
    "parse_upload",
    "upload_files",
    "save_uploads",
    "colab_upload",
    "clear_upload",
    "DISPLAY_SIZE",
    "BatchReport",
    "thumbnail",
    "encode_image",
    "before_after_html",
    "sweep_grid",
    "render_factor_sweep",
    "parse_factors",
    "colorize_to_zip",
    "MAX_INLINE_BYTES",
    "LABEL_STYLE",
    "ProgressDisplay",
    "StatusLine",
    "format_eta",
    "download_widget",
    "clear",
    "call_in_output",
    "report_exception",
    "upload_controls",
    "nothing_given_message",
    "SLIDER_RANGE",
    "MODEL_LABEL_CHARS",
    "ColorizerFactory",
    "ColorizerCache",
    "ModelPicker",
    "slider_bounds",
    "default_factory",
    "find_spec",
    "model_options",
    "embedded_model_name",
    "model_value",
    "spec_default_render_factor",
    "ImageOutcome",
    "ImageColorizerUI",
    "result_view",
    "batch_view",
    "VIDEO_PREVIEW_FACTORS",
    "VideoColorizerUI",
    "fetch_video",
    "video_player",
]
