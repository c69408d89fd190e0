"""Where this project lives: the one repository address every Colab link and install cell uses.

A fork changes ``REPOSITORY`` (and ``BRANCH`` if needed) here, then runs
``python -m colorizer_lib.project`` from the repository root: it rewrites the Colab badges, the
install cells and the picture links in README.md and the notebooks to match. The notebooks'
install cells must spell the address out (they run before this package is installed);
``tests/test_notebooks.py`` checks that every address in them and in the README equals this one.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

#: ``owner/name`` of the GitHub repository the notebooks install from and link to.
REPOSITORY = "colorizer-project/colorizer"
#: The branch the Colab links and raw file links point at.
BRANCH = "main"

GITHUB_URL = f"https://github.com/{REPOSITORY}"
#: Files that name the repository (relative to the repository root).
FILES_NAMING_IT = ("README.md", "ImageColorizer.ipynb", "VideoColorizer.ipynb", "Training.ipynb")

# Every way a file names the repository: a Colab link, a raw file link, a git install address.
_ADDRESS = re.compile(r"(?P<prefix>https://colab\.research\.google\.com/github/|https://raw\.githubusercontent\.com/"
                      r"|git\+https://github\.com/)(?P<repo>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)"
                      r"(?P<branch>/blob/[A-Za-z0-9_.-]+/|/[A-Za-z0-9_.-]+/|(?=[\"'\s\\)]))")


def colab_url(notebook: str) -> str:
    """The 'Open in Colab' address of a notebook in the repository."""
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/{notebook}"


def raw_url(path: str) -> str:
    """The address of a file of the repository as served raw by GitHub (e.g. an example photo)."""
    return f"https://raw.githubusercontent.com/{REPOSITORY}/{BRANCH}/{path}"


def pip_requirement(extras: str = "") -> str:
    """What ``pip install`` needs to install the package from the repository, with ``extras``."""
    return f"colorizer{f'[{extras}]' if extras else ''} @ git+{GITHUB_URL}"


def addresses(text: str) -> list[tuple[str, str]]:
    """Every ``(repository, branch or "")`` that ``text`` names in a Colab, raw or git address."""
    found = []
    for match in _ADDRESS.finditer(text):
        branch = match.group("branch").strip("/")
        found.append((match.group("repo"), branch.removeprefix("blob/") if branch else ""))
    return found


def rewrite(text: str) -> str:
    """``text`` with every repository address pointing at ``REPOSITORY`` and ``BRANCH``."""
    def fix(match: re.Match) -> str:
        branch = match.group("branch")
        if branch.startswith("/blob/"):
            branch = f"/blob/{BRANCH}/"
        elif branch:
            branch = f"/{BRANCH}/"
        return match.group("prefix") + REPOSITORY + branch

    return _ADDRESS.sub(fix, text)


def main(root: str | Path = ".") -> int:
    """Rewrite the addresses in ``FILES_NAMING_IT`` under ``root``; print what changed."""
    root = Path(root)
    for name in FILES_NAMING_IT:
        path = root / name
        if not path.is_file():
            print(f"{path}: missing, skipped", file=sys.stderr)
            continue
        text = path.read_text(encoding="utf-8")
        new = rewrite(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"{path}: now points at {REPOSITORY} ({BRANCH})")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
