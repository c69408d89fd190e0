"""Fetching an image over http(s) into memory, with a size limit, refusing web pages.
"""

from __future__ import annotations

import http.client
import re
import socket
import urllib.error
import urllib.request

from colorizer_lib.errors import InputError


USER_AGENT = "Mozilla/5.0 (compatible; Colorizer image loader; +https://pypi.org/project/colorizer)"


_DOWNLOAD_CHUNK = 1 << 16


def is_url(text) -> bool:
    """Whether an input names an http(s) address (``http://`` or ``https://``, any case) rather than a
    local path: the one test every front end uses for photos."""
    return isinstance(text, str) and text.lower().startswith(("http://", "https://"))


def _download(url: str, *, timeout: float, max_bytes: int) -> bytes:
    """GET `url` into memory; refuse web pages, error statuses and bodies over `max_bytes`."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "image/*,*/*;q=0.8"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            content_type = response.headers.get_content_type()
            if content_type in ("text/html", "application/xhtml+xml"):
                raise _web_page_error(url)
            if content_type.startswith("text/"):
                raise InputError(
                    f"{url} answered with {content_type}, not an image. Check that the URL points at the "
                    "image file itself."
                )
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise _too_big_error(url, max_bytes, int(declared))
            chunks, received = [], 0
            while True:
                chunk = response.read(_DOWNLOAD_CHUNK)
                if not chunk:
                    break
                received += len(chunk)
                if received > max_bytes:
                    raise _too_big_error(url, max_bytes, None)
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        raise InputError(
            f"Could not download {url}: HTTP {exc.code} {exc.reason}. Check the address in a browser."
        ) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise InputError(f"Timed out after {timeout:g} s downloading {url}. Retry, or raise the timeout.") from None
        if isinstance(reason, ConnectionRefusedError):
            raise InputError(
                f"Connection refused by the server of {url}. Check the address and your network."
            ) from None
        raise InputError(f"Could not download {url}: {reason}. Check the address and your network.") from None
    except (socket.timeout, TimeoutError):
        raise InputError(f"Timed out after {timeout:g} s downloading {url}. Retry, or raise the timeout.") from None
    except OSError as exc:  # connection reset, SSL failures...
        raise InputError(f"Download of {url} failed: {exc}. Check the address and your network.") from None
    except http.client.HTTPException as exc:  # IncompleteRead: the body was cut off (a chunked one, too)
        raise InputError(f"Download of {url} was cut off ({type(exc).__name__}). Retry, or check the address "
                         "in a browser.") from None
    data = b"".join(chunks)
    if not data:
        raise InputError(f"{url} returned an empty body (0 bytes). Check that the URL points at an image.")
    if re.match(rb"\s*(<!doctype html|<html)", data[:512], re.IGNORECASE):
        raise _web_page_error(url)
    return data


def _web_page_error(url: str) -> InputError:
    return InputError(
        f"{url}: this URL is a web page, not an image; right-click the picture and copy the image address."
    )


def _too_big_error(url: str, max_bytes: int, declared: int | None) -> InputError:
    size = f" ({declared:,} bytes)" if declared else ""
    return InputError(
        f"{url} is larger than the download limit of {max_bytes:,} bytes{size}. Download it yourself and "
        "pass the local file, or raise max_bytes."
    )
