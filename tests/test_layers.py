"""The architecture's dependency rules, read from the imports with ``ast``.

1. protocol/ is sans-IO: no asyncio, sockets, aiohttp, zeroconf, p2p, files.
2. p2p/ uses protocol/ only through what ``protocol/__init__.py`` exports.
3. Inside p2p/, services of one level do not import each other, and nothing
   imports the API or the CLI (``cli_*.py`` hold more of the CLI's commands).
   Below the services sits a foundation (errors, events, config, store, blobs)
   that every service may use and that imports no service: the outbox and the
   inbox persist through the store, they do not talk to it as a peer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BANNED_IN_PROTOCOL = {
    "asyncio", "socket", "aiohttp", "zeroconf", "p2p", "sqlite3", "subprocess",
    "selectors", "os", "io", "pathlib", "shutil", "tempfile", "time", "random",
}  # fmt: skip
# Services on the same level: none may import another.
SERVICES = {"discovery", "pairing", "transport", "outbox", "inbox", "keystore"}
# The foundation every service may use; it imports no service.
FOUNDATION = {"errors", "events", "config", "store", "blobs"}
TOP = {"api", "cli", "client", "daemon", "demo", "__main__", "render", "cli_pairing",
       "cli_documents", "export", "verify", "prescription"}  # fmt: skip


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found: list[tuple[int, str]] = []
    package = path.parent.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package if node.level == 1 else ""
                module = ".".join(part for part in (base, node.module or "") if part)
                if node.module is None:
                    found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
                    continue
                found.append((node.lineno, module))
            else:
                found.append((node.lineno, node.module or ""))
    return found


def test_protocol_is_sans_io() -> None:
    offences = []
    for path in sorted((ROOT / "protocol").rglob("*.py")):
        for line, module in imports_of(path):
            if module.split(".")[0] in BANNED_IN_PROTOCOL:
                offences.append(f"{path.name}:{line} imports {module}")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "open":
                offences.append(f"{path.name}:{node.lineno} calls open()")
    assert offences == []


def test_p2p_uses_only_the_protocol_facade() -> None:
    offences = [
        f"{path.name}:{line} imports {module}"
        for path in sorted((ROOT / "p2p").rglob("*.py"))
        for line, module in imports_of(path)
        if module.startswith("protocol.")
    ]
    assert offences == []


@pytest.mark.parametrize("service", sorted(SERVICES | FOUNDATION))
def test_services_do_not_import_each_other_or_the_top(service: str) -> None:
    path = ROOT / "p2p" / f"{service}.py"
    forbidden = SERVICES - {service} if service in SERVICES else SERVICES
    if not path.exists():
        pytest.skip(f"p2p/{service}.py does not exist yet")
    offences = []
    for line, module in imports_of(path):
        parts = module.split(".")
        if parts[0] == "p2p" and len(parts) > 1:
            name = parts[1]
            if name in forbidden | TOP:
                offences.append(f"{service}.py:{line} imports p2p.{name}")
    assert offences == []


def test_nothing_imports_the_api_or_the_cli() -> None:
    offences = []
    for path in sorted((ROOT / "p2p").rglob("*.py")):
        for line, module in imports_of(path):
            parts = module.split(".")
            if (
                parts[0] == "p2p"
                and len(parts) > 1
                and parts[1] in {"api", "cli"}
                and path.stem not in {"cli", "__main__", "demo"}
                and not path.stem.startswith("cli_")  # the CLI's commands, in several files
            ):
                offences.append(f"{path.name}:{line} imports {module}")
    assert offences == []
