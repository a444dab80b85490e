"""The configuration ``pli mailbox server-config`` prints, run by the real nats-server.

A member signs in with its nkey and can leave messages in another member's
mailbox; a client without credentials is not let in; another member cannot
read B's mailbox, neither through JetStream nor by subscribing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js import api

from p2p.services.mailbox import server_config
from p2p.services.mailbox.stream import STREAM, full, stream_config
from p2p.storage import mailboxes
from protocol import mailbox as frames
from tests.p2p.natsserver import NatsServer, connect_member, server_for


def pli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "p2p", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def member(home: Path, name: str) -> dict[str, str]:
    assert pli(home, "init", "--name", name).returncode == 0
    done = pli(home, "--json", "mailbox", "key")
    assert done.returncode == 0, done.stderr
    key: dict[str, str] = json.loads(done.stdout)
    return key


Group = tuple[NatsServer, dict[str, dict[str, str]], dict[str, Path]]


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    homes = {name: tmp_path / name for name in ("a", "b", "x")}
    keys = {name: member(home, f"Dr {name}") for name, home in homes.items()}
    server = server_for(tmp_path / "nats", [k["member"] for k in keys.values()]).start()
    try:
        yield server, keys, homes
    finally:
        server.stop()


def test_member_key_is_private_and_stable(tmp_path: Path) -> None:
    home = tmp_path / "a"
    first = member(home, "Dr A")
    assert (home / mailboxes.NKEY_FILE).stat().st_mode & 0o777 == 0o600
    assert first["nkey"].startswith("U")
    assert first["member"] == f"{first['nkey']}:{first['box']}"
    assert json.loads(pli(home, "--json", "mailbox", "key").stdout) == first
    assert mailboxes.nkey_seed(home) not in pli(home, "mailbox", "key").stdout


def test_server_config_refuses_a_bad_member_key(tmp_path: Path) -> None:
    done = pli(tmp_path, "mailbox", "server-config", "--member", "UNOTAKEY:1234")
    assert done.returncode == 1
    assert "not a member key" in done.stderr
    assert "Traceback" not in done.stderr


async def test_members_in_nobody_else(
    group: Group,
) -> None:
    server, keys, homes = group
    b = await connect_member(server, homes["b"])
    a_box, b_box = keys["a"]["box"], keys["b"]["box"]
    await b.jetstream().add_stream(
        api.StreamConfig(name=STREAM, subjects=[server_config.subject(b_box)])
    )
    a = await connect_member(server, homes["a"])
    ack = await a.jetstream().publish(server_config.subject(b_box, a_box), b"sealed")
    assert ack.stream == STREAM
    assert ack.seq == 1
    largest = bytes(frames.MAX_FRAME)  # a full 1 MiB chunk: under the server's max_payload
    assert (await a.jetstream().publish(server_config.subject(b_box, a_box), largest)).seq == 2

    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(
            server.url,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=2,
        )

    x = await connect_member(server, homes["x"])
    with pytest.raises(nats.js.errors.NotFoundError):
        await x.jetstream().stream_info(STREAM)
    spy = await x.subscribe(server_config.subject(b_box))
    await a.jetstream().publish(server_config.subject(b_box, a_box), b"sealed too")
    with pytest.raises(nats.errors.TimeoutError):
        await spy.next_msg(timeout=1)
    info = await b.jetstream().stream_info(STREAM)
    assert info.state.messages == 3  # all reached B's mailbox, and only there
    for client in (a, b, x):
        await client.close()


async def test_a_member_publishes_as_itself_only_and_within_its_share(group: Group) -> None:
    """The stream B's daemon creates caps each sender: A cannot go past its share by
    writing under another sender's box or a made-up one, and its refusal is "full"."""
    server, keys, homes = group
    a_box, b_box, x_box = (keys[name]["box"] for name in ("a", "b", "x"))

    b, a, x = [await connect_member(server, homes[name]) for name in ("b", "a", "x")]
    await b.jetstream().add_stream(stream_config(b_box, 1, per_sender=2))
    js = a.jetstream(timeout=2)
    for n in range(2):
        await js.publish(server_config.subject(b_box, a_box), b"sealed %d" % n)
    with pytest.raises(nats.js.errors.APIError) as refused:
        await js.publish(server_config.subject(b_box, a_box), b"one too many")
    assert full(refused.value), refused.value
    for other in (x_box, "0" * 20, "made-up"):  # another sender's share, or none
        with pytest.raises((nats.errors.NoRespondersError, nats.errors.TimeoutError)):
            await js.publish(server_config.subject(b_box, other), b"sealed")
    await x.jetstream().publish(server_config.subject(b_box, x_box), b"sealed by x")
    info = await b.jetstream().stream_info(STREAM)
    assert info.state.messages == 3  # two of A's, one of X's, nothing else
    for client in (a, b, x):
        await client.close()
