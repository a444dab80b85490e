"""Every size, count and time limit of pli/2, each with the reason it exists.

The transport, the codec and the parsers read their bounds from here so that a
single number decides how much memory a peer can make us hold.
"""

from __future__ import annotations

from typing import Final

# --- framing -----------------------------------------------------------------

#: Plaintext bytes per envelope chunk. 64 KiB keeps per-chunk overhead (32 bytes
#: of AEGIS-256 tag, 4 of length) under 0.06 % while a reader holds little memory.
CHUNK_SIZE: Final = 64 * 1024

#: One envelope record adds a 32-byte AEGIS-256 tag.
CHUNK_OVERHEAD: Final = 32

#: Largest WebSocket frame a peer may send after the handshake: one sealed frame
#: (protocol/frames.py) of a control message or up to 1 MiB of envelope bytes;
#: 1 MiB keeps the receive buffer small while amortising per-frame costs.
MAX_FRAME: Final = 1024 * 1024 + 64

#: Largest envelope a sender may push: offer it and send its bytes at once,
#: without waiting for an accept (``Offer.push``). A letter then costs no round
#: trip; a receiver holds at most this much it did not ask for per connection
#: (it reads one frame at a time), and keeps such an envelope in memory until
#: its commit instead of opening a quarantine file.
MAX_PUSHED_ENVELOPE: Final = 64 * 1024

#: Largest Noise transport message (control messages). The Noise specification
#: caps messages at 65535 bytes; we keep that cap so the handshake and control
#: traffic stay within what any Noise library accepts.
MAX_NOISE_MESSAGE: Final = 65535

#: Largest msgpack document decoded at once (messages, headers, cards). Bounds
#: the buffer the strict unpacker may allocate.
MAX_MESSAGE: Final = 64 * 1024

#: Largest envelope header (the cleartext part: wrapped file keys). 32
#: recipients of 80 bytes fit many times over.
MAX_ENVELOPE_HEADER: Final = 16 * 1024

#: Largest inner header (clinical metadata, file list). Metadata is short text.
MAX_INNER_HEADER: Final = 32 * 1024

#: Recipients of one envelope (plus the sender's own copy). A letter goes to a
#: few colleagues; more is a mailing list, not a referral.
MAX_RECIPIENTS: Final = 16

#: Files in one envelope (a letter and its attachments).
MAX_FILES: Final = 64

#: Largest document (sum of its files). Bounds disk use per transfer; scans and
#: imaging exports are the big cases.
MAX_DOCUMENT_SIZE: Final = 16 * 1024**3

#: Largest envelope for that document: 36 bytes per 64 KiB record plus headers
#: (under 1/1024), then Padmé padding (under 1/32 from 1 MiB on; protocol/padding.py).
MAX_ENVELOPE_SIZE: Final = MAX_DOCUMENT_SIZE + MAX_DOCUMENT_SIZE // 32 + 2 * 1024 * 1024

# --- strict msgpack ----------------------------------------------------------

#: Nesting depth of a decoded msgpack value. Our messages nest three levels;
#: deep nesting only serves to exhaust the stack.
MAX_DEPTH: Final = 8

#: Elements in one msgpack array / entries in one map.
MAX_ARRAY_LEN: Final = 1024
MAX_MAP_LEN: Final = 64

#: One msgpack str or bin value. Names and notes are short; binary values are
#: keys, signatures and hashes.
MAX_STR_LEN: Final = 8 * 1024
MAX_BIN_LEN: Final = 32 * 1024

#: Text fields a person typed (name, practice, subject).
MAX_TEXT_FIELD: Final = 512

#: Addresses listed in a profile card.
MAX_ADDRESSES: Final = 8

#: Mailboxes listed in a profile card (as many as a practice may join), and the
#: length of one's URL (a cluster's nodes, comma-separated, are one mailbox).
MAX_CARD_MAILBOXES: Final = 8
MAX_MAILBOX_URL: Final = 1024

# --- time --------------------------------------------------------------------

#: Seconds a peer has to finish the Noise handshake: slowloris defence.
HANDSHAKE_DEADLINE: Final = 10.0


#: Lifetime of a pairing invitation: long enough to read a code over the phone.
INVITATION_LIFETIME: Final = 10 * 60

#: Clock skew tolerated on receipt timestamps (a receipt from the future is refused).
MAX_CLOCK_SKEW: Final = 10 * 60

#: Lifetime of a static-key certificate: a stolen transport key stops working
#: after this even if revocation never reaches a peer.
STATIC_CERT_LIFETIME: Final = 2 * 365 * 24 * 3600

#: Noise rekey thresholds: every hour or 2**20 messages, whichever first.
REKEY_SECONDS: Final = 3600
REKEY_MESSAGES: Final = 2**20

#: pli/2 frames (protocol/frames.py) rekey after this many frames per direction
#: (1 TiB of 1 MiB frames), and hourly like Noise.
REKEY_FRAMES: Final = 2**20

# --- revocation --------------------------------------------------------------

