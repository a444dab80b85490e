"""The local API: only our user, JSON errors for bad requests, never a traceback."""

from __future__ import annotations

import os
import socket
import stat

import aiohttp
import pytest

from .conftest import Running


async def raw(
    b: Running, method: str, path: str, data: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, str]:
    connector = aiohttp.UnixConnector(path=str(b.daemon.config.api_socket))
    url = f"http://pli{path}"
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.request(method, url, data=data, headers=headers or {}) as response,
    ):
        return response.status, await response.text()


async def test_socket_is_private(two: tuple[Running, Running]) -> None:
    a, _ = two
    mode = a.daemon.config.api_socket.stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
async def test_another_user_is_refused(two: tuple[Running, Running]) -> None:
    a, _ = two
    # The home is private (0700) like a real one; the socket itself is 0600 too.
    # A forked child drops to "nobody" and tries to connect.
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(str(a.daemon.config.api_socket))
            code = 1
        except PermissionError:
            code = 0
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "another user could reach the API"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/v1/documents", b"{not json", 400, "bad-input"),
        ("POST", "/v1/documents", b"[1, 2]", 400, "bad-input"),
        (
            "POST",
            "/v1/documents",
            b'{"to": "nobody", "files": [{"path": "/etc/hostname"}]}',
            404,
            "peer-unknown",
        ),
        (
            "POST",
            "/v1/documents",
            b'{"to": "Dr Bob Durand", "files": [{"path": "rel.txt"}]}',
            400,
            "bad-input",
        ),
        (
            "POST",
            "/v1/documents",
            b'{"to": "Dr Bob Durand", "files": [], "kind": "x"}',
            400,
            "bad-input",
        ),
        ("POST", "/v1/peers", b'{"card": "%%%"}', 400, "bad-input"),
        ("POST", "/v1/peers", b'{"card": "AAAA"}', 422, "security"),
        ("GET", "/v1/documents/zz", b"", 404, "document-unknown"),
        ("GET", "/v1/nothing-here", b"", 404, "http-404"),
        ("DELETE", "/v1/peers/nobody", b"", 404, "peer-unknown"),
    ],
)
async def test_malformed_requests_get_json_errors(
    two: tuple[Running, Running], method: str, path: str, body: bytes, status: int, code: str
) -> None:
    import json

    a, _ = two
    got_status, text = await raw(a, method, path, body, {"Content-Type": "application/json"})
    assert got_status == status, text
    error = json.loads(text)["error"]
    assert error["code"] == code
    assert error["message"]
    assert "Traceback" not in text


async def test_status_and_peers(two: tuple[Running, Running]) -> None:
    a, b = two
    status, body = await a.api("GET", "/v1/status")
    assert status == 200
    assert body["fingerprint"] == a.daemon.me.peer_id.fingerprint
    status, peers = await a.api("GET", "/v1/peers")
    assert [p["name"] for p in peers] == ["Dr Bob Durand"]
    assert peers[0]["fingerprint"] == b.daemon.me.peer_id.fingerprint
