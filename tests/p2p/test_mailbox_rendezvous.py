"""The rendezvous of pairing through a mailbox: its pipe, its listener, its subjects.

The pipe and the listener run over a small in-memory bus that matches subjects
as NATS does; the permissions that make the box token trustworthy are checked
against the real nats-server with the configuration ``server-config`` prints.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats
import nats.errors
import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2p.services.mailbox import rendezvous
from p2p.services.mailbox.rendezvous import (
    MailboxPipe,
    PipeClosed,
    Rendezvous,
    code_rendezvous,
    fingerprint_rendezvous,
    knock_subject,
    session_subject,
)
from protocol import LocalIdentity, codec
from tests.p2p.natsserver import connect_member
from tests.p2p.test_mailbox_server import Group, group  # noqa: F401 - the fixture

A, B, C = "a" * 20, "b" * 20, "c" * 20
OnMessage = Callable[[str, bytes], Awaitable[None]]


def matches(pattern: str, subject: str) -> bool:
    want, got = pattern.split("."), subject.split(".")
    for index, token in enumerate(want):
        if token == ">":
            return len(got) > index
        if index >= len(got) or token not in ("*", got[index]):
            return False
    return len(want) == len(got)


class Bus:
    """Core NATS, in memory: every subscriber whose pattern matches gets the message."""

    def __init__(self) -> None:
        self.subscriptions: list[tuple[str, OnMessage]] = []
        self.published: list[tuple[str, bytes]] = []
        self._deliveries: set[asyncio.Future[None]] = set()

    async def publish(self, subject: str, data: bytes) -> None:
        self.published.append((subject, data))
        for pattern, on_message in list(self.subscriptions):
            if matches(pattern, subject):
                delivery = asyncio.ensure_future(on_message(subject, data))
                self._deliveries.add(delivery)
                delivery.add_done_callback(self._deliveries.discard)


class FakeConnection:
    """What the rendezvous uses of ``Connection``, over the bus."""

    def __init__(self, bus: Bus, url: str = "nats://127.0.0.1:4222") -> None:
        self.bus = bus
        self.url = url
        self.connected = True
        self.session = object()

    async def raw_publish(self, subject: str, data: bytes) -> None:
        await self.bus.publish(subject, data)

    async def subscribe(
        self, subject: str, on_message: OnMessage
    ) -> Callable[[], Awaitable[None]] | None:
        entry = (subject, on_message)
        self.bus.subscriptions.append(entry)

        async def end() -> None:
            if entry in self.bus.subscriptions:
                self.bus.subscriptions.remove(entry)

        return end


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def frame(number: int, data: bytes) -> bytes:
    return codec.pack({"t": "frame", "n": number, "d": data})


async def test_subjects_carry_no_secret_and_depend_on_the_nameplate_only() -> None:
    assert code_rendezvous("123") == code_rendezvous("123")
    assert code_rendezvous("123") != code_rendezvous("124")
    assert "123" not in code_rendezvous("123")
    fingerprint = LocalIdentity.generate(now=0).peer_id.fingerprint
    assert fingerprint_rendezvous(fingerprint) == fingerprint_rendezvous(fingerprint.lower())
    assert fingerprint.replace("-", "").lower() not in fingerprint_rendezvous(fingerprint)
    assert knock_subject(A, "r" * 32) == f"pli.pair.{A}.{'r' * 32}"


@given(st.binary(max_size=256))
def test_any_bytes_are_a_message_or_ignored(data: bytes) -> None:
    message = rendezvous._message(data)
    assert message is None or message["t"] in ("knock", "here", "frame", "bye")


async def test_a_knock_is_answered_and_frames_flow_both_ways() -> None:
    bus = Bus()
    fingerprint = LocalIdentity.generate(now=0).peer_id.fingerprint
    served: list[bytes] = []

    async def echo(pipe: MailboxPipe) -> None:
        data = await pipe.receive()
        served.append(data)
        await pipe.send(data[::-1])
        await pipe.close()

    listener = Rendezvous(lambda: [FakeConnection(bus)], lambda: A, echo, fingerprint)
    running = asyncio.create_task(listener.run())
    try:
        await settle()
        knocker = Rendezvous(lambda: [FakeConnection(bus)], lambda: B, echo, fingerprint)
        pipe = await knocker.knock(fingerprint_rendezvous(fingerprint), timeout=5)
        assert pipe is not None
        assert pipe.peer_box == A
        assert "mailbox nats://127.0.0.1:4222" in pipe.remote_address
        await pipe.send(b"ping")
        assert await pipe.receive(timeout=5) == b"gnip"
        with pytest.raises(PipeClosed):  # the listener said bye
            await pipe.receive(timeout=5)
        assert served == [b"ping"]
    finally:
        running.cancel()
        await asyncio.wait([running])


async def test_nobody_listening_is_none_in_time() -> None:
    bus = Bus()
    fingerprint = LocalIdentity.generate(now=0).peer_id.fingerprint

    async def never(pipe: MailboxPipe) -> None:
        raise AssertionError("nobody listens")

    knocker = Rendezvous(lambda: [FakeConnection(bus)], lambda: B, never, fingerprint)
    assert await knocker.knock(code_rendezvous("123"), timeout=0.3) is None
    assert await Rendezvous(lambda: [], lambda: B, never, fingerprint).knock("r", 5) is None
    assert bus.subscriptions == []  # what the knock subscribed to is gone


async def pipe_heard_from_a(bus: Bus) -> MailboxPipe:
    """A knocking side's pipe that heard A's ``here``."""
    pipe = MailboxPipe(FakeConnection(bus), B, "r" * 32, "s" * 32, "")
    await pipe.deliver(session_subject(A, "r" * 32, "s" * 32), codec.pack({"t": "here"}))
    assert pipe.answered.is_set()
    return pipe


async def test_frames_from_another_member_or_our_echo_are_ignored() -> None:
    pipe = await pipe_heard_from_a(Bus())
    await pipe.deliver(session_subject(C, "r" * 32, "s" * 32), frame(0, b"intruder"))
    await pipe.deliver(session_subject(B, "r" * 32, "s" * 32), frame(0, b"our echo"))
    await pipe.deliver(session_subject(A, "r" * 32, "s" * 32), b"\xc1 not msgpack")
    await pipe.deliver(session_subject(A, "r" * 32, "s" * 32), frame(0, b"from A"))
    assert await pipe.receive(timeout=1) == b"from A"


async def test_a_lost_or_replayed_frame_ends_the_session() -> None:
    pipe = await pipe_heard_from_a(Bus())
    subject = session_subject(A, "r" * 32, "s" * 32)
    await pipe.deliver(subject, frame(0, b"one"))
    await pipe.deliver(subject, frame(0, b"one again"))
    assert await pipe.receive(timeout=1) == b"one"
    with pytest.raises(PipeClosed):
        await pipe.receive(timeout=1)
    with pytest.raises(PipeClosed):
        await pipe.send(b"after the end")


async def test_a_flood_of_frames_is_bounded() -> None:
    pipe = await pipe_heard_from_a(Bus())
    subject = session_subject(A, "r" * 32, "s" * 32)
    for number in range(rendezvous.QUEUE + 50):
        await pipe.deliver(subject, frame(number, b"x" * 1000))
    received = [await pipe.receive(timeout=1) for _ in range(rendezvous.QUEUE)]
    assert len(received) == rendezvous.QUEUE
    with pytest.raises(PipeClosed):  # what came beyond the queue ended the session
        await pipe.receive(timeout=1)


async def test_a_listener_holds_a_bounded_number_of_sessions() -> None:
    bus = Bus()
    fingerprint = LocalIdentity.generate(now=0).peer_id.fingerprint
    stop = asyncio.Event()

    async def hold(pipe: MailboxPipe) -> None:
        await stop.wait()

    listener = Rendezvous(lambda: [FakeConnection(bus)], lambda: A, hold, fingerprint)
    running = asyncio.create_task(listener.run())
    try:
        await settle()
        where = fingerprint_rendezvous(fingerprint)
        for index in range(rendezvous.MAX_SESSIONS + 5):
            knock = codec.pack({"t": "knock", "s": f"{index:032x}"})
            await bus.publish(knock_subject(C, where), knock)
        await bus.publish(knock_subject(A, where), codec.pack({"t": "knock", "s": "e" * 32}))
        await settle()
        answers = [s for s, _ in bus.published if s.startswith(f"pli.pair.{A}.{where}.")]
        assert len(answers) == rendezvous.MAX_SESSIONS  # our own knock: not a session
    finally:
        stop.set()
        running.cancel()
        await asyncio.wait([running])


async def test_the_server_vouches_for_the_box_of_a_pairing_message(
    group: Group,  # noqa: F811 - the fixture
) -> None:
    server, keys, homes = group
    a, b, x = [await connect_member(server, homes[name]) for name in ("a", "b", "x")]
    a_box, where = keys["a"]["box"], code_rendezvous("123")
    heard = await b.subscribe(f"pli.pair.*.{where}")
    await b.flush()
    await x.publish(knock_subject(a_box, where), b"x posing as a")  # refused by the server
    await x.flush()
    await a.publish(knock_subject(a_box, where), b"from a")
    await a.flush()
    message = await heard.next_msg(timeout=5)
    assert (message.subject, message.data) == (knock_subject(a_box, where), b"from a")
    with pytest.raises(nats.errors.TimeoutError):
        await heard.next_msg(timeout=0.5)
    spy = await x.subscribe(f"pli.box.{keys['b']['box']}.>")  # pairing opens no mailbox
    await a.publish(f"pli.box.{keys['b']['box']}.t1", b"sealed")
    with pytest.raises(nats.errors.TimeoutError):
        await spy.next_msg(timeout=0.5)
    for client in (a, b, x):
        await client.close()
