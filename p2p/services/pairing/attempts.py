"""Pairing attempts: what a person follows or acts on, and the tasks behind them.

Part of the pairing service. Everything a person follows is an *attempt* with
an id (an invitation is one from ``invite()`` on; ``wait``/``status`` also take
its nameplate). States: ``waiting`` (invitation open, or machines talking) →
``needs-confirmation`` (a person here must ``confirm(id, yes)``) →
``waiting-for-peer`` (decided here, not there) → ``paired`` | ``failed`` (with
a reason code and a sentence for a person). ``Attempts`` keeps them, the
background tasks and timers, and stores a peer once both sides agreed; the code
and fingerprint exchanges (``code``, ``fingerprint``) drive them.

Size (about 400 lines): the attempt's values and ``Attempts``, the one place that
changes them (states, tasks, timers, the people's decisions), read best together.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from p2p.errors import BadInput, PairingFailed, PliError
from p2p.services.pairing.wire import (
    SENTENCES,
    YOU_DECLINED_MESSAGE,
    YOU_REFUSED_MESSAGE,
    Abort,
    Pipe,
    Reason,
    hang_up,
)
from protocol import LocalIdentity, PairedPeer

log = logging.getLogger("pli.pairing")

KEEP_FINISHED: Final = 3600.0  # a finished attempt stays visible to status()/wait() this long
MAX_FINISHED: Final = 64


class Kind(enum.StrEnum):
    CODE = "code"  # pli pair invite / accept
    FINGERPRINT = "fingerprint"  # pli peers add / accept


class Side(enum.StrEnum):
    INVITER = "inviter"  # made the code, listens
    INVITEE = "invitee"  # typed the code, dials
    REQUESTER = "requester"  # typed the fingerprint, dials
    RESPONDER = "responder"  # was asked; a person accepts or refuses


class State(enum.StrEnum):
    WAITING = "waiting"
    NEEDS_CONFIRMATION = "needs-confirmation"
    WAITING_FOR_PEER = "waiting-for-peer"
    PAIRED = "paired"
    FAILED = "failed"


FINAL_STATES: Final = frozenset({State.PAIRED, State.FAILED})
#: What ``wait`` returns on by default: a person must act, or it is over.
ACTION_STATES: Final = frozenset({State.NEEDS_CONFIRMATION, State.PAIRED, State.FAILED})


@dataclass(frozen=True)
class PairingOutcome:
    """A finished pairing: the peer was stored."""

    peer: PairedPeer
    sas: str
    role: Side


@dataclass(frozen=True)
class PendingPairing:
    """An attempt waiting for this side's person: ``confirm(id, yes)``.

    ``fingerprint`` is the full fingerprint the other side proved in the
    handshake: show it next to ``sas``, so the person accepting can compare
    both with their colleague.
    """

    id: str
    kind: Kind
    role: Side
    sas: str
    peer_name: str
    fingerprint: str
    profession: str
    practice: str
    rpps: str


@dataclass(frozen=True)
class PairingStatus:
    """Where one attempt stands. ``reason`` and ``message`` are set when ``state`` is
    ``failed``: the reason code (``protocol.PairingReason``) and a sentence."""

    id: str
    kind: Kind
    role: Side
    state: State
    nameplate: str | None = None
    expires_at: float | None = None
    sas: str | None = None
    peer_name: str | None = None
    fingerprint: str | None = None
    peer_id: str | None = None
    message: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for the local API: every field, in order, the enums as strings."""
        values = ((f.name, getattr(self, f.name)) for f in dataclasses.fields(self))
        return {name: str(v) if isinstance(v, enum.Enum) else v for name, v in values}


