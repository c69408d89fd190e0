"""Where Training.ipynb finds its photos: local folders, an uploaded zip, a Drive folder, or (on
Colab, when none of those is there) a zip the user is asked for with Colab's uploader.

No fastai here: this runs before anything is trained, so its messages come first.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from .split import list_images


def _has_photos(folder: Path) -> bool:
    try:
        list_images(folder)
    except InputError:
        return False
    return True


def _unzip(zip_path: Path, dest: Path) -> Path:
    from .data import extract_zip  # imports fastai, which the install cell has put in place by now

    return extract_zip(zip_path, dest)


def training_folders(folders: Sequence[str], work_dir: str | Path, data_zip: str | None = None,
                     drive_folder: str | None = None, colab: bool | None = None) -> list[str]:
    """The folders of colour photos to train on, in this order of preference:

    * ``data_zip`` (a path): unpacked into ``work_dir/photos``;
    * ``drive_folder`` on Colab (e.g. ``"MyDrive/photos"``): Google Drive is mounted at
      ``/content/drive`` (Colab asks for permission);
    * the existing folders among ``folders`` (missing ones are named in a note);
    * on Colab with none of these: a message, then Colab's uploader asks for a zip of photos
      (any size; saved on the runtime's disk), which is unpacked into ``work_dir/photos``.

    Elsewhere with no photos, raises ``InputError`` saying what to set.
    """
    from colorizer_lib import notebook

    colab = notebook.in_colab() if colab is None else colab
    work_dir = Path(work_dir)
    if data_zip:
        zip_path = Path(data_zip).expanduser()
        if not zip_path.is_file():
            raise InputError(f"DATA_ZIP {data_zip} does not exist; give the path of a .zip of colour photos")
        return [str(_unzip(zip_path, work_dir / "photos" / zip_path.stem))]
    if drive_folder:
        if not colab:
            raise InputError("DRIVE_FOLDER works on Colab only; elsewhere list the folder in DATA_FOLDERS")
        importlib.import_module("google.colab.drive").mount("/content/drive")
        folder = Path("/content/drive") / drive_folder
        if not _has_photos(folder):
            raise InputError(f"{folder} holds no photos; check DRIVE_FOLDER (e.g. 'MyDrive/photos')")
        return [str(folder)]
    present = [f for f in folders if _has_photos(Path(f).expanduser())]
    absent = [f for f in folders if f not in present]
    if present:
        if absent:
            print(f"Note: no photos in {', '.join(absent)}; training on {', '.join(present)}.")
        return present
    where = ", ".join(absent) or "DATA_FOLDERS (empty)"
    if not colab:
        raise InputError(f"No training photos: {where} holds none. Put colour photos (a few hundred at least) in "
                         "a folder and list it in DATA_FOLDERS, or set DATA_ZIP to a .zip of them.")
    print(f"No training photos yet ({where} is not on this Colab machine). Choose a .zip of your colour photos "
          "(a few hundred at least) in the picker below; it is unpacked on the runtime's disk. To use a Drive "
          "folder instead, stop this cell and set DRIVE_FOLDER.", flush=True)
    zips = [p for p in notebook.colab_upload(work_dir / "uploads") if p.suffix.lower() == ".zip"]
    if not zips:
        raise InputError("No .zip was uploaded: run this cell again and choose a .zip of colour photos, or set "
                         "DATA_ZIP or DRIVE_FOLDER.")
    return [str(_unzip(z, work_dir / "photos" / z.stem)) for z in zips]


def missing_requirements(extra: str = "train") -> list[str]:
    """The requirements of the package's ``extra`` (e.g. ``"fastai>=2.8"``) whose distribution is not
    installed, read from the installed package's metadata (else from ``requirements-<extra>.txt``
    beside the package, in a checkout used without installing)."""
    import importlib.metadata as metadata
    import re

    try:
        lines = [r for r in metadata.requires("colorizer") or [] if re.search(rf"extra\s*==\s*['\"]{extra}['\"]", r)]
        lines = [r.split(";")[0].strip() for r in lines]
    except metadata.PackageNotFoundError:
        text = (Path(__file__).resolve().parents[2] / f"requirements-{extra}.txt").read_text()
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith(("#", "-r"))]
    missing = []
    for requirement in lines:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(requirement)
    return missing
