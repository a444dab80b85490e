"""Every refusal the page can show, said in French (and in English when chosen).

Three real daemons in this process (the GP, a cardiologist, a physiotherapist who
revokes her key), each with its local API on its unix socket, and the GP's page
served on a loopback port: each test makes the page refuse something the way a
person would (a mistyped field, a colleague gone, a file too large, a spent link,
a stale form...) and checks the sentence shown, in both languages: no traceback,
and no English sentence on the French page.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from p2p.web.api import Api
from p2p.web.app import build_app
from tests.p2p.conftest import Running, pair, start_daemon, wait_for

LETTER = {"kind": "letter", "subject": "Avis", "patient_name": "DUPONT, Jean"}
PDF = ("courrier.pdf", b"%PDF-1.4 courrier", "application/pdf")


@dataclass
class Page:
    """A browser signed in to the GP's page (its cookie, its CSRF token)."""

    http: aiohttp.ClientSession
    base: str
    csrf: str = ""

    async def get(self, path: str, **headers: str) -> tuple[int, str]:
        async with self.http.get(self.base + path, headers=headers, allow_redirects=False) as r:
            return r.status, await r.text()

    async def post(self, path: str, data: Any, **headers: str) -> tuple[int, str]:
        sent = {"Origin": self.base, "X-CSRF-Token": self.csrf, **headers}
        async with self.http.post(self.base + path, data=data, headers=sent) as answer:
            return answer.status, await answer.text()

    async def speak(self, lang: str) -> None:
        status, _ = await self.post("/lang", {"lang": lang, "back": "/"})
        assert status == 200

    async def compose(
        self, fields: dict[str, str], files: list[tuple[str, bytes, str]]
    ) -> list[str]:
        """The problems the page answers a compose form with (its script's JSON)."""
        form = aiohttp.FormData()
        for key, value in fields.items():
            form.add_field(key, value)
        for name, content, media_type in files:
            form.add_field("files", content, filename=name, content_type=media_type)
        status, text = await self.post("/compose", form, Accept="application/json")
        assert status == 400, text
        problems: list[str] = json.loads(text)["problems"]
        return problems


@dataclass
class Practices:
    gp: Running
    cardio: Running
    kine: Running
    page: Page


@pytest.fixture
async def practices(tmp_path: Path) -> AsyncIterator[Practices]:
    cardio = await start_daemon(tmp_path / "cardio", "Dr Durand")
    gp = await start_daemon(tmp_path / "gp", "Dr Martin")
    kine = await start_daemon(tmp_path / "kine", "Mme Leroy")
    await pair(cardio, gp)
    await pair(kine, gp)
    api = Api(gp.daemon.config.api_socket)
    app = await asyncio.to_thread(build_app, api, gp.daemon.web_links)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    gp.daemon.web_links.address = f"127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            page = Page(http, f"http://127.0.0.1:{server.port}")
            link = gp.daemon.web_links.new_link()
            status, text = await page.get(link.removeprefix(page.base))
            assert status == 303, text
            _, inbox = await page.get("/")
            found = re.search(r'data-csrf="([^"]+)"', inbox)
            assert found is not None
            page.csrf = found.group(1)
            yield Practices(gp, cardio, kine, page)
    finally:
        await server.close()
        for running in (gp, cardio, kine):
            await running.stop()


def peer_of(running: Running) -> str:
    return str(running.daemon.identity()["peer_id"])


async def both(page: Page, refuse: Any) -> tuple[str, str]:
    """What ``refuse(page)`` shows in French, then in English (one text each)."""
    french = await refuse(page)
    await page.speak("en")
    try:
        english = await refuse(page)
    finally:
        await page.speak("fr")
    return _one(french), _one(english)


def _one(said: str | list[str]) -> str:
    return " | ".join(said) if isinstance(said, list) else said


def clean(french: str, english: str, *, expect_fr: str, expect_en: str) -> None:
    """The French text says ``expect_fr`` and no English sentence; the English ``expect_en``."""
    assert expect_fr in french, french
    assert expect_en in english, english
    assert expect_en not in french
    assert "Traceback" not in french + english
    for sign in (" the ", " is ", " was ", "cannot", "pli peers"):
        assert sign not in french, (sign, french)


async def test_the_patient_fields_are_refused_in_french(practices: Practices) -> None:
    page, to = practices.page, peer_of(practices.cardio)
    cases = (
        ({"patient_birthdate": "31/02/1984"}, "n'est pas une date qui existe", "not a real date"),
        ({"patient_ins": "123"}, "n'est pas un INS", "is not an INS"),
        ({"patient_sex": "Z"}, "n'est pas un sexe", "not a sex"),
        ({"recipient": ""}, "Choisissez le destinataire.", "Choose the recipient."),
    )
    for typed, expect_fr, expect_en in cases:
        fields = {**LETTER, "recipient": to, **typed}

        async def refuse(page: Page, fields: dict[str, str] = fields) -> list[str]:
            return await page.compose(fields, [PDF])

        french, english = await both(page, refuse)
        clean(french, english, expect_fr=expect_fr, expect_en=expect_en)
    assert list((practices.gp.home / "uploads").iterdir()) == []


