"""The ``redis-memory`` command line tool, also run as ``python -m redis_memory``.

Usage::

    redis-memory [--url URL] [--namespace NAME] [--json] COMMAND ...
    redis-memory ls                      names, types, sizes, last change
    redis-memory show NAME               one value as JSON
    redis-memory export FILE             back up a namespace ("-": stdout)
    redis-memory import FILE [--replace] restore a backup ("-": stdin)
    redis-memory delete NAME [NAME ...]
    redis-memory demo                    the core walkthrough, checked by a second process
    redis-memory server status|start|stop [--timeout SECONDS]

Each command is a ``_cmd_<name>(args) -> int`` function, registered in
`_COMMANDS` together with the function that adds its arguments to its
subparser. The global options ``--url``, ``--namespace`` and ``--json`` are
accepted before and after the command name.

The exit status is 0 on success, 1 when the command fails (with a one-line
message on stderr), 2 when argparse rejects the command line and 130 after
Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError
from tqdm import tqdm

from redis_memory import config
from redis_memory.codec import Codec
from redis_memory.demo import run_demo
from redis_memory.dicts import SyncedDict
from redis_memory.errors import (
    CorruptValueError,
    EmbeddedServerError,
    PickleRefusedError,
    RedisMemoryError,
    StaleReferenceError,
)
from redis_memory.export import (
    encode_value,
    export_namespace,
    import_values,
    open_for_replace,
    read_export,
    read_plain,
)
from redis_memory.lists import SyncedList
from redis_memory.memory import Memory
from redis_memory.server import EmbeddedServer, ServerStatus

__all__ = ["main"]

_PROG = "redis-memory"
# The namespace `demo` clears and fills when --namespace is not given. It never
# defaults to $REDIS_MEMORY_NAMESPACE, because the demo deletes what it finds.
DEMO_NAMESPACE = "redis-memory-demo"
# Seconds an export or import runs before its progress bar appears.
_PROGRESS_DELAY = 1.0


class _CommandError(Exception):
    """A command failed because of input that the user can correct.

    The message names the problem and the correction.
    """


@dataclasses.dataclass(frozen=True)
class _Command:
    """A subcommand: its help line, its argument setup and its implementation."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line tool.

    Parameters
    ----------
    argv : sequence of str or None
        Arguments without the program name. None means ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 on success, 1 on failure. Usage errors exit with
        status 2 from argparse.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    command = _COMMANDS[args.command]
    try:
        return command.run(args)
    except EmbeddedServerError as error:
        # The log tail stays out of the one-line message, which names the log file.
        return _fail(error.message)
    except BrokenPipeError:
        # The reader of stdout went away (`redis-memory show x | head`): stop quietly.
        _silence_stdout()
        return 1
    except (_CommandError, RedisMemoryError, RedisError, OSError, ValueError) as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        return 130


def _fail(message: str) -> int:
    """Print ``message`` as a single line on stderr and return exit status 1."""
    one_line = " ".join(message.split("\n"))
    print(f"{_PROG}: error: {one_line}", file=sys.stderr)
    return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises nothing."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _build_parser() -> argparse.ArgumentParser:
    """Build the parser of the global options and of every registered command."""
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Inspect and manage Python lists and dicts stored in Redis.",
        parents=[_global_options(suppress_defaults=False)],
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, command in _COMMANDS.items():
        subparser = subparsers.add_parser(
            name,
            help=command.help,
            description=command.help,
            parents=[_global_options(suppress_defaults=True)],
        )
        command.add_arguments(subparser)
    return parser


def _global_options(*, suppress_defaults: bool) -> argparse.ArgumentParser:
    """Return a parent parser of the options that every command accepts.

    Subparsers get ``suppress_defaults=True``, so that an option given before
    the command name is not overwritten by the subparser's default.
    """

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress_defaults else value

    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("global options")
    group.add_argument(
        "--url",
        default=default(None),
        help=(
            f"Redis URL to connect to (default: ${config.URL_ENV}, then "
            f"${config.URL_FALLBACK_ENV}, then the embedded server)"
        ),
    )
    group.add_argument(
        "--namespace",
        default=default(None),
        help=(
            f"namespace of the data (default: ${config.NAMESPACE_ENV}, "
            f"then {config.DEFAULT_NAMESPACE!r})"
        ),
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print the result as JSON",
    )
    return parent


