"""ipywidgets front ends for the notebooks: ``ImageColorizerUI`` and ``VideoColorizerUI``.

The notebooks only build these objects; every action a button performs is a plain method
(``ImageColorizerUI.colorize()``, ``VideoColorizerUI.preview()`` / ``.render()``) or a
module-level function, so tests drive everything from Python without a browser.

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
"""

from __future__ import annotations

import base64
import hashlib
import html
import importlib
import io
import math
import re
import tempfile
import time
import traceback
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, Union

import ipywidgets as W
from PIL import Image, ImageDraw, ImageFont, ImageOps

from colorizer_lib import project
from colorizer_lib.errors import ColorizerError, InputError, RenderFactorError, WeightsError

#: Suffixes treated as images inside zip files (folders use ``image.iter_image_files``).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
#: The slider never offers more than this range, even if the library allows more (2..100):
#: above 64 the result rarely improves and a CPU takes minutes.
SLIDER_RANGE = (4, 64)
#: Largest file offered as an inline (data URI) download link or inline video.
MAX_INLINE_BYTES = 64 * 2**20
#: Longest side of the images shown in the notebook (the saved files keep full resolution).
DISPLAY_SIZE = 768
#: Longest model label in the dropdown: what its 560 px show whole (a longer one is cut by the browser).
MODEL_LABEL_CHARS = 56
#: Width of the labels left of the controls (all the same, so the controls line up).
LABEL_STYLE = {"description_width": "100px"}
#: Where the repository's example photos are published (used on Colab, where the repo is not cloned).
EXAMPLES_URL = project.raw_url("examples/")
DEFAULT_EXAMPLE = "dust-bowl-home.jpg"

ColorizerFactory = Callable[[Union[str, None]], Any]


# --------------------------------------------------------------------------------------------
# Pure helpers: parsing, naming, runtime description (no widgets involved)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """One uploaded file: its file name and its bytes."""

    name: str
    content: bytes

    @property
    def is_zip(self) -> bool:
        return self.name.lower().endswith(".zip")


def parse_upload(value: Any) -> list[Upload]:
    """Read a ``FileUpload.value`` of ipywidgets 8 or 7 into ``Upload`` records, in upload order.

    * ipywidgets 8: a tuple (or list) of dicts ``{"name", "type", "size", "content": memoryview,
      "last_modified"}``.
    * ipywidgets 7: a dict ``{filename: {"metadata": {"name", "type", "size", ...},
      "content": bytes}}``.

    An empty value gives ``[]``; anything else raises ``InputError``.
    """
    if value is None:
        return []
    if isinstance(value, dict):  # ipywidgets 7
        items = []
        for key, entry in value.items():
            if not isinstance(entry, dict) or "content" not in entry:
                raise InputError(f"Unrecognised ipywidgets 7 upload entry for {key!r}: expected a dict "
                                 "with 'metadata' and 'content'. Upgrade ipywidgets or re-upload the file.")
            name = (entry.get("metadata") or {}).get("name") or str(key)
            items.append(Upload(name, bytes(entry["content"])))
        return items
    if isinstance(value, (tuple, list)):  # ipywidgets 8
        items = []
        for entry in value:
            if not isinstance(entry, dict) or "content" not in entry or "name" not in entry:
                raise InputError("Unrecognised ipywidgets 8 upload entry: expected a dict with 'name' "
                                 "and 'content'. Upgrade ipywidgets or re-upload the file.")
            items.append(Upload(str(entry["name"]), bytes(entry["content"])))
        return items
    raise InputError(f"Unrecognised FileUpload value of type {type(value).__name__}; expected the "
                     "ipywidgets 7 dict or the ipywidgets 8 tuple. Install ipywidgets 7.6+ or 8.")


#: What the widget channel lets through, as told to users whose upload did not arrive.
UPLOAD_LIMIT_TEXT = ("files larger than about 10 MB (in Jupyter; about 1 MB in some hosted notebooks) never "
                     "reach Python through the upload button")


