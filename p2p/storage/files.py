"""Files written so that a crash never leaves half of one in place.

``write_atomic`` is pli's one way to write a file (envelopes, keys, the
profile, exported documents and their sidecars, received letters): a private
temporary file in the same folder, fsync'd, renamed over the final name or
hard-linked to a free one (never overwriting), then the folder fsync'd. After
``kill -9`` or a power cut the final name holds either nothing or the whole
file. ``write_many`` does the same for a group of small files (letters
committed together), whose fsyncs run at once (``fsync_all``).
``private_home`` makes a home this user's only; the document folders of a
home are laid out here too (``Layout``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol

from p2p.errors import ConfigError, StorageError


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Threads that fsync a group's files at once. The filesystem joins fsyncs that
#: wait together into one journal commit: 64 new 16 KiB files on this ext4 took
#: 165-254 ms fsync'd one after the other, 9-21 ms by 8 threads at once.
SYNC_THREADS = 8
_syncers: list[ThreadPoolExecutor] = []
_syncers_lock = threading.Lock()


def _syncer() -> ThreadPoolExecutor:
    with _syncers_lock:
        if not _syncers:  # its threads start on first use, and only as many as needed
            _syncers.append(ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="pli-fsync"))
        return _syncers[0]


def fsync_all(fds: Sequence[int]) -> None:
    """fsync every descriptor of ``fds``, concurrently; returns once all are durable.

    Raises the first ``OSError`` (after every fsync has ended, so that no
    descriptor is still in use when the caller closes it).
    """
    if len(fds) <= 1:
        for fd in fds:
            os.fsync(fd)
        return
    futures = [_syncer().submit(os.fsync, fd) for fd in fds]
    errors = [exc for future in futures if (exc := future.exception()) is not None]
    if errors:
        raise errors[0]


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


class Written(NamedTuple):
    path: Path
    size: int


#: Bytes written between two ``WriteProgress.written`` calls.
PROGRESS_EVERY = 1024 * 1024
#: Bytes written between two drops of the cached pages nobody reads any more.
DROP_EVERY = 32 * 1024 * 1024


class WriteProgress(Protocol):
    """Told where a file is being written and how much of it is readable there.

    Another reader may read the temporary file up to the size last reported
    (the bytes are in the page cache, not yet durable); after the rename it is
    the final name that holds them. ``droppable(size)``, asked every
    ``DROP_EVERY`` bytes, says below which offset no reader needs the written
    bytes in memory any more (see ``_drop_cached``).
    """

    def opened(self, tmp: Path) -> None: ...

    def written(self, size: int) -> None: ...

    def droppable(self, size: int) -> int: ...


def write_atomic(
    path: Path,
    chunks: Iterable[bytes | bytearray | memoryview],
    *,
    overwrite: bool = True,
    other_names: Iterable[Path] = (),
    sync_dir: bool = True,
    progress: WriteProgress | None = None,
) -> Written:
    """Write ``chunks`` to ``path`` (mode 0600) atomically and durably: the one writer.

    The data goes to a new private temporary file in the same folder, which is
    fsync'd and then given its final name: renamed over ``path`` (``overwrite``),
    or else hard-linked to the first of ``path``, ``*other_names`` that does not
    exist (``link`` never replaces a file; without hard links, as on FAT or some
    shares, the name is reserved by an exclusive create first). Then the folder
    is fsync'd (unless ``sync_dir`` is false: a caller writing many files into
    one folder fsyncs it once with ``fsync_dir``). ``progress`` is told the
    temporary file's name, then how much of it was written, every
    ``PROGRESS_EVERY`` bytes and once all is written (before the fsync). Raises
    ``StorageError``; a failure before the file has its name leaves nothing, not
    even the temporary.
    """
    tmp = path.with_name(f".{path.name[:64]}.{secrets.token_hex(6)}.tmp")
    try:
        size = _write_new(tmp, chunks, progress)
        final = _rename(tmp, path) if overwrite else _link(tmp, [path, *other_names])
        if sync_dir:
            fsync_dir(final.parent)
    except OSError as exc:
        raise StorageError(
            f"Could not write {path.name} in {path.parent}: {exc.strerror or exc}. "
            "Check that the folder is writable and the disk has free space."
        ) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return Written(final, size)


def _write_new(
    tmp: Path, chunks: Iterable[bytes | bytearray | memoryview], progress: WriteProgress | None
) -> int:
    size = told = dropped = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        if progress is not None:
            progress.opened(tmp)
        for chunk in chunks:
            handle.write(chunk)
            size += len(chunk)
            if progress is not None and size - told >= PROGRESS_EVERY:
                handle.flush()  # readable through another descriptor from here on
                progress.written(told := size)
                if size - dropped >= DROP_EVERY:
                    _drop_cached(fd, progress.droppable(dropped := size))
        handle.flush()
        if progress is not None:
            progress.written(size)
        os.fsync(handle.fileno())
    return size


def _drop_cached(fd: int, end: int) -> None:
    """Start writing out ``[0, end)`` of the file and let the page cache drop it.

    Why: on the virtual machines measured here (free page reporting) a page the
    cache takes for the first time costs ~20 µs; writing a new 1 GiB envelope
    cost 2 to 3.5 s of CPU, against ~0.6 s when the pages behind the readers are
    given back every ``DROP_EVERY`` bytes (they are reused at once). It also
    spreads the disk's work over the write instead of the final fsync.
    ``POSIX_FADV_DONTNEED`` never loses data: dirty pages are written first.
    """
    if end > 0 and hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, end, os.POSIX_FADV_DONTNEED)


def write_many(
    files: Sequence[tuple[Path, bytes | bytearray | memoryview]], *, sync_dir: bool = True
) -> None:
    """``write_atomic`` (overwriting) for a group of small files held in memory.

    Each goes to its private temporary file; all are fsync'd at once
    (``fsync_all``), then renamed to their final names, then their folders
    fsync'd once each (unless ``sync_dir`` is false). Raises ``StorageError``;
    a failure before the renames leaves none of the temporaries.
    """
    tmps = [path.with_name(f".{path.name[:64]}.{secrets.token_hex(6)}.tmp") for path, _ in files]
    handles: list[BinaryIO] = []
    try:
        try:
            for tmp, (_, data) in zip(tmps, files, strict=True):
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                handles.append(os.fdopen(fd, "wb"))
                handles[-1].write(data)
                handles[-1].flush()
            fsync_all([handle.fileno() for handle in handles])
        finally:
            for handle in handles:
                handle.close()
        for tmp, (path, _) in zip(tmps, files, strict=True):
            _rename(tmp, path)
        if sync_dir:
            for folder in {path.parent for path, _ in files}:
                fsync_dir(folder)
    except OSError as exc:
        first = files[0][0]
        raise StorageError(
            f"Could not write {len(files)} file(s) in {first.parent}: {exc.strerror or exc}. "
            "Check that the folder is writable and the disk has free space."
        ) from exc
    finally:
        for tmp in tmps:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


def write_atomic_file(
    path: Path, fill: Callable[[BinaryIO], int], *, sync_dir: bool = True
) -> Written:
    """``write_atomic`` for a writer that needs a file object (a zip): ``fill`` writes
    into the private temporary file and returns the size; it is fsync'd and renamed
    over ``path`` as above."""
    tmp = path.with_name(f".{path.name[:64]}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            size = fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        _rename(tmp, path)
        if sync_dir:
            fsync_dir(path.parent)
    except OSError as exc:
        raise StorageError(
            f"Could not write {path.name} in {path.parent}: {exc.strerror or exc}. "
            "Check that the folder is writable and the disk has free space."
        ) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return Written(path, size)


def move(source: Path, target: Path) -> None:
    """Rename a file already written durably to ``target`` (same disk; replaces it).

    The watched folders move whole files between their sub-folders; the caller
    fsyncs the folders once (``fsync_dir``) after a batch of moves.
    """
    os.replace(source, target)


def _rename(tmp: Path, final: Path) -> Path:
    os.replace(tmp, final)
    return final


def _link(tmp: Path, names: Iterable[Path]) -> Path:
    """Give ``tmp`` the first free name of ``names``; ``FileExistsError`` if none is."""
    for final in names:
        try:
            os.link(tmp, final)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            try:  # no hard links here: reserve the name, then move the file onto it
                os.close(os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                continue
            os.replace(tmp, final)
        return final
    raise FileExistsError(errno.EEXIST, "every name tried is taken", str(tmp.parent))


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
        for folder in (self.sent, self.received):  # only the daemon writes there
            for stale in folder.glob(".*.tmp"):  # left by a crash inside write_atomic
                stale.unlink(missing_ok=True)

    def sent_envelope(self, doc_id: str) -> Path:
        return self.sent / f"{doc_id}.pli"

    def received_envelope(self, sender: str, doc_id: str) -> Path:
        return self.received / f"{sender[:32]}-{doc_id}.pli"

    def partial(self, sender: str, doc_id: str) -> Path:
        return self.quarantine / f"{sender[:32]}-{doc_id}.part"
