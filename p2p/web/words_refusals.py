"""Refusals as the page says them: the person's language, never English on a French page.

A refusal of the daemon carries its sentence in English (``message``, the CLI's) and,
where one is written at its source, in French (``french``: ``PliError.french``, sent
by the local API next to the message). ``said`` picks the one for the page's
language; a refusal with no French written is said by its stable ``code`` from
``BY_CODE`` (less precise, but in French), and a failed pairing by its reason from
``PAIRING``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Refusal(Protocol):
    """A ``PliError`` or the page's ``ApiError``: a code and the sentence in each language."""

    @property
    def code(self) -> str: ...

    @property
    def message(self) -> str: ...

    @property
    def french(self) -> str | None: ...


#: The French sentence of a refusal whose own sentence has no French, by its code.
BY_CODE: dict[str, str] = {
    "error": "pli n'a pas pu faire ce qui était demandé.",
    "bad-input": "pli a refusé cette demande : une des valeurs données n'est pas valable.",
    "config": "La configuration de pli n'est pas utilisable : voyez le journal du démon.",
    "keystore": "Les clés de ce cabinet n'ont pas pu être utilisées.",
    "storage": "pli n'a pas pu lire ou écrire ses fichiers : voyez le journal du démon.",
    "daemon-not-running": "Le démon pli ne tourne pas : démarrez-le, puis rechargez la page.",
    "daemon": "Le démon pli ne répond pas : vérifiez qu'il tourne (pli status), puis "
    "rechargez la page.",
    "peer-unknown": "Ce confrère n'est pas (ou plus) appairé avec ce cabinet.",
    "peer-ambiguous": "Plusieurs confrères correspondent : choisissez-en un dans la liste.",
    "peer-unreachable": "Ce confrère n'est pas joignable pour l'instant.",
    "not-paired": "Ce confrère n'est pas appairé avec ce cabinet.",
    "pairing-failed": "L'appairage n'a pas abouti.",
    "document-unknown": "Ce document n'existe pas (ou plus) dans ce cabinet.",
    "security": "Une vérification de signature ou de clé a échoué : ne vous fiez pas à ce "
    "document ou à ce confrère.",
    "name-refused": "Ce nom pourrait être confondu avec un autre confrère, ce cabinet ou une "
    "clé : choisissez-en un autre.",
    "sign-in-refused": "La connexion a été refusée.",
    "page-not-running": "La page de pli n'est pas servie : voyez le journal du démon.",
    "internal": "Le démon pli a rencontré un problème inattendu ; voyez son journal.",
    "http-404": "Cette page ou ce document n'existe pas.",
    "http-413": "Cette demande est trop volumineuse.",
}

#: A failed pairing, by its reason code (``protocol.PairingReason``).
PAIRING: dict[str, str] = {
    "wrong-code": "Le code ne correspond pas : vérifiez-le avec votre confrère et "
    "recommencez. S'il était juste, quelqu'un s'est peut-être interposé.",
    "expired": "Ce code a expiré : demandez-en un nouveau à votre confrère.",
    "used": "Ce code a déjà servi : demandez-en un nouveau à votre confrère.",
    "unknown": "Aucune invitation n'a ce code : vérifiez-le, ou demandez-en un nouveau.",
    "cancelled": "Votre confrère a annulé l'invitation.",
    "timeout": "L'échange entre les deux ordinateurs a pris trop de temps : réessayez.",
    "lost": "La connexion a été perdue pendant l'appairage : réessayez.",
    "bad-message": "L'autre ordinateur a envoyé une réponse illisible : réessayez.",
    "rejected": "L'autre ordinateur a mis fin à l'appairage.",
    "busy": "L'autre ordinateur reçoit trop de demandes : réessayez dans un moment.",
    "stopped": "Le démon pli de ce cabinet s'est arrêté pendant l'appairage.",
    "stopping": "Le pli de votre confrère s'est arrêté pendant l'appairage.",
    "you-refused": "Vous avez indiqué que les codes de vérification diffèrent : rien n'a "
    "été enregistré.",
    "peer-refused": "Votre confrère a indiqué que les codes de vérification diffèrent : rien "
    "n'a été enregistré.",
    "confirm-timeout": "Personne n'a confirmé les codes de vérification à temps : recommencez.",
    "not-that-peer": "L'ordinateur joint n'a pas l'empreinte tapée : vérifiez l'adresse et "
    "l'empreinte.",
    "declined": "Votre confrère a refusé la demande.",
    "not-accepted": "Votre confrère n'a pas répondu à temps.",
    "you-declined": "Vous avez refusé cette demande.",
    "replaced": "Une demande plus récente du même confrère remplace celle-ci.",
    "save-failed": "Le confrère n'a pas pu être enregistré : voyez le journal du démon.",
    "reflection": "L'autre côté a la clé de ce cabinet : c'est ce même pli.",
    "bad-peer": "La carte ou le certificat de l'autre côté ne se vérifie pas : rien n'a "
    "été enregistré.",
    "expired-peer": "Le certificat de l'autre côté a expiré (ou une horloge est fausse).",
    "bad-commitment": "L'autre côté n'a pas tenu son engagement : rien n'a été enregistré.",
    "local-setup": "Les clés ou le profil de ce cabinet ne permettent pas de s'appairer.",
}


def said(error: Refusal, lang: str) -> str:
    """``error`` in the page's language: its French where written, else its code's."""
    if lang == "en":
        return error.message
    return error.french or BY_CODE.get(error.code) or BY_CODE["error"]


def pairing_said(attempt: Mapping[str, Any], lang: str) -> str:
    """Why a pairing attempt (``GET /v1/pair/{id}``) failed, in the page's language."""
    message = str(attempt.get("message") or "")
    if lang == "en" or not message:
        return message
    return PAIRING.get(str(attempt.get("reason") or ""), BY_CODE["pairing-failed"])
