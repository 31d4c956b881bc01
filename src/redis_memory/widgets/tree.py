"""The expandable tree of a snapshot, built from core ipywidgets.

Each list or dict on screen is a `Branch`: a toggle button with a summary,
and, when open, one page of its items. Runs of scalar items share one HTML
table, nested lists and dicts get their own branch, and a pager appears when
there are more items than fit on a page. Branches are kept by path between
renders, so a refresh only sends the HTML values and children that changed.

Nothing here is thread-safe: the caller holds one lock around every call.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets

from . import render

__all__ = ["MISSING", "Branch", "Tree"]

Path = tuple[Any, ...]
"""The keys and list indexes from the root of the view down to a value."""


class _Missing:
    """The value at a path that does not exist (yet, or anymore)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Branch:
    """The widgets of one list or dict: header (toggle and summary) and body."""

    def __init__(
        self,
        path: Path,
        on_toggle: Callable[[Path], None],
        on_page: Callable[[Path, int], None],
    ) -> None:
        self.path = path
        self.toggle = ipywidgets.Button(
            description="▸",
            tooltip="expand or collapse",
            layout=ipywidgets.Layout(
                width="2.4em", height="1.7em", padding="0", margin="0 6px 0 0"
            ),
        )
        self.summary = ipywidgets.HTML()
        self.header = ipywidgets.HBox(
            [self.toggle, self.summary], layout=ipywidgets.Layout(align_items="center")
        )
        self.body = ipywidgets.VBox(layout=ipywidgets.Layout(margin="0 0 0 1.6em"))
        self.widget = ipywidgets.VBox()
        self.chunks: list[ipywidgets.HTML] = []
        self.pager: _Pager | None = None
        self._on_page = on_page
        self.toggle.on_click(lambda _button: on_toggle(path))

    def show(self, *, header: bool, is_open: bool) -> None:
        """Show the header and, when ``is_open``, the body."""
        self.toggle.description = "▾" if is_open else "▸"
        parts = [self.header] if header else []
        if is_open:
            parts.append(self.body)
        _set_children(self.widget, parts)

    def chunk(self, index: int, value: str) -> ipywidgets.HTML:
        """Return the ``index``-th HTML widget of the body, set to ``value``."""
        while len(self.chunks) <= index:
            self.chunks.append(ipywidgets.HTML())
        chunk = self.chunks[index]
        chunk.value = value
        return chunk

    def page_bar(self, start: int, stop: int, total: int) -> ipywidgets.HBox:
        """Return the pager for items ``start`` to ``stop`` of ``total``."""
        if self.pager is None:
            self.pager = _Pager(lambda step: self._on_page(self.path, step))
        self.pager.update(start, stop, total)
        return self.pager.widget

    def close(self) -> None:
        """Close every widget of this branch (not those of nested branches)."""
        widgets: list[ipywidgets.Widget] = [
            self.toggle,
            self.summary,
            self.header,
            self.body,
            self.widget,
            *self.chunks,
        ]
        if self.pager is not None:
            widgets.extend(self.pager.widgets())
        for widget in widgets:
            widget.close()


class _Pager:
    """Previous and next buttons around a label such as "items 1 to 50 of 5,004"."""

    def __init__(self, on_page: Callable[[int], None]) -> None:
        small = ipywidgets.Layout(width="auto", height="1.7em")
        self.previous = ipywidgets.Button(description="◂ previous", layout=small)
        self.next = ipywidgets.Button(description="next ▸", layout=small)
        self.label = ipywidgets.HTML()
        self.widget = ipywidgets.HBox(
            [self.previous, self.label, self.next],
            layout=ipywidgets.Layout(align_items="center", grid_gap="8px"),
        )
        self.previous.on_click(lambda _button: on_page(-1))
        self.next.on_click(lambda _button: on_page(1))

    def update(self, start: int, stop: int, total: int) -> None:
        self.label.value = render.page_html(start, stop, total)
        self.previous.disabled = start == 0
        self.next.disabled = stop >= total

    def widgets(self) -> list[ipywidgets.Widget]:
        return [self.previous, self.next, self.label, self.widget]


