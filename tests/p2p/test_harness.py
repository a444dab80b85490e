"""The one daemon-process harness (p2p/daemon/harness.py) used by tests, demo and benchmarks."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2p.cli.client import Client
from p2p.daemon import harness


@pytest.fixture
def root() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="pli-h-"))  # short: a unix socket path
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_start_waits_for_the_ready_line_and_stop_is_clean(root: Path) -> None:
    harness.prepare_home(root / "a", "Dr Alice Martin")
    daemon = harness.DaemonProcess(root / "a")
    ready = daemon.start()
    try:
        assert ready.port > 0
        assert daemon.address == f"127.0.0.1:{ready.port}"
        status = Client(root / "a").get("/v1/status")  # the API is up as soon as it says so
        assert status["peer_port"] == ready.port
        assert Client(root / "a").get("/v1/identity")["fingerprint"] == ready.fingerprint
    finally:
        assert daemon.stop() == 0  # SIGTERM: a clean stop
    assert not daemon.running
    assert "listening for peers" in daemon.log_text()


def test_a_daemon_that_exits_at_start_is_reported_with_its_log(root: Path) -> None:
    harness.prepare_home(root / "a", "Dr Alice Martin", settings={"no_such_setting": 1})
    daemon = harness.DaemonProcess(root / "a")
    with pytest.raises(harness.DaemonNotReady) as refused:
        daemon.start()
    assert refused.value.exited
    assert "no_such_setting" in refused.value.message
    assert not daemon.running
