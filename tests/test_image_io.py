"""Tests for colorizer_lib.io: loading from everything, saving with provenance, watermark, tensors."""

from __future__ import annotations

import http.server
import io
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

import colorizer_lib
from colorizer_lib.io import save as io_save
from colorizer_lib.io import tensor as io_tensor
from colorizer_lib.errors import InputError
from colorizer_lib.io import (
    LoadedImage,
    apply_watermark,
    iter_image_files,
    load_image,
    read_provenance,
    save_image,
    save_jpeg_bytes,
    side_by_side,
    to_luma_tensor,
)


def gradient_rgb(width: int = 64, height: int = 48) -> Image.Image:
    """A deterministic RGB test image with distinct values everywhere."""
    y, x = np.mgrid[0:height, 0:width]
    arr = np.stack([(x * 4) % 256, (y * 5) % 256, (x + y * 3) % 256], axis=2).astype(np.uint8)
    return Image.fromarray(arr)


# ------------------------------------------------------------------------------------ loading


def test_load_png_path_sets_name_source_and_mode(tmp_path):
    src = gradient_rgb()
    path = tmp_path / "old photo.png"
    src.save(path)
    loaded = load_image(path)
    assert loaded.rgb.mode == "RGB"
    assert np.array_equal(np.asarray(loaded.rgb), np.asarray(src))
    assert loaded.alpha is None and loaded.luma16 is None
    assert loaded.name == "old photo"
    assert loaded.source == str(path)
    assert loaded.original_mode == "RGB"
    assert load_image(str(path)).name == "old photo"


def test_loaded_image_is_returned_as_is():
    loaded = load_image(gradient_rgb())
    assert load_image(loaded) is loaded


@pytest.mark.parametrize("orientation, fix", [(3, Image.Transpose.ROTATE_180), (6, Image.Transpose.ROTATE_270),
                                              (8, Image.Transpose.ROTATE_90), (2, Image.Transpose.FLIP_LEFT_RIGHT)])
def test_exif_orientation_is_applied_and_reset(tmp_path, orientation, fix):
    src = gradient_rgb(40, 24)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"  # Make, must survive
    path = tmp_path / "rotated.png"
    src.save(path, exif=exif.tobytes())
    loaded = load_image(path)
    assert np.array_equal(np.asarray(loaded.rgb), np.asarray(src.transpose(fix)))
    kept = Image.Exif()
    kept.load(loaded.exif)
    assert kept[0x0112] == 1
    assert kept[0x010F] == "TestCam"


def test_rgba_png_keeps_alpha(tmp_path):
    rgba = gradient_rgb().convert("RGBA")
    alpha = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1)))
    rgba.putalpha(alpha)
    path = tmp_path / "a.png"
    rgba.save(path)
    loaded = load_image(path)
    assert loaded.rgb.mode == "RGB" and loaded.alpha.mode == "L"
    assert np.array_equal(np.asarray(loaded.alpha), np.asarray(alpha))
    assert np.array_equal(np.asarray(loaded.rgb), np.asarray(gradient_rgb()))


def test_la_and_palette_transparency_give_alpha():
    la = Image.merge("LA", (Image.new("L", (8, 8), 100), Image.new("L", (8, 8), 30)))
    loaded = load_image(la)
    assert np.asarray(loaded.rgb)[0, 0].tolist() == [100, 100, 100]
    assert np.asarray(loaded.alpha).max() == 30

    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putpixel((1, 1), 1)
    pal.info["transparency"] = 0
    loaded = load_image(pal)
    assert np.asarray(loaded.alpha)[0, 0] == 0 and np.asarray(loaded.alpha)[1, 1] == 255
    assert np.asarray(loaded.rgb)[1, 1].tolist() == [0, 255, 0]

    del pal.info["transparency"]
    opaque = load_image(pal)
    assert opaque.alpha is None
    assert np.asarray(opaque.rgb)[0, 0].tolist() == [255, 0, 0]


