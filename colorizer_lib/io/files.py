"""Folders: the image files in a folder, and the temporary files an interrupted save left behind.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

from colorizer_lib.errors import InputError
from .save import OUTPUT_FORMATS


#: Extensions that `iter_image_files` picks up (lower case; matching is case-insensitive).
INPUT_EXTENSIONS = frozenset(OUTPUT_FORMATS) | {".gif"}


# Temporary files of `_write_atomically`: ".<output name>.<pid>-<random>.part" beside the output.
# Older versions wrote ".<output name>.<random>.part" (no process id).
_TEMP_NAME = re.compile(
    r"^\.(?P<name>.+\.(?:%s))\.(?:(?P<pid>\d+)-)?[a-z0-9_]{8}\.part$"
    % "|".join(sorted(ext.lstrip(".") for ext in OUTPUT_FORMATS)),
    re.IGNORECASE,
)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that an interrupted save (``kill -9``, power loss) left in
    ``folder``: only names of our own pattern (``.<output name>.<pid>-<random>.part``, or the older
    ``.<output name>.<random>.part``) whose writing process is gone. Returns what was removed.

    A temporary file of a process that is still running (another ``colorize`` writing into the same
    folder) is left alone; so is everything else."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        pid = match.group("pid")
        if pid is not None and _process_alive(int(pid)):
            continue
        try:
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def iter_image_files(folder: str | os.PathLike, recursive: bool = True) -> Iterator[Path]:
    """Yield the image files in `folder`, sorted by relative path.

    Picks extensions in INPUT_EXTENSIONS (case-insensitive); skips hidden files and folders
    (names starting with "."); descends into sub-folders when `recursive` (symlinked folders
    are not followed).

    Raises:
        InputError: `folder` does not exist or is not a folder.
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise InputError(f"Folder not found: {str(root)!r}. Check the path.")
    if not root.is_dir():
        raise InputError(f"{str(root)!r} is a file, not a folder. Pass a folder, or load the file directly.")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if recursive else []
        for filename in filenames:
            if not filename.startswith(".") and Path(filename).suffix.lower() in INPUT_EXTENSIONS:
                found.append(Path(dirpath) / filename)
    found.sort(key=lambda p: p.relative_to(root).parts)
    yield from found
