"""A small synchronous client for the daemon's local API (JSON over HTTP on a unix socket).

Standard library only (``http.client`` over ``AF_UNIX``) so that ``pli status`` and
friends start fast and never import aiohttp. One connection per request: the API is
local and the requests are few.

Errors: the daemon answers ``{"error": {"code", "message"}}``; ``code`` is mapped back
to the matching ``PliError`` subclass (``p2p/errors.py``), so the CLI handles a remote
error exactly like a local one. A missing socket, a refused connection or a daemon that
goes away mid-answer raise ``DaemonNotRunning`` (exit 3).
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from p2p import errors
from p2p.storage.config import API_SOCKET

#: Seconds to wait for an answer. Sealing a large document before the daemon answers
#: ``POST /v1/documents`` can take a while, hence the per-call override.
DEFAULT_TIMEOUT = 30.0
CHUNK = 256 * 1024


def _error_classes() -> dict[str, type[errors.PliError]]:
    found: dict[str, type[errors.PliError]] = {}
    pending: list[type[errors.PliError]] = [errors.PliError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


class UnixHTTPConnection(http.client.HTTPConnection):
    """``HTTPConnection`` whose ``connect()`` opens a unix socket instead of TCP."""

    def __init__(self, path: Path, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(str(self.socket_path))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def quote_part(text: str) -> str:
    """One path segment of a route (a peer name may contain spaces or slashes)."""
    return quote(text, safe="")


class Client:
    """``Client(home).get("/v1/status")`` → the decoded JSON answer."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.socket_path = home / API_SOCKET

    # --- public ---------------------------------------------------------------------

    def get(self, path: str, *, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        return self.request("GET", path, timeout=timeout)

    def post(self, path: str, body: Any, *, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        return self.request("POST", path, body, timeout=timeout)

    def delete(self, path: str, *, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        return self.request("DELETE", path, timeout=timeout)

    def request(
        self, method: str, path: str, body: Any = None, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> Any:
        with self._exchange(method, path, body, timeout) as response:
            data = self._read(response.read)
        try:
            return json.loads(data) if data else None
        except ValueError:
            raise errors.PliError(
                "The daemon sent an answer pli cannot read; is it the same version as this pli?"
            ) from None

    @contextmanager
    def download(self, path: str, *, timeout: float | None = 60.0) -> Iterator[Iterator[bytes]]:
        """``with client.download(route) as chunks: for chunk in chunks: ...``"""
        with self._exchange("GET", path, None, timeout) as response:

            def chunks() -> Iterator[bytes]:
                while chunk := self._read(response.read, CHUNK):
                    yield chunk

            yield chunks()

    @contextmanager
    def lines(self, path: str, *, timeout: float | None = None) -> Iterator[Iterator[bytes]]:
        """``with client.lines(route) as lines: ...``: a stream read line by line, as
        each line arrives (``GET /v1/events``)."""
        with self._exchange("GET", path, None, timeout) as response:

            def read() -> Iterator[bytes]:
                while line := self._read(response.readline):
                    yield line

            yield read()

    # --- inside ---------------------------------------------------------------------

    def not_running(self, detail: str = "") -> errors.DaemonNotRunning:
        extra = f" ({detail})" if detail else ""
        return errors.DaemonNotRunning(
            f"The pli daemon is not running for {self.home}{extra}. "
            f"Start it with: pli --home {self.home} daemon"
        )

    @contextmanager
    def _exchange(
        self, method: str, path: str, body: Any, timeout: float | None
    ) -> Iterator[http.client.HTTPResponse]:
        headers = {"Accept": "application/json", "Host": "pli"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        connection = UnixHTTPConnection(self.socket_path, timeout=timeout)
        try:
            try:
                connection.request(method, path, body=payload, headers=headers)
                response = connection.getresponse()
            except (FileNotFoundError, ConnectionRefusedError):
                raise self.not_running() from None
            except TimeoutError:
                raise errors.DaemonNotRunning(
                    f"The pli daemon for {self.home} did not answer in time. Check its log; "
                    f"restart it if it stays stuck (pli --home {self.home} daemon)."
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                raise self.not_running(str(exc) or exc.__class__.__name__) from None
            if response.status >= 400:
                raise self._error(response)
            yield response
        finally:
            connection.close()

    def _read(self, read: Any, *args: int) -> bytes:
        try:
            data: bytes = read(*args)
        except TimeoutError:
            raise errors.DaemonNotRunning(
                f"The pli daemon for {self.home} stopped answering. Check its log."
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise self.not_running(f"it went away while answering: {exc}") from None
        return data

    def _error(self, response: http.client.HTTPResponse) -> errors.PliError:
        raw = self._read(response.read)
        try:
            body = json.loads(raw)
            code = str(body["error"]["code"])
            message = str(body["error"]["message"])
        except (ValueError, KeyError, TypeError):
            return errors.PliError(
                f"The daemon refused the request (HTTP {response.status}) without saying why. "
                "Check its log."
            )
        cls = _error_classes().get(code)
        if cls is None or cls is errors.DaemonNotRunning:
            error = errors.PliError(message)
            error.code = code
            return error
        return cls(message)
