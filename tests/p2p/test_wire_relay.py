"""Forward secrecy in transit: two real daemons talk through a TCP relay that records
every byte, and nothing in the recording is the envelope or opens as one.

In pli/1 the envelope travelled in BULK frames outside Noise, so a recording plus a
document key stolen later read the letter. In pli/2 every frame after the handshake
is sealed under keys from the handshake (protocol/frames.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from protocol import (
    DocumentMeta,
    FileEntry,
    LocalIdentity,
    RemoteProtocolError,
    new_document_id,
    open_envelope,
    seal,
)

from .conftest import start_daemon, wait_for
from .test_exchange import delivered, send_file

WINDOW = 32


@dataclass
class Recording:
    """The bytes of every relayed connection, per direction."""

    to_server: list[bytearray] = field(default_factory=list)
    to_client: list[bytearray] = field(default_factory=list)
    #: Flip one bit of the client's bytes at this offset (once), like an active attacker.
    flip_at: int | None = None

    def everything(self) -> bytes:
        return b"".join(bytes(part) for part in (*self.to_server, *self.to_client))


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    log: bytearray,
    recording: Recording | None = None,
) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            start = len(log)
            log += data
            flip = recording.flip_at if recording is not None else None
            if flip is not None and start <= flip < len(log):
                changed = bytearray(data)
                changed[flip - start] ^= 0x01
                data = bytes(changed)
                recording.flip_at = None  # type: ignore[union-attr]
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def relay(target_port: int) -> AsyncIterator[tuple[int, Recording]]:
    """A TCP relay on loopback to ``target_port`` that records both directions."""
    recording = Recording()
    tasks: set[asyncio.Task[None]] = set()

    async def serve(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        up, down = bytearray(), bytearray()
        recording.to_server.append(up)
        recording.to_client.append(down)
        await asyncio.gather(
            _pump(client_reader, server_writer, up, recording),
            _pump(server_reader, client_writer, down),
        )

    def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(serve(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(track, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], recording
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def websocket_payloads(stream: bytes) -> Iterator[bytes]:
    """The (unmasked) payloads of the WebSocket frames after the HTTP upgrade."""
    position = stream.find(b"\r\n\r\n")
    assert position > 0, "no HTTP upgrade in the recording"
    position += 4
    while position + 2 <= len(stream):
        second = stream[position + 1]
        length, position = second & 0x7F, position + 2
        if length in (126, 127):
            size = 2 if length == 126 else 8
            length = int.from_bytes(stream[position : position + size], "big")
            position += size
        mask = b""
        if second & 0x80:
            mask, position = stream[position : position + 4], position + 4
        payload = stream[position : position + length]
        position += length
        if mask:
            payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        yield payload


def opens_anywhere(data: bytes, people: list[LocalIdentity]) -> bool:
    """Whether an envelope that one of ``people`` can open starts at any offset of ``data``."""
    for offset in range(len(data)):
        if data[offset] != 0x50:  # the reader refuses anything else at its first byte
            continue
        for me in people:
            with contextlib.suppress(RemoteProtocolError):
                open_envelope([data[offset:]], me)
                return True
    return False


async def test_relay_records_nothing_of_the_envelope(tmp_path: Path) -> None:
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    try:
        async with relay(b.port) as (relay_port, recording):
            await a.daemon.add_peer(b.daemon.signed_card(), [f"127.0.0.1:{relay_port}"])
            await b.daemon.add_peer(a.daemon.signed_card(), [])
            letter = tmp_path / "lettre.txt"
            letter.write_bytes(os.urandom(150_000))
            doc_id = await send_file(a, b, letter, kind="letter")
            await wait_for(lambda: delivered(a, doc_id), timeout=30)
        envelope = a.daemon.layout.sent_envelope(doc_id).read_bytes()
        assert_recording_is_sealed(recording, envelope, [a.daemon.me, b.daemon.me])
    finally:
        await a.stop()
        await b.stop()


async def test_a_frame_altered_in_transit_closes_the_connection_and_nothing_is_stored(
    tmp_path: Path,
) -> None:
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    try:
        async with relay(b.port) as (relay_port, recording):
            recording.flip_at = 300_000  # inside the envelope's BULK frames
            await a.daemon.add_peer(b.daemon.signed_card(), [f"127.0.0.1:{relay_port}"])
            await b.daemon.add_peer(a.daemon.signed_card(), [])
            scan = tmp_path / "scan.bin"
            scan.write_bytes(os.urandom(2 * 1024 * 1024))
            doc_id = await send_file(a, b, scan, kind="file")
            await wait_for(lambda: recording.flip_at is None)
            await wait_for(lambda: len(recording.to_server) >= 2, timeout=30)  # reconnected
            await wait_for(lambda: delivered(a, doc_id), timeout=30)
        rows = b.daemon.store.inbox()
        assert [row.doc_id for row in rows] == [doc_id]  # stored once, intact
        assert list(b.daemon.layout.quarantine.iterdir()) == []
    finally:
        await a.stop()
        await b.stop()


def assert_recording_is_sealed(
    recording: Recording, envelope: bytes, people: list[LocalIdentity]
) -> None:
    """(a) no 32-byte window of ``envelope``, (b) no envelope that ``people`` open.

    Both on the raw bytes and on the WebSocket payloads with the client's masking
    removed (masking is no protection: its key travels in the frame).
    """
    everything = recording.everything()
    assert len(everything) > len(envelope)  # the letter did go through the relay
    streams = [bytes(part) for part in (*recording.to_server, *recording.to_client) if part]
    payloads = [b"".join(websocket_payloads(stream)) for stream in streams]
    windows = {envelope[i : i + WINDOW] for i in range(len(envelope) - WINDOW + 1)}
    for data in (everything, *payloads):
        assert not any(data[i : i + WINDOW] in windows for i in range(len(data) - WINDOW + 1)), (
            "a 32-byte window of the stored envelope crossed the wire in the clear"
        )
        assert not opens_anywhere(data, people)


def person(n: int) -> LocalIdentity:
    return LocalIdentity.from_secrets(
        bytes([n]) * 32, bytes([n + 1]) * 32, bytes([n + 2]) * 32, not_after=2_000_000_000
    )


@pytest.mark.parametrize("who", ["sender", "recipient"])
def test_the_check_finds_a_cleartext_envelope(who: str) -> None:
    """The check itself: an envelope relayed in the clear (as pli/1 did) is caught."""
    alice, bob = person(10), person(20)
    meta = DocumentMeta(
        new_document_id(), 1, "letter", alice.public, (bob.public,), (FileEntry("a.txt", 5000),)
    )
    envelope = b"".join(seal(alice, [bob.card(1, name="Bob")], meta, [os.urandom(5000)]))
    upgrade = b"GET / HTTP/1.1\r\n\r\n"
    frame = b"\x82\x7f" + len(envelope).to_bytes(8, "big") + envelope
    me = alice if who == "sender" else bob
    assert opens_anywhere(b"".join(websocket_payloads(upgrade + frame)), [me])
    with pytest.raises(AssertionError):
        assert_recording_is_sealed(Recording([bytearray(upgrade + frame)], []), envelope, [me])
