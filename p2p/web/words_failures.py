"""What the sent documents' page says of a failed attempt or a cancellation.

Part of the page's one table (``words.WORDS`` takes these in): one ``fail_CODE``
key per ``p2p.storage.failures.Failure`` (``tests/p2p/test_outbox_failures.py``
checks that none is missing). The codes are pli's own, a recipient's refusal
included: nothing a peer wrote reaches these sentences.
"""

from __future__ import annotations

FAILURES: dict[str, tuple[str, str]] = {
    "fail_unreachable": (
        "L'ordinateur de ce confrère n'a pas pu être joint (éteint ou hors réseau) ; "
        "pli garde le document et réessaiera.",
        "Their computer could not be reached (off, or off the network); pli keeps the "
        "document and will try again.",
    ),
    "fail_mailbox-full": (
        "L'ordinateur de ce confrère n'a pas pu être joint, et la boîte aux lettres "
        "partagée est pleine pour lui : le document reste ici et part dès que ce confrère "
        "est joignable ou que la boîte a de nouveau de la place.",
        "Their computer could not be reached, and the shared mailbox is full for them: the "
        "document stays here and goes as soon as they can be reached or the mailbox has "
        "room again.",
    ),
    "fail_connection-lost": (
        "La connexion a été coupée pendant l'envoi ; pli réessaiera.",
        "The connection was cut while sending; pli will try again.",
    ),
    "fail_no-answer": (
        "L'ordinateur de ce confrère n'a pas répondu à temps ; pli réessaiera.",
        "Their computer did not answer in time; pli will try again.",
    ),
    "fail_out-of-turn": (
        "L'ordinateur de ce confrère a répondu de façon inattendue ; pli réessaiera.",
        "Their computer answered out of turn; pli will try again.",
    ),
    "fail_seal-failed": (
        "Le document n'a pas pu être chiffré sur cet ordinateur ; pli réessaiera.",
        "The document could not be sealed on this computer; pli will try again.",
    ),
    "fail_envelope-damaged": (
        "La copie chiffrée gardée sur cet ordinateur est abîmée : envoyez le document à nouveau.",
        "The sealed copy kept on this computer is damaged: send the document again.",
    ),
    "fail_receipt-invalid": (
        "L'accusé de réception reçu n'a pas pu être vérifié : le document reste en "
        "attente et sera proposé à nouveau.",
        "The receipt that came back did not verify: the document stays queued and will "
        "be offered again.",
    ),
    "fail_peer-removed": (
        "Ce confrère a été retiré pendant l'envoi.",
        "This colleague was removed while sending.",
    ),
    "fail_refused-disk-full": (
        "Refusé par l'ordinateur de ce confrère : son disque est presque plein. pli "
        "proposera le document à nouveau plus tard.",
        "Refused by their computer: its disk is nearly full. pli will offer the document "
        "again later.",
    ),
    "fail_refused-quota-full": (
        "Refusé par l'ordinateur de ce confrère : il garde déjà tout ce qu'il accepte de "
        "ce cabinet. pli proposera le document à nouveau quand de la place sera libérée.",
        "Refused by their computer: it already holds as much from this practice as it "
        "accepts. pli will offer the document again once space is freed.",
    ),
    "fail_refused-rate-limited": (
        "Refusé par l'ordinateur de ce confrère : il a reçu de ce cabinet autant de "
        "documents qu'il en accepte par heure. pli proposera le document à nouveau plus tard.",
        "Refused by their computer: it received its hourly limit of documents from this "
        "practice. pli will offer the document again later.",
    ),
    "fail_refused-storage-failed": (
        "Refusé par l'ordinateur de ce confrère : il n'a pas pu enregistrer le document. "
        "pli réessaiera plus tard.",
        "Refused by their computer: it could not store the document. pli will try again later.",
    ),
    "fail_refused-too-large": (
        "Refusé par l'ordinateur de ce confrère : le document dépasse la taille qu'il accepte.",
        "Refused by their computer: the document is over the size it accepts.",
    ),
    "fail_refused-authentication": (
        "Refusé par l'ordinateur de ce confrère : le document n'a pas passé la "
        "vérification (il a pu être altéré en route). pli l'enverra à nouveau.",
        "Refused by their computer: the document failed verification (it may have been "
        "altered on the way). pli will send it again.",
    ),
    "fail_refused": (
        "Refusé par l'ordinateur de ce confrère ; pli réessaiera plus tard.",
        "Refused by their computer; pli will try again later.",
    ),
    "fail_cancelled-by-sender": (
        "Envoi annulé depuis ce cabinet.",
        "Cancelled by this practice.",
    ),
    "fail_cancelled-removed": (
        "Envoi annulé : ce confrère a été retiré de vos confrères.",
        "Cancelled: this colleague was removed from your colleagues.",
    ),
    "fail_cancelled-revoked": (
        "Envoi annulé : la clé de ce confrère a été révoquée. Pour lui écrire à nouveau, "
        "appairez-vous avec sa nouvelle clé.",
        "Cancelled: this colleague's key was revoked. To write to them again, pair with "
        "their new key.",
    ),
    "last_error_as_recorded": ("Dernier essai : {text}", "Last attempt: {text}"),
}
