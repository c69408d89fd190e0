"""Training photos packed into shards: one ``.bin`` of JPEG bytes per shard plus an ``index.jsonl``.

Large photo collections (tens of thousands of files) travel to a GPU machine as a few shard files
instead of many small ones, and decode there straight into the packed ``uint8 (N, 3, P, P)`` arrays
that :mod:`colorizer_lib.training.data` trains on (:func:`load_packed`). Each photo is stored once,
already stretched to the square it will be trained at (the colorizer stretches to a square at
inference too) and re-encoded as JPEG, so a shard costs a few kB per photo.

Also here, for curating such collections (no fastai needed):

- :func:`perceptual_hash` (64-bit DCT hash of the luma) and :func:`near_duplicates` (pairs within a
  Hamming distance, found through band buckets, so it scales to hundreds of thousands of hashes);
- :func:`photo_stats`: colourfulness and the share of near-white pixels overall and on the border,
  the numbers a "not near-grey, not a white-background product shot or drawing" filter needs.

Index line: ``{"key", "source", "shard", "offset", "length", "width", "height"}`` where width/height
are those of the original photo (the stored square is ``side x side``, recorded in ``meta.json``).
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import InputError
from ..metrics import colorfulness

INDEX_NAME = "index.jsonl"
META_NAME = "meta.json"


# --------------------------------------------------------------------------------------------------
# photos -> bytes


def open_rgb(path_or_bytes: str | Path | bytes) -> Image.Image:
    """Decode a photo (EXIF orientation applied) as an RGB ``PIL.Image``; raises :class:`InputError` if it
    cannot be decoded."""
    try:
        src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, (bytes, bytearray)) else path_or_bytes
        with Image.open(src) as im:
            im.load()
            return ImageOps.exif_transpose(im).convert("RGB")
    except Exception as exc:  # PIL raises many types for broken files
        name = "photo bytes" if isinstance(path_or_bytes, (bytes, bytearray)) else str(path_or_bytes)
        raise InputError(f"cannot decode {name}: {exc}; remove or replace the file") from exc


def square_jpeg(image: Image.Image, side: int, quality: int = 80) -> bytes:
    """``image`` stretched to ``side x side`` (bicubic, antialiased) and encoded as JPEG (4:2:0)."""
    im = image.resize((side, side), Image.BICUBIC, reducing_gap=3.0) if image.size != (side, side) else image
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=int(quality), optimize=True)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------
# writer / reader


@dataclass
class ShardRecord:
    """One photo of a shard set, as read from its index."""

    key: str
    source: str
    shard: str
    offset: int
    length: int
    width: int
    height: int


class ShardWriter:
    """Append JPEG-encoded photos to ``out_dir/shard-NNNNN.bin`` files of about ``shard_bytes`` each.

    Use as a context manager; ``add`` returns the record it indexed. ``side`` (the stored square's side)
    and ``extra_meta`` go to ``meta.json``. Refuses an ``out_dir`` that already holds an index (no silent
    mixing of two shard sets).
    """

    def __init__(self, out_dir: str | Path, side: int, shard_bytes: int = 16 << 20, extra_meta: dict | None = None):
        self.out = Path(out_dir)
        if (self.out / INDEX_NAME).exists():
            raise InputError(f"{self.out} already holds a shard set ({INDEX_NAME}); write to an empty folder")
        self.out.mkdir(parents=True, exist_ok=True)
        self.side = int(side) if side is not None else None  # None: photos stored at their own sizes
        self.shard_bytes, self.extra_meta = int(shard_bytes), extra_meta or {}
        self._n_shard, self._fh, self._pos, self.count, self.bytes = -1, None, 0, 0, 0
        self._index = open(self.out / INDEX_NAME, "w")
        self._keys: set[str] = set()

    def _roll(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._n_shard += 1
        self._fh = open(self.out / self._shard_name(), "wb")
        self._pos = 0

    def _shard_name(self) -> str:
        return f"shard-{self._n_shard:05d}.bin"

    def add(self, key: str, source: str, jpeg: bytes, width: int, height: int) -> ShardRecord:
        if key in self._keys:
            raise InputError(f"duplicate key {key!r} in shard set {self.out}")
        if not jpeg.startswith(b"\xff\xd8"):
            raise InputError(f"{key}: shard payloads must be JPEG bytes (use square_jpeg)")
        if self._fh is None or (self._pos and self._pos + len(jpeg) > self.shard_bytes):
            self._roll()
        rec = ShardRecord(key, source, self._shard_name(), self._pos, len(jpeg), int(width), int(height))
        self._fh.write(jpeg)
        self._pos += len(jpeg)
        self._index.write(json.dumps(rec.__dict__) + "\n")
        self._keys.add(key)
        self.count += 1
        self.bytes += len(jpeg)
        return rec

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._index.close()
        (self.out / META_NAME).write_text(json.dumps({"side": self.side, "count": self.count, "bytes": self.bytes,
                                                      **self.extra_meta}, indent=1) + "\n")

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_index(shard_dir: str | Path) -> list[ShardRecord]:
    """The records of a shard set, in write order. Raises :class:`InputError` for a folder without an index."""
    path = Path(shard_dir) / INDEX_NAME
    if not path.is_file():
        raise InputError(f"{shard_dir} is not a shard set (no {INDEX_NAME}); build it with ShardWriter")
    return [ShardRecord(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def read_meta(shard_dir: str | Path) -> dict:
    path = Path(shard_dir) / META_NAME
    if not path.is_file():
        raise InputError(f"{shard_dir} has no {META_NAME}: the shard set was not closed; write it again")
    return json.loads(path.read_text())


def read_bytes(shard_dir: str | Path, records: Sequence[ShardRecord]) -> list[bytes]:
    """The JPEG bytes of ``records`` (one open file per shard)."""
    shard_dir = Path(shard_dir)
    out: list[bytes] = []
    handles: dict[str, object] = {}
    try:
        for r in records:
            fh = handles.get(r.shard) or handles.setdefault(r.shard, open(shard_dir / r.shard, "rb"))
            fh.seek(r.offset)
            data = fh.read(r.length)
            if len(data) != r.length:
                raise InputError(f"{shard_dir / r.shard} is truncated at {r.key}; copy the shard set again")
            out.append(data)
    finally:
        for fh in handles.values():
            fh.close()
    return out


def _decode_square(data: bytes, size: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (size, size))
        im = im.convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BICUBIC, reducing_gap=3.0)
        return np.asarray(im).transpose(2, 0, 1)


def load_packed(shard_dirs: str | Path | Sequence[str | Path], size: int, *, sources: Iterable[str] | None = None,
                workers: int = 8) -> tuple[torch.Tensor, list[ShardRecord]]:
    """Decode shard sets into one ``uint8 (N, 3, size, size)`` tensor (and the records, in the same order).

    ``sources``: keep only photos of these sources. Photos stored at another side are resized to ``size``.
    """
    dirs = [shard_dirs] if isinstance(shard_dirs, (str, Path)) else list(shard_dirs)
    keep = set(sources) if sources is not None else None
    records: list[ShardRecord] = []
    blobs: list[bytes] = []
    for d in dirs:
        recs = [r for r in read_index(d) if keep is None or r.source in keep]
        records += recs
        blobs += read_bytes(d, recs)
    if not records:
        raise InputError(f"no photos in {', '.join(map(str, dirs))}" + (f" from sources {sorted(keep)}" if keep else ""))
    out = np.empty((len(blobs), 3, size, size), dtype=np.uint8)

    def work(i: int) -> None:
        out[i] = _decode_square(blobs[i], size)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(work, range(len(blobs))))
    return torch.from_numpy(out), records


# --------------------------------------------------------------------------------------------------
# curation: perceptual hash, near duplicates, colour and background statistics


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)
    m = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT32 = _dct_matrix(32)


def perceptual_hash(image: Image.Image) -> int:
    """64-bit DCT hash: the luma at 32x32, its 8x8 lowest DCT frequencies, one bit per coefficient above their
    median (the DC term excluded from the median). Robust to resizing, re-encoding and small tone changes."""
    grey = np.asarray(image.convert("L").resize((32, 32), Image.BILINEAR, reducing_gap=2.0), dtype=np.float64)
    coef = (_DCT32 @ grey @ _DCT32.T)[:8, :8].ravel()
    bits = coef > np.median(coef[1:])
    return int(np.packbits(bits).view(">u8")[0])


def hamming(a: int | np.ndarray, b: int | np.ndarray) -> np.ndarray:
    """Bit distance between 64-bit hashes (broadcasting over numpy ``uint64`` arrays)."""
    x = np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))
    return np.unpackbits(np.atleast_1d(x).astype(">u8").view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1).reshape(x.shape)


def near_duplicates(hashes: Sequence[int], max_distance: int = 4, bands: int = 8) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, whose hashes differ in at most ``max_distance`` bits.

    Exact when ``max_distance < bands`` (pigeonhole: two hashes that close agree on at least one of the
    ``bands`` bit bands); only hashes sharing a band are compared. Raises ``ValueError`` otherwise.
    """
    if not 0 <= max_distance < bands or 64 % bands:
        raise ValueError(f"need 0 <= max_distance < bands and bands dividing 64 (got {max_distance}, {bands})")
    h = np.asarray(list(hashes), dtype=np.uint64)
    width = 64 // bands
    pairs: set[tuple[int, int]] = set()
    for b in range(bands):
        key = (h >> np.uint64(b * width)) & np.uint64((1 << width) - 1)
        order = np.argsort(key, kind="stable")
        sk = key[order]
        starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
        ends = np.r_[starts[1:], len(sk)]
        for s, e in zip(starts, ends):
            if e - s < 2:
                continue
            members = order[s:e]
            sub = h[members]
            for a in range(len(members) - 1):
                d = hamming(sub[a], sub[a + 1:])
                for off in np.flatnonzero(d <= max_distance):
                    i, j = int(members[a]), int(members[a + 1 + off])
                    pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def photo_stats(image: Image.Image, side: int = 64, white: int = 235, border: int = 3) -> dict[str, float]:
    """Numbers for filtering a photo, measured on a ``side x side`` thumbnail:

    - ``colorfulness``: Hasler & Suesstrunk on 0-255 (grey 0; under ~10 reads near-grey or sepia);
    - ``white``: share of pixels whose every channel is >= ``white``;
    - ``white_border``: the same share on a ``border``-pixel frame (product shots on white paper);
    - ``flat``: share of pixels equal to their right neighbour (drawings and clip art are flat).
    """
    a = np.asarray(image.convert("RGB").resize((side, side), Image.BILINEAR, reducing_gap=2.0), dtype=np.uint8)
    whiteish = (a.min(axis=2) >= white)
    frame = np.ones((side, side), dtype=bool)
    frame[border:-border, border:-border] = False
    flat = (a[:, 1:] == a[:, :-1]).all(axis=2).mean()
    col = float(colorfulness(torch.from_numpy(a.astype(np.float32) / 255.0).permute(2, 0, 1)))
    return {"colorfulness": col, "white": float(whiteish.mean()), "white_border": float(whiteish[frame].mean()),
            "flat": float(flat)}
