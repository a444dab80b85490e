"""The fuzz rule every decoder is held to (after h11's fuzz/afl-server.py habit).

Any input either parses or raises ``RemoteProtocolError``; any other exception
escapes and fails the test that called ``check_parses_or_refuses``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from protocol import RemoteProtocolError


def check_parses_or_refuses(parse: Callable[[Any], object], data: Any) -> None:
    with contextlib.suppress(RemoteProtocolError):
        parse(data)
