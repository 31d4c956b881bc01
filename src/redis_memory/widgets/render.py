"""HTML fragments of the live view: rows, summaries and the status line.

Every piece of stored data, and every error text, passes through
:func:`html.escape` here before it becomes HTML. Nothing else in the widgets
package builds HTML from data.
"""

from __future__ import annotations

import html
import reprlib
from collections.abc import Iterable
from typing import Any

__all__ = [
    "CONTAINERS",
    "Row",
    "is_container",
    "key_text",
    "message_html",
    "page_html",
    "rows_html",
    "same",
    "status_html",
    "summary_html",
    "type_text",
]

# The values that the view expands: what a stored list or dict reads back as.
CONTAINERS = (list, dict)

# One style sheet, repeated at the start of every fragment because each HTML
# widget may be drawn on its own. The class names carry a prefix, because the
# rules apply to the whole page.
_STYLE = (
    "<style>"
    ".rm-view{font-family:var(--jp-code-font-family,monospace);"
    "font-size:var(--jp-code-font-size,12px);line-height:1.45}"
    ".rm-view td{padding:1px 12px 1px 0;vertical-align:top;text-align:left}"
    ".rm-view .rm-key{font-weight:bold}"
    ".rm-view .rm-type,.rm-view .rm-note{color:#777}"
    ".rm-view .rm-note{font-style:italic}"
    ".rm-view .rm-value{white-space:pre-wrap;word-break:break-all}"
    ".rm-view .rm-changed,.rm-view.rm-changed{background:#fff3b0;color:#111}"
    "</style>"
)
_STATE_COLORS = {"connected": "#1a7f37", "reconnecting": "#b35c00"}
_ERROR_COLOR = "#c62828"

_repr = reprlib.Repr()
_repr.maxlevel = 3
_repr.maxstring = 120
_repr.maxother = 120
_repr.maxlong = 60
for _name in ("maxlist", "maxtuple", "maxset", "maxfrozenset", "maxdict", "maxdeque"):
    setattr(_repr, _name, 8)

Row = tuple[str, Any, bool]
"""One scalar item: its key as text, its value, and whether it changed last."""


def is_container(value: object) -> bool:
    """Return whether the view shows ``value`` as an expandable list or dict."""
    return type(value) in CONTAINERS


def key_text(key: object, parent: object, *, top_level: bool) -> str:
    """Return how the view labels ``key`` inside ``parent`` (not yet escaped).

    Top-level names appear as they are, list items as ``[i]`` and dict keys
    as their shortened ``repr``.
    """
    if top_level:
        return str(key)
    if type(parent) is list:
        return f"[{key}]"
    return _repr.repr(key)


def type_text(value: object) -> str:
    """Return the type of ``value`` and, where it has one, its size."""
    kind = type(value).__name__
    if isinstance(value, dict):
        return f"{kind} · {_count(len(value), 'key')}"
    if isinstance(value, str):
        return f"{kind} · {_count(len(value), 'char')}"
    if isinstance(value, (bytes, bytearray)):
        return f"{kind} · {_count(len(value), 'byte')}"
    try:
        size = len(value)  # type: ignore[arg-type]
    except Exception:  # no len(), or one that fails such as a 0-d numpy array
        return kind
    return f"{kind} · {_count(size, 'item')}"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def rows_html(rows: Iterable[Row]) -> str:
    """Return a table with one row per scalar item: key, type and shortened repr."""
    lines = [_STYLE, '<table class="rm-view" style="border-collapse:collapse">']
    for key, value, changed in rows:
        marked = ' class="rm-changed"' if changed else ""
        lines.append(
            f"<tr{marked}>"
            f'<td class="rm-key">{_escape(key)}</td>'
            f'<td class="rm-type">{_escape(type_text(value))}</td>'
            f'<td class="rm-value">{_escape(_repr.repr(value))}</td>'
            "</tr>"
        )
    lines.append("</table>")
    return "".join(lines)


def summary_html(key: str, value: object, *, changed: bool) -> str:
    """Return the one-line summary of a list or dict: its key, type and size."""
    classes = "rm-view rm-changed" if changed else "rm-view"
    return (
        f'{_STYLE}<span class="{classes}"><b>{_escape(key)}</b> '
        f'<span class="rm-type">{_escape(type_text(value))}</span></span>'
    )


def message_html(text: str) -> str:
    """Return ``text`` as a muted note, such as "empty list"."""
    return f'{_STYLE}<span class="rm-view"><span class="rm-note">{_escape(text)}</span></span>'


def page_html(start: int, stop: int, total: int) -> str:
    """Return the pager's label: which items are shown and how many follow."""
    text = f"items {start + 1:,} to {stop:,} of {total:,}"
    if total > stop:
        text += f" · … {total - stop:,} more"
    return message_html(text)


def status_html(
    *,
    namespace: str,
    name: str | None,
    state: str,
    reason: str,
    version: int,
    last_change: str,
    read_error: str,
) -> str:
    """Return the status line: what is shown, the connection state and the last change.

    ``state`` is ``"connected"``, ``"reconnecting"`` or ``"disconnected"``;
    ``reason`` gives the cause when it is not connected.
    """
    color = _STATE_COLORS.get(state, _ERROR_COLOR)
    state_text = f"{state}: {reason}" if reason else state
    parts = [
        f"namespace <b>{_escape(namespace)}</b>"
        + (f" · name <b>{_escape(name)}</b>" if name is not None else ""),
        f'<span style="color:{color}">● {_escape(state_text)}</span>',
        f"version {version:,}",
    ]
    if last_change:
        parts.append(
            f'last change: <span class="rm-changed">{_escape(last_change)}</span>'
        )
    if read_error:
        parts.append(
            f'<span style="color:{_ERROR_COLOR}">could not read: {_escape(read_error)}</span>'
        )
    return f'{_STYLE}<div class="rm-view" style="margin-bottom:4px">{" · ".join(parts)}</div>'


def same(a: Any, b: Any) -> bool:
    """Return whether two snapshot values would look the same in the view.

    Unlike ``==``, it treats NaN as equal to NaN and compares dict order, so a
    value that did not change is never marked as changed.
    """
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is list:
        return len(a) == len(b) and all(map(same, a, b))
    if kind is dict:
        return len(a) == len(b) and all(
            key_a == key_b and same(value_a, value_b)
            for (key_a, value_a), (key_b, value_b) in zip(
                a.items(), b.items(), strict=True
            )
        )
    if kind is float:
        return bool(a == b or (a != a and b != b))
    try:
        return bool(a == b)
    except Exception:
        # NOTE: numpy arrays land here because their == is elementwise; their
        # repr elides the middle of large arrays, so a change there is not marked.
        return repr(a) == repr(b)


def _escape(text: str) -> str:
    return html.escape(text, quote=True)
