"""Shard sets of training photos, perceptual hashes and the photo filters (colorizer_lib.training.shards)."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from colorizer_lib.errors import InputError
from colorizer_lib.training import shards
from colorizer_lib.training.shards import ShardWriter, load_packed, near_duplicates, perceptual_hash, read_bytes, read_index


def _photo(seed: int, size=(96, 72)) -> Image.Image:
    """A random blocky colour picture (blocks survive resizing, so hashes of resized copies stay close)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    return Image.fromarray(blocks).resize(size, Image.NEAREST)


def _decode(data: bytes, size: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BICUBIC, reducing_gap=3.0)
        return np.asarray(im).transpose(2, 0, 1)


def test_shards_roundtrip_across_several_shard_files(tmp_path):
    photos = [_photo(i) for i in range(7)]
    blobs = [shards.square_jpeg(p, 32, quality=90) for p in photos]
    with ShardWriter(tmp_path / "set", 32, shard_bytes=2 * max(map(len, blobs))) as w:
        for i, b in enumerate(blobs):
            w.add(f"k{i}", "a" if i % 2 else "b", b, *photos[i].size)
    recs = read_index(tmp_path / "set")
    assert [r.key for r in recs] == [f"k{i}" for i in range(7)]
    assert len({r.shard for r in recs}) >= 3  # the size limit rolled over to new shard files
    assert (recs[0].width, recs[0].height) == (96, 72)
    assert read_bytes(tmp_path / "set", recs) == blobs
    packed, got = load_packed(tmp_path / "set", 32, workers=3)
    assert packed.dtype == torch.uint8 and packed.shape == (7, 3, 32, 32)
    assert [r.key for r in got] == [r.key for r in recs]
    for i, b in enumerate(blobs):  # exactly what an independent decode of the stored bytes gives
        np.testing.assert_array_equal(packed[i].numpy(), _decode(b, 32))
    resized, _ = load_packed(tmp_path / "set", 24, workers=1)
    np.testing.assert_array_equal(resized[3].numpy(), _decode(blobs[3], 24))
    only_a, recs_a = load_packed([tmp_path / "set"], 32, sources=["a"])
    assert [r.key for r in recs_a] == ["k1", "k3", "k5"]
    np.testing.assert_array_equal(only_a[1].numpy(), packed[3].numpy())
    assert shards.read_meta(tmp_path / "set")["count"] == 7


def test_shard_writer_and_reader_refuse_bad_input(tmp_path):
    blob = shards.square_jpeg(_photo(0), 16)
    with ShardWriter(tmp_path / "s", 16) as w:
        w.add("x", "a", blob, 16, 16)
        with pytest.raises(InputError, match="duplicate key"):
            w.add("x", "a", blob, 16, 16)
        png = io.BytesIO()
        _photo(1).save(png, "PNG")
        with pytest.raises(InputError, match="JPEG"):
            w.add("y", "a", png.getvalue(), 16, 16)
    with pytest.raises(InputError, match="already holds a shard set"):
        ShardWriter(tmp_path / "s", 16)
    with pytest.raises(InputError, match="not a shard set"):
        read_index(tmp_path / "missing")
    with pytest.raises(InputError, match="no photos"):
        load_packed(tmp_path / "s", 16, sources=["other"])
    rec = read_index(tmp_path / "s")[0]
    (tmp_path / "s" / rec.shard).write_bytes(blob[: len(blob) // 2])
    with pytest.raises(InputError, match="truncated"):
        read_bytes(tmp_path / "s", [rec])


def test_open_rgb_names_an_undecodable_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(InputError, match="broken.jpg"):
        shards.open_rgb(bad)
    assert shards.open_rgb(shards.square_jpeg(_photo(2), 20)).size == (20, 20)


def test_hamming_counts_differing_bits():
    assert int(shards.hamming(0, 0)) == 0
    assert int(shards.hamming(0b1011, 0b0001)) == 2
    assert int(shards.hamming(0, (1 << 64) - 1)) == 64
    np.testing.assert_array_equal(shards.hamming(np.uint64(5), np.array([5, 4, 2], dtype=np.uint64)), [0, 1, 3])


def test_perceptual_hash_matches_resized_copies_and_separates_different_photos():
    a = _photo(10, (120, 90))
    small = a.resize((60, 45), Image.BICUBIC)
    recoded = shards.open_rgb(shards.square_jpeg(a.resize((90, 90)), 90, quality=60)).resize((120, 90))
    ha = perceptual_hash(a)
    assert int(shards.hamming(ha, perceptual_hash(small))) <= 4
    assert int(shards.hamming(ha, perceptual_hash(recoded))) <= 6
    others = [perceptual_hash(_photo(s, (120, 90))) for s in range(11, 21)]
    assert min(int(shards.hamming(ha, h)) for h in others) > 10


def test_near_duplicates_equals_brute_force():
    rng = np.random.default_rng(0)
    base = [int(x) for x in rng.integers(0, 2**63, size=40, dtype=np.int64)]
    hashes = list(base)
    for i in range(0, 40, 4):  # planted near copies at distance 1..5
        flips = rng.choice(64, size=1 + i % 5, replace=False)
        hashes.append(base[i] ^ int(sum(1 << int(f) for f in flips)))
    for max_d in (0, 3, 4):
        brute = sorted((i, j) for i, j in itertools.combinations(range(len(hashes)), 2)
                       if bin(hashes[i] ^ hashes[j]).count("1") <= max_d)
        assert near_duplicates(hashes, max_d) == brute
    assert len(near_duplicates(hashes, 4)) >= 8
    with pytest.raises(ValueError):
        near_duplicates(hashes, 8, bands=8)


def test_photo_stats_flags_grey_white_background_and_flat_pictures():
    grey = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8)[None, :, None] * 3, (64, 1, 3)))
    s = shards.photo_stats(grey)
    assert s["colorfulness"] == pytest.approx(0.0, abs=1e-6)
    assert s["flat"] == 0.0  # a horizontal ramp: no pixel equals its right neighbour
    shot = np.full((64, 64, 3), 255, dtype=np.uint8)
    shot[16:48, 16:48] = (200, 30, 40)
    s = shards.photo_stats(Image.fromarray(shot))
    assert s["white_border"] == 1.0
    assert s["white"] == pytest.approx(1 - 0.25)
    assert s["flat"] > 0.9
    assert s["colorfulness"] > 20
    photo = shards.photo_stats(_photo(3, (64, 64)).resize((64, 64)))
    assert photo["white_border"] < 0.2
