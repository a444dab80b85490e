"""Fingerprint pairing as a sans-IO state machine: no event loop, no sockets.

A requester and a responder ``FingerprintPairing`` are wired to each other in
memory; ``wire`` records every frame, as an onlooker on the LAN would see it.
Issue 8 §1.1: the check code used to be a hash of the (public) Noise handshake
hash, and the requester chose its last messages after seeing the responder's;
the tests below show an onlooker reproducing the old code from the cleartext
transcript, and the new one depending on secret session material; a requester
that changes anything it committed to is refused; non-canonical encodings are
refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    PROLOGUE_FINGERPRINT,
    FingerprintPairing,
    FingerprintRole,
    LocalIdentity,
    LocalProtocolError,
    MalformedMessage,
    PairingDeclined,
    PairingDone,
    PairingReason,
    PairingRefused,
    PairingSend,
    RemoteProtocolError,
    ShowCheckCode,
    codec,
    limits,
)
from protocol import noise as noise_module
from tests.fuzzing import check_parses_or_refuses

NOW = 1_700_000_000
NOT_AFTER = NOW + limits.STATIC_CERT_LIFETIME
OLD_SAS_LABEL = b"pli/1/pair-fingerprint/sas"


def make_identity(n: int) -> LocalIdentity:
    return LocalIdentity.from_secrets(
        bytes([n]) * 32, bytes([n + 80]) * 32, bytes([n + 160]) * 32, not_after=NOT_AFTER
    )


@dataclass
class Side:
    me: LocalIdentity
    card: bytes
    disco: bytes
    addresses: tuple[str, ...]


def side(n: int, name: str) -> Side:
    me = make_identity(n)
    card = me.card(seq=1, name=name).sign(me.identity)
    disco = hashlib.blake2b(b"disco" + bytes([n]), digest_size=32).digest()
    return Side(me, card, disco, (f"192.168.1.{n}:7717",))


ALICE = side(1, "Dr Alice Martin")  # the responder: her fingerprint is on her letterhead
BOB = side(2, "Dr Bob Durand")  # the requester
MALLORY = side(3, "Dr Bob Durand")  # a stranger, with Bob's name in her card


def requester(who: Side = BOB, *, target: Side = ALICE, seed: int = 7) -> FingerprintPairing:
    return FingerprintPairing(
        FingerprintRole.REQUESTER,
        who.me,
        card=who.card,
        discovery_secret=who.disco,
        addresses=who.addresses,
        now=NOW,
        fingerprint=target.me.peer_id.fingerprint,
        ephemeral_secret=bytes([seed]) * 32,
    )


def responder(who: Side = ALICE, *, seed: int = 9) -> FingerprintPairing:
    return FingerprintPairing(
        FingerprintRole.RESPONDER,
        who.me,
        card=who.card,
        discovery_secret=who.disco,
        addresses=who.addresses,
        now=NOW,
        ephemeral_secret=bytes([seed]) * 32,
    )


def sent(events: list[Any]) -> list[bytes]:
    return [event.data for event in events if isinstance(event, PairingSend)]


def code_of(events: list[Any]) -> ShowCheckCode:
    (shown,) = [event for event in events if isinstance(event, ShowCheckCode)]
    return shown


@dataclass
class Run:
    """One exchange up to the responder's person deciding; ``wire`` as seen on the LAN."""

    req: FingerprintPairing
    resp: FingerprintPairing
    req_code: ShowCheckCode
    resp_code: ShowCheckCode
    wire: list[bytes] = field(default_factory=list)


def run_until_decision(req: FingerprintPairing, resp: FingerprintPairing) -> Run:
    (hello,) = sent(req.start())
    (m2,) = sent(resp.receive(hello))
    after_m2 = req.receive(m2)
    m3, m4 = sent(after_m2)
    assert resp.receive(m3) == []
    shown = resp.receive(m4)
    return Run(req, resp, code_of(after_m2), code_of(shown), [hello, m2, m3, m4])


# --- the exchange ----------------------------------------------------------------


