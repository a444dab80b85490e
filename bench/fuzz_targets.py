"""The decoders ``bench.fuzz`` drives, each with seeds of valid input.

A target takes the fuzzer's bytes and feeds them to one decoder, or to one
protocol object in a chosen state (a handshake waiting for message 2, a
pairing waiting for the invitee's reply), as the daemon would. Keys are
pinned so that a finding replays exactly.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable

from protocol import (
    PROLOGUE,
    DocumentMeta,
    EnvelopeReader,
    Evidence,
    FileEntry,
    FingerprintPairing,
    FingerprintRole,
    FrameOpener,
    FrameSealer,
    Handshake,
    LocalIdentity,
    Pairing,
    PairingCode,
    PairingRole,
    PairingSend,
    ProfileCard,
    Receipt,
    RemotePeer,
    Revocation,
    Role,
    SentDocument,
    StaticCert,
    accept_later_receipt,
    codec,
    mailbox,
    messages,
    new_document_id,
    normalize_fingerprint,
    open_envelope,
    parse_code,
    seal,
)

NOW = 1_764_000_000
FRAME_KEY = bytes(range(32))
Target = Callable[[bytes], object]


def person(n: int) -> LocalIdentity:
    return LocalIdentity.from_secrets(
        bytes([n]) * 32, bytes([n + 1]) * 32, bytes([n + 2]) * 32, not_after=2_000_000_000
    )


ALICE, BOB = person(10), person(20)


def _trust_anyone(remote: RemotePeer) -> None:
    """The handshake checks certificates itself; the fuzz targets trust any identity."""


def _handshake(role: Role, me: LocalIdentity, ephemeral: int) -> Handshake:
    return Handshake(
        role,
        me,
        _trust_anyone,
        now=NOW,
        prologue=PROLOGUE,
        ephemeral_secret=bytes([ephemeral]) * 32,
    )


def _noise_messages() -> tuple[bytes, bytes, bytes]:
    alice, bob = _handshake(Role.INITIATOR, ALICE, 1), _handshake(Role.RESPONDER, BOB, 2)
    m1 = alice.initiate()
    m2 = bob.receive(m1)
    assert m2 is not None
    m3 = alice.receive(m2)
    assert m3 is not None
    return m1, m2, m3


def _noise_targets() -> dict[str, tuple[Target, list[bytes]]]:
    m1, m2, m3 = _noise_messages()

    def message_1(data: bytes) -> object:
        return _handshake(Role.RESPONDER, BOB, 2).receive(data)

    def message_2(data: bytes) -> object:
        alice = _handshake(Role.INITIATOR, ALICE, 1)
        alice.initiate()
        return alice.receive(data)

    def message_3(data: bytes) -> object:
        bob = _handshake(Role.RESPONDER, BOB, 2)
        bob.receive(m1)
        return bob.receive(data)

    return {
        "noise.message_1": (message_1, [m1]),
        "noise.message_2": (message_2, [m2]),
        "noise.message_3": (message_3, [m3]),
    }


def _envelope() -> bytes:
    meta = DocumentMeta(
        document_id=new_document_id(),
        created_at=NOW,
        kind="letter",
        sender=ALICE.public,
        recipients=(BOB.public,),
        files=(FileEntry("lettre.txt", 300),),
        metadata={"patient": "DUPONT, Jeanne", "subject": "Avis"},
    )
    card = BOB.card(1, name="Dr Bob")
    return b"".join(seal(ALICE, [card], meta, [b"Cher confrere, " * 20]))


def _envelope_targets() -> dict[str, tuple[Target, list[bytes]]]:
    envelope = _envelope()
    opened = open_envelope([envelope], BOB)
    evidence = Evidence.of(opened).to_wire()

    def reader(data: bytes) -> object:
        envelope_reader = EnvelopeReader(BOB)
        events = envelope_reader.feed(data)
        envelope_reader.close()
        return events

    def evidence_verify(data: bytes) -> object:
        return Evidence.from_wire(data).verify()

    return {
        "envelope.reader": (reader, [envelope]),
        "envelope.inner_header": (DocumentMeta.from_wire, [opened.inner_header]),
        "evidence.from_wire+verify": (evidence_verify, [evidence]),
    }


def _wire_targets() -> dict[str, tuple[Target, list[bytes]]]:
    card = ALICE.card(3, name="Dr Alice", rpps="10003456789")
    receipt = Receipt.create(
        BOB.identity,
        document_id=bytes(16),
        envelope_digest=bytes(32),
        sender=ALICE.public,
        now=NOW,
    )
    frame = messages.encode(messages.Offer(bytes(16), 1234))
    fingerprint = ALICE.public.peer_id.fingerprint
    revocation = Revocation.issue(ALICE.identity, now=NOW)
    control_frame = bytes(FrameSealer(FRAME_KEY).control(frame))
    bulk_frame = bytes(FrameSealer(FRAME_KEY).seal(b"\x02" + bytes(64)))

    def frame_open(data: bytes) -> object:
        return FrameOpener(FRAME_KEY).open(data)

    def latin1(parse: Callable[[str], object]) -> Target:
        return lambda data: parse(data.decode("latin-1"))

    return {
        "codec.unpack": (codec.unpack, [codec.pack({"a": [1, b"x", {"b": None}]})]),
        "messages.decode": (messages.decode, [frame]),
        "frames.open": (frame_open, [control_frame, bulk_frame]),
        "identity.card": (ProfileCard.from_wire, [card.sign(ALICE.identity)]),
        "identity.static_cert": (StaticCert.from_wire, [ALICE.static_cert.to_wire()]),
        "identity.fingerprint": (latin1(normalize_fingerprint), [fingerprint.encode()]),
        "receipts.from_wire": (Receipt.from_wire, [receipt.to_wire()]),
        "receipt_layers.accept": (_later_receipt_target(), [_later_receipt().to_wire()]),
        "pairing.parse_code": (latin1(parse_code), [b"314-1592653"]),
        "revocation.from_wire": (Revocation.from_wire, [revocation.to_wire()]),
        "revocation.from_text": (latin1(Revocation.from_text), [revocation.to_text().encode()]),
        **_mailbox_targets(),
    }


def _later_receipt() -> Receipt:
    return Receipt.create(
        BOB.identity,
        document_id=bytes(16),
        envelope_digest=bytes(32),
        sender=ALICE.public,
        status="integrated",
        now=NOW,
    )


def _later_receipt_target() -> Target:
    """ALICE checks a later receipt from BOB about a document she sent him."""
    sent = SentDocument(bytes(16), bytes(32), BOB.public, {})

    def accept(data: bytes) -> object:
        return accept_later_receipt(data, peer=BOB.public, me=ALICE.public, sent=sent, now=NOW)

    return accept


def _mailbox_targets() -> dict[str, tuple[Target, list[bytes]]]:
    """A mailbox message (sealed for the pair ALICE -> BOB) and the frame inside one."""
    keys = mailbox.PairKeys.derive(BOB, ALICE.card(1, name="Dr Alice"))
    chunk = mailbox.Chunk(bytes(16), 0, 5, b"hello")
    plain = b"C" + bytes(16) + (0).to_bytes(8, "big") + (5).to_bytes(8, "big") + b"hello"
    sealed = bytes(mailbox.encode_frame(keys.incoming, chunk, nonce=bytes(mailbox.NONCE_SIZE)))
    return {
        "mailbox.parse_frame": (
            mailbox.parse_frame,
            [plain, b"R" + bytes(16) + b"receipt", b"K" + bytes(16) + b"card"],
        ),
        "mailbox.decode_frame": (lambda data: mailbox.decode_frame(keys.incoming, data), [sealed]),
    }


def _pairing_targets() -> dict[str, tuple[Target, list[bytes]]]:
    code = parse_code("314-1592653")

    def pairing(role: PairingRole, me: LocalIdentity, seed: bytes) -> Pairing:
        counter = itertools.count()

        def entropy(n: int) -> bytes:
            return hashlib.shake_256(seed + next(counter).to_bytes(8, "big")).digest(n)

        return Pairing(
            role,
            code,
            me,
            me.card(1, name="Dr X").sign(me.identity),
            bytes(32),
            now=NOW,
            my_addresses=(),
            entropy=entropy,
        )

    def host() -> Pairing:
        return pairing(PairingRole.INVITER, ALICE, b"host")

    def guest() -> Pairing:
        return pairing(PairingRole.INVITEE, BOB, b"guest")

    g, h = guest(), host()
    first = g.start()
    second = h.receive(first)
    assert second is not None
    third = g.receive(second)
    assert third is not None

    def at_host(data: bytes) -> object:
        return host().receive(data)

    def at_guest(data: bytes) -> object:
        player = guest()
        player.start()
        return player.receive(data)

    def at_host_after_message_1(data: bytes) -> object:
        player = host()
        player.receive(first)
        return player.receive(data)

    return {
        "pairing.at_inviter": (at_host, [first]),
        "pairing.at_inviter_2": (at_host_after_message_1, [third]),
        "pairing.at_invitee": (at_guest, [second]),
    }


def _fingerprint_pairing_targets() -> dict[str, tuple[Target, list[bytes]]]:
    def side(
        role: FingerprintRole, me: LocalIdentity, other: LocalIdentity | None, ephemeral: int
    ) -> FingerprintPairing:
        return FingerprintPairing(
            role,
            me,
            card=me.card(1, name="Dr X").sign(me.identity),
            discovery_secret=bytes(32),
            addresses=(),
            now=NOW,
            ephemeral_secret=bytes([ephemeral]) * 32,
            fingerprint=other.public.peer_id.fingerprint if other else None,
        )

    def requester() -> FingerprintPairing:
        return side(FingerprintRole.REQUESTER, ALICE, BOB, 3)

    def responder() -> FingerprintPairing:
        return side(FingerprintRole.RESPONDER, BOB, None, 4)

    def frames(events: list[object]) -> list[bytes]:
        return [event.data for event in events if isinstance(event, PairingSend)]

    r, s = requester(), responder()
    (hello,) = frames(list(r.start()))
    (second,) = frames(list(s.receive(hello)))
    third, request = frames(list(r.receive(second)))

    def at_responder(data: bytes) -> object:
        return responder().receive(data)

    def at_requester(data: bytes) -> object:
        player = requester()
        player.start()
        return player.receive(data)

    def at_responder_3(data: bytes) -> object:
        player = responder()
        player.receive(hello)
        return player.receive(data)

    def at_responder_4(data: bytes) -> object:
        player = responder()
        player.receive(hello)
        player.receive(third)
        return player.receive(data)

    return {
        "fingerprint_pairing.message_1": (at_responder, [hello]),
        "fingerprint_pairing.message_2": (at_requester, [second]),
        "fingerprint_pairing.message_3": (at_responder_3, [third]),
        "fingerprint_pairing.request": (at_responder_4, [request]),
    }


def build() -> dict[str, tuple[Target, list[bytes]]]:
    _ = PairingCode  # the type of ``parse_code``'s result, fuzzed through it
    return {
        **_wire_targets(),
        **_noise_targets(),
        **_envelope_targets(),
        **_pairing_targets(),
        **_fingerprint_pairing_targets(),
    }
