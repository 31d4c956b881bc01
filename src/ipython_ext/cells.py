"""``%%remember``: run a cell and store what it binds, or restore it without running it.

The decision
------------
A cell is restored instead of run when a record for it exists under the key
``sha256(normalised source + NUL + namespace)``, every name the record lists
is still stored, and ``--rerun`` was not given. Normalising removes trailing
whitespace from each line and blank lines at the start and end, nothing else:
any other change to the source runs the cell again.

Records
-------
Each cell's record is stored in its namespace under the name
``"__remember__:<first 32 hex digits of the key>"``, which only item access
reaches (``mem["__remember__:..."]``), as a dict::

    {"format": 1, "digest": <full key>, "names": [stored names],
     "definitions": <source of the cell's top-level import, def and class statements>,
     "skipped": {name: reason}, "outputs": [recorded outputs], "when": <datetime, UTC>}

``%mem``, ``%recall`` and the count printed at load leave these names out;
``%forget --all`` removes them with everything else.

Restoring pushes the stored values into the user namespace (lists and dicts
as live handles), runs the cell's top-level ``import``, ``def`` and ``class``
statements again (modules, functions and classes are not stored), prints one
line, and replays the recorded outputs.

Caveats
-------
Decorators and default values of the ``def`` and ``class`` statements run
again on restore. A value that cannot be stored makes the cell run again next
time, since a restore could not bring it back. Names bound to the same list
become separate stored copies. Top-level ``await`` works in a terminal but
not in a Jupyter kernel, whose event loop is already running: there the cell
is refused with a `UsageError`.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import inspect
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from redis_memory import OutcomeUnknownError, ServerUnavailableError, SyncedDict

from .capture import ErrorTrap, Output, OutputRecorder, replay
from .display import note
from .names import Snapshot, SyntaxNames, is_shell_name
from .session import RESERVED_PREFIX
from .storing import store_values

if TYPE_CHECKING:
    from redis_memory import Memory

    from .session import Session

__all__ = [
    "CellRecord",
    "cell_digest",
    "normalise",
    "record_name",
    "remember_cell",
]

_FORMAT = 1
_DEFINITIONS = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
)


def normalise(source: str) -> str:
    """Return ``source`` without trailing whitespace on its lines or blank edge lines."""
    return "\n".join(line.rstrip() for line in source.splitlines()).strip("\n")


def cell_digest(source: str, namespace: str) -> str:
    """Return the hex SHA-256 that identifies a cell's source within a namespace."""
    text = f"{normalise(source)}\0{namespace}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def record_name(digest: str) -> str:
    """Return the stored name of the record of the cell with ``digest``."""
    return RESERVED_PREFIX + digest[:32]


