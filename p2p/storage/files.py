"""Files written so that a crash never leaves half of one in place.

``write_atomic`` writes to a temporary name in the same folder, fsyncs the
file, renames it over the final name and fsyncs the folder: after ``kill -9``
or a power cut the final name holds either nothing or the whole file.
The document folders of a home are laid out here too.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from p2p.errors import ConfigError, StorageError


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def private_home(home: Path) -> str | None:
    """Create ``home`` for this user only (0700), or make an existing one so.

    A home holds the keys, the database and its ``-wal``/``-shm`` files, and the
    documents: no other user of the computer may list or read it. A home of ours
    that others can enter is fixed (chmod 700) and the sentence saying so is
    returned, to be shown; a home that belongs to another user cannot be made
    ours and is refused (``ConfigError``).
    """
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = home.stat()
    except OSError as exc:
        raise ConfigError(
            f"Could not create the folder {home} ({exc.strerror or exc}). "
            "Choose a folder you can write to with --home."
        ) from exc
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{home} is not a folder. Choose another home with --home.")
    if info.st_uid != os.geteuid():
        raise ConfigError(
            f"The folder {home} belongs to another user of this computer, so pli will not keep "
            "a practice's keys and documents in it. Use a folder of yours with --home, or run "
            "pli as the user who owns it."
        )
    mode = stat.S_IMODE(info.st_mode)
    if not mode & 0o077:
        return None
    try:
        home.chmod(0o700)
    except OSError as exc:
        raise ConfigError(
            f"The folder {home} can be opened by other users of this computer and pli could "
            f"not change that ({exc.strerror or exc}). Fix it with: chmod 700 {home}"
        ) from exc
    return (
        f"The folder {home} could be opened by other users of this computer (mode "
        f"{mode:03o}); pli made it private (mode 700): it holds the keys and the documents."
    )


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