# data commands


def _open_memory(args: argparse.Namespace, namespace: str | None = None) -> Memory:
    """Return the Memory that ``--url`` and ``--namespace`` (or ``namespace``) name.

    A command reads each value once, so the read cache, which would open a
    subscription connection, is off.
    """
    chosen = args.namespace if namespace is None else namespace
    return Memory(args.url, chosen, cache=False)


def _missing_name(mem: Memory, name: str) -> _CommandError:
    return _CommandError(
        f"no value named {name!r} in namespace {mem._namespace!r}; "
        f"`{_PROG} ls --namespace {mem._namespace}` lists the stored names"
    )


@contextlib.contextmanager
def _progress(total: int, description: str) -> Iterator[Callable[[int], object]]:
    """Yield the update function of a progress bar on stderr.

    The bar appears only when stderr is a terminal and the work takes longer
    than `_PROGRESS_DELAY` seconds, and it is erased when the work ends.
    """
    with tqdm(
        total=total,
        desc=description,
        unit="name",
        file=sys.stderr,
        disable=None,
        delay=_PROGRESS_DELAY,
        leave=False,
    ) as bar:
        yield bar.update


def _cmd_ls(args: argparse.Namespace) -> int:
    """List the names of a namespace with their type, size and last change."""
    mem = _open_memory(args)
    rows = _describe_names(mem)

    if args.json:
        _print_json(rows)
    elif rows:
        print(_format_table(rows))
        unreadable = [row for row in rows if row["error"] is not None]
        if unreadable:
            print(
                f"{_PROG}: note: cannot decode {_count(unreadable, 'value')} here, "
                f"for example {unreadable[0]['name']!r}: {unreadable[0]['error']}",
                file=sys.stderr,
            )
    else:
        print(f"{_PROG}: namespace {mem._namespace!r} is empty", file=sys.stderr)
    return 0


def _describe_names(mem: Memory) -> list[dict[str, Any]]:
    """Return one row per name: name, type, size, modified and error.

    ``size`` is ``len(value)`` or None, ``modified`` an ISO 8601 time in UTC or
    None. A value that this process cannot decode (a pickle without the key,
    a registered codec's tag, numpy without numpy) gets its stored tag as type
    and the reason in ``error``. A name that another process deletes while
    this runs is left out.
    """
    codec = mem._store.codec
    mtimes = mem._store.mtimes()
    rows = []
    for name in mem._names():
        error = None
        try:
            value = mem[name]
            kind = _type_name(value)
            size = _size(value)
        except (KeyError, StaleReferenceError):
            continue
        except (PickleRefusedError, CorruptValueError, ModuleNotFoundError) as exc:
            kind, size, error = _stored_tag(mem, name), None, str(exc)

        field = codec.encode_key(name, "mem")
        millis = mtimes.get(field.encode())
        modified = None
        if millis is not None:
            moment = datetime.datetime.fromtimestamp(
                millis / 1000, datetime.timezone.utc
            )
            modified = moment.isoformat(timespec="milliseconds")
        rows.append(
            {
                "name": name,
                "type": kind,
                "size": size,
                "modified": modified,
                "error": error,
            }
        )
    return rows


def _stored_tag(mem: Memory, name: str) -> str:
    """Return the tag of a stored value without decoding it, as in ``ext:point``."""
    raw = mem._store.raw_root_field(mem._store.codec.encode_key(name, "mem"))
    try:
        stored = json.loads(raw) if raw is not None else None
    except ValueError:
        return "unreadable"
    if isinstance(stored, dict) and len(stored) == 1:
        [tag] = stored
        return str(tag).removeprefix("$")
    return "unreadable"


def _type_name(value: Any) -> str:
    if isinstance(value, SyncedList):
        return "list"
    if isinstance(value, SyncedDict):
        return "dict"
    kind = type(value)
    if kind.__module__ in ("builtins", "datetime", "decimal", "uuid"):
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _size(value: Any) -> int | None:
    """Return ``len(value)``, or None for a value without a length."""
    try:
        return len(value)
    except TypeError:
        return None