def test_one_bit_and_grey_become_rgb():
    bits = Image.new("1", (5, 5), 0)
    bits.putpixel((2, 2), 1)
    arr = np.asarray(load_image(bits).rgb)
    assert arr[2, 2].tolist() == [255, 255, 255] and arr[0, 0].tolist() == [0, 0, 0]
    grey = load_image(Image.new("L", (3, 3), 77))
    assert np.asarray(grey.rgb)[1, 1].tolist() == [77, 77, 77]


def test_cmyk_without_profile_uses_device_formula():
    cmyk = Image.new("CMYK", (4, 4), (255, 0, 0, 0))  # pure cyan
    loaded = load_image(cmyk)
    assert np.asarray(loaded.rgb)[0, 0].tolist() == [0, 255, 255]
    assert loaded.original_mode == "CMYK"


def test_cmyk_jpeg_file_loads_white_as_white(tmp_path):
    cmyk = Image.new("CMYK", (4, 4), (0, 0, 0, 0))
    path = tmp_path / "c.jpg"
    cmyk.save(path)
    loaded = load_image(path)
    assert loaded.rgb.mode == "RGB" and loaded.original_mode == "CMYK"
    assert np.asarray(loaded.rgb).min() >= 250  # white paper stays white


def test_cmyk_with_unreadable_profile_falls_back_loudly(caplog):
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 0, 0))  # pure magenta
    cmyk.info["icc_profile"] = b"\0" * 16 + b"CMYK" + b"\0" * 108  # header says CMYK, body is junk
    with caplog.at_level("WARNING", logger="colorizer_lib.io.modes"):
        loaded = load_image(cmyk)
    assert "CMYK ICC conversion failed" in caplog.text
    assert np.asarray(loaded.rgb)[0, 0].tolist() == [255, 0, 255]


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32768, 65535], [1000, 20000, 40000, 60000]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    loaded = load_image(path)
    assert loaded.original_mode.startswith("I")
    assert np.asarray(loaded.rgb)[:, :, 0].tolist() == np.rint(values / 257).astype(int).tolist()
    assert loaded.luma16.dtype == np.float32
    np.testing.assert_allclose(loaded.luma16, values / 65535, atol=1e-7)
    lum = to_luma_tensor(loaded)
    assert lum.shape == (1, 1, 2, 4)
    np.testing.assert_allclose(lum[0, 0].numpy(), values / 65535, atol=1e-7)


def test_i16b_and_int32_and_float_modes():
    big_endian = Image.frombytes("I;16B", (2, 1), bytes([0xFF, 0xFF, 0x80, 0x00]))
    loaded = load_image(big_endian)
    assert np.asarray(loaded.rgb)[0, :, 0].tolist() == [255, 128]
    np.testing.assert_allclose(loaded.luma16[0], [1.0, 32768 / 65535], atol=1e-7)

    int_img = Image.fromarray(np.array([[0, 65535]], dtype=np.int32))
    assert np.asarray(load_image(int_img).rgb)[0, :, 0].tolist() == [0, 255]
    with pytest.raises(InputError, match="outside 0..65535"):
        load_image(Image.fromarray(np.array([[0, 70000]], dtype=np.int32)))

    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert np.asarray(load_image(unit).rgb)[0, :, 0].tolist() == [0, 128, 255]
    scale255 = Image.fromarray(np.array([[0.0, 127.5, 255.0]], dtype=np.float32))
    np.testing.assert_allclose(load_image(scale255).luma16[0], [0, 0.5, 1], atol=1e-7)
    with pytest.raises(InputError, match="float image"):
        load_image(Image.fromarray(np.array([[-1.0, 2.0]], dtype=np.float32)))


