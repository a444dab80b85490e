"""Files streamed to the daemon through the local API before they are sent.

The API takes bytes, not paths (``POST /v1/uploads``): the page and other software
stream a file's content, which lands here in a private file (0600 in a 0700 folder
of the home), written chunk by chunk so memory does not grow with the file. The
upload's id is then named in ``POST /v1/documents``; once the document is sealed,
or the request naming it is refused, the upload is deleted. A client that gives up
before naming it (a form refused or abandoned) releases it (``DELETE
/v1/uploads/{id}``). Uploads nobody used are deleted at start and after ``LIFETIME``
seconds; at most ``MAX_OPEN`` wait at once.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

from p2p.errors import BadInput
from p2p.storage.files import make_private_dir

LIFETIME = 3600.0  # seconds an unused upload is kept
MAX_OPEN = 64  # uploads waiting to be sent at once
_ID_CHARS = frozenset("0123456789abcdef")


class Uploads:
    """The ``uploads`` folder of a home."""

    def __init__(self, folder: Path, max_size: int) -> None:
        self.folder = folder
        self.max_size = max_size

    def clear(self) -> None:
        """Delete every upload (at start: none can still be named)."""
        make_private_dir(self.folder)
        for stale in self.folder.iterdir():
            stale.unlink(missing_ok=True)

    async def receive(self, chunks: AsyncIterator[bytes]) -> tuple[str, int]:
        """Write ``chunks`` to a new upload; its id and size, or ``BadInput``."""
        if await asyncio.to_thread(self._expire) >= MAX_OPEN:
            raise BadInput(
                f"{MAX_OPEN} files are already waiting to be sent: send them first.",
                french=f"{MAX_OPEN} fichiers attendent déjà d'être envoyés : envoyez-les d'abord.",
            )
        upload = secrets.token_hex(16)
        path = self.folder / upload
        fd = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_size:
                    limit = _size(self.max_size)
                    raise BadInput(
                        f"This file is larger than pli can send ({limit}).",
                        french=f"Ce fichier dépasse ce que pli peut envoyer ({limit}).",
                    )
                await asyncio.to_thread(_write_all, fd, chunk)
        except BaseException:
            await asyncio.to_thread(_close_and_remove, fd, path)
            raise
        await asyncio.to_thread(os.close, fd)
        return upload, size

    def path(self, upload: str) -> Path:
        """Where upload ``upload`` is, or ``BadInput`` for what cannot be an upload's id.

        Whether it still exists is checked with every file to send (``Attachment.check``).
        """
        if len(upload) != 32 or not set(upload) <= _ID_CHARS:
            raise BadInput(
                "“upload” is the id that POST /v1/uploads answered.",
                french="Ce fichier n'est plus attendu : joignez-le à nouveau.",
            )
        return self.folder / upload

    async def discard(self, upload: str) -> bool:
        """Delete upload ``upload``; whether it was held. What cannot be an upload's id
        names nothing (never a path outside the folder)."""
        if len(upload) != 32 or not set(upload) <= _ID_CHARS:
            return False
        return await asyncio.to_thread(_remove, self.folder / upload)

    def _expire(self) -> int:
        """Delete the uploads older than ``LIFETIME``; how many are left."""
        old = time.time() - LIFETIME
        left = 0
        for entry in self.folder.iterdir():
            if entry.stat().st_mtime < old:
                entry.unlink(missing_ok=True)
            else:
                left += 1
        return left


def _size(count: int) -> str:
    """A limit in the unit a person reads: ``16 GiB``, ``512 KiB``."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= scale:
            return f"{count // scale} {unit}"
    return f"{count} B"


def _remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _close_and_remove(fd: int, path: Path) -> None:
    os.close(fd)
    path.unlink(missing_ok=True)


def _write_all(fd: int, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view) :]
