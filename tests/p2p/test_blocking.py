"""The suite's event-loop guard (tests/conftest.py) catches what it should, no more."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from blockbuster import BlockingError

from p2p.storage.store import Store


async def test_a_commit_on_the_loop_fails_the_test(tmp_path: Path) -> None:
    store = await asyncio.to_thread(Store, tmp_path / "pli.db")
    try:
        with pytest.raises(BlockingError):
            store.retry_now("00" * 32)  # a write transaction, fsync'd: never on the loop
        await asyncio.to_thread(store.retry_now, "00" * 32)  # on a worker thread: fine
        assert store.peers() == []  # a read on the loop goes to the WAL reader: allowed
    finally:
        await asyncio.to_thread(store.close)


async def test_file_io_on_the_loop_fails_the_test(tmp_path: Path) -> None:
    from p2p.storage.files import Layout

    with pytest.raises(BlockingError):
        Layout(tmp_path).create()
    await asyncio.to_thread(Layout(tmp_path).create)
    assert (tmp_path / "documents").is_dir()