def test_animated_gif_first_frame_with_warning(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    with pytest.warns(UserWarning, match="animated.*2 frames"):
        loaded = load_image(path)
    assert np.asarray(loaded.rgb)[0, 0].tolist() == [255, 0, 0]


def test_bytes_bytesio_and_file_objects(tmp_path):
    buf = io.BytesIO()
    gradient_rgb().save(buf, format="PNG")
    data = buf.getvalue()
    expected = np.asarray(gradient_rgb())
    for src in (data, bytearray(data), io.BytesIO(data)):
        loaded = load_image(src)
        assert np.array_equal(np.asarray(loaded.rgb), expected)
        assert loaded.name == "image"
    path = tmp_path / "named.png"
    path.write_bytes(data)
    with open(path, "rb") as handle:
        assert load_image(handle).name == "named"


def test_numpy_inputs():
    grey = np.full((3, 4), 200, dtype=np.uint8)
    assert load_image(grey).rgb.size == (4, 3)
    assert np.asarray(load_image(grey).rgb)[0, 0].tolist() == [200, 200, 200]

    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 10, 99
    loaded = load_image(rgba)
    assert np.asarray(loaded.alpha).tolist() == [[99, 99], [99, 99]]
    assert loaded.luma16 is None

    deep = np.zeros((1, 2, 3), dtype=np.uint16)
    deep[0, 1] = (65535, 0, 0)
    loaded = load_image(deep)
    assert np.asarray(loaded.rgb)[0, 1].tolist() == [255, 0, 0]
    np.testing.assert_allclose(loaded.luma16, [[0, 0.299]], atol=1e-6)

    floats = np.array([[[0.5, 0.5, 0.5]]], dtype=np.float64)
    loaded = load_image(floats)
    assert np.asarray(loaded.rgb)[0, 0].tolist() == [128, 128, 128]
    np.testing.assert_allclose(loaded.luma16, [[0.5]], atol=1e-6)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((2, 2, 2), np.uint8), "shape"),
        (np.zeros((2, 2, 3), np.int64), "dtype"),
        (np.full((2, 2), 1.5, np.float32), r"\[0, 1\]"),
        (np.full((2, 2), np.nan, np.float32), "NaN"),
        (np.zeros((0, 3), np.uint8), "no pixels"),
    ],
)
def test_numpy_bad_inputs(array, message):
    with pytest.raises(InputError, match=message):
        load_image(array)


