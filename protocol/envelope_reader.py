"""Opening envelopes: the streaming reader and its events (the format is in ``envelope``).

``EnvelopeReader`` is sans-IO like h11: bytes in with ``feed``, events out
(``MetaReceived``, ``Content``, ``Verified``). ``open_envelope`` reads a whole
envelope from a file or an iterable and returns only once it verified. The
reader rules are listed in ``protocol/envelope.py``'s docstring.

Size: about 500 lines: one incremental state machine (header, records, padding) and its events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from nacl import exceptions as nacl_exceptions
from nacl.public import PrivateKey, SealedBox

from . import _aegis, codec, limits
from ._hashing import constant_time_equal, labelled_hash
from .envelope import (
    _COMMITMENT_SIZE,
    _HEADER_FIELDS,
    _LENGTH_SIZE,
    _OVERHEAD,
    _PREFIX_SIZE,
    _TRAILER_FIELDS,
    _WRAPPED_KEY_SIZE,
    LABEL_HEADER,
    LABEL_SIGNATURE,
    MAGIC,
    TAG_FINAL,
    TAG_MESSAGE,
    VERSION,
    DocumentMeta,
    Readable,
    _exact_map,
    _FileHasher,
    envelope_digest,
    key_commitment,
    record_nonce,
)
from .errors import (
    AuthenticationFailed,
    FrameTooLarge,
    LocalProtocolError,
    MalformedMessage,
    VersionMismatch,
)
from .identity import (
    KEY_SIZE,
    SIGNATURE_SIZE,
    LocalIdentity,
    PublicIdentity,
)
from .padding import padded_size

# --- opening: events -------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedEnvelope:
    """An envelope whose every byte, hash and signature checked out."""

    meta: DocumentMeta
    digest: bytes
    header_hash: bytes
    inner_header: bytes
    file_hashes: tuple[bytes, ...]
    signature: bytes
    size: int


@dataclass(frozen=True)
class MetaReceived:
    """The inner header decrypted. UNVERIFIED: the signature is checked only at the end.

    Use it to prepare (file names, sizes, a progress bar), never to act on.
    """

    meta: DocumentMeta


@dataclass(frozen=True)
class Content:
    """Plaintext of file ``file_index``, in order. UNVERIFIED until ``Verified``.

    Write it to quarantine; release or import it only after ``Verified``.
    Empty files produce no ``Content`` event.
    """

    file_index: int
    data: bytes


@dataclass(frozen=True)
class Verified:
    """The final record checked out: content, metadata and signature are authentic."""

    envelope: VerifiedEnvelope


Event = MetaReceived | Content | Verified


def _accept_any_sender(_sender: PublicIdentity) -> None:
    return None


class _Phase:
    PREFIX = "prefix"  # MAGIC + header length
    HEADER = "header"
    LENGTH = "length"  # a record's u32 length
    RECORD = "record"
    PADDING = "padding"  # the zero bytes after the final record
    DONE = "done"
    FAILED = "failed"


class EnvelopeReader:
    """Sans-IO envelope parser: bytes in with ``feed``, events out (like h11).

    Events: one ``MetaReceived`` (unverified), ``Content`` events (unverified
    plaintext, only with ``want_plaintext``), then one ``Verified``. With
    ``want_plaintext=False`` the reader only verifies (a recipient checking
    what it is about to store) and never emits ``Content``.

    ``check_sender`` is called with the sender's identity from the inner header
    and refuses the envelope by raising (any exception; it is chained as the
    cause). It is not called for our own sent copies.

    ``Verified`` is final once the input has ended: bytes fed after it make
    ``feed`` raise, so call ``close()`` (or know the envelope's size) before
    acting on it. Between calls the reader holds at most one record. Any error
    leaves it failed: further ``feed`` calls raise ``LocalProtocolError``.
    """

    def __init__(
        self,
        me: LocalIdentity,
        *,
        check_sender: Callable[[PublicIdentity], None] = _accept_any_sender,
        want_plaintext: bool = True,
    ) -> None:
        self._me = me
        self._check_sender = check_sender
        self._want_plaintext = want_plaintext
        self._phase = _Phase.PREFIX
        self._need = _PREFIX_SIZE
        self._buffer = bytearray()
        self._consumed = 0
        self._records = 0
        self._key = b""
        self._header_hash = b""
        self._inner = b""
        self._meta: DocumentMeta | None = None
        self._remaining = 0  # content bytes still due
        self._file_index = 0
        self._file_left = 0  # bytes still due in file ``_file_index``
        self._keys = 0  # wrapped keys in the header
        self._hasher: _FileHasher | None = None
        self._verified: VerifiedEnvelope | None = None
        self._pad_left = 0

    @property
    def bytes_consumed(self) -> int:
        """Envelope bytes processed so far (buffered partial records excluded)."""
        return self._consumed

    @property
    def complete(self) -> bool:
        """Whether the envelope was verified."""
        return self._phase == _Phase.DONE

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Process more envelope bytes; return the events they complete.

        Raises ``RemoteProtocolError`` subclasses for a bad envelope. ``data`` is
        not kept: the caller may reuse its buffer.
        """
        if self._phase == _Phase.FAILED:
            raise LocalProtocolError("this envelope reader already failed")
        events: list[Event] = []
        try:
            self._feed(data, events)
        except BaseException:
            self._fail()
            raise
        return events

    def close(self) -> None:
        """Declare the end of input. Raises ``AuthenticationFailed`` unless verified.

        A stream cut anywhere before its final record is refused here: PyNaCl
        does not notice a missing end by itself.
        """
        if self._phase != _Phase.DONE:
            self._fail()
            raise AuthenticationFailed("the envelope is incomplete")

    def abort(self) -> None:
        """Give up on this envelope (a cancelled transfer): stop background hashing."""
        if self._phase != _Phase.DONE:
            self._fail()

    def _fail(self) -> None:
        self._phase = _Phase.FAILED
        self._buffer = bytearray()
        if self._hasher is not None:
            self._hasher.close()

    def _feed(self, data: bytes | bytearray | memoryview, events: list[Event]) -> None:
        view = memoryview(data).cast("B")
        position, end = 0, len(view)
        while position < end:
            if self._phase == _Phase.DONE:
                raise AuthenticationFailed("bytes after the final record")
            if self._phase == _Phase.PADDING:
                position = self._read_padding(view, position, events)
                continue
            if self._phase == _Phase.PREFIX:
                # Refuse a non-envelope at its first wrong byte, not after 12.
                self._check_magic(bytes(self._buffer) + bytes(view[position : position + 8]))
            take = min(self._need - len(self._buffer), end - position)
            item: bytes | memoryview
            if not self._buffer and take == self._need:
                if take == end and isinstance(data, bytes):
                    item = data  # fed exactly one item (a record, say): no copy
                elif self._phase == _Phase.RECORD:
                    item = view[position : position + take]  # decrypted from where it is
                else:
                    item = bytes(view[position : position + take])
            else:
                self._buffer += view[position : position + take]
                if len(self._buffer) < self._need:
                    position += take
                    break
                item, self._buffer = bytes(self._buffer), bytearray()
            position += take
            self._consumed += len(item)
            self._consume(item, events)

    def _consume(self, item: bytes | memoryview, events: list[Event]) -> None:
        if self._phase == _Phase.PREFIX:
            self._read_prefix(bytes(item))
        elif self._phase == _Phase.HEADER:
            self._read_header(bytes(item))
        elif self._phase == _Phase.LENGTH:
            self._read_length(bytes(item))
        else:
            self._read_record(item, events)

    # --- header ---------------------------------------------------------------

    @staticmethod
    def _check_magic(start: bytes) -> None:
        start = start[: len(MAGIC)]
        if MAGIC.startswith(start):
            return
        if len(start) > 6 and start[:6] == MAGIC[:6]:
            raise VersionMismatch("this envelope was made by another pli version")
        raise MalformedMessage("not a pli envelope")

    def _read_prefix(self, item: bytes) -> None:
        self._check_magic(item)
        size = int.from_bytes(item[len(MAGIC) :], "big")
        if size > limits.MAX_ENVELOPE_HEADER:
            raise FrameTooLarge("envelope header over its limit")
        if size == 0:
            raise MalformedMessage("empty envelope header")
        self._phase, self._need = _Phase.HEADER, size

    def _read_header(self, item: bytes) -> None:
        fields = _exact_map(codec.unpack(item, max_size=limits.MAX_ENVELOPE_HEADER), _HEADER_FIELDS)
        if codec.field(fields, "v", int, "envelope header") != VERSION:
            raise VersionMismatch("unknown envelope version")
        if codec.field(fields, "chunk", int, "envelope header") != limits.CHUNK_SIZE:
            raise MalformedMessage("unsupported chunk size")
        commitment = codec.fixed_bytes(fields, "commit", _COMMITMENT_SIZE, "envelope header")
        keys = codec.field(fields, "keys", list, "envelope header")
        if not keys:
            raise MalformedMessage("an envelope has at least one wrapped key")
        if len(keys) > limits.MAX_RECIPIENTS + 1:
            raise FrameTooLarge("too many wrapped keys")
        if not all(isinstance(k, bytes) and len(k) == _WRAPPED_KEY_SIZE for k in keys):
            raise MalformedMessage("a wrapped key is 80 bytes")
        self._key = self._unwrap(keys, commitment)
        self._header_hash = labelled_hash(LABEL_HEADER, item)
        self._keys = len(keys)
        self._phase, self._need = _Phase.LENGTH, _LENGTH_SIZE

    def _unwrap(self, keys: list[bytes], commitment: bytes) -> bytes:
        """The file key from the first wrapped key that opens with our document key.

        It must match the header's commitment: otherwise another recipient could be
        given another key, and a crafted record stream could show each of them other
        content (key commitment, issue 10 §1).
        """
        box = SealedBox(PrivateKey(self._me.doc_secret))
        for wrapped in keys:
            try:
                file_key: bytes = box.decrypt(wrapped)
            except nacl_exceptions.CryptoError:
                continue
            if len(file_key) == KEY_SIZE and constant_time_equal(
                key_commitment(file_key), commitment
            ):
                return file_key
            raise AuthenticationFailed()  # a key for us, but not the one committed to
        raise AuthenticationFailed()  # not for us: same answer as any other failure

    # --- records --------------------------------------------------------------

    def _read_length(self, item: bytes) -> None:
        size = int.from_bytes(item, "big")
        limit = limits.MAX_INNER_HEADER if self._records == 0 else limits.CHUNK_SIZE
        if size > limit + _OVERHEAD:
            raise FrameTooLarge("envelope record over its limit")
        if size < _OVERHEAD:
            raise MalformedMessage("envelope record too short")
        if self._records > 0 and self._remaining and size != self._next_content_size() + _OVERHEAD:
            # The inner header fixes every content record's length: a record
            # of another length is content cut short, padded or a misplaced trailer.
            raise AuthenticationFailed()
        self._phase, self._need = _Phase.RECORD, size

    def _next_content_size(self) -> int:
        return min(limits.CHUNK_SIZE, self._remaining)

    def _read_record(self, item: bytes | memoryview, events: list[Event]) -> None:
        # Which record is the last follows from the inner header: the one after the
        # content. Its nonce carries the final flag, so a stream cut, extended or
        # reordered around it fails to authenticate.
        final = TAG_FINAL if self._records > 0 and not self._remaining else TAG_MESSAGE
        try:
            plaintext = _aegis.decrypt(
                item, self._header_hash, record_nonce(self._records, final), self._key
            )
        except (nacl_exceptions.CryptoError, ValueError, TypeError) as exc:
            raise AuthenticationFailed() from exc
        self._records += 1
        self._phase, self._need = _Phase.LENGTH, _LENGTH_SIZE
        if self._records == 1:
            self._read_inner(bytes(plaintext), events)
        elif final == TAG_MESSAGE:
            self._read_content(plaintext, events)
        else:
            self._read_trailer(bytes(plaintext), events)

    def _read_inner(self, plaintext: bytes, events: list[Event]) -> None:
        meta = DocumentMeta.from_wire(plaintext)
        if self._keys != len(meta.recipients) + 1:
            raise MalformedMessage("wrapped keys do not match the recipients")
        me = self._me.public
        if meta.sender != me:
            # A letter re-encrypted to someone it was not addressed to is refused
            # even if its signature is valid (surreptitious forwarding).
            if me not in meta.recipients:
                raise AuthenticationFailed()
            try:
                self._check_sender(meta.sender)
            except Exception as exc:
                raise AuthenticationFailed() from exc
        self._inner, self._meta = plaintext, meta
        self._remaining = meta.total_size
        self._hasher = _FileHasher(len(meta.files))
        self._file_index, self._file_left = 0, 0
        self._advance_file()
        events.append(MetaReceived(meta))

    def _advance_file(self) -> None:
        """Move to the next file that still has bytes due (skipping empty files)."""
        assert self._meta is not None
        files = self._meta.files
        while self._file_left == 0 and self._file_index < len(files):
            self._file_left = files[self._file_index].size
            if self._file_left == 0:
                self._file_index += 1

    def _read_content(self, plaintext: memoryview, events: list[Event]) -> None:
        assert self._hasher is not None
        if len(plaintext) != self._next_content_size():
            raise AuthenticationFailed()
        self._remaining -= len(plaintext)
        offset = 0
        while offset < len(plaintext):
            take = min(self._file_left, len(plaintext) - offset)
            piece = plaintext if take == len(plaintext) else plaintext[offset : offset + take]
            self._hasher.update(self._file_index, piece)
            if self._want_plaintext:
                events.append(Content(self._file_index, bytes(piece)))
            offset += take
            self._file_left -= take
            if self._file_left == 0:
                self._file_index += 1
                self._advance_file()

    def _read_trailer(self, plaintext: bytes, events: list[Event]) -> None:
        assert self._hasher is not None
        assert self._meta is not None
        fields = _exact_map(codec.unpack(plaintext), _TRAILER_FIELDS)
        claimed = codec.field(fields, "hashes", list, "envelope trailer")
        signature = codec.field(fields, "sig", bytes, "envelope trailer")
        if len(signature) != SIGNATURE_SIZE or len(claimed) != len(self._meta.files):
            raise MalformedMessage("envelope trailer has the wrong shape")
        file_hashes = self._hasher.digests()
        for ours, theirs in zip(file_hashes, claimed, strict=True):
            if not isinstance(theirs, bytes) or not constant_time_equal(ours, theirs):
                raise AuthenticationFailed()
        digest = envelope_digest(self._header_hash, self._inner, file_hashes)
        self._meta.sender.verify(LABEL_SIGNATURE, digest, signature)
        self._verified = VerifiedEnvelope(
            meta=self._meta,
            digest=digest,
            header_hash=self._header_hash,
            inner_header=self._inner,
            file_hashes=tuple(file_hashes),
            signature=signature,
            size=padded_size(self._consumed),
        )
        self._pad_left = padded_size(self._consumed) - self._consumed
        self._phase = _Phase.PADDING
        self._end_of_padding(events)

    def _read_padding(self, view: memoryview, position: int, events: list[Event]) -> int:
        """Check zero padding bytes from ``position``; return where they end."""
        take = min(self._pad_left, len(view) - position)
        if view[position : position + take] != bytes(take):
            raise AuthenticationFailed()  # padding is zeros, exactly as many as the size says
        self._pad_left -= take
        self._consumed += take
        self._end_of_padding(events)
        return position + take

    def _end_of_padding(self, events: list[Event]) -> None:
        if self._pad_left == 0 and self._verified is not None:
            self._phase = _Phase.DONE
            events.append(Verified(self._verified))


# --- convenience: open a whole envelope ---------------------------------------------


_READ_SIZE: Final = 1024 * 1024


@runtime_checkable
class _ReadInto(Protocol):
    def readinto(self, buffer: bytearray, /) -> int | None: ...


def _pieces(source: Readable | Iterable[bytes]) -> Iterator[bytes | memoryview]:
    """The source's bytes in pieces; a file is read into one reused buffer.

    Measured: reading record by record (``read(4)``, ``read(len)``) to skip the
    reader's copy is slower than this, by one syscall and allocation per read.
    """
    if isinstance(source, _ReadInto):
        buffer = bytearray(_READ_SIZE)
        view = memoryview(buffer)
        while count := source.readinto(buffer):
            yield view[:count]  # the reader copies what it keeps
    elif isinstance(source, Readable):
        while data := source.read(_READ_SIZE):
            yield data
    else:
        yield from source


def open_envelope(
    source: Readable | Iterable[bytes],
    me: LocalIdentity,
    sink: Callable[[int, bytes], None] | None = None,
    *,
    check_sender: Callable[[PublicIdentity], None] = _accept_any_sender,
) -> VerifiedEnvelope:
    """Read a whole envelope, pass its plaintext to ``sink``, return it once verified.

    ``sink(file_index, data)`` receives UNVERIFIED plaintext as it is decrypted:
    it must write to quarantine. This function returns only if the envelope is
    complete and authentic; when it raises, the caller must discard everything
    the sink received. Without a sink, the envelope is only verified.
    """
    reader = EnvelopeReader(me, check_sender=check_sender, want_plaintext=sink is not None)
    verified: VerifiedEnvelope | None = None
    try:
        for piece in _pieces(source):
            for event in reader.feed(piece):
                if isinstance(event, Content) and sink is not None:
                    sink(event.file_index, event.data)
                elif isinstance(event, Verified):
                    verified = event.envelope
        reader.close()
    finally:
        reader.abort()  # on any error, stop the hashing thread at once
    assert verified is not None  # close() raised otherwise
    return verified