class Attempt:
    """One pairing attempt on this side."""

    def __init__(
        self,
        kind: Kind,
        side: Side,
        *,
        nameplate: str | None = None,
        expires_at: float | None = None,
        fingerprint: str | None = None,
    ) -> None:
        self.id = secrets.token_hex(6)
        self.kind = kind
        self.side = side
        self.nameplate = nameplate
        self.expires_at = expires_at
        self.fingerprint = fingerprint  # as typed (requester), until the peer is known
        self.state = State.WAITING
        self.sas: str | None = None
        self.peer: PairedPeer | None = None
        self.reason: Reason | None = None
        self.message: str | None = None
        self.finished_at: float | None = None
        self.decision: asyncio.Future[bool] | None = None  # set while a person may answer
        self.changed = asyncio.Event()  # set, then replaced, at every change of state

    def status(self) -> PairingStatus:
        peer = self.peer
        return PairingStatus(
            id=self.id,
            kind=self.kind,
            role=self.side,
            state=self.state,
            nameplate=self.nameplate,
            expires_at=self.expires_at,
            sas=self.sas,
            peer_name=peer.card.name if peer is not None else None,
            fingerprint=peer.peer_id.fingerprint if peer is not None else self.fingerprint,
            peer_id=peer.peer_id.hex if peer is not None else None,
            message=self.message,
            reason=str(self.reason) if self.reason is not None else None,
        )

    def pending(self) -> PendingPairing | None:
        peer = self.peer
        if self.state is not State.NEEDS_CONFIRMATION or peer is None:
            return None
        card = peer.card
        return PendingPairing(
            id=self.id,
            kind=self.kind,
            role=self.side,
            sas=self.sas or "",
            peer_name=card.name,
            fingerprint=peer.peer_id.fingerprint,
            profession=card.profession,
            practice=card.practice,
            rpps=card.rpps,
        )


