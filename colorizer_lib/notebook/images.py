"""Pictures for the notebook: display copies, the before/after view, the render-factor sweep, and a zip
(or folder) of photos colorized into a zip.
"""

from __future__ import annotations

import base64
import io
import math
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator, Sequence

from PIL import Image, ImageDraw, ImageFont, ImageOps

from colorizer_lib.constants import check_render_factor
from colorizer_lib.errors import InputError
from colorizer_lib.io import INPUT_EXTENSIONS, iter_image_files, output_suffix
from colorizer_lib.jobs import FileJob


#: Longest side of the images shown in the notebook (the saved files keep full resolution).
DISPLAY_SIZE = 768


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
    """``"10, 20 35"`` or ``[10, 20, 35]`` -> ``[10, 20, 35]``, each checked as the library checks a render
    factor (``constants.check_render_factor``: ``35.0`` is 35, ``35.5`` or ``500`` raise ``RenderFactorError``);
    raises ``InputError`` on junk."""
    if isinstance(text, str):
        tokens = [t for t in re.split(r"[,\s]+", text) if t]
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            raise InputError(f"Render factors must be whole numbers separated by commas, e.g. "
                             f"'10, 20, 35'; got {text!r}.") from None
        return [check_render_factor(v) for v in values]
    return [check_render_factor(f) for f in text]


@dataclass
class BatchReport:
    """What ``colorize_to_zip`` did: the zip written, the member names colorized, and
    ``(member, message)`` for each file that failed."""

    zip_path: Path
    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def _batch_inputs(source: Path | bytes, unpack_into: Path) -> tuple[list[tuple[str, Path]], Path | None]:
    """``(relative name, file)`` for each image in a folder, or in a zip (path or bytes) unpacked into
    ``unpack_into``; and the folder whose files are the inputs (None for a zip)."""
    if isinstance(source, (bytes, bytearray)) or (isinstance(source, Path) and source.suffix.lower() == ".zip"):
        try:
            archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
        except zipfile.BadZipFile:
            raise InputError(f"{getattr(source, 'name', 'The upload')} is not a valid zip file; "
                             "re-create it (e.g. right-click the folder > Compress) and upload again.") from None
        members = []
        with archive:
            for info in archive.infolist():
                parts = Path(info.filename).parts
                if info.is_dir() or "__MACOSX" in parts or Path(info.filename).name.startswith("."):
                    continue
                if Path(info.filename).suffix.lower() in INPUT_EXTENSIONS:
                    # one folder per member: names from the archive never reach the file system as paths
                    path = unpack_into / str(len(members)) / f"input{Path(info.filename).suffix.lower()}"
                    path.parent.mkdir(parents=True)
                    path.write_bytes(archive.read(info))
                    members.append((info.filename, path))
        return members, None
    if isinstance(source, Path) and source.is_dir():
        return [(p.relative_to(source).as_posix(), p) for p in iter_image_files(source)], source
    raise InputError(f"{source} is neither a folder nor a .zip file; give a folder of photos or a zip of them.")


def _result_names(folder: Path, name: str, numbered: Callable[[str], Iterable[str]]) -> Iterator[Path]:
    """Where the result of the batch member ``name`` may go in ``folder``, in order of preference:
    the same relative path (without ``..`` or a root) with ``_colorized`` before the suffix
    (:func:`~colorizer_lib.io.output_suffix`), then ``_2_colorized``... (``numbered``)."""
    member = PurePosixPath(name)
    parent = folder.joinpath(*[part for part in member.parent.parts if part not in ("", ".", "..", "/")])
    for stem in numbered(member.stem):
        yield parent / f"{stem}_colorized{output_suffix(member.suffix)}"


def colorize_to_zip(colorizer, source: Path | str | bytes, zip_path: Path | str, render_factor: int | None = None,
                    on_progress: Callable[[int, int], None] | None = None) -> BatchReport:
    """Colorize every image in a folder or zip (path or bytes) into the zip ``zip_path``, through the
    photo pipeline (:mod:`colorizer_lib.photos`: batched, pipelined on a GPU).

    Output members keep their relative paths with ``_colorized`` added before the suffix.
    Formats without a colour writer (GIF) come out as PNG. The results are also kept in the folder
    beside the zip (``zip_path`` without ``.zip``), so a batch that was interrupted resumes: a photo
    whose result is there from the same input and settings is not colorized again. A file that
    cannot be read (``InputError``) is recorded in ``report.failed`` (and listed in ``FAILED.txt``
    inside the zip) and the batch goes on; any other error (render factor, out of memory...) stops
    it. The zip is written under a temporary name and renamed when complete, so ``zip_path`` never
    holds half a batch. A folder or zip without images raises ``InputError``. ``on_progress(done,
    total)`` is called after each file.
    """
    from colorizer_lib import photos

    source = Path(source).expanduser() if isinstance(source, str) else source
    zip_path = Path(zip_path)
    results = zip_path.with_suffix("")
    with tempfile.TemporaryDirectory() as tmp:
        members, folder = _batch_inputs(source, Path(tmp))
        if folder is not None:  # never read the results of an earlier batch back as inputs
            members = [(name, path) for name, path in members if results.resolve() not in path.resolve().parents]
        if not members:
            raise InputError(f"No images ({', '.join(sorted(INPUT_EXTENSIONS))}) found in "
                             f"{source if isinstance(source, Path) else 'the uploaded zip'}.")
        rf = colorizer.render_factor_or_default(render_factor)
        claimed: set[Path] = set()
        jobs = []
        for name, path in members:  # two members with one result name (a.gif, a.png): both kept
            target = next(t for t in _result_names(results, name, photos.numbered) if t.resolve() not in claimed)
            claimed.add(target.resolve())
            jobs.append(FileJob(str(path), target))
        photos.prepare_outputs(jobs)
        planned = photos.sort_jobs(jobs, colorizer.name, rf, replace=("settings", "input"))  # the batch's own folder
        failed = {id(job): message for job, message in planned.refused}
        base = len(jobs) - len(planned.todo)
        if on_progress and base:
            on_progress(base, len(jobs))

        def on_event(event) -> None:
            if event.kind == "failed":
                failed[id(event.job)] = event.message
            if event.kind != "colour" and on_progress:
                on_progress(base + event.finished, len(jobs))

        photos.run_jobs(colorizer, planned.todo, render_factor=rf, forbid=photos.protected_inputs(jobs),
                        on_event=on_event)
    report = BatchReport(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_path.with_name(zip_path.name + ".part")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as out:
            for (name, _), job in zip(members, jobs):
                if id(job) in failed:
                    report.failed.append((name, failed[id(job)]))
                    continue
                out.write(job.output, job.output.relative_to(results).as_posix())
                report.done.append(name)
            if report.failed:
                out.writestr("FAILED.txt", "".join(f"{n}: {m}\n" for n, m in report.failed))
        partial.replace(zip_path)
    finally:
        partial.unlink(missing_ok=True)
    return report
