"""The daemon process's own duties (p2p/daemon/process.py), without a daemon."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from p2p.daemon import process
from p2p.errors import StorageError


def test_sd_notify_tells_systemd_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        process.sd_notify("READY=1")
        assert sock.recv(64) == b"READY=1"


def test_sd_notify_is_silent_without_systemd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
        process.sd_notify("READY=1")  # nothing to tell, nothing raised
        with pytest.raises(BlockingIOError):
            sock.recv(64)
    gone = tmp_path / "gone"
    monkeypatch.setenv("NOTIFY_SOCKET", str(gone))
    process.sd_notify("READY=1")  # systemd gone: the daemon runs on, creates nothing
    assert not gone.exists()


def test_one_daemon_per_home(tmp_path: Path) -> None:
    held = process.lock_home(tmp_path)
    try:
        with pytest.raises(StorageError, match="already running"):
            process.lock_home(tmp_path)
    finally:
        os.close(held)
    os.close(process.lock_home(tmp_path))  # free again once the first holder is gone


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_malloc_tuning_is_accepted_by_glibc() -> None:
    assert process.tune_malloc() is True
