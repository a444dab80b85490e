"""The page's inbox (``GET /``) with 10,000 received documents: the server's time.

Run by hand from the repository root (not part of the tests)::

    .venv/bin/python -m bench.web_inbox                     # 10,000 documents, 20 runs
    .venv/bin/python -m bench.web_inbox --documents 2000 --runs 10

Two daemons run in this process on loopback; the GP's sends ``--documents`` letters
(patient name, birth date, subject, a 1 kB file) to the cardiologist's through the
ordinary path (``Daemon.send``: sealed, delivered, verified, committed, receipted).
Then the cardiologist's page is served, signed in by a one-time link, and timed:
the whole ``GET /`` (first page, newest first), a search (``?q=``) and a filter
(``?kind=``), each until the answer is read; and, apart, the local API's
``GET /v1/inbox`` that the page reads. Goal (issue 11): ≤ 100 ms of server time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from p2p.api.server import start_api
from p2p.daemon import harness
from p2p.daemon.core import Daemon
from p2p.services.outbox import Attachment
from p2p.web.serve import start_page


async def started(home: Path, name: str) -> tuple[Daemon, asyncio.Task[None], list[object]]:
    daemon = await asyncio.to_thread(
        harness.open_daemon, home, name, "127.0.0.1:0", web_listen="127.0.0.1:0", retry_min=0.05
    )
    await daemon.start()
    api = await start_api(daemon)
    page = await start_page(daemon)
    return daemon, asyncio.create_task(daemon.run()), [api, page]


async def fill(gp: Daemon, cardio: Daemon, count: int, folder: Path) -> None:
    """``count`` letters from ``gp`` to ``cardio``, delivered (receipts stored)."""
    path = folder / "courrier.txt"
    await asyncio.to_thread(path.write_bytes, b"Compte rendu de consultation.\n" * 34)
    target = cardio.me.peer_id.hex
    for number in range(count):
        metadata = {
            "subject": f"Compte rendu n° {number}",
            "patient_birthdate": "1950-02-03",
            "patient_name": f"DUPONT-LEFÈVRE Patient {number:05d}",
        }
        await gp.send(
            [target],
            "letter" if number % 3 else "report",
            metadata,
            [Attachment("courrier.txt", path, "text/plain")],
        )
    while True:
        counts = await asyncio.to_thread(cardio.store.counts)
        if counts.get("inbox", 0) >= count:
            return
        await asyncio.sleep(0.5)


async def timed(session: aiohttp.ClientSession, url: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs + 1):  # the first warms up
        begun = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
            assert response.status == 200, response.status
        times.append(time.perf_counter() - begun)
    return times[1:]


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"median {1000 * statistics.median(ordered):6.1f} ms   p95 {1000 * p95:6.1f} ms"


async def main(documents: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="pli-bench-") as tmp:
        gp, gp_task, gp_servers = await started(Path(tmp) / "gp", "Dr Martin")
        cardio, cardio_task, cardio_servers = await started(Path(tmp) / "cardio", "Dr Durand")
        try:
            gp.add_peer(cardio.signed_card(), [f"127.0.0.1:{cardio.transport.port}"])
            cardio.add_peer(gp.signed_card(), [f"127.0.0.1:{gp.transport.port}"])
            begun = time.perf_counter()
            await fill(gp, cardio, documents, Path(tmp))
            print(f"{documents} letters sent and received in {time.perf_counter() - begun:.0f} s")
            link = cardio.web_links.new_link()
            base = link.split("/login/")[0]
            jar = aiohttp.CookieJar(unsafe=True)  # the page is at an IP address
            async with aiohttp.ClientSession(cookie_jar=jar) as session:
                async with session.get(link) as response:
                    assert response.status == 200
                for label, path in (
                    ("GET /", "/"),
                    ("search", "/?q=lefevre+01234"),
                    ("filter", "/?kind=report"),
                    ("page 100", "/?page=100"),
                ):
                    print(
                        f"page {label:9} {documents} documents, {runs} runs: "
                        f"{ms(await timed(session, base + path, runs))}"
                    )
            connector = aiohttp.UnixConnector(path=str(cardio.config.api_socket))
            async with aiohttp.ClientSession(connector=connector) as api:
                print(
                    f"of which GET /v1/inbox (the API):        "
                    f"{ms(await timed(api, 'http://pli/v1/inbox', runs))}"
                )
        finally:
            for daemon in (gp, cardio):
                daemon.stop()
            await asyncio.gather(gp_task, cardio_task)
            for server in [*gp_servers, *cardio_servers]:
                if server is not None:
                    await server.cleanup()  # type: ignore[attr-defined]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.documents, args.runs))
