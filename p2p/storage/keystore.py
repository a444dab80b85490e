"""Our secret keys on disk: ``keys/identity.json`` in the home, mode 0600.

The file holds the identity seed, the transport static key, the document key,
the static certificate's expiry and the discovery secret. With a passphrase
the secrets are wrapped with Argon2id + XChaCha20-Poly1305 and the KDF
parameters are the associated data, so they cannot be weakened unnoticed.
The daemon refuses a key file other users can read and says how to fix it.
Nothing here ever logs or prints a secret.
"""

from __future__ import annotations

import contextlib
import json
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl import exceptions as nacl_exceptions
from nacl import pwhash, utils
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)

from p2p.errors import KeystoreError, StorageError
from p2p.storage.files import make_private_dir, write_atomic
from protocol import IdentityKey, LocalIdentity, LocalProtocolError, limits, new_discovery_secret

KEY_FILE = Path("keys") / "identity.json"
#: Our public identity key alone (no secret): ``pli verify`` reads it without the passphrase.
PUBLIC_FILE = Path("keys") / "public.json"
#: Renew the static-key certificate when less than this is left of it.
RENEW_BEFORE = 30 * 24 * 3600


@dataclass(frozen=True)
class Keys:
    identity: LocalIdentity
    discovery_secret: bytes


def key_path(home: Path) -> Path:
    return home / KEY_FILE


def exists(home: Path) -> bool:
    return key_path(home).exists()


def create(home: Path, *, passphrase: str | None = None, now: int | None = None) -> Keys:
    """Generate new keys and write them; refuses to overwrite existing ones."""
    path = key_path(home)
    if path.exists():
        raise KeystoreError(
            f"This home already has an identity ({path}). pli never overwrites one: "
            "use another --home, or move the folder away first if you really mean to start over."
        )
    now = int(time.time()) if now is None else now
    keys = Keys(LocalIdentity.generate(now=now), new_discovery_secret())
    _write(path, _serialise(keys), passphrase)
    return keys


