"""The page's client of the local API: aiohttp over the home's unix socket.

Errors come back as ``ApiError`` with the API's ``code``, its sentence (the CLI's
words) and its French one where written; ``words_refusals.said`` picks what the page
shows. A daemon that does not answer is an ``ApiError`` too, in words.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import msgspec
from aiohttp import web


class ApiError(Exception):
    """The local API refused or failed: ``code``, ``message``, ``status``, ``french``."""

    def __init__(self, code: str, message: str, status: int, french: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.french = french

    @classmethod
    def answered(cls, answer: Any, status: int) -> ApiError:
        """The error of an API answer ``{"error": {code, message, french?}}``."""
        error = answer.get("error", {}) if isinstance(answer, dict) else {}
        error = error if isinstance(error, dict) else {}
        french = error.get("french")
        return cls(
            str(error.get("code", "error")),
            str(error.get("message", "")),
            status,
            french if isinstance(french, str) else None,
        )

    @classmethod
    def unreachable(cls, exc: BaseException) -> ApiError:
        return cls(
            "daemon",
            f"The pli daemon did not answer ({exc}).",
            503,
            "Le démon pli ne répond pas : vérifiez qu'il tourne (pli status), puis rechargez "
            "la page.",
        )


class Api:
    """One aiohttp session on ``api.sock``, shared by the page's handlers."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.UnixConnector(path=str(self.socket_path))
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None, connect=5)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self, method: str, path: str, body: Any = None, data: Any = None) -> Any:
        """One JSON request; its answer, or ``ApiError``."""
        try:
            async with self.session.request(
                method, f"http://pli{path}", json=body, data=data
            ) as response:
                answer = msgspec.json.decode(await response.read())
        except (aiohttp.ClientError, OSError, msgspec.DecodeError) as exc:
            raise ApiError.unreachable(exc) from None
        if response.status >= 400:
            raise ApiError.answered(answer, response.status)
        return answer

    async def get(self, path: str) -> Any:
        return await self.call("GET", path)

    async def post(self, path: str, body: Any = None) -> Any:
        return await self.call("POST", path, body if body is not None else {})

    async def upload(self, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
        """Stream ``chunks`` to ``POST /v1/uploads``: {upload, size}."""
        answer: dict[str, Any] = await self.call("POST", "/v1/uploads", data=chunks)
        return answer

    async def release(self, upload: str) -> None:
        """``DELETE /v1/uploads/{upload}``: a file no document will name."""
        await self.call("DELETE", f"/v1/uploads/{quote(upload, safe='')}")

    @contextlib.asynccontextmanager
    async def stream(self, path: str) -> AsyncIterator[aiohttp.ClientResponse]:
        """A streamed GET (a file's bytes, the event stream); ``ApiError`` if refused."""
        try:
            async with self.session.get(f"http://pli{path}") as response:
                if response.status >= 400:
                    answer = await response.json(content_type=None)
                    raise ApiError.answered(answer, response.status)
                yield response
        except (aiohttp.ClientError, OSError) as exc:
            raise ApiError.unreachable(exc) from None


API: web.AppKey[Api] = web.AppKey("api", Api)
