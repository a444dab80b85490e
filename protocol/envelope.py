"""Document envelopes: end-to-end encrypted, signed, streamed both ways.

An envelope is what is sent, stored, relayed and kept as evidence. It is
independent of the transport: a mailbox peer can hold and forward it without
being able to read it, and the recipient checks it without trusting whoever
delivered it.

Byte layout (pli/2, all integers unsigned big-endian)
=====================================================

::

    envelope = body ‖ zeros(padded_size(len(body)) - len(body))
    body     = MAGIC ‖ u32 header_len ‖ header ‖ record(inner) ‖ record(content)* ‖ record(trailer)
    MAGIC    = "PLIENV2\n"                         8 bytes
    record   = u32 len ‖ AEGIS-256 ciphertext ‖ tag(32)    len = plaintext length + 32

Notation: ``labelled_hash(label, p1, p2, ...)`` is BLAKE2b-256 over
``u32 len(label) ‖ label ‖ u32 len(p1) ‖ p1 ‖ ...``; ``Sign(label, m)`` is
Ed25519 over ``u8 len(label) ‖ label ‖ m``. msgpack is written with bin for
bytes and str for text; maps have exactly the keys listed (a reader refuses
missing or extra keys). Readers hash the bytes they received, so they never
need to re-encode.

``header`` (cleartext msgpack map, at most ``MAX_ENVELOPE_HEADER`` = 16 KiB)::

    {"v": 2,
     "chunk": 65536,             # CHUNK_SIZE; the only value v2 allows
     "commit": bin(32),          # labelled_hash("pli/2/envelope-key-commitment", file_key)
     "keys": [bin(80), ...]}     # crypto_box_seal(file_key) to each recipient card's
                                 # doc_key, then one to the sender's own doc key:
                                 # exactly len(recipients) + 1 entries (≤ 17)

``file_key`` is 32 random bytes. The sealed boxes are anonymous: the header
does not say who the sender or the recipients are; a reader tries each entry
with its own document key, and the key it unwraps must match ``commit`` (key
commitment: the header is signed, so every reader gets the one key the sender
committed to). ``header_hash = labelled_hash("pli/2/envelope-header", header)``
is the additional data of **every** record, so no record can be moved to
another envelope and the header cannot be changed.

Records are AEGIS-256 under ``file_key`` in the STREAM construction (Hoang,
Reyhanitabar, Rogaway and Vizár, 2015): record ``i`` (0 for the inner header)
has the nonce ``u64(i) ‖ u8(last) ‖ 23 zero bytes``, ``last`` = 1 for the
trailer only. In this order:

1. **inner header**, plaintext ≤ ``MAX_INNER_HEADER`` (32 KiB): the
   msgpack ``DocumentMeta`` (``DocumentMeta.to_wire``; ``meta`` keys sorted)::

       {"v": 2, "id": bin(16), "created": uint, "kind": "letter"|"prescription"|"report"|"file",
        "sender": bin(32), "recipients": [bin(32), ...],          # identity keys, 1..16
        "files": [{"name": str, "size": uint, "type": str}, ...],  # 0..64 files
        "meta": {str: str, ...}}                                    # ≤ 64 entries, ≤ 512 chars

   File names are plain names: no control characters, no ``/`` or ``\\``, not
   empty, ``.`` or ``..``. The sizes add up to at most ``MAX_DOCUMENT_SIZE``.
2. **content**: the files' bytes concatenated in order and cut into
   pieces of exactly ``CHUNK_SIZE`` (64 KiB) plaintext bytes, the last one
   shorter (a file boundary does not start a new record; no content, no content
   records). The reader knows the exact length of every content record from
   the inner header, hence which record is the last.
3. **trailer**, the last record, plaintext ≤ 64 KiB: msgpack
   ``{"hashes": [bin(32), ...], "sig": bin(64)}``, one SHA-256 per file, and::

       inner_hash = labelled_hash("pli/2/envelope-inner", inner header bytes)
       digest     = labelled_hash("pli/2/envelope-digest", header_hash, inner_hash, *hashes)
       sig        = Sign("pli/2/envelope-sig", digest) by the sender's identity key

   ``digest`` is the **envelope digest** that receipts refer to: signing it binds
   the wrapped keys and the key commitment, the recipients, the clinical
   metadata and every content byte.

Padding (``protocol/padding.py``): zero bytes after the trailer, up to
``padded_size(len(body))`` = Padmé of ``max(len(body), 16 KiB)``. The count follows
from the authenticated body, so the reader requires exactly that many zeros.

Reader rules (``EnvelopeReader``)
---------------------------------

- Lengths are checked before anything is buffered: header ≤ 16 KiB, first
  record ≤ 32 KiB + 17, others ≤ 64 KiB + 17 (``FrameTooLarge``), records ≥ 17
  bytes (``MalformedMessage``).
- The record after the content is the last one (its nonce says so); then come
  exactly the padding's zero bytes and nothing else. A content record must have
  exactly the length the inner header implies. Reordered, duplicated, dropped,
  cut or altered records fail AEGIS-256's authentication.
- The unwrapped file key must match the header's commitment.
- The opener must be a listed recipient, or the sender reading its own sent
  copy: this stops surreptitious forwarding (a recipient re-encrypting a signed
  letter to a third party). The caller's ``check_sender`` must accept the
  sender (paired, not revoked); it is not asked about our own sent copies.
- The per-file hashes and the signature must match.

Breaking any of these rules raises ``AuthenticationFailed``, which never says
which check failed; bytes of the wrong shape raise ``MalformedMessage``,
``FrameTooLarge`` or ``VersionMismatch``. The reader emits the metadata and the
plaintext before the signature is checked (that is what streaming means): both
are marked UNVERIFIED and belong in quarantine until ``Verified``.

Speed
-----

Records are AEGIS-256 rather than pli/1's secretstream (XChaCha20-Poly1305):
through PyNaCl, 64 KiB records seal at ~6.0 GB/s and open at ~4.7 GB/s here,
against ~1.3 GB/s for ChaCha20-Poly1305 (``python -m bench.primitives``), and
libsodium's AEGIS-256 is correct on every CPU. Content hashing is SHA-256: with
SHA-NI it runs faster than BLAKE2b on the machines pli targets (1.9 against
1.3 GB/s). For documents over 1 MiB it runs on one worker thread next to the
cipher (``_FileHasher``): both release the GIL (bench/envelope.py).

Size: over 400 lines on purpose. A hundred and ten of them are this description of the
format, and the field checks, the hashing and sealing are one wire format that reads
best in one place; the incremental reader is in ``envelope_reader.py``.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Protocol, runtime_checkable

import nacl.utils
from nacl import bindings
from nacl import exceptions as nacl_exceptions
from nacl.public import PublicKey, SealedBox

from . import codec, limits
from ._hashing import labelled_hash
from .errors import (
    ContentChanged,
    FrameTooLarge,
    LocalProtocolError,
    MalformedMessage,
    VersionMismatch,
)
from .identity import (
    KEY_SIZE,
    IdentityKey,
    LocalIdentity,
    ProfileCard,
    PublicIdentity,
)
from .padding import padded_size

MAGIC: Final = b"PLIENV2\n"
VERSION: Final = 2
KINDS: Final = ("letter", "prescription", "report", "file")
DOCUMENT_ID_SIZE: Final = 16

LABEL_HEADER: Final = b"pli/2/envelope-header"
LABEL_INNER: Final = b"pli/2/envelope-inner"
LABEL_DIGEST: Final = b"pli/2/envelope-digest"
LABEL_SIGNATURE: Final = b"pli/2/envelope-sig"
LABEL_COMMITMENT: Final = b"pli/2/envelope-key-commitment"

#: The "last record" flag of a record's nonce (the STREAM construction).
TAG_MESSAGE: Final = 0
TAG_FINAL: Final = 1
_COMMITMENT_SIZE: Final = 32
_NONCE_PAD: Final = bytes(bindings.crypto_aead_aegis256_NPUBBYTES - 9)
_OVERHEAD: Final = limits.CHUNK_OVERHEAD
# SealedBox adds an ephemeral X25519 key (32) and a MAC (16) to the 32-byte file key.
_WRAPPED_KEY_SIZE: Final = KEY_SIZE + 48
_PREFIX_SIZE: Final = len(MAGIC) + 4
_LENGTH_SIZE: Final = 4

_HEADER_FIELDS: Final = frozenset({"v", "chunk", "commit", "keys"})
_INNER_FIELDS: Final = frozenset(
    {"v", "id", "created", "kind", "sender", "recipients", "files", "meta"}
)
_FILE_FIELDS: Final = frozenset({"name", "size", "type"})
_TRAILER_FIELDS: Final = frozenset({"hashes", "sig"})
_MEDIA_TYPE: Final = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*"
)
_MEDIA_TYPE_MAX: Final = 255

Rng = Callable[[int], bytes]


# --- document metadata -------------------------------------------------------------


def _check_file_name(name: object) -> None:
    """A bare file name: the receiver may use it on disk, so no paths, no tricks."""
    if not isinstance(name, str):
        raise MalformedMessage("file name must be text")
    codec.check_text(name, "file name")
    if name in ("", ".", "..") or "/" in name or "\\" in name:
        raise MalformedMessage("a file name must be a plain name, not a path")


def _check_media_type(media_type: object) -> None:
    if not isinstance(media_type, str):
        raise MalformedMessage("media type must be text")
    codec.check_text(media_type, "media type", max_len=_MEDIA_TYPE_MAX)
    # type/subtype, optionally followed by "; parameters" (e.g. a charset).
    if not _MEDIA_TYPE.fullmatch(media_type.split(";", 1)[0].strip()):
        raise MalformedMessage("media type must look like type/subtype")


def _check_uint(value: object, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise MalformedMessage(f"{what} must be a non-negative integer")


@dataclass(frozen=True)
class FileEntry:
    """One file of a document: a plain name, its exact size and its media type."""

    name: str
    size: int
    media_type: str = "application/octet-stream"

    def __post_init__(self) -> None:
        _check_file_name(self.name)
        _check_uint(self.size, "file size")
        _check_media_type(self.media_type)


@dataclass(frozen=True)
class DocumentMeta:
    """What the inner header says about a document (all of it encrypted).

    ``metadata`` is the short clinical metadata (patient, author, subject ...):
    it is stored as a read-only ``MappingProxyType`` over a private copy, so a
    ``DocumentMeta`` stays immutable. It is left out of ``hash()`` (a mapping
    proxy is not hashable) but compared by ``==``. ``recipients`` and ``files``
    are stored as tuples whatever sequence was given.

    Construction validates everything and raises ``MalformedMessage`` (or
    ``FrameTooLarge`` for sizes), like the other protocol value classes.
    """

    document_id: bytes
    created_at: int
    kind: str
    sender: PublicIdentity
    recipients: tuple[PublicIdentity, ...]
    files: tuple[FileEntry, ...]
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # Normalise containers so the value is immutable whatever the caller passed.
        object.__setattr__(self, "recipients", tuple(self.recipients))
        object.__setattr__(self, "files", tuple(self.files))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        if not isinstance(self.document_id, bytes) or len(self.document_id) != DOCUMENT_ID_SIZE:
            raise MalformedMessage("a document id is 16 bytes")
        _check_uint(self.created_at, "creation time")
        if self.kind not in KINDS:
            raise MalformedMessage("unknown document kind")
        self._check_people()
        self._check_files()
        self._check_metadata()

    def _check_people(self) -> None:
        people = (self.sender, *self.recipients)
        if not all(isinstance(person, PublicIdentity) for person in people):
            raise MalformedMessage("sender and recipients must be identity keys")
        if not self.recipients:
            raise MalformedMessage("a document goes to at least one recipient")
        if len(self.recipients) > limits.MAX_RECIPIENTS:
            raise FrameTooLarge("too many recipients")
        if len(set(self.recipients)) != len(self.recipients):
            raise MalformedMessage("a recipient is listed twice")

    def _check_files(self) -> None:
        if len(self.files) > limits.MAX_FILES:
            raise FrameTooLarge("too many files in one document")
        if not all(isinstance(entry, FileEntry) for entry in self.files):
            raise MalformedMessage("files must be FileEntry values")
        if self.total_size > limits.MAX_DOCUMENT_SIZE:
            raise FrameTooLarge("document larger than the size limit")

    def _check_metadata(self) -> None:
        if len(self.metadata) > limits.MAX_MAP_LEN:
            raise FrameTooLarge("too many metadata entries")
        for key, value in self.metadata.items():
            if not isinstance(key, str) or not isinstance(value, str) or not key:
                raise MalformedMessage("metadata maps non-empty text to text")
            codec.check_text(key, "metadata key")
            codec.check_text(value, "metadata value")

    @property
    def total_size(self) -> int:
        """Bytes of content: the sum of the file sizes."""
        return sum(entry.size for entry in self.files)

    def to_wire(self) -> bytes:
        """The inner header bytes (msgpack; metadata keys sorted for a canonical form)."""
        data = codec.pack(
            {
                "v": VERSION,
                "id": self.document_id,
                "created": self.created_at,
                "kind": self.kind,
                "sender": self.sender.key,
                "recipients": [person.key for person in self.recipients],
                "files": [
                    {"name": entry.name, "size": entry.size, "type": entry.media_type}
                    for entry in self.files
                ],
                "meta": {key: self.metadata[key] for key in sorted(self.metadata)},
            }
        )
        if len(data) > limits.MAX_INNER_HEADER:
            raise FrameTooLarge("document metadata is over the inner-header limit")
        return data

    @classmethod
    def from_wire(cls, data: bytes) -> DocumentMeta:
        """Parse an inner header. Raises only ``RemoteProtocolError``."""
        fields = _exact_map(codec.unpack(data, max_size=limits.MAX_INNER_HEADER), _INNER_FIELDS)
        if codec.field(fields, "v", int, "inner header") != VERSION:
            raise VersionMismatch("unknown document version")
        files = codec.field(fields, "files", list, "inner header")
        recipients = codec.field(fields, "recipients", list, "inner header")
        if len(recipients) > limits.MAX_RECIPIENTS or len(files) > limits.MAX_FILES:
            raise FrameTooLarge("too many recipients or files")
        metadata = codec.field(fields, "meta", dict, "inner header")
        return cls(
            document_id=codec.fixed_bytes(fields, "id", DOCUMENT_ID_SIZE, "inner header"),
            created_at=codec.uint(fields, "created", "inner header"),
            kind=codec.field(fields, "kind", str, "inner header"),
            sender=PublicIdentity(codec.fixed_bytes(fields, "sender", KEY_SIZE, "inner header")),
            recipients=tuple(_identity(item) for item in recipients),
            files=tuple(_file_entry(item) for item in files),
            metadata=metadata,
        )


def _exact_map(value: Any, keys: frozenset[str]) -> Mapping[str, Any]:
    """A map with exactly ``keys``: v1 is strict, so two readers never disagree."""
    mapping = codec.as_map(value, "envelope field")
    if mapping.keys() != keys:
        raise MalformedMessage("envelope map has missing or unknown fields")
    return mapping


def _identity(value: Any) -> PublicIdentity:
    if not isinstance(value, bytes):
        raise MalformedMessage("an identity key is 32 bytes")
    return PublicIdentity(value)


def _file_entry(value: Any) -> FileEntry:
    fields = _exact_map(value, _FILE_FIELDS)
    return FileEntry(
        name=codec.field(fields, "name", str, "file entry"),
        size=codec.uint(fields, "size", "file entry"),
        media_type=codec.field(fields, "type", str, "file entry"),
    )


def new_document_id(rng: Rng = nacl.utils.random) -> bytes:
    """16 random bytes: unique without coordination, and not guessable."""
    document_id = rng(DOCUMENT_ID_SIZE)
    if len(document_id) != DOCUMENT_ID_SIZE:
        raise LocalProtocolError("rng returned the wrong number of bytes")
    return document_id


# --- digests and signature --------------------------------------------------------


def envelope_digest(header_hash: bytes, inner_header: bytes, file_hashes: Sequence[bytes]) -> bytes:
    """The envelope digest: what the sender signs and receipts refer to."""
    inner_hash = labelled_hash(LABEL_INNER, inner_header)
    return labelled_hash(LABEL_DIGEST, header_hash, inner_hash, *file_hashes)


def key_commitment(file_key: bytes) -> bytes:
    """What the header says of the file key: ``labelled_hash(LABEL_COMMITMENT, file_key)``.

    The header is signed (through the digest), so the sender commits to one file
    key: a wrapped key that opens to any other key is refused before a record is
    read, even if records were crafted to authenticate under it.
    """
    return labelled_hash(LABEL_COMMITMENT, file_key)


def record_nonce(index: int, final: int) -> bytes:
    """The AEGIS-256 nonce of record ``index``: u64-BE(index) ‖ u8(final) ‖ 23 zero bytes."""
    return index.to_bytes(8, "big") + bytes([final]) + _NONCE_PAD


def seal_record(
    file_key: bytes, header_hash: bytes, index: int, final: int, plaintext: bytes
) -> bytes:
    """One record's ciphertext (AEGIS-256, ad = the header hash), without its length."""
    ciphertext: bytes = bindings.crypto_aead_aegis256_encrypt(
        plaintext, header_hash, record_nonce(index, final), file_key
    )
    return ciphertext


