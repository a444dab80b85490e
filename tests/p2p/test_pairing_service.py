"""The pairing service over real loopback WebSockets (``p2p.net.transport.Transport``).

Two (or three) practices, each a ``PairingService`` behind its own
``Transport`` on 127.0.0.1 (``on_pairing=service.serve``); the peer store is a
list. No daemon: this is the service as the daemon will wire it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from p2p.errors import BadInput, PairingFailed
from p2p.net.transport import ChannelClosed, FramePipe, Transport
from p2p.services.pairing.service import (
    FINAL_STATES,
    MAX_REQUESTS,
    MAX_REQUESTS_PER_IP,
    PairingService,
    PendingPairing,
    Side,
    State,
)
from p2p.services.pairing.wire import (
    CONFIRM_TIMEOUT_MESSAGE,
    DECLINED_MESSAGE,
    EXPIRED_MESSAGE,
    PEER_REFUSED_MESSAGE,
    PEER_STOPPED_MESSAGE,
    TIMEOUT_MESSAGE,
    UNKNOWN_MESSAGE,
    USED_MESSAGE,
    YOU_DECLINED_MESSAGE,
    YOU_REFUSED_MESSAGE,
)
from protocol import (
    WRONG_CODE_MESSAGE,
    AuthenticationFailed,
    LocalIdentity,
    PairedPeer,
    Pairing,
    PairingCode,
    PairingRole,
    RemotePeer,
    codec,
    new_discovery_secret,
)


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Practice:
    name: str
    me: LocalIdentity
    card: bytes
    secret: bytes
    service: PairingService
    transport: Transport
    clock: Clock
    stored: list[PairedPeer] = field(default_factory=list)
    adverts: list[str | None] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.transport.port}"

    async def dial(self, other: Practice) -> FramePipe:
        return await self.transport.dial_pairing(other.address)


def _refuse(remote: RemotePeer) -> None:
    raise AuthenticationFailed("no document channel in these tests")


async def _no_channel(channel: object) -> None:  # pragma: no cover - never authorised
    return None


async def start_practice(name: str, **timeouts: float) -> Practice:
    me = LocalIdentity.generate(now=int(time.time()))
    card = me.card(1, name=name, profession="médecin généraliste").sign(me.identity)
    secret = new_discovery_secret()
    clock = Clock()
    holder: dict[str, Practice] = {}
    stored: list[PairedPeer] = []
    adverts: list[str | None] = []

    async def advertise(nameplate: str | None) -> None:
        adverts.append(nameplate)

    async def store(peer: PairedPeer) -> None:
        stored.append(peer)

    service = PairingService(
        me,
        lambda: card,
        secret,
        my_addresses=lambda: [holder["p"].address],
        store_peer=store,
        on_invitation_change=advertise,
        on_event=None,
        now=clock,
        **timeouts,
    )
    transport = Transport(me, _refuse, _no_channel, on_pairing=service.serve)
    await transport.start("127.0.0.1", 0)
    practice = Practice(name, me, card, secret, service, transport, clock, stored, adverts)
    holder["p"] = practice
    return practice


async def stop_practice(practice: Practice) -> None:
    await practice.service.close()
    await practice.transport.stop()


@pytest.fixture
async def alice() -> AsyncIterator[Practice]:
    practice = await start_practice("Dr Alice Martin", exchange_timeout=2.0, confirm_timeout=5.0)
    yield practice
    await stop_practice(practice)


@pytest.fixture
async def bob() -> AsyncIterator[Practice]:
    practice = await start_practice("Dr Bob Durand", exchange_timeout=2.0, confirm_timeout=5.0)
    yield practice
    await stop_practice(practice)


async def eventually(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def pending_of(practice: Practice) -> PendingPairing:
    await eventually(practice.service.pending)
    (pending,) = practice.service.pending()
    return pending


def assert_knows(practice: Practice, other: Practice) -> None:
    (peer,) = practice.stored
    assert peer.identity == other.me.public
    assert peer.card_wire == other.card
    assert peer.discovery_secret == other.secret
    assert peer.card.name == other.name
    assert other.address in peer.addresses


def nothing_stored(*practices: Practice) -> None:
    for practice in practices:
        assert practice.stored == []


# --- code pairing --------------------------------------------------------------------------------


async def test_right_code_same_sas_both_confirm_both_store(alice: Practice, bob: Practice) -> None:
    invitation = alice.service.invite()
    assert alice.service.status(invitation.nameplate).state is State.WAITING
    accepting = asyncio.create_task(bob.service.accept(str(invitation.code), await bob.dial(alice)))

    shown = await alice.service.wait(invitation.id, 5)
    assert shown.state is State.NEEDS_CONFIRMATION
    assert shown.peer_name == "Dr Bob Durand"
    assert shown.fingerprint == bob.me.peer_id.fingerprint
    on_bob = await pending_of(bob)
    assert on_bob.role is Side.INVITEE
    assert on_bob.peer_name == "Dr Alice Martin"
    assert on_bob.fingerprint == alice.me.peer_id.fingerprint
    assert shown.sas == on_bob.sas
    assert shown.sas is not None
    assert len(shown.sas) == 6

    alice.service.confirm(invitation.id, True)
    waiting = await alice.service.wait(invitation.id, 5, until={State.WAITING_FOR_PEER})
    assert waiting.state is State.WAITING_FOR_PEER
    assert alice.stored == []  # not before the other person confirmed too
    bob.service.confirm(on_bob.id, True)

    outcome = await asyncio.wait_for(accepting, 5)
    assert outcome.sas == shown.sas
    assert outcome.role is Side.INVITEE
    final = await alice.service.wait(invitation.id, 5)
    assert final.state is State.PAIRED
    assert_knows(alice, bob)
    assert_knows(bob, alice)
    assert bob.stored[0].addresses[0] == alice.address  # the address it dialled comes first
    assert alice.service.pending() == []
    assert bob.service.pending() == []


@pytest.mark.parametrize("refuser", ["inviter", "invitee"])
async def test_a_refused_sas_stores_nothing_on_either_side(
    alice: Practice, bob: Practice, refuser: str
) -> None:
    invitation = alice.service.invite()
    attempt = bob.service.start_accept(str(invitation.code), await bob.dial(alice))
    await alice.service.wait(invitation.id, 5)
    await bob.service.wait(attempt, 5)
    if refuser == "inviter":
        bob.service.confirm(attempt, True)
        alice.service.confirm(invitation.id, False)
    else:
        alice.service.confirm(invitation.id, True)
        bob.service.confirm(attempt, False)

    on_alice = await alice.service.wait(invitation.id, 5)
    on_bob = await bob.service.wait(attempt, 5)
    assert on_alice.state is State.FAILED
    assert on_bob.state is State.FAILED
    refused, other = (on_alice, on_bob) if refuser == "inviter" else (on_bob, on_alice)
    assert refused.message == YOU_REFUSED_MESSAGE
    assert other.message == PEER_REFUSED_MESSAGE
    nothing_stored(alice, bob)


async def test_nobody_confirming_in_time_stores_nothing() -> None:
    alice = await start_practice("Dr Alice Martin", confirm_timeout=0.5)
    bob = await start_practice("Dr Bob Durand", confirm_timeout=0.5)
    try:
        invitation = alice.service.invite()
        attempt = bob.service.start_accept(invitation.code, await bob.dial(alice))
        assert (await alice.service.wait(invitation.id, 5)).state is State.NEEDS_CONFIRMATION
        bob.service.confirm((await pending_of(bob)).id, True)  # only one person answers
        on_alice = await alice.service.wait(invitation.id, 5, until=FINAL_STATES)
        on_bob = await bob.service.wait(attempt, 5)
        assert on_alice.state is on_bob.state is State.FAILED
        assert on_alice.message == on_bob.message == CONFIRM_TIMEOUT_MESSAGE
        nothing_stored(alice, bob)
    finally:
        await stop_practice(alice)
        await stop_practice(bob)


async def test_the_inviter_stopping_during_confirmation_stores_nothing(
    alice: Practice, bob: Practice
) -> None:
    invitation = alice.service.invite()
    accepting = asyncio.create_task(
        bob.service.accept(invitation.code, await bob.dial(alice), auto_confirm=True)
    )
    await alice.service.wait(invitation.id, 5)
    await alice.service.close()
    with pytest.raises(PairingFailed) as failure:
        await asyncio.wait_for(accepting, 5)
    assert failure.value.message == PEER_STOPPED_MESSAGE
    assert alice.service.status(invitation.id).state is State.FAILED
    with pytest.raises(BadInput):
        alice.service.invite()
    nothing_stored(alice, bob)


async def test_wrong_code_fails_burns_the_invitation_and_the_right_code_is_then_refused(
    alice: Practice, bob: Practice
) -> None:
    invitation = alice.service.invite()
    code = invitation.code
    wrong = PairingCode(code.nameplate, f"{(int(code.secret) + 1) % 10**7:07d}")

    with pytest.raises(PairingFailed) as failure:
        await bob.service.accept(str(wrong), await bob.dial(alice))
    assert failure.value.message == WRONG_CODE_MESSAGE
    assert failure.value.reason == "wrong-code"
    assert failure.value.exit_code == 4
    on_alice = await alice.service.wait(invitation.id, 5)
    assert on_alice.state is State.FAILED
    assert on_alice.message == WRONG_CODE_MESSAGE
    assert on_alice.reason == "wrong-code"
    assert on_alice.as_dict()["reason"] == "wrong-code"

    with pytest.raises(PairingFailed) as again:
        await bob.service.accept(str(code), await bob.dial(alice))
    assert again.value.message == USED_MESSAGE
    nothing_stored(alice, bob)


async def test_an_expired_code_is_refused_with_the_expiry_message(
    alice: Practice, bob: Practice
) -> None:
    invitation = alice.service.invite(lifetime=600)
    alice.clock.offset = 601
    with pytest.raises(PairingFailed) as failure:
        await bob.service.accept(str(invitation.code), await bob.dial(alice))
    assert failure.value.message == EXPIRED_MESSAGE
    assert failure.value.reason == "expired"
    assert failure.value.exit_code == 1
    status = alice.service.status(invitation.id)
    assert status.state is State.FAILED
    assert status.message == EXPIRED_MESSAGE
    assert status.reason == "expired"
    nothing_stored(alice, bob)


async def test_another_nameplate_burns_nothing(alice: Practice, bob: Practice) -> None:
    invitation = alice.service.invite(auto_confirm=True)
    other = PairingCode(f"{(int(invitation.nameplate) + 1) % 1000:03d}", invitation.code.secret)
    with pytest.raises(PairingFailed) as failure:
        await bob.service.accept(other, await bob.dial(alice))
    assert failure.value.message == UNKNOWN_MESSAGE
    assert alice.service.status(invitation.id).state is State.WAITING

    outcome = await bob.service.accept(invitation.code, await bob.dial(alice), auto_confirm=True)
    assert outcome.peer.identity == alice.me.public
    assert (await alice.service.wait(invitation.id, 5)).state is State.PAIRED
    assert_knows(alice, bob)


async def test_message_1_then_silence_burns_the_code_and_ends_in_time(
    alice: Practice, bob: Practice
) -> None:
    invitation = alice.service.invite()
    silent = Pairing(
        PairingRole.INVITEE, invitation.code, bob.me, bob.card, bob.secret, now=int(time.time())
    )
    pipe = await bob.dial(alice)
    started = time.monotonic()
    await pipe.send(silent.start())
    message_2 = await pipe.receive(timeout=5)
    assert codec.unpack(message_2)["t"] == "pake"
    # ... and say nothing more. The inviter hangs up at its 2 s deadline.
    error = await pipe.receive(timeout=5)
    assert codec.unpack(error) == {"t": "error", "code": "timeout"}
    elapsed = time.monotonic() - started
    assert elapsed < 3.5
    status = await alice.service.wait(invitation.id, 1)
    assert status.state is State.FAILED
    assert status.message == TIMEOUT_MESSAGE
    await pipe.close()

    with pytest.raises(PairingFailed) as again:
        await bob.service.accept(str(invitation.code), await bob.dial(alice))
    assert again.value.message == USED_MESSAGE
    nothing_stored(alice, bob)


async def test_a_connection_that_drops_after_message_1_also_burns_the_code(
    alice: Practice, bob: Practice
) -> None:
    invitation = alice.service.invite()
    pairing = Pairing(
        PairingRole.INVITEE, invitation.code, bob.me, bob.card, bob.secret, now=int(time.time())
    )
    pipe = await bob.dial(alice)
    await pipe.send(pairing.start())
    await pipe.receive(timeout=5)
    await pipe.close()
    status = await alice.service.wait(invitation.id, 5)
    assert status.state is State.FAILED
    with pytest.raises(PairingFailed, match="already used"):
        await bob.service.accept(str(invitation.code), await bob.dial(alice))


async def test_the_nameplate_is_advertised_while_open_only(alice: Practice, bob: Practice) -> None:
    invitation = alice.service.invite(auto_confirm=True)
    await eventually(lambda: alice.adverts == [invitation.nameplate])
    await bob.service.accept(invitation.code, await bob.dial(alice), auto_confirm=True)
    await eventually(lambda: alice.adverts == [invitation.nameplate, None])

    cancelled = alice.service.invite()
    await eventually(lambda: alice.adverts[-1] == cancelled.nameplate)
    alice.service.cancel(cancelled.nameplate)
    await eventually(lambda: alice.adverts[-1] is None)
    assert alice.service.status(cancelled.id).state is State.FAILED


async def test_a_malformed_code_is_bad_input(alice: Practice, bob: Practice) -> None:
    with pytest.raises(BadInput, match="7 digits after the dash"):
        await bob.service.accept("314-15", await bob.dial(alice))


# --- fingerprint pairing ------------------------------------------------------------------------


async def test_fingerprint_request_accepted_both_store(alice: Practice, bob: Practice) -> None:
    typed = alice.me.peer_id.fingerprint.lower().replace("-", " ")  # as read over the phone
    attempt = bob.service.start_request(typed, await bob.dial(alice))

    request = await pending_of(alice)
    assert request.role is Side.RESPONDER
    assert request.peer_name == "Dr Bob Durand"
    assert request.fingerprint == bob.me.peer_id.fingerprint
    asking = await bob.service.wait(attempt, 5, until={State.WAITING_FOR_PEER})
    assert asking.state is State.WAITING_FOR_PEER
    assert asking.fingerprint == alice.me.peer_id.fingerprint
    assert asking.sas == request.sas  # the check code read over the phone
    assert alice.stored == []

    alice.service.confirm(request.id, True)
    done = await bob.service.wait(attempt, 5)
    assert done.state is State.PAIRED
    assert done.peer_name == "Dr Alice Martin"
    await eventually(lambda: alice.stored)
    assert_knows(alice, bob)
    assert_knows(bob, alice)


async def test_fingerprint_request_refused_stores_nothing(alice: Practice, bob: Practice) -> None:
    requesting = asyncio.create_task(
        bob.service.request(alice.me.peer_id.fingerprint, await bob.dial(alice))
    )
    request = await pending_of(alice)
    alice.service.confirm(request.id, False)
    with pytest.raises(PairingFailed) as failure:
        await asyncio.wait_for(requesting, 5)
    assert failure.value.message == DECLINED_MESSAGE
    status = await alice.service.wait(request.id, 5)
    assert status.state is State.FAILED
    assert status.message == YOU_DECLINED_MESSAGE
    nothing_stored(alice, bob)


async def test_wrong_fingerprint_aborts_before_saying_who_we_are(
    alice: Practice, bob: Practice
) -> None:
    somebody_else = LocalIdentity.generate(now=int(time.time()))
    with pytest.raises(PairingFailed) as failure:
        await bob.service.request(somebody_else.peer_id.fingerprint, await bob.dial(alice))
    assert "is not the practice with fingerprint" in failure.value.message
    assert alice.address in failure.value.message
    assert failure.value.reason == "not-that-peer"
    assert failure.value.exit_code == 4
    await asyncio.sleep(0.1)
    assert alice.service.pending() == []
    nothing_stored(alice, bob)


async def test_requester_hanging_up_withdraws_the_pending_request(
    alice: Practice, bob: Practice
) -> None:
    requesting = asyncio.create_task(
        bob.service.request(alice.me.peer_id.fingerprint, await bob.dial(alice))
    )
    request = await pending_of(alice)
    requesting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await requesting
    status = await alice.service.wait(request.id, 5, until=FINAL_STATES)
    assert status.state is State.FAILED
    assert alice.service.pending() == []
    with pytest.raises(BadInput):
        alice.service.confirm(request.id, True)
    nothing_stored(alice, bob)


async def test_fingerprint_typos_and_our_own_fingerprint_are_bad_input(
    alice: Practice, bob: Practice
) -> None:
    good = alice.me.peer_id.fingerprint
    typo = ("A" if good[0] != "A" else "B") + good[1:]
    with pytest.raises(BadInput, match="typo"):
        await bob.service.request(typo, await bob.dial(alice))
    with pytest.raises(BadInput, match="own fingerprint"):
        await bob.service.request(bob.me.peer_id.fingerprint, await bob.dial(alice))


async def test_garbage_first_frame_is_refused(alice: Practice, bob: Practice) -> None:
    pipe = await bob.dial(alice)
    await pipe.send(b"\x00not msgpack")
    reply = await pipe.receive(timeout=5)
    assert codec.unpack(reply) == {"t": "error", "code": "bad-message"}
    await pipe.close()


async def test_one_address_cannot_hold_every_fingerprint_request_slot(
    alice: Practice, bob: Practice
) -> None:
    """Issue 8 §1.6: one IP held all 8 slots; now at most MAX_REQUESTS_PER_IP of them."""
    strangers = [await start_practice(f"Dr Stranger {n}") for n in range(MAX_REQUESTS_PER_IP)]
    try:
        asking = [
            asyncio.create_task(
                s.service.request(alice.me.peer_id.fingerprint, await s.dial(alice))
            )
            for s in strangers
        ]
        await eventually(lambda: len(alice.service.pending()) == MAX_REQUESTS_PER_IP)
        assert MAX_REQUESTS_PER_IP < MAX_REQUESTS
        with pytest.raises(PairingFailed) as refused:  # all from 127.0.0.1, as the strangers
            await bob.service.request(alice.me.peer_id.fingerprint, await bob.dial(alice))
        assert refused.value.reason == "busy"
        assert refused.value.exit_code == 1
        for task in asking:
            task.cancel()
        await asyncio.gather(*asking, return_exceptions=True)
        await eventually(lambda: not alice.service.pending())
        request = asyncio.create_task(
            bob.service.request(alice.me.peer_id.fingerprint, await bob.dial(alice))
        )
        pending = await pending_of(alice)  # the slots came back
        assert pending.fingerprint == bob.me.peer_id.fingerprint
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)
    finally:
        for stranger in strangers:
            await stop_practice(stranger)


async def frames_until_closed(pipe: FramePipe) -> list[bytes]:
    """What the peer still sends before it closes (bounded: at most 10 frames, 2 s each)."""
    frames: list[bytes] = []
    for _ in range(10):
        try:
            frames.append(await pipe.receive(timeout=2))
        except ChannelClosed:
            return frames
    raise AssertionError("the peer kept sending")


async def _invitee_by_hand(
    alice: Practice, bob: Practice, invitation_code: PairingCode
) -> tuple[Pairing, FramePipe]:
    """Bob's side run by the test over a real pipe: messages 1-4, nothing more."""
    pipe = await bob.dial(alice)
    me = Pairing(
        PairingRole.INVITEE,
        invitation_code,
        bob.me,
        bob.card,
        bob.secret,
        now=int(time.time()),
        my_addresses=[bob.address],
    )
    await pipe.send(me.start())
    m3 = me.receive(await pipe.receive(timeout=5))
    assert m3 is not None
    await pipe.send(m3)
    assert me.receive(await pipe.receive(timeout=5)) is None
    assert me.complete
    return me, pipe


