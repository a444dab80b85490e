"""Uploads of a form that is refused or abandoned are released, never left held.

The daemon holds at most ``MAX_OPEN`` uploads at once; before this was fixed, a
compose form refused after its files were streamed left them held, and after 64
such forms (or one form of 65 files) every send was refused until the hour passed.
Each test leaves the GP's ``uploads`` folder empty, then sends a letter, between
two real daemons.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from p2p.cli.practice import wait_until
from p2p.errors import BadInput, PliError
from p2p.storage.uploads import MAX_OPEN
from tests.web.conftest import Practice
from tests.web.test_documents import LETTER, compose
from tests.web.visitor import Visitor


def held(practice: Practice) -> list[Path]:
    return list((practice.daemon.home / "uploads").iterdir())


def still_sends(gp: Practice, cardio: Practice) -> None:
    assert held(gp) == []
    compose(gp.visitor(), cardio, LETTER, [("ok.txt", b"ok", "text/plain")])


def test_a_form_of_too_many_files_holds_none(practices: tuple[Practice, Practice]) -> None:
    gp, cardio = practices
    page = gp.visitor()
    token = page.csrf("/compose")
    fields = {**LETTER, "recipient": cardio.peer_id}
    files = [(f"{n}.txt", b"x", "text/plain") for n in range(MAX_OPEN + 1)]
    answer = page.post_multipart(f"/compose?csrf={token}", fields, files, Accept="application/json")
    assert answer.status == 400
    assert json.loads(answer.body)["problems"] == ["pli envoie au plus 64 fichiers à la fois."]
    still_sends(gp, cardio)


def test_many_refused_forms_do_not_use_up_the_uploads(practices: tuple[Practice, Practice]) -> None:
    """Some fields after the files (another client's order): each form is refused
    once its file is held, more times than the daemon holds uploads."""
    gp, cardio = practices
    page = gp.visitor()
    token = page.csrf("/compose")
    for _ in range(MAX_OPEN + 1):
        answer = page.post_multipart(
            f"/compose?csrf={token}",
            {"recipient": cardio.peer_id},
            [("a.txt", b"a", "text/plain")],
            Accept="application/json",
            after={**LETTER, "patient_birthdate": "1984-13-40"},
        )
        assert answer.status == 400
        assert "n'est pas une date qui existe" in json.loads(answer.body)["problems"][0]
    still_sends(gp, cardio)


def test_a_form_abandoned_part_way_releases_its_uploads(
    practices: tuple[Practice, Practice],
) -> None:
    """The person closes the tab while the second file is on its way."""
    gp, cardio = practices
    page = gp.visitor()
    token = page.csrf("/compose")
    head, first = _form_start(page, {**LETTER, "recipient": cardio.peer_id})
    base = urlsplit(page.base)
    with socket.create_connection((base.hostname or "", base.port or 80), timeout=10) as sock:
        sock.sendall(head(f"/compose?csrf={token}", 10_000_000) + first)
        for _ in range(100):  # the second file on its way, until the first one is held
            sock.sendall(b"y" * 65536)
            if held(gp):
                break
            time.sleep(0.05)
        assert held(gp)
    # the tab is closed
    wait_until(lambda: held(gp) == [], 20)
    still_sends(gp, cardio)


def test_a_refused_request_drops_the_uploads_it_names(
    practices: tuple[Practice, Practice],
) -> None:
    gp, cardio = practices
    client = gp.daemon.client
    refusals: tuple[dict[str, object], ...] = (
        {"to": [cardio.peer_id], "kind": "telegram"},
        {"to": []},
        {"to": ["nobody known"]},
    )
    for body in refusals:
        upload = _upload(gp)
        with pytest.raises(PliError):
            client.post("/v1/documents", {**body, "files": [{"upload": upload}]})
        assert held(gp) == [], body
    upload = _upload(gp)
    with pytest.raises(BadInput):  # the other file cannot be sent: both are refused
        client.post(
            "/v1/documents",
            {"to": cardio.peer_id, "files": [{"upload": upload}, {"path": "relative.txt"}]},
        )
    assert held(gp) == []


def test_an_upload_is_released_by_its_id(practices: tuple[Practice, Practice]) -> None:
    gp, _ = practices
    client = gp.daemon.client
    upload = _upload(gp)
    assert client.delete(f"/v1/uploads/{upload}") == {"upload": upload, "released": True}
    assert held(gp) == []
    assert client.delete(f"/v1/uploads/{upload}") == {"upload": upload, "released": False}
    for wrong in ("..%2F..%2Fconfig.toml", "0" * 31, "Z" * 32):
        with pytest.raises(BadInput):
            client.delete(f"/v1/uploads/{wrong}")
    assert (gp.daemon.home / "config.toml").exists()


def _upload(practice: Practice) -> str:
    from p2p.cli.client import UnixHTTPConnection

    connection = UnixHTTPConnection(practice.daemon.home / "api.sock")
    try:
        connection.request("POST", "/v1/uploads", body=b"held bytes")
        return str(json.loads(connection.getresponse().read())["upload"])
    finally:
        connection.close()


def _form_start(page: Visitor, fields: dict[str, str]) -> tuple[Callable[[str, int], bytes], bytes]:
    """A multipart form's request line and headers (for a declared length), and its
    fields, one whole file and the head of a second one."""
    boundary = "pliabandoned"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    for name, content in (("first.txt", b"first\r\n"), ("second.txt", b"")):
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{name}"\r\nContent-Type: text/plain\r\n\r\n'.encode()
            + content
        )
    cookie = "; ".join(f"{k}={v}" for k, v in page.cookies.items())

    def head(path: str, length: int) -> bytes:
        return (
            f"POST {path} HTTP/1.1\r\nHost: {page.host}\r\nOrigin: http://{page.host}\r\n"
            f"Cookie: {cookie}\r\nAccept: application/json\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {length}\r\n\r\n"
        ).encode()

    return head, b"".join(parts)
