"""Real-browser test: ImageColorizer.ipynb in JupyterLab, driven in Debian's Chromium by Playwright.

Opens the notebook, runs all cells, waits for the first result, moves the render-factor slider,
presses Colorize and waits for the new result image; screenshots go to
``$COLORIZER_SCREENSHOT_DIR`` (default: the test's temporary folder). Needs chromium,
playwright and jupyterlab (``.ci/browser_setup.sh`` installs them): missing tools skip the test on
a developer machine but fail it in CI (``CI`` set), so CI can never pass without running it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

from tests.browser.lab import ROOT, JupyterLab, missing_tools, open_browser, open_notebook_and_run_all, set_slider, \
    with_parameters
from tests.browser.support import grey_photo, is_tinted, make_clip, tiny_weights

FAKE_COLAB = Path(__file__).resolve().parent / "browser" / "fake_colab"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def tools_present():
    missing = missing_tools()
    if missing:
        message = "the browser test needs " + ", ".join(missing) + "; run .ci/browser_setup.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def lab_workspace(tmp_path: Path) -> tuple[Path, Path, Path, Path, Path]:
    """``(screenshots, lab root, home, output folder, tiny weights)`` for one JupyterLab session: screenshots
    go to $COLORIZER_SCREENSHOT_DIR when set (to look at them), the weights file sits in the lab root."""
    shots = Path(os.environ.get("COLORIZER_SCREENSHOT_DIR") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    root, home = tmp_path / "lab", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    return shots, root, home, root / "colorized", tiny_weights(root / "tiny.safetensors")


def test_image_notebook_in_jupyterlab(tmp_path, tools_present):
    shots, root, home, out, weights = lab_workspace(tmp_path)
    with_parameters(ROOT / "ImageColorizer.ipynb", root / "ImageColorizer.ipynb",
                    {"model": str(weights), "render_factor": 8, "sweep_factors": "4, 8", "output_dir": str(out)})

    with JupyterLab(root, home) as lab, open_browser() as page:
        open_notebook_and_run_all(page, lab, "ImageColorizer.ipynb")
        # Run all colorizes the default example: its before/after view appears in the UI.
        results = page.locator(".colorizer-results")
        results.locator(".colorizer-before-after img[alt=colorized]").wait_for(timeout=180_000)
        assert "render factor 8" in results.inner_text()
        wait_for_run_all(page)
        ui = page.locator(".jp-OutputArea-output").filter(has=results)
        ui.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "1_run_all.png"))
        # The links box stays empty: the example is not kept as the user's source.
        assert page.locator(".jp-Notebook textarea").first.input_value() == ""
        # The divider follows a drag that starts anywhere over the picture, not only on a grip.
        drag_divider(page, results.locator(".colorizer-before-after").first, [0.7, 0.2])
        ui.screenshot(path=str(shots / "1b_divider_dragged.png"))

        # Colorize with nothing given says so (it never recolorizes the example behind the user's back).
        page.locator("button.colorizer-run").click()
        page.locator(".colorizer-error", has_text="No photo given").wait_for(timeout=60_000)
        # A user pastes a path, moves the slider and presses Colorize: a new result at the new factor appears.
        page.locator(".jp-Notebook textarea").first.fill(str(ROOT / "examples" / "dust-bowl-home.jpg"))
        set_slider(page, ".colorizer-render-factor", 12)
        page.locator("button.colorizer-run").click()
        page.locator(".colorizer-results", has_text="render factor 12").locator(
            ".colorizer-before-after img[alt=colorized]").wait_for(timeout=180_000)
        ui.screenshot(path=str(shots / "2_after_slider.png"))
        # The side-by-side tab shows the comparison image.
        results.locator(".lm-TabBar-tab, .p-TabBar-tab", has_text="Side by side").first.click()
        results.locator(".colorizer-result-image").first.wait_for(state="visible", timeout=30_000)
        page.screenshot(path=str(shots / "3_side_by_side.png"), full_page=True)
        assert "Traceback" not in page.locator(".jp-Notebook").inner_text()

    first = Image.open(out / "dust-bowl-home_colorized_rf8.jpg")
    second = Image.open(out / "dust-bowl-home_colorized_rf12.jpg")
    assert first.size == second.size == Image.open(ROOT / "examples" / "dust-bowl-home.jpg").size
    assert is_tinted(second)
    assert Image.open(shots / "2_after_slider.png").width > 300


def wait_for_run_all(page) -> None:
    """Wait until Run all of ImageColorizer.ipynb is through its sweep cell (the kernel is free again)."""
    page.wait_for_function("() => { const s = document.querySelector('.colorizer-status');"
                           "        return s && s.innerText.includes('Sweep saved'); }", timeout=300_000)


def choose_file(page, upload_button, path: Path) -> None:
    """Pick ``path`` in the file chooser that an ipywidgets FileUpload button opens, as a user does."""
    with page.expect_file_chooser() as chooser:
        upload_button.click()
    chooser.value.set_files(str(path))


def divider_fraction(view) -> float:
    """Where the before/after divider is, as a fraction of the picture's width."""
    return view.evaluate("v => v.querySelector('.colorizer-divider').getBoundingClientRect().width"
                         " / v.getBoundingClientRect().width")


