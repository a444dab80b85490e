"""The pli/2 transport handshake and session: Noise_XX_25519_ChaChaPoly_BLAKE2b, sans-IO.

What lives here, bottom up:

- primitives: X25519 (``_dh``, refusing an all-zero result), ChaCha20-Poly1305
  with the Noise nonce layout, BLAKE2b, HMAC-BLAKE2b and the Noise HKDF;
- ``_CipherState``, ``_SymmetricState``, ``_HandshakeState``: the objects of the
  Noise specification (revision 34, sections 5.1-5.3), one to one. The
  handshake state runs a raw pattern (XX, or NN for the test vectors) with any
  payloads and prologue, and knows nothing of pli;
- ``Handshake``: pli's XX. Messages 2 and 3 carry the sender's identity key and
  static certificate; both are checked, together with the caller's
  ``verify_remote`` (paired? revoked?), before we send anything further;
- ``Session``: the two transport cipher states and the authenticated peer,
  handed over when the handshake completes (like wsproto's handshake).

Bytes in, bytes out: no sockets, no clock (``now`` is an argument), and the
ephemeral key can be pinned. Exceptions from PyNaCl never leave this module:
bad input raises a ``RemoteProtocolError`` subclass, misuse ``LocalProtocolError``.

Size: over 400 lines on purpose: the Noise spec's objects (CipherState,
SymmetricState, HandshakeState) and the transport built on them are one state
machine, kept in the spec's order so that it can be read against the spec.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from nacl import exceptions as nacl_exceptions
from nacl import utils as nacl_utils
from nacl.bindings import (
    crypto_aead_chacha20poly1305_ietf_decrypt,
    crypto_aead_chacha20poly1305_ietf_encrypt,
    crypto_scalarmult,
    crypto_scalarmult_base,
)

from . import codec, limits
from ._hashing import constant_time_equal
from .errors import (
    AuthenticationFailed,
    FrameTooLarge,
    LocalProtocolError,
    MalformedMessage,
)
from .identity import KEY_SIZE, LocalIdentity, PeerId, PublicIdentity, StaticCert

#: Protocol versions we speak. They go into the prologue, so a peer that was
#: talked down to an older version computes another handshake hash and fails.
SUPPORTED_VERSIONS = (2,)
PROLOGUE = b"pli/2" + bytes(SUPPORTED_VERSIONS)

EXPORTER_LABEL = b"pli/1/noise-exporter"
DHLEN = 32
HASHLEN = 64
TAGLEN = 16
_MAX_NONCE = 2**64 - 1  # reserved by the spec for REKEY
_ZEROS = bytes(32)

#: Largest plaintext a single transport message can carry.
MAX_PLAINTEXT = limits.MAX_NOISE_MESSAGE - TAGLEN


class _Token(enum.Enum):
    """Pattern tokens. In a DH token the first letter names the initiator's key,
    the second the responder's ("es" = initiator's ephemeral, responder's static)."""

    E = "e"
    S = "s"
    EE = "ee"
    ES = "es"
    SE = "se"
    SS = "ss"


_E, _S, _EE, _ES, _SE = _Token.E, _Token.S, _Token.EE, _Token.ES, _Token.SE

#: Message patterns as data: each message is the tokens its sender processes.
_PATTERNS: dict[str, tuple[tuple[_Token, ...], ...]] = {
    "XX": ((_E,), (_E, _EE, _S, _ES), (_S, _SE)),
    "NN": ((_E,), (_E, _EE)),
}


def _protocol_name(pattern: str) -> bytes:
    return f"Noise_{pattern}_25519_ChaChaPoly_BLAKE2b".encode()


# --- primitives ------------------------------------------------------------------


def _public_key(secret: bytes) -> bytes:
    if len(secret) != DHLEN:
        raise LocalProtocolError("an X25519 secret key is 32 bytes")
    public: bytes = crypto_scalarmult_base(secret)
    return public