def _format_table(rows: list[dict[str, Any]]) -> str:
    """Format rows of `_describe_names` as aligned columns with a header."""
    table = [("NAME", "TYPE", "SIZE", "MODIFIED")]
    for row in rows:
        name = row["name"] if row["name"].isprintable() else repr(row["name"])
        size = "-" if row["size"] is None else str(row["size"])
        modified = "-"
        if row["modified"] is not None:
            moment = datetime.datetime.fromisoformat(row["modified"]).astimezone()
            modified = moment.strftime("%Y-%m-%d %H:%M:%S")
        table.append((name, row["type"], size, modified))

    widths = [max(len(line[column]) for line in table) for column in range(3)]
    lines = []
    for name, kind, size, modified in table:
        lines.append(
            f"{name:<{widths[0]}}  {kind:<{widths[1]}}  {size:>{widths[2]}}  {modified}"
        )
    return "\n".join(lines)


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """Add nothing: the command takes only the global options."""


def _add_show_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the name to show")


def _cmd_show(args: argparse.Namespace) -> int:
    """Print one value as JSON, in the export encoding."""
    mem = _open_memory(args)
    try:
        value = read_plain(mem, args.name)
    except KeyError:
        raise _missing_name(mem, args.name) from None
    print(encode_value(mem._store.codec, value, f"mem[{args.name!r}]"))
    return 0


def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        metavar="FILE",
        help="the JSON file to write, replaced if it exists; - writes to stdout",
    )


def _cmd_export(args: argparse.Namespace) -> int:
    """Write every name of the namespace and its value to a JSON file."""
    mem = _open_memory(args)
    total = len(mem)

    with _progress(total, "export") as update:
        if args.file == "-":
            names = export_namespace(mem, sys.stdout, progress=update)
            sys.stdout.flush()
        else:
            with open_for_replace(Path(args.file)) as file:
                names = export_namespace(mem, file, progress=update)

    summary = {"file": args.file, "namespace": mem._namespace, "names": names}
    if args.json and args.file != "-":
        _print_json(summary)
    elif not args.json:
        where = "stdout" if args.file == "-" else args.file
        print(
            f"exported {_count(names, 'name')} from namespace "
            f"{mem._namespace!r} to {where}",
            file=sys.stderr if args.file == "-" else sys.stdout,
        )
    return 0


def _add_import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        metavar="FILE",
        help=(
            "a file written by `redis-memory export`, or - for stdin; its names go "
            "to the namespace recorded in the file unless --namespace is given"
        ),
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="also delete the names of the namespace that the file does not contain",
    )


def _cmd_import(args: argparse.Namespace) -> int:
    """Store every name of an export file, into the namespace it came from.

    ``--namespace`` imports into another namespace instead.
    """
    if args.file == "-":
        stdin = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
        text: str | bytes = stdin.read()
        where = "stdin"
    else:
        text = Path(args.file).read_bytes()
        where = args.file
    # The file's namespace is known only after parsing, and decoding needs a codec:
    # any Memory's codec decodes the same way, so parse with a codec of no server.
    document = read_export(text, Codec(), where)
    namespace = document.namespace if args.namespace is None else args.namespace
    mem = _open_memory(args, namespace)

    with _progress(len(document.values), "import") as update:
        deleted = import_values(
            mem, document.values, replace=args.replace, progress=update
        )

    names = list(document.values)
    if args.json:
        _print_json(
            {
                "file": args.file,
                "namespace": mem._namespace,
                "names": names,
                "deleted": deleted,
            }
        )
        return 0
    print(
        f"imported {_count(names, 'name')} into namespace {mem._namespace!r} "
        f"from {where}"
    )
    if args.replace:
        print(f"deleted {_count(deleted, 'name')} that {where} does not contain")
    return 0


def _add_delete_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="NAME", help="the names to delete")


def _cmd_delete(args: argparse.Namespace) -> int:
    """Delete names, and everything stored under them; all must exist."""
    mem = _open_memory(args)
    for name in args.names:
        if name not in mem:
            raise _missing_name(mem, name)

    deleted = []
    for name in dict.fromkeys(args.names):
        try:
            del mem[name]
        except KeyError:
            # Another process deleted it since the check: the outcome is the same.
            pass
        deleted.append(name)

    if args.json:
        _print_json({"namespace": mem._namespace, "deleted": deleted})
    else:
        shown = ", ".join(repr(name) for name in deleted)
        print(f"deleted {shown} from namespace {mem._namespace!r}")
    return 0


