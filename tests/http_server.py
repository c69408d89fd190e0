"""A real HTTP server on 127.0.0.1 for tests: serves a directory, with byte ranges and scripted faults.

Usage::

    with serve_directory(tmp_path) as base_url:          # "http://127.0.0.1:<port>"
        hub.download(f"{base_url}/weights.pth", dest)

    with local_http_server(tmp_path) as server:          # the same, plus a request log
        url = server.url("weights.pth", drop_after=1000)
        ...
        assert server.requests_for("weights.pth")[1].headers["range"] == "bytes=1000-"

Faults are chosen per URL with query parameters (they combine):

- ``drop_after=N``: the FIRST request for this URL sends N body bytes, then closes the
  connection, short of its ``Content-Length``; later requests are served normally.
- ``stall_after=N``: the FIRST request for this URL sends N body bytes, then goes silent
  (until the server stops, at most 30 s) without closing; later requests are served normally.
- ``truncate=N``: EVERY response announces the full ``Content-Length`` but the body stops at
  byte N of the file, then the connection closes (a server that cannot send the rest).
- ``ignore_range=1``: answer 200 with the whole file even when a ``Range`` is asked for.
- ``status=CODE``: answer this HTTP status with a short text body.
- ``content_type=TYPE``: override the ``Content-Type`` (default: guessed from the name).
- ``chunk_delay=S``: sleep S seconds before each 64 KiB chunk (a slow download).
- ``chunked=1``: send the body with ``Transfer-Encoding: chunked`` (no ``Content-Length``).
- ``cut_chunked=N`` (with ``chunked=1``): the FIRST request for this URL sends N body bytes, then
  half a chunk-size line, then closes (Python reports ``IncompleteRead``, requests/urllib3
  ``invalid literal for int() with base 16``); later requests are served normally. With
  ``truncate=N`` every chunked body is cut that way.

Files are served with ``Content-Length`` and single-range ``Range: bytes=A-[B]`` support (206,
or 416 with ``Content-Range: bytes */size`` past the end). Also: :func:`silent_server` (accepts
connections, never answers) and :func:`closed_port_url` (connection refused).
"""

from __future__ import annotations

import mimetypes
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHUNK = 64 * 1024


@dataclass(frozen=True)
class RequestRecord:
    """One request the server received: method, path (no query), query dict, lower-cased headers."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


class LocalHTTPServer:
    """A threaded HTTP server serving ``root`` on 127.0.0.1 at a free port; see the module doc.

    ``base_url`` is ``http://127.0.0.1:<port>``; ``requests`` lists every request received, in
    order. Start with :meth:`start`, stop with :meth:`stop` (or use :func:`local_http_server`).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.requests: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}
        self.stopping = threading.Event()
        handler = type("BoundHandler", (_Handler,), {"site": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> LocalHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def url(self, name: str, **faults: object) -> str:
        """URL of file ``name`` under ``root``, with fault query parameters (see the module doc)."""
        query = urllib.parse.urlencode({k: str(v) for k, v in faults.items()})
        return f"{self.base_url}/{urllib.parse.quote(name)}" + (f"?{query}" if query else "")

    def requests_for(self, name: str, method: str = "GET") -> list[RequestRecord]:
        """The requests received for file ``name`` (any query) with this method."""
        with self._lock:
            return [r for r in self.requests if r.path == f"/{name}" and r.method == method]

    def _record(self, record: RequestRecord, key: str) -> int:
        """Log a request; return how many earlier requests had the same path and query."""
        with self._lock:
            self.requests.append(record)
            seen = self._seen.get(key, 0)
            self._seen[key] = seen + 1
            return seen


class _Handler(BaseHTTPRequestHandler):
    site: LocalHTTPServer  # set on the bound subclass
    protocol_version = "HTTP/1.0"  # one request per connection; the body ends when it closes

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence stderr
        pass

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._serve(send_body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(send_body=True)

    def _serve(self, send_body: bool) -> None:
        parts = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parts.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        headers = {k.lower(): v for k, v in self.headers.items()}
        earlier = self.site._record(RequestRecord(self.command, path, query, headers), self.path)

        if "status" in query:
            self._send_text(int(query["status"]))
            return
        file = (self.site.root / path.lstrip("/")).resolve()
        if not file.is_relative_to(self.site.root) or not file.is_file():
            self._send_text(HTTPStatus.NOT_FOUND)
            return
        size = file.stat().st_size
        start, end, status = 0, size - 1, HTTPStatus.OK
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", headers.get("range", ""))
        if wanted and query.get("ignore_range") != "1":
            start = int(wanted.group(1))
            end = min(int(wanted.group(2)), size - 1) if wanted.group(2) else size - 1
            if start >= size:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = HTTPStatus.PARTIAL_CONTENT

        content_type = query.get("content_type") or (
            mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        )
        chunked = query.get("chunked") == "1"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not send_body:
            return

        stop = end + 1
        if "truncate" in query:
            stop = min(stop, int(query["truncate"]))
        first = earlier == 0
        for fault in ("drop_after", "stall_after") + (("cut_chunked",) if chunked else ()):
            if fault in query and first:
                stop = min(stop, start + int(query[fault]))
        delay = float(query.get("chunk_delay", 0))
        with open(file, "rb") as source:
            source.seek(start)
            for offset in range(start, stop, CHUNK):
                if delay:
                    time.sleep(delay)
                data = source.read(min(CHUNK, stop - offset))
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        if chunked:  # the last chunk, or half a chunk-size line where the body is cut
            cut = ("cut_chunked" in query and first) or "truncate" in query
            self.wfile.write(b"4" if cut else b"0\r\n\r\n")
        self.wfile.flush()  # then the connection closes (HTTP/1.0), short of Content-Length
        if "stall_after" in query and first:
            self.site.stopping.wait(timeout=30)

    def _send_text(self, status: int) -> None:
        body = f"{int(status)} {HTTPStatus(status).phrase}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def local_http_server(root: str | Path) -> Iterator[LocalHTTPServer]:
    """Serve ``root`` on 127.0.0.1 for the duration of the block; yield the :class:`LocalHTTPServer`."""
    server = LocalHTTPServer(root).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def serve_directory(root: str | Path) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 for the duration of the block; yield its base URL (no slash)."""
    with local_http_server(root) as server:
        yield server.base_url


@contextmanager
def silent_server() -> Iterator[str]:
    """A TCP port that accepts connections (kernel backlog) but never answers; yield its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def closed_port_url() -> str:
    """The URL of a 127.0.0.1 port nobody listens on (connecting is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