def _trailer(identity: IdentityKey, digest: bytes, file_hashes: Sequence[bytes]) -> bytes:
    signature = identity.sign(LABEL_SIGNATURE, digest)
    return codec.pack({"hashes": list(file_hashes), "sig": signature})


# --- content hashing off the main thread -------------------------------------------

#: Content up to this size is hashed inline: a letter must not pay for a thread.
_HASH_THREAD_AFTER: Final = 1024 * 1024
#: Bytes of chunks handed to the worker at once: amortises the hand-off.
_HASH_BATCH: Final = 1024 * 1024
#: Batches submitted and not yet hashed. Bounds memory held for hashing to
#: about (this + 1) batches while the cipher runs ahead of the hash.
_HASH_MAX_PENDING: Final = 2


class _FileHasher:
    """SHA-256 of each file, on one worker thread once the content is large.

    Sequential push + SHA-256 reaches only ~55 % of the raw cipher's speed; both
    hashlib and PyNaCl's cffi calls release the GIL, so hashing on a second core
    recovers most of it. One worker keeps the updates in order.
    """

    def __init__(self, count: int) -> None:
        self._hashes = [hashlib.sha256() for _ in range(count)]
        self._inline = True
        self._inline_bytes = 0
        self._executor: ThreadPoolExecutor | None = None
        self._batch: list[tuple[int, bytes | memoryview]] = []
        self._batch_bytes = 0
        self._pending: deque[tuple[Future[None], list[tuple[int, bytes | memoryview]]]] = deque()
        self._hashed: list[tuple[int, bytes | memoryview]] = []

    def update(self, index: int, data: bytes | memoryview) -> None:
        if self._inline:
            self._inline_bytes += len(data)
            if self._inline_bytes <= _HASH_THREAD_AFTER:
                self._hashes[index].update(data)
                return
            # From here on every update goes through the worker, in order.
            self._inline = False
        self._batch.append((index, data))
        self._batch_bytes += len(data)
        self._release_one()
        if self._batch_bytes >= _HASH_BATCH:
            self._submit()

    def _release_one(self) -> None:
        """Drop one hashed chunk for each chunk added.

        Dropping a whole hashed batch at once hands ~1 MiB back to the top of
        glibc's heap, which trims it; the next chunks then fault those pages
        back in. Measured in this project's VM: ~3 faults per chunk and a
        quarter of the throughput lost. Releasing one for one keeps the heap
        steady.
        """
        if not self._hashed and self._pending and self._pending[0][0].done():
            self._hashed = self._pending.popleft()[1]
        if self._hashed:
            self._hashed.pop()

    def _submit(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="pli-envelope-hash")
        future = self._executor.submit(self._hash_batch, self._batch)
        self._pending.append((future, self._batch))
        self._batch, self._batch_bytes = [], 0
        # Back-pressure: wait for the oldest batch rather than let chunks pile up.
        while len(self._pending) > _HASH_MAX_PENDING:
            future, batch = self._pending.popleft()
            future.result()
            self._hashed.extend(batch)

    def _hash_batch(self, batch: list[tuple[int, bytes | memoryview]]) -> None:
        hashes = self._hashes
        for index, data in batch:
            hashes[index].update(data)

    def digests(self) -> list[bytes]:
        """Finish every pending batch and return the per-file hashes."""
        while self._pending:
            self._pending.popleft()[0].result()
        # The last partial batch: no worker is needed for it, and the worker is idle.
        self._hash_batch(self._batch)
        self.close()
        return [h.digest() for h in self._hashes]

    def close(self) -> None:
        """Stop the worker (idempotent); pending batches are dropped."""
        executor, self._executor = self._executor, None
        self._pending.clear()
        self._batch, self._hashed = [], []
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