class Attempts:
    """The attempts of one daemon, its background tasks and timers, and the people."""

    def __init__(
        self,
        *,
        now: Callable[[], float],
        store_peer: Callable[[PairedPeer], Coroutine[Any, Any, None]],
        on_sweep: Callable[[float], bool],
        on_forget: Callable[[list[Attempt]], None],
        on_change: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.now = now
        self._on_change = on_change  # told {type, id, kind, role, state}: never a name or code
        self._store_peer = store_peer
        self._on_sweep = on_sweep  # fails expired invitations; True if any did
        self._on_forget = on_forget  # unlinks forgotten attempts from their invitations
        self.by_id: dict[str, Attempt] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self.closed = False

    def add(self, attempt: Attempt) -> Attempt:
        self.sweep()
        self.by_id[attempt.id] = attempt
        return attempt

    def sweep(self) -> None:
        """Expire invitations; forget old finished attempts."""
        now = self.now()
        self._on_sweep(now)
        finished = sorted(
            (a for a in self.by_id.values() if a.finished_at is not None),
            key=lambda a: a.finished_at or 0.0,
        )
        excess = len(finished) - MAX_FINISHED
        dropped = [
            attempt
            for index, attempt in enumerate(finished)
            if index < excess or (attempt.finished_at or 0.0) < now - KEEP_FINISHED
        ]
        for attempt in dropped:
            del self.by_id[attempt.id]
        if dropped:
            self._on_forget(dropped)

    def set_state(self, attempt: Attempt, state: State) -> None:
        if attempt.state in FINAL_STATES or attempt.state is state:
            return
        attempt.state = state
        changed, attempt.changed = attempt.changed, asyncio.Event()
        changed.set()
        if self._on_change is not None:
            self._on_change(
                {
                    "type": "pairing-changed",
                    "id": attempt.id,
                    "kind": str(attempt.kind),
                    "role": str(attempt.side),
                    "state": str(state),
                }
            )

    def finish(
        self, attempt: Attempt, state: State, reason: Reason | None = None, message: str = ""
    ) -> None:
        if attempt.state in FINAL_STATES:
            return
        if state is State.FAILED:
            attempt.reason = reason or Reason.REJECTED
            attempt.message = message or SENTENCES[attempt.reason]
        attempt.finished_at = self.now()
        self.set_state(attempt, state)

    def fail(self, attempt: Attempt, abort: Abort) -> None:
        self.finish(attempt, State.FAILED, abort.reason, abort.message)

    @contextlib.contextmanager
    def failing(self, attempt: Attempt) -> Iterator[None]:
        """Whatever ends this block early marks ``attempt`` failed, with a reason."""
        try:
            yield
        except Abort as abort:
            self.fail(attempt, abort)
            raise
        except asyncio.CancelledError:
            self.finish(attempt, State.FAILED, Reason.STOPPED)
            raise
        except Exception:
            self.finish(attempt, State.FAILED, Reason.REJECTED)
            raise

    @contextlib.asynccontextmanager
    async def dialling(self, attempt: Attempt, pipe: Pipe) -> AsyncIterator[None]:
        """The dialling side's exchange on ``pipe`` (code invitee, fingerprint requester).

        Whatever ends the block early marks ``attempt`` failed (``failing``) and
        tells the peer why; an ``Abort`` leaves as ``PairingFailed`` with its reason
        code. The pipe is closed however the block ends.
        """
        try:
            with self.failing(attempt):
                yield
        except Abort as abort:
            await hang_up(pipe, abort)
            raise PairingFailed(abort.message, reason=str(abort.reason)) from None
        except asyncio.CancelledError:
            await hang_up(pipe, Abort.tell(Reason.STOPPED))
            raise
        finally:
            await pipe.close()

    def expect_decision(self, attempt: Attempt, peer: PairedPeer, sas: str) -> asyncio.Future[bool]:
        """Show ``sas`` and ``peer`` for ``attempt``; a person answers through ``confirm``."""
        decision: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        attempt.peer, attempt.sas, attempt.decision = peer, sas, decision
        self.set_state(attempt, State.NEEDS_CONFIRMATION)
        return decision

    async def store(self, attempt: Attempt, peer: PairedPeer) -> PairingOutcome:
        try:
            await self._store_peer(peer)
        except PliError as exc:
            raise Abort(Reason.SAVE_FAILED, message=exc.message) from exc
        except Exception as exc:
            log.exception("could not save the peer %s", peer.peer_id.short)
            raise Abort(Reason.SAVE_FAILED) from exc
        log.info("paired with %s (%s)", peer.peer_id.short, attempt.side)
        self.finish(attempt, State.PAIRED)
        return PairingOutcome(peer, attempt.sas or peer.sas, attempt.side)

    # --- people ------------------------------------------------------------------------------

    def pending(self) -> list[PendingPairing]:
        return [p for p in (a.pending() for a in self.by_id.values()) if p is not None]

    def confirm(self, attempt_id: str, yes: bool) -> PairingStatus:
        attempt = self.by_id.get(attempt_id)
        decision = attempt.decision if attempt is not None else None
        if attempt is None or decision is None or decision.done():
            raise BadInput("Nothing is waiting for a confirmation under this id.")
        decision.set_result(bool(yes))
        # The exchange task acts on it soon; the state moves now, so that a wait()
        # right after this call does not return the question again.
        if yes:
            self.set_state(attempt, State.WAITING_FOR_PEER)
        elif attempt.side is Side.RESPONDER:
            self.finish(attempt, State.FAILED, Reason.YOU_DECLINED, YOU_DECLINED_MESSAGE)
        else:
            self.finish(attempt, State.FAILED, Reason.YOU_REFUSED, YOU_REFUSED_MESSAGE)
        return attempt.status()

    async def wait(
        self, attempt: Attempt, timeout: float, until: Collection[State]
    ) -> PairingStatus:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while True:
            self.sweep()
            remaining = deadline - loop.time()
            if attempt.state in until or remaining <= 0:
                return attempt.status()
            if attempt.state is State.WAITING and attempt.expires_at is not None:
                remaining = min(remaining, max(0.0, attempt.expires_at - self.now()) + 0.05)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await attempt.changed.wait()

    # --- tasks and timers --------------------------------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coroutine)
        except RuntimeError:  # no running loop (a synchronous caller): nothing to schedule
            coroutine.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            exc = task.exception()
            if exc is not None and not isinstance(exc, PliError):  # expected ones: in attempts
                log.error("pairing task failed", exc_info=exc)

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            callback()

        handle = loop.call_later(delay + 0.05, fire)
        self._timers.add(handle)

    async def close(self) -> None:
        """Fail what is running, cancel the tasks and timers."""
        self.closed = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for attempt in list(self.by_id.values()):
            self.finish(attempt, State.FAILED, Reason.STOPPED)
            if attempt.decision is not None and not attempt.decision.done():
                attempt.decision.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)


@dataclass(frozen=True)
class Me:
    """What this practice brings to every exchange, and the time limits."""

    identity: LocalIdentity
    signed_card: Callable[[], bytes]
    discovery_secret: bytes
    addresses: Callable[[], Sequence[str]]
    exchange_timeout: float
    confirm_timeout: float