class Tree:
    """The branches of one view and the user's choices: which are open, which page.

    Parameters
    ----------
    page_size : int
        How many items of a list or dict are shown at once.
    label : str or None
        The stored name shown at the root, or None when the root is the whole
        namespace, whose names are then shown as its items.
    on_toggle : callable
        Called with the path when a toggle button is clicked. The caller takes
        its lock, calls `toggle` and renders again.
    on_page : callable
        Called with the path and -1 or 1 when a pager button is clicked, to
        call `turn_page` in the same way.
    """

    def __init__(
        self,
        page_size: int,
        label: str | None,
        on_toggle: Callable[[Path], None],
        on_page: Callable[[Path, int], None],
    ) -> None:
        self.page_size = page_size
        self.label = label
        self._on_toggle = on_toggle
        self._on_page = on_page
        # Default: the namespace's names are open, so their contents show at once;
        # for a single name, only the value itself.
        self._open_depth = 1 if label is None else 0
        self._open: dict[Path, bool] = {}
        self._pages: dict[Path, int] = {}
        self._branches: dict[Path, Branch] = {}
        self._used: set[Path] = set()
        self.root = self._branch(())

    @property
    def widget(self) -> ipywidgets.VBox:
        """The root widget, to be placed in the view."""
        return self.root.widget

    def is_open(self, path: Path) -> bool:
        """Return whether the list or dict at ``path`` shows its items."""
        return self._open.get(path, len(path) <= self._open_depth)

    def toggle(self, path: Path) -> None:
        """Open the branch at ``path`` if closed, else close it."""
        self._open[path] = not self.is_open(path)

    def turn_page(self, path: Path, step: int) -> None:
        """Show the next (``step=1``) or previous (``step=-1``) page at ``path``."""
        self._pages[path] = max(0, self._pages.get(path, 0) + step)

    def page(self, path: Path) -> int:
        """Return the index of the page shown at ``path``, 0 for the first."""
        return self._pages.get(path, 0)

    def render(self, value: Any, previous: Any, *, empty_text: str) -> None:
        """Show ``value``, marking what differs from ``previous``.

        ``value`` is the namespace as a dict when `label` is None, else the
        value of the name, or `MISSING` with ``empty_text`` to show instead.
        """
        self._used = {()}
        root = self.root
        if value is MISSING or (self.label is None and not value):
            _set_children(root.body, [root.chunk(0, render.message_html(empty_text))])
            root.show(header=False, is_open=True)
        elif self.label is None:
            self._fill(root, value, previous, top_level=True)
            root.show(header=False, is_open=True)
        elif render.is_container(value):
            changed = not render.same(value, previous)
            root.summary.value = render.summary_html(self.label, value, changed=changed)
            self._fill_if_open(root, value, previous, top_level=False)
        else:
            row = (self.label, value, not render.same(value, previous))
            _set_children(root.body, [root.chunk(0, render.rows_html([row]))])
            root.show(header=False, is_open=True)
        self._close_unused()

    def close(self) -> None:
        """Close the widgets of every branch."""
        for branch in self._branches.values():
            branch.close()
        self._branches.clear()

    # -- internals --------------------------------------------------------------

    def _branch(self, path: Path) -> Branch:
        branch = self._branches.get(path)
        if branch is None:
            branch = Branch(path, self._on_toggle, self._on_page)
            self._branches[path] = branch
        self._used.add(path)
        return branch

    def _fill(
        self, branch: Branch, value: Any, previous: Any, *, top_level: bool
    ) -> None:
        """Put one page of the items of ``value`` into the body of ``branch``."""
        if type(previous) is not type(value):
            # A new list or dict: its header is marked, its items are not.
            previous = value
        total = len(value)
        pages = max(1, -(-total // self.page_size))
        page = min(self._pages.get(branch.path, 0), pages - 1)
        self._pages[branch.path] = page
        start = page * self.page_size
        stop = min(total, start + self.page_size)

        children: list[ipywidgets.Widget] = []
        rows: list[render.Row] = []
        chunk_count = 0
        for key, item in _items(value, start, stop):
            old = _child(previous, key)
            label = render.key_text(key, value, top_level=top_level)
            if not render.is_container(item):
                rows.append((label, item, not render.same(item, old)))
                continue
            if rows:
                children.append(branch.chunk(chunk_count, render.rows_html(rows)))
                chunk_count += 1
                rows = []
            children.append(self._nested((*branch.path, key), label, item, old))
        if rows:
            children.append(branch.chunk(chunk_count, render.rows_html(rows)))
            chunk_count += 1
        if total == 0:
            text = f"empty {type(value).__name__}"
            children.append(branch.chunk(chunk_count, render.message_html(text)))
        if total > self.page_size:
            children.append(branch.page_bar(start, stop, total))
        _set_children(branch.body, children)

    def _nested(
        self, path: Path, label: str, value: Any, previous: Any
    ) -> ipywidgets.VBox:
        branch = self._branch(path)
        changed = not render.same(value, previous)
        branch.summary.value = render.summary_html(label, value, changed=changed)
        self._fill_if_open(branch, value, previous, top_level=False)
        return branch.widget

    def _fill_if_open(
        self, branch: Branch, value: Any, previous: Any, *, top_level: bool
    ) -> None:
        # The body gets its children before it is shown, and drops them when
        # hidden, so that it never refers to the closed widgets of a closed branch.
        is_open = self.is_open(branch.path)
        if is_open:
            self._fill(branch, value, previous, top_level=top_level)
        else:
            _set_children(branch.body, [])
        branch.show(header=True, is_open=is_open)

    def _close_unused(self) -> None:
        for path in [path for path in self._branches if path not in self._used]:
            self._branches.pop(path).close()


def _items(value: Any, start: int, stop: int) -> Iterator[tuple[Any, Any]]:
    if type(value) is list:
        return ((index, value[index]) for index in range(start, stop))
    return itertools.islice(value.items(), start, stop)


def _child(value: Any, key: Any) -> Any:
    if type(value) is list:
        return value[key] if type(key) is int and 0 <= key < len(value) else MISSING
    if type(value) is dict:
        return value.get(key, MISSING)
    return MISSING


def _set_children(box: ipywidgets.Box, children: list[ipywidgets.Widget]) -> None:
    # Assigning an equal tuple sends nothing, but comparing first skips the
    # trait validation of every child.
    new = tuple(children)
    if box.children != new:
        box.children = new