# --- sealing -------------------------------------------------------------------------


@runtime_checkable
class Readable(Protocol):
    """Anything with ``read(n) -> bytes``: an open binary file, ``io.BytesIO``..."""

    def read(self, size: int, /) -> bytes: ...


Source = Readable | Iterable[bytes] | bytes


_END: Final = object()


class _Source:
    """``read(n)`` (at most n bytes, b"" at the end) over any accepted source."""

    def __init__(self, source: Source) -> None:
        self._read: Callable[[int], bytes] | None = None
        self._items: Iterator[Any] = iter(())
        # The current item of an iterable and how much of it was read: slicing
        # off the rest each time would copy a large item over and over.
        self._pending = b""
        self._offset = 0
        if isinstance(source, bytes | bytearray | memoryview):
            self._pending = bytes(source)
        elif isinstance(source, Readable):
            self._read = source.read
        else:
            self._items = iter(source)

    def read(self, size: int) -> bytes:
        if self._read is not None:
            data = self._read(size)
            if isinstance(data, bytearray | memoryview):
                data = bytes(data)
            if not isinstance(data, bytes) or len(data) > size:
                raise LocalProtocolError("a content source must return at most n bytes")
            return data
        while self._offset >= len(self._pending):
            item = next(self._items, _END)
            if item is _END:
                return b""
            if not isinstance(item, bytes | bytearray | memoryview):
                raise LocalProtocolError("a content iterable must yield bytes")
            self._pending, self._offset = bytes(item), 0
        start = self._offset
        if start == 0 and len(self._pending) <= size:
            self._offset = len(self._pending)
            return self._pending  # the whole item: no copy
        self._offset = min(start + size, len(self._pending))
        return self._pending[start : self._offset]


