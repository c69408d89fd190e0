"""Saving: the format from the extension, provenance (PNG text chunks, or EXIF ImageDescription/Software),
ICC and EXIF kept, atomic writes, protected paths refused; `read_provenance` reads the record back.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from PIL import Image, PngImagePlugin

from colorizer_lib.errors import InputError
from .load import _check_file, _pil_limit_lifted


#: Output extension -> PIL format name. `save_image` accepts exactly these.
OUTPUT_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}


def output_suffix(suffix: str) -> str:
    """The suffix a colorized copy of an input with ``suffix`` gets: the input's (lower-cased) when
    `save_image` writes that format with provenance (which resuming relies on), else ``.png`` (GIF,
    BMP, unknown). Every front end names its results with it."""
    suffix = suffix.lower()
    return suffix if suffix in OUTPUT_FORMATS and suffix != ".bmp" else ".png"


_IMAGE_DESCRIPTION_TAG = 0x010E
_SOFTWARE_TAG = 0x0131


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def save_image(
    img: Image.Image,
    path: str | os.PathLike,
    *,
    provenance: dict | None = None,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    quality: int = 95,
    forbid=(),
) -> Path:
    """Write `img` to `path` atomically, with provenance metadata; return the written path.

    Args:
        img: the PIL image (RGB, RGBA, L, LA...).
        path: output file; its extension picks the format (.jpg/.jpeg/.png/.webp/.tif/.tiff/.bmp).
            Parent folders are created.
        provenance: str -> str/number. PNG: one text chunk per key. JPEG/WebP/TIFF: EXIF Software
            (0x0131) gets provenance["Software"], EXIF ImageDescription (0x010E) gets the other
            keys as a JSON object; both are merged into `exif` when given. BMP stores no metadata.
        icc_profile: ICC profile bytes to embed (PNG, JPEG, WebP, TIFF).
        exif: EXIF bytes of the input to carry over (its orientation should already be 1).
        quality: JPEG / WebP quality (1..100).
        forbid: paths that must never be written (the CLI passes its inputs); compared resolved.

    Raises:
        InputError: unknown extension, alpha to JPEG, a forbidden path, or a failed write.

    The image goes to a temporary file in the destination folder, which is fsync'ed and then
    renamed over `path` (os.replace), so an interrupted save never leaves a truncated output.
    """
    path = Path(path).expanduser()
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"Cannot save {str(path)!r}: unknown image extension {path.suffix or '(none)'!r}. "
            f"Use one of: {', '.join(sorted(OUTPUT_FORMATS))}."
        )
    target = path.resolve()
    _refuse_forbidden(path, target, forbid)
    if fmt == "JPEG" and img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        raise InputError(
            f"Cannot save an image with transparency as JPEG ({str(path)!r}). Save it as .png (or .webp / .tiff) "
            "to keep the alpha channel."
        )
    if not 1 <= int(quality) <= 100:
        raise InputError(f"quality must be between 1 and 100, got {quality}.")
    if fmt == "JPEG" and img.mode not in ("RGB", "L", "CMYK"):
        img = img.convert("RGB")

    options = _save_options(fmt, provenance or {}, icc_profile, exif, int(quality))
    _write_atomically(target, path, fmt, lambda handle: img.save(handle, format=fmt, **options))
    return target


def save_jpeg_bytes(
    data: bytes,
    path: str | os.PathLike,
    *,
    provenance: dict | None = None,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    forbid=(),
) -> Path:
    """Write an already encoded JPEG (for example from the GPU's nvJPEG encoder) to `path`
    atomically, with the same metadata as :func:`save_image` would write: provenance merged into
    `exif` (the input's EXIF, orientation already 1) and the ICC profile. Returns the written path.

    The segments go where Pillow puts them: after the JFIF header when the stream has one, the
    EXIF (APP1) first, then the ICC profile (APP2, split into chunks as the ICC spec says).

    Raises:
        InputError: `path` is not .jpg/.jpeg, is forbidden, `data` is not a JPEG stream, the EXIF
            is too long for one segment, or the write failed.
    """
    path = Path(path).expanduser()
    if OUTPUT_FORMATS.get(path.suffix.lower()) != "JPEG":
        raise InputError(f"Cannot write JPEG data to {str(path)!r}: the name must end in .jpg or .jpeg.")
    target = path.resolve()
    _refuse_forbidden(path, target, forbid)
    data = bytes(data)
    if not data.startswith(b"\xff\xd8"):
        raise InputError(f"Cannot write {str(path)!r}: the encoder returned data that is not a JPEG stream.")
    segments = b""
    exif = _merge_provenance_exif(exif, provenance or {})
    if exif:  # Pillow's Exif.tobytes() starts with the APP1 identifier b"Exif\0\0"
        if len(exif) + 2 > 0xFFFF:
            raise InputError(f"Cannot write {str(path)!r}: the EXIF metadata is too long for one JPEG segment.")
        segments += b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    if icc_profile:
        segments += _icc_segments(icc_profile)
    at = 2  # right after the start-of-image marker, or after the JFIF (APP0) segment that must come first
    if data[2:4] == b"\xff\xe0":
        at += 2 + int.from_bytes(data[4:6], "big")
    data = data[:at] + segments + data[at:]
    _write_atomically(target, path, "JPEG", lambda handle: handle.write(data))
    return target


_ICC_CHUNK = 0xFFFF - 2 - 14  # an APP2 segment's payload, less its length field and the ICC_PROFILE header


def _icc_segments(icc: bytes) -> bytes:
    """An ICC profile as JPEG APP2 ``ICC_PROFILE`` segments (numbered chunks, as Pillow writes them)."""
    chunks = [icc[i:i + _ICC_CHUNK] for i in range(0, len(icc), _ICC_CHUNK)]
    return b"".join(
        b"\xff\xe2" + (2 + 14 + len(chunk)).to_bytes(2, "big") + b"ICC_PROFILE\0" + bytes((n, len(chunks))) + chunk
        for n, chunk in enumerate(chunks, start=1)
    )


def _refuse_forbidden(path: Path, target: Path, forbid) -> None:
    for protected in forbid:
        if Path(protected).expanduser().resolve() == target:
            raise InputError(
                f"Refusing to write {str(path)!r}: it is one of the input files and would be overwritten. "
                "Choose another output name or folder."
            )


def _write_atomically(target: Path, path: Path, fmt: str, write) -> None:
    """Run ``write(handle)`` on a temporary file next to `target`, fsync it, rename it over `target`."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.{os.getpid()}-", suffix=".part")
    except OSError as exc:
        raise InputError(_write_error(path, fmt, exc)) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_UMASK)
        os.replace(tmp_name, target)
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        if isinstance(exc, (OSError, ValueError, KeyError)) and not isinstance(exc, InputError):
            raise InputError(_write_error(path, fmt, exc)) from exc
        raise