def _count(items: Sequence[object], noun: str) -> str:
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")


# demo


def _cmd_demo(args: argparse.Namespace) -> int:
    """Run the core walkthrough and check it from a second process."""
    if args.json:
        raise _CommandError("demo prints a walkthrough and has no --json output")
    namespace = DEMO_NAMESPACE if args.namespace is None else args.namespace
    return run_demo(args.url, config.resolve_namespace(namespace), out=sys.stdout)


# server


def _add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=("status", "start", "stop"),
        help="show the server's state, start it, or stop it after flushing its AOF",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="maximum time to wait for the server to start or stop (default: 10)",
    )


def _cmd_server(args: argparse.Namespace) -> int:
    """Show, start or stop the embedded server of the configured data directory."""
    if args.url is not None:
        raise _CommandError(
            "--url cannot be used with `server`, which manages the embedded server "
            f"in {config.data_dir()}"
        )
    server = EmbeddedServer(config.data_dir())

    if args.action == "stop":
        was_running = server.stop(timeout=args.timeout)
        if args.json:
            _print_json({"was_running": was_running, "data_dir": str(server.data_dir)})
        elif was_running:
            print(f"stopped the embedded server of {server.data_dir}")
        else:
            print(f"the embedded server of {server.data_dir} was not running")
        return 0

    _warn_if_url_configured()
    if args.action == "start":
        was_running = server.status().running
        server.ensure_running(timeout=args.timeout)
        status = server.status()
        if not args.json:
            verb = "is already running" if was_running else "started"
            print(f"the embedded server {verb} (pid {status.pid}) at {status.url}")
            return 0
    else:
        status = server.status()

    if args.json:
        _print_json(_status_to_dict(status))
    else:
        print(_format_status(status))
    return 0


def _warn_if_url_configured() -> None:
    """Tell the user on stderr when the library connects to a URL, not this server."""
    for variable in (config.URL_ENV, config.URL_FALLBACK_ENV):
        url = os.environ.get(variable)
        if url:
            print(
                f"{_PROG}: note: ${variable} is set, so redis-memory connects to "
                f"{config.mask_url(url)}, not to the embedded server",
                file=sys.stderr,
            )
            return


def _status_to_dict(status: ServerStatus) -> dict[str, Any]:
    fields = dataclasses.asdict(status)
    fields["data_dir"] = str(status.data_dir)
    return fields


def _format_status(status: ServerStatus) -> str:
    """Format the status as aligned ``name: value`` lines."""
    rows = [("embedded server", "running" if status.running else "not running")]
    if status.pid is not None:
        rows.append(("pid", str(status.pid)))
    if status.url is not None:
        rows.append(("url", status.url))
    rows.append(("data dir", str(status.data_dir)))
    if status.version is not None:
        rows.append(("version", f"Valkey {status.version}"))
    if status.uptime_seconds is not None:
        rows.append(("uptime", f"{status.uptime_seconds} s"))
    if status.used_memory_bytes is not None:
        rows.append(("memory used", f"{status.used_memory_bytes / 2**20:.1f} MiB"))

    width = max(len(name) for name, _ in rows) + 1
    return "\n".join(f"{name + ':':<{width}} {value}" for name, value in rows)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


_COMMANDS: dict[str, _Command] = {
    "ls": _Command(
        help="list the stored names with their type, size and last change",
        add_arguments=_no_arguments,
        run=_cmd_ls,
    ),
    "show": _Command(
        help="print one stored value as JSON",
        add_arguments=_add_show_arguments,
        run=_cmd_show,
    ),
    "export": _Command(
        help="write every name of the namespace to a JSON file",
        add_arguments=_add_export_arguments,
        run=_cmd_export,
    ),
    "import": _Command(
        help="store the names of a file written by `export`",
        add_arguments=_add_import_arguments,
        run=_cmd_import,
    ),
    "delete": _Command(
        help="delete stored names and everything stored under them",
        add_arguments=_add_delete_arguments,
        run=_cmd_delete,
    ),
    "demo": _Command(
        help="store the core walkthrough and check it from a second process",
        add_arguments=_no_arguments,
        run=_cmd_demo,
    ),
    "server": _Command(
        help="show, start or stop the embedded Valkey server",
        add_arguments=_add_server_arguments,
        run=_cmd_server,
    ),
}