def load(home: Path, *, passphrase: str | None = None) -> Keys:
    path = key_path(home)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeystoreError(
            f'No identity in {home}. Create one with: pli --home {home} init --name "Your name"'
        ) from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeystoreError(
            f"The key file {path} can be read by other users of this computer, so pli will not "
            f"use it. Fix it with: chmod 600 {path}"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KeystoreError(
            f"The key file {path} could not be read ({exc.strerror or exc}). "
            "Check that this user owns the home folder and its keys folder."
        ) from exc
    except ValueError as exc:
        raise damaged(path, f"it is not readable JSON: {exc.__class__.__name__}") from exc
    keys = _deserialise(_unwrap(document, passphrase, path), path)
    now = int(time.time())
    if keys.identity.static_cert.not_after - now < RENEW_BEFORE:
        # The transport certificate is re-signed well before it expires, so
        # peers never see an expired one from a daemon that keeps running.
        keys = _renewed(keys, now)
        _write(path, _serialise(keys), passphrase)
    elif _read_public(home / PUBLIC_FILE) != keys.identity.public.key:
        with contextlib.suppress(StorageError):  # a home made before it; verify falls back
            _write_public(home / PUBLIC_FILE, keys.identity.public.key)
    return keys


MIN_PASSPHRASE = 8  # characters: shorter ones fall to a guess even under Argon2id


def protected(home: Path) -> bool:
    """Whether the key file is protected by a passphrase (False if it cannot be read)."""
    try:
        document = json.loads(key_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and "secrets" not in document


def change_passphrase(home: Path, current: str | None, new: str | None) -> bool:
    """Write the keys again, protected by ``new`` (None or "": no passphrase).

    ``current`` opens a protected file (it is not needed for an unprotected one). The
    key file is replaced atomically; the keys themselves do not change, so peers see
    nothing. Returns whether the keys are now protected.
    """
    if protected(home) and not current:
        raise KeystoreError(
            "The keys are protected by a passphrase: type the current one first.",
            french="Les clés sont protégées par une phrase secrète : tapez d'abord l'actuelle.",
        )
    if new and len(new) < MIN_PASSPHRASE:
        raise KeystoreError(
            f"The new passphrase is too short: use at least {MIN_PASSPHRASE} characters "
            "(a few words are easier to remember than a password).",
            french=f"La nouvelle phrase secrète est trop courte : au moins {MIN_PASSPHRASE} "
            "caractères (quelques mots se retiennent mieux qu'un mot de passe).",
        )
    if new is not None and new != new.strip():
        raise KeystoreError(
            "The new passphrase starts or ends with a space: remove it, so that it can be "
            "typed again without doubt.",
            french="La nouvelle phrase secrète commence ou finit par une espace : retirez-la, "
            "pour pouvoir la retaper sans doute.",
        )
    keys = load(home, passphrase=current or None)
    _write(key_path(home), _serialise(keys), new or None)
    return bool(new)


def public_key(home: Path) -> bytes | None:
    """Our identity public key without the passphrase; None if the home has no identity.

    ``keys/public.json`` when it exists (written with the key file), else the key
    file itself if no passphrase protects it.
    """
    key = _read_public(home / PUBLIC_FILE)
    if key is not None:
        return key
    try:
        document = json.loads(key_path(home).read_text(encoding="utf-8"))
        seed = bytes.fromhex(document["secrets"]["identity_seed"])
        return IdentityKey(seed).public.key
    except (OSError, ValueError, KeyError, TypeError, LocalProtocolError):
        return None


def _read_public(path: Path) -> bytes | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        key = bytes.fromhex(document["identity"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return key if len(key) == 32 else None


def _write_public(path: Path, key: bytes) -> None:
    write_atomic(path, [json.dumps({"v": 1, "identity": key.hex()}).encode("utf-8")])


def _renewed(keys: Keys, now: int) -> Keys:
    me = keys.identity
    identity = LocalIdentity.from_secrets(
        me.identity.seed,
        me.static_secret,
        me.doc_secret,
        not_after=now + limits.STATIC_CERT_LIFETIME,
    )
    return Keys(identity, keys.discovery_secret)


def _serialise(keys: Keys) -> dict[str, Any]:
    me = keys.identity
    return {
        "identity_seed": me.identity.seed.hex(),
        "static_secret": me.static_secret.hex(),
        "doc_secret": me.doc_secret.hex(),
        "static_not_after": me.static_cert.not_after,
        "discovery_secret": keys.discovery_secret.hex(),
    }


def _deserialise(secrets: dict[str, Any], path: Path) -> Keys:
    try:
        identity = LocalIdentity.from_secrets(
            bytes.fromhex(secrets["identity_seed"]),
            bytes.fromhex(secrets["static_secret"]),
            bytes.fromhex(secrets["doc_secret"]),
            not_after=int(secrets["static_not_after"]),
        )
        return Keys(identity, bytes.fromhex(secrets["discovery_secret"]))
    except (KeyError, ValueError, TypeError, OverflowError, LocalProtocolError) as exc:
        raise damaged(path, "a key in it is missing or has the wrong length") from exc


def _write(path: Path, secrets: dict[str, Any], passphrase: str | None) -> None:
    document = _wrap(secrets, passphrase) if passphrase else {"v": 1, "secrets": secrets}
    make_private_dir(path.parent)
    write_atomic(path, [json.dumps(document).encode("utf-8")])
    seed = bytes.fromhex(secrets["identity_seed"])
    _write_public(path.parent / PUBLIC_FILE.name, IdentityKey(seed).public.key)


def _kdf_params() -> dict[str, Any]:
    return {
        "alg": "argon2id",
        "ops": pwhash.argon2id.OPSLIMIT_MODERATE,
        "mem": pwhash.argon2id.MEMLIMIT_MODERATE,
        "salt": utils.random(pwhash.argon2id.SALTBYTES).hex(),
    }


def _derive(passphrase: str, params: dict[str, Any]) -> bytes:
    key: bytes = pwhash.argon2id.kdf(
        32,
        passphrase.encode("utf-8"),
        bytes.fromhex(params["salt"]),
        opslimit=int(params["ops"]),
        memlimit=int(params["mem"]),
    )
    return key


def _params_ad(params: dict[str, Any]) -> bytes:
    return json.dumps(params, sort_keys=True).encode()


def _wrap(secrets: dict[str, Any], passphrase: str) -> dict[str, Any]:
    params = _kdf_params()
    nonce = utils.random(24)
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(
        json.dumps(secrets).encode(), _params_ad(params), nonce, _derive(passphrase, params)
    )
    return {"v": 1, "kdf": params, "nonce": nonce.hex(), "sealed": sealed.hex()}


def damaged(path: Path, what: str) -> KeystoreError:
    """The sentence for a key file pli cannot use: what is wrong, and what to do."""
    return KeystoreError(
        f"The key file {path} is damaged ({what}), so pli cannot open this practice's keys. "
        f"Restore {KEY_FILE} from your backup of the home (docs/operations.md, “Back up and "
        "restore”). Without a backup this identity is lost: move the home folder away, run "
        "`pli init` and pair again with your colleagues."
    )


def _unwrap(document: Any, passphrase: str | None, path: Path) -> dict[str, Any]:
    if not isinstance(document, dict) or document.get("v") != 1:
        raise damaged(path, "it is not a pli key file of a version this pli knows")
    if "secrets" in document:
        secrets = document["secrets"]
        if not isinstance(secrets, dict):
            raise damaged(path, "the “secrets” entry is not a set of keys")
        return secrets
    params, nonce, sealed = _sealed_parts(document, path)
    if not passphrase:
        raise KeystoreError(
            "The keys are protected by a passphrase. Give it in the PLI_PASSPHRASE environment "
            "variable (or type it when asked)."
        )
    try:
        plain = crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed, _params_ad(params), nonce, _derive(passphrase, params)
        )
    except nacl_exceptions.CryptoError as exc:
        raise KeystoreError(
            f"Wrong passphrase: the keys in {path} could not be opened. Try again; if the "
            "passphrase is right, the key file is damaged: restore it from your backup.",
            french="Phrase secrète incorrecte : les clés n'ont pas pu être ouvertes. Réessayez ; "
            "si elle est juste, le fichier des clés est abîmé : restaurez-le depuis votre "
            "sauvegarde.",
        ) from exc
    try:
        unwrapped = json.loads(plain)
    except ValueError:
        unwrapped = None
    if not isinstance(unwrapped, dict):
        raise damaged(path, "the protected keys are not a set of keys")
    return unwrapped


def _sealed_parts(document: dict[str, Any], path: Path) -> tuple[dict[str, Any], bytes, bytes]:
    """The KDF settings, nonce and sealed secrets of a passphrase-protected file, checked."""
    params = document.get("kdf")
    if not isinstance(params, dict):
        raise damaged(path, "the passphrase settings “kdf” are missing")
    ops, mem = params.get("ops"), params.get("mem")
    if (
        params.get("alg") != "argon2id"
        or not _int_within(ops, pwhash.argon2id.OPSLIMIT_MIN, pwhash.argon2id.OPSLIMIT_SENSITIVE)
        or not _int_within(mem, pwhash.argon2id.MEMLIMIT_MIN, pwhash.argon2id.MEMLIMIT_SENSITIVE)
    ):
        raise KeystoreError(
            f"The key file {path} uses unknown or unsafe passphrase settings, so pli will not "
            f"use it. Restore {KEY_FILE} from your backup of the home."
        )
    salt = _hex(params.get("salt"), pwhash.argon2id.SALTBYTES)
    nonce = _hex(document.get("nonce"), 24)
    sealed = _hex(document.get("sealed"), None)
    if salt is None or nonce is None or sealed is None:
        raise damaged(path, "the salt, nonce or sealed keys are missing or cut")
    return params, nonce, sealed


def _int_within(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _hex(value: Any, size: int | None) -> bytes | None:
    """``value`` decoded from hex, if it is hex of ``size`` bytes (any size for None)."""
    if not isinstance(value, str):
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw if size is None or len(raw) == size else None
