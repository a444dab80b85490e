"""One-time login links for the practice's page (``pli open``).

Only a caller of the local API (the user running pli, checked by the socket) can ask
for a link; the page redeems it once, then sets its own session cookie. A link is
256 random bits, lives ``LIFETIME`` seconds, and is spent by its first use, whether
that use succeeds or not. Links are kept in memory only: a restart spends them all.
"""

from __future__ import annotations

import hmac
import secrets
import time

from p2p.errors import PliError

LIFETIME = 120.0  # seconds a login link may wait before it is used
MAX_OPEN = 32  # links not yet used; the oldest goes first


class PageNotRunning(PliError):
    code = "page-not-running"
    http_status = 503


class LoginLinks:
    """The links given out and not yet used, and where the page listens."""

    def __init__(self, lifetime: float = LIFETIME) -> None:
        self.lifetime = lifetime
        self._open: dict[str, float] = {}  # token -> deadline (monotonic)
        self.address: str | None = None  # "127.0.0.1:7718" once the page listens
        self.failure: str | None = None  # why the page could not start, in words

    def new_link(self) -> str:
        """A fresh one-time URL for the page, or ``PageNotRunning`` in words."""
        if self.address is None:
            why = self.failure or "it is not started in this daemon"
            raise PageNotRunning(
                f"The practice's page is not available: {why}. Check the setting "
                "“web_listen” in config.toml and restart pli."
            )
        now = time.monotonic()
        self._expire(now)
        while len(self._open) >= MAX_OPEN:
            self._open.pop(next(iter(self._open)))
        token = secrets.token_urlsafe(32)
        self._open[token] = now + self.lifetime
        return f"http://{self.address}/login/{token}"

    def redeem(self, token: str) -> bool:
        """True once for a valid, unexpired link; it is spent whatever the answer."""
        now = time.monotonic()
        self._expire(now)
        for known in list(self._open):
            if hmac.compare_digest(known.encode(), token.encode()):
                del self._open[known]
                return True
        return False

    def _expire(self, now: float) -> None:
        for token, deadline in list(self._open.items()):
            if deadline < now:
                del self._open[token]
