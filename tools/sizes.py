"""Module and function sizes of the code, read with ``ast`` (the style rule: modules under
~400 lines, functions under ~50, or a reason written at the module's top).

    python tools/sizes.py                 # p2p/ and protocol/, as Markdown tables
    python tools/sizes.py --modules 300   # list modules from 300 lines (default 400)
    python tools/sizes.py --functions 40  # list functions from 40 lines (default 51)
    python tools/sizes.py --root /elsewhere p2p

A function's size runs from its first decorator to its last line, as an editor shows it.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("p2p", "protocol")


def modules(root: Path, folders: tuple[str, ...]) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((root / folder).rglob("*.py"))


def functions(tree: ast.AST) -> Iterator[tuple[str, int, int]]:
    """(qualified name, first line, line count) of every function, nested ones included."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    yield name, first, (child.end_lineno or child.lineno) - first + 1
                yield from walk(child, f"{name}.")

    yield from walk(tree, "")


def report(root: Path, folders: tuple[str, ...], module_from: int, function_from: int) -> str:
    sized, long_functions, total = [], [], 0
    for path in modules(root, folders):
        text = path.read_text()
        lines = len(text.splitlines())
        total += lines
        name = str(path.relative_to(root))
        sized.append((lines, name))
        for function, first, count in functions(ast.parse(text)):
            if count >= function_from:
                long_functions.append((count, f"{name}:{first}", function))
    out = [f"{len(sized)} modules, {total} lines in {', '.join(folders)}.", ""]
    out += [f"Modules of {module_from} lines or more:", "", "| lines | module |", "|---:|---|"]
    out += [f"| {n} | {name} |" for n, name in sorted(sized, reverse=True) if n >= module_from]
    out += ["", f"Functions of {function_from} lines or more:", ""]
    out += ["| lines | where | function |", "|---:|---|---|"]
    out += [f"| {n} | {where} | {fn} |" for n, where, fn in sorted(long_functions, reverse=True)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", default=list(FOLDERS))
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this one)")
    parser.add_argument("--modules", type=int, default=400, metavar="LINES")
    parser.add_argument("--functions", type=int, default=51, metavar="LINES")
    args = parser.parse_args()
    print(report(args.root, tuple(args.folders), args.modules, args.functions))


if __name__ == "__main__":
    main()