def _dh(secret: bytes, public: bytes) -> bytes:
    """X25519, refusing low-order points: an all-zero secret would be known to anyone."""
    if len(public) != DHLEN:
        raise MalformedMessage("an X25519 public key is 32 bytes")
    try:
        shared: bytes = crypto_scalarmult(secret, public)
    except nacl_exceptions.CryptoError as exc:  # libsodium refuses an all-zero result
        raise AuthenticationFailed() from exc
    if constant_time_equal(shared, _ZEROS):  # in case a libsodium build does not
        raise AuthenticationFailed()
    return shared


def _nonce(n: int) -> bytes:
    return bytes(4) + n.to_bytes(8, "little")


def _encrypt(key: bytes, n: int, ad: bytes, plaintext: bytes) -> bytes:
    ciphertext: bytes = crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, ad, _nonce(n), key)
    return ciphertext


def _decrypt(key: bytes, n: int, ad: bytes, ciphertext: bytes) -> bytes:
    if len(ciphertext) < TAGLEN:  # PyNaCl raises a bare ValueError on these
        raise AuthenticationFailed()
    try:
        plaintext: bytes = crypto_aead_chacha20poly1305_ietf_decrypt(ciphertext, ad, _nonce(n), key)
    except (nacl_exceptions.CryptoError, ValueError, TypeError) as exc:
        raise AuthenticationFailed() from exc
    return plaintext


def _hash(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=HASHLEN).digest()


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.blake2b).digest()


def _hkdf(chaining_key: bytes, input_key_material: bytes) -> tuple[bytes, bytes]:
    """The spec's HKDF with two outputs (the only count XX and NN use)."""
    temp_key = _hmac(chaining_key, input_key_material)
    output1 = _hmac(temp_key, b"\x01")
    return output1, _hmac(temp_key, output1 + b"\x02")


# --- the Noise state objects -------------------------------------------------------


class _CipherState:
    """k and n of the spec (section 5.1); no key means "pass plaintext through"."""

    __slots__ = ("k", "n")

    def __init__(self, key: bytes | None = None) -> None:
        self.k = key
        self.n = 0

    @property
    def has_key(self) -> bool:
        return self.k is not None

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self.k is None:
            return plaintext
        if self.n >= _MAX_NONCE:
            raise LocalProtocolError("nonce space exhausted: start a new session")
        ciphertext = _encrypt(self.k, self.n, ad, plaintext)
        self.n += 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        """Raises ``AuthenticationFailed``; n only moves on success, as the spec says."""
        if self.k is None:
            return ciphertext
        if self.n >= _MAX_NONCE:
            raise AuthenticationFailed()
        plaintext = _decrypt(self.k, self.n, ad, ciphertext)
        self.n += 1
        return plaintext

    def rekey(self) -> None:
        """REKEY(k) = first 32 bytes of ENCRYPT(k, maxnonce, "", zeros); n is unchanged."""
        if self.k is None:
            raise LocalProtocolError("cannot rekey a cipher state without a key")
        self.k = _encrypt(self.k, _MAX_NONCE, b"", _ZEROS)[:32]


class _SymmetricState:
    """ck, h and a cipher state (section 5.2)."""

    __slots__ = ("cipher", "ck", "h")

    def __init__(self, protocol_name: bytes) -> None:
        if len(protocol_name) <= HASHLEN:
            self.h = protocol_name.ljust(HASHLEN, b"\x00")
        else:
            self.h = _hash(protocol_name)
        self.ck = self.h
        self.cipher = _CipherState()

    def mix_key(self, input_key_material: bytes) -> None:
        self.ck, temp_k = _hkdf(self.ck, input_key_material)
        self.cipher = _CipherState(temp_k[:32])  # HASHLEN 64: truncate to the cipher key size

    def mix_hash(self, data: bytes) -> None:
        self.h = _hash(self.h + data)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[_CipherState, _CipherState]:
        temp_k1, temp_k2 = _hkdf(self.ck, b"")
        return _CipherState(temp_k1[:32]), _CipherState(temp_k2[:32])


