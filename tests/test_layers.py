"""The architecture's dependency rules, read from the imports with ``ast``.

1. protocol/ is sans-IO: no asyncio, sockets, aiohttp, zeroconf, p2p, files.
2. p2p/ uses protocol/ only through what ``protocol/__init__.py`` exports.
3. Inside p2p/, each folder has a rank (``RANKS``): cli over api and web (the
   practice's page, a client of the local API that never imports it) over daemon
   over the services and the network edges, over storage and the clinical
   documents, over errors and events. A module imports only from a lower rank
   or from its own concern; two services, or two network edges, never import
   each other. Every module of p2p/ must have a rank.
4. No import cycle among the modules of p2p/ and protocol/, counting every
   import (at the top, inside a function, or for type checking only): a
   cycle means two modules are one concern, or a helper lives in the wrong one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BANNED_IN_PROTOCOL = {
    "asyncio",
    "socket",
    "aiohttp",
    "zeroconf",
    "p2p",
    "sqlite3",
    "subprocess",
    "selectors",
    "os",
    "io",
    "pathlib",
    "shutil",
    "tempfile",
    "time",
    "random",
}
# p2p/ by folder, lowest first: a module imports only from a lower rank, or
# from its own concern (its folder; for services and the network edges, its own
# module or sub-package, so that two services never import each other).
RANKS = {
    "errors": 0,
    "events": 0,
    "ratelimit": 0,
    "storage": 1,
    "documents": 1,
    "net": 2,
    "services": 2,
    "daemon": 3,
    "api": 4,
    "web": 4,
    "cli": 5,
    "__main__": 6,
}
SIBLINGS_APART = {"net", "services"}


def concern(module: str) -> tuple[str, str]:
    """``p2p.services.pairing.wire`` -> ("services", "services.pairing")."""
    parts = module.split(".")[1:]
    folder = parts[0]
    unit = ".".join(parts[:2]) if folder in SIBLINGS_APART and len(parts) > 1 else folder
    return folder, unit


def is_package(module: str) -> bool:
    """``from p2p.documents import filenames`` names the package; its module is checked."""
    return (ROOT.joinpath(*module.split(".")) / "__init__.py").exists()


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
                if (node.module or "").split(".")[0] == "p2p":
                    # ``from p2p.documents import filenames`` imports p2p.documents.filenames
                    found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
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
        if not target.startswith("p2p.") or is_package(target):
            continue
        other_folder, other_unit = concern(target)
        if other_unit == unit or RANKS[other_folder] < RANKS[folder]:
            continue
        offences.append(f"{module}:{line} imports {target}")
    assert offences == []


# --- the import graph ----------------------------------------------------------------


def all_modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of p2p/ and protocol/ (packages included)."""
    found = {}
    for top in ("p2p", "protocol"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ``modules`` it imports (``from A import b`` means A.b
    when b is a module, else A)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([base] if base else [])])
                for alias in node.names:
                    child = f"{base}.{alias.name}"
                    targets.add(child if child in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph(all_modules())
    assert "p2p.cli.app" in graph["p2p.cli.setup"]  # from p2p.cli.app import State
    assert "protocol.limits" in graph["protocol.codec"]  # from . import limits
    assert "protocol" in graph["p2p.daemon.core"]  # the facade


def test_no_import_cycle() -> None:
    assert cycles(import_graph(all_modules())) == []