def upload_files(upload: Any) -> list[Upload]:
    """Every file in a ``FileUpload`` widget of ipywidgets 7 or 8, in upload order.

    ipywidgets 7 keeps the files in its ``metadata`` and ``data`` lists and builds ``value`` as a
    dict keyed by file name, which drops one of two files with the same name: read the lists.
    ipywidgets 8 keeps them in ``value`` (a tuple of dicts). An upload the browser could not read
    (ipywidgets 7's ``error``), or whose bytes arrived incomplete (fewer than its ``size``), raises
    ``InputError`` naming the file.
    """
    error = getattr(upload, "error", "")
    if error:
        raise InputError(f"The upload failed in the browser ({error}). Upload the file again; if it is large, "
                         "put it on this machine's disk and paste its path in the box instead.")
    data, metadata = getattr(upload, "data", None), getattr(upload, "metadata", None)
    if isinstance(data, list) and isinstance(metadata, list) and isinstance(upload.value, dict):  # ipywidgets 7
        if len(data) != len(metadata):
            raise InputError("The upload arrived incomplete (file names and contents do not match); "
                             "upload the files again.")
        entries = [{"name": m.get("name") or f"upload{i}", "size": m.get("size"), "content": d}
                   for i, (m, d) in enumerate(zip(metadata, data))]
    else:
        entries = [{"name": u.name, "size": None, "content": u.content} for u in parse_upload(upload.value)]
        if isinstance(upload.value, (tuple, list)):
            for entry, raw in zip(entries, upload.value):
                entry["size"] = raw.get("size")
    files = []
    for entry in entries:
        content = bytes(entry["content"])
        size = entry["size"]
        if isinstance(size, int) and size != len(content):
            raise InputError(f"{entry['name']} arrived incomplete ({len(content)} of {size} bytes): "
                             f"{UPLOAD_LIMIT_TEXT}. Put the file on this machine's disk and paste its path.")
        files.append(Upload(str(entry["name"]), content))
    return files