def _take(message: bytes, offset: int, size: int) -> bytes:
    if len(message) < offset + size:
        raise MalformedMessage("handshake message too short")
    return message[offset : offset + size]


class _HandshakeState:
    """A raw Noise handshake (section 5.3) over any payloads: no pli checks here.

    ``ephemeral`` pins e (tests); otherwise it is drawn from libsodium's RNG.
    After ``finished`` is true, ``split()`` gives (initiator→responder,
    responder→initiator) cipher states.
    """

    def __init__(
        self,
        pattern: str,
        *,
        initiator: bool,
        prologue: bytes,
        static: bytes | None = None,
        ephemeral: bytes | None = None,
    ) -> None:
        self._messages = _PATTERNS[pattern]
        self._initiator = initiator
        self._index = 0
        self._sym = _SymmetricState(_protocol_name(pattern))
        self._sym.mix_hash(prologue)
        self._s = static
        self._s_pub = _public_key(static) if static is not None else None
        self._e = ephemeral if ephemeral is not None else nacl_utils.random(DHLEN)
        self._e_pub = _public_key(self._e)
        self.remote_static: bytes | None = None
        self.remote_ephemeral: bytes | None = None

    @property
    def finished(self) -> bool:
        return self._index == len(self._messages)

    @property
    def handshake_hash(self) -> bytes:
        return self._sym.h

    def _my_turn(self) -> bool:
        return not self.finished and (self._index % 2 == 0) == self._initiator

    def write_message(self, payload: bytes) -> bytes:
        if not self._my_turn():
            raise LocalProtocolError("not our turn to write a handshake message")
        tokens = self._messages[self._index]
        self._index += 1
        parts = [self._write_token(token) for token in tokens]
        parts.append(self._sym.encrypt_and_hash(payload))
        message = b"".join(parts)
        if len(message) > limits.MAX_NOISE_MESSAGE:
            raise LocalProtocolError("handshake payload too large")
        return message

    def read_message(self, message: bytes) -> bytes:
        """The payload of ``message``; raises ``RemoteProtocolError`` on bad input."""
        if self.finished or self._my_turn():
            raise LocalProtocolError("not our turn to read a handshake message")
        if len(message) > limits.MAX_NOISE_MESSAGE:
            raise FrameTooLarge("handshake message over the Noise limit")
        tokens = self._messages[self._index]
        self._index += 1
        offset = 0
        for token in tokens:
            offset = self._read_token(token, message, offset)
        return self._sym.decrypt_and_hash(message[offset:])

    def split(self) -> tuple[_CipherState, _CipherState]:
        if not self.finished:
            raise LocalProtocolError("the handshake is not finished")
        return self._sym.split()

    def exporter(self) -> bytes:
        """A secret bound to this session: HMAC-BLAKE2b(ck, EXPORTER_LABEL ‖ h).

        ``h`` alone is public (it hashes only bytes sent in the clear); the
        final chaining key ``ck`` holds every DH result, so only the two ends
        can compute this. Never used as a transport key (``split`` is).
        """
        if not self.finished:
            raise LocalProtocolError("the handshake is not finished")
        return _hmac(self._sym.ck, EXPORTER_LABEL + self._sym.h)

    def _write_token(self, token: _Token) -> bytes:
        if token is _Token.E:
            self._sym.mix_hash(self._e_pub)
            return self._e_pub
        if token is _Token.S:
            if self._s_pub is None:
                raise LocalProtocolError("this pattern needs a static key")
            return self._sym.encrypt_and_hash(self._s_pub)
        self._sym.mix_key(self._dh_token(token))
        return b""

    def _read_token(self, token: _Token, message: bytes, offset: int) -> int:
        if token is _Token.E:
            self.remote_ephemeral = _take(message, offset, DHLEN)
            self._sym.mix_hash(self.remote_ephemeral)
            return offset + DHLEN
        if token is _Token.S:
            size = DHLEN + (TAGLEN if self._sym.cipher.has_key else 0)
            self.remote_static = self._sym.decrypt_and_hash(_take(message, offset, size))
            return offset + size
        self._sym.mix_key(self._dh_token(token))
        return offset

    def _dh_token(self, token: _Token) -> bytes:
        pair = token.value
        mine, theirs = (pair[0], pair[1]) if self._initiator else (pair[1], pair[0])
        secret = self._e if mine == "e" else self._s
        public = self.remote_ephemeral if theirs == "e" else self.remote_static
        if secret is None or public is None:
            raise LocalProtocolError(f"pattern token {token.value!r} needs a key we do not have")
        return _dh(secret, public)


