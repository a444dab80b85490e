"""The one atomic writer (``storage/files.py``) and the callers that use it.

Every file pli writes (envelopes, keys, the profile, exported documents and their
sidecars, received letters) goes through ``write_atomic``: a private temporary
file, fsync'd, renamed or linked without overwriting, the folder fsync'd.
``test_only_the_writer_renames_links_or_fsyncs`` keeps it the only one.
"""

from __future__ import annotations

import ast
import errno
import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2p.cli.export import write_new_file
from p2p.errors import StorageError
from p2p.storage import config, files, keystore
from p2p.storage.files import Layout, fsync_all, write_atomic, write_many

ROOT = Path(__file__).resolve().parents[2]

# --- writing without overwriting -------------------------------------------------------------


def test_write_new_file_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(b"mine")
    first = write_new_file(tmp_path, "a.pdf", [b"one", b"-", b"two"])
    second = write_new_file(tmp_path, "a.pdf", [b"three"])
    assert first.name == "a (1).pdf"
    assert second.name == "a (2).pdf"
    assert (tmp_path / "a.pdf").read_bytes() == b"mine"
    assert first.read_bytes() == b"one-two"
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a (1).pdf", "a (2).pdf", "a.pdf"]


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    def failing() -> Iterator[bytes]:
        yield b"part"
        raise OSError("disk full")

    with pytest.raises(StorageError, match="disk full"):
        write_new_file(tmp_path, "a.pdf", failing())
    assert list(tmp_path.iterdir()) == []


