"""Run one ``Discovery`` and print what it sees as JSON lines (used inside namespaces).

::

    python -m tests.p2p.discovery_node --interface 10.231.7.1 --port 7717 \\
        --secret HEX --peer PEER_ID=SECRET_HEX --expect PEER_ID --linger 2 --seconds 15

Lines: ``{"event": "started", "instance": ..., "t": seconds}``, then one per
event (``PeerSeen``, ``PeerGone``, ``InvitationSeen``) with its fields and
``t``, then ``{"event": "stopped", ...}``. ``t`` counts from before ``start()``.
It exits ``--linger`` seconds after every ``--expect``ed peer was seen, or after
``--seconds`` (exit status 1 if an expected peer was never seen).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time

from p2p.events import PeerSeen
from p2p.net.discovery import Discovery, Event


def _emit(record: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interface", required=True, help="the local IP to run mDNS on")
    parser.add_argument("--port", type=int, required=True, help="the peer port to advertise")
    parser.add_argument("--secret", required=True, help="our discovery secret, hex")
    parser.add_argument("--peer", action="append", default=[], help="PEER_ID=SECRET_HEX")
    parser.add_argument("--expect", action="append", default=[], help="a peer id to wait for")
    parser.add_argument("--invite", help="advertise this nameplate")
    parser.add_argument("--linger", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args(argv)
    peers = dict(item.split("=", 1) for item in args.peer)
    secrets = {peer: bytes.fromhex(secret) for peer, secret in peers.items()}
    expected = set(args.expect)
    seen: set[str] = set()
    done = asyncio.Event()
    t0 = time.monotonic()

    def on_event(event: Event) -> None:
        _emit(
            {
                "event": type(event).__name__,
                "t": round(time.monotonic() - t0, 3),
                **dataclasses.asdict(event),
            }
        )
        if isinstance(event, PeerSeen):
            seen.add(event.peer_id)
            if expected <= seen:
                done.set()

    discovery = Discovery(
        port=args.port,
        interfaces=[args.interface],
        own_secret=bytes.fromhex(args.secret),
        peer_secrets=lambda: secrets,
        on_event=on_event,
    )
    await discovery.start()
    _emit(
        {
            "event": "started",
            "instance": discovery.instance_name,
            "t": round(time.monotonic() - t0, 3),
        }
    )
    if args.invite:
        await discovery.set_invitation(args.invite)
    try:
        async with asyncio.timeout(args.seconds):
            if expected:
                await done.wait()
                await asyncio.sleep(args.linger)
            else:
                await asyncio.Event().wait()
    except TimeoutError:
        pass
    finally:
        await discovery.stop()
        _emit({"event": "stopped", "t": round(time.monotonic() - t0, 3)})
    return 0 if expected <= seen else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