# --- pli's handshake -----------------------------------------------------------------


class Role(enum.Enum):
    INITIATOR = "initiator"
    RESPONDER = "responder"


INITIATOR = Role.INITIATOR
RESPONDER = Role.RESPONDER


@dataclass(frozen=True)
class RemotePeer:
    """The peer a handshake authenticated: identity key, Noise static key, certificate."""

    identity: PublicIdentity
    static_public: bytes
    cert: StaticCert

    @property
    def peer_id(self) -> PeerId:
        return self.identity.peer_id


def _identity_payload(local: LocalIdentity) -> bytes:
    return codec.pack({"id": local.public.key, "cert": local.static_cert.to_wire()})


def _parse_identity_payload(payload: bytes) -> tuple[PublicIdentity, StaticCert]:
    fields = codec.as_map(codec.unpack(payload), "handshake payload")
    if set(fields) != {"id", "cert"}:  # strict: nothing we would silently ignore
        raise MalformedMessage("handshake payload: unexpected fields")
    identity = PublicIdentity(codec.fixed_bytes(fields, "id", KEY_SIZE, "handshake payload"))
    cert_bytes = codec.fixed_bytes(fields, "cert", StaticCert.WIRE_SIZE, "handshake payload")
    # One encoding per value: another msgpack spelling of the same keys would
    # change the handshake hash without changing what was said (issue 8 §1.1).
    if codec.pack({"id": identity.key, "cert": cert_bytes}) != payload:
        raise MalformedMessage("handshake payload: not in canonical form")
    return identity, StaticCert.from_wire(cert_bytes)


class _State(enum.Enum):
    """Named for what we wait for; ``receive``/``initiate`` outside the table is misuse."""

    SEND_MESSAGE_1 = "initiator, nothing sent yet"
    AWAIT_MESSAGE_1 = "responder, nothing received yet"
    AWAIT_MESSAGE_2 = "initiator, message 1 sent"
    AWAIT_MESSAGE_3 = "responder, message 2 sent"
    COMPLETE = "session ready"
    FAILED = "dead after an error"


