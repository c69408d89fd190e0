"""Weights: cache directory, download (HTTP with resume, Google Drive), loading and verification.

One function decides where weights come from, in a fixed order (:func:`resolve_weights`):
an explicit local file, else the cache, else a download from each mirror in turn. A record may
name other files of the same model (``alternatives``: another host's copy in another layout, with
its own name, size and checksum): a cached one is used before any download, and each is tried in
turn when the record's own mirrors fail. Loading
(:func:`load_checkpoint`, :func:`load_state_dict`, :func:`load_weights`) is always
``weights_only=True`` and always verified; every error names the file and what to do next.

Files this package writes in the cache directory, for a weights file ``<name>``:

- ``<name>``: the finished, verified download (renamed into place atomically, and only after it
  loaded with ``weights_only=True`` and matched its manifest when the record has one);
- ``<name>.part``: an unfinished download, resumed with an HTTP ``Range`` request by the next
  attempt. It is kept after network failures and deleted when its content is known to be wrong
  (checksum or size mismatch, web page instead of weights);
- ``<name>.rejected``: the last file that failed verification (a download that is not these
  weights, or a cached file that stopped verifying), moved aside for inspection and named in the
  message; the next one replaces it, so at most one per weights file;
- ``<name>.lock``: the inter-process lock held while a download runs (:func:`cache_lock`); it is
  removed when released, so none stays behind after a failed download;
- ``<name>.sha256``: a small JSON record of the file's sha256, written after the first
  successful verified load of a file that has no published checksum, and checked on later loads.

HTTP uses only the standard library (``urllib``); Google Drive links go through ``gdown``,
imported only when such a link is used.

One job per module, importing only downwards in this order::

    records     sha256 of a file and its ``<name>.sha256`` record
    cache       the cache directory and its inter-process lock (:func:`cache_lock`)
    checkpoint  load (``weights_only=True``) and verify state dicts against a manifest
    fetch       download one file: HTTP with resume, retries, Google Drive; quarantine
    resolve     :func:`resolve_weights` and :func:`load_weights`: local file > cache > mirrors

The names below are the package's public interface; import them from ``colorizer_lib.hub``.
"""

from __future__ import annotations

from .cache import CACHE_ENV_VAR, cache_dir, cache_lock, cache_path, default_cache_dir
from .checkpoint import (load_checkpoint, load_state_dict, read_manifest, state_dict_manifest, unwrap_checkpoint,
                         verify_state_dict)
from .fetch import download, google_drive_file_id, normalize_url, quarantine
from .records import file_sha256, hash_record_path, record_file_hash, verified_file_hash
from .resolve import WeightSource, cache_status, is_cached, load_weights, present_source, resolve_weights

__all__ = [
    "CACHE_ENV_VAR",
    "WeightSource",
    "cache_dir",
    "cache_path",
    "default_cache_dir",
    "normalize_url",
    "google_drive_file_id",
    "download",
    "resolve_weights",
    "is_cached",
    "present_source",
    "cache_status",
    "file_sha256",
    "hash_record_path",
    "verified_file_hash",
    "record_file_hash",
    "load_checkpoint",
    "unwrap_checkpoint",
    "read_manifest",
    "state_dict_manifest",
    "verify_state_dict",
    "load_state_dict",
    "load_weights",
    "cache_lock",
    "quarantine",
]
