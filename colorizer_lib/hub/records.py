"""sha256 bookkeeping: a file's digest, and the ``<name>.sha256`` JSON record written after the first
verified load of a file without a published checksum, checked on later loads.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from colorizer_lib.errors import VerificationError


CHUNK_SIZE = 1 << 18  # bytes per read / hash update


# --------------------------------------------------------------------------------------------
# sha256 bookkeeping


def file_sha256(path: str | os.PathLike) -> str:
    """Lower-case hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_SIZE * 4), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_record_path(path: str | os.PathLike) -> Path:
    """Where the sha256 record of ``path`` lives: ``<path>.sha256`` next to it."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def _read_hash_record(path: Path) -> dict[str, Any] | None:
    record_path = hash_record_path(path)
    if not record_path.exists():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if not isinstance(record.get("sha256"), str) or not isinstance(record.get("size"), int):
            raise ValueError("missing 'sha256' or 'size'")
    except (OSError, ValueError, AttributeError) as exc:
        raise VerificationError(
            f"The checksum record {record_path} is unreadable ({exc}). Delete it; it is "
            f"written again on the next successful load of {path.name}."
        ) from exc
    return record


def record_file_hash(path: str | os.PathLike, sha256: str) -> Path:
    """Write the sha256 record of ``path`` (JSON: file, size, sha256, recorded) and return it."""
    path = Path(path)
    record = {
        "file": path.name,
        "size": path.stat().st_size,
        "sha256": sha256.lower(),
        "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    record_path = hash_record_path(path)
    tmp = record_path.with_name(record_path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, record_path)
    return record_path


def verified_file_hash(path: str | os.PathLike, known_sha256: str | None = None) -> str | None:
    """Check ``path`` against its checksum; return its sha256, or None when there is nothing to check.

    With ``known_sha256`` (a published checksum) the file must hash to it. Without it, a record
    written by :func:`record_file_hash` (``<path>.sha256``) is checked when one exists; with
    neither, nothing is hashed and None is returned. A mismatch raises ``VerificationError``
    naming the file and the fix (delete it so that it is downloaded again).
    """
    path = Path(path)
    if known_sha256 is not None:
        actual = file_sha256(path)
        if actual != known_sha256.lower():
            raise VerificationError(
                f"{path} does not have the published sha256 checksum (it hashes to {actual}, "
                f"expected {known_sha256.lower()}): it is corrupt or a different file. Delete it "
                f"so that it is downloaded again."
            )
        return actual
    record = _read_hash_record(path)
    if record is None:
        return None
    size = path.stat().st_size
    actual = file_sha256(path) if size == record["size"] else None
    if actual != record["sha256"]:
        raise VerificationError(
            f"{path} changed on disk since it was verified on {record.get('recorded', '?')} "
            f"(recorded sha256 {record['sha256']}, {record['size']} bytes; now "
            f"{actual or 'not hashed'}, {size} bytes). Delete it (and "
            f"{hash_record_path(path).name}) so that it is downloaded again."
        )
    return actual
