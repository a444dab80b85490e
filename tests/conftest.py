"""Suite-wide guard: no test may block the event loop.

``blockbuster`` replaces the blocking calls of the standard library (file and
socket I/O, ``os.*``, ``time.sleep``, SQLite, contended locks) with versions
that raise ``BlockingError`` when they run on a thread whose event loop is
running and pli's own code (``p2p``) is in the call stack. Blocking work
belongs on a worker thread (``asyncio.to_thread`` or a service's executor);
a test's own set-up (keys, homes, files) runs before the loop or in a thread.

The exceptions are in ``ALLOWED``: a file (a path suffix) and the functions of
that file under which blocking calls are let through, each with its lasting
reason. Anything else moves off the loop instead of being added here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from blockbuster import BlockBuster

#: (file, functions in it) -> why blocking calls under them may run on the loop.
ALLOWED: dict[tuple[str, frozenset[str]], str] = {
    ("p2p/storage/database.py", frozenset({"_query"})): (
        "reads: the reader connection in WAL mode sees the last commit and never "
        "waits for a writer; its lock is held for one query (see Store)"
    ),
    ("logging/__init__.py", frozenset({"emit"})): (
        "one log line to stderr (journald's pipe), a few hundred bytes"
    ),
    ("tests/p2p/clirun.py", frozenset({"run"})): (
        "the CLI is a synchronous program of its own; these tests run it in-process "
        "from an async test, so the loop it holds is the test's, not a daemon's"
    ),
}


@pytest.fixture(autouse=True)
def no_blocking_on_the_loop() -> Iterator[BlockBuster]:
    guard = BlockBuster("p2p")
    for function in guard.functions.values():
        for filename, callers in ALLOWED:
            function.can_block_in(filename, callers)
    guard.activate()
    try:
        yield guard
    finally:
        guard.deactivate()