@pytest.mark.parametrize("alice_says", [True, False])
async def test_the_inviter_sends_its_discovery_secret_only_after_both_confirmed(
    alice: Practice, bob: Practice, alice_says: bool
) -> None:
    """Issue 8 §1.6: the secret was in message 4, before anybody compared the SAS."""
    invitation = alice.service.invite()
    me, pipe = await _invitee_by_hand(alice, bob, invitation.code)
    assert me.result().discovery_secret == b""  # nothing yet, after all four messages
    await pipe.send(codec.pack({"t": "sas", "ok": True}))  # Bob's person said yes
    await alice.service.wait(invitation.id, 5)
    alice.service.confirm(invitation.id, alice_says)
    decision = codec.unpack(await pipe.receive(timeout=5))
    assert decision == {"t": "sas", "ok": alice_says}
    if alice_says:
        assert me.receive(await pipe.receive(timeout=5)) is None  # message 5
        assert me.result().discovery_secret == alice.secret
        await pipe.send(me.secret_message())
        await eventually(lambda: alice.stored)
        assert alice.stored[0].discovery_secret == bob.secret
    else:
        assert await frames_until_closed(pipe) == []  # closed, no secret ever sent
        nothing_stored(alice)
    await pipe.close()


async def test_the_inviter_keeps_its_secret_while_the_invitee_has_not_confirmed(
    alice: Practice, bob: Practice
) -> None:
    invitation = alice.service.invite(auto_confirm=True)  # Alice's person said yes at once
    me, pipe = await _invitee_by_hand(alice, bob, invitation.code)
    assert codec.unpack(await pipe.receive(timeout=5)) == {"t": "sas", "ok": True}
    with pytest.raises(TimeoutError):  # no secret until Bob's "ok"
        await pipe.receive(timeout=0.5)
    assert me.result().discovery_secret == b""
    await pipe.close()


async def test_a_retry_replaces_the_older_request_which_is_declined(
    alice: Practice, bob: Practice
) -> None:
    first = asyncio.create_task(
        bob.service.request(alice.me.peer_id.fingerprint, await bob.dial(alice))
    )
    older = await pending_of(alice)
    second = asyncio.create_task(
        bob.service.request(alice.me.peer_id.fingerprint, await bob.dial(alice))
    )
    with pytest.raises(PairingFailed) as declined:
        await first
    assert declined.value.reason == "declined"
    replaced = await alice.service.wait(older.id, 5, until=FINAL_STATES)
    assert replaced.reason == "replaced"
    newer = await pending_of(alice)
    assert newer.id != older.id
    alice.service.confirm(newer.id, True)
    outcome = await second
    assert outcome.peer.identity == alice.me.public
    await eventually(lambda: alice.stored)
    assert_knows(alice, bob)
