"""Documents received before the inbox folder was configured are written there too.

B receives letters while it has no inbox folder; when it starts with one, each
letter is written there once (atomically, recorded), but the ones the practice
software already took (integrated). When ``inbox`` names another folder, the
letters not integrated yet are written there again; the integrated ones are not.
A ``pli daemon`` killed (SIGKILL) in the middle of that writing finishes it at the
next start, each letter once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2p.cli.practice import PracticeProcess, paired, wait_until
from p2p.services.outbox import Attachment

from .conftest import Running, pair, start_daemon, wait_for

FOLDERS = {"stable_seconds": 0, "poll_seconds": 0.05, "inbox_formats": ["hprim"]}


def hprim_subjects(folder: Path) -> list[str]:
    """The subject (line 1) of each HPRIM file in ``folder``, sorted."""
    if not folder.exists():
        return []
    return sorted(p.read_bytes().decode("cp1252").split("\r\n")[0] for p in folder.glob("*.hpr"))


async def send_letters(a: Running, b: Running, folder: Path, count: int) -> list[str]:
    folder.mkdir()
    ids = []
    peer_id = a.daemon.store.peers()[0].peer_id
    for n in range(count):
        (folder / f"lettre-{n}.txt").write_text(f"Lettre numéro {n}\n", encoding="utf-8")
        attachment = Attachment(f"lettre-{n}.txt", folder / f"lettre-{n}.txt", "text/plain")
        doc_id, _ = await a.daemon.send(
            [peer_id], "letter", {"subject": f"Courrier {n}"}, [attachment]
        )
        ids.append(doc_id)
    await wait_for(lambda: len(b.daemon.store.inbox()) == count)
    return ids


async def restart(b: Running, **folders: Any) -> Running:
    await b.stop()
    return await start_daemon(b.home, "Dr Bob Durand", folders={**FOLDERS, **folders})


async def test_letters_received_before_the_folder_are_written_once(tmp_path: Path) -> None:
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    await pair(a, b)
    first, second = tmp_path / "in-1", tmp_path / "in-2"
    try:
        ids = await send_letters(a, b, tmp_path / "letters", 3)
        await b.daemon.mark_integrated(ids[0])  # taken by the software through the API
        b = await restart(b, inbox=str(first))
        await wait_for(lambda: len(hprim_subjects(first)) == 2)
        assert hprim_subjects(first) == ["Courrier 1", "Courrier 2"]
        b = await restart(b, inbox=str(first))  # the same folder again: nothing twice
        await asyncio.sleep(0.5)
        assert hprim_subjects(first) == ["Courrier 1", "Courrier 2"]
        for path in first.glob(f"*-{ids[1][:8]}*"):  # the software takes letter 1
            path.unlink()
        service = b.daemon.folders
        assert service is not None
        await wait_for(lambda: service.counts.integrated == 1)
        b = await restart(b, inbox=str(second))  # another folder: what was not taken
        await wait_for(lambda: len(hprim_subjects(second)) == 1)
        await asyncio.sleep(0.5)
        assert hprim_subjects(second) == ["Courrier 2"]
        assert hprim_subjects(first) == ["Courrier 2"]  # the old folder is left as it was
    finally:
        await a.stop()
        await b.stop()


LETTERS = 60


@pytest.fixture
def practices(tmp_path: Path) -> Iterator[tuple[PracticeProcess, PracticeProcess]]:
    a = PracticeProcess(tmp_path / "a", "Dr Alice Martin")
    b = PracticeProcess(tmp_path / "b", "Dr Bob Durand")
    with paired(a, b):
        yield a, b


def test_kill9_while_writing_the_earlier_letters_writes_each_once(
    practices: tuple[PracticeProcess, PracticeProcess], tmp_path: Path
) -> None:
    a, b = practices
    letters, inbox = tmp_path / "letters", tmp_path / "in"
    letters.mkdir()
    for n in range(LETTERS):
        (letters / f"lettre-{n:03d}.txt").write_text(f"Lettre numéro {n}\n", encoding="utf-8")
        a.send(b, letters / f"lettre-{n:03d}.txt")
    wait_until(lambda: len(b.inbox_ids()) == LETTERS, timeout=120)
    b.stop()
    table = {**FOLDERS, "inbox": str(inbox)}
    with open(b.home / "config.toml", "a", encoding="utf-8") as config:
        config.write("[folders]\n")
        config.writelines(f"{key} = {value!r}\n".replace("'", '"') for key, value in table.items())
    b.start()
    wait_until(lambda: len(list(inbox.glob("*.hpr"))) >= 5, timeout=60, interval=0.005)
    b.kill9()  # in the middle of writing the earlier letters
    b.start()
    wait_until(lambda: len(list(inbox.glob("*.hpr"))) >= LETTERS, timeout=120)
    wait_until(lambda: list((inbox / ".pli").iterdir()) == [], timeout=30)
    texts = sorted(p.read_text(encoding="utf-8") for p in inbox.glob("*-lettre-*.txt"))
    assert texts == sorted(f"Lettre numéro {n}\n" for n in range(LETTERS))  # once each
    assert len(list(inbox.glob("*.hpr"))) == LETTERS
    records = b.home / "folders" / "inbox"
    assert len(list(records.glob("*.json"))) == LETTERS


def test_a_staged_copy_left_after_its_record_is_removed_at_start(tmp_path: Path) -> None:
    """kill -9 after the record was written, before the staged copy was removed."""
    from p2p.services.folders.incoming import InboxFolder

    inbox, records = tmp_path / "in", tmp_path / "records"
    InboxFolder(inbox, records, ("hprim",)).create()
    doc_id = "cd" * 16
    (records / f"{doc_id}.json").write_text(
        f'{{"doc_id": "{doc_id}", "sender": "{"ef" * 32}", "names": ["x.hpr"]}}', encoding="utf-8"
    )
    (inbox / ".pli" / doc_id).mkdir()
    (inbox / ".pli" / doc_id / "manifest.json").write_text('["x.hpr"]', encoding="utf-8")
    (inbox / ".pli" / ("ab" * 16)).mkdir()  # not recorded: written again by the service
    folder = InboxFolder(inbox, records, ("hprim",))
    folder.create()
    assert sorted(p.name for p in (inbox / ".pli").iterdir()) == ["ab" * 16]
    assert list(folder.done) == [doc_id]
