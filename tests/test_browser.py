"""Real-browser test: ImageColorizer.ipynb in JupyterLab, driven in Debian's Chromium by Playwright.

Opens the notebook, runs all cells, waits for the first result, moves the render-factor slider,
presses Colorize and waits for the new result image; screenshots go to
``$COLORIZER_SCREENSHOT_DIR`` (default: the test's temporary folder). Needs chromium,
playwright and jupyterlab (``.ci/browser_setup.sh`` installs them): missing tools skip the test on
a developer machine but fail it in CI (``CI`` set), so CI can never pass without running it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from tests.browser.lab import ROOT, JupyterLab, missing_tools, open_browser, open_notebook_and_run_all, set_slider, \
    with_parameters
from tests.browser.support import is_tinted, tiny_weights

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def tools_present():
    missing = missing_tools()
    if missing:
        message = "the browser test needs " + ", ".join(missing) + "; run .ci/browser_setup.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def test_image_notebook_in_jupyterlab(tmp_path, tools_present):
    shots = Path(os.environ.get("COLORIZER_SCREENSHOT_DIR") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    root, home, out = tmp_path / "lab", tmp_path / "home", tmp_path / "lab" / "colorized"
    root.mkdir()
    home.mkdir()
    weights = tiny_weights(root / "tiny.safetensors")
    with_parameters(ROOT / "ImageColorizer.ipynb", root / "ImageColorizer.ipynb",
                    {"model": str(weights), "render_factor": 8, "sweep_factors": "4, 8", "output_dir": str(out)})

    with JupyterLab(root, home) as lab, open_browser() as page:
        open_notebook_and_run_all(page, lab, "ImageColorizer.ipynb")
        # Run all colorizes the default example: its before/after view appears in the UI.
        results = page.locator(".colorizer-results")
        results.locator(".colorizer-before-after img[alt=colorized]").wait_for(timeout=180_000)
        assert "render factor 8" in results.inner_text()
        ui = page.locator(".jp-OutputArea-output").filter(has=results)
        ui.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "1_run_all.png"))

        # A user moves the slider and presses Colorize: a new result at the new factor appears.
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
