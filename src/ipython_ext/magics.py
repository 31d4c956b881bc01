"""The magics: ``%%remember``, ``%remember``, ``%recall``, ``%forget`` and ``%mem``.

Usage
-----
::

    %%remember [--rerun] [--namespace NS]     run a cell once, restore it afterwards
    %remember NAME [NAME ...]                 store notebook variables
    %recall [NAME ...]                        bring stored names into the notebook
    %forget NAME [NAME ...] | --all           delete stored names
    %mem [--watch]                            table of stored names, or a live view

Every magic takes ``--namespace NS`` to work on another namespace than the
configured one. Mistakes raise `UsageError` (one line, no traceback); an
unreachable server raises `ServerUnavailableError`, which the extension shows
as one line too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from IPython.core import magic
from IPython.core import magic_arguments as arguments
from IPython.core.error import UsageError

from redis_memory.node import Node

from . import cells
from .display import MemoryTable, note
from .names import is_shell_name
from .session import is_reserved, visible_names
from .storing import store_values

if TYPE_CHECKING:
    from redis_memory import Memory

    from .session import Session

__all__ = ["RedisMemoryMagics"]

# IPython's decorators and parser are untyped; these typed aliases keep mypy strict.
_Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
Magics: Any = magic.Magics
magics_class: Callable[[type[Any]], type[Any]] = magic.magics_class
cell_magic = cast("Callable[[str], _Decorator]", magic.cell_magic)
line_magic = cast("Callable[[str], _Decorator]", magic.line_magic)
magic_arguments: Callable[..., _Decorator] = arguments.magic_arguments
argument: Callable[..., _Decorator] = arguments.argument
parse_argstring: Callable[[Any, str], Any] = arguments.parse_argstring

_NAMESPACE_HELP = "the namespace to use instead of the configured one"


def _parse(function: Any, line: str) -> Any:
    """Parse a magic's arguments; unbalanced quotes become a UsageError too."""
    try:
        return parse_argstring(function, line)
    except ValueError as exc:
        raise UsageError(f"cannot parse the arguments {line!r}: {exc}") from None


