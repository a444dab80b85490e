"""The SQLite file under the store: its two connections, their locks, transactions.

``Store`` (``store.py``) holds the schema and the queries; this is what every
query stands on: opening (private files, WAL, ``synchronous=FULL``, the
migrations), one write transaction at a time (``_tx``) and the reader
connection (``_query``), and the translation of SQLite's errors into
``StorageError`` sentences.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from p2p.errors import StorageError


class Database:
    """One SQLite file, shared by the event loop and worker threads: connections, locks.

    Two connections, each behind its own lock: one writes, one reads. In WAL
    mode a reader sees the last committed state and never waits for a writer,
    so a query on the event loop (an offer's duplicate check, the local API) is
    not held up while a worker thread's commit waits for its fsync.

    The lock discipline:

    - every write is one ``_tx`` (BEGIN IMMEDIATE ... COMMIT, fsync'd by
      ``synchronous=FULL``) under ``_lock``, and runs on a worker thread
      (``asyncio.to_thread`` or a service's executor), never on the event loop:
      it can wait for the disk, and for another thread's commit;
    - every read is one ``_query`` under ``_read_lock`` on the reader
      connection, from the loop or a thread; it holds the lock for that query
      only, and never takes ``_lock``;
    - opening (the migration) happens before the loop runs, or on a thread.

    tests/conftest.py fails any test whose code commits, or does other blocking
    I/O, on the event loop.
    """

    def __init__(self, path: Path, migrations: dict[int, str]) -> None:
        self.path = path
        self._migrations = migrations
        try:
            # SQLite gives the -wal and -shm files the mode of the database file:
            # create it private first, whatever the process umask.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            self._lock = threading.RLock()
            self._db = sqlite3.connect(
                path, isolation_level=None, timeout=10, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
            self._read_lock = threading.Lock()
            self._reader = sqlite3.connect(
                path, isolation_level=None, timeout=10, check_same_thread=False
            )
            self._reader.row_factory = sqlite3.Row  # rows read by column name
            self._reader.execute("PRAGMA query_only=ON")
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(
                f"The database {path} could not be opened ({exc}). "
                "Check the disk, or restore the home from its backup."
            ) from exc
        for name in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
            with contextlib.suppress(FileNotFoundError):
                name.chmod(0o600)  # a home made by an older pli

    def close(self) -> None:
        with self._read_lock:
            self._reader.close()
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._translate_errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @staticmethod
    @contextmanager
    def _translate_errors() -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StorageError(f"The database could not be updated ({exc}).") from exc

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            with self._read_lock:
                return self._reader.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"The database could not be read ({exc}).") from exc

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        latest = max(self._migrations)
        if version > latest:
            raise StorageError(
                f"This home was used by a newer pli (schema {version}); update pli to open it."
            )
        for target in range(version + 1, latest + 1):
            with self._tx() as db:
                for statement in self._migrations[target].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={target}")

    @property
    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])


def prefix_range(prefix: str) -> tuple[str, str]:
    """The bounds ``[low, high)`` of the TEXT values that start with ``prefix`` (non-empty),
    for ``col >= ? AND col < ?``: a range an index answers in O(log n), where ``LIKE``
    would scan (it is case-insensitive). SQLite orders TEXT by its UTF-8 bytes, which is
    code-point order, so the next value after every ``prefix…`` is the prefix with its
    last character one higher."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)
