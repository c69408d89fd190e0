"""Unit tests of colorizer_lib.notebook: parsing, slider bounds, button wiring, errors shown in the UI.

Widgets run headless here: button callbacks fire through ``Button.click()``, exactly what the
front end triggers. The colorizer is a real ``Colorizer`` around a constant-colour model, so the
results are deterministic and fast.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import io
import re
import sys
import threading
import types
import zipfile
from pathlib import Path

import ipywidgets as W
import pytest
from PIL import Image

from colorizer_lib import notebook
from colorizer_lib.notebook.model_choice import _first_sentence
from colorizer_lib.errors import InputError, RenderFactorError, WeightsError
from tests.browser.support import grey_photo, is_tinted, mean_rgb, tint_colorizer


@pytest.fixture(scope="module")
def colorizer():
    return tint_colorizer()


@pytest.fixture
def photo(tmp_path):
    return grey_photo(tmp_path / "old photo.png")


def make_ui(tmp_path, colorizer, **kwargs):
    calls = []

    def factory(name):
        calls.append(name)
        return colorizer

    ui = notebook.ImageColorizerUI(model=kwargs.pop("model", "artistic"), output_dir=tmp_path / "out",
                                  factory=factory, **kwargs)
    ui.factory_calls = calls
    return ui


def v8_value(name: str, content: bytes):
    """A FileUpload.value entry exactly as ipywidgets 8 builds it (memoryview content)."""
    return {"name": name, "type": "image/png", "size": len(content), "content": memoryview(content),
            "last_modified": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)}


def png_bytes(path: Path) -> bytes:
    return path.read_bytes()


#: The FileUpload of the installed ipywidgets keeps files in metadata + data lists (7.x) or in value (8.x).
IPYWIDGETS7 = "data" in W.FileUpload.class_trait_names()


def set_upload(upload: W.FileUpload, files: list[tuple[str, bytes]], sizes: list[int] | None = None) -> None:
    """Put ``files`` into a real FileUpload exactly as the installed ipywidgets' front end does:
    7.x syncs ``metadata`` and ``data`` and bumps ``_counter`` (which rebuilds ``value``); 8.x sets
    ``value`` to a tuple of dicts. ``sizes`` overrides the sizes the browser reported."""
    sizes = sizes or [len(content) for _, content in files]
    if IPYWIDGETS7:
        upload.metadata = [{"name": name, "type": "image/png", "size": size, "lastModified": 1700000000000}
                           for (name, _), size in zip(files, sizes)]
        upload.data = [content for _, content in files]
        upload._counter += 1
    else:
        upload.value = tuple(dict(v8_value(name, content), size=size) for (name, content), size in zip(files, sizes))


def upload_is_empty(upload: W.FileUpload) -> bool:
    return notebook.upload_files(upload) == [] and len(upload.value) == 0


@pytest.fixture
def fake_colab(monkeypatch, tmp_path):
    """A stand-in ``google.colab`` package. Its ``files.upload(target_dir)`` behaves as Colab's:
    it writes each chosen file into ``target_dir`` and returns ``{file name: bytes}``. The test
    queues what the user would pick with ``fake_colab.choose([(name, bytes), ...])``."""
    picks: list[list[tuple[str, bytes]]] = []
    downloaded: list[str] = []

    def upload(target_dir=""):
        chosen = picks.pop(0)
        folder = Path(target_dir or ".")
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in chosen:
            (folder / name).write_bytes(content)
        return {name: content for name, content in chosen}

    files = types.ModuleType("google.colab.files")
    files.upload, files.download = upload, downloaded.append
    colab = types.ModuleType("google.colab")
    colab.files = files
    google = types.ModuleType("google")
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.files", files)
    return types.SimpleNamespace(choose=picks.append, downloaded=downloaded, picks=picks)


# ---------------------------------------------------------------- parsing


def test_parse_upload_ipywidgets8_tuple(photo):
    data = png_bytes(photo)
    uploads = notebook.parse_upload((v8_value("a.png", data), v8_value("b.zip", b"PK")))
    assert [u.name for u in uploads] == ["a.png", "b.zip"]
    assert uploads[0].content == data and isinstance(uploads[0].content, bytes)
    assert [u.is_zip for u in uploads] == [False, True]


def test_parse_upload_ipywidgets7_dict(photo):
    data = png_bytes(photo)
    value = {"a.png": {"metadata": {"name": "a.png", "type": "image/png", "size": len(data),
                                    "lastModified": 1700000000000}, "content": data},
             "c.jpg": {"metadata": {}, "content": b"\xff\xd8"}}
    uploads = notebook.parse_upload(value)
    assert [(u.name, u.content) for u in uploads] == [("a.png", data), ("c.jpg", b"\xff\xd8")]


def test_clear_upload_installed_version(photo):
    upload = W.FileUpload()
    set_upload(upload, [("a.png", png_bytes(photo))])
    assert [u.name for u in notebook.upload_files(upload)] == ["a.png"]
    notebook.clear_upload(upload)
    assert upload_is_empty(upload)


def test_clear_upload_ipywidgets7_model_under_any_version():
    class Upload7:
        """ipywidgets 7's FileUpload model: value (read-only) is rebuilt from metadata + data when
        _counter changes (checked against the real ipywidgets 7.8.5 by hand)."""

        def __init__(self):
            self.metadata, self.data, self.__dict__["_counter"] = [{"name": "a.png"}], [b"x"], 1
            self.value = {"a.png": {"metadata": {"name": "a.png"}, "content": b"x"}}

        def set_trait(self, name, value):
            self.__dict__[name] = value

        def __setattr__(self, name, value):
            self.__dict__[name] = value
            if name == "_counter":
                self.value = {m["name"]: {"metadata": m, "content": d} for m, d in zip(self.metadata, self.data)}

    v7 = Upload7()
    notebook.clear_upload(v7)
    assert v7.value == {} and v7._counter == 0 and notebook.parse_upload(v7.value) == []


@pytest.mark.parametrize("empty", [None, (), [], {}])
def test_parse_upload_empty(empty):
    assert notebook.parse_upload(empty) == []


@pytest.mark.parametrize("junk", [42, "a.png", ({"name": "x"},), {"a.png": b"bytes"}])
def test_parse_upload_rejects_unknown_shapes(junk):
    with pytest.raises(InputError, match="upload|FileUpload"):
        notebook.parse_upload(junk)


def test_parse_sources_accepts_urls_and_existing_paths(photo, tmp_path):
    text = f"https://example.org/a.jpg\n  http://127.0.0.1:8000/b.png https://x.org/c.png \n{photo.parent}\n"
    assert notebook.parse_sources(text) == ["https://example.org/a.jpg", "http://127.0.0.1:8000/b.png",
                                           "https://x.org/c.png", str(photo.parent)]
    assert notebook.parse_sources("   ") == []


def test_parse_sources_one_path_per_line_spaces_kept(tmp_path):
    (tmp_path / "my scans").mkdir()
    spaced = grey_photo(tmp_path / "my scans" / "grand ma.png")
    assert notebook.parse_sources(f"  {spaced}  \n\n{spaced.parent}") == [str(spaced), str(spaced.parent)]
    grey_photo(tmp_path / "a.png")
    grey_photo(tmp_path / "b.png")  # two paths on one line are one (missing) path, never split
    with pytest.raises(InputError, match="neither an http"):
        notebook.parse_sources(f"{tmp_path / 'a.png'} {tmp_path / 'b.png'}")


@pytest.mark.parametrize("bad, words", [("not a url", "neither an http"), ("ftp://host/a.jpg", "only http"),
                                        ("https://", "no host"), ("/no/such/file.jpg", "neither an http")])
def test_parse_sources_rejects_bad_entries(bad, words):
    with pytest.raises(InputError, match=words):
        notebook.parse_sources(bad)


def test_source_stem_and_result_filename():
    assert notebook.source_stem("https://x.org/path/My%20Photo.JPG?size=2") == "My_Photo"
    assert notebook.source_stem("/tmp/a b/c.d.png") == "c.d"
    assert notebook.source_stem("https://x.org/") == "image"
    assert notebook.result_filename("c", 35, ".JPG") == "c_colorized_rf35.jpg"
    assert notebook.result_filename("c", 12, ".gif") == "c_colorized_rf12.png"


def test_parse_factors():
    assert notebook.parse_factors("10, 20 35") == [10, 20, 35]
    assert notebook.parse_factors([7, 9]) == [7, 9]
    with pytest.raises(InputError, match="whole numbers"):
        notebook.parse_factors("10, big")


@pytest.mark.parametrize("given, expected", [("35.0, 21", [35, 21]), ([35.0, 2], [35, 2]), ("100", [100])])
def test_parse_factors_takes_what_the_library_takes(given, expected):
    """The sweep and video preview factors are checked as the CLI and the library check a render factor."""
    assert notebook.parse_factors(given) == expected
    assert all(type(v) is int for v in notebook.parse_factors(given))


@pytest.mark.parametrize("given, words", [("35.5", "whole number from 2 to 100"), ([35.5], "whole number"),
                                          ("500", "outside the allowed range 2..100"), ([1], "outside"),
                                          ("nan", "whole number")])
def test_parse_factors_refuses_what_the_library_refuses(given, words):
    with pytest.raises(RenderFactorError, match=words):
        notebook.parse_factors(given)


def test_format_eta():
    assert notebook.format_eta(0, 4, 0.0) == "0/4 images"
    assert notebook.format_eta(1, 1, 2.0) == "1/1 image · 2.0 s/image · ETA 0.0 s"
    assert notebook.format_eta(2, 10, 30.0, unit="frame") == "2/10 frames · 15 s/frame · ETA 2 min 00 s"


# ---------------------------------------------------------------- runtime check


def fake_torch(available: bool):
    props = types.SimpleNamespace(total_memory=16 * 2**30)
    cuda = types.SimpleNamespace(is_available=lambda: available, get_device_name=lambda i: "Tesla T4",
                                 get_device_properties=lambda i: props)
    return types.SimpleNamespace(cuda=cuda)


def test_describe_runtime_gpu_and_cpu():
    gpu = notebook.describe_runtime(fake_torch(True))
    assert "GPU found: Tesla T4 (16 GiB)" in gpu
    cpu = notebook.describe_runtime(fake_torch(False))
    assert cpu.startswith("No GPU found") and "Change runtime type" in cpu


# ---------------------------------------------------------------- slider


def test_slider_bounds():
    assert notebook.slider_bounds(35, (2, 100)) == notebook.SLIDER_RANGE
    assert notebook.slider_bounds(80, (2, 100)) == (notebook.SLIDER_RANGE[0], 80)
    assert notebook.slider_bounds(3, (2, 100)) == (3, notebook.SLIDER_RANGE[1])
    assert notebook.slider_bounds(10, (8, 20)) == (8, 20)
    with pytest.raises(RenderFactorError, match="2..100"):
        notebook.slider_bounds(101, (2, 100))


def test_default_model_is_the_embedded_one(tmp_path, colorizer, monkeypatch):
    from colorizer_lib import registry

    bundled = next((s.name for s in registry.list_specs() if getattr(s, "bundled", None)), None)
    ui = notebook.ImageColorizerUI(output_dir=tmp_path, factory=lambda name: colorizer)
    assert ui.model.value == (bundled or registry.list_specs()[0].name)


def test_ui_slider_follows_model_defaults(tmp_path, colorizer):
    from colorizer_lib import colorizer as colorizer_module, registry

    lo_allowed, hi_allowed = colorizer_module.RENDER_FACTOR_RANGE
    ui = make_ui(tmp_path, colorizer, model="video")
    assert ui.model.value == "video"
    assert ui.render_factor.value == registry.get_spec("video").default_render_factor
    assert lo_allowed <= ui.render_factor.min <= ui.render_factor.max <= hi_allowed
    ui.model.value = "artistic"
    assert ui.render_factor.value == registry.get_spec("artistic").default_render_factor
    explicit = make_ui(tmp_path, colorizer, model="artistic", render_factor=12)
    assert explicit.render_factor.value == 12
    with pytest.raises(RenderFactorError):
        make_ui(tmp_path, colorizer, render_factor=1000)


def test_model_labels_are_not_cut_mid_word():
    from colorizer_lib import registry

    for (label, name), spec in zip(notebook.model_options(), registry.list_specs()):
        text = label.removeprefix(f"{name}: ").removesuffix("…")
        shown = spec.summary or spec.description  # what the model is good at, in a few words
        assert text and shown.startswith(text), label
        following = shown[len(text):]
        assert following == "" or not following[0].isalnum(), f"{label!r} ends inside a word"
        assert len(label) <= notebook.MODEL_LABEL_CHARS and label.count("(") == label.count(")"), label
    assert _first_sentence("word " * 30).endswith("word…")


def test_every_model_label_says_what_it_is_good_at_whole():
    from colorizer_lib import registry

    labels = dict((name, label) for label, name in notebook.model_options())
    for spec in registry.list_specs():
        assert spec.summary and labels[spec.name] == f"{spec.name}: {spec.summary}", spec.name  # never cut
    assert labels["ddcolor"] == "ddcolor: natural, vivid colour for most photos"


def test_slider_steps_by_two_for_ddcolor(tmp_path, colorizer):
    """DDColor's input side (16 x render factor) must be a multiple of 32: with a DDColor model picked the
    slider offers even render factors only, from an even minimum; other models step by one again."""
    from colorizer_lib import registry

    ui = make_ui(tmp_path, colorizer, model="artistic")
    slider = ui.render_factor
    assert (slider.step, slider.value) == (1, 35)
    ui.model.value = "ddcolor"
    assert (slider.step, slider.value) == (2, registry.get_spec("ddcolor").default_render_factor)
    assert slider.min % 2 == 0 and slider.max % 2 == 0
    ui.model.value = "ddcolor-tiny"
    assert slider.step == 2 and slider.value == 32
    ui.model.value = "compact"
    assert (slider.step, slider.value) == (1, registry.get_spec("compact").default_render_factor)
    # an odd render factor asked for with a DDColor model is moved up to the next even one, or down at the top
    assert make_ui(tmp_path, colorizer, model="ddcolor", render_factor=35).render_factor.value == 36
    top = make_ui(tmp_path, colorizer, model="ddcolor-tiny", render_factor=65).render_factor
    assert (top.value, top.max, top.step) == (64, 64, 2)
    low = make_ui(tmp_path, colorizer, model="ddcolor", render_factor=3).render_factor
    assert (low.value, low.min) == (4, 4)
    assert notebook.model_choice.snap_render_factor(33, 1, 4, 64) == 33
    assert [notebook.model_choice.snap_render_factor(v, 2, 4, 64) for v in (4, 5, 63, 64)] == [4, 6, 64, 64]


def test_model_options_list_registry_and_files(tmp_path):
    from colorizer_lib import registry

    values = [value for _, value in notebook.model_options()]
    assert values == [spec.name for spec in registry.list_specs()]
    weights = tmp_path / "mine.pth"
    weights.write_bytes(b"x")
    options = notebook.model_options(str(weights))
    assert options[0] == ("mine.pth (file)", str(weights))
    assert notebook.model_value("ColorizeArtistic_gen") == "artistic"
    # an ensemble given as the notebook's `model` parameter is offered under a label that says what it is
    assert notebook.model_options("ddcolor+artistic")[0] == (
        "ddcolor+artistic (ensemble: the models' colours averaged)", "ddcolor+artistic")


# ---------------------------------------------------------------- button wiring


def test_colorize_button_colorizes_saves_and_shows(tmp_path, colorizer, photo):
    ui = make_ui(tmp_path, colorizer, render_factor=8, sources=str(photo))
    ui.button.click()
    assert ui.status.is_error is False, ui.status.text
    assert ui.factory_calls == ["artistic"]
    [outcome] = ui.outcomes
    assert outcome.path == tmp_path / "out" / "old_photo_colorized_rf8.png"
    saved = Image.open(outcome.path)
    assert saved.size == (96, 64) and is_tinted(saved)
    assert outcome.result.render_factor == 8
    assert ui.progress.bar.value == ui.progress.bar.max == 1 and ui.progress.bar.bar_style == "success"
    assert not ui.button.disabled
    view = ui.results.children[0]
    html_blob = " ".join(c.value for c in view.children if isinstance(c, W.HTML))
    assert "old_photo" in html_blob and "render factor 8" in html_blob
    tabs = view.children[1]
    assert 'type="range"' in tabs.children[0].value
    assert Image.open(io.BytesIO(tabs.children[1].value)).width > 96  # the side-by-side comparison
    # The slider value is what the next click uses; the model is not reloaded.
    ui.render_factor.value = 12
    ui.button.click()
    assert [o.result.render_factor for o in ui.outcomes] == [8, 12]
    assert ui.factory_calls == ["artistic"]


def test_upload_both_shapes_and_zip_batch(tmp_path, colorizer, photo):
    ui = make_ui(tmp_path, colorizer, render_factor=8)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(photo, "album/one.png")
        zf.write(photo, "album/two.png")
        zf.writestr("album/notes.txt", "not an image")
        zf.writestr("__MACOSX/album/._one.png", "junk")
    set_upload(ui.upload, [("single.png", png_bytes(photo)), ("album.zip", archive.getvalue())])
    ui.button.click()
    assert not ui.status.is_error, ui.status.text
    assert [o.name for o in ui.outcomes] == ["single"]
    [report] = ui.batches
    assert report.done == ["album/one.png", "album/two.png"] and report.failed == []
    with zipfile.ZipFile(report.zip_path) as zf:
        assert sorted(zf.namelist()) == ["album/one_colorized.png", "album/two_colorized.png"]
        assert is_tinted(Image.open(io.BytesIO(zf.read("album/two_colorized.png"))))
    assert upload_is_empty(ui.upload)  # cleared: the next click does not redo the same files
    assert "Done: 3 photos" in ui.status.text


def test_default_example_only_on_run_all_and_never_kept(tmp_path, colorizer, photo):
    ui = make_ui(tmp_path, colorizer, render_factor=6)
    outcomes = ui.colorize(example_if_empty=True)  # what the notebook's Run all does
    assert len(outcomes) == 1 and outcomes[0].name == Path(notebook.DEFAULT_EXAMPLE).stem
    assert ui.urls.value == ""  # the box holds only what the user types
    assert is_tinted(Image.open(outcomes[0].path))
    # The user's first upload colorizes the upload alone, not the example again.
    set_upload(ui.upload, [("mine.png", png_bytes(photo))])
    ui.button.click()
    assert [o.name for o in ui.outcomes] == [outcomes[0].name, "mine"] and not ui.status.is_error


def test_empty_press_says_so_and_never_colorizes_something_else(tmp_path, colorizer):
    """A press with nothing given, e.g. after an upload too large to reach Python (the browser
    sends nothing), is an error naming the limit: never the example, never 'Done'."""
    ui = make_ui(tmp_path, colorizer, render_factor=6)
    assert ui.colorize() == [] and ui.outcomes == []
    assert ui.status.is_error and "No photo given" in ui.status.text and "10 MB" in ui.status.text
    assert "paste its path" in ui.status.text and not (tmp_path / "out").exists()
    assert ui.factory_calls == []
    ui.urls.value = str(grey_photo(tmp_path / "p.png"))
    ui.colorize()
    assert ui.progress.label.value.startswith("1 image in")
    ui.urls.value = ""
    assert ui.colorize() == [] and "No photo given" in ui.status.text
    assert ui.progress.label.value == "" and ui.progress.bar.value == 0  # no stale count from the earlier run


def test_truncated_upload_is_refused(tmp_path, colorizer, photo):
    data = png_bytes(photo)
    ui = make_ui(tmp_path, colorizer, render_factor=6)
    set_upload(ui.upload, [("big.tif", data[:100])], sizes=[len(data)])
    assert ui.colorize() == []
    assert ui.status.is_error and "big.tif arrived incomplete (100 of" in ui.status.text


def test_two_uploads_with_one_name_are_both_kept(tmp_path, colorizer, photo):
    other = grey_photo(tmp_path / "other.png", size=(40, 30))
    upload = W.FileUpload(multiple=True)
    set_upload(upload, [("scan.png", png_bytes(photo)), ("scan.png", png_bytes(other))])
    assert [(u.name, u.content) for u in notebook.upload_files(upload)] == [
        ("scan.png", png_bytes(photo)), ("scan.png", png_bytes(other))]
    ui = make_ui(tmp_path, colorizer, render_factor=6)
    set_upload(ui.upload, [("scan.png", png_bytes(photo)), ("scan.png", png_bytes(other))])
    outcomes = ui.colorize()
    assert sorted(Image.open(o.path).size for o in outcomes) == [(40, 30), (96, 64)]
    assert len({o.path for o in outcomes}) == 2
    # Saving uploads never overwrites: same names get _2, _3, also across uploads.
    paths = notebook.save_uploads(notebook.upload_files(upload), tmp_path / "up")
    paths += notebook.save_uploads(notebook.upload_files(upload)[:1], tmp_path / "up")
    assert [p.name for p in paths] == ["scan.png", "scan_2.png", "scan_3.png"]
    assert paths[1].read_bytes() == png_bytes(other)


def test_colab_uploads_through_colabs_uploader(tmp_path, colorizer, photo, fake_colab):
    other = grey_photo(tmp_path / "other.png", size=(40, 30))
    ui = make_ui(tmp_path, colorizer, render_factor=6, sources="")
    assert isinstance(ui.upload, W.Button) and not isinstance(ui.upload, W.FileUpload)
    assert any("Colab's file picker" in c.value for c in ui.widget.children if isinstance(c, W.HTML))
    ui.colorize(example_if_empty=True)
    fake_colab.choose([("scan.png", png_bytes(photo))])
    ui.upload.click()  # Colab's picker: the chosen files are colorized at once, exactly those
    assert not ui.status.is_error, ui.status.text
    assert [o.name for o in ui.outcomes] == [Path(notebook.DEFAULT_EXAMPLE).stem, "scan"]
    first = ui.outcomes[-1].result
    assert first.original.size == (96, 64)
    fake_colab.choose([("scan.png", png_bytes(other))])  # a second file with the same name
    ui.upload.click()
    saved = sorted(p.relative_to(tmp_path / "out" / "uploads").as_posix()
                   for p in (tmp_path / "out" / "uploads").rglob("*.png"))
    assert saved == ["upload1/scan.png", "upload2/scan.png"]
    assert ui.outcomes[-1].result.original.size == (40, 30) and ui.urls.value == ""
    # ...and both results: the second file's does not replace the first's.
    assert [o.path.name for o in ui.outcomes[1:]] == ["scan_colorized_rf6.png", "scan_2_colorized_rf6.png"]
    assert Image.open(ui.outcomes[1].path).size == (96, 64)
    fake_colab.choose([])  # the user cancels the picker
    assert ui.upload_and_colorize() == [] and "nothing was uploaded" in ui.status.text
    assert ui.colorize() == [] and "No photo given" in ui.status.text and "10 MB" not in ui.status.text
    assert not ui.upload.disabled and not ui.button.disabled


def test_error_run_keeps_earlier_results(tmp_path, colorizer, photo):
    ui = make_ui(tmp_path, colorizer, render_factor=6, sources=str(photo))
    ui.colorize()
    shown = ui.results.children
    assert len(shown) == 1
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    ui.urls.value = str(broken)
    assert ui.colorize() == [] and ui.status.is_error
    assert ui.results.children == shown and "earlier run" in ui.status.text
    ui.urls.value = "/no/such/file.jpg"
    assert ui.colorize() == [] and ui.results.children == shown


def test_loading_message_and_stale_log(tmp_path, colorizer, photo):
    embedded = notebook.embedded_model_name()
    statuses = []
    ui = notebook.ImageColorizerUI(model=embedded, sources=str(photo), output_dir=tmp_path, factory=lambda n: colorizer)
    ui.status.widget.observe(lambda change: statuses.append(ui.status.text), names="value")
    ui.colorize()
    loading = [t for t in statuses if t.startswith("Loading model")]
    assert loading == [f"Loading model {embedded}..."]  # a built-in model downloads nothing
    ui.model.value = "artistic"
    ui.colorize()
    assert any(t == "Loading model artistic (the first time downloads the weights)..." for t in statuses)
    ui.picker.log.outputs = ({"output_type": "stream", "name": "stderr",
                              "text": "https://mirror/x.pth: HTTP 503; trying the next mirror ...\n"},)
    ui.colorize()  # a later successful run clears what an earlier load printed
    assert ui.picker.log.outputs == ()


# ---------------------------------------------------------------- errors shown in the UI


@pytest.fixture
def http_server(tmp_path):
    (tmp_path / "page.html").write_text("<html><body>not an image</body></html>")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("path", ["/missing.jpg", "/page.html"])
def test_bad_url_shows_readable_error_in_widget(tmp_path, colorizer, http_server, path):
    ui = make_ui(tmp_path, colorizer, render_factor=8, sources=http_server + path)
    assert ui.colorize() == []
    assert ui.status.is_error and "colorizer-error" in ui.status.widget.value
    assert "Traceback" not in ui.status.widget.value and "Unexpected" not in ui.status.text
    assert ui.status.text.startswith("Done: 0 photos colorized") and "1 could not be read and was skipped" in ui.status.text
    assert "127.0.0.1" in ui.status.text.split("skipped:")[1]  # the loader's own message names the URL
    assert ui.last_error is None and not ui.button.disabled and ui.progress.bar.bar_style == "danger"


def test_one_bad_link_does_not_stop_the_others(tmp_path, colorizer, http_server, photo):
    ui = make_ui(tmp_path, colorizer, render_factor=8, sources=f"{http_server}/missing.jpg\n{photo}")
    outcomes = ui.colorize()
    assert [o.name for o in outcomes] == ["old_photo"] and is_tinted(Image.open(outcomes[0].path))
    assert ui.status.is_error and "Done: 1 photo colorized" in ui.status.text and "missing" in ui.status.text


def test_malformed_entry_and_bad_render_factor_errors(tmp_path, colorizer):
    ui = make_ui(tmp_path, colorizer, render_factor=8, sources="www.example.org/photo")
    ui.button.click()  # through the real callback: nothing is raised
    assert ui.status.is_error and "neither an http(s) URL" in ui.status.text
    assert ui.factory_calls == []  # the model is not even loaded for a bad entry


def test_model_load_error_is_shown(tmp_path, photo):
    def factory(name):
        raise WeightsError(f"Could not download {name}: no network. Copy the file into the cache.")

    ui = notebook.ImageColorizerUI(model="stable", sources=str(photo), output_dir=tmp_path, factory=factory)
    ui.button.click()
    assert ui.status.is_error and ui.status.text.startswith("Could not download stable")


def test_unexpected_error_is_shown_with_type(tmp_path, photo):
    def factory(name):
        raise KeyError("boom")

    ui = notebook.ImageColorizerUI(model="stable", sources=str(photo), output_dir=tmp_path, factory=factory)
    ui.button.click()
    assert ui.status.text.startswith("Unexpected error (KeyError)") and "boom" in ui.status.text
    assert "KeyError" in ui.last_error and "Traceback" in ui.last_error


# ---------------------------------------------------------------- sweep, batch, downloads, views


def test_sweep_grid_and_render_factor_sweep(tmp_path, colorizer, photo):
    results, grid = notebook.render_factor_sweep(colorizer, str(photo), [4, 6, 8, 10])
    assert [r.render_factor for r in results] == [4, 6, 8, 10]
    assert grid.size == (3 * 320, 2 * (320 + 26))
    assert is_tinted(grid.crop((0, 26 + 60, 320, 26 + 260)))  # each cell holds a colorized image
    assert is_tinted(grid.crop((0, 2 * 26 + 320 + 60, 320, 2 * 26 + 320 + 260)))  # 4th: row 2, column 1
    assert mean_rgb(grid.crop((320, 346, 960, 692))).min() == 255  # the rest of row 2 is empty
    with pytest.raises(RenderFactorError):
        notebook.render_factor_sweep(colorizer, str(photo), [1])
    ui = make_ui(tmp_path, colorizer, render_factor=8, sources=str(photo))
    ui.colorize()
    seen = []
    ui.progress.bar.observe(lambda change: seen.append((change["new"], ui.progress.bar.max)), names="value")
    sweep = ui.sweep("4, 8")
    assert sweep.size == (2 * 320, 320 + 26)
    assert (tmp_path / "out" / "old_photo_sweep.png").is_file()
    assert (1, 2) in seen and ui.progress.bar.value == 2  # the sweep shows its progress
    assert ui.progress.label.value.startswith("2 render factors in") and "Sweep saved" in ui.status.text


def test_a_ddcolor_sweep_moves_odd_render_factors_and_says_so(tmp_path, colorizer, photo):
    """DDColor takes even render factors only: a sweep (or the video preview) of "5, 6, 7" with it shows
    6 and 8, and the status says which values moved; a DeOldify-family model keeps every value."""
    import copy

    from colorizer_lib import Colorizer
    from colorizer_lib.models import build_generator, expected_state
    from tests.ddcolor_weights import deterministic_state_dict

    model = build_generator("ddcolor-tiny")
    model.load_state_dict(deterministic_state_dict(expected_state("ddcolor-tiny"), seed=1))
    ddcolor = Colorizer.from_model(copy.deepcopy(model), name="ddcolor-tiny-test", default_render_factor=4,
                                   device="cpu", dtype="float32")
    assert colorizer.fit_render_factors([5, 6, 7]) == ([5, 6, 7], "")
    assert ddcolor.fit_render_factors([5, 6, 7, 100]) == (
        [6, 8, 100], " ddcolor-tiny-test takes only some render factors (DDColor: even ones), so 5 -> 6, 7 -> 8.")
    ui = make_ui(tmp_path, ddcolor, render_factor=4, sources=str(photo))
    grid = ui.sweep("5, 6, 7", source=str(photo))
    assert grid.size == (2 * 320, 320 + 26) and not ui.status.is_error
    assert "Sweep saved" in ui.status.text and "5 -> 6, 7 -> 8" in ui.status.text


def test_colorize_to_zip_reports_bad_files(tmp_path, colorizer, photo):
    folder = tmp_path / "album"
    (folder / "sub").mkdir(parents=True)
    grey_photo(folder / "a.png")
    grey_photo(folder / "sub" / "b.jpg")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    Image.open(folder / "a.png").save(folder / "c.gif")
    progress = []
    report = notebook.colorize_to_zip(colorizer, str(folder), tmp_path / "z.zip", 6,
                                     on_progress=lambda d, t: progress.append((d, t)))
    assert report.done == ["a.png", "c.gif", "sub/b.jpg"]
    assert [name for name, _ in report.failed] == ["broken.jpg"]
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]
    with zipfile.ZipFile(report.zip_path) as zf:
        assert sorted(zf.namelist()) == ["FAILED.txt", "a_colorized.png", "c_colorized.png", "sub/b_colorized.jpg"]
        assert "broken.jpg" in zf.read("FAILED.txt").decode()
        assert is_tinted(Image.open(io.BytesIO(zf.read("c_colorized.png"))))
    assert not list(tmp_path.glob("*.part"))  # the finished zip was renamed into place
    with pytest.raises(RenderFactorError):  # not a per-file problem: the batch stops, no zip is left
        notebook.colorize_to_zip(colorizer, folder, tmp_path / "w.zip", render_factor=1000)
    assert not (tmp_path / "w.zip").exists() and not (tmp_path / "w.zip.part").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="No images"):
        notebook.colorize_to_zip(colorizer, tmp_path / "empty", tmp_path / "y.zip")
    with pytest.raises(InputError, match="not a valid zip"):
        notebook.colorize_to_zip(colorizer, b"garbage", tmp_path / "x.zip")


def test_ui_colorize_batch_from_folder(tmp_path, colorizer):
    folder = tmp_path / "scans"
    folder.mkdir()
    grey_photo(folder / "1.png")
    ui = make_ui(tmp_path, colorizer, render_factor=8)
    report = ui.colorize_batch(folder)
    assert report.zip_path == tmp_path / "out" / "scans_colorized_rf8.zip" and report.done == ["1.png"]
    view = notebook.batch_view(report)
    assert "1 colorized" in view.children[0].value
    with pytest.raises(InputError, match="does not exist"):
        ui.colorize_batch(tmp_path / "nope")


def test_download_widget_jupyter_link(tmp_path):
    target = tmp_path / "r.png"
    Image.new("RGB", (4, 4), "red").save(target)
    link = notebook.download_widget(target)
    match = re.search(r'download="r.png" href="data:image/png;base64,([^"]+)"', link.value)
    assert match and base64.b64decode(match.group(1)) == target.read_bytes()

    assert not notebook.in_colab()


def test_download_widget_colab_button(tmp_path, fake_colab):
    target = tmp_path / "r.png"
    Image.new("RGB", (4, 4), "red").save(target)
    assert notebook.in_colab()
    button = notebook.download_widget(target)
    assert isinstance(button, W.Button)
    button.click()
    assert fake_colab.downloaded == [str(target)]


def test_drive_folder_refuses_outside_colab():
    with pytest.raises(InputError, match="only be mounted on Colab"):
        notebook.drive_folder("x")


def test_before_after_html_embeds_both_images():
    original = Image.new("RGB", (200, 100), (128, 128, 128))
    colorized = Image.new("RGB", (200, 100), (200, 120, 60))
    page = notebook.before_after_html(original, colorized, width=100)
    images = re.findall(r'alt="(\w+)" src="data:image/jpeg;base64,([^"]+)"', page)
    assert [alt for alt, _ in images] == ["colorized", "original"]
    decoded = {alt: Image.open(io.BytesIO(base64.b64decode(data))) for alt, data in images}
    assert decoded["original"].size == decoded["colorized"].size == (100, 50)
    assert is_tinted(decoded["colorized"]) and not is_tinted(decoded["original"])
    # The divider follows a range input that covers the whole picture (mouse, touch, keys).
    slider = re.search(r'<input type="range"[^>]*>', page).group(0)
    assert "width:100px;height:50px" in slider and "opacity:0" in slider
    assert "oninput=\"this.previousElementSibling.style.width=this.value+'%'\"" in slider
    assert re.search(r'class="colorizer-divider" style="[^"]*width:50%', page)


def test_ui_displays_itself(tmp_path, colorizer):
    ui = make_ui(tmp_path, colorizer)
    shown = []
    import IPython.display

    original = IPython.display.display
    IPython.display.display = shown.append
    try:
        ui._ipython_display_()
    finally:
        IPython.display.display = original
    assert shown == [ui.widget]
    labels = [type(c).__name__ for c in ui.widget.children]
    assert labels[:4] == ["HTML", "Dropdown", "IntSlider", "Textarea"]


# ---------------------------------------------------------------- video UI


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from tests.browser.support import make_clip

    return make_clip(tmp_path_factory.mktemp("clip") / "film.mp4")


def test_fetch_video_paths_links_and_reuse(tmp_path, clip):
    assert notebook.fetch_video(f"  {clip} ", tmp_path) == clip
    with pytest.raises(InputError, match="neither a link nor an existing video"):
        notebook.fetch_video("/no/such/film.mp4", tmp_path)
    with pytest.raises(InputError, match="No video given"):
        notebook.fetch_video("  ", tmp_path)
    from colorizer_lib import video

    calls, announced = [], []

    def download(url, dest):  # the real download (yt-dlp reads file:// links offline), counted
        calls.append(url)
        return video.download_video(url, dest)

    url = clip.resolve().as_uri()
    first = notebook.fetch_video(url, tmp_path, download=download, on_download=lambda: announced.append(url))
    stamp = first.stat().st_mtime_ns
    again = notebook.fetch_video(url, tmp_path, download=download,  # e.g. after a Colab disconnect
                                 on_download=lambda: announced.append(url))
    assert first == again and first.read_bytes() == clip.read_bytes() and first.stat().st_mtime_ns == stamp
    assert announced == [url]  # "Downloading..." only when a download starts, not when the file is reused
    assert video.finished_download(url, tmp_path / "downloads") == first  # download_video's one record
    first.unlink()
    again = notebook.fetch_video(url, tmp_path, download=download, on_download=lambda: announced.append(url))
    assert again.read_bytes() == clip.read_bytes() and announced == [url, url]  # a vanished file: downloaded again
    # A link is what `colorize video` calls one (video.is_url): a bare www. address is a download, announced.
    bare = "www.example.org/film"
    notebook.fetch_video(bare, tmp_path, download=lambda u, d: calls.append(u) or clip,
                         on_download=lambda: announced.append(bare))
    assert calls[-1] == bare and announced == [url, url, bare]
    notebook.fetch_video(f"  {clip} ", tmp_path, on_download=lambda: announced.append("local"))
    assert announced == [url, url, bare]  # a local file is never announced as a download


def test_video_ui_preview_and_render_buttons(tmp_path, colorizer, clip):
    calls = []
    ui = notebook.VideoColorizerUI(model="video", render_factor=4, source=str(clip), output_dir=tmp_path / "out",
                                  factory=lambda name: calls.append(name) or colorizer, preview_factors="4, 6",
                                  preview_frames=2, segment_seconds=0.5)
    assert ui.render_factor.value == 4 and ui.model.value == "video"
    ui.preview_button.click()
    assert not ui.status.is_error, ui.status.text
    assert ui.last_preview.render_factors == [4, 6] and len(ui.last_preview.times) == 2
    assert (tmp_path / "out" / "film_preview.png").is_file()
    assert isinstance(ui.preview_area.children[1], W.Image)
    ui.render_factor.value = 6
    ui.render_button.click()
    assert not ui.status.is_error, ui.status.text
    result = ui.last_result
    assert result.path == tmp_path / "out" / "film_colorized_rf6.mp4" and result.frames_out == 10
    assert result.render_factor == 6 and result.segments == 2
    assert ui.status.text.startswith("Done: 10 frames")
    player, link = ui.result_area.children
    assert isinstance(player, W.Video) and player.value == result.path.read_bytes()
    assert 'download="film_colorized_rf6.mp4"' in link.value
    assert calls == ["video"] and not ui.render_button.disabled
    bad = notebook.VideoColorizerUI(model="video", render_factor=4, source=str(clip), output_dir=tmp_path / "bad",
                                    factory=lambda name: colorizer, preview_factors=[4], preview_frames=1)
    bad.preview_factors = [4, 500]  # set after construction, which checks: the preview itself still refuses it
    assert bad.preview() is None and bad.status.is_error and "outside the allowed range 2..100" in bad.status.text
    assert not (tmp_path / "bad" / "film_preview.png").exists()


def test_video_ui_upload_and_errors(tmp_path, colorizer, clip):
    ui = notebook.VideoColorizerUI(model="video", render_factor=4, output_dir=tmp_path / "out",
                                  factory=lambda name: colorizer)
    assert ui.preview() is None and ui.status.is_error and "No video given" in ui.status.text
    assert "10 MB" in ui.status.text  # an upload too large to arrive is named as a likely cause
    ui.url.value = "htp:/broken"
    assert ui.render() is None and "neither a link nor an existing video" in ui.status.text
    assert not ui.preview_button.disabled and not ui.render_button.disabled
    set_upload(ui.upload, [("My Clip.MP4", clip.read_bytes())])
    path = ui.source_path()
    assert path == tmp_path / "out" / "uploads" / "My_Clip.mp4" and path.read_bytes() == clip.read_bytes()
    assert ui.url.value == str(path) and upload_is_empty(ui.upload)
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("hello")
    ui.url.value = str(not_a_video)
    assert ui.render() is None and ui.status.is_error and "Unexpected" not in ui.status.text


def test_call_in_output_reraises_where_a_kernel_would_swallow(monkeypatch):
    """Inside a kernel, ``with Output():`` shows an exception's traceback and suppresses it; the
    UI must still see the error to show it readably (simulated with a stand-in IPython shell)."""
    import ipywidgets.widgets.widget_output as widget_output

    shown = []
    monkeypatch.setattr(widget_output, "get_ipython",
                        lambda: types.SimpleNamespace(showtraceback=lambda *a, **k: shown.append(a)))
    output = W.Output()
    with output:
        raise InputError("swallowed by a bare with-block")  # what call_in_output protects against
    assert len(shown) == 1
    with pytest.raises(InputError, match="no video"):
        notebook.call_in_output(output, lambda: (_ for _ in ()).throw(InputError("no video")))
    assert notebook.call_in_output(output, lambda x: x + 1, 1) == 2


def test_two_photos_with_one_name_keep_both_results(tmp_path, colorizer):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = grey_photo(tmp_path / "a" / "x.png"), grey_photo(tmp_path / "b" / "x.png")
    ui = make_ui(tmp_path, colorizer, sources=f"{first}\n{second}")
    outcomes = ui.colorize()
    paths = [o.path for o in outcomes]
    assert len(paths) == 2 and len(set(paths)) == 2 and all(p.is_file() for p in paths)


def test_video_ui_colab_upload(tmp_path, colorizer, clip, fake_colab):
    ui = notebook.VideoColorizerUI(model="video", render_factor=4, output_dir=tmp_path / "out",
                                  factory=lambda name: colorizer, preview_frames=1, preview_factors="4")
    assert isinstance(ui.upload, W.Button)
    assert ui.preview() is None and "No video given" in ui.status.text and "10 MB" not in ui.status.text
    fake_colab.choose([("reel one.mp4", clip.read_bytes())])
    ui.upload.click()
    path = tmp_path / "out" / "uploads" / "upload1" / "reel one.mp4"
    assert ui.url.value == str(path) and path.read_bytes() == clip.read_bytes()
    assert "Uploaded reel one.mp4" in ui.status.text
    assert ui.preview() is not None and not ui.status.is_error, ui.status.text


def test_example_source_finds_the_bundled_photo_from_any_folder(tmp_path, monkeypatch):
    """Run outside the repository (a notebook opened from another folder), the example is still the
    local file of this checkout, never a download."""
    from colorizer_lib.notebook.sources import example_source

    monkeypatch.chdir(tmp_path)
    found = Path(example_source())
    assert found.is_file() and found.parent == Path(__file__).resolve().parents[1] / "examples"
