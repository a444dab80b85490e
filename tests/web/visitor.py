"""A browser's requests, written out by hand: exact Host, Origin and cookie headers.

The security tests use this rather than a real browser so that each test sends
exactly the request an attacker would (a rebinding Host, a foreign Origin, no
CSRF token); ``tests/web/test_chromium.py`` drives the real browser.
"""

from __future__ import annotations

import http.client
import re
import ssl
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class Visitor:
    """One browser profile on the page at ``base`` (``http://127.0.0.1:PORT``, or
    ``https://...`` checked against ``tls``)."""

    base: str
    cookies: dict[str, str] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None
    set_cookies: list[str] = field(default_factory=list)  # every Set-Cookie header seen

    @property
    def host(self) -> str:
        return urlsplit(self.base).netloc

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Answer:
        parts = urlsplit(self.base)
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=30, context=self.tls
            )
        else:
            connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        sent = {"Host": self.host}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        sent.update(headers or {})
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            data = response.read()
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    self.set_cookies.append(value)
                    key, _, rest = value.partition("=")
                    self.cookies[key] = rest.split(";")[0]
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        finally:
            connection.close()

    def get(self, path: str, **headers: str) -> Answer:
        return self.request("GET", path, headers=headers)

    def login(self, url: str) -> Answer:
        return self.get(urlsplit(url).path)

    def csrf(self, path: str = "/") -> str:
        found = re.search(r'data-csrf="([^"]+)"', self.get(path).text)
        assert found is not None, "no CSRF token on the page"
        return found.group(1)

    def post_form(self, path: str, fields: dict[str, str], **headers: str) -> Answer:
        sent = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": f"{urlsplit(self.base).scheme}://{self.host}",
            **headers,
        }
        return self.request("POST", path, urlencode(fields).encode(), sent)

    def post_multipart(
        self,
        path: str,
        fields: dict[str, str],
        files: list[tuple[str, bytes, str]],
        after: dict[str, str] | None = None,
        **headers: str,
    ) -> Answer:
        """A multipart form: the fields, then each (name, content, type) as ``files``,
        then the fields ``after`` (a client that orders them so)."""
        boundary = uuid.uuid4().hex

        def field(key: str, value: str) -> bytes:
            return (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
                f"{value}\r\n".encode()
            )

        chunks = [field(key, value) for key, value in fields.items()]
        for name, content, media_type in files:
            head = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{name}"\r\nContent-Type: {media_type}\r\n\r\n'
            )
            chunks += [head.encode(), content, b"\r\n"]
        chunks += [field(key, value) for key, value in (after or {}).items()]
        chunks.append(f"--{boundary}--\r\n".encode())
        sent = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Origin": f"http://{self.host}",
            **headers,
        }
        return self.request("POST", path, b"".join(chunks), sent)
