"""`GET /v1/inbox` with 10,000 received documents: read from the sealed index.

Run by hand from the repository root (not part of the tests)::

    .venv/bin/python -m bench.inbox_listing                  # 10,000 documents, 20 runs
    .venv/bin/python -m bench.inbox_listing --documents 3000 --envelopes 3000

A daemon runs in a temporary home whose inbox holds ``--documents`` rows, each
with its index row sealed by the daemon's own ``IndexKey`` from a real
``DocumentMeta`` (patient name, birth date, subject, one file), as the inbox
writes them at commit. Timed: the whole API call over the unix socket until the
answer is read, the daemon's part alone (``Archive.inbox_json``, which
``inbox_view`` runs on a worker thread: the index read and opened, the JSON
spliced), wall and CPU time (the CPU time is what stays the
same on a machine busy with other work), and the client's ``json.loads``.

``--envelopes N`` also times the old way for comparison: N real envelopes,
sealed to this practice, described one by one as the listing used to do.

Goal (issue 8 §1.5): 10,000 documents listed in ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from p2p.api.server import start_api
from p2p.daemon.core import Daemon
from p2p.documents.describe import describe
from p2p.storage import config, keystore
from p2p.storage.files import write_atomic
from p2p.storage.store import InboxRow
from protocol import DocumentMeta, FileEntry, LocalIdentity, new_document_id, seal


def meta_for(
    sender: LocalIdentity, me: LocalIdentity, number: int, size: int = 48_000
) -> DocumentMeta:
    return DocumentMeta(
        document_id=new_document_id(),
        created_at=1_800_000_000 + number,
        kind="letter",
        sender=sender.public,
        recipients=(me.public,),
        files=(FileEntry(f"courrier-{number}.pdf", size, "application/pdf"),),
        metadata={
            "subject": f"Compte rendu de consultation n° {number}",
            "patient_name": f"Patient·e {number:05d} Dupont-Lefèvre",
            "patient_birthdate": "1950-02-03",
        },
    )


async def fill(daemon: Daemon, sender: LocalIdentity, count: int) -> None:
    """``count`` inbox rows with their sealed index rows, in batches of 1,000."""
    me, peer = daemon.me, sender.peer_id.hex
    await daemon.add_peer(sender.card(1, name="Dr Alice Martin").sign(sender.identity), [])
    for start in range(0, count, 1000):
        rows, sealed = [], []
        for number in range(start, min(count, start + 1000)):
            meta = meta_for(sender, me, number)
            doc = meta.document_id.hex()
            rows.append(
                InboxRow(
                    doc_id=doc,
                    sender=peer,
                    size=50_000,
                    digest=os.urandom(32),
                    received_at=meta.created_at,
                    receipt=os.urandom(150),
                )
            )
            sealed.append(daemon.archive.index_key.seal(doc, peer, describe(meta)))
        daemon.store.received_many(rows, sealed)


def old_way(daemon: Daemon, sender: LocalIdentity, count: int) -> float:
    """Seconds to describe ``count`` real envelopes one by one (the old listing)."""
    card = daemon.card()
    paths = []
    for number in range(count):
        meta = meta_for(sender, daemon.me, number, size=2000)
        path = daemon.layout.home / "old" / f"{number}.pli"
        path.parent.mkdir(exist_ok=True)
        write_atomic(path, seal(sender, [card], meta, [os.urandom(2000)]))
        paths.append(path)
    started = time.perf_counter()
    for path in paths:
        daemon.archive.describe(path)
    return time.perf_counter() - started


async def timed_api(socket: Path, runs: int) -> tuple[list[float], list[float], int]:
    """(seconds until the whole answer is read, seconds to parse it, documents)."""
    served, parsed, count = [], [], 0
    connector = aiohttp.UnixConnector(path=str(socket))
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(runs + 1):  # the first one warms up
            started = time.perf_counter()
            async with session.get("http://pli/v1/inbox") as response:
                body = await response.read()
            served.append(time.perf_counter() - started)
            started = time.perf_counter()
            count = len(json.loads(body))
            parsed.append(time.perf_counter() - started)
    return served[1:], parsed[1:], count


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"median {1000 * statistics.median(ordered):6.1f} ms   p95 {1000 * p95:6.1f} ms   "
        f"min {1000 * ordered[0]:6.1f} ms"
    )


async def main(documents: int, runs: int, envelopes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="pli-bench-") as tmp:
        home = Path(tmp) / "b"
        keystore.create(home)
        config.save_profile(home, name="Dr Bob Durand")
        daemon = Daemon(
            config.load(home, listen="127.0.0.1:0", discovery=False), keystore.load(home)
        )
        sender = LocalIdentity.generate(now=int(time.time()))
        started = time.perf_counter()
        await fill(daemon, sender, documents)
        print(f"filled {documents} inbox rows in {time.perf_counter() - started:.1f} s")
        await daemon.start()
        runner = await start_api(daemon)
        task = asyncio.create_task(daemon.run())
        try:
            api, parse, count = await timed_api(daemon.config.api_socket, runs)
            inner, cpu = [], []
            for _ in range(runs):
                started, started_cpu = time.perf_counter(), time.thread_time()
                daemon.archive.inbox_json()  # what inbox_view runs on its worker thread
                inner.append(time.perf_counter() - started)
                cpu.append(time.thread_time() - started_cpu)
            print(f"GET /v1/inbox, {count} documents, {runs} runs: {ms(api)}")
            print(f"  of which the daemon's listing (SQL, AEAD, JSON): {ms(inner)}")
            print(f"  the same, CPU time of the thread (what load adds):   {ms(cpu)}")
            print(f"  then json.loads of the answer by the client:         {ms(parse)}")
            if envelopes:
                seconds = old_way(daemon, sender, envelopes)
                each = 1e6 * seconds / envelopes
                print(
                    f"old way: describing {envelopes} envelopes one by one took "
                    f"{1000 * seconds:.0f} ms ({each:.0f} µs each)"
                )
        finally:
            daemon.stop()
            await task
            await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--envelopes", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(main(args.documents, args.runs, args.envelopes))
