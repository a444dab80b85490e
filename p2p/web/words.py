"""What the page says, in French first and in English: one table, ``WORDS``.

Templates call ``t("key")``; the session's language picks the column. A key
missing from the table raises ``KeyError`` (a bug: the page answers 500);
``tests/web/test_guard.py::test_every_page_reads_in_french_and_english`` renders
the pages in both languages.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

from p2p.web.words_failures import FAILURES
from p2p.web.words_mailbox import MAILBOX
from p2p.web.words_people import PEOPLE

LANGS = ("fr", "en")

WORDS: dict[str, tuple[str, str]] = {
    "app": ("pli — messagerie du cabinet", "pli — the practice's mail"),
    "skip": ("Aller au contenu", "Skip to content"),
    "nav": ("Menu principal", "Main menu"),
    "inbox": ("Boîte de réception", "Inbox"),
    "outbox": ("Envoyés", "Sent"),
    "compose": ("Écrire", "Write"),
    "language": ("Langue", "Language"),
    "other_lang": ("English", "Français"),
    "search": ("Rechercher", "Search"),
    "search_label": (
        "Patient, date de naissance, expéditeur ou objet",
        "Patient, birth date, sender or subject",
    ),
    "kind": ("Type", "Kind"),
    "all_kinds": ("Tous", "All"),
    "since": ("Reçu depuis le", "Received since"),
    "until": ("Reçu jusqu'au", "Received until"),
    "filter": ("Filtrer", "Filter"),
    "state": ("État", "State"),
    "new": ("Nouveau", "New"),
    "read": ("Lu", "Read"),
    "from": ("De", "From"),
    "to": ("À", "To"),
    "subject": ("Objet", "Subject"),
    "no_subject": ("(sans objet)", "(no subject)"),
    "patient": ("Patient", "Patient"),
    "patient_name": ("Nom du patient", "Patient's name"),
    "patient_name_hint": (
        "NOM, Prénoms — par exemple DUPONT, Jean",
        "FAMILY NAME, Given names — e.g. DUPONT, Jean",
    ),
    "birthdate": ("Date de naissance", "Birth date"),
    "born": ("né(e) le", "born"),
    "birthdate_hint": ("JJ/MM/AAAA, par exemple 23/05/1984", "e.g. 23/05/1984"),
    "ins": ("INS (matricule, facultatif)", "INS (optional)"),
    "sex": ("Sexe (facultatif)", "Sex (optional)"),
    "received": ("Reçu le", "Received"),
    "sent_at": ("Envoyé le", "Sent"),
    "signature": ("Signature", "Signature"),
    "sig_ok": ("Signé, vérifié", "Signed, verified"),
    "sig_revoked": ("Clé révoquée", "Key revoked"),
    "empty_inbox": ("Aucun document.", "No documents."),
    "empty_outbox": ("Aucun document envoyé.", "Nothing sent yet."),
    "page_of": ("Page {page} sur {pages}", "Page {page} of {pages}"),
    "previous": ("Précédente", "Previous"),
    "next": ("Suivante", "Next"),
    "count": ("{count} document(s)", "{count} document(s)"),
    "letter": ("Courrier", "Letter"),
    "prescription": ("Ordonnance", "Prescription"),
    "report": ("Compte rendu", "Report"),
    "file": ("Fichier", "File"),
    "files": ("Fichiers", "Files"),
    "download": ("Télécharger", "Download"),
    "print": ("Imprimer", "Print"),
    "mark_read": ("Marquer comme lu", "Mark as read"),
    "marked_read": ("Marqué comme lu.", "Marked as read."),
    "reply": ("Répondre", "Reply"),
    "preview": ("Aperçu", "Preview"),
    "no_preview": (
        "Pas d'aperçu pour ce type de fichier : téléchargez-le.",
        "No preview for this kind of file: download it.",
    ),
    "as_text": ("Affiché comme texte, sans être exécuté.", "Shown as text, never run."),
    "trust_ok": (
        "Signé par {name}, collègue appairé(e) depuis le {since}. Empreinte {fp}.",
        "Signed by {name}, a colleague paired since {since}. Fingerprint {fp}.",
    ),
    "trust_revoked": (
        "Attention : la clé de {name} est révoquée depuis le {since}. "
        "Ne vous fiez pas à ce document sans appeler ce confrère.",
        "Warning: {name}'s key is revoked since {since}. Do not rely on this "
        "document without calling this colleague.",
    ),
    "trust_unknown": (
        "Signé par une clé que ce cabinet ne connaît pas (empreinte {fp}).",
        "Signed by a key this practice does not know (fingerprint {fp}).",
    ),
    "trust_ours": ("Signé par ce cabinet.", "Signed by this practice."),
    "details": ("Données signées", "Signed details"),
    "document_id": ("Identifiant", "Id"),
    "created": ("Rédigé le", "Written"),
    "thread": ("Échanges sur ce document", "Thread"),
    "reply_to": ("Réponse à", "Reply to"),
    "no_replies": ("Pas encore de réponse.", "No reply yet."),
    "receipts": ("Accusés de réception", "Receipts"),
    "rc_delivered": (
        "Remis le {time} (accusé signé)",
        "Delivered on {time} (signed receipt)",
    ),
    "rc_integrated": (
        "Intégré le {time} dans le logiciel du destinataire",
        "Integrated on {time} into the recipient's software",
    ),
    "rc_not_integrated": (
        "Non intégré le {time} : erreur {code} — {label}",
        "Not integrated on {time}: error {code} — {label}",
    ),
    "rc_not_integrated_bare": (
        "Non intégré le {time} : erreur {code}",
        "Not integrated on {time}: error {code}",
    ),
    "rc_read": ("Lu le {time}", "Read on {time}"),
    "told_sender": ("Signalé à l'expéditeur", "Told the sender"),
    "our_delivered": (
        "Reçu le {time} (accusé signé par ce cabinet)",
        "Received on {time} (receipt signed by this practice)",
    ),
    "our_integrated": (
        "Intégré le {time} dans votre logiciel",
        "Integrated on {time} into your software",
    ),
    "recipient": ("Destinataire", "Recipient"),
    "choose": ("Choisir un confrère…", "Choose a colleague…"),
    "no_peers": (
        "Aucun confrère appairé : appairez-vous d'abord (pli pair).",
        "No paired colleague yet: pair first (pli pair).",
    ),
    "drop": ("Déposez les fichiers ici, ou choisissez-les", "Drop the files here, or choose them"),
    "send": ("Envoyer", "Send"),
    "sending": ("Envoi en cours…", "Sending…"),
    "check_form": ("Le document n'a pas été envoyé :", "The document was not sent:"),
    "need_recipient": ("Choisissez le destinataire.", "Choose the recipient."),
    "need_file": ("Joignez au moins un fichier.", "Attach at least one file."),
    "queued": (
        "Document envoyé : il part dès que le destinataire est joignable.",
        "Sent: it leaves as soon as the recipient can be reached.",
    ),
    "st_queued": ("En attente", "Queued"),
    "st_sending": ("Envoi en cours", "Sending"),
    "st_delivered": ("Remis", "Delivered"),
    "st_rejected": ("Refusé", "Refused"),
    "st_cancelled": ("Annulé", "Cancelled"),
    "retry": ("Réessayer maintenant", "Retry now"),
    "cancel": ("Annuler l'envoi", "Cancel"),
    "retried": ("Nouvel essai lancé.", "Trying again now."),
    "cancelled": (
        "Envoi annulé : ce document ne partira pas.",
        "Cancelled: this document will not be sent.",
    ),
    "attempts": ("{count} essai(s)", "{count} attempt(s)"),
    "actions": ("Actions", "Actions"),
    "colleagues": ("Confrères", "Colleagues"),
    "name": ("Nom", "Name"),
    "profession": ("Profession", "Profession"),
    "last_seen": ("Vu pour la dernière fois", "Last seen"),
    "fingerprint": ("Empreinte", "Fingerprint"),
    "online": ("En ligne", "Online"),
    "offline": ("Hors ligne", "Offline"),
    "revoked": ("Clé révoquée", "Key revoked"),
    "live": ("Mise à jour automatique", "Updates live"),
    "notify": ("Prévenir à l'arrivée d'un courrier", "Notify me of new letters"),
    "new_letter": ("Nouveau document reçu", "New document received"),
    "error_title": ("Un problème est survenu", "Something went wrong"),
    "back": ("Retour à la boîte de réception", "Back to the inbox"),
    "unknown_sender": ("Expéditeur inconnu", "Unknown sender"),
    "you": ("ce cabinet", "this practice"),
    "prescribe": ("Prescrire", "Prescribe"),
    "prescribe_title": ("Rédiger une ordonnance", "Write a prescription"),
    "rx_check": ("À corriger avant l'aperçu ou l'envoi :", "To correct before preview or sending:"),
    "rx_items": ("Lignes de l'ordonnance", "Lines of the prescription"),
    "rx_items_hint": (
        "Une ligne par médicament ; « Ajouter une ligne » en ajoute une.",
        "One line per drug; “Add a line” adds one.",
    ),
    "drug": ("Médicament", "Drug"),
    "dosage": ("Posologie", "Dosage"),
    "duration": ("Durée", "Duration"),
    "quantity": ("Quantité (facultatif)", "Quantity (optional)"),
    "renewals": ("Renouvellements", "Renewals"),
    "rx_note": (
        "Note imprimée sous les lignes (facultatif)",
        "Note printed under the lines (optional)",
    ),
    "rx_rpps": ("Votre numéro RPPS", "Your RPPS number"),
    "rx_rpps_hint": (
        "Les 11 chiffres de votre carte CPS : votre profil n'en a pas, l'ordonnance le porte.",
        "The 11 digits on your CPS card: your profile has none, the prescription carries it.",
    ),
    "rx_preview": ("Aperçu avant envoi", "Preview"),
    "rx_send": ("Signer et envoyer", "Sign and send"),
    "rx_add": ("+ Ajouter une ligne", "+ Add a line"),
    "rx_preview_title": (
        "Aperçu de l'ordonnance (pas encore signée)",
        "Preview of the prescription (not signed yet)",
    ),
    "rx_line": ("Ligne {number} : {problem}", "Line {number}: {problem}"),
    "rx_sent": (
        "Ordonnance signée et envoyée : elle part dès que le destinataire est joignable.",
        "Prescription signed and sent: it leaves as soon as the recipient can be reached.",
    ),
    "ordonnance": ("Ordonnance imprimable", "Printable prescription"),
    "print_rx": ("Imprimer l'ordonnance", "Print the prescription"),
    "download_rx": (
        "Télécharger l'ordonnance signée (HTML)",
        "Download the signed prescription (HTML)",
    ),
    "rx_frame": (
        "Ordonnance avec son QR code de signature",
        "Prescription with its signature QR code",
    ),
    "sex_F": ("F — femme", "F — female"),
    "sex_M": ("M — homme", "M — male"),
    "sex_U": ("U — inconnu ou autre", "U — unknown or other"),
    "today": ("aujourd'hui {time}", "today {time}"),
    "too_many_files": (
        "pli envoie au plus {count} fichiers à la fois.",
        "pli sends at most {count} files at once.",
    ),
    "not_a_form": (
        "Le formulaire n'a pas été envoyé comme un formulaire : rechargez la page.",
        "The form was not sent as a form: reload the page.",
    ),
    "unreachable": (
        "Le démon pli n'a pas pu être joint : vérifiez qu'il tourne, puis réessayez.",
        "The pli daemon could not be reached: check that it runs, then try again.",
    ),
    "no_draft": (
        "Pas encore d'aperçu : remplissez le formulaire et appuyez sur « Aperçu avant envoi ».",
        "No preview yet: fill in the form and press Preview.",
    ),
    "not_printable": (
        "Ce document ne contient pas d'ordonnance que pli sait imprimer.",
        "This document holds no prescription pli can print.",
    ),
    "yesterday": ("hier {time}", "yesterday {time}"),
}
WORDS.update(PEOPLE)  # the colleagues, pairing and settings pages (words_people.py)
WORDS.update(MAILBOX)  # the mailboxes' states, the way each document went (words_mailbox.py)
WORDS.update(FAILURES)  # why a sent document waits or was cancelled (words_failures.py)


def word(lang: str, key: str, **values: object) -> str:
    """``key`` in ``lang``, with ``{name}`` fields filled in."""
    pair = WORDS[key]
    text = pair[1] if lang == "en" else pair[0]
    return text.format(**values) if values else text


def inert(text: object) -> str:
    """Peer text made harmless to show: no control, format (bidi) or private characters.

    HTML is escaped by the templates; this removes what escaping leaves, such as a
    right-to-left override that disguises a file name, or a line break in a subject.
    """
    kept = (ch if unicodedata.category(ch)[0] != "C" else " " for ch in str(text))
    return "".join(kept).strip()


def when(timestamp: object, lang: str, *, with_time: bool = True, relative: bool = False) -> str:
    """A Unix time as the practice reads it (local time), e.g. ``01/12/2026 à 14:05``;
    ``relative``: today's and yesterday's as ``aujourd'hui 14:05``, ``hier 09:30``."""
    if not isinstance(timestamp, int | float) or timestamp <= 0:
        return "—"
    moment = dt.datetime.fromtimestamp(timestamp)  # the practice's own clock
    clock = moment.strftime("%H:%M")
    if relative and with_time:
        days = (dt.date.today() - moment.date()).days
        if days in (0, 1):
            return word(lang, "today" if days == 0 else "yesterday", time=clock)
    if lang == "en":
        day = f"{moment.day} {_MONTHS_EN[moment.month - 1]} {moment.year}"
        return f"{day}, {clock}" if with_time else day
    day = moment.strftime("%d/%m/%Y")
    return f"{day} à {clock}" if with_time else day


_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def birth_date(iso: object, lang: str) -> str:
    """A date of the metadata (``1984-05-23``) as the page shows it: ``23/05/1984`` in
    French, ``23 May 1984`` in English; anything else as it was written (made inert)."""
    text = str(iso or "")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return inert(text)
    if lang == "en":
        return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
    return day.strftime("%d/%m/%Y")
