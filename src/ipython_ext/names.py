"""Which names a cell binds: its syntax tree plus a before/after namespace comparison.

The syntax pass finds every name the cell binds at top level (assignments,
augmented and annotated assignments, ``for`` and ``with`` targets, the walrus
operator, ``def``, ``class``, imports, and ``global`` declarations inside
functions) and the names it changes in place (``x[0] = ...``, ``x.a = ...``).
The comparison catches the rest: names created by ``%run``, ``exec`` or a
star import, and lists, dicts, sets and bytearrays changed by a method call
(``x.append(1)``).

Caveats
-------
An object other than a list, dict, set, deque or bytearray that a method call
changes in place (``model.fit(data)``) is not detected; assign it in the cell
or store it with ``%remember NAME``. The change check on containers is
shallow: it sees items replaced, added or removed, not changes inside an item,
unless the cell assigns through the item (``x[0]["a"] = 1``). Lists and
deques of more than 100,000 items are compared by length and by their first
and last 1,000 items, bigger dicts and sets by length only. The comparison
keeps a reference to every value of the namespace while the cell runs.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

__all__ = ["Snapshot", "SyntaxNames", "is_shell_name"]

# IPython's own variables: _, __, ___, _i, _ii, _iii, _i7, _7, _oh, _dh, _ih,
# and dunder names such as __builtins__.
_SHELL_NAME = re.compile(r"_+|_i{1,3}\d*|_\d+|_oh|_dh|_ih|__\w+__")
_SHELL_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})

_FULL_CHECK_LIMIT = 100_000
_SAMPLE = 1_000


def is_shell_name(name: str, hidden: Mapping[str, Any] | Iterable[str] = ()) -> bool:
    """Return whether ``name`` is one of IPython's own variables.

    Parameters
    ----------
    name : str
        A name from the user namespace.
    hidden : mapping or iterable of str
        The shell's ``user_ns_hidden``: names it put there itself.
    """
    return (
        name in _SHELL_NAMES
        or _SHELL_NAME.fullmatch(name) is not None
        or name in hidden
    )


class SyntaxNames(ast.NodeVisitor):
    """Collect the names a module-level syntax tree binds or changes in place.

    Attributes
    ----------
    names : list of str
        Every name bound or changed, in order of first appearance.
    star_import : bool
        Whether the tree contains ``from x import *``, whose names only the
        namespace comparison can find.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.star_import = False
        self._seen: set[str] = set()

    @classmethod
    def of(cls, tree: ast.AST) -> SyntaxNames:
        """Return the visitor after it has visited ``tree``."""
        visitor = cls()
        visitor.visit(tree)
        return visitor

    def _add(self, name: str) -> None:
        if name not in self._seen:
            self._seen.add(name)
            self.names.append(name)

    def _target(self, node: ast.AST) -> None:
        """Add the names that an assignment to ``node`` binds or changes."""
        if isinstance(node, ast.Name):
            self._add(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                self._target(element)
        elif isinstance(node, ast.Starred):
            self._target(node.value)
        elif isinstance(node, (ast.Subscript, ast.Attribute)):
            # x[0] = ... and x.a[1] = ... change x in place.
            base: ast.AST = node
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                if isinstance(base, ast.Subscript):
                    self.visit(base.slice)
                base = base.value
            if isinstance(base, ast.Name):
                self._add(base.id)
            else:
                self.visit(base)

    # -- statements that bind -------------------------------------------------

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self._target(target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        self._target(node.target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self._target(node.target)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self._target(node.target)
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._target(item.optional_vars)
        for statement in node.body:
            self.visit(statement)

    visit_AsyncWith = visit_With

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._target(node.target)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.star_import = True
            else:
                self._add(alias.asname or alias.name)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # Decorators and defaults run at module level; the body does not.
        for expression in [*node.decorator_list, *node.args.defaults]:
            self.visit(expression)
        for default in node.args.kw_defaults:
            if default is not None:
                self.visit(default)
        self._add(node.name)
        self._globals(node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expression in [*node.decorator_list, *node.bases]:
            self.visit(expression)
        self._add(node.name)
        self._globals(node.body)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        """A lambda's body binds nothing at module level."""

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.pattern is not None:
            self.visit(node.pattern)
        if node.name is not None:
            self._add(node.name)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name is not None:
            self._add(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self.generic_visit(node)
        if node.rest is not None:
            self._add(node.rest)

    def _globals(self, body: list[ast.stmt]) -> None:
        """Add the names that ``global`` statements in a function or class declare."""
        for statement in body:
            for node in ast.walk(statement):
                if isinstance(node, ast.Global):
                    for name in node.names:
                        self._add(name)


def _fingerprint(value: Any) -> object:
    """Return a cheap, shallow summary of a mutable container, or None.

    Two equal summaries mean that, as far as a shallow check can tell, the
    container still holds the same items. Costs O(n) for n <= 100,000 items.
    """
    if isinstance(value, bytearray):
        return hash(bytes(value))
    if not isinstance(value, (list, dict, set, deque)):
        return None
    size = len(value)
    items: Iterable[Any] = value.items() if isinstance(value, dict) else value
    if size > _FULL_CHECK_LIMIT:
        if isinstance(value, list):
            items = [*value[:_SAMPLE], *value[-_SAMPLE:]]
        elif isinstance(value, deque):
            items = [*islice(value, _SAMPLE), *islice(reversed(value), _SAMPLE)]
        else:
            return size
    if isinstance(value, dict):
        ids = tuple(id(part) for pair in items for part in pair)
    else:
        ids = tuple(map(id, items))
    return (size, hash(ids))


class Snapshot:
    """The user namespace just before a cell runs, to see what the cell changed.

    Holds a reference to every value, so no id is reused while the cell runs.

    Parameters
    ----------
    namespace : mapping
        The user namespace.
    hidden : mapping or iterable of str
        The shell's ``user_ns_hidden``; those names and IPython's own are left out.
    """

    def __init__(
        self, namespace: Mapping[str, Any], hidden: Mapping[str, Any] | Iterable[str]
    ) -> None:
        self._hidden = hidden
        self._values = {
            name: (value, _fingerprint(value))
            for name, value in namespace.items()
            if not is_shell_name(name, hidden)
        }

    def changed(self, namespace: Mapping[str, Any]) -> list[str]:
        """Return the names that are new, rebound, or whose container changed."""
        changed = []
        for name, value in namespace.items():
            if is_shell_name(name, self._hidden):
                continue
            before = self._values.get(name)
            if before is None or before[0] is not value:
                changed.append(name)
            elif before[1] is not None and before[1] != _fingerprint(value):
                changed.append(name)
        return changed