def test_write_new_file_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A FAT USB stick or a share without hard links: names reserved by exclusive create."""

    def no_links(_src: object, _dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "a.pdf").write_bytes(b"mine")
    saved = write_new_file(tmp_path, "a.pdf", [b"new"])
    assert saved.name == "a (1).pdf"
    assert saved.read_bytes() == b"new"
    assert (tmp_path / "a.pdf").read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a (1).pdf", "a.pdf"]


def test_write_atomic_replaces_whole_and_private(tmp_path: Path) -> None:
    path = tmp_path / "envelope.pli"
    path.write_bytes(b"old")
    path.chmod(0o644)
    written = write_atomic(path, [b"new ", memoryview(b"bytes"), bytearray(b"!")])
    assert written == (path, 10)
    assert path.read_bytes() == b"new bytes!"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["envelope.pli"]


def test_a_failed_replacement_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    path.write_bytes(b"the old keys")

    def failing() -> Iterator[bytes]:
        yield b"half of the new"
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StorageError, match="No space left on device"):
        write_atomic(path, failing())
    assert path.read_bytes() == b"the old keys"
    assert [p.name for p in tmp_path.iterdir()] == ["identity.json"]


def test_every_name_taken_is_a_sentence(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"1")
    (tmp_path / "b").write_bytes(b"2")
    with pytest.raises(StorageError, match="Could not write a in"):
        write_atomic(tmp_path / "a", [b"3"], overwrite=False, other_names=[tmp_path / "b"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_concurrent_writers_of_one_file_never_mix(tmp_path: Path) -> None:
    """Two writers (the CLI renewing keys while the daemon does): one whole file wins."""
    path = tmp_path / "identity.json"
    versions = [bytes([65 + i]) * 200_000 for i in range(8)]
    threads = [
        threading.Thread(target=write_atomic, args=(path, [v[:100_000], v[100_000:]]))
        for v in versions
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert path.read_bytes() in versions
    assert [p.name for p in tmp_path.iterdir()] == ["identity.json"]


def test_a_group_is_written_whole_private_and_replacing(tmp_path: Path) -> None:
    received = tmp_path / "received"
    received.mkdir()
    (received / "b.pli").write_bytes(b"old")
    group: list[tuple[Path, bytes | bytearray | memoryview]] = [
        (received / "a.pli", b"first letter"),
        (received / "b.pli", bytearray(b"second")),
        (tmp_path / "c.pli", memoryview(b"third")),
    ]
    write_many(group)
    for path, data in group:
        assert path.read_bytes() == bytes(data)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in received.iterdir()) == ["a.pli", "b.pli"]


def test_a_group_that_fails_leaves_none_of_its_files(tmp_path: Path) -> None:
    """A folder that cannot be written: nothing of the group is renamed, no temporary stays."""
    (tmp_path / "b.pli").write_bytes(b"old")
    group = [
        (tmp_path / "a.pli", b"one"),
        (tmp_path / "b.pli", b"two"),
        (tmp_path / "no" / "c", b""),
    ]
    with pytest.raises(StorageError, match="Could not write 3 file"):
        write_many(group)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.pli"]
    assert (tmp_path / "b.pli").read_bytes() == b"old"


def test_fsync_all_reports_a_failure_after_every_fsync_ended(tmp_path: Path) -> None:
    handles = [open(tmp_path / f"{i}", "wb") for i in range(4)]  # noqa: SIM115 - closed below
    try:
        fsync_all([h.fileno() for h in handles])  # fine, concurrently
        never_open = 2**30  # above any descriptor limit: EBADF
        with pytest.raises(OSError, match="Bad file descriptor") as failed:
            fsync_all([*(h.fileno() for h in handles), never_open])
        assert failed.value.errno == errno.EBADF
    finally:
        for handle in handles:
            handle.close()


def test_a_crash_leftover_is_swept_at_start(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.create()
    stale = layout.sent / ".abc.pli.0123456789ab.tmp"
    stale.write_bytes(b"half an envelope")
    kept = layout.sent / "abc.pli"
    kept.write_bytes(b"an envelope")
    layout.create()
    assert not stale.exists()
    assert kept.exists()


# --- the callers: keys and profile now private and durable ------------------------------


def test_keys_and_profile_are_written_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # save_profile used write_text: 0644 under this umask
    try:
        keystore.create(tmp_path)
        config.save_profile(tmp_path, name="Dr Alice Martin")
    finally:
        os.umask(old)
    public = tmp_path / keystore.PUBLIC_FILE
    for path in (keystore.key_path(tmp_path), public, tmp_path / config.PROFILE_FILE):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert json.loads((tmp_path / config.PROFILE_FILE).read_text())["name"] == "Dr Alice Martin"
    names = sorted(p.name for p in tmp_path.rglob("*"))
    assert names == ["identity.json", "keys", "profile.json", "public.json"]


#: ``os`` calls that finish a file (rename, link, fsync): only the writer makes them. The
#: inbox moves an envelope that was streamed into quarantine as it arrived (it cannot
#: be handed to the writer as chunks) and fsyncs it (``fsync_all``) before the rename, in
#: its group commit; the store's database and the API socket are not files we write.
FINISHING = {"replace", "rename", "link", "fsync", "fdatasync"}
ALLOWED = {"p2p/storage/files.py": FINISHING, "p2p/services/inbox/commit.py": {"replace"}}


def test_only_the_writer_renames_links_or_fsyncs() -> None:
    offences = []
    for path in sorted((ROOT / "p2p").rglob("*.py")):
        name = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            if not (isinstance(node.func.value, ast.Name) and node.func.value.id == "os"):
                continue  # str.replace and the like
            called = node.func.attr
            if called in FINISHING and called not in ALLOWED.get(name, set()):
                offences.append(f"{name}:{node.lineno} {ast.unparse(node.func)}")
    assert not offences, "write files with storage.files.write_atomic: " + ", ".join(offences)


def test_written_pages_leave_the_cache_only_behind_the_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ``DROP_EVERY`` bytes the writer asks how far the readers are and drops only
    the pages below that (POSIX_FADV_DONTNEED, which writes dirty pages first)."""
    monkeypatch.setattr(files, "DROP_EVERY", 2 * files.PROGRESS_EVERY)
    dropped: list[tuple[int, int]] = []
    real_fadvise = os.posix_fadvise

    def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        dropped.append((offset, length))
        real_fadvise(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", fadvise)

    class Reader:
        def __init__(self) -> None:
            self.asked: list[int] = []

        def opened(self, tmp: Path) -> None:
            pass

        def written(self, size: int) -> None:
            pass

        def droppable(self, size: int) -> int:
            self.asked.append(size)
            return size // 2  # a reader halfway

    block = os.urandom(files.PROGRESS_EVERY)
    path = tmp_path / "envelope.pli"
    reader = Reader()
    write_atomic(path, [block] * 7, progress=reader)
    assert reader.asked == [2 * len(block), 4 * len(block), 6 * len(block)]
    assert dropped == [(0, size // 2) for size in reader.asked]
    assert path.read_bytes() == block * 7