def test_file_errors_name_the_problem(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(InputError, match="File not found.*nope.jpg"):
        load_image(missing)
    with pytest.raises(InputError, match="is a folder"):
        load_image(tmp_path)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        load_image(empty)
    text = tmp_path / "notes.jpg"
    text.write_text("hello, not an image")
    with pytest.raises(InputError, match=r"notes.jpg is not an image.*JPEG, PNG"):
        load_image(text)
    with pytest.raises(InputError, match="empty"):
        load_image(b"")
    with pytest.raises(InputError, match="Cannot load an image from a int"):
        load_image(42)
    with pytest.raises(InputError, match="only http"):
        load_image("ftp://example.com/a.png")


def test_truncated_file_is_an_error_not_half_an_image(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(buf, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        load_image(path)


def test_decompression_bomb_limit(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (200, 100)).save(path)
    with pytest.raises(InputError, match=r"20,000 pixels.*max_pixels"):
        load_image(path, max_pixels=19_999)
    assert load_image(path, max_pixels=20_000).rgb.size == (200, 100)
    # PIL's global guard is restored afterwards
    assert Image.MAX_IMAGE_PIXELS is not None


# ------------------------------------------------------------------------------------ URLs


class _Handler(http.server.BaseHTTPRequestHandler):
    png = b""
    seen_agents: list = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):  # noqa: N802 (http.server API)
        type(self).seen_agents.append(self.headers.get("User-Agent"))
        if self.path.startswith("/photos/Migrant%20Mother.png"):
            self._send(200, "image/png", self.png)
        elif self.path == "/octet":
            self._send(200, "application/octet-stream", self.png)
        elif self.path == "/page":
            self._send(200, "text/html; charset=utf-8", b"<html><body><img src=x></body></html>")
        elif self.path == "/sniffed-page":
            self._send(200, "application/octet-stream", b"<!DOCTYPE html><html></html>")
        elif self.path == "/big":
            self._send(200, "image/png", b"\x89PNG" + b"\0" * 5000)
        elif self.path == "/big-undeclared":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(b"\0" * 5000)
            self.close_connection = True
        elif self.path == "/slow":
            time.sleep(1.5)
            self._send(200, "image/png", self.png)
        else:
            self._send(404, "text/plain", b"missing")

    def _send(self, status, ctype, body):
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (the timeout test)


@pytest.fixture(scope="module")
def http_base():
    buf = io.BytesIO()
    gradient_rgb().save(buf, format="PNG")
    _Handler.png = buf.getvalue()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_loads_image_with_user_agent_and_name(http_base):
    loaded = load_image(f"{http_base}/photos/Migrant%20Mother.png?size=large")
    assert np.array_equal(np.asarray(loaded.rgb), np.asarray(gradient_rgb()))
    assert loaded.name == "Migrant_Mother"
    assert loaded.source.startswith(http_base)
    assert "Mozilla" in _Handler.seen_agents[-1]
    assert load_image(f"{http_base}/octet").name == "octet"


def test_url_web_page_is_refused(http_base):
    with pytest.raises(InputError, match="web page, not an image; right-click the picture"):
        load_image(f"{http_base}/page")
    with pytest.raises(InputError, match="web page"):
        load_image(f"{http_base}/sniffed-page")


def test_url_size_cap(http_base):
    with pytest.raises(InputError, match="larger than the download limit of 1,000 bytes"):
        load_image(f"{http_base}/big", max_bytes=1000)
    with pytest.raises(InputError, match="larger than the download limit"):
        load_image(f"{http_base}/big-undeclared", max_bytes=1000)


def test_url_404_timeout_refused(http_base):
    with pytest.raises(InputError, match=r"HTTP 404.*" ) as info:
        load_image(f"{http_base}/missing.png")
    assert "/missing.png" in str(info.value)
    with pytest.raises(InputError, match=r"Timed out after 0.3 s downloading .*/slow"):
        load_image(f"{http_base}/slow", timeout=0.3)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(InputError, match=rf"refused.*127.0.0.1:{port}"):
        load_image(f"http://127.0.0.1:{port}/x.png", timeout=2)


# ------------------------------------------------------------------------------------ saving


PROVENANCE = {
    "Software": "Colorizer 0.1.0",
    "Description": "Colorized by Colorizer (artistic, render factor 35)",
    "colorizer:model": "artistic",
    "colorizer:render_factor": 35,
}


@pytest.mark.parametrize("ext", ["png", "jpg", "jpeg", "webp", "tif", "tiff"])
def test_save_and_read_provenance_round_trip(tmp_path, ext):
    out = save_image(gradient_rgb(), tmp_path / "sub" / "dir" / f"out.{ext.upper()}", provenance=PROVENANCE)
    assert out.exists() and out.parent.name == "dir"
    assert read_provenance(out) == {k: str(v) for k, v in PROVENANCE.items()}
    with Image.open(out) as img:
        assert img.size == (64, 48)
        assert img.format == io_save.OUTPUT_FORMATS["." + ext]
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temp file left behind


def test_png_and_tiff_are_lossless_and_bmp_has_no_metadata(tmp_path):
    for ext in ("png", "tif", "bmp"):
        out = save_image(gradient_rgb(), tmp_path / f"x.{ext}", provenance=PROVENANCE)
        with Image.open(out) as img:
            assert np.array_equal(np.asarray(img.convert("RGB")), np.asarray(gradient_rgb()))
    assert read_provenance(tmp_path / "x.bmp") == {}


def test_save_keeps_icc_and_merges_exif(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x010E] = "old description"
    for ext in ("jpg", "png", "webp", "tif"):
        out = save_image(gradient_rgb(), tmp_path / f"m.{ext}", provenance=PROVENANCE, icc_profile=icc,
                         exif=exif.tobytes())
        with Image.open(out) as img:
            assert img.info.get("icc_profile") == icc, ext
            assert img.getexif().get(0x010F) == "TestCam", ext
        assert read_provenance(out)["colorizer:model"] == "artistic"


def test_icc_profile_survives_load(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "icc.png"
    gradient_rgb().save(path, icc_profile=icc)
    assert load_image(path).icc_profile == icc
    grey_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # not an RGB profile
    Image.new("L", (4, 4)).save(path, icc_profile=grey_icc)
    assert load_image(path).icc_profile is None


def test_save_errors(tmp_path):
    with pytest.raises(InputError, match=r"unknown image extension '.gifx'.*\.jpg.*\.png"):
        save_image(gradient_rgb(), tmp_path / "a.gifx")
    with pytest.raises(InputError, match=r"transparency as JPEG.*\.png"):
        save_image(gradient_rgb().convert("RGBA"), tmp_path / "a.jpg")
    src = tmp_path / "input.png"
    gradient_rgb().save(src)
    before = src.read_bytes()
    with pytest.raises(InputError, match="Refusing to write.*input"):
        save_image(Image.new("RGB", (4, 4)), tmp_path / "." / "input.png", forbid=[str(src)])
    assert src.read_bytes() == before
    with pytest.raises(InputError, match="quality"):
        save_image(gradient_rgb(), tmp_path / "q.jpg", quality=0)


def test_save_jpeg_bytes_adds_provenance_and_checks_its_input(tmp_path):
    buf = io.BytesIO()
    gradient_rgb().save(buf, "JPEG", quality=90)
    out = save_jpeg_bytes(buf.getvalue(), tmp_path / "sub" / "enc.jpg", provenance=PROVENANCE)
    assert read_provenance(out) == {k: str(v) for k, v in PROVENANCE.items()}
    with Image.open(out) as img, Image.open(io.BytesIO(buf.getvalue())) as ref:
        assert np.array_equal(np.asarray(img), np.asarray(ref))  # pixels untouched by the EXIF insert
    assert [p.name for p in out.parent.iterdir()] == ["enc.jpg"]
    plain = save_jpeg_bytes(buf.getvalue(), tmp_path / "plain.jpg")
    assert plain.read_bytes() == buf.getvalue() and read_provenance(plain) == {}
    with pytest.raises(InputError, match="not a JPEG"):
        save_jpeg_bytes(b"\x89PNG....", tmp_path / "bad.jpg")
    with pytest.raises(InputError, match=r"\.jpg or \.jpeg"):
        save_jpeg_bytes(buf.getvalue(), tmp_path / "x.png")
    with pytest.raises(InputError, match="Refusing to write"):
        save_jpeg_bytes(buf.getvalue(), tmp_path / "plain.jpg", forbid=[tmp_path / "plain.jpg"])
    assert not (tmp_path / "bad.jpg").exists() and not list(tmp_path.glob(".*.part"))


def test_interrupted_save_leaves_previous_file_intact(tmp_path, monkeypatch):
    out = tmp_path / "result.png"
    save_image(gradient_rgb(), out)
    before = out.read_bytes()

    class Interrupted(KeyboardInterrupt):
        pass

    def exploding_save(self, fp, *args, **kwargs):
        fp.write(b"partial garbage")
        raise Interrupted()

    monkeypatch.setattr(Image.Image, "save", exploding_save)
    with pytest.raises(Interrupted):
        save_image(Image.new("RGB", (10, 10)), out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.png"]


def test_saved_file_gets_normal_permissions(tmp_path):
    out = save_image(gradient_rgb(), tmp_path / "perm.png")
    assert out.stat().st_mode & 0o777 == 0o666 & ~io_save._UMASK


def test_save_rgba_png_keeps_alpha(tmp_path):
    rgba = gradient_rgb().convert("RGBA")
    rgba.putalpha(128)
    out = save_image(rgba, tmp_path / "alpha.webp")
    with Image.open(out) as img:
        assert img.mode == "RGBA" and np.asarray(img)[..., 3].max() == 128


# ------------------------------------------------------------------------------------ watermark


def test_watermark_is_additive_in_the_bottom_left_corner():
    base = Image.new("RGB", (400, 300), (40, 80, 120))
    out = apply_watermark(base)
    a = np.asarray(out).astype(int)
    side = int(0.05 * 300)  # 15
    top, left = 300 - side - 10, 10
    outside = np.ones(a.shape[:2], bool)
    outside[top:top + side, left:left + side] = False
    assert (a[outside] == [40, 80, 120]).all()
    patch = a[top:top + side, left:left + side] - [40, 80, 120]
    assert patch.min() >= 0  # additive: never darkens
    icon = Image.open(Path(colorizer_lib.__file__).parent / "assets" / "watermark.png").convert("RGBa")
    mark = np.asarray(icon.resize((side, side), Image.Resampling.BOX), dtype=float)[..., :3]
    np.testing.assert_allclose(patch, np.clip(np.rint([40, 80, 120] + 0.5 * mark), 0, 255) - [40, 80, 120], atol=1)
    assert patch.max() >= 100  # white palette at half weight is clearly visible
    assert np.array_equal(np.asarray(base)[0, 0], [40, 80, 120])  # input untouched


def test_watermark_saturates_and_keeps_alpha():
    white = Image.new("RGBA", (200, 400), (250, 250, 250, 77))
    out = apply_watermark(white)
    assert out.mode == "RGBA" and out.size == (200, 400)
    arr = np.asarray(out)
    assert arr[..., :3].max() == 255 and (arr[..., 3] == 77).all()


def test_watermark_skips_images_too_small():
    tiny = Image.new("RGB", (30, 19), (5, 5, 5))  # int(0.05 * 19) == 0
    assert np.array_equal(np.asarray(apply_watermark(tiny)), np.asarray(tiny))
    narrow = Image.new("RGB", (20, 100), (5, 5, 5))  # side 5 + margins 20 > width 20
    assert np.array_equal(np.asarray(apply_watermark(narrow)), np.asarray(narrow))
    smallest = Image.new("RGB", (21, 20), (5, 5, 5))  # 1 px icon fits exactly
    assert apply_watermark(smallest).getpixel((10, 9)) != (5, 5, 5)


def test_watermark_asset_is_what_the_script_draws():
    from colorizer_lib.assets.make_watermark import make_watermark

    drawn = make_watermark()
    stored = Image.open(Path(colorizer_lib.__file__).parent / "assets" / "watermark.png")
    assert stored.mode == "RGBA" and stored.size == (185, 185)
    assert np.array_equal(np.asarray(drawn), np.asarray(stored))
    arr = np.asarray(stored)
    assert arr[..., 3].min() == 0 and arr[..., 3].max() == 255  # transparent background, opaque body
    opaque = arr[arr[..., 3] == 255]
    assert opaque[:, :3].mean() > 250 and np.median(opaque[:, :3]) == 255  # the palette is white
    shadow = (arr[..., 3] > 0) & (arr[..., 3] < 200) & (arr[..., 0] < 50)
    assert shadow.sum() > 100  # a soft dark shadow exists


# ------------------------------------------------------------------------------------ compare, folders


def test_side_by_side_same_height_and_labels():
    left = Image.new("L", (100, 200), 50)
    right = Image.new("RGB", (60, 100), (200, 10, 10))
    plain = side_by_side(left, right, labels=None)
    assert plain.mode == "RGB" and plain.size == (50 + 60, 100)
    assert plain.getpixel((5, 90)) == (50, 50, 50) and plain.getpixel((100, 90)) == (200, 10, 10)
    labelled = side_by_side(left, right)
    diff = np.abs(np.asarray(labelled, dtype=int) - np.asarray(plain, dtype=int)).sum(axis=2)
    assert diff[:20, :50].any() and diff[:20, 50:].any() and not diff[50:].any()
    assert side_by_side(left, right, max_height=40).size == (20 + 24, 40)
    with pytest.raises(InputError, match="max_height"):
        side_by_side(left, right, max_height=0)


def test_side_by_side_shows_transparency_on_white():
    clear = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert side_by_side(clear, clear, labels=None).getpixel((3, 3)) == (255, 255, 255)


def test_iter_image_files(tmp_path):
    for rel in ["b.JPG", "a.png", "notes.txt", ".hidden.png", "sub/c.TIFF", "sub/a.webp",
                ".git/d.png", "sub/deeper/e.gif", "z.bmp"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_image_files(tmp_path)]
    assert found == ["a.png", "b.JPG", "sub/a.webp", "sub/c.TIFF", "sub/deeper/e.gif", "z.bmp"]
    flat = [p.name for p in iter_image_files(tmp_path, recursive=False)]
    assert flat == ["a.png", "b.JPG", "z.bmp"]
    with pytest.raises(InputError, match="Folder not found"):
        list(iter_image_files(tmp_path / "missing"))
    with pytest.raises(InputError, match="not a folder"):
        list(iter_image_files(tmp_path / "a.png"))


# ------------------------------------------------------------------------------------ tensors


def test_luma_tensor_uses_601_weights():
    arr = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 200, 30]]], dtype=np.uint8)
    lum = to_luma_tensor(load_image(arr))
    assert lum.shape == (1, 1, 1, 4) and lum.dtype == torch.float32
    expected = (arr.astype(np.float64) @ np.array([0.299, 0.587, 0.114])) / 255
    np.testing.assert_allclose(lum[0, 0].numpy(), expected, atol=1e-6)
    grey = to_luma_tensor(load_image(np.full((2, 2), 255, np.uint8)))
    assert float(grey.max()) == 1.0


