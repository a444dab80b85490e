"""A member leaves garbage in B's mailbox with real credentials: B refuses it.

Oversized messages are refused by the server itself; what it stores (garbage,
truncated or re-sealed frames, a chunk or receipt that does not verify, odd
headers) B's daemon opens, refuses with the protocol's remote error and
terminates, so it is never delivered again; nothing of it is stored or logged,
and the good letter left after it arrives.
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest
from nacl import bindings

from p2p.cli.practice import wait_until
from p2p.services.mailbox.server_config import MAX_PAYLOAD, subject
from p2p.storage import keystore, mailboxes
from protocol import ProfileCard
from protocol import mailbox as frames
from tests.p2p.natsserver import mailbox_pair, messages_in

pytestmark = pytest.mark.slow

MARK = b"Dupont-Garbage-Marker"


def hostile(direction: frames.Direction) -> list[tuple[bytes, dict[str, str] | None]]:
    """What a member with real credentials but bad intentions (or bugs) publishes."""
    doc = os.urandom(16)

    def sealed(plain: bytes) -> bytes:
        nonce = os.urandom(frames.NONCE_SIZE)  # sealed by the pair, as encode_frame does
        return nonce + bindings.crypto_aead_aegis256_encrypt(plain, None, nonce, direction.key)

    good = bytes(
        frames.encode_frame(
            direction,
            frames.Chunk(doc, 0, 300, MARK * 14 + bytes(6)),
            nonce=os.urandom(frames.NONCE_SIZE),
        )
    )
    return [
        (MARK * 20, None),  # garbage
        (b"", None),  # empty
        (good[: len(good) // 2], None),  # truncated
        (good[:-1] + bytes([good[-1] ^ 1]), None),  # one bit changed
        (sealed(b"X" + doc + MARK), None),  # an unknown kind
        (sealed(b"C" + doc + (0).to_bytes(8, "big") + (0).to_bytes(8, "big")), None),
        (sealed(b"R" + doc + MARK), None),  # a receipt that is none
        (good, {"Nats-Msg-Id": "../../x", "Content-Type": "text/html"}),  # bytes no envelope
    ]


async def publish_all(
    url: str, seed: str, b_box: str, a_box: str, direction: frames.Direction
) -> None:
    async def quiet(*_args: object) -> None:
        pass

    client = await nats.connect(url, nkeys_seed_str=seed, allow_reconnect=False, error_cb=quiet)
    try:
        js = client.jetstream(timeout=5)
        target = subject(b_box, a_box)
        with pytest.raises(nats.js.errors.APIError, match="maximum"):  # the stream's limit
            await js.publish(target, MARK * (frames.MAX_FRAME // len(MARK) + 1))
        with pytest.raises(nats.errors.MaxPayloadError):  # the server's max_payload
            await js.publish(target, bytes(MAX_PAYLOAD + 1))
        for data, headers in hostile(direction):
            await js.publish(target, data, headers=headers)
    finally:
        await client.close()


def test_garbage_in_the_mailbox_is_refused_and_good_letters_still_come(tmp_path: Path) -> None:
    with mailbox_pair(tmp_path) as (a, b, server):
        b_card = ProfileCard.from_wire(base64.b64decode(b.identity()["card"]))
        a_keys = keystore.load(a.home)
        direction = frames.PairKeys.derive(a_keys.identity, b_card).outgoing
        b_box = frames.box_name(b_card.identity)
        a_box = frames.box_name(a_keys.identity.public)
        b_seed = mailboxes.nkey_seed(b.home)
        b.stop()
        asyncio.run(publish_all(server.url, mailboxes.nkey_seed(a.home), b_box, a_box, direction))
        assert messages_in(server, b_seed) == len(hostile(direction))
        letter = tmp_path / "lettre.txt"
        letter.write_text("Cher confrère, une lettre après les déchets.\n", encoding="utf-8")
        doc_id = a.send(b, letter, kind="letter")
        wait_until(lambda: messages_in(server, b_seed) == len(hostile(direction)) + 1, timeout=30)
        a.stop()  # the letter can only come through the mailbox

        b.start()
        wait_until(lambda: b.inbox_ids() == [doc_id], timeout=30)
        wait_until(lambda: messages_in(server, b_seed) == 0, timeout=30)  # none comes again
        assert b.inbox_ids() == [doc_id]
        logs = b.logs()
        assert MARK.decode() not in logs
        assert "Traceback" not in logs
        assert "failed its check" in logs
        received = b.home / "documents" / "received"
        stored = [p for p in received.rglob("*") if p.is_file()] if received.exists() else []
        assert all(MARK not in p.read_bytes() for p in stored)