def _plaintext_chunks(
    files: Sequence[FileEntry], sources: Sequence[_Source], hasher: _FileHasher
) -> Iterator[bytes]:
    """The concatenated files cut into CHUNK_SIZE pieces, each file read exactly."""
    parts: list[bytes] = []
    filled = 0
    for index, (entry, source) in enumerate(zip(files, sources, strict=True)):
        remaining = entry.size
        while remaining:
            piece = source.read(min(limits.CHUNK_SIZE - filled, remaining))
            if not piece:
                raise ContentChanged(f"file {entry.name!r} is shorter than its declared size")
            hasher.update(index, piece)
            remaining -= len(piece)
            parts.append(piece)
            filled += len(piece)
            if filled == limits.CHUNK_SIZE:
                # b"".join of a single bytes object returns it without copying.
                yield b"".join(parts)
                parts, filled = [], 0
        if source.read(1):
            raise ContentChanged(f"file {entry.name!r} is longer than its declared size")
    if parts:
        yield b"".join(parts)


class _StreamWriter:
    """The header and the records of one envelope (no policy checks).

    Split out of ``seal`` so the tests can build deliberately wrong envelopes
    with a valid record stream and see the reader refuse them. ``commit_to``
    (tests only) puts another key's commitment in the header.
    """

    def __init__(
        self, doc_keys: Sequence[bytes], rng: Rng, *, commit_to: bytes | None = None
    ) -> None:
        file_key = rng(KEY_SIZE)
        if len(file_key) != KEY_SIZE:
            raise LocalProtocolError("rng returned the wrong number of bytes")
        self._key = file_key
        self._index = 0
        try:
            wrapped = [SealedBox(PublicKey(key)).encrypt(file_key) for key in doc_keys]
        except nacl_exceptions.CryptoError as exc:
            # A low-order point in a card: the card is bad, not our code.
            raise MalformedMessage("a recipient's document key cannot be used") from exc
        commitment = key_commitment(file_key if commit_to is None else commit_to)
        header = codec.pack(
            {"v": VERSION, "chunk": limits.CHUNK_SIZE, "commit": commitment, "keys": wrapped}
        )
        if len(header) > limits.MAX_ENVELOPE_HEADER:
            raise LocalProtocolError("envelope header over its limit")
        self.header_hash = labelled_hash(LABEL_HEADER, header)
        self.head = MAGIC + len(header).to_bytes(4, "big") + header

    def record(self, plaintext: bytes, tag: int = TAG_MESSAGE) -> bytes:
        """The next record, length prefix included; ``tag`` TAG_FINAL for the last."""
        ciphertext = seal_record(self._key, self.header_hash, self._index, tag, plaintext)
        self._index += 1
        return len(ciphertext).to_bytes(4, "big") + ciphertext


