"""pli's Noise XX handshake and transport sessions: behaviour, attacks and fuzzing.

Two ``Handshake`` objects are wired to each other in memory (like h11's
``ConnectionPair``); no event loop, no socket. Known-answer and interop checks
against other implementations live in ``test_noise_vectors.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    PROLOGUE,
    AuthenticationFailed,
    FrameTooLarge,
    Handshake,
    LocalIdentity,
    LocalProtocolError,
    MalformedMessage,
    PeerId,
    RemotePeer,
    RemoteProtocolError,
    Role,
    Session,
    StaticCert,
    codec,
    limits,
)
from protocol.noise import INITIATOR, MAX_PLAINTEXT, RESPONDER, _dh, _encrypt, _HandshakeState
from tests.fuzzing import check_parses_or_refuses

NOW = 1_700_000_000
NOT_AFTER = NOW + 3600


def make_local(n: int, *, not_after: int = NOT_AFTER) -> LocalIdentity:
    """A pinned identity: seed, static and doc secrets derived from ``n``."""
    return LocalIdentity.from_secrets(
        bytes([n]) * 32, bytes([n + 1]) * 32, bytes([n + 2]) * 32, not_after=not_after
    )


ALICE = make_local(10)
BOB = make_local(20)
CAROL = make_local(30)
E_ALICE = bytes(range(100, 132))
E_BOB = bytes(range(140, 172))

#: X25519 points of small order (u = 0, u = 1 and an order-8 point): any scalar
#: times one of them gives the all-zero shared secret.
LOW_ORDER_POINTS = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
]


def accept(remote: RemotePeer) -> None:
    """A ``verify_remote`` that trusts everyone."""


def refuse(remote: RemotePeer) -> None:
    raise AuthenticationFailed()


def handshakes(
    initiator: LocalIdentity = ALICE,
    responder: LocalIdentity = BOB,
    *,
    i_verify: Callable[[RemotePeer], None] = accept,
    r_verify: Callable[[RemotePeer], None] = accept,
    expected: PeerId | None = None,
    r_prologue: bytes = PROLOGUE,
    now: int = NOW,
    pinned: bool = True,
) -> tuple[Handshake, Handshake]:
    alice = Handshake(
        Role.INITIATOR,
        initiator,
        i_verify,
        now=now,
        expected=expected,
        ephemeral_secret=E_ALICE if pinned else None,
    )
    bob = Handshake(
        Role.RESPONDER,
        responder,
        r_verify,
        now=now,
        prologue=r_prologue,
        ephemeral_secret=E_BOB if pinned else None,
    )
    return alice, bob


def run(alice: Handshake, bob: Handshake) -> tuple[bytes, bytes, bytes]:
    """Drive a full handshake; return messages 1, 2 and 3."""
    m1 = alice.initiate()
    m2 = bob.receive(m1)
    assert m2 is not None
    m3 = alice.receive(m2)
    assert m3 is not None
    assert bob.receive(m3) is None
    return m1, m2, m3


def sessions() -> tuple[Session, Session]:
    alice, bob = handshakes(pinned=False)
    run(alice, bob)
    return alice.session(), bob.session()


def flipped(data: bytes, position: int) -> bytes:
    out = bytearray(data)
    out[position] ^= 0x01
    return bytes(out)


def raw_peer(role: Role, local: LocalIdentity = BOB) -> _HandshakeState:
    """A Noise XX peer that follows the pattern but sends whatever payload we like."""
    return _HandshakeState(
        "XX",
        initiator=role is INITIATOR,
        prologue=PROLOGUE,
        static=local.static_secret,
    )


def identity_payload(local: LocalIdentity) -> bytes:
    return codec.pack({"id": local.public.key, "cert": local.static_cert.to_wire()})


# --- a good handshake ------------------------------------------------------------


def test_prologue_names_the_supported_versions() -> None:
    assert PROLOGUE == b"pli/2\x02"


def test_handshake_authenticates_both_sides() -> None:
    seen: list[tuple[str, RemotePeer]] = []
    alice, bob = handshakes(
        i_verify=lambda remote: seen.append(("alice", remote)),
        r_verify=lambda remote: seen.append(("bob", remote)),
        expected=BOB.peer_id,
    )
    m1, m2, m3 = run(alice, bob)
    payload = len(identity_payload(BOB))
    assert (len(m1), len(m2), len(m3)) == (32, 32 + 48 + payload + 16, 48 + payload + 16)
    assert alice.complete
    assert bob.complete
    assert alice.handshake_hash == bob.handshake_hash
    assert len(alice.handshake_hash) == 64
    assert [who for who, _ in seen] == ["alice", "bob"]
    assert seen[0][1].peer_id == BOB.peer_id
    assert seen[0][1].static_public == BOB.static_public
    assert seen[1][1].identity == ALICE.public
    assert seen[1][1].cert == ALICE.static_cert
    a, b = alice.session(), bob.session()
    assert a is alice.session()
    assert (a.is_initiator, b.is_initiator) == (True, False)
    assert a.remote.peer_id == BOB.peer_id
    assert b.remote.peer_id == ALICE.peer_id
    assert a.handshake_hash == b.handshake_hash == alice.handshake_hash


def test_pinned_ephemerals_give_a_pinned_transcript() -> None:
    first = run(*handshakes())
    assert run(*handshakes()) == first
    assert run(*handshakes(pinned=False)) != first  # fresh ephemerals otherwise


def test_misuse_is_a_local_error() -> None:
    alice, bob = handshakes()
    with pytest.raises(LocalProtocolError):
        bob.initiate()  # responders do not start
    with pytest.raises(LocalProtocolError):
        alice.receive(b"x" * 100)  # initiator must send message 1 first
    for premature in (alice.session, lambda: alice.handshake_hash):
        with pytest.raises(LocalProtocolError):
            premature()
    m1 = alice.initiate()
    with pytest.raises(LocalProtocolError):
        alice.initiate()
    with pytest.raises(LocalProtocolError):
        bob.receive("text")  # type: ignore[arg-type]
    m2 = bob.receive(m1)
    assert m2 is not None
    m3 = alice.receive(m2)
    assert m3 is not None
    with pytest.raises(LocalProtocolError):
        alice.receive(m2)  # complete: nothing more to receive
    assert bob.receive(m3) is None
    with pytest.raises(LocalProtocolError):
        bob.receive(m3)
    with pytest.raises(LocalProtocolError):
        Handshake(INITIATOR, ALICE, accept, now=NOW, ephemeral_secret=b"short")


def test_handshake_is_dead_after_an_error() -> None:
    alice, bob = handshakes()
    m1 = alice.initiate()
    m2 = bob.receive(m1)
    assert m2 is not None
    with pytest.raises(AuthenticationFailed):
        alice.receive(flipped(m2, 40))
    with pytest.raises(LocalProtocolError):
        alice.receive(m2)  # even the genuine message is no longer accepted
    with pytest.raises(LocalProtocolError):
        alice.session()
    assert not alice.complete


def test_message_1_must_have_an_empty_payload() -> None:
    attacker = raw_peer(INITIATOR, ALICE)
    _, bob = handshakes()
    with pytest.raises(MalformedMessage):
        bob.receive(attacker.write_message(b"hello"))


@pytest.mark.parametrize("size", [0, 1, 31])
def test_short_message_1_is_malformed(size: int) -> None:
    _, bob = handshakes()
    with pytest.raises(MalformedMessage):
        bob.receive(bytes(size))


def test_oversized_handshake_message_is_refused() -> None:
    _, bob = handshakes()
    with pytest.raises(FrameTooLarge):
        bob.receive(bytes(limits.MAX_NOISE_MESSAGE + 1))
    with pytest.raises(LocalProtocolError):
        bob.receive(bytes(32))


@pytest.mark.parametrize("cut", [1, 16, 48, 80])
def test_truncated_message_2_and_3_are_refused(cut: int) -> None:
    alice, bob = handshakes()
    m1, m2, m3 = run(*handshakes())
    alice.initiate()
    with pytest.raises(RemoteProtocolError):
        alice.receive(m2[:-cut])
    bob.receive(m1)
    with pytest.raises(RemoteProtocolError):
        bob.receive(m3[:-cut])


# --- attacks -----------------------------------------------------------------------


def test_initiator_aborts_before_message_3_for_an_unexpected_responder() -> None:
    called: list[RemotePeer] = []
    alice, carol = handshakes(responder=CAROL, expected=BOB.peer_id, i_verify=called.append)
    m2 = carol.receive(alice.initiate())
    assert m2 is not None
    with pytest.raises(AuthenticationFailed):
        alice.receive(m2)
    assert not alice.complete
    assert called == []
    with pytest.raises(LocalProtocolError):
        alice.session()


@pytest.mark.parametrize("side", ["initiator", "responder"])
def test_reflected_static_key_is_refused(side: str) -> None:
    """A peer presenting our own static key (a mirror, or a copied key) is refused."""
    clone = LocalIdentity(  # another identity that certified our static key
        identity=CAROL.identity,
        static_secret=ALICE.static_secret,
        static_cert=StaticCert.issue(CAROL.identity, ALICE.static_public, NOT_AFTER),
        doc_secret=CAROL.doc_secret,
    )
    for mirror in (ALICE, clone):
        if side == "initiator":
            alice, bob = handshakes(responder=mirror)
            m2 = bob.receive(alice.initiate())
            assert m2 is not None
            with pytest.raises(AuthenticationFailed):
                alice.receive(m2)
        else:  # a raw initiator: a real Handshake would refuse us first
            initiator = raw_peer(INITIATOR, mirror)
            _, bob = handshakes(responder=ALICE)
            m2 = bob.receive(initiator.write_message(b""))
            assert m2 is not None
            initiator.read_message(m2)
            with pytest.raises(AuthenticationFailed):
                bob.receive(initiator.write_message(identity_payload(mirror)))
            assert not bob.complete


def test_replayed_handshake_messages_cannot_complete_a_session() -> None:
    m1, m2, m3 = run(*handshakes())  # recorded by an eavesdropper
    # Message 1 replayed to a fresh responder: it answers, but only the real
    # initiator's ephemeral secret could finish, and the recorded message 3 was
    # made for another responder ephemeral.
    _, bob2 = handshakes(pinned=False)
    assert bob2.receive(m1) is not None
    with pytest.raises(AuthenticationFailed):
        bob2.receive(m3)
    assert not bob2.complete
    # The recorded message 3 spliced into a new genuine handshake.
    alice3, bob3 = handshakes(pinned=False)
    bob3.receive(alice3.initiate())
    with pytest.raises(AuthenticationFailed):
        bob3.receive(m3)
    # A recorded message 2 replayed to a new initiator.
    alice4, _ = handshakes(pinned=False)
    alice4.initiate()
    with pytest.raises(AuthenticationFailed):
        alice4.receive(m2)


@pytest.mark.parametrize("prologue", [b"pli/1\x01", b"pli/2", b"pli/2\x02\x01", b"pli/2\x01", b""])
def test_changed_prologue_fails_at_message_2(prologue: bytes) -> None:
    alice, bob = handshakes(r_prologue=prologue)
    m2 = bob.receive(alice.initiate())
    assert m2 is not None
    with pytest.raises(AuthenticationFailed):
        alice.receive(m2)


def test_initiator_verify_remote_refusal_sends_nothing() -> None:
    alice, bob = handshakes(i_verify=refuse)
    m2 = bob.receive(alice.initiate())
    assert m2 is not None
    with pytest.raises(AuthenticationFailed):
        alice.receive(m2)
    assert not alice.complete
    with pytest.raises(LocalProtocolError):
        alice.receive(m2)


def test_responder_verify_remote_refusal_gives_no_session() -> None:
    def not_paired(remote: RemotePeer) -> None:
        raise RemoteProtocolError("not paired", code="not-paired")

    alice, bob = handshakes(r_verify=not_paired)
    m2 = bob.receive(alice.initiate())
    assert m2 is not None
    m3 = alice.receive(m2)
    assert m3 is not None
    with pytest.raises(RemoteProtocolError, match="not paired"):
        bob.receive(m3)
    assert not bob.complete
    with pytest.raises(LocalProtocolError):
        bob.session()


def test_every_tampered_byte_of_message_1_fails_at_message_2() -> None:
    m1, _, _ = run(*handshakes())
    for position in range(len(m1)):
        alice, bob = handshakes()
        alice.initiate()
        m2 = bob.receive(flipped(m1, position))
        assert m2 is not None
        with pytest.raises(AuthenticationFailed):
            alice.receive(m2)


def test_every_tampered_byte_of_messages_2_and_3_is_refused() -> None:
    m1, m2, m3 = run(*handshakes())
    for position in range(len(m2)):
        alice, _ = handshakes()
        alice.initiate()
        with pytest.raises(AuthenticationFailed):
            alice.receive(flipped(m2, position))
    for position in range(len(m3)):
        _, bob = handshakes()
        bob.receive(m1)
        with pytest.raises(AuthenticationFailed):
            bob.receive(flipped(m3, position))


@pytest.mark.parametrize("side", ["initiator", "responder"])
def test_expired_certificate_is_refused(side: str) -> None:
    expired = make_local(40, not_after=NOW - 1)
    if side == "initiator":
        alice, bob = handshakes(responder=expired)
        m2 = bob.receive(alice.initiate())
        assert m2 is not None
        with pytest.raises(AuthenticationFailed):
            alice.receive(m2)
    else:
        alice, bob = handshakes(initiator=expired)
        m2 = bob.receive(alice.initiate())
        assert m2 is not None
        m3 = alice.receive(m2)
        assert m3 is not None
        with pytest.raises(AuthenticationFailed):
            bob.receive(m3)


def bad_cert_responders() -> list[LocalIdentity]:
    signed_by_other = dataclasses.replace(
        BOB, static_cert=StaticCert.issue(CAROL.identity, BOB.static_public, NOT_AFTER)
    )
    for_other_key = dataclasses.replace(
        BOB, static_cert=StaticCert.issue(BOB.identity, CAROL.static_public, NOT_AFTER)
    )
    return [signed_by_other, for_other_key]


@pytest.mark.parametrize("responder", bad_cert_responders(), ids=["other-signer", "other-static"])
def test_bad_certificate_is_refused(responder: LocalIdentity) -> None:
    alice, bob = handshakes(responder=responder)
    m2 = bob.receive(alice.initiate())
    assert m2 is not None
    with pytest.raises(AuthenticationFailed):
        alice.receive(m2)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xc1",
        codec.pack([1, 2]),
        codec.pack({"id": BOB.public.key}),
        codec.pack({"id": BOB.public.key, "cert": BOB.static_cert.to_wire(), "x": 1}),
        codec.pack({"id": BOB.public.key[:31], "cert": BOB.static_cert.to_wire()}),
        codec.pack({"id": BOB.public.key, "cert": BOB.static_cert.to_wire()[:-1]}),
        codec.pack({"id": "text", "cert": BOB.static_cert.to_wire()}),
        identity_payload(BOB) + b"\x00",
    ],
)
def test_malformed_identity_payload_is_refused(payload: bytes) -> None:
    """A peer that speaks Noise correctly but sends a bad payload in message 2."""
    alice, _ = handshakes()
    responder = raw_peer(RESPONDER)
    responder.read_message(alice.initiate())
    with pytest.raises(MalformedMessage):
        alice.receive(responder.write_message(payload))


@pytest.mark.parametrize("point", LOW_ORDER_POINTS)
def test_low_order_ephemeral_is_refused(point: bytes) -> None:
    _, bob = handshakes()
    with pytest.raises(AuthenticationFailed):
        bob.receive(point)  # message 1 = a low-order e and an empty payload
    alice, _ = handshakes()
    alice.initiate()
    with pytest.raises(AuthenticationFailed):
        alice.receive(point + bytes(48 + 16 + 200))  # message 2 fails at "ee"
    with pytest.raises(AuthenticationFailed):
        _dh(E_ALICE, point)


# --- sessions ----------------------------------------------------------------------


def test_session_round_trip_both_ways() -> None:
    a, b = sessions()
    assert b.decrypt(a.encrypt(b"letter", b"hdr"), b"hdr") == b"letter"
    assert a.decrypt(b.encrypt(b"receipt")) == b"receipt"
    assert b.decrypt(a.encrypt(b"")) == b""
    with pytest.raises(AuthenticationFailed):
        b.decrypt(a.encrypt(b"x", b"ad-1"), b"ad-2")
    assert "Session(" in repr(a)
    assert a._send.k is not None
    assert a._send.k.hex() not in repr(a)


def test_replayed_and_reordered_transport_messages_fail() -> None:
    a, b = sessions()
    first, second = a.encrypt(b"1"), a.encrypt(b"2")
    with pytest.raises(AuthenticationFailed):
        b.decrypt(second)  # out of order
    assert b.decrypt(first) == b"1"  # a failure did not move the counter
    with pytest.raises(AuthenticationFailed):
        b.decrypt(first)  # replay
    assert b.decrypt(second) == b"2"
    with pytest.raises(AuthenticationFailed):
        a.decrypt(first)  # reflected back at its sender: other direction, other key


def test_tampered_transport_message_fails() -> None:
    a, b = sessions()
    message = a.encrypt(b"prescription")
    for position in range(len(message)):
        with pytest.raises(AuthenticationFailed):
            b.decrypt(flipped(message, position))
    assert b.decrypt(message) == b"prescription"
    for short in (b"", bytes(15)):
        with pytest.raises(AuthenticationFailed):
            b.decrypt(short)


def test_transport_size_limits() -> None:
    a, b = sessions()
    with pytest.raises(FrameTooLarge):
        b.decrypt(bytes(limits.MAX_NOISE_MESSAGE + 1))
    with pytest.raises(LocalProtocolError):
        a.encrypt(bytes(MAX_PLAINTEXT + 1))
    biggest = a.encrypt(bytes(MAX_PLAINTEXT))
    assert len(biggest) == limits.MAX_NOISE_MESSAGE
    assert b.decrypt(biggest) == bytes(MAX_PLAINTEXT)


def rekeyed(key: bytes) -> bytes:
    """REKEY per the Noise spec, computed independently of the cipher state."""
    return _encrypt(key, 2**64 - 1, b"", bytes(32))[:32]


def test_automatic_rekey_happens_at_the_same_message_on_both_sides() -> None:
    a, b = sessions()
    boundary = limits.REKEY_MESSAGES
    # Skip ahead instead of sending a million messages: both counters move together.
    a._send.n = b._receive.n = boundary - 2
    key = a._send.k
    assert key is not None
    for nonce in range(boundary - 2, boundary + 2):
        message = a.encrypt(nonce.to_bytes(8, "big"))
        assert b.decrypt(message) == nonce.to_bytes(8, "big")
        expected = key if nonce < boundary - 1 else rekeyed(key)
        assert a._send.k == b._receive.k == expected
    assert a._send.n == boundary + 2  # nonces keep counting after a rekey
    assert a.decrypt(b.encrypt(b"other direction untouched")) == b"other direction untouched"


def test_explicit_rekey_keeps_both_in_sync() -> None:
    a, b = sessions()
    a.rekey_outbound()
    b.rekey_inbound()
    assert b.decrypt(a.encrypt(b"after rekey")) == b"after rekey"
    b.rekey_outbound()  # one-sided: the peer cannot read it any more
    with pytest.raises(AuthenticationFailed):
        a.decrypt(b.encrypt(b"lost"))


# --- fuzzing: any input succeeds or raises RemoteProtocolError ------------------


def handshake_at(stage: str) -> Handshake:
    """A handshake waiting for message 1, 2 or 3."""
    alice, bob = handshakes(pinned=False)
    if stage == "m1":
        return bob
    m1 = alice.initiate()
    if stage == "m2":
        return alice
    bob.receive(m1)
    return bob


def feed(handshake: Handshake, message: bytes) -> None:
    check_parses_or_refuses(handshake.receive, message)


STAGES = st.sampled_from(["m1", "m2", "m3"])


@settings(max_examples=300, deadline=None)
@given(stage=STAGES, message=st.binary(max_size=400))
def test_arbitrary_bytes_into_receive(stage: str, message: bytes) -> None:
    check_parses_or_refuses(handshake_at(stage).receive, message)


@settings(max_examples=300, deadline=None)
@given(stage=STAGES, position=st.integers(0, 400), value=st.integers(0, 255), cut=st.booleans())
def test_mutated_genuine_messages_into_receive(
    stage: str, position: int, value: int, cut: bool
) -> None:
    m1, m2, m3 = run(*handshakes())
    genuine = {"m1": m1, "m2": m2, "m3": m3}[stage]
    position %= len(genuine)
    if cut:
        message = genuine[:position]
    else:
        message = genuine[:position] + bytes([value]) + genuine[position + 1 :]
    alice, bob = handshakes()
    target = {"m1": bob, "m2": alice, "m3": bob}[stage]
    if stage != "m1":
        bob_m2 = bob.receive(alice.initiate())
        assert bob_m2 == m2
    feed(target, message)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=300), at_initiator=st.booleans())
def test_arbitrary_payloads_from_a_noise_speaking_peer(payload: bytes, at_initiator: bool) -> None:
    alice, bob = handshakes(pinned=False)
    if at_initiator:
        responder = raw_peer(RESPONDER)
        responder.read_message(alice.initiate())
        feed(alice, responder.write_message(payload))
    else:
        initiator = raw_peer(INITIATOR, ALICE)
        m2 = bob.receive(initiator.write_message(b""))
        assert m2 is not None
        initiator.read_message(m2)
        feed(bob, initiator.write_message(payload))


@settings(max_examples=300, deadline=None)
@given(messages=st.lists(st.binary(max_size=200), max_size=5))
def test_arbitrary_bytes_into_session_decrypt(messages: list[bytes]) -> None:
    a, b = sessions()
    for message in messages:
        with contextlib.suppress(RemoteProtocolError):
            b.decrypt(message)
    assert b.decrypt(a.encrypt(b"still works")) == b"still works"
