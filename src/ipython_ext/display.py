"""What the extension shows: one-line notes, and the ``%mem`` table.

`MemoryTable` has both ``_repr_html_`` and ``_repr_pretty_``, so Jupyter shows
a rich table and a terminal shows aligned plain text.
"""

from __future__ import annotations

import html
from collections.abc import Sized
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from redis_memory.node import Node

from .session import is_reserved, plural

if TYPE_CHECKING:
    from redis_memory import Memory

__all__ = ["MemoryTable", "Row", "note"]


def note(shell: Any, text: str) -> None:
    """Show one line of text below the cell, in Jupyter and in a terminal."""
    shell.display_pub.publish(data={"text/plain": text}, metadata={})


@dataclass(frozen=True)
class Row:
    """One stored name: its type, its size and when it last changed."""

    name: str
    type: str
    size: str
    modified: datetime | None


def _type_name(value: Any) -> str:
    if isinstance(value, Node):
        return value._kind
    kind = type(value)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _size(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and not isinstance(value, Node):
        return " x ".join(str(side) for side in shape)
    if isinstance(value, Sized):
        return str(len(value))  # one round trip for a stored list or dict
    return ""


class MemoryTable:
    """The stored names of a namespace, as the value of ``%mem``.

    Parameters
    ----------
    namespace : str
        The namespace shown.
    where : str
        The server, described for the caption.
    rows : list of Row
        One per stored name, in storage order.
    """

    def __init__(self, namespace: str, where: str, rows: list[Row]) -> None:
        self.namespace = namespace
        self.where = where
        self.rows = rows

    @classmethod
    def read(cls, memory: Memory, where: str) -> MemoryTable:
        """Read the table: one round trip, plus one per stored list or dict."""
        store = memory._store
        mtimes = store.mtimes()
        rows = []
        for name, value in memory._root.items():
            if is_reserved(name):
                continue
            field = store.codec.key_aliases(name, "mem")[0].encode("utf-8")
            stamp = mtimes.get(field)
            modified = None if stamp is None else datetime.fromtimestamp(stamp / 1000)
            rows.append(Row(name, _type_name(value), _size(value), modified))
        return cls(memory._namespace, where, rows)

    @property
    def caption(self) -> str:
        """The line above the table: namespace, server and count."""
        return (
            f"namespace {self.namespace!r} on {self.where}: "
            f"{plural(len(self.rows), 'name')}"
        )

    def _cells(self) -> list[tuple[str, str, str, str]]:
        return [
            (
                row.name,
                row.type,
                row.size,
                "" if row.modified is None else f"{row.modified:%Y-%m-%d %H:%M:%S}",
            )
            for row in self.rows
        ]

    def __repr__(self) -> str:
        cells = self._cells()
        if not cells:
            return self.caption
        header = ("name", "type", "size", "modified")
        widths = [max(len(row[i]) for row in [header, *cells]) for i in range(4)]
        lines = [self.caption]
        for row in [header, *cells]:
            lines.append(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def _repr_html_(self) -> str:
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
            for row in self._cells()
        )
        head = "".join(
            f"<th>{title}</th>" for title in ("name", "type", "size", "modified")
        )
        return (
            '<table class="redis-memory">'
            f"<caption>{html.escape(self.caption)}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )
