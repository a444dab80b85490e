"""Pairing state machine, codes and discovery hints: no event loop, no sockets.

Two ``Pairing`` objects are wired to each other in memory (like h11's
``ConnectionPair``); ``SpecInvitee`` is a second, independent invitee written
from the byte-level description in ``protocol/pairing.py``'s docstring, used to
craft messages an honest ``Pairing`` would never send.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl import bindings as nacl_bindings
from spake2 import SPAKE2_A

from protocol import (
    WRONG_CODE_MESSAGE,
    AuthenticationFailed,
    BadCode,
    LocalIdentity,
    LocalProtocolError,
    MalformedMessage,
    PairedPeer,
    Pairing,
    PairingCode,
    PairingReason,
    PairingRefused,
    PairingRole,
    PublicIdentity,
    RemoteProtocolError,
    discovery_hint,
    hint_matches,
    limits,
    new_code,
    new_discovery_secret,
    parse_code,
)
from protocol.pairing import BAD_PEER_MESSAGE, EXPIRED_PEER_MESSAGE, REFLECTION_MESSAGE
from tests.fuzzing import check_parses_or_refuses

NOW = 1_700_000_000
NOT_AFTER = NOW + limits.STATIC_CERT_LIFETIME
CODE = PairingCode("314", "1592653")
WRONG = PairingCode("314", "1592654")

Entropy = Callable[[int], bytes]


def pinned(seed: bytes) -> Entropy:
    """A deterministic random source: BLAKE2b in counter mode over ``seed``."""
    counter = itertools.count()

    def entropy(size: int) -> bytes:
        out = b""
        while len(out) < size:
            out += hashlib.blake2b(seed + next(counter).to_bytes(8, "big")).digest()
        return out[:size]

    return entropy


def make_identity(n: int, *, not_after: int = NOT_AFTER) -> LocalIdentity:
    return LocalIdentity.from_secrets(
        bytes([n]) * 32, bytes([n + 80]) * 32, bytes([n + 160]) * 32, not_after=not_after
    )


@dataclass(frozen=True)
class Practice:
    me: LocalIdentity
    card: bytes
    disco: bytes
    addresses: tuple[str, ...]


def make_practice(n: int, name: str, *, not_after: int = NOT_AFTER) -> Practice:
    me = make_identity(n, not_after=not_after)
    card = me.card(seq=1, name=name, rpps="10001234567", practice="Cabinet du Parc")
    return Practice(
        me=me,
        card=card.sign(me.identity),
        disco=hashlib.blake2b(b"disco" + bytes([n]), digest_size=32).digest(),
        addresses=(f"192.168.1.{n}:7420", f"[fe80::{n}]:7420"),
    )


ALICE = make_practice(1, "Dr Alice Martin")  # the inviter
BOB = make_practice(2, "Dr Bob Durand")  # the invitee
MALLORY = make_practice(3, "Dr Mallory")


def pairing(
    role: PairingRole,
    who: Practice,
    *,
    code: PairingCode = CODE,
    now: int = NOW,
    seed: bytes | None = None,
) -> Pairing:
    return Pairing(
        role,
        code,
        who.me,
        who.card,
        who.disco,
        now=now,
        my_addresses=who.addresses,
        entropy=pinned(seed if seed is not None else role.value.encode()),
    )


def inviter(who: Practice = ALICE, **kw: Any) -> Pairing:
    return pairing(PairingRole.INVITER, who, **kw)


def invitee(who: Practice = BOB, **kw: Any) -> Pairing:
    return pairing(PairingRole.INVITEE, who, **kw)


Tamper = Callable[[int, bytes], bytes]


def run(guest: Pairing, host: Pairing, tamper: Tamper | None = None) -> list[bytes]:
    """Shuttle messages until one side has nothing to say; return what was on the wire.

    Then, as both people would have confirmed the SAS, trade the secrets (message 5,
    not in the returned list).
    """
    wire: list[bytes] = []
    message: bytes | None = guest.start()
    receiver, other = host, guest
    number = 1
    while message is not None:
        if tamper is not None:
            message = tamper(number, message)
        wire.append(message)
        message = receiver.receive(message)
        receiver, other = other, receiver
        number += 1
    if guest.complete and host.complete:
        trade_secrets(guest, host)
    return wire


def trade_secrets(guest: Pairing, host: Pairing) -> None:
    from_guest, from_host = guest.secret_message(), host.secret_message()
    assert host.receive(from_guest) is None
    assert guest.receive(from_host) is None


def honest_wire() -> list[bytes]:
    return run(invitee(), inviter())


# --- an independent invitee, from the documented bytes -------------------------------


def spec_hash(label: bytes, *parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=32)
    for piece in (label, *parts):
        h.update(len(piece).to_bytes(4, "big") + piece)
    return h.digest()


def spec_kdf(key: bytes, label: bytes, size: int = 32) -> bytes:
    return hashlib.blake2b(label, key=key, digest_size=size).digest()


def spec_mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.blake2b).digest()


BundleMaker = Callable[[bytes], bytes]


def spec_bundle(
    who: Practice, *, card: bytes | None = None, signer: Practice | None = None, **override: Any
) -> BundleMaker:
    """The invitee's bundle as the docstring specifies it, signed over ``A ‖ T0``.

    ``override`` replaces or adds fields after signing (``sig`` included).
    """

    def make(t0: bytes) -> bytes:
        unsigned = {
            "id": who.me.public.key,
            "cert": who.me.static_cert.to_wire(),
            "card": who.card if card is None else card,
            "addr": list(who.addresses),
        }
        key = (signer or who).me.identity
        signature = key.sign(b"pli/1/pair/bundle-sig", b"A" + t0 + pack(unsigned))
        bundle = {**unsigned, "sig": signature}
        bundle.update(override)
        return pack(bundle)

    return make


def fixed(bundle: bytes) -> BundleMaker:
    return lambda t0: bundle


class SpecInvitee:
    """The invitee side written again from the module docstring, not from its code."""

    T = b"pli/1/pair/transcript"

    def __init__(
        self, code: str, bundle: BundleMaker, identity: bytes, seed: bytes = b"spec"
    ) -> None:
        self.nameplate = code.split("-", maxsplit=1)[0].encode()
        self.spake = SPAKE2_A(
            b"pli/1/pair" + code.encode(),
            idA=b"pli/1/pair/invitee",
            idB=b"pli/1/pair/inviter",
            entropy_f=pinned(seed),
        )
        self.bundle = bundle
        self.identity = identity

    def message_1(self, *, reveal_instead: bytes | None = None) -> bytes:
        self.msg_a = self.spake.start()
        committed = self.msg_a if reveal_instead is None else reveal_instead
        self.commit = spec_hash(b"pli/1/pair/commit", self.nameplate, committed)
        return pack({"t": "pake", "nameplate": self.nameplate.decode(), "commit": self.commit})

    def message_3(self, message_2: bytes) -> bytes:
        self.msg_b = msgpack.unpackb(message_2)["msg"]
        self.key = self.spake.finish(self.msg_b)
        t0 = spec_hash(self.T, self.nameplate, self.commit, self.msg_a, self.msg_b)
        k = spec_kdf(self.key, b"pli/1/pair/bundle-A")
        self.box_a = nacl_bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            self.bundle(t0), t0, bytes(24), k
        )
        t1 = spec_hash(self.T, self.nameplate, self.commit, self.msg_a, self.msg_b, self.box_a)
        mac = spec_mac(spec_kdf(self.key, b"pli/1/pair/confirm-A"), b"A" + t1 + self.identity)
        return pack({"t": "confirm", "msg": self.msg_a, "box": self.box_a, "mac": mac})

    def open_message_4(self, message_4: bytes) -> dict[str, Any]:
        fields = msgpack.unpackb(message_4)
        t1 = spec_hash(self.T, self.nameplate, self.commit, self.msg_a, self.msg_b, self.box_a)
        bundle_b = nacl_bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            fields["box"], t1, bytes(24), spec_kdf(self.key, b"pli/1/pair/bundle-B")
        )
        peer: dict[str, Any] = msgpack.unpackb(bundle_b)
        t2 = self.t2 = spec_hash(
            self.T, self.nameplate, self.commit, self.msg_a, self.msg_b, self.box_a, fields["box"]
        )
        expected = spec_mac(
            spec_kdf(self.key, b"pli/1/pair/confirm-B"), b"B" + t2 + self.identity + peer["id"]
        )
        assert hmac.compare_digest(expected, fields["mac"])
        unsigned = pack({key: peer[key] for key in ("id", "cert", "card", "addr")})
        PublicIdentity(peer["id"]).verify(
            b"pli/1/pair/bundle-sig", b"B" + t1 + unsigned, peer["sig"]
        )
        return peer

    def secret_message(self, secret: bytes) -> bytes:
        box = nacl_bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            secret, self.t2, bytes(24), spec_kdf(self.key, b"pli/1/pair/secret-A")
        )
        return pack({"t": "secret", "box": box})

    def open_secret(self, message_5: bytes) -> bytes:
        opened: bytes = nacl_bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            msgpack.unpackb(message_5)["box"],
            self.t2,
            bytes(24),
            spec_kdf(self.key, b"pli/1/pair/secret-B"),
        )
        return opened

    @property
    def sas(self) -> str:
        value = int.from_bytes(spec_kdf(self.key, b"pli/1/pair/sas", 8), "big")
        return f"{value % 10**6:06d}"


def pack(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


# --- the happy path ----------------------------------------------------------------


def assert_is(peer: PairedPeer, who: Practice) -> None:
    assert peer.identity == who.me.public
    assert peer.peer_id == who.me.peer_id
    assert peer.static_cert == who.me.static_cert
    assert peer.card_wire == who.card
    assert peer.card.identity == who.me.public
    assert peer.card.name
    assert peer.discovery_secret == who.disco
    assert peer.addresses == who.addresses


def test_right_code_pairs_both_sides() -> None:
    guest, host = invitee(), inviter()
    wire = run(guest, host)
    assert len(wire) == 4
    assert guest.complete
    assert host.complete
    assert not guest.failed
    assert not host.failed
    assert guest.code_used
    assert host.code_used
    assert_is(guest.result(), ALICE)
    assert_is(host.result(), BOB)
    sas = guest.result().sas
    assert sas == host.result().sas
    assert len(sas) == 6
    assert sas.isdigit()


def test_secrets_stay_out_of_reprs() -> None:
    guest, host = invitee(), inviter()
    run(guest, host)
    peer = guest.result()
    assert peer.discovery_secret.hex() not in repr(peer)
    assert CODE.secret not in repr(CODE)
    assert CODE.secret not in repr(guest)


def test_pinned_entropy_reproduces_the_exchange() -> None:
    """With pinned randomness the bytes are fixed: material for test vectors."""
    assert honest_wire() == honest_wire()
    assert run(invitee(seed=b"other"), inviter()) != honest_wire()


def test_message_layout() -> None:
    m1, m2, m3, m4 = (msgpack.unpackb(m) for m in honest_wire())
    assert list(m1) == ["t", "nameplate", "commit"]
    assert m1["t"] == "pake"
    assert m1["nameplate"] == "314"
    assert len(m1["commit"]) == 32
    assert list(m2) == ["t", "msg"]
    assert m2["msg"][:1] == b"B"
    assert len(m2["msg"]) == 33
    assert list(m3) == ["t", "msg", "box", "mac"]
    assert m3["t"] == "confirm"
    assert m3["msg"][:1] == b"A"
    assert len(m3["mac"]) == 64
    assert list(m4) == ["t", "box", "mac"]
    assert len(m4["mac"]) == 64


def test_independent_invitee_from_the_spec_interoperates() -> None:
    host = inviter()
    spec = SpecInvitee(str(CODE), spec_bundle(BOB), BOB.me.public.key)
    m2 = host.receive(spec.message_1())
    assert m2 is not None
    m4 = host.receive(spec.message_3(m2))
    assert m4 is not None
    assert host.complete
    peer = spec.open_message_4(m4)
    assert peer["id"] == ALICE.me.public.key
    assert "disco" not in peer  # the secret waits for the people (message 5)
    assert spec.sas == host.result().sas
    assert spec.open_secret(host.secret_message()) == ALICE.disco
    assert host.receive(spec.secret_message(BOB.disco)) is None
    assert host.secret_received
    assert_is(host.result(), BOB)


def test_no_addresses_is_fine() -> None:
    guest = Pairing(
        PairingRole.INVITEE, CODE, BOB.me, BOB.card, BOB.disco, now=NOW, entropy=pinned(b"g")
    )
    host = inviter()
    run(guest, host)
    assert host.result().addresses == ()


# --- wrong code ----------------------------------------------------------------------


def test_wrong_code_fails_on_both_sides_with_the_doctor_text() -> None:
    """The inviter is the first to be able to tell (message 3: box A does not open).

    The invitee cannot tell at message 2 because the invitee commits to its
    SPAKE2 message first and the inviter's bundle travels last (see the module
    docstring). The invitee learns of the failure from the inviter's error or
    the closed connection; anything that does arrive as message 4 does not
    authenticate under its key.
    """
    guest, host = invitee(code=WRONG), inviter()
    m2 = host.receive(guest.start())
    assert m2 is not None
    m3 = guest.receive(m2)
    assert m3 is not None
    with pytest.raises(AuthenticationFailed) as host_error:
        host.receive(m3)
    assert str(host_error.value) == WRONG_CODE_MESSAGE
    assert host_error.value.code == "wrong-code"  # the reason code, on the wire too
    assert host.failed
    assert host.code_used

    # Whatever reaches the invitee as message 4 (here one from an honest session) fails.
    with pytest.raises(AuthenticationFailed) as guest_error:
        guest.receive(honest_wire()[3])
    assert str(guest_error.value) == WRONG_CODE_MESSAGE
    assert guest.failed

    for dead in (guest, host):
        assert not dead.complete
        with pytest.raises(LocalProtocolError):
            dead.receive(m2)
        with pytest.raises(LocalProtocolError):
            dead.result()
    with pytest.raises(LocalProtocolError):
        guest.start()


def test_wrong_nameplate_is_refused_without_spending_the_code() -> None:
    host = inviter()
    with pytest.raises(MalformedMessage) as error:
        host.receive(invitee(code=PairingCode("271", CODE.secret)).start())
    assert error.value.code == "wrong-nameplate"
    assert not host.code_used
    assert host.failed


# --- man in the middle ---------------------------------------------------------------


def test_mitm_with_a_wrong_guess_gets_nowhere() -> None:
    """Mallory sits between Bob and Alice, runs one session with each, guessing wrong."""
    guest, host = invitee(), inviter()
    mallory_host = inviter(MALLORY, code=WRONG, seed=b"m1")
    mallory_guest = invitee(MALLORY, code=WRONG, seed=b"m2")

    with pytest.raises(AuthenticationFailed, match="wrong, or someone tried to intercept"):
        run(mallory_guest, host)
    assert host.failed
    assert not host.complete

    with pytest.raises(AuthenticationFailed):
        run(guest, mallory_host)  # Mallory's side refuses Bob's message 3
    assert not guest.complete  # Bob never gets a message 4 that opens


def test_mitm_guessing_differently_on_each_side_still_fails_the_wrong_side() -> None:
    guest, host = invitee(), inviter()
    with pytest.raises(AuthenticationFailed):
        run(invitee(MALLORY, code=WRONG, seed=b"m"), host)
    # Even if the other guess were right, Alice's screen shows an error and no SAS,
    # and Bob's SAS has nothing to match: the people do not confirm.
    mallory_host = inviter(MALLORY, seed=b"m1")
    run(guest, mallory_host)
    assert guest.complete
    assert guest.result().identity == MALLORY.me.public


def test_mitm_who_knows_the_code_is_caught_by_the_sas() -> None:
    """A MITM with the right code completes both sessions; only the SAS shows it.

    Keys are bound to each session, so Mallory ends up paired *with* each side
    under her own identity (Bob's result names Mallory, not Alice) and the two
    sessions have independent SPAKE2 keys. She cannot steer the two SAS to the
    same value: in the session where she plays the inviter, Bob has committed
    to his SPAKE2 message before she must send hers, and in the session where
    she plays the invitee she commits before Alice answers. Each key is fixed
    before she can compute it, so she gets a one-in-a-million chance, not 10^6
    offline tries. The humans compare six digits, see them differ, and nothing
    is stored.
    """
    guest, host = invitee(), inviter()
    mallory_host = inviter(MALLORY, seed=b"mh")
    mallory_guest = invitee(MALLORY, seed=b"mg")

    run(guest, mallory_host)
    run(mallory_guest, host)
    for side in (guest, host, mallory_host, mallory_guest):
        assert side.complete
    assert guest.result().identity == MALLORY.me.public
    assert host.result().identity == MALLORY.me.public
    assert guest.result().sas == mallory_host.result().sas
    assert host.result().sas == mallory_guest.result().sas
    assert guest.result().sas != host.result().sas


def test_reveal_that_does_not_match_the_commitment_is_refused() -> None:
    """The commitment is what stops a MITM from choosing its share after seeing ours."""
    host = inviter()
    spec = SpecInvitee(str(CODE), spec_bundle(BOB), BOB.me.public.key)
    m2 = host.receive(spec.message_1(reveal_instead=b"A" + bytes(32)))
    assert m2 is not None
    with pytest.raises(AuthenticationFailed) as error:
        host.receive(spec.message_3(m2))
    assert str(error.value) == WRONG_CODE_MESSAGE


# --- tampering and replay ------------------------------------------------------------


def _positions(message: bytes) -> list[int]:
    """Every byte of short messages; headers, tails and a spread for long ones."""
    if len(message) <= 80:
        return list(range(len(message)))
    return sorted({*range(24), *range(len(message) - 80, len(message)), len(message) // 2})


@pytest.mark.parametrize("number", [1, 2, 3, 4])
def test_flipping_any_byte_of_any_message_fails(number: int) -> None:
    honest = honest_wire()
    for position in _positions(honest[number - 1]):

        def tamper(n: int, message: bytes, position: int = position) -> bytes:
            if n != number:
                return message
            flipped = bytearray(message)
            flipped[position] ^= 0x01
            return bytes(flipped)

        guest, host = invitee(), inviter()
        with pytest.raises(RemoteProtocolError):
            run(guest, host, tamper)
        assert not guest.complete, f"message {number}, byte {position}"
        if number < 4:
            assert not host.complete, f"message {number}, byte {position}"


def test_replayed_message_3_fails_on_a_fresh_inviter() -> None:
    m1, _, m3, _ = honest_wire()
    fresh = inviter(seed=b"fresh")
    assert fresh.receive(m1) is not None  # the old message 1 gets a new SPAKE2 share
    with pytest.raises(AuthenticationFailed, match="Make a new invitation"):
        fresh.receive(m3)
    assert fresh.failed

    with pytest.raises(MalformedMessage):
        inviter().receive(m3)  # out of order: message 3 where message 1 is due


def test_replayed_message_4_fails_on_a_fresh_invitee() -> None:
    _, _, _, m4 = honest_wire()
    guest = invitee(seed=b"fresh")
    host = inviter()
    m2 = host.receive(guest.start())
    assert m2 is not None
    guest.receive(m2)
    with pytest.raises(AuthenticationFailed):
        guest.receive(m4)


# --- identity checks on the bundle ---------------------------------------------------


def test_pairing_with_yourself_is_refused() -> None:
    with pytest.raises(AuthenticationFailed) as error:
        run(invitee(ALICE), inviter(ALICE))
    assert str(error.value) == REFLECTION_MESSAGE


def test_card_of_another_identity_is_refused() -> None:
    host = inviter()
    spec = SpecInvitee(str(CODE), spec_bundle(BOB, card=MALLORY.card), BOB.me.public.key)
    m2 = host.receive(spec.message_1())
    assert m2 is not None
    with pytest.raises(AuthenticationFailed) as error:
        host.receive(spec.message_3(m2))
    assert str(error.value) == BAD_PEER_MESSAGE
    assert not host.complete


def test_cert_by_another_identity_is_refused() -> None:
    host = inviter()
    bundle = spec_bundle(BOB, cert=MALLORY.me.static_cert.to_wire())
    spec = SpecInvitee(str(CODE), bundle, BOB.me.public.key)  # Bob's key signs it all
    m2 = host.receive(spec.message_1())
    assert m2 is not None
    with pytest.raises(AuthenticationFailed) as error:
        host.receive(spec.message_3(m2))
    assert str(error.value) == BAD_PEER_MESSAGE


def test_our_own_transport_key_under_another_name_is_refused() -> None:
    host = inviter()
    bundle = spec_bundle(BOB, cert=ALICE.me.static_cert.to_wire())
    spec = SpecInvitee(str(CODE), bundle, BOB.me.public.key)
    m2 = host.receive(spec.message_1())
    assert m2 is not None
    with pytest.raises(AuthenticationFailed):
        host.receive(spec.message_3(m2))


@pytest.mark.parametrize(
    "override",
    [
        {"extra": 1},
        {"disco": BOB.disco},  # the secret no longer travels in the bundle
        {"addr": ["no-port"]},
        {"addr": ["host:99999"]},
        {"addr": ["h:1"] * (limits.MAX_ADDRESSES + 1)},
        {"id": "not bytes"},
        {"card": b"\x80"},
    ],
)
def test_malformed_bundles_are_refused(override: dict[str, Any]) -> None:
    host = inviter()
    spec = SpecInvitee(str(CODE), spec_bundle(BOB, **override), BOB.me.public.key)
    m2 = host.receive(spec.message_1())
    assert m2 is not None
    with pytest.raises(RemoteProtocolError):
        host.receive(spec.message_3(m2))
    assert host.failed


def test_expired_static_cert_is_refused_by_the_inviter() -> None:
    short_lived = make_practice(2, "Dr Bob Durand", not_after=NOW + 100)
    with pytest.raises(AuthenticationFailed) as error:
        run(invitee(short_lived), inviter(now=NOW + 1000))
    assert str(error.value) == EXPIRED_PEER_MESSAGE


def test_expired_static_cert_is_refused_by_the_invitee() -> None:
    short_lived = make_practice(1, "Dr Alice Martin", not_after=NOW + 100)
    guest, host = invitee(now=NOW + 1000), inviter(short_lived)
    with pytest.raises(AuthenticationFailed) as error:
        run(guest, host)
    assert str(error.value) == EXPIRED_PEER_MESSAGE
    assert not guest.complete


# --- misuse --------------------------------------------------------------------------


def test_misuse_raises_local_protocol_error_and_kills() -> None:
    host = inviter()
    with pytest.raises(LocalProtocolError):
        host.start()
    assert host.failed

    guest = invitee()
    with pytest.raises(LocalProtocolError):
        guest.receive(b"\x80")
    assert guest.failed

    guest = invitee()
    guest.start()
    with pytest.raises(LocalProtocolError):
        guest.start()

    guest, host = invitee(), inviter()
    run(guest, host)
    with pytest.raises(LocalProtocolError):
        host.receive(b"")

    with pytest.raises(LocalProtocolError):
        inviter().result()
    with pytest.raises(LocalProtocolError):
        inviter().receive("text")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        {"card": ALICE.card},  # someone else's card
        {"card": b"not a card"},
        {"disco": b"short"},
        {"my_addresses": ["nowhere"]},
        {"my_addresses": ["h:1"] * (limits.MAX_ADDRESSES + 1)},
        {"now": -1},
        {"code": "314-1592653"},
    ],
)
def test_bad_local_arguments(change: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "code": CODE,
        "card": BOB.card,
        "disco": BOB.disco,
        "my_addresses": (),
        "now": NOW,
    }
    args.update(change)
    with pytest.raises(LocalProtocolError):
        Pairing(
            PairingRole.INVITEE,
            args["code"],
            BOB.me,
            args["card"],
            args["disco"],
            now=args["now"],
            my_addresses=args["my_addresses"],
        )


def test_our_own_expired_cert_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        invitee(make_practice(2, "Dr Bob Durand", not_after=NOW - 1))


# --- codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["314-1592653", " 314-1592653\n", "314 1592653", "3141592653", "314 - 159 2653", "314–1592653"],
)
def test_parse_code_tolerates_how_people_type(text: str) -> None:
    code = parse_code(text)
    assert code == CODE
    assert str(code) == "314-1592653"
    assert parse_code(str(code)) == code


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("", "Please type the pairing code"),
        ("   ", "Please type the pairing code"),
        ("31-1592653", "starts with 3 digits"),
        ("3145-1592653", "starts with 3 digits"),
        ("314-159265", "7 digits after the dash"),
        ("314-15926535", "7 digits after the dash"),
        ("314159265", "has 9"),
        ("31415926535", "has 11"),
        ("314-159265x", "only digits"),
        ("abc-defghij", "only digits"),
        ("314-159-2653", "one dash"),
        ("３１４-1592653", "only digits"),  # full-width digits
        ("1" * 40, "only digits"),
    ],
)
def test_bad_codes_say_what_is_wrong(text: str, hint: str) -> None:
    with pytest.raises(BadCode) as error:
        parse_code(text)
    assert hint in str(error.value)
    assert isinstance(error.value, MalformedMessage)
    assert error.value.code == "bad-code"


def test_new_code_uses_the_injected_rng() -> None:
    code = new_code(pinned(b"code"))
    assert code == new_code(pinned(b"code"))
    assert code != new_code(pinned(b"other"))
    assert len(code.nameplate) == 3
    assert code.nameplate.isdigit()
    assert len(code.secret) == 7
    assert code.secret.isdigit()
    assert code.password == b"pli/1/pair" + str(code).encode()
    assert parse_code(str(code)) == code
    assert len({new_code().secret for _ in range(20)}) > 1


def test_new_code_rejects_biased_draws_and_broken_sources() -> None:
    draws = iter([b"\xff" * 8, (5).to_bytes(8, "big"), (1234567).to_bytes(8, "big")])
    assert new_code(lambda n: next(draws)) == PairingCode("005", "1234567")
    with pytest.raises(LocalProtocolError):
        new_code(lambda n: b"\xff" * n)
    with pytest.raises(LocalProtocolError):
        new_code(lambda n: b"")


def test_pairing_code_checks_its_parts() -> None:
    with pytest.raises(BadCode):
        PairingCode("31", "1592653")
    with pytest.raises(BadCode):
        PairingCode("314", "159265a")


# --- discovery hints -----------------------------------------------------------------

SECRET = bytes(range(32))
HOUR = NOW // 3600


def test_hint_is_stable_for_the_hour_and_differs_otherwise() -> None:
    hint = discovery_hint(SECRET, HOUR)
    assert len(hint) == 16
    assert hint == hint.lower()
    assert int(hint, 16) >= 0
    assert discovery_hint(SECRET, HOUR) == hint
    assert discovery_hint(SECRET, HOUR + 1) != hint
    assert discovery_hint(bytes(32), HOUR) != hint
    assert hint_matches(SECRET, hint, HOUR * 3600)
    assert hint_matches(SECRET, hint, HOUR * 3600 + 3599)


def test_hint_matches_the_neighbouring_hours_only() -> None:
    now = HOUR * 3600 + 10
    assert hint_matches(SECRET, discovery_hint(SECRET, HOUR), now)
    assert hint_matches(SECRET, discovery_hint(SECRET, HOUR - 1), now)
    assert hint_matches(SECRET, discovery_hint(SECRET, HOUR + 1), now)
    assert not hint_matches(SECRET, discovery_hint(SECRET, HOUR - 2), now)
    assert not hint_matches(SECRET, discovery_hint(SECRET, HOUR + 2), now)
    assert not hint_matches(bytes(32), discovery_hint(SECRET, HOUR), now)
    assert hint_matches(SECRET, discovery_hint(SECRET, HOUR).upper(), now)
    for junk in ["", "zz" * 8, "é" * 16, discovery_hint(SECRET, HOUR)[:-1]]:
        assert not hint_matches(SECRET, junk, now)


def test_hint_matches_the_hint_definition() -> None:
    expected = hmac.new(SECRET, b"pli/1/hint" + HOUR.to_bytes(8, "big"), hashlib.blake2b)
    assert discovery_hint(SECRET, HOUR) == expected.digest()[:8].hex()


def test_discovery_helpers_refuse_bad_local_input() -> None:
    with pytest.raises(LocalProtocolError):
        discovery_hint(b"short", HOUR)
    with pytest.raises(LocalProtocolError):
        discovery_hint(SECRET, -1)
    with pytest.raises(LocalProtocolError):
        hint_matches(b"short", "00" * 8, NOW)
    assert new_discovery_secret(pinned(b"d")) == new_discovery_secret(pinned(b"d"))
    assert len(new_discovery_secret()) == 32
    with pytest.raises(LocalProtocolError):
        new_discovery_secret(lambda n: b"")


# --- fuzzing: only success or RemoteProtocolError ------------------------------------

HONEST = honest_wire()


def _at_stage(number: int) -> Pairing:
    """A fresh side waiting for message ``number`` of the pinned honest exchange."""
    guest, host = invitee(), inviter()
    if number == 1:
        return host
    m2 = host.receive(guest.start())
    if number == 2:
        return guest
    assert m2 is not None
    m3 = guest.receive(m2)
    if number == 3:
        return host
    assert m3 is not None
    host.receive(m3)
    return guest


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.binary(max_size=80),
    st.text(max_size=20),
    st.lists(st.integers(0, 255), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(0, 255), max_size=3),
)
_KEYS = {
    1: ("t", "nameplate", "commit"),
    2: ("t", "msg"),
    3: ("t", "msg", "box", "mac"),
    4: ("t", "box", "mac"),
}


def _inputs(number: int) -> st.SearchStrategy[bytes]:
    valid = HONEST[number - 1]
    mutated = st.tuples(
        st.integers(0, len(valid) - 1), st.integers(1, 255), st.integers(0, len(valid))
    ).map(lambda m: (valid[: m[0]] + bytes([valid[m[0]] ^ m[1]]) + valid[m[0] + 1 :])[: m[2]])
    shaped = st.fixed_dictionaries(
        dict.fromkeys(_KEYS[number], _values),
    ).map(lambda d: pack({**d, "t": d["t"] if not isinstance(d["t"], bool) else "pake"}))
    return st.one_of(st.binary(max_size=200), mutated, shaped)


def check_only_remote_errors(side: Pairing, data: bytes) -> None:
    try:
        side.receive(data)
    except RemoteProtocolError:
        assert side.failed
    else:
        assert not side.failed


_fuzz = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fuzz
@given(data=_inputs(1))
def test_fuzz_inviter_message_1(data: bytes) -> None:
    check_only_remote_errors(_at_stage(1), data)


@_fuzz
@given(data=_inputs(2))
def test_fuzz_invitee_message_2(data: bytes) -> None:
    check_only_remote_errors(_at_stage(2), data)


@_fuzz
@given(data=_inputs(3))
def test_fuzz_inviter_message_3(data: bytes) -> None:
    check_only_remote_errors(_at_stage(3), data)


@_fuzz
@given(data=_inputs(4))
def test_fuzz_invitee_message_4(data: bytes) -> None:
    check_only_remote_errors(_at_stage(4), data)


@settings(max_examples=300)
@given(text=st.text(max_size=40))
def test_fuzz_parse_code(text: str) -> None:
    try:
        code = parse_code(text)
    except BadCode:
        return
    assert parse_code(str(code)) == code


@settings(max_examples=200)
@given(hint=st.text(max_size=20), now=st.integers(-(2**70), 2**70))
def test_fuzz_hint_matches(hint: str, now: int) -> None:
    assert hint_matches(SECRET, hint, now) in (True, False)


_VALID_BUNDLE: dict[str, Any] = msgpack.unpackb(spec_bundle(BOB)(bytes(32)))


@settings(max_examples=40, deadline=None)
@given(
    bundle=st.one_of(
        st.binary(max_size=300),
        st.fixed_dictionaries(
            {key: st.one_of(st.just(value), _values) for key, value in _VALID_BUNDLE.items()}
        ).map(pack),
    )
)
def test_fuzz_authenticated_bundle(bundle: bytes) -> None:
    """Bundles from someone who knows the code: past the AEAD, still only remote errors."""
    host = inviter()
    spec = SpecInvitee(str(CODE), fixed(bundle), BOB.me.public.key)
    m2 = host.receive(spec.message_1())
    assert m2 is not None
    check_only_remote_errors(host, spec.message_3(m2))


# --- issue 8 §1.6: signed bundles, the secret after the SAS ------------------------------


def test_the_discovery_secrets_wait_for_both_people() -> None:
    """The secret used to travel in the bundle (message 3/4), before anyone compared."""
    guest, host = invitee(), inviter()
    m2 = host.receive(guest.start())
    assert m2 is not None
    m3 = guest.receive(m2)
    assert m3 is not None
    m4 = host.receive(m3)
    assert m4 is not None
    guest.receive(m4)
    assert guest.complete
    assert host.complete  # the SAS can be shown ...
    assert guest.result().discovery_secret == b""  # ... but no secret has moved
    assert host.result().discovery_secret == b""
    assert not guest.secret_received
    with pytest.raises(LocalProtocolError):
        invitee().secret_message()  # not before the keys are confirmed
    trade_secrets(guest, host)
    assert guest.result().discovery_secret == ALICE.disco
    assert host.result().discovery_secret == BOB.disco


def test_a_secret_message_that_does_not_open_is_refused() -> None:
    host = _waiting_for_secret()
    forged = pack({"t": "secret", "box": bytes(48)})
    with pytest.raises(PairingRefused) as refused:
        host.receive(forged)
    assert refused.value.reason is PairingReason.WRONG_CODE
    assert not host.secret_received


def test_a_bundle_of_someone_elses_public_parts_is_refused() -> None:
    """Mallory knows the code and sends Bob's public id, certificate and card.

    Nothing in them is secret, so without a signature made in this session the
    inviter would pair with "Bob" while talking to Mallory (an unknown key-share).
    """
    host = inviter()
    spec = SpecInvitee(str(CODE), spec_bundle(BOB, signer=MALLORY), BOB.me.public.key)
    m2 = host.receive(spec.message_1())
    assert m2 is not None
    with pytest.raises(PairingRefused) as refused:
        host.receive(spec.message_3(m2))
    assert refused.value.reason is PairingReason.BAD_PEER
    assert str(refused.value) == BAD_PEER_MESSAGE


def test_a_bundle_signature_from_another_session_is_refused() -> None:
    """Bob's genuine signature, recorded from an earlier pairing, replayed by Mallory."""
    earlier = spec_bundle(BOB)(b"\x01" * 32)  # signed over another transcript
    host = inviter()
    spec = SpecInvitee(str(CODE), fixed(earlier), BOB.me.public.key)
    m2 = host.receive(spec.message_1())
    assert m2 is not None
    with pytest.raises(PairingRefused) as refused:
        host.receive(spec.message_3(m2))
    assert refused.value.reason is PairingReason.BAD_PEER


def test_a_bundle_in_another_encoding_is_refused() -> None:
    def reordered(t0: bytes) -> bytes:
        fields = msgpack.unpackb(spec_bundle(BOB)(t0))
        return pack(dict(reversed(list(fields.items()))))

    host = inviter()
    spec = SpecInvitee(str(CODE), reordered, BOB.me.public.key)
    m2 = host.receive(spec.message_1())
    assert m2 is not None
    with pytest.raises(MalformedMessage, match="canonical"):
        host.receive(spec.message_3(m2))


def _waiting_for_secret() -> Pairing:
    guest, host = invitee(), inviter()
    m2 = host.receive(guest.start())
    assert m2 is not None
    m3 = guest.receive(m2)
    assert m3 is not None
    host.receive(m3)
    return host


@_fuzz
@given(
    data=st.one_of(
        st.binary(max_size=120),
        st.binary(max_size=80).map(lambda box: pack({"t": "secret", "box": box})),
    )
)
def test_fuzz_secret_message(data: bytes) -> None:
    check_parses_or_refuses(_waiting_for_secret().receive, data)
