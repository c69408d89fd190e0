"""Drive a real JupyterLab in Debian's Chromium with Playwright (used by tests/test_browser.py).

``JupyterLab`` starts a hermetic JupyterLab server on 127.0.0.1 (own config, data, runtime and
settings folders; nothing written outside them; no news toast; no cell windowing, so every
output stays in the DOM) serving one folder. ``open_browser`` launches the system Chromium (never a downloaded one).

Run as a script to refresh the README screenshots with a real model (no test asserts):
``python -m tests.browser.lab docs/screenshots [model]`` (default model: compact).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import nbformat

from .support import register_test_architectures

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]

ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"checkForUpdates": False,
                                                                         "fetchNews": "false"},
}


def chromium_path() -> str | None:
    """The system Chromium executable, or None."""
    return next((p for p in CHROMIUM_CANDIDATES if Path(p).is_file()), None)


def missing_tools() -> list[str]:
    """What the browser test needs and this machine lacks (names of programs or packages)."""
    missing = [] if chromium_path() else ["chromium (apt-get install chromium fonts-liberation)"]
    for module in ("playwright", "jupyterlab"):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"{module} (pip install {module})")
    return missing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_parameters(source: Path, target: Path, params: dict) -> Path:
    """Copy notebook ``source`` to ``target`` with ``params`` set in a cell right after its parameters cell."""
    nb = nbformat.read(source, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    cell = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()))
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, cell)
    nbformat.write(nb, target)
    return target


class JupyterLab:
    """A JupyterLab server on 127.0.0.1 serving ``root``; use as a context manager.

    ``url(path)`` gives the address of a file in the lab with the token. The server's output goes
    to ``root/.lab.log`` (read it when something fails).
    """

    def __init__(self, root: Path, home: Path, env: dict[str, str] | None = None):
        self.root, self.home = Path(root), Path(home)
        self.extra_env = dict(env or {})  # for the kernels too, e.g. PYTHONPATH entries put first
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.process: subprocess.Popen | None = None
        self.log = self.home / "lab.log"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "MPLCONFIGDIR"):
            env[name] = str(self.home / name.lower())
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [self.extra_env.get("PYTHONPATH"), str(ROOT),
                                                          env.get("PYTHONPATH")]))
        env.update({k: v for k, v in self.extra_env.items() if k != "PYTHONPATH"})
        return env

    def __enter__(self) -> "JupyterLab":
        settings = self.home / "settings"
        for name, values in LAB_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = self.environment()
        register_test_architectures(env["IPYTHONDIR"])  # the kernels load the tiny test model
        # What `jupyter labextension disable` would write, but in our own config folder (that
        # command writes into the virtualenv and takes seconds): no news toast over the screenshots.
        page_config = Path(env["JUPYTER_CONFIG_DIR"]) / "labconfig" / "page_config.json"
        page_config.parent.mkdir(parents=True, exist_ok=True)
        page_config.write_text(json.dumps({"disabledExtensions": {ANNOUNCEMENTS: True}}))
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               f"--LabApp.user_settings_dir={settings}", "--LabApp.expose_app_in_browser=True"]
        self._log_file = open(self.log, "w")
        self.process = subprocess.Popen(cmd, env=env, cwd=self.root, stdout=self._log_file,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/status?token={self.token}", timeout=2)
                return self
            except OSError:
                time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError(f"JupyterLab did not answer within 90 s:\n{self.log.read_text()}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/lab/tree/{path}?token={self.token}"

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


@contextmanager
def open_browser(width: int = 1280, height: int = 1000, touch: bool = False):
    """A Playwright page in the system Chromium (headless); ``touch`` gives it a touch screen."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, has_touch=touch)
            yield page
        finally:
            browser.close()


