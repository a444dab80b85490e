"""Pairing by fingerprint: ``pli peers add FINGERPRINT --address`` / ``pli peers accept``.

Part of the pairing service. The exchange itself (frames, commitment, check
code, checks) is ``protocol.FingerprintPairing``; this module only moves its
bytes over a ``Pipe``, bounds each step in time, and puts the people in the
loop: the requester's person reads the check code to the colleague, the
responder's person sees it next to the requester's full fingerprint and
accepts or refuses (``Attempts.confirm``).

A fingerprint is printed on letterheads, so anybody may knock: requests live
in memory only, at most ``MAX_REQUESTS`` at once and ``MAX_REQUESTS_PER_IP``
from one address, so that one machine cannot take every slot.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

from p2p.errors import AmbiguousPeer, BadInput, PeerUnknown
from p2p.services.pairing.attempts import (
    Attempt,
    Attempts,
    Kind,
    Me,
    PairingOutcome,
    Side,
    State,
)
from p2p.services.pairing.wire import (
    NOT_THAT_PEER_MESSAGE,
    OWN_FINGERPRINT_MESSAGE,
    Abort,
    Pipe,
    Reason,
    cancel,
    check_error,
    clean_addresses,
    garbled,
    parse,
    protocol_abort,
    receive,
    send,
    with_address,
)
from protocol import (
    FingerprintError,
    FingerprintPairing,
    FingerprintRole,
    LocalProtocolError,
    PairedPeer,
    PairingDeclined,
    PairingDone,
    PairingSend,
    RemoteProtocolError,
    ShowCheckCode,
    fingerprint_prefix,
    normalize_fingerprint,
)

log = logging.getLogger("pli.pairing")

#: Fingerprint requests being answered or waiting for a person, at once.
MAX_REQUESTS: Final = 8
#: ... of which from one IP address (below the total: one machine cannot hold them all).
MAX_REQUESTS_PER_IP: Final = 2


#: ``pli peers accept`` needs this many characters of the fingerprint (4 groups of 5,
#: check characters included: 80 bits of the key's hash). Making a key whose
#: fingerprint starts like a colleague's takes about 2^80 tries for 4 groups;
#: for one group (the old rule: any prefix) about 10^6, a few seconds.
MIN_ACCEPT_CHARS: Final = 20


def select_request(candidates: Sequence[tuple[str, str]], wanted: str) -> str:
    """The id of the one request ``wanted`` designates, among ``(id, fingerprint)`` pairs.

    ``wanted`` is a request id (made by this daemon, not by the requester) or at
    least ``MIN_ACCEPT_CHARS`` characters of the fingerprint, matching exactly one
    request. A name is not enough: the requester chose it.
    """
    text = wanted.strip()
    for request_id, _ in candidates:
        if request_id == text:
            return request_id
    prefix = fingerprint_prefix(text)
    if len(prefix) < MIN_ACCEPT_CHARS:
        raise BadInput(
            f"Type at least the first 4 groups of the fingerprint ({MIN_ACCEPT_CHARS} letters "
            "and digits), as your colleague reads it to you, or the request id shown by "
            "`pli peers pending`: a shorter part, or a name, could match a stranger's request."
        )
    found = [rid for rid, fp in candidates if fp.replace("-", "").startswith(prefix)]
    if not found:
        raise PeerUnknown(
            f"No pairing request with the fingerprint “{text}” is waiting. "
            "`pli peers pending` lists them; ask your colleague to run `pli peers add` again."
        )
    if len(found) > 1:
        raise AmbiguousPeer(f"“{text}” matches several requests; type the whole fingerprint.")
    return found[0]


def pretty(canonical: str) -> str:
    return "-".join(canonical[i : i + 5] for i in range(0, len(canonical), 5))


def host_of(address: str) -> str:
    """``"1.2.3.4:5"`` / ``"[::1]:5"`` → the host part, the unit of the per-IP limit."""
    host = address.rpartition(":")[0] if ":" in address else address
    return host.strip("[]")


class FingerprintService:
    """Fingerprint requests on both sides."""

    def __init__(self, me: Me, attempts: Attempts) -> None:
        self._me = me
        self._attempts = attempts
        self._busy: Counter[str] = Counter()  # requests held, by remote host

    # --- requester ---------------------------------------------------------------------------

    def requester_attempt(self, fingerprint: str, pipe: Pipe) -> Attempt:
        try:
            canonical = normalize_fingerprint(fingerprint)
        except FingerprintError as exc:
            self._attempts.spawn(pipe.close())
            raise BadInput(f"The fingerprint has a typo: {exc}.") from exc
        if self._me.identity.peer_id.matches_fingerprint(canonical):
            self._attempts.spawn(pipe.close())
            raise BadInput(OWN_FINGERPRINT_MESSAGE)
        attempt = Attempt(Kind.FINGERPRINT, Side.REQUESTER, fingerprint=pretty(canonical))
        return self._attempts.add(attempt)

    async def run_request(self, attempt: Attempt, pipe: Pipe) -> PairingOutcome:
        async with self._attempts.dialling(attempt, pipe):
            machine = self._machine(FingerprintRole.REQUESTER, attempt.fingerprint)
            try:
                async with asyncio.timeout(self._me.exchange_timeout):
                    await self._play(pipe, machine.start())
                    events = await self._step(machine, pipe, attempt)
                    await self._play(pipe, events)
            except TimeoutError:
                raise Abort.tell(Reason.TIMEOUT) from None
            attempt.sas = _code_of(events).code
            self._attempts.set_state(attempt, State.WAITING_FOR_PEER)
            try:
                async with asyncio.timeout(self._me.confirm_timeout):
                    answer = await self._step(machine, pipe, attempt)
            except TimeoutError:
                raise Abort.tell(Reason.NOT_ACCEPTED) from None
            peer = _paired(answer)
            attempt.peer = peer = with_address(peer, pipe.remote_address)
            return await self._attempts.store(attempt, peer)

    # --- responder ---------------------------------------------------------------------------

    async def serve(self, pipe: Pipe, first: bytes, deadline: float) -> None:
        with self._slot(pipe.remote_address):
            machine = self._machine(FingerprintRole.RESPONDER, None)
            try:
                async with asyncio.timeout_at(deadline):
                    await self._play(pipe, _feed(machine, first))
                    for _ in range(2):  # message 3, then message 4 (→ the check code)
                        events = _feed(machine, check_error(await receive(pipe)))
            except TimeoutError:
                raise Abort.tell(Reason.TIMEOUT) from None
            peer = _code_of(events).peer
            if peer is None:  # pragma: no cover - the responder's code comes with the peer
                raise garbled()
            self._replace_older(peer)
            attempt = self._attempts.add(Attempt(Kind.FINGERPRINT, Side.RESPONDER))
            log.info("pairing request from %s at %s", peer.peer_id.short, pipe.remote_address)
            with self._attempts.failing(attempt):
                yes = await self._await_person(attempt, pipe, peer)
                await self._play(pipe, machine.decide(yes))
                if not yes:
                    raise Abort(attempt.reason or Reason.YOU_DECLINED, message=attempt.message)
                await self._attempts.store(attempt, peer)

    @contextmanager
    def _slot(self, remote_address: str) -> Iterator[None]:
        host = host_of(remote_address)
        if self._busy.total() >= MAX_REQUESTS or self._busy[host] >= MAX_REQUESTS_PER_IP:
            raise Abort.tell(Reason.BUSY)
        self._busy[host] += 1
        try:
            yield
        finally:
            self._busy[host] -= 1
            if self._busy[host] <= 0:
                del self._busy[host]

    def _replace_older(self, peer: PairedPeer) -> None:
        """A retry from the same identity replaces its older pending request."""
        for other in self._attempts.by_id.values():
            if (
                other.side is Side.RESPONDER
                and other.peer is not None
                and other.peer.peer_id == peer.peer_id
                and other.decision is not None
                and not other.decision.done()
            ):
                other.reason = Reason.REPLACED
                other.decision.cancel()

    async def _await_person(self, attempt: Attempt, pipe: Pipe, peer: PairedPeer) -> bool:
        """Wait for ``confirm(id, yes)``, watching that the requester is still there."""
        decision = self._attempts.expect_decision(attempt, peer, peer.sas)
        watch = asyncio.ensure_future(receive(pipe))  # any frame now ends the request
        waiting: set[asyncio.Future[Any]] = {decision, watch}
        try:
            async with asyncio.timeout(self._me.confirm_timeout):
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            raise Abort.tell(Reason.CONFIRM_TIMEOUT) from None
        finally:
            attempt.decision = None
            await cancel(watch)
        if decision.cancelled():  # replaced by a newer request, or we are stopping
            if self._attempts.closed:
                raise Abort.tell(Reason.STOPPED)
            return False  # the older request is declined (attempt.reason: replaced)
        if decision.done():
            return decision.result()
        parse(watch.result(), "", ())  # raises: the requester's error frame, or garbage
        raise garbled()  # pragma: no cover - parse() always raises for type ""

    # --- helpers -----------------------------------------------------------------------------

    def _machine(self, role: FingerprintRole, fingerprint: str | None) -> FingerprintPairing:
        me = self._me
        try:
            return FingerprintPairing(
                role,
                me.identity,
                card=me.signed_card(),
                discovery_secret=me.discovery_secret,
                addresses=clean_addresses(me.addresses()),
                now=int(self._attempts.now()),
                fingerprint=fingerprint,
            )
        except LocalProtocolError as exc:
            log.error("cannot start a pairing: %s", exc)
            raise Abort.tell(Reason.LOCAL_SETUP) from exc

    @staticmethod
    async def _step(machine: FingerprintPairing, pipe: Pipe, attempt: Attempt) -> list[Any]:
        data = check_error(await receive(pipe))
        try:
            return machine.receive(data)
        except RemoteProtocolError as exc:
            abort = protocol_abort(exc)
            if abort.reason is Reason.NOT_THAT_PEER:
                message = NOT_THAT_PEER_MESSAGE.format(
                    address=pipe.remote_address, fingerprint=attempt.fingerprint
                )
                abort = Abort(Reason.NOT_THAT_PEER, message=message)  # tell it nothing
            raise abort from exc

    @staticmethod
    async def _play(pipe: Pipe, events: list[Any]) -> None:
        for event in events:
            if isinstance(event, PairingSend):
                await send(pipe, event.data)


def _feed(machine: FingerprintPairing, data: bytes) -> list[Any]:
    try:
        return machine.receive(data)
    except RemoteProtocolError as exc:
        raise protocol_abort(exc) from exc


def _code_of(events: list[Any]) -> ShowCheckCode:
    for event in events:
        if isinstance(event, ShowCheckCode):
            return event
    raise garbled()  # pragma: no cover - the machine always shows a code at this step


def _paired(events: list[Any]) -> PairedPeer:
    for event in events:
        if isinstance(event, PairingDone):
            return event.peer
        if isinstance(event, PairingDeclined):
            raise Abort(Reason.DECLINED)
    raise garbled()  # pragma: no cover - message 5 always ends the exchange
