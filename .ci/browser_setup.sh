#!/usr/bin/env bash
# Install what the notebook tests (tests/test_notebooks.py) and the real-browser test
# (tests/test_browser.py) need. Source it or run it with the project's virtualenv active:
#     bash .ci/browser_setup.sh
# Idempotent and quick when everything is already there. Never runs `playwright install`
# (that downloads a browser build): Playwright drives Debian's chromium instead.
set -euo pipefail

PYTHON="${PYTHON:-python}"

# System packages: Chromium for Playwright, a font so pages render text; ffmpeg for the video notebook.
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
[ -d /usr/share/fonts/truetype/liberation ] || need_apt+=(fonts-liberation)
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "browser_setup: apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Python packages: a kernel and notebook runner, the widgets, JupyterLab and Playwright.
if ! "$PYTHON" -c "import jupyterlab, playwright, nbclient, nbformat, ipykernel, ipywidgets" >/dev/null 2>&1; then
    echo "browser_setup: pip install jupyterlab playwright nbclient nbformat ipykernel ipywidgets"
    "$PYTHON" -m pip install -q "jupyterlab>=4,<5" "playwright>=1.40" "nbclient>=0.10" "nbformat>=5.9" \
        "ipykernel>=6" "ipywidgets>=8"
fi
echo "browser_setup: $(chromium --version 2>/dev/null | head -1); jupyterlab $("$PYTHON" -c 'import jupyterlab; print(jupyterlab.__version__)')"
