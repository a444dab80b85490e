"""One ``Connection`` against the real nats-server: the state it shows a person.

A mailbox server down when the daemon starts is "unreachable" (not
"connecting…" forever), and connected once the server comes up; a server
that refuses the practice's key or credentials says so, in words.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import nacl.utils
import nkeys
import pytest

from p2p.errors import BadInput
from p2p.services.mailbox.connection import Ack, Connection, credential_options
from p2p.storage import mailboxes
from protocol import mailbox as frames
from tests.p2p.natsserver import server_for


def fresh_member() -> tuple[str, str, str]:
    """A member nkey seed, its member key (``U…:box``) and its box, made here."""
    seed = nkeys.encode_seed(nacl.utils.random(32), nkeys.PREFIX_BYTE_USER).decode()
    public = nkeys.from_seed(seed.encode()).public_key.decode()
    box = nacl.utils.random(10).hex()
    return seed, f"{public}:{box}", box


async def ignore(_c: Connection, _peer: str, _frame: frames.Frame, _ack: Ack) -> None:
    raise AssertionError("no message is expected")


async def until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the state did not come in time"
        await asyncio.sleep(0.05)


def connection(url: str, options: dict[str, object], box: str) -> Connection:
    return Connection(url, options, box, ignore, dict)


async def test_a_server_down_at_start_is_unreachable_then_connected(tmp_path: Path) -> None:
    seed, member, box = fresh_member()
    server = server_for(tmp_path / "nats", [member])  # configured, not started
    mailbox = connection(server.url, credential_options(seed, None), box)
    task = asyncio.create_task(mailbox.run())
    try:
        await until(lambda: mailbox.state == "unreachable")
        assert mailbox.message == "the mailbox server cannot be reached"
        await asyncio.to_thread(server.start)
        await until(lambda: mailbox.state == "connected")
        assert mailbox.connected
        assert mailbox.message == ""
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.stop()


async def test_a_cluster_with_every_node_down_is_unreachable(tmp_path: Path) -> None:
    seed, member, box = fresh_member()
    nodes = [server_for(tmp_path / f"n{i}", [member]) for i in range(3)]
    url = ",".join(node.url for node in nodes)
    mailbox = connection(url, credential_options(seed, None), box)
    task = asyncio.create_task(mailbox.run())
    try:
        await until(lambda: mailbox.state != "connecting")
        assert mailbox.state == "unreachable"
        assert mailbox.message == "the mailbox server cannot be reached"
        assert not mailbox.connected
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_frozen_server_ends_the_session_instead_of_holding_a_post(tmp_path: Path) -> None:
    """The server stops reading in the middle of a large post (SIGSTOP: a hung machine;
    a node gone behind a path that drops packets): the post stops and the mailbox says
    unreachable within seconds, instead of waiting for the socket for ever (which held
    that colleague's outbox for good); once the server is back, it connects again."""
    seed, member, box = fresh_member()
    server = server_for(tmp_path / "nats", [member]).start()
    assert server.proc is not None
    mailbox = connection(server.url, credential_options(seed, None), box)
    task = asyncio.create_task(mailbox.run())
    chunk = bytes(frames.CHUNK_SIZE)

    async def post() -> int:
        """Chunks until the connection says it cannot take more (at most 200 MiB)."""
        sent = 0
        while sent < 200 and await mailbox.publish_async(box, chunk, f"c{sent}") is not None:
            sent += 1
        return sent

    posting: asyncio.Task[int] | None = None
    try:
        await until(lambda: mailbox.connected)
        server.proc.send_signal(signal.SIGSTOP)
        posting = asyncio.create_task(post())
        try:
            await until(posting.done, timeout=45)
            await until(lambda: mailbox.state == "unreachable", timeout=15)
            assert 0 < posting.result() < 200  # as far as the socket's buffers took it
        finally:
            server.proc.send_signal(signal.SIGCONT)
        await until(lambda: mailbox.connected)
    finally:
        for running in (task, posting):
            if running is not None:
                running.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.stop()


def creds_text(seed: str, jwt: str = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJVIn0.c2ln") -> str:
    """A .creds file as ``nsc generate creds`` writes it (this JWT is not one the
    server issued, so a server run with nkeys refuses it)."""
    return (
        f"-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    )


async def test_refused_key_and_credentials_are_said_in_words(tmp_path: Path) -> None:
    seed, member, box = fresh_member()
    stranger, _member, _box = fresh_member()
    server = server_for(tmp_path / "nats", [member]).start()
    creds = tmp_path / "practice.creds"
    creds.write_text(creds_text(seed))
    refused_key = connection(server.url, credential_options(stranger, None), box)
    refused_creds = connection(server.url, credential_options(seed, creds), box)
    tasks = [asyncio.create_task(c.run()) for c in (refused_key, refused_creds)]
    try:
        await until(lambda: refused_key.state == refused_creds.state == "refused")
        assert refused_key.message == "the mailbox server refused this practice's key"
        assert refused_creds.message == "the mailbox server refused this practice's credentials"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        server.stop()


async def test_a_damaged_credentials_file_is_unusable_not_a_hang(tmp_path: Path) -> None:
    """nats-py loops forever on a file without its JWT line: it is never handed one."""
    seed, member, box = fresh_member()
    server = server_for(tmp_path / "nats", [member]).start()
    creds = tmp_path / "practice.creds"
    creds.write_text(f"-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n")
    mailbox = connection(server.url, credential_options(seed, creds), box)
    task = asyncio.create_task(mailbox.run())
    try:
        await until(lambda: mailbox.state == "unusable")
        assert "credentials file" in mailbox.message
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.stop()


def test_only_a_creds_file_is_taken(tmp_path: Path) -> None:
    seed, _member, _box = fresh_member()
    good = creds_text(seed).encode()
    mailboxes.check_credentials(good)
    for bad in (
        b"",
        b"hello\n",
        good.replace(b"BEGIN NATS USER JWT", b"BEGIN SOMETHING"),
        good.replace(seed.encode(), b"SUNOTASEED"),
        creds_text(seed.replace("SU", "SA", 1)).encode(),
        good + b"\n" * (mailboxes.MAX_CREDENTIALS + 1),
    ):
        with pytest.raises(BadInput):
            mailboxes.check_credentials(bad)
    with pytest.raises(BadInput):
        mailboxes.add(tmp_path, "nats://127.0.0.1:4222", b"hello\n")
    assert mailboxes.load(tmp_path) == []
