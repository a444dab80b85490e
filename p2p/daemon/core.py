"""The daemon: owns the services, wires them together, starts and stops them.

Services never call each other: what one learns reaches another through here
(a channel comes up → the outbox retries that peer; a reply arrives → it goes
to the outbox sender waiting for it). ``Daemon.run`` runs everything in one
TaskGroup until ``stop()`` (SIGTERM / SIGINT: ``process.py``); state on disk is
consistent at every instant, so a stop, clean or not, loses nothing.

Size (over 400 lines): ``Daemon`` is the wiring, and every arrow between two
services is one of its methods here, so that the whole graph reads in one file.
What is not wiring lives beside it: how a peer is dialled (``dialling.py``),
pairing's steps for the API (``pairing.py``), the process (``process.py``).
``Daemon.__init__`` is longer than a screen for the same reason: it builds each
service once, in the order they depend on one another, and reads as that list.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from p2p.daemon import folders as folder_seam
from p2p.daemon.bus import EventBus
from p2p.daemon.cards import CardSender
from p2p.daemon.dialling import Dialler
from p2p.daemon.later import LaterRouting
from p2p.daemon.mailbox import MailboxRouting, mailbox_rows
from p2p.daemon.weblinks import LoginLinks
from p2p.documents import peer_names as naming
from p2p.errors import BadInput, NotPaired, PeerUnknown, PliError, StorageError
from p2p.events import PeerGone, PeerSeen
from p2p.net.transport import Channel, ChannelClosed, Transport
from p2p.ratelimit import TokenBucket
from p2p.services.archive import Archive
from p2p.services.inbox import Inbox, TransferRefused
from p2p.services.mailbox.rendezvous import Rendezvous
from p2p.services.mailbox.service import MailboxService
from p2p.services.outbox import Attachment, Outbox, Recipient, TooManyReplies
from p2p.services.pairing.service import PairingService
from p2p.services.peers import PeerDirectory
from p2p.services.receipts import LaterReceipts
from p2p.services.revocation import Pushed, RevocationService
from p2p.storage import keystore
from p2p.storage.config import Config, load_profile, own_card, save_profile
from p2p.storage.failures import Failed, Failure
from p2p.storage.files import Layout, private_home
from p2p.storage.quota import MIB, Limits, Quota
from p2p.storage.store import PeerRow, PeerState, Store
from p2p.storage.uploads import Uploads
from protocol import (
    AuthenticationFailed,
    FrameTooLarge,
    MalformedMessage,
    PairedPeer,
    PeerId,
    ProfileCard,
    PublicIdentity,
    RemotePeer,
    RemoteProtocolError,
    Revocation,
    limits,
    messages,
)

if TYPE_CHECKING:
    from p2p.net.discovery import Discovery

log = logging.getLogger("pli.daemon")

DATABASE = "pli.db"
#: Why a queued document was cancelled (shown in the outbox).
CANCELLED_REMOVED = Failed.of(Failure.CANCELLED_REMOVED)


def _limits(config: Config) -> Limits:
    return Limits(
        peer_quota=config.peer_quota_mib * MIB,
        peer_documents_per_hour=config.peer_documents_per_hour,
        disk_reserve=config.disk_reserve_mib * MIB,
        partial_lifetime=float(config.partial_lifetime),
    )


@dataclass(frozen=True)
class Started:
    peer_port: int
    fingerprint: str


class Daemon:
    def __init__(self, config: Config, keys: keystore.Keys) -> None:
        self.config = config
        self.keys = keys
        self.me = keys.identity
        note = private_home(config.home)
        if note is not None:
            log.warning("%s", note)
        self.layout = Layout(config.home)
        self.layout.create()
        self.store = Store(config.home / DATABASE)
        self.profile = load_profile(config.home)  # read once: card() is built from it
        self._profile_lock = asyncio.Lock()
        self.pairing = PairingService(
            self.me,
            self.signed_card,
            keys.discovery_secret,
            my_addresses=lambda: list(self.card().addresses),
            store_peer=self._paired,
            on_invitation_change=self._invitation_changed,
            on_event=lambda event: self.events.publish(event),  # noqa: PLW0108 - made below
        )
        self.transport = Transport(
            self.me,
            self._authorize,
            self._serve_channel,
            on_pairing=self.pairing.serve,
            on_revocation=self._on_revocation,
            handshake_deadline=config.handshake_deadline,
        )
        self.dialler = Dialler(config, self.store, self.transport, self.paired_peer)
        self.cards = CardSender(
            self.card,
            lambda card: card.sign(self.me.identity),
            lambda: [row.peer_id for row in self.store.peers()],
            self.dialler.connect,
        )
        self.revocations = RevocationService(
            self.store,
            self.me,
            apply=self._revoked,
            addresses=self.dialler.plan,
            push=self.transport.push_revocation,
        )
        self.discovery: Discovery | None = None  # started with the transport, if enabled
        self.events = EventBus()  # GET /v1/events: the page, scripts, follow modes
        self.web_links = LoginLinks()  # pli open
        self.uploads = Uploads(config.home / "uploads", limits.MAX_DOCUMENT_SIZE)
        self.uploads.clear()
        self.quota = Quota(self.store, self.layout, _limits(config))
        self.inbox = Inbox(
            self.store,
            self.layout,
            self.me,
            self._check_sender,
            quota=self.quota,
            on_event=self.events.publish,
        )
        self.outbox = Outbox(
            self.store,
            self.layout,
            self.me,
            self.dialler.connect,
            retry_min=config.retry_min,
            retry_max=config.retry_max,
            on_event=self.events.publish,
            # A lambda: the routing is made below, with this outbox.
            fallback=lambda peer, rows, early: self.mailbox_routing.post(peer, rows, early),  # noqa: PLW0108
        )
        self.mailbox_routing = MailboxRouting(
            self.store,
            self.layout,
            self.inbox,
            self.outbox,
            mailboxes=lambda: self.mailboxes,
            peer=self._paired_hex,
            later=lambda *arrived: self.receipts.received(*arrived),  # noqa: PLW0108 - built below
            card_arrived=lambda *arrived: self.peers.card_updated(*arrived),  # noqa: PLW0108
        )
        self.mailboxes = MailboxService(
            config.home,
            self.me,
            self._peer_cards,
            self.mailbox_routing.handle,
            retention=float(config.mailbox_retention),
            on_connected=lambda _url: self.outbox.wake_waiting(),
        )
        self.rendezvous = Rendezvous(  # pairing through the mailboxes
            self.mailboxes.connected,
            lambda: self.mailboxes.box,
            self.pairing.serve,
            self.me.peer_id.fingerprint,
        )
        self.peers = PeerDirectory(self.store, self.online, self._known_me, self.events.publish)
        self.archive = Archive(self.store, self.layout, self.me, self.outbox.progress)
        self.receipts = LaterReceipts(
            self.store,
            self.me,
            integrated=config.receipts_integrated,
            read=config.receipts_read,
            connect=self.dialler.connect,
            post=self.mailbox_routing.post_receipt,
            on_event=self.events.publish,
        )
        self.later = LaterRouting(self.archive, self.receipts)
        self.folders = folder_seam.build(self)  # [folders]: None when none is configured
        self._stop = asyncio.Event()
        self.started_at = time.time()

    # --- identity and profile ------------------------------------------------------

    def card(self) -> ProfileCard:
        addresses = list(self.config.advertise_addresses) or self._own_addresses()
        return own_card(self.me, self.profile, addresses)

    async def save_profile(self, **fields: Any) -> dict[str, Any]:
        """Change the profile (``profile.json``, on a worker thread) and the card built
        from it: the one way to change it while the daemon runs, which keeps it in memory.
        One change at a time: each reads the file and writes it whole."""
        async with self._profile_lock:
            self.profile = await asyncio.to_thread(save_profile, self.config.home, **fields)
        return self.profile

    async def card_mailboxes(self) -> dict[str, int]:
        """Our card lists the mailboxes joined: when the list changed (``pli mailbox
        add|remove``, or while the daemon was off) a new card goes to every paired peer,
        whose ``CardSender.sent`` records. The card's ``seq`` and the peers it goes to."""
        joined = self.mailboxes.joined()
        listed = self.profile.get("mailboxes")
        if listed == joined or (listed is None and not joined):  # nothing joined, ever
            return {"seq": self.card().seq, "sent_to": 0}
        await self.save_profile(mailboxes=joined)
        peers = self.cards.changed()
        card = self.card()
        self.mailbox_routing.post_card_soon(
            self.store.peers(), card.sign(self.me.identity), card.seq
        )
        log.info("our card lists %d mailbox(es): sent to %d peer(s)", len(joined), peers)
        return {"seq": self.card().seq, "sent_to": peers}

    def signed_card(self) -> bytes:
        return self.card().sign(self.me.identity)

    def _own_addresses(self) -> list[str]:
        host = self.config.listen_host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - comparing, not binding
            return []
        return [f"{host}:{self.transport.port or self.config.listen_port}"]

    def _discovery_interfaces(self) -> list[str] | None:
        """Where to announce: the configured interfaces, else the one we listen on.

        A daemon listening on one address (127.0.0.1 for the demo and the tests)
        must not announce itself on every interface of the machine.
        """
        if self.config.interfaces:
            return list(self.config.interfaces)
        try:
            listen = ipaddress.ip_address(self.config.listen_host)
        except ValueError:
            return None
        return None if listen.is_unspecified else [str(listen)]

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> Started:
        self.events.bind(asyncio.get_running_loop())
        paired = [row.peer_id for row in self.store.peers()]
        await asyncio.to_thread(self.quota.sweep, paired)  # before any transfer opens one
        await asyncio.to_thread(self.outbox.sweep)  # envelopes a crash left unqueued
        cancelled = await asyncio.to_thread(self.store.cancel_unpaired, CANCELLED_REMOVED)
        if cancelled:
            log.info("cancelled %d document(s) queued to peers no longer paired", cancelled)
        port = await self.transport.start(self.config.listen_host, self.config.listen_port)
        log.info(
            "listening for peers on %s:%d as %s",
            self.config.listen_host,
            port,
            self.me.peer_id.short,
        )
        if self.config.discovery:
            from p2p.net.discovery import Discovery  # zeroconf costs ~3 MiB: only when it is used

            self.discovery = Discovery(
                port=port,
                interfaces=self._discovery_interfaces(),
                own_secret=self.keys.discovery_secret,
                peer_secrets=self._peer_secrets,
                on_event=self._discovered,
            )
        return Started(port, self.me.peer_id.fingerprint)

    async def run(self) -> None:
        """Run until ``stop()``; the transport must already be started."""
        try:
            async with asyncio.TaskGroup() as group:
                outbox = group.create_task(self.outbox.run())
                self.revocations.resume(now=int(time.time()))
                sweeper = group.create_task(self._sweep_forever())
                receipts = group.create_task(self.receipts.run())
                group.create_task(self._join_mailboxes())
                rendezvous = group.create_task(self.rendezvous.run())
                folders = group.create_task(self.folders.run()) if self.folders else None
                if self.discovery is not None:
                    # Registration probes the LAN for ~1.2 s: not worth delaying readiness.
                    group.create_task(self.discovery.start())
                await self._stop.wait()
                outbox.cancel()
                sweeper.cancel()
                receipts.cancel()
                rendezvous.cancel()
                if folders is not None:
                    folders.cancel()
        except* PliError as failed:  # e.g. discovery on an interface that went away since load
            raise _first(failed) from None
        finally:
            self.dialler.close()
            await self.cards.close()
            await self.revocations.close()
            await self.pairing.close()
            await self.mailboxes.close()
            self.mailbox_routing.close()
            if self.discovery is not None:
                await self.discovery.stop()
            await self.transport.stop()
            await asyncio.to_thread(self.inbox.close, wait=True)  # commits under way finish
            self.store.close()
            log.info("stopped")

    def stop(self) -> None:
        self._stop.set()

    async def _sweep_forever(self) -> None:
        """Delete expired partial transfers now and then (also done at start)."""
        every = min(3600.0, self.config.partial_lifetime / 4)
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(OSError):
                await self.inbox.sweep([row.peer_id for row in self.store.peers()])

    # --- trust ------------------------------------------------------------------------------

    def paired_peer(self, peer_id: PeerId) -> PeerRow | None:
        row = self.store.peer(peer_id.hex)
        return row if row is not None and row.state is PeerState.PAIRED else None

    def _paired_hex(self, peer_hex: str) -> PeerRow | None:
        return self.paired_peer(PeerId(bytes.fromhex(peer_hex)))

    def _peer_cards(self) -> dict[str, bytes]:
        return {row.peer_id: row.card for row in self.store.peers()}

    async def _join_mailboxes(self) -> None:
        try:
            await self.mailboxes.reload()
        except PliError as exc:  # a damaged list or key: direct delivery goes on
            log.warning("mailboxes not joined: %s", exc)
            return
        await self.card_mailboxes()  # the list may have changed while we were off

    def _authorize(self, remote: RemotePeer) -> None:
        """Called inside the handshake, before anything more is sent to ``remote``."""
        if self.store.revocation(remote.peer_id.hex) is not None:
            log.warning("refused a handshake from %s: its key is revoked", remote.peer_id.short)
            raise AuthenticationFailed("revoked identity")
        row = self.paired_peer(remote.peer_id)
        if row is None or PublicIdentity(row.identity) != remote.identity:
            log.warning("refused a handshake from %s: not a paired peer", remote.peer_id.short)
            raise AuthenticationFailed("not a paired peer")

    def _check_sender(self, sender: PublicIdentity) -> None:
        if self.paired_peer(sender.peer_id) is None or self.store.revocation(sender.peer_id.hex):
            raise AuthenticationFailed("sender is not a paired peer")

    # --- connections ----------------------------------------------------------------------

    async def _serve_channel(self, channel: Channel) -> None:
        """Route what a peer sends: offers and bulk to the inbox, replies to the outbox."""
        peer_hex = channel.peer_id.hex
        with contextlib.suppress(StorageError):
            address = channel.remote_address if channel.initiator else None
            await asyncio.to_thread(self.store.peer_seen, peer_hex, int(time.time()), address)
        self.outbox.wake(peer_hex)
        self.revocations.peer_back(peer_hex)
        self.cards.channel_up(channel)  # our newest card, once per run and per change
        self.receipts.wake()
        unsolicited = TokenBucket(
            limits.UNSOLICITED_REPLY_BURST, limits.UNSOLICITED_REPLIES_PER_SECOND
        )
        try:
            while True:
                item = await channel.receive()
                if isinstance(item, memoryview):
                    await self.inbox.on_bulk(channel, item)
                elif isinstance(item, messages.Offer):
                    await self.inbox.on_offer(channel, channel.peer.identity, item)
                elif isinstance(item, messages.Accept | messages.Delivered | messages.Refuse):
                    self._reply(channel, item, unsolicited)
                elif isinstance(item, messages.CardUpdate):
                    await asyncio.to_thread(self._card_update, channel, item.card)
                elif isinstance(item, messages.LaterReceipt | messages.Noted):
                    await self._later_receipt(channel, item, unsolicited)
        except (ChannelClosed, ConnectionError):
            pass
        except (TransferRefused, TooManyReplies) as exc:
            log.warning("closing the connection with %s: %s", channel.peer_id.short, exc)
        finally:
            self.inbox.channel_closed(channel)

    def _reply(
        self,
        channel: Channel,
        reply: messages.Accept | messages.Delivered | messages.Refuse,
        unsolicited: TokenBucket,
    ) -> None:
        """To the sender waiting for it. Late answers happen; a stream of them is abuse."""
        if not self.outbox.on_reply(channel, reply) and not unsolicited.take():
            raise TooManyReplies("too many answers about documents it was not sent")

    async def _later_receipt(
        self,
        channel: Channel,
        item: messages.LaterReceipt | messages.Noted,
        unsolicited: TokenBucket,
    ) -> None:
        """Later receipts and their acknowledgements; a stream of refused ones is abuse."""
        if not await self.later.on_message(channel, item) and not unsolicited.take():
            raise TooManyReplies("too many receipts about documents it was not sent")

    def _card_update(self, channel: Channel, wire: bytes) -> None:
        """A newer signed card from a paired peer replaces the stored one; a new name waits."""
        try:
            card = ProfileCard.from_wire(wire)
        except RemoteProtocolError:
            return
        if card.identity == channel.peer.identity:
            self.peers.card_updated(channel.peer_id.hex, card, wire)

    def _known_me(self) -> naming.Known:
        """This practice as peer names are checked against it: its id, card name, fingerprint."""
        return naming.Known(self.me.peer_id.hex, self.card().name, self.me.peer_id.fingerprint)

    # --- discovery and pairing ----------------------------------------------------------

    def _peer_secrets(self) -> dict[str, bytes]:
        return {
            row.peer_id: row.discovery_secret
            for row in self.store.peers()
            if row.discovery_secret is not None
        }

    def _discovered(self, event: object) -> None:
        """A LAN announcement is a hint where to dial; the handshake proves who answers."""
        if isinstance(event, PeerSeen):
            if self.dialler.seen.get(event.peer_id) != event.address:
                self.dialler.seen[event.peer_id] = event.address
                self.outbox.wake(event.peer_id)
                self.revocations.peer_back(event.peer_id)
                self.dialler.connect_soon(event.peer_id)
        elif isinstance(event, PeerGone):
            self.dialler.seen.pop(event.peer_id, None)

    async def _invitation_changed(self, nameplate: str | None) -> None:
        self.rendezvous.listen_code(nameplate)
        if self.discovery is not None and self.discovery.running:
            await self.discovery.set_invitation(nameplate)

    async def _paired(self, peer: PairedPeer) -> None:
        await self.add_peer(peer.card_wire, list(peer.addresses), peer.discovery_secret)
        if self.discovery is not None:
            self.discovery.recheck()

    async def find_invitation(self, nameplate: str, timeout: float) -> str | None:
        if self.discovery is None:
            return None
        return await self.discovery.find_invitation(nameplate, timeout)

    # --- peers --------------------------------------------------------------------------------

    async def add_peer(
        self, card_wire: bytes, addresses: list[str], discovery_secret: bytes | None = None
    ) -> PeerRow:
        """Trust a peer (after pairing, or by explicit call with its signed card); its name
        is checked and its row committed as one step, on a worker thread."""
        card = ProfileCard.from_wire(card_wire)
        if card.identity == self.me.public:
            raise NotPaired("That is this practice's own identity.")
        if self.store.revocation(card.identity.peer_id.hex) is not None:
            raise NotPaired(
                "This key was revoked by its owner: it can no longer be trusted. Ask your "
                "colleague to pair with their new key."
            )
        peer_id = card.identity.peer_id
        known = list(dict.fromkeys([*addresses, *card.addresses]))
        row = PeerRow(
            peer_id=peer_id.hex,
            identity=card.identity.key,
            card=card_wire,
            name=card.name,
            fingerprint=peer_id.fingerprint,
            discovery_secret=discovery_secret,
            addresses=tuple(known),
            state=PeerState.PAIRED,
            paired_at=int(time.time()),
        )
        await self.peers.add(row)
        log.info("paired with %s", peer_id.short)
        self.outbox.wake(peer_id.hex)
        return row

    async def remove_peer(self, text: str) -> PeerRow:
        """Forget the paired peer named ``text``: nothing more goes to or comes from it."""
        row = self.peers.find(text)
        cancelled = await asyncio.to_thread(self.store.remove_peer, row.peer_id, CANCELLED_REMOVED)
        await self._cut(PeerId(bytes.fromhex(row.peer_id)))
        log.info(
            "removed peer %s (%d queued document(s) cancelled)", row.fingerprint[:5], cancelled
        )
        return row

    def online(self) -> set[str]:
        return {peer.hex for peer in self.transport.online()}

    # --- revocation ----------------------------------------------------------------------------

    async def _on_revocation(self, body: bytes, ip: str) -> tuple[int, str]:
        return await self.revocations.receive(body, ip)

    async def _revoked(self, revocation: Revocation) -> None:
        """A revocation was stored: cut that identity's session, forget where it was."""
        if revocation.identity == self.me.public:
            log.warning("this practice's own identity is revoked: make a new one (new home)")
            return
        await self._cut(revocation.peer_id)

    async def _cut(self, peer_id: PeerId) -> None:
        """No session with this peer any more, no hint where it is; discovery rechecks."""
        self.outbox.forget(peer_id.hex)  # what was queued to it is cancelled
        await self.transport.disconnect(peer_id)
        self.dialler.seen.pop(peer_id.hex, None)
        if self.discovery is not None:
            self.discovery.recheck()

    async def publish_revocation(
        self, revocation: Revocation, addresses: list[str]
    ) -> list[Pushed]:
        """Learn a statement and push it to our peers, the daemons on the LAN and ``addresses``."""
        lan = self.discovery.addresses() if self.discovery is not None else []
        return await self.revocations.publish(revocation, [*addresses, *lan])

    # --- what the local API asks ---------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """``GET /v1/status``: this daemon, its peers and its documents, counted."""
        return {
            "running": True,
            "name": self.card().name,
            "fingerprint": self.me.peer_id.fingerprint,
            "peer_id": self.me.peer_id.hex,
            "peer_port": self.transport.port,
            "peers": self.store.count_peers(),
            "peers_online": len(self.online()),
            "pending_names": self.peers.pending_count(),
            "uptime": round(time.time() - self.started_at, 1),
            **self.store.counts(),
            **self.peers.revocation(self.me.peer_id.hex),
            "signs_receipts": {
                layer: self.receipts.enabled(layer) for layer in ("integrated", "read")
            },
            "mailboxes": mailbox_rows(self.store, self.mailboxes),
        }

    def usage(self) -> dict[str, Any]:
        """Disk usage and the offers refused since start, with the last refused peer's name
        (``GET /v1/status``; blocking: it reads the disk's free space)."""
        usage = self.quota.report()
        last = usage["refusals"]["last_peer"]
        row = self.store.peer(last) if last else None
        usage["refusals"]["last_peer_name"] = row.name if row is not None else None
        return usage

    def identity(self) -> dict[str, Any]:
        """``GET /v1/identity``: this practice's profile, fingerprint and signed card."""
        card = self.card()
        return {
            "name": card.name,
            "profession": card.profession,
            "rpps": card.rpps,
            "practice": card.practice,
            "fingerprint": self.me.peer_id.fingerprint,
            "peer_id": self.me.peer_id.hex,
            "card": base64.b64encode(card.sign(self.me.identity)).decode(),
            "address": f"127.0.0.1:{self.transport.port}",
        }

    async def mark_integrated(self, text: str, error_code: int | None = None) -> dict[str, Any]:
        """The practice software took a received document in (or could not: ``error_code``,
        e.g. 902 unknown patient); its sender is told by a signed receipt (``daemon/later.py``)."""
        return await self.later.mark_integrated(text, error_code)

    async def mark_read(self, text: str) -> dict[str, Any]:
        """A person opened or exported a document: its sender is told, if the practice says so."""
        return await self.later.mark_read(text)

    async def send(
        self,
        targets: list[str],
        kind: str,
        metadata: dict[str, str],
        files: list[Attachment],
        *,
        doc_id: str | None = None,
    ) -> tuple[str, list[str]]:
        """Queue one document for the peers named ``targets``: (its id, their peer ids).

        ``doc_id`` (hex): an id chosen beforehand (the outbox folder records it first).
        """
        rows = [self._recipient(target) for target in targets]
        await asyncio.to_thread(_check_all, files)  # stat() and access() each file
        recipients = [Recipient(r.peer_id, _stored_card(r.card)) for r in rows]
        try:
            chosen = bytes.fromhex(doc_id) if doc_id is not None else None
            doc_id = await self.outbox.queue(recipients, kind, metadata, files, doc_id=chosen)
        except (MalformedMessage, FrameTooLarge) as exc:  # our own document's fields
            raise BadInput(
                f"This document cannot be sent: {exc}",
                french="Ce document ne peut pas être envoyé : un de ses champs est trop long "
                "ou mal formé.",
            ) from None
        self.events.publish(
            {"type": "document-queued", "id": doc_id, "to": [r.peer_id for r in rows]}
        )
        return doc_id, [r.peer_id for r in rows]

    def _recipient(self, target: str) -> PeerRow:
        """The paired peer ``target`` names; one whose key is revoked is refused in words
        (a form chosen before the revocation arrived still names it)."""
        try:
            return self.peers.find(target)
        except PeerUnknown:
            try:
                row = self.peers.find(target, states=(PeerState.REVOKED,))
            except PliError:
                row = None
            if row is None:
                raise
        raise NotPaired(
            f"The key of {row.name} is revoked: pli sends nothing to it any more. Call this "
            "colleague, and pair again with their new key.",
            french=f"La clé de {row.name} est révoquée : pli ne lui envoie plus rien. Appelez "
            "ce confrère, puis appairez-vous avec sa nouvelle clé.",
        )


@functools.lru_cache(maxsize=256)
def _stored_card(wire: bytes) -> ProfileCard:
    """A paired peer's stored card, parsed (its signature checked) once per version:
    every ``POST /v1/documents`` needs its recipients' cards."""
    return ProfileCard.from_wire(wire)


def _check_all(files: list[Attachment]) -> None:
    for attachment in files:
        attachment.check()


def _first(group: BaseExceptionGroup[PliError]) -> PliError:
    """The first failure of a group, to show one sentence rather than a tree."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
