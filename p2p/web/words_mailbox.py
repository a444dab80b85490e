"""What the page says about the mailboxes (NATS, docs/mailbox.md), in French and English.

Part of the page's one table (``words.WORDS`` takes these in). A mailbox's state
is said as ``pli mailbox status`` says it, with what the practice can do about it;
the outbox says which way each document went.
"""

from __future__ import annotations

MAILBOX: dict[str, tuple[str, str]] = {
    "mailboxes_title": ("Boîtes aux lettres", "Mailboxes"),
    "mailboxes_hint": (
        "Quand un confrère est injoignable directement, le document chiffré l'attend dans "
        "une boîte aux lettres que vous partagez ; le serveur ne peut le lire.",
        "When a colleague cannot be reached directly, the encrypted document waits for "
        "them in a mailbox you share; the server cannot read it.",
    ),
    "mailboxes_none": (
        "Aucune boîte aux lettres : les documents partent directement (réseau local ou "
        "adresse connue). Voir « pli mailbox add ».",
        "No mailbox: documents go directly (local network or known address). See "
        "“pli mailbox add”.",
    ),
    "mailbox_connected": ("Connectée", "Connected"),
    "mailbox_connecting": ("Connexion en cours…", "Connecting…"),
    "mailbox_unreachable": (
        "Injoignable : les documents partent quand même directement. Vérifiez l'adresse "
        "et le serveur.",
        "Cannot be reached: documents still go directly. Check the address and the server.",
    ),
    "mailbox_refused_key": (
        "A refusé la clé de ce cabinet : redonnez « pli mailbox key » à l'administrateur "
        "du serveur.",
        "Refused this practice's key: give “pli mailbox key” to the server's admin again.",
    ),
    "mailbox_refused_credentials": (
        "A refusé les identifiants de ce cabinet : demandez un nouveau fichier .creds à "
        "l'administrateur du serveur.",
        "Refused this practice's credentials: ask the server's admin for a new .creds file.",
    ),
    "mailbox_unusable": (
        "Le fichier d'identifiants est inutilisable : ajoutez la boîte à nouveau avec le "
        "fichier .creds reçu.",
        "The credentials file cannot be used: add the mailbox again with the .creds file "
        "you were given.",
    ),
    "mailbox_waiting_in": (
        "{count} message(s) en attente de lecture ici",
        "{count} message(s) waiting to be read here",
    ),
    "mailbox_waiting_out": (
        "{count} document(s) déposé(s) pour des confrères, accusé attendu",
        "{count} document(s) left for colleagues, receipt awaited",
    ),
    "path_direct": ("direct", "direct"),
    "path_mailbox": ("via la boîte aux lettres {host}", "through the mailbox {host}"),
}