@magics_class
class RedisMemoryMagics(Magics):  # type: ignore[misc]
    """The magics of ``%load_ext redis_memory``."""

    def __init__(self, shell: Any, session: Session) -> None:
        super().__init__(shell)
        self.shell: Any = shell
        self.session = session

    # -- %%remember -----------------------------------------------------------

    @magic_arguments("%remember")  # IPython adds one "%": the usage reads %%remember
    @argument(
        "--rerun", action="store_true", help="execute the cell even if it is unchanged"
    )
    @argument("-n", "--namespace", help=_NAMESPACE_HELP)
    @cell_magic("remember")
    def remember_cell(self, line: str, cell: str) -> None:
        """Run the cell once and store every name it binds; later, restore it.

        The first run executes the cell, as usual, and stores each name the
        cell binds or changes at top level (assignments, ``for`` and ``with``
        targets, ``:=``, ``global``, names created by ``%run`` or ``exec``,
        in-place changes such as ``x += ...`` or ``x[0] = ...``), together
        with what the cell showed. Modules, functions and classes are not
        stored; the cell's top-level ``import``, ``def`` and ``class``
        statements run again on restore.

        When the same cell (same source, ignoring trailing whitespace, same
        namespace) runs again, even after a kernel restart, it is not executed:
        the stored values are put back, lists and dicts as live synced
        objects, its output is shown again, and one line says so. If the
        cell raises, it fails like any cell and nothing is stored.

        Examples
        --------
        ::

            %%remember
            model = train(data)
            scores = [0.91, 0.87]
        """
        args = _parse(self.remember_cell, line)
        cells.remember_cell(self.session, cell, args.namespace, args.rerun)

    # -- %remember ------------------------------------------------------------

    @magic_arguments("remember")
    @argument("names", nargs="*", metavar="NAME", help="notebook variables to store")
    @argument("-n", "--namespace", help=_NAMESPACE_HELP)
    @line_magic("remember")
    def remember_line(self, line: str) -> None:
        """Store notebook variables under their names (one atomic write each).

        Lists and dicts are rebound to their live synced objects, so later
        changes persist. A value that cannot be stored is reported with the
        reason; the others are stored anyway.

        Examples
        --------
        ::

            %remember results config
        """
        args = _parse(self.remember_line, line)
        if not args.names:
            raise UsageError("name the variables to store, for example: %remember x y")
        user_ns = self.shell.user_ns
        for name in args.names:
            if is_shell_name(name, self.shell.user_ns_hidden):
                raise UsageError(f"{name} is IPython's own variable; it is not stored")
            if name == self.session.settings.name:
                raise UsageError(
                    f"{name} is the Memory of redis-memory; its names are stored already"
                )
            if name not in user_ns:
                raise UsageError(f"there is no variable named {name!r} in the notebook")
        memory = self._memory(args.namespace)
        report = store_values(
            self.session, memory, {name: user_ns[name] for name in args.names}
        )
        for text in report.lines(memory._namespace):
            note(self.shell, text)

    # -- %recall --------------------------------------------------------------

    @magic_arguments("recall")
    @argument("names", nargs="*", metavar="NAME", help="stored names (default: all)")
    @argument("-n", "--namespace", help=_NAMESPACE_HELP)
    @line_magic("recall")
    def recall(self, line: str) -> None:
        """Put stored names into the notebook: the given ones, or all of them.

        Lists and dicts arrive as live synced objects.

        Examples
        --------
        ::

            %recall             # everything in the namespace
            %recall results
        """
        args = _parse(self.recall, line)
        memory = self._memory(args.namespace)
        if not args.names:
            recalled = self.session.recall_all(memory)
            if recalled:
                note(self.shell, f"recalled {', '.join(recalled)} from redis-memory")
            else:
                note(
                    self.shell, f"nothing is stored in namespace {memory._namespace!r}"
                )
            return
        values = {}
        missing = []
        for name in args.names:
            try:
                if is_reserved(name):
                    raise KeyError(name)
                values[name] = memory[name]
            except KeyError:
                missing.append(name)
        if missing:
            raise UsageError(
                f"nothing is stored under {', '.join(map(repr, missing))} in namespace "
                f"{memory._namespace!r}; %mem lists what is"
            )
        self.shell.push(values, interactive=True)
        note(self.shell, f"recalled {', '.join(values)} from redis-memory")

    # -- %forget --------------------------------------------------------------

    @magic_arguments("forget")
    @argument("names", nargs="*", metavar="NAME", help="stored names to delete")
    @argument(
        "--all",
        action="store_true",
        dest="everything",
        help="delete every name of the namespace (asks no question)",
    )
    @argument("-n", "--namespace", help=_NAMESPACE_HELP)
    @line_magic("forget")
    def forget(self, line: str) -> None:
        """Delete stored names (the notebook variables keep plain copies).

        ``%forget --all`` deletes every name of the namespace, the records of
        ``%%remember`` included; it asks no question, so it must be spelled out.

        Examples
        --------
        ::

            %forget results
            %forget --all
        """
        args = _parse(self.forget, line)
        if args.everything and args.names:
            raise UsageError("give either names or --all, not both")
        if not args.everything and not args.names:
            raise UsageError(
                "name what to forget, for example: %forget x y; or forget everything "
                "in the namespace with %forget --all"
            )
        memory = self._memory(args.namespace)
        if args.everything:
            names = visible_names(memory)
            self._detach(memory, None)
            memory._clear()
            note(
                self.shell,
                f"forgot all {len(names)} names of namespace {memory._namespace!r}",
            )
            return
        stored = set(memory)
        missing = [
            name for name in args.names if name not in stored or is_reserved(name)
        ]
        if missing:
            raise UsageError(
                f"nothing is stored under {', '.join(map(repr, missing))} in namespace "
                f"{memory._namespace!r}; nothing was deleted"
            )
        self._detach(memory, set(args.names))
        for name in args.names:
            del memory[name]
        note(
            self.shell,
            f"forgot {', '.join(args.names)} (namespace {memory._namespace!r})",
        )

    def _detach(self, memory: Memory, names: set[str] | None) -> None:
        """Replace live handles on the names about to go by plain copies."""
        prefix = memory._store.keys.prefix
        paths = None if names is None else {memory._root._child_path(n) for n in names}
        user_ns = self.shell.user_ns
        for variable, value in list(user_ns.items()):
            if not isinstance(value, Node) or value._store.keys.prefix != prefix:
                continue
            if paths is None or value._path in paths:
                user_ns[variable] = value._plain()

    # -- %mem -----------------------------------------------------------------

    @magic_arguments("mem")
    @argument(
        "--watch",
        action="store_true",
        help="show a live view that follows changes (needs ipywidgets)",
    )
    @argument("-n", "--namespace", help=_NAMESPACE_HELP)
    @line_magic("mem")
    def mem(self, line: str) -> Any:
        """Show the stored names with their type, size and last change.

        A rich table in Jupyter, plain text in a terminal. ``--watch`` shows
        a live view instead (``redis_memory.widgets.MemoryView``).
        """
        args = _parse(self.mem, line)
        memory = self._memory(args.namespace)
        if args.watch:
            return self._watch(memory)
        return MemoryTable.read(memory, self.session.where())

    def _watch(self, memory: Memory) -> Any:
        try:
            from redis_memory.widgets import MemoryView  # type: ignore[import-not-found]
        except ImportError as exc:
            raise UsageError(
                f"%mem --watch needs the live view redis_memory.widgets.MemoryView, "
                f"which cannot be imported here ({exc}); install the notebook extra: "
                "pip install 'redis-memory[notebook]'"
            ) from None
        view = MemoryView(memory)
        self.session.views.append(view)
        return view

    # -- helpers --------------------------------------------------------------

    def _memory(self, namespace: str | None) -> Memory:
        return self.session.memory(namespace)
