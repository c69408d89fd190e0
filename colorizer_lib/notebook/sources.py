"""What the user typed: links and paths parsed, output names derived, the example photo's address.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

from colorizer_lib import project
from colorizer_lib.errors import InputError
from colorizer_lib.io import is_url, output_suffix


#: Where the repository's example photos are published (used on Colab, where the repo is not cloned).
EXAMPLES_URL = project.raw_url("examples/")
DEFAULT_EXAMPLE = "dust-bowl-home.jpg"


def parse_sources(text: str) -> list[str]:
    """Split the URL box into entries (one per line) and check each one.

    Every entry must be an ``http(s)://`` URL or an existing local path (file, folder or ``.zip``;
    ``~`` is expanded). A line is one entry, spaces included (paths may hold spaces), except a line
    made only of links separated by spaces (a link cannot hold a space), which gives each link.
    Returns the entries in order; raises ``InputError`` naming the first bad one.
    """
    entries = []
    for line in (text or "").splitlines():
        line = line.strip()
        tokens = line.split()
        if len(tokens) > 1 and all(is_url(token) for token in tokens):
            entries.extend(tokens)
        elif line:
            entries.append(line)
    for entry in entries:
        if is_url(entry):
            if not urllib.parse.urlsplit(entry).netloc:
                raise InputError(f"{entry!r} is not a complete URL (no host name). Paste the full "
                                 "link, e.g. https://example.org/photo.jpg.")
            continue
        if urllib.parse.urlsplit(entry).scheme and not Path(entry).exists():
            raise InputError(f"{entry!r}: only http:// and https:// links are supported. Paste a direct "
                             "link to the image (right-click the picture > Copy image address).")
        if not Path(entry).expanduser().exists():
            raise InputError(f"{entry!r} is neither an http(s) URL nor an existing file or folder. "
                             "Paste a direct image link (https://...), or the path of a photo, a folder "
                             "or a .zip of photos.")
    return entries


def source_stem(source: str) -> str:
    """A safe file-name stem for a URL or path: the last path segment without its suffix."""
    path = urllib.parse.urlsplit(source).path if is_url(source) else source
    stem = Path(urllib.parse.unquote(path)).stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")
    return stem or "image"


def result_filename(stem: str, render_factor: int, suffix: str = ".png") -> str:
    """File name of a colorized image: ``<stem>_colorized_rf<NN><output_suffix(suffix)>``
    (:func:`colorizer_lib.io.output_suffix`)."""
    return f"{stem}_colorized_rf{render_factor}{output_suffix(suffix)}"


def example_source(name: str = DEFAULT_EXAMPLE) -> str:
    """The path of a bundled example photo when the repository is present (local Jupyter),
    else its URL in the public repository (Colab installs the package without ``examples/``)."""
    package = Path(__file__).resolve().parents[1]  # colorizer_lib
    if (Path("examples") / name).is_file():  # the notebook runs in the repository: keep the path short
        return str(Path("examples") / name)
    for candidate in (package.parent / "examples" / name, package / "examples" / name):
        if candidate.is_file():
            return str(candidate)
    return EXAMPLES_URL + name
