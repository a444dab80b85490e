"""The outbox in pli's own words: peer refusals mapped, letters to a removed peer cancelled."""

from __future__ import annotations

import asyncio
from pathlib import Path

from p2p.daemon.core import CANCELLED_REMOVED
from p2p.events import Link
from p2p.services.outbox import REFUSED_OTHERWISE
from protocol import PublicIdentity, messages

from .clirun import run
from .conftest import Running, wait_for
from .test_exchange import send_file

PEER_TEXT = "Votre abonnement a expiré : appelez le 08 99 00 00 00"


async def test_a_peers_refusal_text_is_never_shown_as_ours(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two

    async def refuse_with_text(
        channel: Link, sender: PublicIdentity, offer: messages.Offer
    ) -> None:
        await channel.send(messages.Refuse(offer.document_id, PEER_TEXT, PEER_TEXT))

    b.daemon.inbox.on_offer = refuse_with_text  # type: ignore[method-assign]
    letter = tmp_path / "lettre.txt"
    letter.write_text("Cher confrère,\n")
    doc_id = await send_file(a, b, letter)
    await wait_for(lambda: any(r.last_error for r in a.daemon.store.outbox()))
    (row,) = a.daemon.store.outbox()
    assert (row.error_code, row.last_error) == ("refused", REFUSED_OTHERWISE)
    _status, outbox = await a.api("GET", "/v1/outbox")
    assert PEER_TEXT not in str(outbox)
    shown = await asyncio.to_thread(run, "--home", a.home, "outbox")
    assert "08 99" not in shown.output
    assert doc_id[:12] in shown.output


async def test_letters_to_a_removed_peer_are_cancelled(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    b.daemon.stop()  # Bob is away: the letter stays queued
    await b.task
    letter = tmp_path / "lettre.txt"
    letter.write_text("Cher confrère,\n")
    doc_id = await send_file(a, b, letter)
    await wait_for(lambda: any(r.attempts > 0 for r in a.daemon.store.outbox()))
    (waiting,) = a.daemon.store.outbox()
    assert waiting.error_code == "unreachable"  # the page says it in its words
    assert "did not answer" in str(waiting.last_error)  # the CLI's sentence says where
    status, _body = await a.api("DELETE", f"/v1/peers/{b.daemon.me.peer_id.hex}")
    assert status == 200
    (row,) = a.daemon.store.outbox()
    assert row.state == "cancelled"
    assert (row.error_code, row.last_error) == (CANCELLED_REMOVED.code, CANCELLED_REMOVED.text)
    attempts = row.attempts
    await asyncio.sleep(2.5)  # retry_max is 1 s in the tests: no more attempts
    (row,) = a.daemon.store.outbox()
    assert (row.state, row.attempts) == ("cancelled", attempts)
    _status, outbox = await a.api("GET", "/v1/outbox")
    assert [entry["state"] for entry in outbox] == ["cancelled"]
    shown = await asyncio.to_thread(run, "--home", a.home, "outbox")
    assert "cancelled" in shown.output
    assert doc_id[:12] in shown.output
