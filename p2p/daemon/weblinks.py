"""One-time login links for the practice's page (``pli open``).

Only a caller of the local API (the user running pli, checked by the socket) can ask
for a link; the page redeems it once, then sets its own session cookie. A link is
256 random bits, lives ``LIFETIME`` seconds, and is spent by its first use, whether
that use succeeds or not. Links are kept in memory only: a restart spends them all.
When the page is served with TLS to the practice's network (``web_tls``) there are
no links: ``new_link`` gives the sign-in page, where a person gives a name and a
password.
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
        self.tls_fingerprint: str | None = None  # SHA-256 of the page's certificate (web_tls)
        self.listen: str | None = None  # where it listens, when that is not ``address``

    @property
    def password_sign_in(self) -> bool:
        """With TLS the page signs people in by name and password, never by a link alone."""
        return self.tls_fingerprint is not None

    def describe(self) -> dict[str, object]:
        """Where the page is and how one signs in (``GET /v1/status``'s ``page``)."""
        if self.address is None:
            return {"url": None, "failure": self.failure}
        scheme = "https" if self.password_sign_in else "http"
        return {
            "url": f"{scheme}://{self.address}/",
            "listen": self.listen or self.address,
            "tls_fingerprint": self.tls_fingerprint,
            "sign_in": "password" if self.password_sign_in else "link",
        }

    def new_link(self) -> str:
        """A fresh one-time URL for the page, or ``PageNotRunning`` in words."""
        if self.address is None:
            why = self.failure or "it is not started in this daemon"
            raise PageNotRunning(
                f"The practice's page is not available: {why}. Check the setting "
                "“web_listen” in config.toml and restart pli."
            )
        if self.password_sign_in:
            return f"https://{self.address}/signin"  # a name and a password, not a link
        now = time.monotonic()
        self._expire(now)
        while len(self._open) >= MAX_OPEN:
            self._open.pop(next(iter(self._open)))
        token = secrets.token_urlsafe(32)
        self._open[token] = now + self.lifetime
        return f"http://{self.address}/login/{token}"

    def redeem(self, token: str) -> bool:
        """True once for a valid, unexpired link; it is spent whatever the answer."""
        if self.password_sign_in:
            return False
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
