"""Uploads: ipywidgets 7 and 8 ``FileUpload`` values read the same way, Colab's uploader (no size limit),
saving uploads to disk, clearing the widget.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import ipywidgets as W

from colorizer_lib.errors import InputError
from .sources import source_stem


@dataclass(frozen=True)
class Upload:
    """One uploaded file: its file name and its bytes."""

    name: str
    content: bytes

    @property
    def is_zip(self) -> bool:
        return self.name.lower().endswith(".zip")


def parse_upload(value: Any) -> list[Upload]:
    """Read a ``FileUpload.value`` of ipywidgets 8 or 7 into ``Upload`` records, in upload order.

    * ipywidgets 8: a tuple (or list) of dicts ``{"name", "type", "size", "content": memoryview,
      "last_modified"}``.
    * ipywidgets 7: a dict ``{filename: {"metadata": {"name", "type", "size", ...},
      "content": bytes}}``.

    An empty value gives ``[]``; anything else raises ``InputError``.
    """
    if value is None:
        return []
    if isinstance(value, dict):  # ipywidgets 7
        items = []
        for key, entry in value.items():
            if not isinstance(entry, dict) or "content" not in entry:
                raise InputError(f"Unrecognised ipywidgets 7 upload entry for {key!r}: expected a dict "
                                 "with 'metadata' and 'content'. Upgrade ipywidgets or re-upload the file.")
            name = (entry.get("metadata") or {}).get("name") or str(key)
            items.append(Upload(name, bytes(entry["content"])))
        return items
    if isinstance(value, (tuple, list)):  # ipywidgets 8
        items = []
        for entry in value:
            if not isinstance(entry, dict) or "content" not in entry or "name" not in entry:
                raise InputError("Unrecognised ipywidgets 8 upload entry: expected a dict with 'name' "
                                 "and 'content'. Upgrade ipywidgets or re-upload the file.")
            items.append(Upload(str(entry["name"]), bytes(entry["content"])))
        return items
    raise InputError(f"Unrecognised FileUpload value of type {type(value).__name__}; expected the "
                     "ipywidgets 7 dict or the ipywidgets 8 tuple. Install ipywidgets 7.6+ or 8.")


#: What the widget channel lets through, as told to users whose upload did not arrive.
UPLOAD_LIMIT_TEXT = ("files larger than about 10 MB (in Jupyter; about 1 MB in some hosted notebooks) never "
                     "reach Python through the upload button")


def upload_files(upload: Any) -> list[Upload]:
    """Every file in a ``FileUpload`` widget of ipywidgets 7 or 8, in upload order.

    ipywidgets 7 keeps the files in its ``metadata`` and ``data`` lists and builds ``value`` as a
    dict keyed by file name, which drops one of two files with the same name: read the lists.
    ipywidgets 8 keeps them in ``value`` (a tuple of dicts). An upload the browser could not read
    (ipywidgets 7's ``error``), or whose bytes arrived incomplete (fewer than its ``size``), raises
    ``InputError`` naming the file.
    """
    error = getattr(upload, "error", "")
    if error:
        raise InputError(f"The upload failed in the browser ({error}). Upload the file again; if it is large, "
                         "put it on this machine's disk and paste its path in the box instead.")
    data, metadata = getattr(upload, "data", None), getattr(upload, "metadata", None)
    if isinstance(data, list) and isinstance(metadata, list) and isinstance(upload.value, dict):  # ipywidgets 7
        if len(data) != len(metadata):
            raise InputError("The upload arrived incomplete (file names and contents do not match); "
                             "upload the files again.")
        entries = [{"name": m.get("name") or f"upload{i}", "size": m.get("size"), "content": d}
                   for i, (m, d) in enumerate(zip(metadata, data))]
    else:
        entries = [{"name": u.name, "size": None, "content": u.content} for u in parse_upload(upload.value)]
        if isinstance(upload.value, (tuple, list)):
            for entry, raw in zip(entries, upload.value):
                entry["size"] = raw.get("size")
    files = []
    for entry in entries:
        content = bytes(entry["content"])
        size = entry["size"]
        if isinstance(size, int) and size != len(content):
            raise InputError(f"{entry['name']} arrived incomplete ({len(content)} of {size} bytes): "
                             f"{UPLOAD_LIMIT_TEXT}. Put the file on this machine's disk and paste its path.")
        files.append(Upload(str(entry["name"]), content))
    return files


def save_uploads(uploads: Sequence[Upload], folder: Path | str) -> list[Path]:
    """Write uploads into ``folder`` (created) under safe names; two files with one name both stay
    (the second gets ``_2``, and a name already on disk from an earlier upload is never overwritten)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for upload in uploads:
        suffix = Path(upload.name).suffix.lower()
        stem = source_stem(upload.name)
        target, n = folder / f"{stem}{suffix}", 2
        while target.exists():
            target, n = folder / f"{stem}_{n}{suffix}", n + 1
        target.write_bytes(upload.content)
        paths.append(target)
    return paths


def colab_upload(folder: Path | str) -> list[Path]:
    """Ask the user for files with Colab's own uploader (``google.colab.files.upload``: no size
    limit) and return their paths on the runtime's disk, inside a fresh subfolder of ``folder``
    (so files with a name uploaded earlier are kept). Cancelling gives ``[]``."""
    files = importlib.import_module("google.colab.files")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = 1
    while (folder / f"upload{n}").exists():
        n += 1
    target = folder / f"upload{n}"
    target.mkdir()
    uploaded = files.upload(target_dir=str(target)) or {}
    paths = []
    for name, content in uploaded.items():
        path = target / Path(name).name
        if not path.is_file() or path.stat().st_size != len(content):  # an uploader that only returns bytes
            path.write_bytes(content)
        paths.append(path)
    if not paths:
        target.rmdir()
    return paths


def clear_upload(upload: W.FileUpload) -> None:
    """Empty a ``FileUpload`` widget so the same files are not processed twice (ipywidgets 7 and 8)."""
    if isinstance(upload.value, dict):  # ipywidgets 7: value is rebuilt from metadata + data on _counter
        upload.metadata = []
        upload.data = []
        upload.set_trait("value", {})
        upload._counter = 0
    else:
        upload.value = ()