#: Padding is yielded in pieces of this size (the same zero bytes each time).
_PAD_PIECE: Final = bytes(limits.CHUNK_SIZE)


def padding(size: int) -> Iterator[bytes]:
    """The zero bytes that take an envelope of ``size`` bytes to ``padded_size(size)``."""
    remaining = padded_size(size) - size
    while remaining:
        piece = _PAD_PIECE if remaining >= len(_PAD_PIECE) else bytes(remaining)
        remaining -= len(piece)
        yield piece


def sealed_size(head: int, inner: int, files: Sequence[FileEntry]) -> int:
    """The padded envelope size, from the header's length (MAGIC and length prefix
    included), the inner header's and the files' sizes: the records have fixed
    overheads and the trailer a fixed length for a given number of files."""
    content = sum(entry.size for entry in files)
    records = -(-content // limits.CHUNK_SIZE)  # ceiling: the last record is shorter
    trailer = len(codec.pack({"hashes": [bytes(32)] * len(files), "sig": bytes(64)}))
    per_record = _LENGTH_SIZE + _OVERHEAD
    body = head + (per_record + inner) + (records * per_record + content) + (per_record + trailer)
    return padded_size(body)


def _check_seal_arguments(
    sender: LocalIdentity,
    recipients: Sequence[ProfileCard],
    meta: DocumentMeta,
    contents: Sequence[Source],
) -> None:
    if meta.sender != sender.public:
        raise LocalProtocolError("the document's sender must be the sealing identity")
    identities = [card.identity for card in recipients]
    if len(identities) != len(meta.recipients) or set(identities) != set(meta.recipients):
        raise LocalProtocolError("the recipient cards must match the document's recipients")
    if len(contents) != len(meta.files):
        raise LocalProtocolError("one content source is needed per file")


class SealedEnvelope(Iterator[bytes]):
    """The envelope's bytes, piece by piece, as returned by ``seal``.

    Iterating seals; once the last piece has been produced, ``digest`` is the
    envelope digest (what the sender stores to check receipts against).
    ``size`` is known before the first piece: every length in the envelope
    follows from the header, the inner header and the file sizes, so a transfer
    can be offered while the envelope is still being sealed.
    ``close()`` abandons sealing and stops the hashing thread at once.
    """

    def __init__(
        self,
        identity: IdentityKey,
        writer: _StreamWriter,
        inner: bytes,
        files: Sequence[FileEntry],
        sources: Sequence[_Source],
    ) -> None:
        self._digest: bytes | None = None
        self.size = sealed_size(len(writer.head), len(inner), files)
        self._pieces = self._generate(identity, writer, inner, files, sources)

    def __next__(self) -> bytes:
        return next(self._pieces)

    def close(self) -> None:
        self._pieces.close()

    @property
    def digest(self) -> bytes:
        if self._digest is None:
            raise LocalProtocolError("the envelope digest is known once sealing has finished")
        return self._digest

    def _generate(
        self,
        identity: IdentityKey,
        writer: _StreamWriter,
        inner: bytes,
        files: Sequence[FileEntry],
        sources: Sequence[_Source],
    ) -> Generator[bytes, None, None]:
        hasher = _FileHasher(len(files))
        size = 0
        try:
            for piece in self._body(writer, inner, files, sources, hasher):
                size += len(piece)
                yield piece
            file_hashes = hasher.digests()
            digest = envelope_digest(writer.header_hash, inner, file_hashes)
            final = writer.record(_trailer(identity, digest, file_hashes), TAG_FINAL)
            self._digest = digest
            yield final
            size += len(final)
            if padded_size(size) != self.size:
                raise LocalProtocolError("the envelope's size differs from the one announced")
            yield from padding(size)
        finally:
            hasher.close()

    @staticmethod
    def _body(
        writer: _StreamWriter,
        inner: bytes,
        files: Sequence[FileEntry],
        sources: Sequence[_Source],
        hasher: _FileHasher,
    ) -> Iterator[bytes]:
        yield writer.head
        yield writer.record(inner)
        for chunk in _plaintext_chunks(files, sources, hasher):
            yield writer.record(chunk)


def seal(
    sender: LocalIdentity,
    recipients: Sequence[ProfileCard],
    meta: DocumentMeta,
    contents: Sequence[Source],
    *,
    rng: Rng = nacl.utils.random,
) -> SealedEnvelope:
    """Encrypt and sign a document; return its envelope as an iterator of pieces.

    ``contents`` gives one source per ``meta.files`` entry: an object with
    ``read(n)`` (an open binary file), an iterable of bytes (a generator), or
    bytes. Each piece yielded is about one record (≤ 64 KiB + 21 bytes), and
    memory does not grow with the document size. Once the iterator is
    exhausted, its ``digest`` is the envelope digest receipts refer to.

    Argument errors (sender or recipients not matching ``meta``) raise
    ``LocalProtocolError`` here. A source giving more or fewer bytes than its
    ``FileEntry.size`` raises ``LocalProtocolError`` while iterating: whatever
    was already produced must then be discarded.
    """
    _check_seal_arguments(sender, recipients, meta, contents)
    inner = meta.to_wire()
    doc_keys = [card.doc_key for card in recipients] + [sender.doc_public]
    writer = _StreamWriter(doc_keys, rng)
    sources = [_Source(content) for content in contents]
    return SealedEnvelope(sender.identity, writer, inner, meta.files, sources)
