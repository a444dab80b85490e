"""File names chosen by someone else, made harmless before pli writes anything.

A received document carries the names its sender typed. ``pli export`` writes the
files under those names into a folder of the doctor's choice, which may be a
Windows share (SMB), a FAT USB stick or a synced folder, and a person then reads
the names in a file manager. ``safe_filename`` keeps what a name says and removes
what it could do there:

- a path: only the last component is kept (``/`` and ``\\`` both count);
- characters Windows or SMB refuse or read specially (``<>:"|?*``: ``a:b`` would
  be an NTFS alternate data stream) and lookalikes of ``/`` and ``\\`` (U+2215,
  U+2044, U+29F8 ...) become ``_``; compatibility forms are folded first (NFKC),
  so a fullwidth ``／`` or a one-dot leader ``․`` (U+2024) is seen as what it
  imitates, as Windows' "best fit" conversion would see it;
- control, invisible and format characters (bidi overrides such as U+202E, which
  disguise ``gpj.exe`` as ``exe.jpg``), line and paragraph separators (U+2028,
  U+2029), private-use and unassigned code points are dropped;
- leading dots (hidden files), trailing dots and spaces (Windows drops them, so
  ``a.exe.`` would become ``a.exe``) and surrounding spaces are removed;
- Windows device names (``CON``, ``NUL.pdf``, ``COM1.txt``, ``LPT¹`` ...), which
  open a device instead of a file, get a ``_`` in front;
- a name ending in ``.pli.json`` (the suffix of pli's own signature proofs, which
  ``pli verify`` looks for next to a file) is changed so it cannot pose as one;
- the result fits in ``MAX_NAME_BYTES`` with its extension kept, and an empty
  result becomes ``document-<number>``.

``numbered`` gives the next name to try when a name is taken. What must not:
import ``protocol``, read or write files (``storage/files.py`` writes them).
"""

from __future__ import annotations

import re
import unicodedata

#: Longest file name we write, in UTF-8 bytes (most file systems allow 255).
MAX_NAME_BYTES = 200
#: The suffix of pli's signature proofs (the sidecars ``pli export`` writes).
SIDECAR_SUFFIX = ".pli.json"

#: Dropped: control, format (bidi overrides, zero-width), surrogate, private-use,
#: unassigned, line and paragraph separators.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
#: Replaced by ``_``: what Windows and SMB refuse in a name, and lookalikes of the
#: path separators that NFKC leaves alone (it folds the fullwidth forms itself).
_REPLACED = frozenset('<>:"|?*/\\') | frozenset(
    "\u2215\u2044\u29f8\u29f9\u2216\ufe68\u2571\u2572\u29f5\u244a\u2cbb"
)
_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789"}
)
_LONGEST_EXTENSION = 16


def _kept(ch: str) -> str:
    if unicodedata.category(ch) in _DROPPED_CATEGORIES:
        return ""
    return "_" if ch in _REPLACED else ch


def _is_device(name: str) -> bool:
    """Windows opens a device for ``NUL``, ``nul.pdf``, ``Com1 .txt`` ... (any case)."""
    return name.split(".", 1)[0].rstrip(" ").upper() in _DEVICES


_EDGES = re.compile(r"^[\s.]+|[\s.]+$")


def _trimmed(name: str) -> str:
    """No dot or white space at either end (no hidden file, nothing Windows drops)."""
    return _EDGES.sub("", name)


def _fit(base: str) -> str:
    """``base`` cut to ``MAX_NAME_BYTES`` of UTF-8, keeping a short extension."""
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem or len(ext) > _LONGEST_EXTENSION:
        stem, dot, ext = base, "", ""
    ext_part = dot + ext
    stem = stem[:MAX_NAME_BYTES]  # a character is at least one byte
    while len((stem + ext_part).encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return _trimmed(stem + ext_part)


def safe_filename(name: str, number: int = 1) -> str:
    """A harmless basename for a file name chosen by someone else (see the module doc)."""
    base = re.split(r"[/\\]", name)[-1]
    base = "".join(_kept(ch) for ch in unicodedata.normalize("NFKC", base))
    base = _trimmed(unicodedata.normalize("NFC", base))
    if base.casefold().endswith(SIDECAR_SUFFIX):
        base = base[: -len(SIDECAR_SUFFIX)] + ".pli_json"
    if _is_device(base):
        base = f"_{base}"
    base = _fit(base)
    if base in ("", ".", "..") or base.startswith("."):
        return f"document-{number}"
    return base


def numbered(name: str, n: int) -> str:
    """``name (n).ext`` — the name to try when ``name`` is already taken (n ≥ 1)."""
    if n == 0:
        return name
    for suffix in (SIDECAR_SUFFIX, ".tar.gz"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return f"{name.removesuffix(suffix)} ({n}){suffix}"
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return f"{name} ({n})"
    return f"{stem} ({n}).{ext}"
