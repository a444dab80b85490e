"""What the colleagues, pairing and settings pages say, in French and English.

Part of the page's one table (``words.WORDS`` takes these in): kept apart so that
the pages about people and the pages about documents each have their own list.
"""

from __future__ import annotations

PEOPLE: dict[str, tuple[str, str]] = {
    "settings": ("Réglages", "Settings"),
    "colleagues_hint": (
        "Les cabinets avec lesquels ce cabinet échange des documents chiffrés et signés.",
        "The practices this one exchanges encrypted, signed documents with.",
    ),
    "practice": ("Cabinet", "Practice"),
    "revoked_since": ("Clé révoquée le {since}", "Key revoked on {since}"),
    "never": ("jamais", "never"),
    "no_colleagues": (
        "Aucun confrère pour l'instant : ajoutez-en un ci-dessous.",
        "No colleague yet: add one below.",
    ),
    "rename": ("Renommer", "Rename"),
    "new_name": ("Nouveau nom pour {name}", "New name for {name}"),
    "save": ("Enregistrer", "Save"),
    "need_name": ("Donnez un nom.", "Give a name."),
    "renamed": ("Ce confrère s'appelle désormais « {name} ».", "This colleague is now “{name}”."),
    "name_waiting": (
        "Sa nouvelle carte signée porte le nom « {name} ».",
        "Their new signed card carries the name “{name}”.",
    ),
    "take_name": ("Utiliser ce nom", "Use this name"),
    "remove": ("Retirer", "Remove"),
    "remove_title": ("Retirer {name} ?", "Remove {name}?"),
    "remove_explained": (
        "Ce cabinet n'enverra plus rien à {name} et refusera ce qui vient de sa clé. Les "
        "documents déjà échangés restent ; les envois en attente vers ce confrère sont "
        "annulés. Pour échanger à nouveau, il faudra vous appairer à nouveau.",
        "This practice will send nothing more to {name} and will refuse what comes from "
        "their key. Documents already exchanged stay; sending still waiting for this "
        "colleague is cancelled. To exchange again you will have to pair again.",
    ),
    "remove_confirm": ("Oui, retirer ce confrère", "Yes, remove this colleague"),
    "keep": ("Non, le garder", "No, keep them"),
    "removed": ("« {name} » a été retiré(e) de vos confrères.", "“{name}” was removed."),
    "problem": ("Ce n'a pas été fait :", "This was not done:"),
    # adding a colleague
    "add_colleague": ("Ajouter un confrère", "Add a colleague"),
    "by_code": ("Par un code à usage unique", "With a one-time code"),
    "by_code_hint": (
        "Vous créez un code et le lisez à votre confrère (au téléphone ou à côté de vous) ; "
        "il l'entre dans son pli. Vous comparez ensuite un code de vérification.",
        "You make a code and read it to your colleague (on the phone or side by side); "
        "they type it in their pli. Then you compare a check code.",
    ),
    "make_code": ("Créer un code", "Make a code"),
    "type_code": ("J'ai reçu un code", "I was given a code"),
    "code_label": ("Code donné par votre confrère", "Code your colleague gave you"),
    "code_hint": ("Par exemple 314-1592653", "For example 314-1592653"),
    "address_label": ("Adresse de son pli (facultatif)", "Address of their pli (optional)"),
    "address_hint": (
        "Seulement si son invitation n'est pas trouvée sur le réseau du cabinet : hôte:port.",
        "Only if their invitation is not found on the practice's network: host:port.",
    ),
    "join": ("Rejoindre", "Join"),
    "by_fingerprint": ("Par empreinte", "By fingerprint"),
    "by_fingerprint_hint": (
        "L'empreinte figure sur le papier à en-tête de votre confrère ou dans ses réglages.",
        "The fingerprint is on your colleague's letterhead or in their settings.",
    ),
    "fingerprint_label": ("Empreinte de votre confrère", "Your colleague's fingerprint"),
    "their_address": ("Adresse de son pli (hôte:port)", "Address of their pli (host:port)"),
    "ask_pairing": ("Demander l'appairage", "Ask to pair"),
    "requests": ("Demandes en attente", "Waiting for your answer"),
    "request_from": (
        "{name} demande à s'appairer avec ce cabinet.",
        "{name} asks to pair with this practice.",
    ),
    "request_check": (
        "N'acceptez que si votre confrère vous lit ce même code de vérification :",
        "Accept only if your colleague reads you this same check code:",
    ),
    "accept": ("Accepter", "Accept"),
    "decline": ("Refuser", "Decline"),
    "request_declined": ("Demande refusée : rien n'a été enregistré.", "Declined: nothing saved."),
    "compare_now": ("Comparer le code de vérification", "Compare the check code"),
    # the wizard
    "pairing": ("Appairage", "Pairing"),
    "step": ("Étape {n} sur 3", "Step {n} of 3"),
    "give_code": ("Donnez ce code à votre confrère", "Give this code to your colleague"),
    "give_code_hint": (
        "Lisez-le-lui au téléphone ou montrez-le. Dans son pli : Confrères → « J'ai reçu un "
        "code ». Le code ne sert qu'une fois, jusqu'au {expires}.",
        "Read it on the phone or show it. In their pli: Colleagues → “I was given a code”. "
        "The code works once, until {expires}.",
    ),
    "address_for_them": (
        "Si son pli ne trouve pas l'invitation sur le réseau, donnez-lui aussi cette adresse :",
        "If their pli does not find the invitation on the network, also give them this address:",
    ),
    "waiting_colleague": ("En attente de votre confrère…", "Waiting for your colleague…"),
    "connecting": ("Connexion à l'invitation…", "Reaching the invitation…"),
    "cancel_invitation": ("Annuler l'invitation", "Cancel the invitation"),
    "pair_cancelled": ("Invitation annulée.", "Invitation cancelled."),
    "compare": ("Comparez le code de vérification", "Compare the check code"),
    "compare_hint": (
        "Les deux écrans doivent afficher le même code. Si ce n'est pas le cas, quelqu'un "
        "s'est peut-être interposé : refusez.",
        "Both screens must show the same code. If they differ, someone may have come in "
        "between: refuse.",
    ),
    "connected_to": ("Connecté à {name}", "Connected to {name}"),
    "your_screen": ("Sur votre écran", "On your screen"),
    "their_screen": ("Sur l'écran de votre confrère", "On your colleague's screen"),
    "their_code_label": (
        "Code lu par votre confrère (facultatif)",
        "Code your colleague reads (optional)",
    ),
    "same": ("Les codes sont identiques", "The codes are the same"),
    "different": ("Les codes sont différents", "The codes differ"),
    "pair_typed_differs": (
        "Le code saisi ({code}) n'est pas celui de votre écran. Vérifiez-le avec votre confrère ; "
        "s'ils diffèrent vraiment, choisissez « Les codes sont différents ».",
        "The code typed ({code}) is not the one on your screen. Check it with your "
        "colleague; if they really differ, choose “The codes differ”.",
    ),
    "read_check_code": (
        "Lisez ce code de vérification à votre confrère",
        "Read this check code to your colleague",
    ),
    "read_check_code_hint": (
        "Il voit votre demande dans son pli (Confrères) et ne l'accepte que s'il lit le même code.",
        "They see your request in their pli (Colleagues) and accept it only if they read the "
        "same code.",
    ),
    "waiting_their_ok": (
        "En attente de la confirmation de votre confrère…",
        "Waiting for your colleague to confirm…",
    ),
    "paired_with": ("Appairé avec {name}", "Paired with {name}"),
    "paired_hint": (
        "Vous pouvez désormais vous envoyer des documents chiffrés et signés.",
        "You can now send each other encrypted, signed documents.",
    ),
    "write_to": ("Écrire à ce confrère", "Write to this colleague"),
    "to_colleagues": ("Retour aux confrères", "Back to the colleagues"),
    "pair_failed": ("L'appairage n'a pas abouti", "The pairing did not succeed"),
    "pair_failed_hint": (
        "Rien n'a été enregistré. Vous pouvez recommencer avec un nouveau code.",
        "Nothing was saved. You can start again with a new code.",
    ),
    "reload": ("Actualiser", "Refresh"),
    # signing in over the network (web_tls)
    "signin": ("Connexion", "Sign in"),
    "signin_hint": (
        "La page du cabinet sur le réseau : entrez votre nom de connexion et votre mot de passe.",
        "The practice's page on the network: give your sign-in name and password.",
    ),
    "signin_name": ("Nom de connexion", "Sign-in name"),
    "signin_password": ("Mot de passe", "Password"),
    "signin_slow_down": (
        "Trop d'essais : attendez une minute avant de réessayer.",
        "Too many tries: wait a minute before trying again.",
    ),
    "signin_certificate": (
        "Empreinte du certificat de cette page (à comparer avec celle qu'affiche le "
        "navigateur et avec `pli status` sur le serveur) :",
        "This page's certificate fingerprint (compare it with the one the browser shows "
        "and with `pli status` on the server):",
    ),
    # settings
    "profile": ("Profil du cabinet", "The practice's profile"),
    "profile_hint": (
        "Ce que vos confrères voient sur la carte signée de ce cabinet. Une modification leur "
        "est envoyée aussitôt.",
        "What your colleagues see on this practice's signed card. A change is sent to them "
        "at once.",
    ),
    "your_name": ("Votre nom", "Your name"),
    "name_hint": (
        "Tel que vos confrères le verront, par exemple Dr Marie Curie",
        "e.g. Dr Marie Curie",
    ),
    "profession_hint": ("Par exemple médecin généraliste", "e.g. general practitioner"),
    "rpps_hint": ("11 chiffres, sur votre carte CPS (facultatif)", "11 digits, on your CPS card"),
    "practice_hint": ("Nom et ville du cabinet", "The practice's name and town"),
    "profile_saved": (
        "Profil enregistré. La nouvelle carte signée part vers vos {count} confrère(s) ; ceux "
        "qui sont hors ligne la recevront à leur prochaine connexion.",
        "Profile saved. The new signed card goes to your {count} colleague(s); those offline "
        "get it when they next connect.",
    ),
    "your_fingerprint": ("Empreinte de ce cabinet", "This practice's fingerprint"),
    "fingerprint_hint": (
        "À lire à un confrère qui s'appaire par empreinte, ou à imprimer sur votre papier à "
        "en-tête.",
        "Read it to a colleague who pairs by fingerprint, or print it on your letterhead.",
    ),
    "told_title": ("Ce que vos correspondants apprennent", "What your correspondents learn"),
    "told_integrated_on": (
        "Quand votre logiciel intègre un document reçu, ou ne le peut pas (avec le code "
        "d'erreur, par exemple 902 patient inconnu), son expéditeur en reçoit un accusé signé.",
        "When your practice software takes a received document in, or cannot (with the "
        "error code, e.g. 902 unknown patient), its sender gets a signed receipt.",
    ),
    "told_integrated_off": (
        "Les expéditeurs ne sont pas prévenus quand votre logiciel intègre leurs documents.",
        "Senders are not told when your practice software takes their documents in.",
    ),
    "told_read_on": (
        "Quand quelqu'un ici ouvre un document reçu sur cette page, ou l'exporte, son "
        "expéditeur reçoit un accusé de lecture signé, avec l'heure.",
        "When someone here opens a received document on this page, or exports it, its "
        "sender gets a signed read receipt, with the time.",
    ),
    "told_read_off": (
        "Les expéditeurs ne sont pas prévenus quand un document est ouvert ou exporté ici.",
        "Senders are not told when a document is opened or exported here.",
    ),
    "told_how": (
        "Ces deux réglages sont dans le fichier config.toml du cabinet (receipts_integrated, "
        "receipts_read) et prennent effet au redémarrage du service pli. Rien n'est jamais "
        "envoyé à un confrère dont la clé est révoquée.",
        "Both are set in the practice's config.toml (receipts_integrated, receipts_read) and "
        "take effect when the pli service restarts. Nothing is ever sent to a colleague "
        "whose key is revoked.",
    ),
    "passphrase": ("Phrase secrète des clés", "The keys' passphrase"),
    "passphrase_on": (
        "Les clés de ce cabinet sont protégées par une phrase secrète.",
        "This practice's keys are protected by a passphrase.",
    ),
    "passphrase_off": (
        "Les clés de ce cabinet ne sont pas protégées par une phrase secrète : quiconque copie "
        "le disque peut les utiliser.",
        "This practice's keys are not protected by a passphrase: whoever copies the disk "
        "can use them.",
    ),
    "passphrase_hint": (
        "Au prochain démarrage, le service pli aura besoin de la nouvelle phrase "
        "(PLI_PASSPHRASE, voir docs/operations.md). Notez-la en lieu sûr : sans elle, les clés "
        "ne peuvent plus être ouvertes.",
        "At its next start the pli service needs the new passphrase (PLI_PASSPHRASE, see "
        "docs/operations.md). Keep it somewhere safe: without it the keys cannot be opened.",
    ),
    "current_passphrase": ("Phrase secrète actuelle", "Current passphrase"),
    "new_passphrase": ("Nouvelle phrase secrète", "New passphrase"),
    "new_passphrase_hint": (
        "Au moins 8 caractères ; quelques mots sont plus faciles à retenir. Laissez vide pour "
        "retirer la protection.",
        "At least 8 characters; a few words are easier to remember. Leave empty to remove "
        "the protection.",
    ),
    "again_passphrase": ("La même, une seconde fois", "The same, once more"),
    "change_passphrase": ("Changer la phrase secrète", "Change the passphrase"),
    "passphrase_mismatch": (
        "Les deux saisies de la nouvelle phrase secrète diffèrent.",
        "The two entries of the new passphrase differ.",
    ),
    "passphrase_set": (
        "Phrase secrète enregistrée. Pensez à la donner au service pli avant son prochain "
        "démarrage.",
        "Passphrase saved. Give it to the pli service before its next start.",
    ),
    "passphrase_removed": (
        "Phrase secrète retirée : les clés ne sont plus protégées.",
        "Passphrase removed: the keys are no longer protected.",
    ),
}