@dataclass
class CellRecord:
    """What a successful run of a ``%%remember`` cell left to restore it from."""

    digest: str
    names: list[str]
    definitions: str = ""
    skipped: dict[str, str] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    when: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def to_value(self) -> dict[str, Any]:
        """Return the dict that is stored."""
        return {
            "format": _FORMAT,
            "digest": self.digest,
            "names": list(self.names),
            "definitions": self.definitions,
            "skipped": dict(self.skipped),
            "outputs": list(self.outputs),
            "when": self.when,
        }

    @classmethod
    def from_value(cls, value: Any) -> CellRecord | None:
        """Return the record stored as ``value``, or None if it is not one."""
        if isinstance(value, SyncedDict):
            value = value.asdict()
        if not isinstance(value, dict) or value.get("format") != _FORMAT:
            return None
        try:
            return cls(
                digest=str(value["digest"]),
                names=[str(name) for name in value["names"]],
                definitions=str(value.get("definitions", "")),
                skipped={
                    str(k): str(v) for k, v in dict(value.get("skipped", {})).items()
                },
                outputs=[dict(output) for output in value.get("outputs", [])],
                when=value.get("when") or datetime.now(timezone.utc),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class _Parsed:
    """The syntax-tree facts about a cell that storing and restoring need."""

    names: list[str]
    star_import: bool
    definitions: str
    recreated: dict[str, str]
    awaits: bool

    @classmethod
    def of(cls, shell: Any, cell: str) -> _Parsed | None:
        """Parse ``cell`` after IPython's input transformations; None if it does not parse."""
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        try:
            source = shell.transform_cell(cell)
            tree = compile(source, "<cell>", "exec", flags=flags | ast.PyCF_ONLY_AST)
            code = compile(tree, "<cell>", "exec", flags=flags)
        except (SyntaxError, ValueError, TypeError, OverflowError):
            return None  # the nested run shows the error as IPython shows it
        syntax = SyntaxNames.of(tree)
        definitions: list[ast.stmt] = [
            node for node in tree.body if isinstance(node, _DEFINITIONS)
        ]
        recreated: dict[str, str] = {}
        for node in definitions:
            for name in SyntaxNames.of(ast.Module(body=[node], type_ignores=[])).names:
                imported = isinstance(node, (ast.Import, ast.ImportFrom))
                recreated.setdefault(name, "imported" if imported else "defined")
        module = ast.Module(body=definitions, type_ignores=[])
        return cls(
            names=syntax.names,
            star_import=syntax.star_import,
            definitions=ast.unparse(module) if definitions else "",
            recreated=recreated,
            awaits=bool(code.co_flags & inspect.CO_COROUTINE),
        )


def remember_cell(
    session: Session, cell: str, namespace: str | None = None, rerun: bool = False
) -> None:
    """Restore ``cell`` from its record, or run it and store what it binds.

    Parameters
    ----------
    session : Session
        The extension's state in this shell.
    cell : str
        The cell's source, without the ``%%remember`` line.
    namespace : str, optional
        Where to store; default: the configured namespace.
    rerun : bool
        Run the cell even if it is unchanged.

    Raises
    ------
    Exception
        Whatever the cell raised; nothing from that run is stored.
    ServerUnavailableError
        If the server cannot be reached.
    """
    __tracebackhide__ = True
    name = session.namespace(namespace)
    memory = session.memory(name)
    digest = cell_digest(cell, name)
    if not rerun:
        record = CellRecord.from_value(_read(memory, record_name(digest)))
        if record is not None and record.digest == digest:
            if _restore(session, memory, record):
                return
    _run_and_store(session, memory, cell, digest)


def _read(memory: Memory, name: str) -> Any:
    try:
        return memory[name]
    except KeyError:
        return None


def _restore(session: Session, memory: Memory, record: CellRecord) -> bool:
    """Restore ``record``; return False (after saying why) if it cannot be."""
    shell = session.shell
    values = {}
    for name in record.names:
        try:
            values[name] = memory[name]
        except KeyError:
            note(
                shell,
                f"redis-memory: {name} is no longer stored, so the cell runs again",
            )
            return False

    shell.push(values, interactive=True)
    if record.definitions:
        code = compile(record.definitions, "<%%remember definitions>", "exec")
        exec(code, shell.user_global_ns, shell.user_ns)
        shell.push(values, interactive=True)

    if record.names:
        line = f"restored {', '.join(record.names)} from redis-memory"
    else:
        line = "redis-memory: not executed, nothing to restore"
    line += " (cell unchanged; use --rerun to execute)"
    missing = [name for name in record.skipped if name not in shell.user_ns]
    if missing:
        described = ", ".join(f"{name} ({record.skipped[name]})" for name in missing)
        line += f"; not restored: {described}"
    note(shell, line)
    replay(shell, record.outputs)
    return True


def _run_and_store(session: Session, memory: Memory, cell: str, digest: str) -> None:
    """Run the cell live; when it succeeds, store its names and its record."""
    __tracebackhide__ = True
    shell = session.shell
    parsed = _Parsed.of(shell, cell)
    if parsed is not None and parsed.awaits and _loop_running():
        raise UsageError(
            "%%remember cannot run a cell with top-level await while an event loop "
            "runs (as in Jupyter); await in a cell of its own, then store the "
            "result with %remember NAME"
        )
    before = Snapshot(shell.user_ns, shell.user_ns_hidden)

    with ErrorTrap(shell) as trap, OutputRecorder(shell) as recorder:
        result = shell.run_cell(cell, store_history=False)
    trap.raise_error(result)
    if parsed is None:  # pragma: no cover - IPython accepted what ast did not
        return

    values = _bound_values(session, parsed, before)
    recreated = dict(parsed.recreated)
    if parsed.star_import:
        recreated.update({name: "imported" for name in values if name not in recreated})
    try:
        report = store_values(session, memory, values, recreated)
        key = record_name(digest)
        if report.failed:
            if key in memory:
                del memory[key]
        else:
            record = CellRecord(
                digest=digest,
                names=report.stored,
                definitions=parsed.definitions,
                skipped=report.skipped,
                outputs=recorder.outputs,
            )
            memory[key] = record.to_value()
    except OutcomeUnknownError as exc:
        raise OutcomeUnknownError(
            f"the cell ran, but storing its names failed: {exc}"
        ) from exc
    except ServerUnavailableError as exc:
        raise ServerUnavailableError(
            f"the cell ran, but storing its names failed: {exc}"
        ) from exc

    lines = report.lines(memory._namespace)
    if report.failed:
        lines.append(
            "the cell will run again next time, since not all of its names are stored"
        )
    for line in lines:
        note(shell, line)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _bound_values(
    session: Session, parsed: _Parsed, before: Snapshot
) -> dict[str, Any]:
    """Return the names the cell bound or changed, with their values, in order."""
    user_ns = session.shell.user_ns
    hidden = session.shell.user_ns_hidden
    names = [*parsed.names, *before.changed(user_ns)]
    values: dict[str, Any] = {}
    for name in names:
        if name in values or name not in user_ns or is_shell_name(name, hidden):
            continue
        values[name] = user_ns[name]
    return values
