"""One line, not a traceback, when a cell cannot reach the Redis server.

`OutageHandler` registers ``ServerUnavailableError`` with the shell's
``set_custom_exc``. A cell that raises it, from a magic or from code such as
``mem.results.append(1)``, fails as usual (so "Run All" stops) but shows only
the error's message, which names the server and what to do. The next cell
tries the server again, so the notebook keeps working once it is back.

IPython holds one custom exception handler per shell. A handler that was set
before the extension loaded keeps handling its own exception types, and is
put back when the extension unloads.
"""

from __future__ import annotations

from typing import Any

from redis_memory import ServerUnavailableError

__all__ = ["OutageHandler", "outage_line"]


def outage_line(error: BaseException) -> str:
    """Return the text shown for an unreachable server."""
    return f"{type(error).__name__}: {error}"


class OutageHandler:
    """The shell's custom exception handler while the extension is loaded.

    Parameters
    ----------
    shell : InteractiveShell
        The shell to install the handler into.
    """

    def __init__(self, shell: Any) -> None:
        self.shell: Any = shell
        self._previous_types: tuple[type[BaseException], ...] = shell.custom_exceptions
        self._previous_handler: Any = shell.CustomTB
        shell.set_custom_exc(
            (*self._previous_types, ServerUnavailableError), self._handle
        )
        self._installed: Any = shell.CustomTB

    def _handle(
        self,
        shell: Any,
        etype: type[BaseException],
        value: BaseException,
        tb: Any,
        tb_offset: int | None = None,
    ) -> list[str]:
        if not issubclass(etype, ServerUnavailableError):
            result = self._previous_handler(etype, value, tb, tb_offset=tb_offset)
            return [] if result is None else list(result)
        shell._showtraceback(etype, value, [outage_line(value)])
        return []

    def uninstall(self) -> None:
        """Put the previous handler back, unless someone replaced ours since."""
        if self.shell.CustomTB is self._installed:
            self.shell.custom_exceptions = self._previous_types
            self.shell.CustomTB = self._previous_handler
