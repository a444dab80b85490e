"""Receiving documents: quarantine → verify → durable → signed receipt.

An offered envelope is written to ``quarantine/`` as it arrives and verified
record by record in a worker thread (TAG_FINAL, signature, hashes; no plaintext
is produced). Only a verified envelope is fsync'd, renamed into
``documents/received/`` and committed to the database; only then is the signed
receipt sent. A cut transfer resumes from the bytes already in quarantine
(re-verified from the start). The same document offered twice is stored once
and its receipt sent again.

Speed, with the same guarantees:

- BULK frames are handed to one verifier thread in order and not awaited one
  by one: the event loop reads frame n+1 from the socket while the thread
  decrypts, hashes and writes frame n. At most a frame or two (about 1 MiB
  each) wait for it, so memory stays bounded and a slow disk pushes back on
  the sender through TCP.
- Durability is a group commit on one committer thread: the envelopes verified
  meanwhile are each fsync'd and renamed, their folder fsync'd once, and their
  rows committed in one transaction; then each receipt is sent. The channel
  does not wait for it, so the sender's next offer is answered while the disk
  works. Nothing is acknowledged before its commit has returned.

Every offer is first admitted by the ``Quota`` (the peer's quota and rate, the
disk's free-space reserve); a write or commit that fails anyway (a full disk)
is answered with a ``refuse`` and its partial file deleted, never left silent.
The description of each committed document is sealed into the inbox index
(``storage/index.py``) in the same transaction, so listing does not decrypt.

The modules, in the order a document goes through them: ``service.py`` the
``Inbox`` (offers and frames from a channel, refusals, resumes),
``quarantine.py`` the verifier and writer threads and the partial files,
``commit.py`` the group commit and the receipts.
"""

from p2p.services.inbox.service import Inbox, TransferRefused

__all__ = ["Inbox", "TransferRefused"]
