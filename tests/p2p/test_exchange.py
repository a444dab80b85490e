"""Two in-process daemons on loopback exchange documents with real crypto and sockets."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import aiohttp

from protocol import PublicIdentity, Receipt

from .conftest import Running, wait_for


def delivered(sender: Running, doc_id: str) -> bool:
    rows = [r for r in sender.daemon.store.outbox() if r.doc_id == doc_id]
    return bool(rows) and all(r.state == "delivered" for r in rows)


async def send_file(sender: Running, recipient: Running, path: Path, **extra: object) -> str:
    status, body = await sender.api(
        "POST",
        "/v1/documents",
        {"to": [recipient.daemon.me.peer_id.hex], "files": [{"path": str(path)}], **extra},
    )
    assert status == 202, body
    doc_id: str = body["id"]
    return doc_id


async def fetch(recipient: Running, doc_id: str, index: int = 0) -> bytes:
    connector = aiohttp.UnixConnector(path=str(recipient.daemon.config.api_socket))
    url = f"http://pli/v1/documents/{doc_id}/files/{index}"
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url) as response,
    ):
        assert response.status == 200
        return await response.read()


async def test_letter_both_ways(two: tuple[Running, Running], tmp_path: Path) -> None:
    a, b = two
    letter = tmp_path / "lettre.txt"
    letter.write_bytes(os.urandom(5000))
    for sender, recipient in ((a, b), (b, a)):
        doc_id = await send_file(
            sender, recipient, letter, kind="letter", metadata={"subject": "Avis cardiologique"}
        )
        await wait_for(lambda s=sender, d=doc_id: delivered(s, d))  # type: ignore[misc]
        assert await fetch(recipient, doc_id) == letter.read_bytes()
        (row,) = [r for r in sender.daemon.store.outbox() if r.doc_id == doc_id]
        assert row.receipt is not None
        receipt = Receipt.from_wire(row.receipt)
        receipt.verify(
            recipient=recipient.daemon.me.public,
            sender=sender.daemon.me.public,
            document_id=bytes.fromhex(doc_id),
            envelope_digest=row.digest,
            now=receipt.time,
        )
        assert PublicIdentity(recipient.daemon.me.public.key) == receipt.recipient
        status, inbox = await recipient.api("GET", "/v1/inbox")
        assert status == 200
        assert [e["metadata"]["subject"] for e in inbox if e["id"] == doc_id] == [
            "Avis cardiologique"
        ]


async def test_large_file_is_byte_identical(two: tuple[Running, Running], tmp_path: Path) -> None:
    a, b = two
    big = tmp_path / "scan.bin"
    with open(big, "wb") as handle:
        for _ in range(20):
            handle.write(os.urandom(1024 * 1024))
    doc_id = await send_file(a, b, big, kind="file")
    await wait_for(lambda: delivered(a, doc_id), timeout=60)
    assert (
        hashlib.sha256(await fetch(b, doc_id)).digest() == hashlib.sha256(big.read_bytes()).digest()
    )


async def test_hourly_rekey_keeps_the_session_working(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    letter = tmp_path / "lettre.txt"
    letter.write_text("avant\n")
    first = await send_file(a, b, letter)
    await wait_for(lambda: delivered(a, first))
    channel = a.daemon.transport.channel(b.daemon.me.peer_id)
    assert channel is not None
    channel._rekey_after = 0.0  # the hour has passed: the next message rekeys
    letter.write_text("après\n")
    second = await send_file(a, b, letter)
    await wait_for(lambda: delivered(a, second))
    assert a.daemon.transport.channel(b.daemon.me.peer_id) is channel  # same session
    assert await fetch(b, second) == b"apr\xc3\xa8s\n"


async def test_hourly_rekey_also_happens_between_bulk_frames(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    """A transfer longer than the hour rekeys between its envelope frames too."""
    a, b = two
    warm = tmp_path / "mot.txt"
    warm.write_text("bonjour\n")
    first = await send_file(a, b, warm)
    await wait_for(lambda: delivered(a, first))
    channel = a.daemon.transport.channel(b.daemon.me.peer_id)
    assert channel is not None
    scan = tmp_path / "scan.bin"
    scan.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    channel._rekey_after = -1.0  # every frame finds its key "an hour old"
    doc_id = await send_file(a, b, scan)
    await wait_for(lambda: delivered(a, doc_id), timeout=30)
    assert channel.rekeys >= 5  # the offer and each of the 4 envelope frames
    assert a.daemon.transport.channel(b.daemon.me.peer_id) is channel  # same session
    assert await fetch(b, doc_id) == scan.read_bytes()
