"""The daemon process: what ``pli daemon`` does around a ``Daemon``.

``core.py`` wires the services and runs them in one TaskGroup; this module owns
what belongs to the whole process, once: the start-up tuning
(``tune_process``), the home lock (one daemon per home), the signal handlers
(SIGINT / SIGTERM stop the daemon cleanly), the local API's lifetime around
the daemon, and systemd's readiness notification. Nothing here is needed by a
``Daemon`` run inside another program (the tests, the in-process benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import logging
import os
import resource
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from p2p.daemon.core import Daemon, Started
from p2p.errors import StorageError

log = logging.getLogger("pli.daemon")

#: glibc ``mallopt`` parameters (malloc.h) and the values ``tune_malloc`` sets.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_MMAP_THRESHOLD = 4 * 1024 * 1024
_TRIM_THRESHOLD = 32 * 1024 * 1024
#: One malloc arena for every thread: each worker thread (sealing, hashing,
#: verifying, writing) would otherwise get an arena of its own, each keeping up
#: to the trim threshold of freed buffers.
_ARENA_MAX = 1


class LocalApi(Protocol):
    """The running local API, as ``run_daemon`` needs it: something to clean up."""

    async def cleanup(self) -> None: ...


StartApi = Callable[[Daemon], Awaitable[LocalApi]]


def tune_process() -> None:
    """Process-wide settings, made once at start-up before any service runs.

    The one place for them (``run_daemon`` calls it before the local API and the
    peer port open): glibc's malloc thresholds today; resource limits such as
    RLIMIT_NOFILE belong here too, not in the module that needs them.
    """
    tune_malloc()
    raise_open_files_limit()


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one and return the soft limit now in force.

    Distributions start services with a soft limit of 1024 (or less) under a far
    higher hard limit; the peer port's connection cap is derived from the soft
    one (``limits.connection_cap``), so raising it lets the daemon serve more
    colleagues while the cap still keeps a flood below the limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # an unlimited hard limit the kernel caps lower
            log.info("kept the open files limit at %d", soft)
    return soft


def tune_malloc() -> bool:
    """Stop glibc from unmapping and re-faulting the bulk path's ~1 MiB buffers.

    Every BULK frame makes a few short-lived buffers of about 1 MiB (the frame
    read from disk, aiohttp's masked copy, the received message). By default
    glibc serves them with mmap, or trims them off the top of the heap as soon
    as they are freed, so each new buffer page-faults its 256 pages back in; in
    this project's VM that halved the loopback transfer rate (see
    ../shared/bench/anchors-2026-11-28.md, surprise 3, and bench/transfer.py
    ``--malloc-tuned``). A fixed 4 MiB mmap threshold keeps them on the heap and
    a 32 MiB trim threshold lets freed ones be reused. Peak memory is still
    bounded by what the bulk path holds at once (a few MiB), not by the document.
    One arena for all threads (``_ARENA_MAX``): with one per worker thread the
    peak RSS of a 100 MiB or 1 GiB transfer was 6 to 11 MB higher, each arena
    keeping freed buffers of its own; no slower measured (bench/transfer.py with
    ``GLIBC_TUNABLES=glibc.malloc.arena_max=1``, 2 runs each).
    Process-wide, idempotent; a no-op (False) outside glibc. The same can be set
    from outside (``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4194304:`` then
    ``glibc.malloc.trim_threshold=33554432``, one string), which bench/transfer.py
    ``--malloc-tuned`` does to compare.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mmap_set: int = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    trim_set: int = mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    arenas_set: int = mallopt(_M_ARENA_MAX, _ARENA_MAX)
    return mmap_set == 1 and trim_set == 1 and arenas_set == 1


def lock_home(home: Path) -> int:
    """Hold ``daemon.lock`` in the home for the daemon's life: one daemon per home."""
    fd = os.open(home / "daemon.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StorageError(
            f"Another pli daemon is already running for {home}. Use `pli --home {home} status`."
        ) from None
    return fd


async def run_daemon(
    daemon: Daemon, start_api: StartApi, on_ready: Callable[[Started], None] | None = None
) -> None:
    """``pli daemon``: the daemon plus its local API, until SIGTERM/SIGINT."""
    lock_home(daemon.config.home)  # released by the kernel when the process ends
    tune_process()
    api = await start_api(daemon)
    try:
        await serve(daemon, on_ready)
    finally:
        await api.cleanup()
        daemon.config.api_socket.unlink(missing_ok=True)


async def serve(daemon: Daemon, on_ready: Callable[[Started], None] | None = None) -> None:
    """Start, notify systemd, run until SIGTERM/SIGINT."""
    started = await daemon.start()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, daemon.stop)
    if on_ready is not None:
        on_ready(started)
    sd_notify("READY=1")
    await daemon.run()


def sd_notify(state: str) -> None:
    """Tell systemd we are ready (Type=notify); a no-op without NOTIFY_SOCKET."""
    target = os.environ.get("NOTIFY_SOCKET")
    if not target:
        return
    if target.startswith("@"):
        target = "\0" + target[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(state.encode(), target)