def open_notebook_and_run_all(page, lab: JupyterLab, name: str) -> None:
    """Open notebook ``name`` in the lab, wait for its kernel, and run all cells."""
    page.goto(lab.url(name))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    # The notebook named in the URL must be the current one (the lab may first restore another tab)
    # and its kernel must be idle before running all cells.
    page.wait_for_function("""name => {
        const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
        return !!w && !!w.context && w.context.path === name && kernel && kernel.status === 'idle';
    }""", arg=name, timeout=90_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def set_slider(page, selector: str, value: int) -> None:
    """Move an ipywidgets IntSlider (noUiSlider) to ``value`` with the keyboard, as a user would."""
    slider = page.locator(selector)
    handle = slider.locator(".noUi-handle")
    handle.click()
    readout = slider.locator(".widget-readout")
    for _ in range(200):
        current = int(readout.inner_text().strip())
        if current == value:
            return
        handle.press("ArrowRight" if current < value else "ArrowLeft")
    raise AssertionError(f"the slider did not reach {value} (stuck at {readout.inner_text()})")


def slideshow_clip(path: Path, photos: list[Path], seconds: float = 1.5, size: str = "480x360") -> Path:
    """A short grey MP4 film made of still ``photos`` (each shown ``seconds``), for video screenshots."""
    inputs, filters = [], []
    for index, photo in enumerate(photos):
        inputs += ["-loop", "1", "-t", str(seconds), "-i", str(photo)]
        filters.append(f"[{index}:v]scale={size.replace('x', ':')}:force_original_aspect_ratio=increase,"
                       f"crop={size.replace('x', ':')},setsar=1,format=gray,fps=12[v{index}]")
    graph = ";".join(filters) + ";" + "".join(f"[v{i}]" for i in range(len(photos))) + \
        f"concat=n={len(photos)}:v=1:a=0,format=yuv420p[out]"
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]",
                    "-c:v", "libx264", str(path)], check=True)
    return path


def refresh_screenshots(target: Path, model: str = "compact") -> None:
    """Run both notebooks in the lab with ``model`` and save the README / notebook screenshots
    (``image_colorizer.png``, ``video_colorizer.png``) into ``target``."""
    import tempfile

    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root, home = Path(tmp) / "lab", Path(tmp) / "home"
        root.mkdir()
        home.mkdir()
        with_parameters(ROOT / "ImageColorizer.ipynb", root / "ImageColorizer.ipynb",
                        {"model": model, "sweep_factors": "12, 24, 36"})
        clip = slideshow_clip(root / "old_film.mp4", [ROOT / "examples" / n for n in
                                                      ("nagasaki-boats.jpg", "locomotion-house-cat.jpg")])
        with_parameters(ROOT / "VideoColorizer.ipynb", root / "VideoColorizer.ipynb",
                        {"model": model, "video_url": str(clip), "preview_factors": "12, 21, 30",
                         "preview_frames": 2})
        with JupyterLab(root, home) as lab, open_browser(1100, 1800) as page:
            open_notebook_and_run_all(page, lab, "ImageColorizer.ipynb")
            page.wait_for_selector(".colorizer-results .colorizer-before-after img", timeout=600_000)
            ui = page.locator(".jp-OutputArea-output").filter(has=page.locator(".colorizer-results"))
            ui.scroll_into_view_if_needed()
            ui.screenshot(path=str(target / "image_colorizer.png"))
            open_notebook_and_run_all(page, lab, "VideoColorizer.ipynb")
            page.wait_for_selector(".colorizer-results .colorizer-video", timeout=600_000)
            page.wait_for_function("() => document.querySelector('.colorizer-video').readyState >= 2",
                                   timeout=60_000)
            page.evaluate("""() => new Promise(done => {  // show a frame from the middle, not a spinner
                const v = document.querySelector('.colorizer-video');
                v.addEventListener('seeked', () => done(), {once: true});
                v.currentTime = v.duration / 2;
            })""")
            ui = page.locator(".jp-OutputArea-output").filter(has=page.locator(".colorizer-preview-image")).first
            ui.scroll_into_view_if_needed()
            ui.screenshot(path=str(target / "video_colorizer.png"))


if __name__ == "__main__":
    refresh_screenshots(Path(sys.argv[1]), *sys.argv[2:3])