async def test_a_colleague_unknown_or_revoked_is_refused_in_french(practices: Practices) -> None:
    page = practices.page

    async def unknown(page: Page) -> list[str]:
        return await page.compose({**LETTER, "recipient": "Dr Inconnu"}, [PDF])

    french, english = await both(page, unknown)
    clean(
        french,
        english,
        expect_fr="Aucun confrère appairé ne s'appelle « Dr Inconnu »",
        expect_en="No paired peer is called “Dr Inconnu”",
    )
    kine = peer_of(practices.kine)
    status, _ = await practices.kine.api("POST", "/v1/revocations", {"self": True})
    assert status == 200
    await wait_for(lambda: bool(practices.gp.daemon.peers.revocation(kine)["revoked_since"]), 30)

    async def revoked(page: Page) -> list[str]:  # a form chosen before the revocation came
        return await page.compose({**LETTER, "recipient": kine}, [PDF])

    french, english = await both(page, revoked)
    clean(
        french,
        english,
        expect_fr="La clé de Mme Leroy est révoquée",
        expect_en="The key of Mme Leroy is revoked",
    )
    assert list((practices.gp.home / "uploads").iterdir()) == []


async def test_a_file_too_large_is_refused_in_french(practices: Practices) -> None:
    page, to = practices.page, peer_of(practices.cardio)
    practices.gp.daemon.uploads.max_size = 4096  # the 16 GiB limit, made small

    async def large(page: Page) -> list[str]:
        return await page.compose({**LETTER, "recipient": to}, [("scan.pdf", b"x" * 5000, "")])

    french, english = await both(page, large)
    clean(
        french,
        english,
        expect_fr="Ce fichier dépasse ce que pli peut envoyer (4 KiB).",
        expect_en="This file is larger than pli can send (4 KiB).",
    )

    async def too_many(page: Page) -> list[str]:
        files = [(f"{n}.txt", b"x", "text/plain") for n in range(65)]
        return await page.compose({**LETTER, "recipient": to}, files)

    french, english = await both(page, too_many)
    clean(
        french,
        english,
        expect_fr="pli envoie au plus 64 fichiers à la fois.",
        expect_en="pli sends at most 64 files at once.",
    )


async def test_a_prescription_refused_in_french(practices: Practices) -> None:
    page = practices.page
    form = {
        "recipient": peer_of(practices.cardio),
        "patient_name": "DUPONT, Jean",
        "patient_birthdate": "1984-05-23",
        "drug": "Amoxicilline 1 g",
        "dosage": "1 comprimé matin et soir",
        "duration": "7 jours",
        "quantity": "",
        "renewals": "0",
        "rpps": "1234",
        "action": "preview",
        "csrf": page.csrf,
    }

    async def bad_rpps(page: Page) -> str:
        status, text = await page.post("/prescribe", form)
        assert status == 400
        return problems_of(text)

    french, english = await both(page, bad_rpps)
    clean(
        french,
        english,
        expect_fr="« 1234 » n'est pas un numéro RPPS",
        expect_en="“1234” is not an RPPS number",
    )

    async def to_nobody(page: Page) -> str:
        sent = {**form, "rpps": "10101234567", "action": "send", "recipient": "Dr Inconnu"}
        status, text = await page.post("/prescribe", sent)
        assert status == 400
        return problems_of(text)

    french, english = await both(page, to_nobody)
    clean(
        french,
        english,
        expect_fr="Aucun confrère appairé ne s'appelle « Dr Inconnu »",
        expect_en="No paired peer is called “Dr Inconnu”",
    )
    assert list((practices.gp.home / "uploads").iterdir()) == []


async def test_pages_and_forms_refused_in_french(practices: Practices) -> None:
    page = practices.page

    async def unknown_document(page: Page) -> str:
        status, text = await page.get("/documents/abcdef0123")
        assert status == 404
        return problem_of(text)

    french, english = await both(page, unknown_document)
    clean(french, english, expect_fr="Aucun document", expect_en="No document")

    async def wrong_passphrase(page: Page) -> str:
        fields = {"current": "", "new": "court", "again": "court", "csrf": page.csrf}
        status, text = await page.post("/settings/passphrase", fields)
        assert status == 400
        return problem_of(text, "passphrase-problem", "div")

    french, english = await both(page, wrong_passphrase)
    clean(
        french,
        english,
        expect_fr="La nouvelle phrase secrète est trop courte",
        expect_en="The new passphrase is too short",
    )

    async def forged(page: Page) -> str:
        status, text = await page.post("/compose", {"lang": "x"}, **{"X-CSRF-Token": "forged"})
        assert status == 403
        return text

    french, english = await both(page, forged)
    clean(
        french,
        english,
        expect_fr="ce formulaire est périmé ou falsifié",
        expect_en="this form is out of date or forged",
    )


async def test_a_spent_link_and_a_foreign_host_say_it_in_french_first(
    practices: Practices,
) -> None:
    page, links = practices.page, practices.gp.daemon.web_links
    link = links.new_link().removeprefix(page.base)
    assert (await page.get(link))[0] == 303
    status, text = await page.get(link)
    assert status == 403
    assert text.startswith("pli : ce lien de connexion a déjà servi ou a expiré.")
    status, text = await page.get("/", Host="evil.example")
    assert status == 403
    assert text.startswith("pli : cette page ne répond qu'à http://127.0.0.1")
    assert "pli: this page answers only at" in text  # no session: both languages


def problems_of(page: str) -> str:
    found = re.search(r'<ul data-testid="problems">(.*?)</ul>', page, re.S)
    assert found is not None, page
    return _text(found.group(1))


def problem_of(page: str, testid: str = "problem", end: str = "p") -> str:
    found = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</{end}>', page, re.S)
    assert found is not None, page
    return _text(found.group(1))


def _text(fragment: str) -> str:
    import html

    return html.unescape(re.sub(r"<[^>]+>", " ", fragment)).strip()
