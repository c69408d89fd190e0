"""``files.upload`` and ``files.download`` as Colab's behave, minus the browser dialog.

Colab's ``upload(target_dir="")`` shows a file picker, writes each chosen file into ``target_dir``
and returns ``{file name: bytes}``. Here the "chosen" files come from the JSON list of lists of
paths in ``$FAKE_COLAB_UPLOADS`` (one inner list per call, consumed in order); an exhausted queue
is a cancelled picker (``{}``). ``download(path)`` records the path in ``$FAKE_COLAB_UPLOADS.downloads``.
"""

import json
import os
import shutil
from pathlib import Path


def upload(target_dir=""):
    queue_path = Path(os.environ["FAKE_COLAB_UPLOADS"])
    queue = json.loads(queue_path.read_text()) if queue_path.is_file() else []
    if not queue:
        return {}
    chosen, rest = queue[0], queue[1:]
    queue_path.write_text(json.dumps(rest))
    folder = Path(target_dir or ".")
    folder.mkdir(parents=True, exist_ok=True)
    uploaded = {}
    for source in map(Path, chosen):
        shutil.copyfile(source, folder / source.name)
        uploaded[source.name] = source.read_bytes()
        print(f"Saved {source.name} to {folder / source.name}")
    return uploaded


def download(path):
    with open(os.environ["FAKE_COLAB_UPLOADS"] + ".downloads", "a") as log:
        log.write(f"{path}\n")
