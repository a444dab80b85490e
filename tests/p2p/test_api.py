"""The local API: only our user, JSON errors for bad requests, never a traceback."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from pathlib import Path

import aiohttp
import pytest

from p2p.storage.store import PeerState

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
        # found by schemathesis (tests/p2p/test_openapi_daemon.py): these were 500s
        ("GET", "/v1/pair/x?until=bogus", b"", 400, "bad-input"),
        ("GET", "/v1/pair/x?timeout=nan", b"", 400, "bad-input"),
        ("GET", "/v1/pair/x?timeout=-1", b"", 400, "bad-input"),
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
    assert body["peers"] == 1
    status, peers = await a.api("GET", "/v1/peers")
    assert [p["name"] for p in peers] == ["Dr Bob Durand"]
    assert peers[0]["fingerprint"] == b.daemon.me.peer_id.fingerprint
    # Only paired peers are counted (by SQLite, without reading their rows).
    await asyncio.to_thread(
        a.daemon.store.set_peer_state, b.daemon.me.peer_id.hex, PeerState.REMOVED
    )
    _, body = await a.api("GET", "/v1/status")
    assert body["peers"] == 0


async def test_evidence_and_exported_mark(two: tuple[Running, Running], tmp_path: Path) -> None:
    import base64

    from protocol import Evidence

    from .conftest import wait_for
    from .test_exchange import delivered, send_file

    a, b = two
    letter = tmp_path / "lettre.txt"
    letter.write_text("Cher confrère,\n")
    doc_id = await send_file(a, b, letter, kind="letter", metadata={"subject": "Avis"})
    await wait_for(lambda: delivered(a, doc_id))
    status, proof = await b.api("GET", f"/v1/documents/{doc_id}/evidence")
    assert status == 200, proof
    meta = Evidence.from_wire(base64.b64decode(proof["evidence"])).verify()
    assert meta.sender == a.daemon.me.public
    assert proof["signer_fingerprint"] == a.daemon.me.peer_id.fingerprint
    status, outbox = await a.api("GET", "/v1/outbox")
    assert (outbox[0]["kind"], outbox[0]["subject"]) == ("letter", "Avis")
    status, _ = await b.api("POST", f"/v1/documents/{doc_id}/exported", {})
    assert status == 200
    status, state = await b.api("GET", "/v1/status")
    assert state["inbox_new"] == 0
    other = await send_file(a, b, letter, kind="letter")
    _, only = await a.api("GET", f"/v1/outbox?id={other.upper()}")
    assert [entry["id"] for entry in only] == [other]
    status, refused = await a.api("GET", "/v1/outbox?id=not-an-id")
    assert (status, refused["error"]["code"]) == (400, "bad-input")


async def test_our_own_bad_file_name_is_bad_input(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    letter = tmp_path / "lettre.txt"
    letter.write_text("x")
    status, body = await a.api(
        "POST",
        "/v1/documents",
        {
            "to": b.daemon.me.peer_id.hex,
            "files": [{"path": str(letter), "name": "../../x"}],
        },
    )
    assert status == 400
    assert body["error"]["code"] == "bad-input"