class Handshake:
    """One side of pli's XX handshake. Feed it the peer's messages, send what it returns.

    Initiator: ``initiate()`` → message 1; ``receive(message 2)`` → message 3.
    Responder: ``receive(message 1)`` → message 2; ``receive(message 3)`` → None.
    Then ``complete`` is true and ``session()`` hands over the ``Session``.

    Message 1 carries no payload. Messages 2 and 3 carry msgpack
    ``{"id": identity key, "cert": static certificate}``. On receiving one we
    check the certificate (signed by that identity, not expired at ``now``,
    for exactly the Noise static key the peer proved), refuse our own static
    key (reflection), refuse a peer other than ``expected``, then call
    ``verify_remote`` — all before producing the next message.

    Raises: ``LocalProtocolError`` on misuse (wrong role, wrong order, after
    completion or after an error); ``FrameTooLarge`` for a message over
    ``limits.MAX_NOISE_MESSAGE``; ``MalformedMessage`` or
    ``AuthenticationFailed`` for bad messages; whatever ``verify_remote``
    raises. After any error the handshake is dead.
    """

    def __init__(
        self,
        role: Role,
        local: LocalIdentity,
        verify_remote: Callable[[RemotePeer], None],
        *,
        now: int,
        expected: PeerId | None = None,
        prologue: bytes = PROLOGUE,
        ephemeral_secret: bytes | None = None,
    ) -> None:
        if ephemeral_secret is not None and len(ephemeral_secret) != DHLEN:
            raise LocalProtocolError("an ephemeral secret is 32 bytes")
        self._role = role
        self._local = local
        self._verify_remote = verify_remote
        self._now = now
        self._expected = expected
        self._noise = _HandshakeState(
            "XX",
            initiator=role is Role.INITIATOR,
            prologue=prologue,
            static=local.static_secret,
            ephemeral=ephemeral_secret,
        )
        self._state = _State.SEND_MESSAGE_1 if role is Role.INITIATOR else _State.AWAIT_MESSAGE_1
        self._session: Session | None = None

    @property
    def role(self) -> Role:
        return self._role

    @property
    def complete(self) -> bool:
        return self._state is _State.COMPLETE

    @property
    def handshake_hash(self) -> bytes:
        """The final handshake hash h (channel binding); only once complete."""
        if self._state is not _State.COMPLETE:
            raise LocalProtocolError("the handshake hash is final only once complete")
        return self._noise.handshake_hash

    def session(self) -> Session:
        if self._session is None:
            raise LocalProtocolError("the handshake is not complete")
        return self._session

    def initiate(self) -> bytes:
        """Message 1 (initiator only, once)."""
        if self._state is not _State.SEND_MESSAGE_1:
            raise LocalProtocolError(f"initiate() called in state {self._state.name}")
        message = self._noise.write_message(b"")
        self._state = _State.AWAIT_MESSAGE_2
        return message

    def receive(self, message: bytes) -> bytes | None:
        """Process the peer's next message; return ours to send, or None when done."""
        step = {
            _State.AWAIT_MESSAGE_1: self._on_message_1,
            _State.AWAIT_MESSAGE_2: self._on_message_2,
            _State.AWAIT_MESSAGE_3: self._on_message_3,
        }.get(self._state)
        if step is None:
            raise LocalProtocolError(f"receive() called in state {self._state.name}")
        if not isinstance(message, bytes | bytearray | memoryview):
            raise LocalProtocolError("a handshake message is bytes")
        try:
            return step(bytes(message))
        except BaseException:
            self._state = _State.FAILED  # a half-processed transcript is never reused
            raise

    def _on_message_1(self, message: bytes) -> bytes:
        if self._noise.read_message(message):
            raise MalformedMessage("handshake message 1 must have an empty payload")
        reply = self._noise.write_message(_identity_payload(self._local))
        self._state = _State.AWAIT_MESSAGE_3
        return reply

    def _on_message_2(self, message: bytes) -> bytes:
        remote = self._authenticate(self._noise.read_message(message))
        reply = self._noise.write_message(_identity_payload(self._local))
        self._finish(remote)
        return reply

    def _on_message_3(self, message: bytes) -> None:
        remote = self._authenticate(self._noise.read_message(message))
        self._finish(remote)

    def _authenticate(self, payload: bytes) -> RemotePeer:
        identity, cert = _parse_identity_payload(payload)
        rs = self._noise.remote_static
        if rs is None:  # XX always reads s before the payload of messages 2 and 3
            raise LocalProtocolError("no remote static key after an s token")
        cert.verify(identity, now=self._now)
        if not constant_time_equal(cert.static_public, rs):
            raise AuthenticationFailed()
        if constant_time_equal(rs, self._local.static_public):
            raise AuthenticationFailed()  # our own key reflected back at us
        remote = RemotePeer(identity=identity, static_public=rs, cert=cert)
        if self._expected is not None and remote.peer_id != self._expected:
            raise AuthenticationFailed()
        self._verify_remote(remote)
        return remote

    def _finish(self, remote: RemotePeer) -> None:
        to_responder, to_initiator = self._noise.split()
        initiator = self._role is Role.INITIATOR
        self._session = Session(
            send=to_responder if initiator else to_initiator,
            receive=to_initiator if initiator else to_responder,
            remote=remote,
            handshake_hash=self._noise.handshake_hash,
            is_initiator=initiator,
            exporter=self._noise.exporter(),
        )
        self._state = _State.COMPLETE