#: Bytes of a revocation statement (``protocol.revocation.WIRE_SIZE``): the peer
#: port reads no more than this (plus one, to tell "too large") from a request.
REVOCATION_SIZE: Final = 105

#: Revocation statements accepted per source IP (token bucket refill) and burst.
#: A practice revokes once in years; gossip from one peer brings a handful at a
#: time. Each accepted statement costs a signature check and one fsync'd commit.
REVOCATIONS_PER_SECOND_PER_IP: Final = 1.0
REVOCATION_BURST_PER_IP: Final = 20

#: Revocation statements accepted per second from everyone together, and burst.
REVOCATIONS_PER_SECOND: Final = 20.0
REVOCATION_BURST: Final = 200

#: Revocations of identities this daemon never knew that it keeps (oldest dropped
#: first): enough to refuse a revoked key at a later pairing, bounded against floods.
MAX_UNKNOWN_REVOCATIONS: Final = 1024

# --- the peer port (p2p/net/transport) and dialling (p2p/net/addresses) ------

#: Connections from one IP address at once that have not proved a paired
#: peer, counted from accept whatever they ask for (a refused request
#: included) until they close or their Noise handshake authenticates a paired
#: peer. Handshakes in progress, a pairing and a few reconnections fit, also
#: from several practices behind one NAT; a flood from one address does not.
MAX_CONNECTIONS_PER_IP: Final = 8

#: Authenticated sessions of one paired peer at once, whatever its address: a
#: session counts here (and in the total) instead of against its IP, so that
#: many practices behind one address are all served. One live session, and its
#: replacement while the old one closes (a reconnection, a simultaneous dial).
MAX_SESSIONS_PER_PEER: Final = 2

#: Handshakes per second per IP (token bucket refill) and burst: a colleague
#: reconnects a few times a minute; a scanner or a flood is slowed to 5/s.
HANDSHAKES_PER_SECOND_PER_IP: Final = 5.0
HANDSHAKE_BURST_PER_IP: Final = 10

#: Connections on the peer port at once, from everybody. A practice has tens of
#: paired colleagues, not hundreds; each connection costs a file descriptor and
#: ~100 KiB of buffers. Lowered to fit the descriptors the process may open
#: (``connection_cap``), so a flood can never take the last one.
MAX_CONNECTIONS: Final = 512

#: File descriptors kept out of the peer port's reach: the store (database,
#: -wal, -shm), the local API socket and its clients, outgoing sessions,
#: documents being read or written, discovery sockets, the log.
FD_RESERVE: Final = 64

#: Connections the kernel queues for the peer port before the daemon accepts
#: them. asyncio accepts up to this many at once and each holds a descriptor
#: until the guard refuses it, so the connection cap leaves room for them; 64
#: is more than the colleagues who reconnect at the same instant after an outage.
ACCEPT_BACKLOG: Final = 64

#: Source addresses whose handshake rate is remembered (least recently seen
#: forgotten first). IPv6 gives an attacker as many addresses as it likes;
#: 4096 buckets are well under 1 MiB. A forgotten address starts again with a
#: full burst, which is what a fresh address gets anyway.
MAX_TRACKED_IPS: Final = 4096

#: Lines of one kind the daemon logs per ``LOG_INTERVAL``; the rest are counted
#: and summarised in one line. A flood of refused connections once wrote 19 MB
#: of log in 45 s.
LOG_BURST: Final = 5
LOG_INTERVAL: Final = 60.0

#: Answers a sender keeps per offered document: the receiver answers an offer
#: once (accept, receipt or refusal) and an accepted transfer once more. A
#: receiver that sends more while they are unread is closed.
MAX_REPLIES_PER_OFFER: Final = 2

#: Answers about documents nobody waits for, per connection (token bucket:
#: burst, refill per second). Late answers after a timeout are normal, two per
#: document of a full receipt window (64); a stream of them is abuse and closes
#: the connection.
UNSOLICITED_REPLY_BURST: Final = 128
UNSOLICITED_REPLIES_PER_SECOND: Final = 2.0

#: Addresses tried per attempt to reach a peer: the one discovery saw, the one
#: last reached, two more from what the user typed or the peer's card says.
#: Bounds how many hosts a peer's card can make us dial.
MAX_DIAL_ADDRESSES: Final = 4

#: Lowest port pli dials. A pli daemon never needs privileges to listen; the
#: ports below are the machines' own services (ssh, mail, web, printing), which
#: a peer's card must not make us knock on.
MIN_DIAL_PORT: Final = 1024


def connection_cap(open_files: int) -> int:
    """Inbound connections allowed when the process may open ``open_files`` descriptors.

    Half of what ``FD_RESERVE`` and ``ACCEPT_BACKLOG`` leave, since each inbound
    session may hold a second descriptor (the envelope it receives), and at most
    ``MAX_CONNECTIONS``; at least ``MAX_CONNECTIONS_PER_IP`` so that a daemon
    run under a tiny limit still serves a colleague. 256 descriptors give 64.
    """
    spare = open_files - FD_RESERVE - ACCEPT_BACKLOG
    return max(MAX_CONNECTIONS_PER_IP, min(MAX_CONNECTIONS, spare // 2))