def test_loaded_image_dataclass_fields():
    loaded = load_image(gradient_rgb())
    assert isinstance(loaded, LoadedImage)
    assert loaded.size == (64, 48)
    assert loaded.source == "<PIL.Image>" and loaded.exif is None and loaded.icc_profile is None


def test_luma_tensor_is_exact_across_row_blocks(monkeypatch):
    monkeypatch.setattr(io_tensor, "_CHUNK_PIXELS", 100)  # 64-px rows -> blocks of 1 row
    src = gradient_rgb(64, 48)
    arr = np.asarray(src).astype(np.float64)
    lum = to_luma_tensor(load_image(src))[0, 0].numpy()
    np.testing.assert_allclose(lum, arr @ np.array([0.299, 0.587, 0.114]) / 255, atol=1e-6)


def test_lazy_pil_image_is_loaded_inside_the_guard(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(buf, "PNG")
    path = tmp_path / "lazy.png"
    path.write_bytes(buf.getvalue()[:-2000])
    with Image.open(path) as lazy:  # not decoded yet
        with pytest.raises(InputError, match="truncated or corrupt"):
            load_image(lazy)
    good = tmp_path / "Dorothea Lange.png"
    gradient_rgb().save(good)
    with Image.open(good) as lazy:
        loaded = load_image(lazy)
    assert loaded.name == "Dorothea_Lange" and loaded.rgb.size == (64, 48)


def test_jpeg_exif_sub_ifds_survive_rotation_and_save(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(0x8769)[0x9003] = "1936:03:07 10:00:00"  # DateTimeOriginal, in the Exif sub-IFD
    exif.get_ifd(0x8825)[1] = "N"  # GPS latitude ref
    path = tmp_path / "camera.jpg"
    Image.new("RGB", (30, 20), (90, 90, 90)).save(path, exif=exif.tobytes())
    loaded = load_image(path)
    assert loaded.rgb.size == (20, 30)
    out = save_image(loaded.rgb, tmp_path / "out.jpg", exif=loaded.exif, provenance={"Software": "Colorizer"})
    with Image.open(out) as img:
        tags = img.getexif()
        assert tags[0x0112] == 1 and tags[0x0131] == "Colorizer"
        assert tags.get_ifd(0x8769)[0x9003] == "1936:03:07 10:00:00"
        assert tags.get_ifd(0x8825)[1] == "N"


@pytest.mark.parametrize("compression", [None, "tiff_lzw"])
@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize("orientation, fix", [(6, Image.Transpose.ROTATE_270), (8, Image.Transpose.ROTATE_90),
                                              (3, Image.Transpose.ROTATE_180)])
def test_tiff_orientation(tmp_path, compression, mode, orientation, fix):
    # PIL applies a TIFF's orientation itself while loading; it must be applied exactly once,
    # also for uncompressed files (which PIL would memory-map when opened by path).
    src = gradient_rgb(30, 20).convert(mode)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Scanner"
    path = tmp_path / "scan.tif"
    src.save(path, exif=exif.tobytes(), **({"compression": compression} if compression else {}))
    loaded = load_image(path)
    expected = np.asarray(src.transpose(fix).convert("RGB"))
    assert np.array_equal(np.asarray(loaded.rgb), expected)
    kept = Image.Exif()
    kept.load(loaded.exif)
    assert kept.get(0x010F) == "Scanner" and kept.get(0x0112, 1) == 1
    assert not {256, 257, 273, 279} & set(kept)  # the source's TIFF layout tags are not carried over