def save_uploads(uploads: Sequence[Upload], folder: Path | str) -> list[Path]:
    """Write uploads into ``folder`` (created) under safe names; two files with one name both stay
    (the second gets ``_2``, and a name already on disk from an earlier upload is never overwritten)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for upload in uploads:
        suffix = Path(upload.name).suffix.lower()
        stem = source_stem(upload.name)
        target, n = folder / f"{stem}{suffix}", 2
        while target.exists():
            target, n = folder / f"{stem}_{n}{suffix}", n + 1
        target.write_bytes(upload.content)
        paths.append(target)
    return paths


def colab_upload(folder: Path | str) -> list[Path]:
    """Ask the user for files with Colab's own uploader (``google.colab.files.upload``: no size
    limit) and return their paths on the runtime's disk, inside a fresh subfolder of ``folder``
    (so files with a name uploaded earlier are kept). Cancelling gives ``[]``."""
    files = importlib.import_module("google.colab.files")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = 1
    while (folder / f"upload{n}").exists():
        n += 1
    target = folder / f"upload{n}"
    target.mkdir()
    uploaded = files.upload(target_dir=str(target)) or {}
    paths = []
    for name, content in uploaded.items():
        path = target / Path(name).name
        if not path.is_file() or path.stat().st_size != len(content):  # an uploader that only returns bytes
            path.write_bytes(content)
        paths.append(path)
    if not paths:
        target.rmdir()
    return paths


def clear_upload(upload: W.FileUpload) -> None:
    """Empty a ``FileUpload`` widget so the same files are not processed twice (ipywidgets 7 and 8)."""
    if isinstance(upload.value, dict):  # ipywidgets 7: value is rebuilt from metadata + data on _counter
        upload.metadata = []
        upload.data = []
        upload.set_trait("value", {})
        upload._counter = 0
    else:
        upload.value = ()


def _is_remote(text: str) -> bool:
    return urllib.parse.urlsplit(text).scheme.lower() in ("http", "https")


def parse_sources(text: str) -> list[str]:
    """Split the URL box into entries (one per line) and check each one.

    Every entry must be an ``http(s)://`` URL or an existing local path (file, folder or ``.zip``;
    ``~`` is expanded). A line is one entry, spaces included (paths may hold spaces), except a line
    made only of links separated by spaces (a link cannot hold a space), which gives each link.
    Returns the entries in order; raises ``InputError`` naming the first bad one.
    """
    entries = []
    for line in (text or "").splitlines():
        line = line.strip()
        tokens = line.split()
        if len(tokens) > 1 and all(_is_remote(token) for token in tokens):
            entries.extend(tokens)
        elif line:
            entries.append(line)
    for entry in entries:
        if _is_remote(entry):
            if not urllib.parse.urlsplit(entry).netloc:
                raise InputError(f"{entry!r} is not a complete URL (no host name). Paste the full "
                                 "link, e.g. https://example.org/photo.jpg.")
            continue
        if urllib.parse.urlsplit(entry).scheme and not Path(entry).exists():
            raise InputError(f"{entry!r}: only http:// and https:// links are supported. Paste a direct "
                             "link to the image (right-click the picture > Copy image address).")
        if not Path(entry).expanduser().exists():
            raise InputError(f"{entry!r} is neither an http(s) URL nor an existing file or folder. "
                             "Paste a direct image link (https://...), or the path of a photo, a folder "
                             "or a .zip of photos.")
    return entries


def source_stem(source: str) -> str:
    """A safe file-name stem for a URL or path: the last path segment without its suffix."""
    path = urllib.parse.urlsplit(source).path if _is_remote(source) else source
    stem = Path(urllib.parse.unquote(path)).stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")
    return stem or "image"


def output_suffix(suffix: str) -> str:
    """The suffix a colorized copy gets: the input's (lower-cased) for JPEG, PNG, WebP and TIFF,
    else ``.png`` (GIF, BMP, unknown)."""
    suffix = suffix.lower()
    return suffix if suffix in (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff") else ".png"


def result_filename(stem: str, render_factor: int, suffix: str = ".png") -> str:
    """File name of a colorized image: ``<stem>_colorized_rf<NN><output_suffix(suffix)>``."""
    return f"{stem}_colorized_rf{render_factor}{output_suffix(suffix)}"


def example_source(name: str = DEFAULT_EXAMPLE) -> str:
    """The path of a bundled example photo when the repository is present (local Jupyter),
    else its URL in the public repository (Colab installs the package without ``examples/``)."""
    package = Path(__file__).resolve().parent
    if (Path("examples") / name).is_file():  # the notebook runs in the repository: keep the path short
        return str(Path("examples") / name)
    for candidate in (package.parent / "examples" / name, package / "examples" / name):
        if candidate.is_file():
            return str(candidate)
    return EXAMPLES_URL + name


def in_colab() -> bool:
    """True when running inside Google Colab."""
    try:
        importlib.import_module("google.colab")
    except ImportError:
        return False
    return True


def drive_folder(subfolder: str, mount_point: str = "/content/drive") -> Path:
    """On Colab, mount Google Drive (asks for permission) and return ``MyDrive/<subfolder>``
    (created), so results and long video jobs survive a disconnect. Elsewhere raises
    ``InputError``: keep a local folder instead."""
    if not in_colab():
        raise InputError("Google Drive can only be mounted on Colab; set keep_on_drive = False and use a "
                         "local folder.")
    importlib.import_module("google.colab.drive").mount(mount_point)
    folder = Path(mount_point) / "MyDrive" / subfolder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def describe_runtime(torch_module: Any = None) -> str:
    """One paragraph saying whether a GPU is present and what that means for speed.

    ``torch_module`` defaults to the real ``torch``; tests pass a stand-in with ``cuda``.
    """
    if torch_module is None:
        import torch as torch_module
    cuda = torch_module.cuda
    if cuda.is_available():
        props = cuda.get_device_properties(0)
        gib = props.total_memory / 2**30
        return (f"GPU found: {cuda.get_device_name(0)} ({gib:.0f} GiB). A photo takes about a second and "
                "video renders at several frames per second.")
    return ("No GPU found: running on the CPU. The compact model colorizes a photo in seconds, the large "
            "DeOldify models take up to a minute per photo, and video is very slow (seconds per frame). "
            "On Colab choose Runtime > Change runtime type > GPU, then Run all again.")


def slider_bounds(default: int, allowed: tuple[int, int] | None = None) -> tuple[int, int]:
    """(min, max) of the render-factor slider: ``SLIDER_RANGE`` intersected with the library's
    allowed range, widened to include ``default``. Raises ``RenderFactorError`` if ``default``
    itself is not allowed."""
    lo_allowed, hi_allowed = allowed or _render_factor_range()
    if not lo_allowed <= default <= hi_allowed:
        raise RenderFactorError(f"Render factor {default} is outside the allowed range "
                                f"{lo_allowed}..{hi_allowed}; pick a value in that range (35 is typical).")
    lo = max(SLIDER_RANGE[0], lo_allowed)
    hi = min(SLIDER_RANGE[1], hi_allowed)
    return min(lo, default), max(hi, default)


def _render_factor_range() -> tuple[int, int]:
    from colorizer_lib import colorizer

    lo, hi = colorizer.RENDER_FACTOR_RANGE
    return int(lo), int(hi)


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


# --------------------------------------------------------------------------------------------
# Colorizer factory and model choices
# --------------------------------------------------------------------------------------------


def default_factory(name_or_path: str | None):
    """``Colorizer.from_pretrained(name_or_path)``: a registry name, an alias or a weights file."""
    from colorizer_lib.colorizer import Colorizer

    return Colorizer.from_pretrained(name_or_path)


class ColorizerCache:
    """Memoises ``factory(name)`` so switching back to a model does not reload it."""

    def __init__(self, factory: ColorizerFactory | None = None):
        self.factory = factory or default_factory
        self._loaded: dict[str | None, Any] = {}

    def get(self, name: str | None):
        """The colorizer for ``name`` (loaded on first use; errors propagate unchanged)."""
        if name not in self._loaded:
            self._loaded[name] = self.factory(name)
        return self._loaded[name]

    def is_loaded(self, name: str | None) -> bool:
        return name in self._loaded


def find_spec(name: str | None):
    """The registry's ``WeightSpec`` for a model name or alias, or None (a file path, or unknown)."""
    from colorizer_lib import registry

    if not name:
        return None
    try:
        return registry.get_spec(name)
    except WeightsError:
        return None


