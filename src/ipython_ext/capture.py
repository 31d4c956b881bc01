"""Recording what a cell shows while it still shows it, and replaying it later.

`OutputRecorder` wraps, for the duration of a cell, the ``write`` method of
``sys.stdout`` and ``sys.stderr``, the shell's display publisher and its
display hook. Everything still reaches the screen at once (a long cell's
progress stays visible); a copy goes into an ordered list of outputs that can
be stored next to the cell's values. `replay` shows such a list again.

`ErrorTrap` keeps a nested ``run_cell`` from showing its error, so that the
magic which ran it can raise the error once, with the traceback IPython
prepared for it.

Caveats
-------
Output written straight to the file descriptors (by C code or a subprocess
that does not go through ``sys.stdout``) is shown but not recorded. Widgets
are not recorded, because their models do not outlive the kernel. Each stream
is recorded up to one million characters.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from IPython.core.interactiveshell import ExecutionResult

__all__ = ["CellSyntaxError", "ErrorTrap", "Output", "OutputRecorder", "replay"]

Output = dict[str, Any]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
MAX_STREAM_CHARS = 1_000_000
_ABSENT = object()


class _Patches:
    """Instance attributes replaced for a while, and put back in reverse order."""

    def __init__(self) -> None:
        self._saved: list[tuple[object, str, object]] = []

    def replace(self, target: object, attribute: str, value: object) -> bool:
        """Set ``target.attribute`` to ``value``; return False if it cannot be set."""
        previous = (
            vars(target).get(attribute, _ABSENT)
            if hasattr(target, "__dict__")
            else _ABSENT
        )
        try:
            setattr(target, attribute, value)
        except (AttributeError, TypeError):
            return False
        self._saved.append((target, attribute, previous))
        return True

    def restore(self) -> None:
        """Put every replaced attribute back."""
        while self._saved:
            target, attribute, previous = self._saved.pop()
            if previous is _ABSENT:
                vars(target).pop(attribute, None)
            else:
                setattr(target, attribute, previous)


class OutputRecorder:
    """Record, in order, the text, rich displays and result a cell shows.

    Parameters
    ----------
    shell : InteractiveShell
        The shell whose streams, display publisher and display hook to watch.

    Attributes
    ----------
    outputs : list of dict
        ``{"type": "stream", "name": "stdout" | "stderr", "text": str}`` or
        ``{"type": "display", "data": mimebundle, "metadata": dict}``.
        ``clear_output()`` empties the list, as it empties the output area.
    """

    def __init__(self, shell: Any) -> None:
        self.shell: Any = shell
        self.outputs: list[Output] = []
        self._by_display_id: dict[str, Output] = {}
        self._chars = {"stdout": 0, "stderr": 0}
        self._patches = _Patches()

    def __enter__(self) -> OutputRecorder:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            self._patches.replace(stream, "write", self._writer(name, stream.write))
        publisher = self.shell.display_pub
        self._patches.replace(publisher, "publish", self._publisher(publisher.publish))
        self._patches.replace(
            publisher, "clear_output", self._clearer(publisher.clear_output)
        )
        hook = self.shell.displayhook
        self._patches.replace(
            hook, "write_format_data", self._result_writer(hook.write_format_data)
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._patches.restore()

    # -- wrappers -------------------------------------------------------------

    def _writer(self, name: str, write: Callable[..., Any]) -> Callable[..., Any]:
        def recording_write(text: Any, *args: Any, **kwargs: Any) -> Any:
            written = write(text, *args, **kwargs)
            if isinstance(text, str) and text and not self._echoing():
                self._add_text(name, text)
            return written

        return recording_write

    def _publisher(self, publish: Callable[..., Any]) -> Callable[..., Any]:
        def recording_publish(*args: Any, **kwargs: Any) -> Any:
            published = publish(*args, **kwargs)
            data = kwargs.get("data", args[0] if args else None)
            metadata = kwargs.get("metadata", args[1] if len(args) > 1 else None)
            transient = kwargs.get("transient") or {}
            self._add_display(
                data, metadata, transient.get("display_id"), bool(kwargs.get("update"))
            )
            return published

        return recording_publish

    def _clearer(self, clear: Callable[..., Any]) -> Callable[..., Any]:
        def recording_clear(*args: Any, **kwargs: Any) -> Any:
            cleared = clear(*args, **kwargs)
            self.outputs.clear()
            self._by_display_id.clear()
            self._chars = {"stdout": 0, "stderr": 0}
            return cleared

        return recording_clear

    def _result_writer(self, write: Callable[..., Any]) -> Callable[..., Any]:
        def recording_write_format_data(
            format_dict: Any, md_dict: Any = None, *args: Any, **kwargs: Any
        ) -> Any:
            written = write(format_dict, md_dict, *args, **kwargs)
            self._add_display(format_dict, md_dict, None, update=False)
            return written

        return recording_write_format_data

    # -- recording ------------------------------------------------------------

    def _echoing(self) -> bool:
        """Whether stream text now is a display or traceback being printed."""
        shell = self.shell
        return bool(
            getattr(shell.display_pub, "is_publishing", False)
            or getattr(shell.displayhook, "is_active", False)
            or getattr(shell, "showing_traceback", False)
        )

    def _add_text(self, name: str, text: str) -> None:
        room = MAX_STREAM_CHARS - self._chars[name]
        if room <= 0:
            return
        if len(text) > room:
            text = (
                text[:room]
                + "\n[redis-memory: the rest of this output was not recorded]\n"
            )
        self._chars[name] += len(text)
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last["type"] == "stream" and last["name"] == name:
            last["text"] += text
        else:
            self.outputs.append({"type": "stream", "name": name, "text": text})

    def _add_display(
        self, data: Any, metadata: Any, display_id: str | None, update: bool
    ) -> None:
        if not isinstance(data, dict) or not data or WIDGET_MIME in data:
            return
        output = {
            "type": "display",
            "data": _jsonable(data),
            "metadata": _jsonable(metadata) if isinstance(metadata, dict) else {},
        }
        earlier = self._by_display_id.get(display_id) if display_id else None
        if update and earlier is not None:
            earlier.update(output)
            return
        self.outputs.append(output)
        if display_id:
            self._by_display_id[display_id] = output


def _jsonable(value: Any) -> Any:
    """Return ``value`` with only JSON types and bytes, so it can be stored."""
    if isinstance(value, (str, bytes, bool, int, float)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return str(value)


def replay(shell: Any, outputs: list[Output]) -> None:
    """Show recorded outputs again, in their order, through ``shell``."""
    for output in outputs:
        if output.get("type") == "stream":
            stream = sys.stderr if output.get("name") == "stderr" else sys.stdout
            stream.write(str(output.get("text", "")))
            stream.flush()
        elif output.get("type") == "display":
            shell.display_pub.publish(
                data=dict(output.get("data") or {}),
                metadata=dict(output.get("metadata") or {}),
            )


class CellSyntaxError(Exception):
    """A ``%%remember`` cell does not compile; shown as IPython shows a syntax error."""

    def __init__(self, error: BaseException, traceback: list[str]) -> None:
        super().__init__(str(error))
        self._traceback = traceback

    def _render_traceback_(self) -> list[str]:
        return list(self._traceback)


class ErrorTrap:
    """Keep a nested ``run_cell`` from showing its error; `raise_error` shows it once.

    Parameters
    ----------
    shell : InteractiveShell
        The shell whose ``_showtraceback`` and ``show_usage_error`` to intercept.
    """

    def __init__(self, shell: Any) -> None:
        self.shell: Any = shell
        self.kept: list[tuple[Any, Any, list[str]]] = []
        self._patches = _Patches()

    def __enter__(self) -> ErrorTrap:
        self._patches.replace(self.shell, "_showtraceback", self._keep_traceback)
        self._patches.replace(self.shell, "show_usage_error", self._keep_usage_error)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._patches.restore()

    def _keep_traceback(self, etype: Any, evalue: Any, stb: list[str]) -> None:
        self.kept.append((etype, evalue, list(stb)))

    def _keep_usage_error(self, exc: BaseException) -> None:
        self.kept.append((UsageError, exc, [f"UsageError: {exc}"]))

    def raise_error(self, result: ExecutionResult) -> None:
        """Show what the nested run kept back, and raise its error, if any.

        Tracebacks of other errors (a failing event callback, say) are shown
        as they would have been. The cell's own error is raised, keeping its
        type; its ``_render_traceback_`` gives the traceback the nested run
        prepared, without the magic's own frames, so the cell fails once.
        """
        __tracebackhide__ = True
        error = result.error_before_exec or result.error_in_exec
        stb = None
        for etype, evalue, kept in self.kept:
            if error is not None and evalue is error:
                stb = kept
            else:
                self.shell._showtraceback(etype, evalue, kept)
        if error is None:
            return
        if stb is None or isinstance(error, UsageError):
            raise error
        if isinstance(error, SyntaxError):
            raise CellSyntaxError(error, stb) from None
        if not isinstance(error, self.shell.custom_exceptions):
            try:
                error._render_traceback_ = lambda: list(stb)  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
        raise error
