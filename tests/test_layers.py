"""The architecture's dependency rules, read from the imports with ``ast``.

1. protocol/ is sans-IO: no asyncio, sockets, aiohttp, zeroconf, p2p, files.
2. p2p/ uses protocol/ only through what ``protocol/__init__.py`` exports.
3. Inside p2p/, each folder has a rank (``RANKS``): cli over api over daemon
   over the services and the network edges, over storage and the clinical
   documents, over errors and events. A module imports only from a lower rank
   or from its own concern; two services, or two network edges, never import
   each other. Every module of p2p/ must have a rank.
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
# p2p/ by folder, lowest first: a module imports only from a lower rank, or
# from its own concern (its folder; for services and the network edges, its own
# module or sub-package, so that two services never import each other).
RANKS = {
    "errors": 0, "events": 0,
    "storage": 1, "documents": 1,
    "net": 2, "services": 2,
    "daemon": 3,
    "api": 4,
    "cli": 5,
    "__main__": 6,
}  # fmt: skip
SIBLINGS_APART = {"net", "services"}


def concern(module: str) -> tuple[str, str]:
    """``p2p.services.pairing.wire`` -> ("services", "services.pairing")."""
    parts = module.split(".")[1:]
    folder = parts[0]
    unit = ".".join(parts[:2]) if folder in SIBLINGS_APART and len(parts) > 1 else folder
    return folder, unit


def p2p_modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "p2p").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


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
                if node.module == "p2p":  # ``from p2p import errors`` imports p2p.errors
                    found += [(node.lineno, f"p2p.{alias.name}") for alias in node.names]
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


def test_every_module_has_a_rank() -> None:
    unranked = [name for name in p2p_modules() if name != "p2p" and concern(name)[0] not in RANKS]
    assert unranked == []


@pytest.mark.parametrize("module", sorted(set(p2p_modules()) - {"p2p"}))
def test_imports_point_down_or_stay_within_their_concern(module: str) -> None:
    folder, unit = concern(module)
    offences = []
    for line, target in imports_of(p2p_modules()[module]):
        if not target.startswith("p2p."):
            continue
        other_folder, other_unit = concern(target)
        if other_unit == unit or RANKS[other_folder] < RANKS[folder]:
            continue
        offences.append(f"{module}:{line} imports {target}")
    assert offences == []
