"""Config, keystore and store on their own; the transport's limits and tie-break."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from p2p.cli.practice import PracticeProcess
from p2p.errors import ConfigError, KeystoreError, StorageError
from p2p.storage import config, keystore
from p2p.storage.store import SCHEMA_VERSION, Store
from protocol import limits

from .conftest import Running, pair, start_daemon, wait_for

# --- config ----------------------------------------------------------------------


def test_config_defaults_and_overrides(tmp_path: Path) -> None:
    settings = config.load(tmp_path)
    assert (settings.listen_host, settings.listen_port) == ("0.0.0.0", 7717)
    (tmp_path / "config.toml").write_text('listen = "127.0.0.1:9000"\nretry_max = 5\n')
    settings = config.load(tmp_path, retry_min=0.5)
    assert (settings.listen_port, settings.retry_max, settings.retry_min) == (9000, 5, 0.5)
    assert config.load(tmp_path, listen="[::1]:7000").listen_host == "::1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("listen = 7717\n", "wrong type"),
        ("colour = true\n", "Unknown setting"),
        ("listen = \n", "could not be read"),
        ('listen = "host:port"\n', "port must be a number"),
        ("retry_min = 10\nretry_max = 1\n", "retry_min"),
    ],
)
def test_config_errors_are_clear(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        config.load(tmp_path)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("invitation_lifetime = true\n", "invitation_lifetime"),  # a bool is not a number
        ("invitation_lifetime = 1.5\n", "invitation_lifetime"),
        ("interfaces = [1]\n", "interfaces"),
        ('interfaces = "lo"\n', "interfaces"),
    ],
)
def test_config_types_come_from_the_struct(tmp_path: Path, text: str, key: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=f"“{key}” in .* has the wrong type"):
        config.load(tmp_path)


def test_unknown_setting_lists_every_known_one(tmp_path: Path) -> None:
    from p2p.storage.settings import KEYS

    (tmp_path / "config.toml").write_text("[daemon]\nlisten = 1\n")
    with pytest.raises(ConfigError, match="Unknown setting “daemon”") as caught:
        config.load(tmp_path)
    assert caught.value.message.endswith(f"Known settings: {', '.join(sorted(KEYS))}.")
    assert "retry_min" in KEYS


def test_one_card_from_the_profile(tmp_path: Path) -> None:
    """Daemon.card and `pli id --card` both build the card with config.own_card."""
    keys = keystore.create(tmp_path)
    profile = config.save_profile(tmp_path, name="Dr Alice Martin", rpps="10003456789")
    card = config.own_card(keys.identity, profile, ["192.0.2.7:7717"])
    assert (card.name, card.rpps, card.seq) == ("Dr Alice Martin", "10003456789", profile["seq"])
    assert card.addresses == ("192.0.2.7:7717",)
    assert config.own_card(keys.identity, {}, []).name == config.display_name({})


def test_home_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLI_HOME", str(tmp_path / "env"))
    assert config.resolve_home(None) == tmp_path / "env"
    assert config.resolve_home(tmp_path / "flag") == tmp_path / "flag"


# --- keystore ----------------------------------------------------------------------


def test_keys_are_private_and_never_overwritten(tmp_path: Path) -> None:
    keys = keystore.create(tmp_path)
    path = keystore.key_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keystore.load(tmp_path).identity.peer_id == keys.identity.peer_id
    with pytest.raises(KeystoreError, match="never overwrites"):
        keystore.create(tmp_path)


def test_world_readable_key_is_refused_with_the_fix(tmp_path: Path) -> None:
    keystore.create(tmp_path)
    path = keystore.key_path(tmp_path)
    path.chmod(0o644)
    with pytest.raises(KeystoreError, match=f"chmod 600 {path}"):
        keystore.load(tmp_path)


def test_passphrase_wraps_the_keys(tmp_path: Path) -> None:
    keys = keystore.create(tmp_path, passphrase="correct horse")
    text = keystore.key_path(tmp_path).read_text()
    assert keys.identity.identity.seed.hex() not in text
    assert keystore.load(tmp_path, passphrase="correct horse").identity.peer_id == (
        keys.identity.peer_id
    )
    with pytest.raises(KeystoreError, match="Wrong passphrase"):
        keystore.load(tmp_path, passphrase="wrong")
    with pytest.raises(KeystoreError, match="PLI_PASSPHRASE"):
        keystore.load(tmp_path)


def test_weakened_kdf_parameters_are_detected(tmp_path: Path) -> None:
    import json

    keystore.create(tmp_path, passphrase="pw")
    path = keystore.key_path(tmp_path)
    document = json.loads(path.read_text())
    document["kdf"]["ops"] = 1  # an attacker lowering the work factor
    path.write_text(json.dumps(document))
    with pytest.raises(KeystoreError):
        keystore.load(tmp_path, passphrase="pw")


def test_static_certificate_is_renewed_before_it_expires(tmp_path: Path) -> None:
    import time

    old = keystore.create(tmp_path, now=int(time.time()) - limits.STATIC_CERT_LIFETIME + 3600)
    assert old.identity.static_cert.not_after - time.time() < keystore.RENEW_BEFORE
    renewed = keystore.load(tmp_path)
    assert renewed.identity.peer_id == old.identity.peer_id
    assert renewed.identity.static_cert.not_after - time.time() > keystore.RENEW_BEFORE
    renewed.identity.static_cert.verify(renewed.identity.public, now=int(time.time()))
    assert keystore.load(tmp_path).identity.static_cert == renewed.identity.static_cert


# --- store -------------------------------------------------------------------------


def test_store_schema_is_versioned(tmp_path: Path) -> None:
    store = Store(tmp_path / "pli.db")
    assert store.schema_version == SCHEMA_VERSION
    store.close()
    with sqlite3.connect(tmp_path / "pli.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StorageError, match="newer pli"):
        Store(tmp_path / "pli.db")


# --- transport ---------------------------------------------------------------------


async def test_connection_cap_per_ip(two: tuple[Running, Running]) -> None:
    _, b = two
    async with aiohttp.ClientSession() as session:
        sockets = []
        refused = []
        for _ in range(limits.MAX_CONNECTIONS_PER_IP + 2):
            try:
                sockets.append(await session.ws_connect(f"http://{b.address}/pli/1/peer"))
            except aiohttp.ClientError as exc:  # closed at accept, before any answer
                refused.append(exc)
        assert len(sockets) == limits.MAX_CONNECTIONS_PER_IP
        assert len(refused) == 2
        assert not any(isinstance(exc, aiohttp.WSServerHandshakeError) for exc in refused)
        assert b.daemon.transport.guard.per_ip == {"127.0.0.1": limits.MAX_CONNECTIONS_PER_IP}
        for sock in sockets:
            await sock.close()


async def test_handshake_rate_limit_per_ip(two: tuple[Running, Running]) -> None:
    _, b = two
    statuses = []
    async with aiohttp.ClientSession() as session:
        for _ in range(limits.HANDSHAKE_BURST_PER_IP + 5):
            try:
                sock = await session.ws_connect(f"http://{b.address}/pli/1/peer")
                statuses.append(101)
                await sock.close()
            except aiohttp.WSServerHandshakeError as exc:
                statuses.append(exc.status)
    assert 429 in statuses
    assert statuses.count(101) <= limits.HANDSHAKE_BURST_PER_IP + 1


async def test_simultaneous_dials_keep_one_session(tmp_path: Path) -> None:
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    await pair(a, b)
    try:
        a_id, b_id = a.daemon.me.peer_id, b.daemon.me.peer_id
        await asyncio.gather(
            a.daemon.transport.connect(b_id, b.address),
            b.daemon.transport.connect(a_id, a.address),
        )

        def settled() -> bool:
            ca, cb = a.daemon.transport.channel(b_id), b.daemon.transport.channel(a_id)
            return ca is not None and cb is not None and ca.opened_by == cb.opened_by

        await wait_for(settled, 5)
        await asyncio.sleep(0.3)
        assert settled()
        kept = a.daemon.transport.channel(b_id)
        assert kept is not None
        assert kept.opened_by == min(a_id, b_id, key=lambda peer: peer.digest)
    finally:
        await a.stop()
        await b.stop()


# --- the daemon process ----------------------------------------------------------------


def test_sigterm_stops_cleanly_and_systemd_is_notified(tmp_path: Path) -> None:
    notify = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(notify))
        listener.settimeout(20)
        practice = PracticeProcess(tmp_path / "a", "Dr Alice Martin")
        os.environ["NOTIFY_SOCKET"] = str(notify)
        try:
            practice.start()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        assert listener.recv(64) == b"READY=1"
    assert practice.stop() == 0
    assert "Traceback" not in practice.logs()
    assert not (practice.home / "api.sock").exists()


def test_python_dash_m_p2p_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "p2p", "--help"], capture_output=True, text=True, check=True
    )
    assert "daemon" in result.stdout


async def test_port_in_use_is_a_clear_error(two: tuple[Running, Running], tmp_path: Path) -> None:
    _, b = two
    with pytest.raises(ConfigError, match="already used"):
        await start_daemon(tmp_path / "c", "Dr C", port=b.port)
