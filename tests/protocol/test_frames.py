"""pli/2 sealed frames: keys from the handshake, counters, rekey, and every refusal.

Two finished Noise sessions are built in memory (no event loop, no socket); the
frames one side seals are opened by the other. The golden vector
(tests/data/frames-v2.json) is regenerated only when the format changes::

    .venv/bin/python -m tests.protocol.test_frames --regenerate
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    AuthenticationFailed,
    FrameOpener,
    FrameSealer,
    FrameTooLarge,
    LocalProtocolError,
    MalformedMessage,
    frame_ciphers,
    frames,
    limits,
    messages,
)
from tests.fuzzing import check_parses_or_refuses
from tests.protocol.test_noise import handshakes, run

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def pair() -> tuple[tuple[FrameSealer, FrameOpener], tuple[FrameSealer, FrameOpener]]:
    """Alice's and Bob's (sealer, opener) after one pinned handshake."""
    alice, bob = handshakes()
    run(alice, bob)
    return frame_ciphers(alice.session()), frame_ciphers(bob.session())


def bulk(payload: bytes) -> bytes:
    return bytes([messages.FrameType.BULK]) + payload


def test_both_directions_open_what_the_other_side_sealed() -> None:
    (a_seal, a_open), (b_seal, b_open) = pair()
    offer = messages.encode(messages.Offer(bytes(16), 5))
    kind, payload = b_open.open(a_seal.control(offer))
    assert kind is messages.FrameType.CONTROL
    assert bytes(payload) == offer
    kind, payload = a_open.open(b_seal.seal(bulk(b"envelope bytes")))
    assert kind is messages.FrameType.BULK
    assert bytes(payload) == b"envelope bytes"


def test_the_two_directions_have_different_keys_and_the_type_is_hidden() -> None:
    (a_seal, _), (b_seal, _) = pair()
    plaintext = bulk(b"x" * 100)
    assert a_seal.seal(plaintext) != b_seal.seal(plaintext)
    sealed = bytes(a_seal.seal(plaintext))
    assert len(sealed) == len(plaintext) + frames.TAG_SIZE
    assert plaintext not in sealed
    assert b"x" * 32 not in sealed


def test_keys_come_from_the_handshake_exporter() -> None:
    alice, bob = handshakes()
    run(alice, bob)
    session = alice.session()
    send_key, receive_key = frames.frame_keys(session)
    assert send_key == session.export(frames.LABEL_INITIATOR_TO_RESPONDER)
    assert receive_key == session.export(frames.LABEL_RESPONDER_TO_INITIATOR)
    assert frames.frame_keys(bob.session()) == (receive_key, send_key)


def test_replayed_reordered_dropped_and_reflected_frames_are_refused() -> None:
    (a_seal, a_open), (_, b_open) = pair()
    first, second = a_seal.seal(bulk(b"1")), a_seal.seal(bulk(b"2"))
    with pytest.raises(AuthenticationFailed):  # reordered (or the first dropped)
        FrameOpenerCopy(b_open).open(second)
    b_open.open(first)
    with pytest.raises(AuthenticationFailed):  # replayed
        FrameOpenerCopy(b_open).open(first)
    with pytest.raises(AuthenticationFailed):  # our own frame reflected back
        a_open.open(first)


class FrameOpenerCopy:
    """Open one frame with a copy of an opener's state (the original stays usable)."""

    def __init__(self, opener: FrameOpener) -> None:
        self._opener = FrameOpener(opener._state.key)
        self._opener._state.counter = opener.counter

    def open(self, frame: bytes | memoryview) -> object:
        return self._opener.open(frame)


@pytest.mark.parametrize("position", [0, 1, -frames.TAG_SIZE, -1])
def test_a_changed_byte_is_refused_and_the_direction_dies(position: int) -> None:
    sealer, opener = FrameSealer(KEY), FrameOpener(KEY)
    frame = bytearray(sealer.seal(bulk(b"hello world")))
    frame[position] ^= 0x01
    with pytest.raises(AuthenticationFailed):
        opener.open(bytes(frame))
    good = FrameSealer(KEY).seal(bulk(b"hello world"))
    with pytest.raises(AuthenticationFailed):  # dead: the connection is closed
        opener.open(good)


def test_truncated_empty_and_wrong_key_frames_are_refused() -> None:
    frame = FrameSealer(KEY).seal(bulk(b"hello"))
    with pytest.raises(AuthenticationFailed):
        FrameOpener(KEY).open(frame[:-1])
    with pytest.raises(MalformedMessage):
        FrameOpener(KEY).open(frame[: frames.TAG_SIZE])
    with pytest.raises(MalformedMessage):
        FrameOpener(KEY).open(b"")
    with pytest.raises(AuthenticationFailed):
        FrameOpener(OTHER_KEY).open(frame)


