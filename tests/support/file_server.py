"""A real HTTP server on loopback that serves files from memory: where QQ's CDN would be."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


class FileServer:
    """``server.add("wren.png", data)`` returns the URL that serves ``data``; unknown paths are 404.
    ``server.redirect("old.png", location)`` answers that path with a 302 to ``location``."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.requests: list[str] = []
        self.hosts: list[str] = []
        """The ``Host`` header of each request."""
        files, redirects, requests, hosts = self.files, self.redirects, self.requests, self.hosts

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                hosts.append(self.headers.get("Host", ""))
                location = redirects.get(self.path.lstrip("/"))
                if location is not None:
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def add(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return f"{self.base_url}/{name}"

    def redirect(self, name: str, location: str) -> str:
        self.redirects[name] = location
        return f"{self.base_url}/{name}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
