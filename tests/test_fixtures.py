"""The test data is part of the repository: documented, intact, and never fetched from beside the clone."""

from __future__ import annotations

import hashlib
import re

from tests.conftest import FIXTURES, REPO

README = FIXTURES / "README.md"


def test_every_fixture_is_documented_and_matches_its_checksum():
    text = README.read_text()
    files = sorted(p.name for p in FIXTURES.iterdir() if p.is_file() and p.name != README.name)
    assert files, "tests/fixtures is empty"
    undocumented = [name for name in files if f"`{name}`" not in text]
    assert not undocumented, f"say where these come from in {README}: {undocumented}"
    listed = re.findall(r"^\|\s*`([^`]+)`\s*\|\s*`([0-9a-f]{64})`", text, flags=re.M)
    assert listed, "the README's table lists no sha256"
    for name, digest in listed:
        path = FIXTURES / name
        assert path.is_file(), f"{README} lists {name}, which is not in {FIXTURES}"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{name} differs from its recorded sha256"


def test_tests_and_ci_name_no_folder_outside_the_repository():
    """CI here runs with the project's reference folder beside the clone, so a test reading it would pass
    there and fail in a user's fresh clone: catch the ways that happened (a hard-coded workplace path, an
    environment override pointing outside, the clone's parent folder)."""
    outside = re.compile(r"/work/|COLORIZER_SHARED|REPO\.parent\b|parents\[2\]\s*/|\.\./shared")
    sources = [*REPO.joinpath("tests").rglob("*.py"), REPO / ".ci" / "run"]
    offenders = [f"{path.relative_to(REPO)}:{n}: {line.strip()}"
                 for path in sources if path != REPO / "tests" / "test_fixtures.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1) if outside.search(line)]
    assert not offenders, "tests must read only files inside the repository:\n" + "\n".join(offenders)
