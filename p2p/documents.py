"""Checks on what a person types about a document, and safe writing of received files.

What lives here:

- validators for the command line, each returning the normalised value or raising
  ``BadInput`` with a sentence a doctor can act on: ``check_rpps``, ``check_ins``
  (the INS / NIR number and its key), ``check_birthdate``, ``check_text``;
- ``safe_filename``: turn a name chosen by a *remote* peer into a harmless basename
  (never trusted as a path: no separators, no control characters, never ``.``/``..``);
- ``write_new_file``: write into a folder atomically, never overwriting anything
  (``name (1).pdf``, ``name (2).pdf`` ... when the name is taken).

What must not: import ``protocol`` (it pulls in the crypto libraries and the CLI's
start-up time matters), talk to the daemon, or print anything.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from .errors import BadInput

#: Same limit as ``protocol.limits.MAX_TEXT_FIELD`` (card and metadata text fields).
MAX_TEXT = 512
#: Longest file name we write, in UTF-8 bytes (most file systems allow 255).
MAX_NAME_BYTES = 200

_RPPS = re.compile(r"\d{11}")
_INS = re.compile(r"([0-9]{5})([0-9]{2}|2A|2B)([0-9]{6})([0-9]{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INS_EXAMPLE = "2 55 08 14 168 025 38"
_CORSICA = {"2A": "19", "2B": "18"}


def check_text(value: str, what: str) -> str:
    """A short text field (name, subject ...): no control characters, not too long."""
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise BadInput(f"The {what} is too long ({len(value)} characters; at most {MAX_TEXT}).")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise BadInput(f"The {what} contains control characters (tabs, line breaks ...): "
                       "type it on one line.")  # fmt: skip
    return value


def check_rpps(value: str) -> str:
    """An RPPS number (the national directory of health professionals): 11 digits."""
    cleaned = re.sub(r"\s", "", value)
    if not _RPPS.fullmatch(cleaned):
        raise BadInput(
            f"“{value}” is not an RPPS number: it has exactly 11 digits (it is printed on your "
            "CPS card). Leave --rpps out if you do not have one."
        )
    return cleaned


def ins_key(number: str) -> int:
    """The 2-digit key of a 13-character NIR: ``97 - (number mod 97)``.

    Corsica's departments 2A and 2B count as 19 and 18 for the computation.
    """
    department = number[5:7].upper()
    digits = number[:5] + _CORSICA.get(department, department) + number[7:]
    return 97 - int(digits) % 97


def check_ins(value: str) -> str:
    """A patient's INS (NIR + key), spaces allowed; returns the 15 characters, upper case."""
    cleaned = re.sub(r"[\s.\-]", "", value).upper()
    match = _INS.fullmatch(cleaned)
    if match is None:
        raise BadInput(
            f"“{value}” is not an INS: it has 13 digits (2A or 2B for Corsica) followed by a "
            f"2-digit key, 15 characters in all, for example {_INS_EXAMPLE}. Copy it from the "
            "patient's Carte Vitale or your practice software."
        )
    if cleaned[0] not in "12378":
        raise BadInput(f"“{value}” is not an INS: it starts with 1 or 2 (or 3, 7, 8 for a "
                       "temporary number). Check it against the Carte Vitale.")  # fmt: skip
    if ins_key(cleaned[:13]) != int(cleaned[13:]):
        raise BadInput(
            f"The INS “{value}” does not match its key (the last two digits): one of the digits "
            "was probably mistyped. Check it against the Carte Vitale."
        )
    return cleaned


def check_birthdate(value: str, *, today: dt.date | None = None) -> str:
    """A birth date written YYYY-MM-DD: a real calendar date, not in the future."""
    today = today or dt.date.today()
    text = value.strip()
    if not _DATE.fullmatch(text):
        raise BadInput(f"“{value}” is not a date written YYYY-MM-DD, for example 1984-05-23.")
    try:
        date = dt.date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"“{value}” is not a real date (check the month and the day).") from None
    if date > today:
        raise BadInput(f"The birth date {text} is in the future: check the year.")
    if date.year < 1880:
        raise BadInput(f"The birth date {text} is too far in the past: check the year.")
    return text


# --- received file names -------------------------------------------------------------


def _allowed(ch: str) -> bool:
    # Cc: control characters (NUL, escape sequences, line breaks); Cf: invisible format
    # characters such as the right-to-left override used to disguise "gpj.exe" as "exe.jpg";
    # Cs: lone surrogates, which cannot be written as a file name.
    return unicodedata.category(ch) not in ("Cc", "Cf", "Cs") and ch not in "/\\"


def safe_filename(name: str, number: int = 1) -> str:
    """A harmless basename for a file name chosen by someone else.

    Only the last path component is kept (``/`` and ``\\`` both count), control and
    invisible characters are dropped, leading dots and surrounding spaces are removed
    (no hidden files), the name is cut to ``MAX_NAME_BYTES`` keeping its extension,
    and an empty result becomes ``document-<number>``.
    """
    base = re.split(r"[/\\]", name)[-1]
    base = unicodedata.normalize("NFC", "".join(ch for ch in base if _allowed(ch)))
    base = base.strip().lstrip(".").strip()
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem or len(ext) > 16:
        stem, dot, ext = base, "", ""
    ext_part = dot + ext
    stem = stem[:MAX_NAME_BYTES]  # a character is at least one byte
    while len((stem + ext_part).encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    base = (stem.rstrip() + ext_part).strip()
    if base in ("", ".", "..") or base.startswith("."):
        return f"document-{number}"
    return base


def numbered(name: str, n: int) -> str:
    """``name (n).ext`` — the name to try when ``name`` is already taken (n ≥ 1)."""
    if n == 0:
        return name
    for suffix in (".pli.json", ".tar.gz"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return f"{name.removesuffix(suffix)} ({n}){suffix}"
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return f"{name} ({n})"
    return f"{stem} ({n}).{ext}"


def write_new_file(folder: Path, name: str, chunks: Iterable[bytes], *, mode: int = 0o600) -> Path:
    """Write ``chunks`` to a new file in ``folder`` named ``name`` (or ``name (n)``).

    The data goes to a private temporary file in ``folder``, is fsync'd, then hard-linked
    to its final name: ``link`` fails rather than replace an existing file, so nothing is
    ever overwritten, and a reader never sees a half-written file. Raises ``OSError``.
    """
    tmp = folder / f".pli-export-{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        for n in range(10_000):
            final = folder / numbered(name, n)
            if _claim(tmp, final):
                _fsync_dir(folder)
                return final
        raise FileExistsError(errno.EEXIST, f"too many files called {name}", str(folder))
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _claim(tmp: Path, final: Path) -> bool:
    """Give ``tmp`` the name ``final`` unless that name exists; False if it does."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
        # No hard links here (a FAT/exFAT USB stick, some network shares): reserve the
        # name with an exclusive create, then move the finished file onto our own placeholder.
        try:
            os.close(os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return False
        os.replace(tmp, final)
    return True


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