def test_oversized_frames_are_refused_before_decryption() -> None:
    with pytest.raises(FrameTooLarge):
        FrameOpener(KEY).open(bytes(limits.MAX_FRAME + 1))
    with pytest.raises(LocalProtocolError):
        FrameSealer(KEY).seal(bulk(bytes(frames.MAX_PLAINTEXT)))
    largest = FrameSealer(KEY).seal(bulk(bytes(1024 * 1024)))
    assert len(largest) <= limits.MAX_FRAME
    assert FrameOpener(KEY).open(largest)[0] is messages.FrameType.BULK


def test_an_unknown_type_inside_a_valid_frame_is_refused() -> None:
    frame = FrameSealer(KEY).seal(b"\x07payload")
    with pytest.raises(MalformedMessage):
        FrameOpener(KEY).open(frame)


def test_counter_rekey_happens_at_the_same_frame_on_both_sides() -> None:
    sealer, opener = FrameSealer(KEY, rekey_every=3), FrameOpener(KEY, rekey_every=3)
    never = FrameOpener(KEY)  # an opener that does not rekey at 3 frames
    for n in range(10):
        frame = sealer.seal(bulk(bytes([n])))
        assert bytes(opener.open(frame)[1]) == bytes([n])
        if n < 3:
            never.open(frame)
        elif n == 3:
            with pytest.raises(AuthenticationFailed):
                never.open(frame)
    third = frames.next_key(frames.next_key(frames.next_key(KEY)))
    assert sealer._state.key == opener._state.key == third


def test_explicit_rekey_switches_one_direction() -> None:
    sealer, opener = FrameSealer(KEY), FrameOpener(KEY)
    opener.open(sealer.control(messages.encode(messages.Rekey())))
    sealer.rekey()
    frame = sealer.seal(bulk(b"after"))
    with pytest.raises(AuthenticationFailed):
        FrameOpenerCopy(opener).open(frame)
    opener.rekey()
    assert bytes(opener.open(frame)[1]) == b"after"


def test_nonce_layout_and_rekey_function() -> None:
    assert frames.frame_nonce(1) == bytes(7) + b"\x01" + bytes(24)
    assert frames.next_key(KEY) != KEY
    assert len(frames.next_key(KEY)) == 32


@given(st.binary(max_size=200))
def test_any_bytes_open_or_raise_remote_error(data: bytes) -> None:
    check_parses_or_refuses(FrameOpener(KEY).open, data)


@given(st.binary(min_size=1, max_size=100), st.integers(min_value=0, max_value=130))
def test_any_single_byte_change_is_refused(payload: bytes, position: int) -> None:
    frame = bytearray(FrameSealer(KEY).seal(bulk(payload)))
    frame[position % len(frame)] ^= 0x80
    with pytest.raises(AuthenticationFailed):
        FrameOpener(KEY).open(bytes(frame))


# --- the golden vector -------------------------------------------------------------------

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "frames-v2.json"
GOLDEN_OFFER = messages.encode(messages.Offer(bytes(range(16)), 16384))


def golden_frames() -> dict[str, object]:
    """Frames of the pinned handshake (test_noise's ALICE → BOB, pinned ephemerals)."""
    alice, bob = handshakes()
    run(alice, bob)
    session = alice.session()
    send_key, receive_key = frames.frame_keys(session)
    sealer = FrameSealer(send_key, rekey_every=2)
    sealed = [
        sealer.control(GOLDEN_OFFER),  # frame 0
        sealer.seal(bulk(bytes(range(256)) * 4)),  # frame 1, then the counter rekey
        sealer.seal(bulk(b"after the rekey")),  # frame 2, under next_key(key)
    ]
    reply = FrameSealer(receive_key).control(messages.encode(messages.Rekey()))
    return {
        "comment": "pli/2 frames after test_noise.handshakes() (pinned); see test_frames.py",
        "handshake_hash": session.handshake_hash.hex(),
        "key_initiator_to_responder": send_key.hex(),
        "key_responder_to_initiator": receive_key.hex(),
        "rekey_every": 2,
        "initiator_frames": [frame.hex() for frame in sealed],
        "responder_frame_0": reply.hex(),
    }


def test_golden_frames_are_reproduced_and_open() -> None:
    expected = json.loads(GOLDEN.read_text())
    assert golden_frames() == expected
    opener = FrameOpener(bytes.fromhex(expected["key_initiator_to_responder"]), rekey_every=2)
    contents = [bytes(opener.open(bytes.fromhex(f))[1]) for f in expected["initiator_frames"]]
    assert contents == [GOLDEN_OFFER, bytes(range(256)) * 4, b"after the rekey"]
    responder = FrameOpener(bytes.fromhex(expected["key_responder_to_initiator"]))
    kind, payload = responder.open(bytes.fromhex(expected["responder_frame_0"]))
    assert kind is messages.FrameType.CONTROL
    assert messages.decode(bytes(payload)) == messages.Rekey()


if __name__ == "__main__" and "--regenerate" in sys.argv:
    GOLDEN.write_text(json.dumps(golden_frames(), indent=2) + "\n")
    print(f"wrote {GOLDEN}")