def drag_divider(page, view, stops: list[float]) -> None:
    """Press the mouse at the middle of the picture and drag it through ``stops`` (fractions of the
    width); the divider must follow each one."""
    view.scroll_into_view_if_needed()
    box = view.bounding_box()
    y = box["y"] + box["height"] * 0.4
    assert abs(divider_fraction(view) - 0.5) < 0.02
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    for stop in stops:
        page.mouse.move(box["x"] + box["width"] * stop, y, steps=8)
        assert abs(divider_fraction(view) - stop) < 0.03, (stop, divider_fraction(view))
    page.mouse.up()


def big_tiff(path: Path, side: int = 2600) -> Path:
    """An uncompressed grey-looking RGB TIFF of about 20 MB."""
    ramp = np.linspace(40, 220, side, dtype=np.float32)[None, :].repeat(side, axis=0).astype(np.uint8)
    Image.fromarray(ramp, "L").convert("RGB").save(path, compression=None)
    return path


def big_video(path: Path, megabytes: float = 30) -> Path:
    """A grey noise film (lossless H.264, so it stays large) of at least ``megabytes``."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=gray:s=640x480:r=25:d=6",
                    "-vf", "noise=alls=60:allf=t,format=yuv420p", "-c:v", "libx264", "-preset", "ultrafast",
                    "-qp", "0", str(path)], check=True)
    assert path.stat().st_size >= megabytes * 1e6, path.stat().st_size
    return path


def status_text(page) -> str:
    return page.locator(".colorizer-status").first.inner_text()


def test_large_uploads_in_jupyter_fail_clearly(tmp_path, tools_present):
    """A 20 MB TIFF and a 30 MB video chosen with the upload buttons: each ends either colorized or with
    a message naming the size limit, never with something else colorized or a bare 'No video given'."""
    shots, root, home, out, weights = lab_workspace(tmp_path)
    tiff = big_tiff(tmp_path / "scan.tif")
    film = big_video(tmp_path / "reel.mp4")
    assert 19e6 < tiff.stat().st_size < 22e6
    with_parameters(ROOT / "ImageColorizer.ipynb", root / "ImageColorizer.ipynb",
                    {"model": str(weights), "render_factor": 8, "sweep_factors": "4", "output_dir": str(out)})
    with_parameters(ROOT / "VideoColorizer.ipynb", root / "VideoColorizer.ipynb",
                    {"model": str(weights), "render_factor": 4, "output_dir": str(tmp_path / "video_out")})

    with JupyterLab(root, home) as lab, open_browser() as page:
        open_notebook_and_run_all(page, lab, "ImageColorizer.ipynb")
        results = page.locator(".colorizer-results")
        results.locator(".colorizer-before-after img[alt=colorized]").wait_for(timeout=180_000)
        wait_for_run_all(page)
        # A small upload arrives and is colorized: the button itself works.
        choose_file(page, page.locator(".colorizer-upload").first, grey_photo(tmp_path / "small.png"))
        page.locator(".colorizer-upload", has_text="(1)").wait_for(timeout=60_000)
        page.locator("button.colorizer-run").click()
        page.locator(".colorizer-results", has_text="small ·").wait_for(timeout=120_000)
        assert is_tinted(Image.open(out / "small_colorized_rf8.png"))
        before = sorted(p.name for p in out.glob("*"))
        choose_file(page, page.locator(".colorizer-upload").first, tiff)
        page.wait_for_timeout(8000)  # the browser reads and sends the file (or fails to)
        page.locator("button.colorizer-run").click()
        # The status still says "Done" from the small photo until this run ends, so wait for this run's own
        # outcome: the TIFF's result caption, or the message that no photo arrived.
        page.wait_for_function("""() => {
            const t = document.querySelector('.colorizer-status').innerText;
            const shown = Array.from(document.querySelectorAll('.colorizer-results')).map(e => e.innerText).join(' ');
            return t.includes('No photo given') || (t.startsWith('Done') && shown.includes('scan ·')); }""",
            timeout=180_000)
        text = status_text(page)
        page.locator(".colorizer-status").first.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "4_big_tiff_upload.png"))
        new = sorted(set(p.name for p in out.glob("*")) - set(before))
        if text.startswith("Done"):  # the upload arrived: the TIFF itself was colorized
            assert new == ["scan_colorized_rf8.tif"] and "Done: 1 photo" in text
        else:  # it did not: the message says why and what to do, nothing else was colorized
            assert "10 MB" in text and "paste its path" in text and new == []

        open_notebook_and_run_all(page, lab, "VideoColorizer.ipynb")
        page.locator(".colorizer-preview").wait_for(timeout=120_000)
        page.wait_for_timeout(3000)
        choose_file(page, page.locator(".colorizer-upload").last, film)
        page.wait_for_timeout(10000)
        page.locator("button.colorizer-preview").click()
        page.wait_for_function("""() => { const all = document.querySelectorAll('.colorizer-status');
                                          const t = all[all.length - 1].innerText;
                                          return t.includes('No video given') || t.includes('Preview saved'); }""",
                               timeout=300_000)
        text = page.locator(".colorizer-status").last.inner_text()
        page.locator(".colorizer-status").last.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "5_big_video_upload.png"))
        if "Preview saved" not in text:
            assert "10 MB" in text and "paste its path" in text
        assert not any("Traceback" in text for text in page.locator(".jp-Notebook").all_inner_texts())


def colab_copy(source: Path, target: Path, params: dict) -> Path:
    """``source`` with ``params`` injected and its install cell replaced by ``IN_COLAB = True``: the
    simulated Colab has the package already (this machine has no network)."""
    with_parameters(source, target, params)
    nb = nbformat.read(target, as_version=4)
    install = next(c for c in nb.cells if c.cell_type == "code" and "pip install" in c.source)
    install.source = "IN_COLAB = True  # simulated Colab: the package is already installed"
    nbformat.write(nb, target)
    return target


def test_colab_upload_path_in_a_browser(tmp_path, tools_present):
    """The notebooks with ``google.colab`` simulated: Upload uses Colab's uploader (any size) and
    colorizes exactly the chosen files, two of one name included; the video UI takes the chosen clip."""
    shots, root, home, out, weights = lab_workspace(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = big_tiff(tmp_path / "a" / "scan.tif")  # 20 MB: far over the widget channel's limit
    second = grey_photo(tmp_path / "b" / "scan.tif", size=(120, 80))
    clip = make_clip(tmp_path / "film.mp4")
    queue = tmp_path / "uploads.json"
    queue.write_text(json.dumps([[str(first)], [str(second)], [str(clip)]]))
    colab_copy(ROOT / "ImageColorizer.ipynb", root / "ImageColorizer.ipynb",
               {"model": str(weights), "render_factor": 8, "sweep_factors": "4", "output_dir": str(out)})
    colab_copy(ROOT / "VideoColorizer.ipynb", root / "VideoColorizer.ipynb",
               {"model": str(weights), "render_factor": 4, "preview_factors": "4", "preview_frames": 1,
                "output_dir": str(tmp_path / "video_out")})

    with JupyterLab(root, home, env={"PYTHONPATH": str(FAKE_COLAB), "FAKE_COLAB_UPLOADS": str(queue)}) as lab, \
            open_browser(touch=True) as page:
        open_notebook_and_run_all(page, lab, "ImageColorizer.ipynb")
        results = page.locator(".colorizer-results")
        results.locator(".colorizer-before-after img[alt=colorized]").wait_for(timeout=180_000)
        wait_for_run_all(page)
        assert page.locator(".colorizer-upload.widget-upload").count() == 0  # Colab's uploader instead
        upload = page.locator("button.colorizer-upload")
        upload.click()
        page.locator(".colorizer-results", has_text="scan").first.wait_for(timeout=300_000)
        page.wait_for_function("() => document.querySelector('.colorizer-status').innerText.startsWith('Done')",
                               timeout=300_000)
        upload.click()
        page.locator(".colorizer-results", has_text="120×80").first.wait_for(timeout=180_000)
        view = results.locator(".colorizer-before-after").first
        view.scroll_into_view_if_needed()
        box = view.bounding_box()
        page.touchscreen.tap(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.5)  # a finger
        assert abs(divider_fraction(view) - 0.25) < 0.03, divider_fraction(view)
        page.locator(".jp-OutputArea-output").filter(has=results).screenshot(path=str(shots / "6_colab_upload.png"))
        assert "Traceback" not in page.locator(".jp-Notebook").inner_text()

        open_notebook_and_run_all(page, lab, "VideoColorizer.ipynb")
        page.locator("button.colorizer-upload").last.wait_for(timeout=120_000)
        page.wait_for_timeout(3000)
        page.locator("button.colorizer-upload").last.click()
        page.wait_for_function("""() => { const all = document.querySelectorAll('.colorizer-status');
                                          return all[all.length - 1].innerText.includes('Uploaded film.mp4'); }""",
                               timeout=120_000)
        page.locator("button.colorizer-preview").last.click()
        page.wait_for_function("""() => { const all = document.querySelectorAll('.colorizer-status');
                                          return all[all.length - 1].innerText.includes('Preview saved'); }""",
                               timeout=300_000)
        page.locator(".colorizer-preview-image").last.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "7_colab_video_upload.png"))

    saved = sorted(p.relative_to(out / "uploads").as_posix() for p in (out / "uploads").rglob("*.tif"))
    assert saved == ["upload1/scan.tif", "upload2/scan.tif"]  # two files of one name, both kept
    big, small = Image.open(out / "scan_colorized_rf8.tif"), Image.open(out / "scan_2_colorized_rf8.tif")
    assert big.size == (2600, 2600) and is_tinted(big.crop((0, 0, 600, 600)))
    assert small.size == (120, 80) and is_tinted(small)
    assert (tmp_path / "video_out" / "uploads" / "upload1" / "film.mp4").read_bytes() == clip.read_bytes()
    assert (tmp_path / "video_out" / "film_preview.png").is_file()