# --- the session ---------------------------------------------------------------------


class Session:
    """Transport messages after the handshake; built only by ``Handshake``.

    Each direction has its own key and counter nonce, so a replayed, reordered
    or dropped message fails to decrypt (``AuthenticationFailed``). A failed
    decrypt does not move the counter; the caller should close the connection.

    Rekey rule (deterministic, no signalling): every direction rekeys its key
    with the Noise REKEY function right after the message with nonce n where
    ``(n + 1) % limits.REKEY_MESSAGES == 0`` has been encrypted (sender) or
    successfully decrypted (receiver). Both ends count the same messages, so
    they switch keys at the same message. Nonces keep counting, per the spec.

    Time-based rekey needs the sender to tell the receiver: send an in-band
    control message, then call ``rekey_outbound()``; the peer calls
    ``rekey_inbound()`` right after decrypting that message.
    """

    def __init__(
        self,
        *,
        send: _CipherState,
        receive: _CipherState,
        remote: RemotePeer,
        handshake_hash: bytes,
        is_initiator: bool,
        exporter: bytes,
    ) -> None:
        self._send = send
        self._receive = receive
        self._remote = remote
        self._handshake_hash = handshake_hash
        self._is_initiator = is_initiator
        self._exporter = exporter

    def __repr__(self) -> str:
        return f"Session(remote={self._remote.peer_id.short}, initiator={self._is_initiator})"

    @property
    def remote(self) -> RemotePeer:
        return self._remote

    @property
    def handshake_hash(self) -> bytes:
        return self._handshake_hash

    @property
    def is_initiator(self) -> bool:
        return self._is_initiator

    def export(self, label: bytes, size: int = 32) -> bytes:
        """A secret value for one purpose, the same at both ends of this session only:
        BLAKE2b(key = exporter, data = label, digest_size = size). An onlooker who
        saw every handshake byte cannot compute it (unlike ``handshake_hash``)."""
        if not label.startswith(b"pli/"):
            raise LocalProtocolError("an exported value needs a pli/ purpose label")
        return hashlib.blake2b(label, key=self._exporter, digest_size=size).digest()

    def encrypt(self, plaintext: bytes, ad: bytes = b"") -> bytes:
        if len(plaintext) > MAX_PLAINTEXT:
            raise LocalProtocolError(f"a transport message carries at most {MAX_PLAINTEXT} bytes")
        ciphertext = self._send.encrypt_with_ad(ad, bytes(plaintext))
        self._rekey_if_due(self._send)
        return ciphertext

    def decrypt(self, ciphertext: bytes, ad: bytes = b"") -> bytes:
        """Raises ``FrameTooLarge`` over the Noise limit, ``AuthenticationFailed`` otherwise."""
        if len(ciphertext) > limits.MAX_NOISE_MESSAGE:
            raise FrameTooLarge("transport message over the Noise limit")
        plaintext = self._receive.decrypt_with_ad(ad, bytes(ciphertext))
        self._rekey_if_due(self._receive)
        return plaintext

    def rekey_outbound(self) -> None:
        self._send.rekey()

    def rekey_inbound(self) -> None:
        self._receive.rekey()

    @staticmethod
    def _rekey_if_due(cipher: _CipherState) -> None:
        if cipher.n % limits.REKEY_MESSAGES == 0:
            cipher.rekey()
