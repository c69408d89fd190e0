"""Fetch a video from a URL: yt-dlp for web pages and direct links, gdown for Google Drive.

``file://`` URLs are accepted (through yt-dlp's ``enable_file_urls``) only when the user gave one,
which is also how the download path is tested offline.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

from ..errors import DependencyError, InputError
from .binaries import FFmpegTools, find_tools
from .probe import probe

# Prefer a single file that already holds video and audio (no merge step), mp4 first.
DEFAULT_FORMAT = "best[vcodec!=none][acodec!=none][ext=mp4]/best[vcodec!=none][acodec!=none]/bestvideo*+bestaudio/best"
_DRIVE_HOSTS = ("drive.google.com", "docs.google.com", "drive.usercontent.google.com")


def is_url(text: str | os.PathLike) -> bool:
    """True for http(s)://, file:// and www. addresses (as opposed to local paths)."""
    s = str(text)
    return urlparse(s).scheme.lower() in ("http", "https", "file") or s.lower().startswith("www.")


def is_google_drive(url: str) -> bool:
    return (urlparse(url).hostname or "").lower() in _DRIVE_HOSTS


_MARKER = "complete.json"  # in a download's folder: the URL and the file's name, written when it is done


def _full_url(url: str) -> str:
    return "https://" + url if url.lower().startswith("www.") else url


def _download_folder(url: str, dest_dir: str | os.PathLike) -> Path:
    return Path(dest_dir) / f"download-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def finished_download(url: str, dest_dir: str | os.PathLike) -> Path | None:
    """The file an earlier :func:`download_video` of ``url`` into ``dest_dir`` finished, or None when
    there is none (never downloaded, interrupted, or the file is gone): the one record of finished
    downloads, which every front end relies on to reuse a download."""
    folder = _download_folder(_full_url(url), dest_dir)
    try:
        done = folder / json.loads((folder / _MARKER).read_text())["file"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return done if done.is_file() else None


def download_video(url: str, dest_dir: str | os.PathLike, *, max_filesize: int | None = 4 * 1024**3,
                   max_duration: float | None = None, retries: int = 10, via: str | None = None,
                   tools: FFmpegTools | None = None, quiet: bool = True) -> Path:
    """Download ``url`` into its own folder under ``dest_dir`` and return the video file's path.

    A finished download is recorded in that folder and reused by later calls for the same URL, so
    a rerun (resuming an interrupted colorization) neither downloads again nor changes the file.

    ``via`` forces ``"yt-dlp"`` or ``"gdown"`` (default: gdown for Google Drive hosts, else yt-dlp).
    Files over ``max_filesize`` bytes or ``max_duration`` seconds are refused (and deleted).
    Raises :class:`InputError` when the site refuses, the link holds no video, or a limit is hit,
    and :class:`DependencyError` when yt-dlp / gdown is not installed.
    """
    url = _full_url(url)
    done = finished_download(url, dest_dir)
    if done is not None:
        return done
    tools = tools or find_tools()
    folder = _download_folder(url, dest_dir)
    marker = folder / _MARKER
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    via = via or ("gdown" if is_google_drive(url) else "yt-dlp")
    if via == "gdown":
        path = _download_gdown(url, folder, quiet)
    elif via == "yt-dlp":
        path = _download_ytdlp(url, folder, max_filesize, max_duration, retries, tools, quiet)
    else:
        raise InputError(f"Unknown downloader {via!r}; use 'yt-dlp' or 'gdown'.")
    size = path.stat().st_size
    if max_filesize is not None and size > max_filesize:
        shutil.rmtree(folder)
        raise InputError(f"{url} is {size / 1e6:.1f} MB, over the {max_filesize / 1e6:.1f} MB limit; "
                         "raise max_filesize or cut the video first.")
    info = probe(path, tools)  # also refuses pages that were not videos
    if max_duration is not None and info.duration is not None and info.duration > max_duration:
        shutil.rmtree(folder)
        raise InputError(f"{url} lasts {info.duration:.1f} s, over the {max_duration:.0f} s limit; "
                         "raise max_duration or use start/duration to colorize a part.")
    marker.write_text(json.dumps({"url": url, "file": path.name}))
    return path


def _download_ytdlp(url: str, folder: Path, max_filesize, max_duration, retries, tools, quiet) -> Path:
    try:
        import yt_dlp
        from yt_dlp.utils import DownloadError as YtDlpDownloadError, match_filter_func
    except ImportError:
        raise DependencyError("Downloading from URLs needs yt-dlp: pip install yt-dlp") from None
    opts = {
        "outtmpl": str(folder / "%(title).80B.%(ext)s"),
        "restrictfilenames": True,
        "windowsfilenames": True,
        "format": DEFAULT_FORMAT,
        "retries": retries,
        "fragment_retries": retries,
        "extractor_retries": 3,
        "noplaylist": True,
        "quiet": quiet,
        "no_warnings": quiet,
        "noprogress": quiet,
        "ffmpeg_location": tools.ffmpeg,
        "enable_file_urls": urlparse(url).scheme.lower() == "file",
    }
    if max_filesize is not None:
        opts["max_filesize"] = max_filesize
    if max_duration is not None:
        opts["match_filter"] = match_filter_func(f"duration <=? {max_duration}")  # unknown durations pass, checked after
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(url, download=True)
    except YtDlpDownloadError as exc:
        message = str(exc).replace("ERROR: ", "").strip()
        raise InputError(f"Could not download {url}: {message}. The site may refuse automated downloads; "
                         "download the video yourself and pass the file.") from exc
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl"))]
    if info is None or not files:
        raise InputError(f"{url} was not downloaded: it is over max_filesize ({max_filesize} bytes) or "
                         f"max_duration ({max_duration} s), or the page holds no video.")
    requested = [Path(d["filepath"]) for d in (info.get("requested_downloads") or []) if d.get("filepath")]
    return next((p for p in requested if p.is_file()), max(files, key=lambda p: p.stat().st_size))


def _download_gdown(url: str, folder: Path, quiet: bool) -> Path:
    try:
        import gdown
    except ImportError:
        raise DependencyError("Downloading from Google Drive needs gdown: pip install gdown") from None
    try:
        accepted = inspect.signature(gdown.download).parameters  # gdown's options vary across versions
        extra = {k: v for k, v in {"fuzzy": True, "retries": 3, "use_cookies": False}.items() if k in accepted}
        result = gdown.download(url, output=str(folder) + os.sep, quiet=quiet, **extra)
    except Exception as exc:  # gdown raises several unrelated types for refused or missing files
        raise InputError(f"Could not download {url} from Google Drive: {exc}. Check that the file is shared "
                         "with 'anyone with the link'.") from exc
    if not result or not Path(result).is_file():
        raise InputError(f"Could not download {url} from Google Drive; check that it is shared publicly.")
    return Path(result)
