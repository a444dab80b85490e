"""A fake local API on a unix socket, for testing the CLI without a daemon.

``fake_api`` (a fixture, registered in conftest.py) yields ``(home, server)``: set
``server.answers[(method, path)] = (status, json or bytes)`` (a list is served in
turn, the last one repeating); a path is matched with its query string first, then
without it. ``server.requests`` records ``(method, path, body)``; ``server.files``
keeps the bytes of each file a ``POST /v1/documents`` named, read while it exists.
"""

from __future__ import annotations

import json
import shutil
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest


class FakeApi(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Answers ``(method, path)`` from a table; a list is served in turn (the last repeats)."""

    daemon_threads = True
    answers: dict[tuple[str, str], Any]
    requests: list[tuple[str, str, Any]]
    files: dict[str, bytes]


NO_ROUTE = (404, {"error": {"code": "http-404", "message": "no route"}})


class FakeHandler(BaseHTTPRequestHandler):
    server: FakeApi

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append((self.command, self.path, body))
        if self.command == "POST" and self.path == "/v1/documents" and body:
            for item in body.get("files", []):
                self.server.files[item["path"]] = Path(item["path"]).read_bytes()
        answers = self.server.answers
        answer = answers.get((self.command, self.path))
        if answer is None:
            answer = answers.get((self.command, self.path.partition("?")[0]), NO_ROUTE)
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        status, payload = answer
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _answer

    def address_string(self) -> str:
        return "local"

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_api() -> Iterator[tuple[Path, FakeApi]]:
    home = Path(tempfile.mkdtemp(prefix="pli-fake-"))
    server = FakeApi(str(home / "api.sock"), FakeHandler)
    server.answers = {}
    server.requests = []
    server.files = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield home, server
    server.shutdown()
    server.server_close()
    shutil.rmtree(home, ignore_errors=True)
