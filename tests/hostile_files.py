"""Seeded, bounded hostile picture files for the photo-job tests (no file outside the repository).

``good_pictures(folder)`` writes small grey pictures in every format `colorize image` reads (JPEG,
JPEG with EXIF, PNG, TIFF, WEBP); ``mutants(folder, seed, count)`` writes ``count`` damaged copies of
them: bytes flipped in the headers, the EXIF block or the TIFF tag table, a wrong length field,
truncation, junk appended. The same seed always gives the same files; each file is a few kB, so a
few dozen of them colorize in seconds with the compact model on a CPU.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
from PIL import Image

ORIENTATION, MAKE, DATETIME, IMAGE_WIDTH = 0x0112, 0x010F, 0x0132, 256


def grey_scene(width: int = 48, height: int = 40, seed: int = 0) -> Image.Image:
    """A small grey picture with edges and gradients (mode "L")."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    grey = 0.5 + 0.3 * np.sin(xx / 5.0 + seed) + 0.1 * np.cos(yy / 4.0) + rng.normal(0, 0.03, xx.shape)
    return Image.fromarray(np.round(np.clip(grey, 0, 1) * 255).astype(np.uint8), "L")


def exif_block(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[MAKE] = "Kodak"
    exif[DATETIME] = "1936:03:01 12:00:00"
    return exif.tobytes()


def encoded(kind: str, seed: int = 0) -> bytes:
    """One good picture file's bytes: ``kind`` is jpg, exif.jpg, png, tif or webp."""
    img = grey_scene(seed=seed)
    buf = io.BytesIO()
    if kind == "jpg":
        img.save(buf, "JPEG", quality=90)
    elif kind == "exif.jpg":
        img.save(buf, "JPEG", quality=90, exif=exif_block(6))
    elif kind == "png":
        img.save(buf, "PNG")
    elif kind == "tif":
        img.save(buf, "TIFF")
    elif kind == "webp":
        img.save(buf, "WEBP", quality=90)
    else:
        raise ValueError(kind)
    return buf.getvalue()


KINDS = ("jpg", "exif.jpg", "png", "tif", "webp")


def good_pictures(folder: Path, prefix: str = "good") -> list[Path]:
    """One good picture per kind in ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, kind in enumerate(KINDS):
        path = folder / f"{prefix}{i}.{kind.split('.')[-1]}"
        path.write_bytes(encoded(kind, seed=i))
        paths.append(path)
    return paths


def _exif_span(data: bytes) -> tuple[int, int]:
    """Where a JPEG's EXIF (APP1) payload lies, or the whole file when it has none."""
    at = data.find(b"Exif\0\0")
    if at < 0:
        return 2, len(data)
    length = int.from_bytes(data[at - 2:at], "big")
    return at + 6, at - 2 + length


def _tiff_tag_table(data: bytes) -> tuple[int, int]:
    """Where a little- or big-endian TIFF's first tag table lies."""
    order = "little" if data[:2] == b"II" else "big"
    ifd = int.from_bytes(data[4:8], order)
    count = int.from_bytes(data[ifd:ifd + 2], order)
    return ifd + 2, ifd + 2 + 12 * count


def mutate(data: bytes, kind: str, rng: random.Random) -> tuple[bytes, str]:
    """One damaged copy of ``data`` and a word on what was done."""
    out = bytearray(data)
    how = rng.choice(("flip-header", "flip-meta", "truncate", "length", "junk-tail", "zero-run"))
    if how == "flip-meta":
        if kind == "exif.jpg":
            lo, hi = _exif_span(data)
        elif kind == "tif":
            lo, hi = _tiff_tag_table(data)
        else:
            lo, hi = 0, min(len(data), 64)
        for _ in range(rng.randint(1, 6)):
            out[rng.randrange(lo, hi)] = rng.randrange(256)
    elif how == "flip-header":
        for _ in range(rng.randint(1, 4)):
            out[rng.randrange(0, min(len(out), 128))] ^= 1 << rng.randrange(8)
    elif how == "truncate":
        del out[rng.randrange(8, len(out) - 1):]
    elif how == "length":  # a 16- or 32-bit field in the headers set to a huge or zero value
        at = rng.randrange(2, min(len(out), 96) - 4)
        out[at:at + 2] = rng.choice((b"\xff\xff", b"\x00\x00", b"\x7f\xff"))
    elif how == "junk-tail":
        out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:
        at = rng.randrange(0, len(out) - 16)
        size = rng.randint(4, 16)
        out[at:at + size] = bytes(size)
    return bytes(out), how


def broken_tiff_width_tag() -> bytes:
    """A two-page TIFF whose second page has no ImageWidth tag (256 renamed): Pillow raises
    ``KeyError: 256`` (as ``TypeError: Missing dimensions``) when it counts the pages."""
    buf = io.BytesIO()
    grey_scene().save(buf, "TIFF", save_all=True, append_images=[grey_scene(seed=1)])
    data = bytearray(buf.getvalue())
    order = "little" if data[:2] == b"II" else "big"
    first = int.from_bytes(data[4:8], order)
    count = int.from_bytes(data[first:first + 2], order)
    second = int.from_bytes(data[first + 2 + 12 * count:first + 6 + 12 * count], order)
    count = int.from_bytes(data[second:second + 2], order)
    for at in range(second + 2, second + 2 + 12 * count, 12):
        if int.from_bytes(data[at:at + 2], order) == IMAGE_WIDTH:
            data[at:at + 2] = (0x7777).to_bytes(2, order)
    return bytes(data)


def broken_exif_jpeg() -> bytes:
    """A JPEG whose EXIF block's tag table points far past its end."""
    data = bytearray(encoded("exif.jpg"))
    lo, _ = _exif_span(bytes(data))
    order = "little" if data[lo:lo + 2] == b"II" else "big"
    data[lo + 4:lo + 8] = (0x7FFFFFF0).to_bytes(4, order)  # offset of the first tag table
    return bytes(data)


def broken_webp() -> bytes:
    """A WEBP whose RIFF chunk size claims more bytes than there are, and its VP8 data cut short."""
    data = bytearray(encoded("webp"))
    return bytes(data[: len(data) // 2])


def mutants(folder: Path, seed: int, count: int) -> dict[Path, str]:
    """``count`` damaged pictures in ``folder`` (cycling through the kinds); returns path -> what was done."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    made = {}
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        data, how = mutate(encoded(kind, seed=i), kind, rng)
        path = folder / f"mutant{i:03d}.{kind.split('.')[-1]}"
        path.write_bytes(data)
        made[path] = f"{kind} {how}"
    return made
