"""How the CLI prints: JSON Lines with ``--json``, rich on a terminal, plain text otherwise.

``Output`` is the only thing commands print through (errors go to stderr through
``click.echo(..., err=True)`` in the CLI). Text that came from a peer (names, subjects,
file names, a letter's text) may contain terminal escape sequences or rich markup: it is
always passed through ``clean`` and shown as literal text, never interpreted.

rich is imported only when a table or a progress bar is drawn on a terminal.
"""

from __future__ import annotations

import json
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: object, *, keep_newlines: bool = False) -> str:
    """A string safe to print on a terminal: no escape sequences, no invisible controls."""
    value = "" if text is None else str(text)
    if not keep_newlines:
        value = value.replace("\n", " ").replace("\t", " ")
    value = _CONTROL.sub("", value)
    return "".join(ch for ch in value if unicodedata.category(ch) not in ("Cf", "Cs"))


def when(timestamp: float | None) -> str:
    """A Unix time as local ``YYYY-MM-DD HH:MM``; ``-`` for none."""
    if not timestamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover - the loop always returns


class Output:
    def __init__(self, *, json_lines: bool) -> None:
        self.json = json_lines
        self.tty = sys.stdout.isatty() and not json_lines

    def emit(self, obj: dict[str, Any]) -> None:
        """One JSON line (``--json`` only)."""
        click.echo(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))

    def line(self, text: str = "") -> None:
        click.echo(text)

    def fields(self, pairs: Iterable[tuple[str, object]]) -> None:
        """``label: value`` lines, labels aligned; empty values are left out."""
        shown = [(label, clean(value)) for label, value in pairs if value not in (None, "")]
        width = max((len(label) for label, _ in shown), default=0)
        for label, value in shown:
            click.echo(f"{label + ':':<{width + 1}} {value}")

    def listing(
        self,
        rows: Sequence[dict[str, Any]],
        headers: Sequence[str],
        cells: Callable[[dict[str, Any]], Sequence[object]],
        *,
        empty: str,
    ) -> None:
        """``rows`` as JSON Lines with ``--json``; else a table of ``cells(row)`` each."""
        if self.json:
            for row in rows:
                self.emit(row)
            return
        self.table(headers, [cells(row) for row in rows], empty=empty)

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[object]], *, empty: str
    ) -> None:
        """A table: rich on a terminal, aligned plain text otherwise."""
        if not rows:
            click.echo(empty)
            return
        cells = [[clean(cell) for cell in row] for row in rows]
        if self.tty:
            from rich.console import Console
            from rich.table import Table
            from rich.text import Text

            table = Table(box=None, header_style="bold", pad_edge=False)
            for header in headers:
                table.add_column(header, overflow="fold")
            for row in cells:
                table.add_row(*(Text(cell) for cell in row))
            Console().print(table)
            return
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
        for row in [list(headers), *cells]:
            click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