def _write_error(path: Path, fmt: str, exc: BaseException) -> str:
    """A failed write, said with the output's name and folder (never our temporary file's)."""
    if isinstance(exc, OSError) and exc.strerror:
        folder = Path(path).expanduser().parent
        return (f"Could not write {str(path)!r} as {fmt}: {exc.strerror}. Check that the folder {str(folder)!r} "
                "exists, is writable and has free space, or choose another -o.")
    return f"Could not write {str(path)!r} as {fmt}: {exc}."


def _save_options(fmt: str, provenance: dict, icc_profile: bytes | None, exif: bytes | None, quality: int) -> dict:
    options: dict = {}
    if fmt == "BMP":
        return options
    if icc_profile:
        options["icc_profile"] = icc_profile
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    if fmt == "TIFF":
        options["compression"] = "tiff_lzw"
    if fmt == "PNG":
        if provenance:
            info = PngImagePlugin.PngInfo()
            for key, value in provenance.items():
                info.add_text(str(key), str(value))
            options["pnginfo"] = info
        if exif:
            options["exif"] = exif
        return options
    merged = _merge_provenance_exif(exif, provenance)
    if merged is not None:
        options["exif"] = merged
    return options


def _merge_provenance_exif(exif: bytes | None, provenance: dict) -> bytes | None:
    if not provenance:
        return exif
    tags = Image.Exif()
    if exif:
        tags.load(exif)
    rest = {str(k): v for k, v in provenance.items() if k != "Software"}
    if "Software" in provenance:
        tags[_SOFTWARE_TAG] = _ascii(str(provenance["Software"]))
    if rest:
        tags[_IMAGE_DESCRIPTION_TAG] = json.dumps(rest, ensure_ascii=True, default=str)
    return tags.tobytes()


def _ascii(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii")


def read_provenance(path: str | os.PathLike) -> dict[str, str]:
    """Read back what `save_image(..., provenance=...)` recorded; values come back as strings.

    PNG: every text chunk. JPEG/WebP/TIFF: EXIF Software as "Software", and the JSON object
    in ImageDescription expanded into its keys (a plain-text description becomes
    "Description"). Returns {} when the file carries none (BMP never does).

    Raises:
        InputError: the file is missing or is not a readable image.
    """
    path = Path(path).expanduser()
    _check_file(path)
    try:
        # Only the headers are read, so the decompression-bomb limit does not apply: an earlier
        # output of a very large photo must be readable here.
        with _pil_limit_lifted(), Image.open(path) as img:
            if img.format == "PNG":
                # The text chunks before the pixel data (where save_image puts them), which Pillow has
                # read with the headers; `img.text` would decode the whole picture for later ones.
                return {str(k): str(v) for k, v in img.info.items() if isinstance(v, str)}
            tags = img.getexif()
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file: Pillow raises many kinds of errors
        raise InputError(f"Cannot read metadata of {str(path)!r}: {type(exc).__name__}: {exc}.") from exc
    found: dict[str, str] = {}
    description = tags.get(_IMAGE_DESCRIPTION_TAG)
    if isinstance(description, bytes):
        description = description.decode("utf-8", "replace")
    if description:
        description = description.rstrip("\x00")
        try:
            parsed = json.loads(description)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            found.update({str(k): str(v) for k, v in parsed.items()})
        else:
            found["Description"] = description
    software = tags.get(_SOFTWARE_TAG)
    if software:
        found["Software"] = str(software).rstrip("\x00")
    return found