def test_accepted_request_pairs_both_sides_with_the_same_code_and_full_fingerprint() -> None:
    run = run_until_decision(requester(), responder())
    assert run.req_code.code == run.resp_code.code
    assert len(run.req_code.code) == 6
    assert run.req_code.code.isdigit()
    # The responder's person sees the requester's full fingerprint next to the code.
    assert run.resp_code.fingerprint == BOB.me.peer_id.fingerprint
    assert run.req_code.fingerprint == ALICE.me.peer_id.fingerprint
    bob_seen = run.resp_code.peer
    assert bob_seen is not None
    assert bob_seen.card.name == "Dr Bob Durand"
    events = run.resp.decide(True)
    (m5,) = sent(events)
    (done,) = [e for e in events if isinstance(e, PairingDone)]
    assert done.peer.identity == BOB.me.public
    assert done.peer.discovery_secret == BOB.disco
    (alice_done,) = run.req.receive(m5)
    assert isinstance(alice_done, PairingDone)
    assert alice_done.peer.identity == ALICE.me.public
    assert alice_done.peer.discovery_secret == ALICE.disco
    assert alice_done.peer.sas == run.req_code.code


def test_declined_request_gives_the_requester_nothing() -> None:
    run = run_until_decision(requester(), responder())
    events = run.resp.decide(False)
    assert [e.reason for e in events if isinstance(e, PairingDeclined)] == [
        PairingReason.YOU_DECLINED
    ]
    (m5,) = sent(events)
    assert ALICE.disco not in m5
    assert run.req.receive(m5) == [PairingDeclined(PairingReason.DECLINED)]


def test_a_computer_that_is_not_the_fingerprint_typed_is_refused_before_message_3() -> None:
    req = requester(target=MALLORY)
    (hello,) = sent(req.start())
    (m2,) = sent(responder().receive(hello))
    with pytest.raises(PairingRefused) as refused:
        req.receive(m2)
    assert refused.value.reason is PairingReason.NOT_THAT_PEER
    with pytest.raises(LocalProtocolError):
        req.receive(m2)  # dead after an error


# --- issue 8 §1.1: the check code ----------------------------------------------------


def onlooker_handshake_hash(wire: list[bytes]) -> bytes:
    """The Noise handshake hash, from the cleartext frames alone (no key at all)."""
    messages = [codec.unpack(frame)["msg"] for frame in wire[:3]]
    name = b"Noise_XX_25519_ChaChaPoly_BLAKE2b"
    h = name.ljust(64, b"\x00")

    def mix(data: bytes) -> None:
        nonlocal h
        h = hashlib.blake2b(h + data).digest()

    mix(PROLOGUE_FINGERPRINT)
    mix(messages[0][:32])  # -> e, then an empty payload (no key yet: in the clear)
    mix(messages[0][32:])
    mix(messages[1][:32])  # <- e
    mix(messages[1][32:80])  # <- s (encrypted, 32 + 16)
    mix(messages[1][80:])  # <- payload (encrypted)
    mix(messages[2][:48])  # -> s (encrypted)
    mix(messages[2][48:])  # -> payload (encrypted)
    return h


def old_check_code(handshake_hash: bytes) -> str:
    """The formula before the fix (p2p/services/pairing/fingerprint.py::check_code)."""
    digest = hashlib.blake2b(OLD_SAS_LABEL, key=handshake_hash[:64], digest_size=8).digest()
    return f"{int.from_bytes(digest, 'big') % 10**6:06d}"


def test_an_onlooker_computes_the_old_check_code_but_not_the_new_one() -> None:
    run = run_until_decision(requester(), responder())
    h = onlooker_handshake_hash(run.wire)
    session = run.resp._live_session()
    # What the old code showed was computable by anyone who saw the frames ...
    assert h == session.handshake_hash
    assert old_check_code(h) == old_check_code(session.handshake_hash)
    # ... the code shown now is not: it is keyed by the Noise chaining key (every
    # DH result), which never travels; both ends still agree on it.
    assert run.resp_code.code != old_check_code(h)
    assert run.resp_code.code == run.req.check_code
    for frame in run.wire:  # nor does any frame carry the exported key
        assert session.export(b"pli/1/pair-fingerprint/check-code", 8) not in frame


def test_a_requester_that_changes_its_request_after_message_2_is_refused() -> None:
    """Grinding: try another card (or encoding) after seeing the responder's share."""
    req, resp = requester(MALLORY), responder()
    (hello,) = sent(req.start())
    (m2,) = sent(resp.receive(hello))
    other_card = MALLORY.me.card(seq=2, name="Dr Bob Durand ").sign(MALLORY.me.identity)
    req._bundle = codec.pack(  # what a grinder varies once it has seen message 2
        {"t": "request", "card": other_card, "disco": MALLORY.disco, "addr": ["10.0.0.9:7717"]}
    )
    m3, m4 = sent(req.receive(m2))
    resp.receive(m3)
    with pytest.raises(PairingRefused) as refused:
        resp.receive(m4)
    assert refused.value.reason is PairingReason.BAD_COMMITMENT


def test_a_requester_that_changes_its_identity_after_message_1_is_refused() -> None:
    """Commit with one identity, then run the handshake with another (a ground key)."""
    honest, resp = requester(MALLORY), responder()
    (hello,) = sent(honest.start())
    other = side(4, "Dr Bob Durand")
    swapped = requester(other)
    swapped.start()  # same ephemeral seed: message 1 is byte-identical but the commit
    fields = codec.unpack(hello)
    (m2,) = sent(resp.receive(hello))
    m3, m4 = sent(swapped.receive(m2))
    resp.receive(m3)
    with pytest.raises(PairingRefused) as refused:
        resp.receive(m4)
    assert refused.value.reason is PairingReason.BAD_COMMITMENT
    assert fields["msg"] == codec.unpack(sent(requester(other).start())[0])["msg"]


# --- canonical encodings --------------------------------------------------------------


def test_a_frame_with_its_keys_in_another_order_is_refused() -> None:
    req, resp = requester(), responder()
    (hello,) = sent(req.start())
    fields = codec.unpack(hello)
    reordered = codec.pack({"commit": fields["commit"], "msg": fields["msg"], "t": "fingerprint"})
    assert reordered != hello
    assert codec.unpack(reordered) == fields
    with pytest.raises(MalformedMessage, match="canonical"):
        resp.receive(reordered)


def test_a_frame_with_a_longer_encoding_of_the_same_map_is_refused() -> None:
    req, resp = requester(), responder()
    (hello,) = sent(req.start())
    assert hello[0] == 0x83  # fixmap of 3
    longer = b"\xde\x00\x03" + hello[1:]  # map16 of 3: the same value, another encoding
    assert codec.unpack(longer) == codec.unpack(hello)
    with pytest.raises(MalformedMessage, match="canonical"):
        resp.receive(longer)


def test_a_handshake_payload_in_another_encoding_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Noise message 3's payload {"id", "cert"} re-ordered: same value, other bytes."""
    req, resp = requester(), responder()
    (hello,) = sent(req.start())
    (m2,) = sent(resp.receive(hello))

    def reordered(local: LocalIdentity) -> bytes:
        return codec.pack({"cert": local.static_cert.to_wire(), "id": local.public.key})

    monkeypatch.setattr(noise_module, "_identity_payload", reordered)
    m3, _m4 = sent(req.receive(m2))
    with pytest.raises(MalformedMessage, match="canonical"):
        resp.receive(m3)


# --- fuzz: any bytes parse or are refused -------------------------------------------


def _at(stage: int) -> tuple[FingerprintPairing, bytes]:
    """A fresh side waiting for frame ``stage``, and the honest frame it expects."""
    req, resp = requester(), responder()
    (hello,) = sent(req.start())
    if stage == 1:
        return resp, hello
    (m2,) = sent(resp.receive(hello))
    if stage == 2:
        return req, m2
    m3, m4 = sent(req.receive(m2))
    if stage == 3:
        return resp, m3
    resp.receive(m3)
    if stage == 4:
        return resp, m4
    resp.receive(m4)
    (m5,) = sent(resp.decide(True))
    return req, m5


def _mutations(stage: int) -> st.SearchStrategy[bytes]:
    valid = _at(stage)[1]
    flipped = st.tuples(
        st.integers(0, len(valid) - 1), st.integers(1, 255), st.integers(0, len(valid))
    ).map(lambda m: (valid[: m[0]] + bytes([valid[m[0]] ^ m[1]]) + valid[m[0] + 1 :])[: m[2]])
    return st.one_of(st.binary(max_size=300), flipped)


_fuzz = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(stage: int) -> Callable[[bytes], None]:
    def parse(data: bytes) -> None:
        machine, _ = _at(stage)
        try:
            machine.receive(data)
        except RemoteProtocolError:
            with pytest.raises(LocalProtocolError):
                machine.receive(data)  # dead after a refusal
            raise

    return parse


@pytest.mark.parametrize("stage", [1, 2, 3, 4, 5])
def test_fuzz_every_frame_parses_or_is_refused(stage: int) -> None:
    @_fuzz
    @given(data=_mutations(stage))
    def fuzz(data: bytes) -> None:
        check_parses_or_refuses(_check(stage), data)

    fuzz()
