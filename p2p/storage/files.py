"""Files written so that a crash never leaves half of one in place.

``write_atomic`` writes to a temporary name in the same folder, fsyncs the
file, renames it over the final name and fsyncs the folder: after ``kill -9``
or a power cut the final name holds either nothing or the whole file.
The document folders of a home are laid out here too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from p2p.errors import StorageError


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def write_atomic(path: Path, chunks: Iterable[bytes | memoryview]) -> int:
    """Write ``chunks`` to ``path`` atomically and durably; return the size written."""
    tmp = path.with_name(f".{path.name}.tmp")
    size = 0
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(
            f"Could not write {path.name}: {exc.strerror or exc}. "
            "Check the disk has free space and the home folder is writable."
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return size


class Layout:
    """Where documents live inside a home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.sent = home / "documents" / "sent"
        self.received = home / "documents" / "received"
        self.quarantine = home / "quarantine"
        self.exports_tmp = home / "tmp"

    def create(self) -> None:
        for folder in (self.sent, self.received, self.quarantine, self.exports_tmp):
            make_private_dir(folder)

    def sent_envelope(self, doc_id: str) -> Path:
        return self.sent / f"{doc_id}.pli"

    def received_envelope(self, sender: str, doc_id: str) -> Path:
        return self.received / f"{sender[:32]}-{doc_id}.pli"

    def partial(self, sender: str, doc_id: str) -> Path:
        return self.quarantine / f"{sender[:32]}-{doc_id}.part"