def model_options(selected: str | None = None) -> list[tuple[str, str]]:
    """Dropdown options ``(label, value)``: every registered model (value = its name), plus
    ``selected`` first when it is not a registered name or alias (e.g. a weights file path)."""
    from colorizer_lib import registry

    options = [(f"{spec.name}: {_first_sentence(spec.description, MODEL_LABEL_CHARS - len(spec.name) - 2)}",
                spec.name) for spec in registry.list_specs()]
    if selected and find_spec(selected) is None:
        label = f"{Path(selected).name} (file)" if Path(selected).expanduser().exists() else selected
        options.insert(0, (label, selected))
    return options


def _first_sentence(text: str, limit: int = 70) -> str:
    """At most ``limit`` characters of a description: the part before its first ": ", without a
    parenthesis that does not fit, else cut at a word boundary (never inside a word)."""
    text = text.split(": ")[0] if len(text) > limit else text
    if len(text) > limit and " (" in text:
        text = text.split(" (")[0]
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;(")
    return cut + "…"


def embedded_model_name() -> str | None:
    """The name of the first registered model whose weights ship inside the package, or None."""
    from colorizer_lib import registry

    return next((spec.name for spec in registry.list_specs() if getattr(spec, "bundled", None)), None)


def model_value(selected: str | None) -> str | None:
    """The dropdown value for ``selected``: the canonical registry name for a name or alias,
    else ``selected`` unchanged (a file path)."""
    spec = find_spec(selected)
    return spec.name if spec is not None else selected


def spec_default_render_factor(name: str | None) -> int | None:
    """The registry's default render factor for a model name or alias, or None (files, unknown names)."""
    spec = find_spec(name)
    return int(spec.default_render_factor) if spec is not None else None


# --------------------------------------------------------------------------------------------
# Image helpers: display copies, before/after view, render-factor sweep, batch to zip
# --------------------------------------------------------------------------------------------


def thumbnail(image: Image.Image, size: int = DISPLAY_SIZE) -> Image.Image:
    """A copy no larger than ``size`` on its longest side, converted to RGB."""
    copy = image.convert("RGB")
    copy.thumbnail((size, size), Image.Resampling.LANCZOS)
    return copy


def encode_image(image: Image.Image, fmt: str = "PNG", quality: int = 90) -> bytes:
    """PIL image -> encoded bytes (``fmt`` PNG or JPEG)."""
    buffer = io.BytesIO()
    image = image.convert("RGB")
    if fmt.upper() == "JPEG":
        image.save(buffer, format="JPEG", quality=quality)
    else:
        image.save(buffer, format=fmt)
    return buffer.getvalue()


def before_after_html(original: Image.Image, colorized: Image.Image, width: int = 640) -> str:
    """HTML of a before/after view: the colorized image with the original laid over its left part.

    The divider follows the pointer anywhere over the picture, with a mouse, a finger or the arrow
    keys: a transparent range input covers the whole image and its ``oninput`` attribute sets the
    overlay's width (an inline handler, which both Jupyter's and Colab's widget front ends run,
    unlike ``<script>`` elements). Both images are shown at ``width`` pixels (aspect kept),
    embedded as JPEG data URIs."""
    width = int(min(width, colorized.width))
    height = max(1, round(colorized.height * width / colorized.width))
    after = colorized.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    before = original.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    b64_after = base64.b64encode(encode_image(after, "JPEG")).decode("ascii")
    b64_before = base64.b64encode(encode_image(before, "JPEG")).decode("ascii")
    move = "this.previousElementSibling.style.width=this.value+'%'"
    return (
        f'<div class="colorizer-before-after" style="position:relative;width:{width}px;height:{height}px;'
        'user-select:none;line-height:0;touch-action:pan-y">'
        f'<img alt="colorized" src="data:image/jpeg;base64,{b64_after}" '
        f'style="position:absolute;top:0;left:0;width:{width}px;height:{height}px;max-width:none">'
        f'<div class="colorizer-divider" style="position:absolute;top:0;left:0;width:50%;height:{height}px;'
        'overflow:hidden;border-right:3px solid #fff;box-shadow:2px 0 4px rgba(0,0,0,.6);pointer-events:none">'
        f'<img alt="original" src="data:image/jpeg;base64,{b64_before}" '
        f'style="width:{width}px;height:{height}px;max-width:none"></div>'
        f'<input type="range" min="0" max="100" value="50" step="0.1" aria-label="Before/after divider" '
        f'oninput="{move}" onchange="{move}" '
        f'style="position:absolute;top:0;left:0;width:{width}px;height:{height}px;margin:0;padding:0;'
        'opacity:0;cursor:ew-resize;-webkit-appearance:none;appearance:none"></div>'
        '<div style="font-size:12px;color:#666;margin-top:4px">Drag across the picture (or swipe): left of the '
        'white divider is the original, right of it the colorized photo.</div>'
    )


def _label_font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def sweep_grid(images: Sequence[Image.Image], labels: Sequence[str], columns: int = 3,
               cell: int = 320) -> Image.Image:
    """Lay ``images`` out in a labelled grid: each scaled to fit ``cell`` x ``cell`` with its
    label in a bar above it. Returns an RGB PIL image."""
    if len(images) != len(labels) or not images:
        raise InputError("sweep_grid needs as many labels as images, and at least one image.")
    columns = max(1, min(columns, len(images)))
    rows = math.ceil(len(images) / columns)
    bar = max(16, cell // 12)
    font = _label_font(int(bar * 0.75))
    grid = Image.new("RGB", (columns * cell, rows * (cell + bar)), "white")
    draw = ImageDraw.Draw(grid)
    for index, (image, label) in enumerate(zip(images, labels)):
        col, row = index % columns, index // columns
        x0, y0 = col * cell, row * (cell + bar)
        tile = ImageOps.contain(image.convert("RGB"), (cell, cell), Image.Resampling.LANCZOS)
        grid.paste(tile, (x0 + (cell - tile.width) // 2, y0 + bar + (cell - tile.height) // 2))
        draw.text((x0 + 6, y0 + 2), label, fill="black", font=font)
    return grid


def render_factor_sweep(colorizer, source, factors: Iterable[int],
                        on_progress: Callable[[int, int], None] | None = None) -> tuple[list, Image.Image]:
    """Colorize ``source`` at each render factor in ``factors`` (in order).

    Returns ``(results, grid)``: the ``ColorizeResult`` list and a labelled grid image
    (``"render factor N"`` over each result). Bad factors raise ``RenderFactorError`` from the library.
    ``on_progress(done, total)`` is called after each factor.
    """
    factors = [int(f) for f in factors]
    if not factors:
        raise InputError("The sweep needs at least one render factor, e.g. [10, 20, 35].")
    results = []
    for factor in factors:
        results.append(colorizer.colorize(source, render_factor=factor))
        if on_progress:
            on_progress(len(results), len(factors))
    grid = sweep_grid([r.image for r in results], [f"render factor {r.render_factor}" for r in results])
    return results, grid


def parse_factors(text: str | Sequence[int]) -> list[int]:
    """``"10, 20 35"`` or ``[10, 20, 35]`` -> ``[10, 20, 35]``; raises ``InputError`` on junk."""
    if isinstance(text, str):
        tokens = [t for t in re.split(r"[,\s]+", text) if t]
        try:
            return [int(t) for t in tokens]
        except ValueError:
            raise InputError(f"Render factors must be whole numbers separated by commas, e.g. "
                             f"'10, 20, 35'; got {text!r}.") from None
    return [int(f) for f in text]


@dataclass
class BatchReport:
    """What ``colorize_to_zip`` did: the zip written, the member names colorized, and
    ``(member, message)`` for each file that failed."""

    zip_path: Path
    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def _batch_members(source: Path | bytes) -> list[tuple[str, Callable[[], bytes]]]:
    """(relative name, read()) for each image in a folder, a zip file path or zip bytes."""
    if isinstance(source, (bytes, bytearray)) or (isinstance(source, Path) and source.suffix.lower() == ".zip"):
        try:
            archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
        except zipfile.BadZipFile:
            raise InputError(f"{getattr(source, 'name', 'The upload')} is not a valid zip file; "
                             "re-create it (e.g. right-click the folder > Compress) and upload again.") from None
        members = []
        for info in archive.infolist():
            parts = Path(info.filename).parts
            if info.is_dir() or "__MACOSX" in parts or Path(info.filename).name.startswith("."):
                continue
            if Path(info.filename).suffix.lower() in IMAGE_SUFFIXES:
                members.append((info.filename, lambda info=info: archive.read(info)))
        return members
    if isinstance(source, Path) and source.is_dir():
        from colorizer_lib.io import iter_image_files

        return [(p.relative_to(source).as_posix(), p.read_bytes) for p in iter_image_files(source)]
    raise InputError(f"{source} is neither a folder nor a .zip file; give a folder of photos or a zip of them.")


def colorize_to_zip(colorizer, source: Path | str | bytes, zip_path: Path | str, render_factor: int | None = None,
                    on_progress: Callable[[int, int], None] | None = None) -> BatchReport:
    """Colorize every image in a folder or zip (path or bytes) into the zip ``zip_path``.

    Output members keep their relative paths with ``_colorized`` added before the suffix.
    Formats without a colour writer (GIF) come out as PNG. A file that cannot be read
    (``InputError``) is recorded in ``report.failed`` (and listed in ``FAILED.txt`` inside the zip)
    and the batch goes on; any other error (render factor, out of memory...) stops it. The zip is
    written under a temporary name and renamed when complete, so ``zip_path`` never holds half a
    batch. A folder or zip without images raises ``InputError``. ``on_progress(done, total)`` is
    called after each file.
    """
    source = Path(source).expanduser() if isinstance(source, str) else source
    members = _batch_members(source)
    if not members:
        raise InputError(f"No images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in "
                         f"{source if isinstance(source, Path) else 'the uploaded zip'}.")
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_path.with_name(zip_path.name + ".part")
    report = BatchReport(zip_path)
    try:
        with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as out:
            for index, (name, read) in enumerate(members):
                member = Path(name)
                output_name = f"{member.stem}_colorized{output_suffix(member.suffix)}"
                try:
                    result = colorizer.colorize(read(), render_factor=render_factor)
                    target = Path(result.save(Path(tmp) / f"{index}_{output_name}"))
                    out.write(target, (member.parent / output_name).as_posix())
                    report.done.append(name)
                except InputError as error:
                    report.failed.append((name, str(error)))
                if on_progress:
                    on_progress(index + 1, len(members))
            if report.failed:
                out.writestr("FAILED.txt", "".join(f"{n}: {m}\n" for n, m in report.failed))
        partial.replace(zip_path)
    finally:
        partial.unlink(missing_ok=True)
    return report


# --------------------------------------------------------------------------------------------
# Small widget building blocks
# --------------------------------------------------------------------------------------------


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


class ModelPicker:
    """The model dropdown and the render-factor slider, shared by both UIs.

    Choosing a registered model moves the slider to that model's default render factor.
    ``colorizer()`` returns the chosen model's colorizer (loaded once through ``cache``); a
    first-time weights download shows its progress bar in ``log`` (an Output widget).
    """

    def __init__(self, model: str | None, render_factor: int | None, cache: ColorizerCache, status: StatusLine):
        self.cache, self.status = cache, status
        self.log = W.Output()
        self.model = W.Dropdown(options=model_options(model), description="Model", style=LABEL_STYLE,
                                layout=W.Layout(width="560px"))
        model = model or embedded_model_name()
        if model:
            self.model.value = model_value(model)
        default_rf = int(render_factor) if render_factor else (spec_default_render_factor(self.model.value) or 35)
        lo, hi = slider_bounds(default_rf)
        self.render_factor = W.IntSlider(value=default_rf, min=lo, max=hi, step=1, description="Render factor",
                                         continuous_update=False, style=LABEL_STYLE, layout=W.Layout(width="560px"))
        self.render_factor.add_class("colorizer-render-factor")
        self.model.observe(self._on_model_change, names="value")

    def _on_model_change(self, change) -> None:
        default = spec_default_render_factor(change["new"])
        if default is not None:
            self.render_factor.value = max(self.render_factor.min, min(self.render_factor.max, default))

    def colorizer(self):
        name = self.model.value
        clear(self.log)  # what an earlier load printed (a mirror failing...) is stale now
        if self.cache.is_loaded(name):
            return self.cache.get(name)
        spec = find_spec(name)
        downloads = spec is not None and not getattr(spec, "bundled", None)
        self.status.info(f"Loading model {name}" + (" (the first time downloads the weights)..." if downloads
                                                     else "..."))
        colorizer = call_in_output(self.log, self.cache.get, name)
        clear(self.log)
        return colorizer


# --------------------------------------------------------------------------------------------
# Image UI
# --------------------------------------------------------------------------------------------


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
        self._written: dict[Path, str] = {}  # result file -> the source it holds (path, URL or hash)

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
        buttons = [self.button] + ([self.upload] if self.colab else [])
        for button in buttons:
            button.disabled = True
        self.last_error = None
        try:
            return action()
        except Exception as error:  # shown to the user in the widget, not as a traceback
            self.last_error = report_exception(self.status, error)
            if self.progress.active:
                self.progress.finish(False)
            else:  # stopped before anything was counted: the last run's count would mislead
                self.progress.reset()
            return []
        finally:
            for button in buttons:
                button.disabled = False

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
        singles: list[tuple[str, Any, str]] = []  # (stem, source, suffix)
        batches: list[tuple[str, Any]] = []  # (name, folder path / zip path / zip bytes)
        for entry in entries:
            local = Path(entry).expanduser()
            if not _is_remote(entry) and (local.is_dir() or local.suffix.lower() == ".zip"):
                batches.append((local.name or "folder", local))
            else:
                singles.append((source_stem(entry), str(local) if not _is_remote(entry) else entry,
                                Path(urllib.parse.urlsplit(entry).path).suffix))
        for upload in uploads:
            if upload.is_zip:
                batches.append((Path(upload.name).stem, upload.content))
            else:
                singles.append((source_stem(upload.name), upload.content, Path(upload.name).suffix))

        colorizer = self._colorizer()
        rf = int(self.render_factor.value)
        total = len(singles)
        self.progress.start(total)
        outcomes: list[ImageOutcome] = []
        failed: list[tuple[str, str]] = []  # (name, message): unreadable inputs are skipped, not fatal
        used: set[Path] = set()
        for index, (stem, source, suffix) in enumerate(singles):
            self.status.info(f"Colorizing {stem} at render factor {rf}...")
            key = hashlib.sha256(source).hexdigest() if isinstance(source, bytes) else source
            target = self.output_dir / result_filename(stem, rf, suffix)
            n = 2
            # Two inputs with one name (in this run, or another file in an earlier one): keep both results.
            while target in used or self._written.get(target, key) != key:
                target = self.output_dir / result_filename(f"{stem}_{n}", rf, suffix)
                n += 1
            used.add(target)
            self._written[target] = key
            try:
                result = colorizer.colorize(source, render_factor=rf)
                path = Path(result.save(target))
            except InputError as error:  # unreadable input, or a result its format cannot hold
                failed.append((stem, str(error)))
            else:
                outcomes.append(ImageOutcome(stem, result, path))
            self.progress.update(index + 1, total)
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
        factors = parse_factors(factors)
        colorizer = self._colorizer()
        self.status.info(f"Sweep: colorizing {name} at render factors {', '.join(map(str, factors))}...")
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
        self.status.info(f"Sweep saved to {self.output_dir / f'{name}_sweep.png'}.")
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


# --------------------------------------------------------------------------------------------
# Video UI
# --------------------------------------------------------------------------------------------

#: Render factors compared by the video preview (DeOldify's video model was tuned for 21).
VIDEO_PREVIEW_FACTORS = (14, 21, 28, 35)
_DOWNLOADS_INDEX = "downloads.json"


def fetch_video(source: str, work_dir: Path | str, download: Callable[..., Path] | None = None) -> Path:
    """The local file for a video link or path.

    A local path must exist (``InputError`` otherwise). A link (http, https, file, www.) is
    downloaded with ``colorizer_lib.video.download_video`` into ``work_dir/downloads`` once: the
    link -> file map is kept in ``work_dir/downloads/downloads.json``, so re-running after a
    disconnect reuses the file (and the render resumes from its finished segments).
    ``download`` replaces ``download_video`` in tests.
    """
    import json

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
    downloads.mkdir(parents=True, exist_ok=True)
    index_path = downloads / _DOWNLOADS_INDEX
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    known = index.get(source)
    if known and Path(known).is_file():
        return Path(known)
    path = Path((download or video.download_video)(source, downloads))
    index[source] = str(path)
    index_path.write_text(json.dumps(index, indent=1))
    return path


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
        buttons = (self.preview_button, self.render_button) + ((self.upload,) if self.colab else ())
        for button in buttons:
            button.disabled = True
        self.last_error = None
        try:
            return action()
        except Exception as error:  # shown to the user in the widget, not as a traceback
            self.last_error = report_exception(self.status, error)
            return None
        finally:
            for button in buttons:
                button.disabled = False

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
        if _is_remote(self.url.value.strip()):
            self.status.info("Downloading the video...")
        return fetch_video(self.url.value, self.output_dir)

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
        self.status.info(f"Preview saved to {result.path}.")
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
