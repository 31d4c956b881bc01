"""The ``redis-memory`` command line tool, also run as ``python -m redis_memory``.

Usage::

    redis-memory [--url URL] [--namespace NAME] [--json] COMMAND ...
    redis-memory server status|start|stop [--timeout SECONDS]

Each command is a ``_cmd_<name>(args) -> int`` function, registered in
`_COMMANDS` together with the function that adds its arguments to its
subparser. The global options ``--url``, ``--namespace`` and ``--json`` are
accepted before and after the command name.

The exit status is 0 on success, 1 when the command fails (with a one-line
message on stderr) and 2 when argparse rejects the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from redis_memory import config
from redis_memory.errors import EmbeddedServerError, RedisMemoryError
from redis_memory.server import EmbeddedServer, ServerStatus

__all__ = ["main"]

_PROG = "redis-memory"


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
    except (_CommandError, RedisMemoryError, OSError, ValueError) as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        return 130


def _fail(message: str) -> int:
    """Print ``message`` as a single line on stderr and return exit status 1."""
    one_line = " ".join(message.split("\n"))
    print(f"{_PROG}: error: {one_line}", file=sys.stderr)
    return 1


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
    "server": _Command(
        help="show, start or stop the embedded Valkey server",
        add_arguments=_add_server_arguments,
        run=_cmd_server,
    ),
}
