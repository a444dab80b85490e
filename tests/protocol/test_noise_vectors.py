"""Our Noise checked against others: cacophony vectors, Wycheproof X25519, noiseprotocol.

The vector files live in ``tests/data/vectors/`` (its README gives their sources
and licences), so every clone runs them. The interop tests
run pli's ``Handshake`` against the independent ``noiseprotocol`` package with
the same pinned keys, in both roles.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from protocol import PROLOGUE, AuthenticationFailed, Handshake, LocalIdentity, Role, Session, codec
from protocol.noise import _dh, _HandshakeState
from tests.protocol.test_noise import ALICE, BOB, E_ALICE, E_BOB, NOW, accept

VECTORS = Path(__file__).resolve().parents[1] / "data" / "vectors"
NAME = b"Noise_XX_25519_ChaChaPoly_BLAKE2b"


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


def cacophony() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = load("noise-cacophony.json")["vectors"]
    return vectors


def test_the_vectors_are_in_the_repository() -> None:
    """A fresh clone has every vector file, with the patterns pli speaks."""
    names = {vector["protocol_name"] for vector in cacophony()}
    assert {"Noise_NN_25519_ChaChaPoly_BLAKE2b", NAME.decode()} <= names
    assert load("wycheproof-x25519_test.json")["numberOfTests"] > 500


# --- cacophony -----------------------------------------------------------------------


def side(vector: dict[str, Any], prefix: str) -> _HandshakeState:
    def key(name: str) -> bytes | None:
        value = vector.get(f"{prefix}_{name}")
        return None if value is None else bytes.fromhex(value)

    prologue = key("prologue")
    assert prologue is not None
    return _HandshakeState(
        vector["protocol_name"].split("_")[1],
        initiator=prefix == "init",
        prologue=prologue,
        static=key("static"),
        ephemeral=key("ephemeral"),
    )


@pytest.mark.parametrize("vector", cacophony(), ids=lambda v: v["protocol_name"])
def test_cacophony_vector(vector: dict[str, Any]) -> None:
    """Every handshake and transport ciphertext and the handshake hash, byte for byte.

    Cacophony alternates senders for the whole transcript, the initiator first.
    """
    initiator, responder = side(vector, "init"), side(vector, "resp")
    messages = vector["messages"]
    index = 0
    while not initiator.finished:
        writer, reader = (initiator, responder) if index % 2 == 0 else (responder, initiator)
        payload = bytes.fromhex(messages[index]["payload"])
        ciphertext = writer.write_message(payload)
        assert ciphertext.hex() == messages[index]["ciphertext"]
        assert reader.read_message(ciphertext) == payload
        index += 1
    assert responder.finished
    assert initiator.handshake_hash.hex() == vector["handshake_hash"]
    assert responder.handshake_hash.hex() == vector["handshake_hash"]
    i_send, i_receive = initiator.split()
    r_receive, r_send = responder.split()
    for message in messages[index:]:
        payload = bytes.fromhex(message["payload"])
        send, receive = (i_send, r_receive) if index % 2 == 0 else (r_send, i_receive)
        ciphertext = send.encrypt_with_ad(b"", payload)
        assert ciphertext.hex() == message["ciphertext"]
        assert receive.decrypt_with_ad(b"", ciphertext) == payload
        index += 1


# --- Wycheproof X25519 -------------------------------------------------------------------


def test_wycheproof_x25519_low_order_points_are_refused() -> None:
    cases = [
        case
        for group in load("wycheproof-x25519_test.json")["testGroups"]
        for case in group["tests"]
    ]
    refused = 0
    for case in cases:
        secret, public = bytes.fromhex(case["private"]), bytes.fromhex(case["public"])
        if "ZeroSharedSecret" in case["flags"] or case["shared"] == "00" * 32:
            with pytest.raises(AuthenticationFailed):
                _dh(secret, public)
            refused += 1
        elif case["result"] != "invalid":
            assert _dh(secret, public).hex() == case["shared"], case["tcId"]
    assert refused >= 30  # the file's low-order cases really were exercised


# --- noiseprotocol, an independent implementation ----------------------------------------


def theirs(role: Role, local: LocalIdentity, ephemeral: bytes) -> Any:
    noise_connection = pytest.importorskip("noise.connection")
    connection = noise_connection.NoiseConnection.from_name(NAME)
    if role is Role.INITIATOR:
        connection.set_as_initiator()
    else:
        connection.set_as_responder()
    connection.set_prologue(PROLOGUE)
    keypair = noise_connection.Keypair
    connection.set_keypair_from_private_bytes(keypair.STATIC, local.static_secret)
    connection.set_keypair_from_private_bytes(keypair.EPHEMERAL, ephemeral)
    with warnings.catch_warnings():  # it warns, rightly, that a pinned ephemeral is for tests
        warnings.simplefilter("ignore")
        connection.start_handshake()
    return connection


def payload(local: LocalIdentity) -> bytes:
    return codec.pack({"id": local.public.key, "cert": local.static_cert.to_wire()})


def reference_transcript() -> tuple[bytes, bytes, bytes, bytes]:
    """Messages 1-3 and the handshake hash of pli talking to pli, same pinned keys."""
    alice = Handshake(Role.INITIATOR, ALICE, accept, now=NOW, ephemeral_secret=E_ALICE)
    bob = Handshake(Role.RESPONDER, BOB, accept, now=NOW, ephemeral_secret=E_BOB)
    m1 = alice.initiate()
    m2 = bob.receive(m1)
    assert m2 is not None
    m3 = alice.receive(m2)
    assert m3 is not None
    assert bob.receive(m3) is None
    return m1, m2, m3, alice.handshake_hash


def check_transport(ours: Session, other: Any) -> None:
    for text in (b"referral letter", b"", b"x" * 1000):
        assert bytes(other.decrypt(ours.encrypt(text))) == text
        assert ours.decrypt(bytes(other.encrypt(text))) == text
    ours.rekey_outbound()
    other.rekey_inbound_cipher()
    assert bytes(other.decrypt(ours.encrypt(b"after rekey"))) == b"after rekey"
    other.rekey_outbound_cipher()
    ours.rekey_inbound()
    assert ours.decrypt(bytes(other.encrypt(b"and back"))) == b"and back"


def test_ours_initiator_against_noiseprotocol_responder() -> None:
    m1_ref, m2_ref, m3_ref, hash_ref = reference_transcript()
    alice = Handshake(Role.INITIATOR, ALICE, accept, now=NOW, ephemeral_secret=E_ALICE)
    bob = theirs(Role.RESPONDER, BOB, E_BOB)
    m1 = alice.initiate()
    assert bytes(bob.read_message(m1)) == b""
    m2 = bytes(bob.write_message(payload(BOB)))
    m3 = alice.receive(m2)
    assert m3 is not None
    assert bytes(bob.read_message(m3)) == payload(ALICE)
    assert bob.handshake_finished
    assert alice.complete
    assert (m1, m2, m3) == (m1_ref, m2_ref, m3_ref)
    assert alice.handshake_hash == bytes(bob.get_handshake_hash()) == hash_ref
    assert alice.session().remote.peer_id == BOB.peer_id
    check_transport(alice.session(), bob)


def test_noiseprotocol_initiator_against_ours_responder() -> None:
    m1_ref, m2_ref, m3_ref, hash_ref = reference_transcript()
    alice = theirs(Role.INITIATOR, ALICE, E_ALICE)
    bob = Handshake(Role.RESPONDER, BOB, accept, now=NOW, ephemeral_secret=E_BOB)
    m1 = bytes(alice.write_message(b""))
    m2 = bob.receive(m1)
    assert m2 is not None
    assert bytes(alice.read_message(m2)) == payload(BOB)
    m3 = bytes(alice.write_message(payload(ALICE)))
    assert bob.receive(m3) is None
    assert alice.handshake_finished
    assert bob.complete
    assert (m1, m2, m3) == (m1_ref, m2_ref, m3_ref)
    assert bob.handshake_hash == bytes(alice.get_handshake_hash()) == hash_ref
    assert bob.session().remote.peer_id == ALICE.peer_id
    check_transport(bob.session(), alice)
