"""The IPython extension in a plain (terminal) IPython shell: every magic, option and error."""

from __future__ import annotations

import ast
import inspect
import os
import shutil
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.formatters import DisplayFormatter
from IPython.core.getipython import get_ipython
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.testing.globalipapp import start_ipython
from IPython.utils.capture import capture_output
from traitlets import TraitError

import ipython_ext
from ipython_ext import cells
from ipython_ext.capture import CellSyntaxError
from ipython_ext.cells import CellRecord, cell_digest, normalise, record_name
from ipython_ext.names import Snapshot, SyntaxNames, is_shell_name
from ipython_ext.session import PendingMemory
from ipython_ext.settings import RedisMemory
from redis_memory import (
    Memory,
    OutcomeUnknownError,
    ServerUnavailableError,
    SyncedDict,
    SyncedList,
)
from redis_memory import connection as connection_module
from redis_memory.server import EmbeddedServer

# A 1x1 PNG, for rich output that is not text.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2b3f0"
    "5c0000000049454e44ae426082"
)

# ---------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------


@dataclass
class Ran:
    """What one cell did: its result and everything it showed."""

    result: ExecutionResult
    stdout: str
    stderr: str
    displays: list[dict[str, Any]]

    @property
    def text(self) -> str:
        shown = [bundle.get("text/plain", "") for bundle in self.displays]
        return "\n".join([self.stdout, self.stderr, *shown])

    @property
    def notes(self) -> list[str]:
        """The text/plain lines of the displays, one per display."""
        return [bundle.get("text/plain", "") for bundle in self.displays]

    @property
    def error(self) -> BaseException | None:
        return self.result.error_before_exec or self.result.error_in_exec


def run(shell: InteractiveShell, code: str) -> Ran:
    """Run ``code`` as a cell and capture what it shows."""
    with capture_output() as captured:
        result = shell.run_cell(textwrap.dedent(code))
    return Ran(
        result,
        captured.stdout,
        captured.stderr,
        [dict(output.data) for output in captured.outputs],
    )


def ok(shell: InteractiveShell, code: str) -> Ran:
    """Run ``code`` and assert that it succeeded."""
    ran = run(shell, code)
    assert ran.error is None, ran.text
    return ran


@pytest.fixture(scope="session")
def shell() -> InteractiveShell:
    """The test process's terminal IPython shell."""
    start_ipython()
    ip = get_ipython()
    assert ip is not None
    return ip


@pytest.fixture
def ip(
    shell: InteractiveShell,
    namespace: str,
    server_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[InteractiveShell]:
    """The shell, with REDIS_MEMORY_NAMESPACE set to a fresh namespace; cleaned up after."""
    monkeypatch.setenv("REDIS_MEMORY_NAMESPACE", namespace)
    names_before = set(shell.user_ns)
    yield shell
    ipython_ext.unload_ipython_extension(shell)
    shell.extension_manager.loaded.discard("redis_memory")
    shell.config.pop("RedisMemory", None)
    for name in set(shell.user_ns) - names_before:
        del shell.user_ns[name]
    for suffix in ("", "-other"):
        Memory(namespace=namespace + suffix)._clear()


@pytest.fixture
def loaded(ip: InteractiveShell) -> InteractiveShell:
    """The shell with the extension loaded."""
    ok(ip, "%load_ext redis_memory")
    return ip


@pytest.fixture
def stored(namespace: str) -> Memory:
    """A separate Memory on the test's namespace, to check what is stored."""
    return Memory(namespace=namespace)


def record_of(memory: Memory, cell: str) -> CellRecord | None:
    """Return the record of a ``%%remember`` cell, or None."""
    body = cell.split("\n", 1)[1]
    digest = cell_digest(body, memory._namespace)
    try:
        value = memory[record_name(digest)]
    except KeyError:
        return None
    return CellRecord.from_value(value)


def remember(body: str, options: str = "") -> str:
    """Return a %%remember cell around ``body``."""
    return f"%%remember {options}\n" + textwrap.dedent(body)


def counted(body: str) -> str:
    """A %%remember cell that counts its executions in mem['executions']."""
    return remember(
        "mem['executions'] = mem['executions'] + 1 if 'executions' in mem else 1\n"
        + textwrap.dedent(body)
    )


def executions(memory: Memory) -> int:
    return int(memory["executions"]) if "executions" in memory else 0


def forget_variables(shell: InteractiveShell, *names: str) -> None:
    """Delete notebook variables, as a kernel restart would."""
    for name in names:
        shell.user_ns.pop(name, None)


def total_callbacks(shell: InteractiveShell) -> int:
    return sum(len(callbacks) for callbacks in shell.events.callbacks.values())


def our_configurables(shell: InteractiveShell) -> list[str]:
    names = [type(configurable).__name__ for configurable in shell.configurables]
    return sorted(
        name for name in names if name in ("RedisMemory", "RedisMemoryMagics")
    )


def our_magics(shell: InteractiveShell) -> dict[str, list[str]]:
    manager = shell.magics_manager
    return {
        kind: sorted(
            name
            for name, function in manager.magics[kind].items()
            if inspect.ismethod(function)
            and type(function.__self__).__name__ == "RedisMemoryMagics"
        )
        for kind in ("line", "cell")
    }


# ---------------------------------------------------------------------------
# loading and unloading
# ---------------------------------------------------------------------------


def test_load_binds_mem_and_prints_one_line(
    ip: InteractiveShell, namespace: str, server_url: str
) -> None:
    ran = ok(ip, "%load_ext redis_memory")

    assert isinstance(ip.user_ns["mem"], Memory)
    assert ip.user_ns["mem"]._namespace == namespace
    assert ran.stdout == ""
    assert len(ran.notes) == 1
    socket = server_url.removeprefix("unix://")
    assert ran.notes[0] == (
        f"redis-memory: mem is connected to embedded server ({socket}), "
        f"namespace {namespace!r}, 0 names stored"
    )


def test_load_line_counts_names_but_not_cell_records(
    ip: InteractiveShell, stored: Memory
) -> None:
    stored.a = 1
    ok(ip, "%load_ext redis_memory")
    ok(ip, remember("b = 2"))
    ok(ip, "%unload_ext redis_memory")

    ran = ok(ip, "%load_ext redis_memory")

    assert ran.notes[0].endswith(", 2 names stored")
    ran = ok(ip, "%reload_ext redis_memory")
    assert ran.notes[0].endswith(", 2 names stored")
    stored.c = 3
    ok(ip, "%unload_ext redis_memory")
    assert ok(ip, "%load_ext redis_memory").notes[0].endswith(", 3 names stored")


def test_mem_is_persistent(loaded: InteractiveShell, stored: Memory) -> None:
    ok(loaded, "mem.results = []\nmem.results.append(1)")
    assert stored.results == [1]


def test_load_twice_reload_and_unload_leave_no_trace(ip: InteractiveShell) -> None:
    callbacks = total_callbacks(ip)
    custom = (ip.custom_exceptions, ip.CustomTB)
    magics = {kind: dict(table) for kind, table in ip.magics_manager.magics.items()}
    one_set = {
        "cell": ["remember"],
        "line": ["forget", "mem", "recall", "remember"],
    }

    for command in (
        "%load_ext redis_memory",
        "%load_ext redis_memory",
        "%reload_ext redis_memory",
        "import ipython_ext; ipython_ext.load_ipython_extension(get_ipython())",
        "import redis_memory; redis_memory.load_ipython_extension(get_ipython())",
    ):
        ok(ip, command)
        assert our_magics(ip) == one_set
        assert set(ip.magics_manager.magics["line"]) == {
            *magics["line"],
            *one_set["line"],
        }
        assert set(ip.magics_manager.magics["cell"]) == {*magics["cell"], "remember"}
        assert total_callbacks(ip) == callbacks
        assert our_configurables(ip) == ["RedisMemory", "RedisMemoryMagics"]
        assert ip.custom_exceptions == (ServerUnavailableError,)

    ok(ip, "%unload_ext redis_memory")

    assert our_magics(ip) == {"cell": [], "line": []}
    assert ip.magics_manager.magics == magics  # IPython's own %recall is back
    assert "HistoryMagics" in repr(ip.find_line_magic("recall"))
    assert "RedisMemoryMagics" not in ip.magics_manager.registry
    assert total_callbacks(ip) == callbacks
    assert our_configurables(ip) == []
    assert (ip.custom_exceptions, ip.CustomTB) == custom
    assert "mem" not in ip.user_ns
    assert isinstance(run(ip, "%mem").error, UsageError)  # the magic is gone


def test_unload_leaves_a_rebound_name_alone(loaded: InteractiveShell) -> None:
    ok(loaded, "mem = 'mine'")
    ok(loaded, "%unload_ext redis_memory")
    assert loaded.user_ns["mem"] == "mine"


def test_unload_without_load_does_nothing(ip: InteractiveShell) -> None:
    ipython_ext.unload_ipython_extension(ip)
    assert "mem" not in ip.user_ns


def test_unload_puts_back_an_earlier_custom_exception_handler(
    ip: InteractiveShell,
) -> None:
    seen = []

    def handler(
        shell: Any, etype: Any, value: Any, tb: Any, tb_offset: Any = None
    ) -> None:
        seen.append(value)

    ip.set_custom_exc((KeyError,), handler)
    try:
        ok(ip, "%load_ext redis_memory")
        assert set(ip.custom_exceptions) == {KeyError, ServerUnavailableError}
        assert isinstance(run(ip, "{}['missing']").error, KeyError)
        assert len(seen) == 1
        ok(ip, "%unload_ext redis_memory")
        assert ip.custom_exceptions == (KeyError,)
        run(ip, "{}['again']")
        assert len(seen) == 2
    finally:
        ip.set_custom_exc((), None)


# ---------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------


def test_configuration_before_loading(ip: InteractiveShell, namespace: str) -> None:
    ip.config.RedisMemory.name = "store"
    ip.config.RedisMemory.namespace = namespace + "-other"

    ran = ok(ip, "%load_ext redis_memory")

    assert "mem" not in ip.user_ns
    assert ip.user_ns["store"]._namespace == namespace + "-other"
    assert "redis-memory: store is connected" in ran.notes[0]
    assert f"namespace '{namespace}-other'" in ran.notes[0]


def test_config_magic_reconnects(loaded: InteractiveShell, namespace: str) -> None:
    ran = ok(loaded, f"%config RedisMemory.namespace = '{namespace}-other'")

    assert loaded.user_ns["mem"]._namespace == namespace + "-other"
    assert f"namespace '{namespace}-other'" in ran.notes[-1]

    ok(loaded, "%config RedisMemory.name = 'store'")
    assert "mem" not in loaded.user_ns
    assert loaded.user_ns["store"]._namespace == namespace + "-other"
    ok(loaded, "store.x = 1")
    assert Memory(namespace=namespace + "-other").x == 1


def test_config_lists_the_settings(loaded: InteractiveShell) -> None:
    ran = ok(loaded, "%config RedisMemory")
    for setting in ("url", "namespace", "name", "autorestore"):
        assert f"RedisMemory.{setting}" in ran.text


def test_invalid_name_setting(loaded: InteractiveShell) -> None:
    with pytest.raises(
        TraitError,
        match="RedisMemory.name must be a Python identifier such as 'mem', not 'a b'",
    ):
        RedisMemory(name="a b")
    run(loaded, "%config RedisMemory.name = 'class'")  # traitlets logs the error
    assert isinstance(loaded.user_ns["mem"], Memory)
    assert "class" not in loaded.user_ns


def test_invalid_url_loads_and_magics_say_why(ip: InteractiveShell) -> None:
    ip.config.RedisMemory.url = "http://example.invalid"

    ran = ok(ip, "%load_ext redis_memory")

    assert isinstance(ip.user_ns["mem"], PendingMemory)
    assert "redis-memory: mem is not connected" in ran.notes[0]
    assert "invalid Redis URL" in ran.notes[0]
    ran = run(ip, "%mem")
    assert isinstance(ran.error, UsageError)
    assert "the scheme http:// is not supported" in ran.text


def test_autorestore_recalls_everything_at_load(
    ip: InteractiveShell, stored: Memory
) -> None:
    stored.tasks = [1, 2]
    stored.count = 3
    ip.config.RedisMemory.autorestore = True

    ran = ok(ip, "%load_ext redis_memory")

    assert ran.notes[0].endswith("2 names stored; recalled 2 names into the notebook")
    assert isinstance(ip.user_ns["tasks"], SyncedList)
    assert ip.user_ns["count"] == 3


# ---------------------------------------------------------------------------
# %%remember
# ---------------------------------------------------------------------------

CELL = """
scores = [0.91, 0.87]
config = {"lr": 0.1}
total = sum(scores)
print("computed", total)
"""


def test_first_run_executes_and_stores(
    loaded: InteractiveShell, stored: Memory
) -> None:
    ran = ok(loaded, counted(CELL))

    assert "computed 1.78" in ran.stdout
    assert stored.scores == [0.91, 0.87]
    assert stored.config == {"lr": 0.1}
    assert stored.total == pytest.approx(1.78)
    assert executions(stored) == 1
    assert ran.notes == [
        f"stored scores, config, total in redis-memory (namespace {stored._namespace!r})"
    ]
    assert isinstance(loaded.user_ns["scores"], SyncedList)
    assert isinstance(loaded.user_ns["config"], SyncedDict)


def test_unchanged_cell_is_restored_not_executed(
    loaded: InteractiveShell, stored: Memory
) -> None:
    ok(loaded, counted(CELL))
    forget_variables(loaded, "scores", "config", "total")

    ran = ok(loaded, counted(CELL))

    assert executions(stored) == 1
    assert ran.notes[0] == (
        "restored scores, config, total from redis-memory "
        "(cell unchanged; use --rerun to execute)"
    )
    assert "computed 1.78" in ran.stdout  # the output is replayed
    assert loaded.user_ns["total"] == pytest.approx(1.78)
    assert isinstance(loaded.user_ns["scores"], SyncedList)
    ok(loaded, "scores.append(0.5)")
    assert stored.scores == [0.91, 0.87, 0.5]


def test_trailing_whitespace_does_not_count_as_a_change(
    loaded: InteractiveShell, stored: Memory
) -> None:
    ok(loaded, counted(CELL))
    spaced = counted(CELL).replace("\n", "   \n") + "\n\n  \n"

    ran = ok(loaded, spaced)

    assert executions(stored) == 1
    assert ran.notes[0].startswith("restored ")


def test_changed_cell_runs_again(loaded: InteractiveShell, stored: Memory) -> None:
    ok(loaded, counted(CELL))

    ran = ok(loaded, counted(CELL.replace("0.87", "0.5")))

    assert executions(stored) == 2
    assert stored.scores == [0.91, 0.5]
    assert ran.notes[0].startswith("stored ")
    indented = counted(CELL.replace("0.87", "0.5")).replace("total = ", "total  = ")
    ok(loaded, indented)
    assert executions(stored) == 3


def test_rerun_forces_execution(loaded: InteractiveShell, stored: Memory) -> None:
    ok(loaded, counted(CELL))
    ran = ok(loaded, counted(CELL).replace("%%remember ", "%%remember --rerun"))
    assert executions(stored) == 2
    assert ran.notes[0].startswith("stored ")


def test_namespace_option_stores_elsewhere_and_is_part_of_the_key(
    loaded: InteractiveShell, namespace: str, stored: Memory
) -> None:
    other = Memory(namespace=namespace + "-other")
    cell = remember(
        "value = [1]\nruns = mem['runs'] = mem['runs'] + 1 if 'runs' in mem else 1"
    )
    in_other = cell.replace("%%remember ", f"%%remember --namespace {namespace}-other")

    ok(loaded, in_other)
    assert other.value == [1]
    assert "value" not in stored
    ok(loaded, in_other)
    assert stored.runs == 1
    ok(loaded, cell)  # same source, other namespace: runs
    assert stored.runs == 2
    assert stored.value == [1]


def test_exception_fails_the_cell_and_stores_nothing(
    loaded: InteractiveShell, stored: Memory
) -> None:
    cell = remember("""
        first = [1]
        print("before the error")
        second = 1 / 0
    """)

    ran = run(loaded, cell)

    assert isinstance(ran.error, ZeroDivisionError)
    assert loaded.last_execution_succeeded is False
    assert "before the error" in ran.stdout
    assert ran.stdout.count("ZeroDivisionError") == 2  # header and last line, once
    assert "run_cell_magic" not in ran.stdout
    assert "second = 1 / 0" in ran.stdout
    assert "first" not in stored
    assert record_of(stored, cell) is None
    assert loaded.user_ns["first"] == [1]  # the cell ran as far as it got


def test_syntax_error_fails_the_cell(loaded: InteractiveShell, stored: Memory) -> None:
    ran = run(loaded, remember("x = (1,\n"))
    assert isinstance(ran.error, CellSyntaxError)
    assert "SyntaxError" in ran.stdout
    assert ran.stdout.count("SyntaxError") == 1
    assert list(stored) == []


def test_usage_error_inside_the_cell_is_shown_once(loaded: InteractiveShell) -> None:
    ran = run(loaded, remember("%recall nothing_here"))
    assert isinstance(ran.error, UsageError)
    assert ran.text.count("nothing is stored under 'nothing_here'") == 1


def test_unstorable_value_is_reported_and_the_rest_stored(
    loaded: InteractiveShell, stored: Memory
) -> None:
    cell = counted("""
        import threading
        handle = None
        lock = threading.Lock()
        good = [1, 2]
    """)

    ran = ok(loaded, cell)

    assert stored.good == [1, 2]
    assert stored.handle is None
    assert "lock" not in stored
    failure = next(note for note in ran.notes if note.startswith("not stored: lock:"))
    assert "cannot store mem.lock" in failure
    assert "not supported" in failure
    assert ran.notes[-1] == (
        "the cell will run again next time, since not all of its names are stored"
    )
    assert record_of(stored, cell) is None
    ok(loaded, cell)
    assert executions(stored) == 2


def test_modules_functions_and_classes_are_skipped_and_recreated(
    loaded: InteractiveShell, stored: Memory
) -> None:
    cell = counted("""
        import json as js
        from os import path
        def double(x):
            return 2 * x
        class Point:
            pass
        square = lambda x: x * x
        value = double(21)
    """)

    ran = ok(loaded, cell)

    assert stored.value == 42
    assert ran.notes[1] == (
        "skipped js (module, imported again on restore), path (module, imported "
        "again on restore), double (function, defined again on restore), Point "
        "(class, defined again on restore), square (functions are not stored)"
    )
    forget_variables(loaded, "js", "path", "double", "Point", "square", "value")

    ran = ok(loaded, cell)

    assert executions(stored) == 1
    assert ran.notes[0] == (
        "restored value from redis-memory (cell unchanged; use --rerun to execute); "
        "not restored: square (functions are not stored)"
    )
    shown = ok(loaded, "print(double(value), js.dumps([1]), path.sep, Point.__name__)")
    assert shown.stdout == "84 [1] / Point\n"


def test_bound_names_beyond_plain_assignment(
    loaded: InteractiveShell, stored: Memory, tmp_path: Path
) -> None:
    script = tmp_path / "make.py"
    script.write_text("from_run = [7]\n")
    ok(loaded, "existing = [1]\nappended = [1]\nitemset = {'a': 1}\nuntouched = [5]")

    ok(
        loaded,
        remember(f"""
        a, (b, *c) = 1, (2, 3, 4)
        for i in range(2):
            pass
        with open({str(script)!r}) as handle_text:
            text = handle_text.read()
        if (w := 10) > 5:
            pass
        note: str = "annotated"
        n = 1
        n += 1
        def setter():
            global from_global
            from_global = "g"
        setter()
        exec("from_exec = 'e'")
        %run {script}
        existing += [2]
        appended.append(2)
        itemset['b'] = 2
        [hidden := 3 for _ in range(1)]
    """),
    )

    expected = {
        "a": 1, "b": 2, "c": [3, 4], "i": 1, "text": "from_run = [7]\n", "w": 10,
        "note": "annotated", "n": 2, "from_global": "g", "from_exec": "e",
        "from_run": [7], "existing": [1, 2], "appended": [1, 2],
        "itemset": {"a": 1, "b": 2}, "hidden": 3,
    }  # fmt: skip
    for name, value in expected.items():
        assert stored[name] == value, name
    assert "untouched" not in stored
    assert "handle_text" not in stored  # a closed file cannot be stored
    assert "_" not in stored


def test_cell_that_binds_nothing_runs_once(
    loaded: InteractiveShell, stored: Memory
) -> None:
    cell = remember("mem['log'] = [*mem['log'], 'ran'] if 'log' in mem else ['ran']")
    assert ok(loaded, cell).notes == []
    ran = ok(loaded, cell)
    assert ran.notes == [
        "redis-memory: not executed, nothing to restore "
        "(cell unchanged; use --rerun to execute)"
    ]
    assert stored.log == ["ran"]


def test_top_level_await_in_a_terminal(
    loaded: InteractiveShell, stored: Memory
) -> None:
    ok(loaded, remember("import asyncio\nawait asyncio.sleep(0)\nlate = [1]"))
    assert stored.late == [1]


def test_ipython_names_are_never_stored(
    loaded: InteractiveShell, stored: Memory
) -> None:
    ok(loaded, "1 + 1")
    ok(loaded, remember("x = 1\n_ = 5\nIn\n"))
    assert [name for name in stored if not name.startswith("__remember__:")] == ["x"]


def test_restore_runs_again_when_a_name_was_forgotten(
    loaded: InteractiveShell, stored: Memory
) -> None:
    ok(loaded, counted(CELL))
    ok(loaded, "%forget config")

    ran = ok(loaded, counted(CELL))

    assert executions(stored) == 2
    assert (
        ran.notes[0]
        == "redis-memory: config is no longer stored, so the cell runs again"
    )
    assert stored.config == {"lr": 0.1}


def test_outputs_are_recorded_in_order_and_replayed(
    loaded: InteractiveShell, stored: Memory
) -> None:
    # A terminal formats only text/plain, so the rich outputs are raw mimebundles.
    cell = counted(f"""
        import sys
        from IPython.display import display
        print("one")
        display({{"text/html": "<b>two</b>", "text/plain": "two"}}, raw=True)
        print("three", file=sys.stderr)
        display({{"image/png": {PNG!r}, "text/plain": "<image>"}}, raw=True)
        result = 41
        result + 1
    """)

    ok(loaded, cell)

    record = record_of(stored, cell)
    assert record is not None
    kinds = [
        output.get("name") or next(iter(sorted(output["data"])))
        for output in record.outputs
    ]
    assert kinds == ["stdout", "text/html", "stderr", "image/png", "text/plain"]
    assert record.outputs[-1]["data"]["text/plain"] == "42"

    ran = ok(loaded, cell)

    assert executions(stored) == 1
    assert ran.stdout == "one\n"
    assert ran.stderr == "three\n"
    assert ran.displays[1]["text/html"] == "<b>two</b>"
    assert "image/png" in ran.displays[2]
    assert ran.displays[3]["text/plain"] == "42"


def test_clear_output_and_display_updates_are_followed(
    loaded: InteractiveShell, stored: Memory
) -> None:
    cell = remember("""
        from IPython.display import clear_output, display
        print("gone")
        clear_output()
        handle = display("first", display_id=True)
        handle.update("second")
        print("kept")
        del handle
    """)

    ok(loaded, cell)

    record = record_of(stored, cell)
    assert record is not None
    assert record.outputs == [
        {"type": "display", "data": {"text/plain": "'second'"}, "metadata": {}},
        {"type": "stream", "name": "stdout", "text": "kept\n"},
    ]


def test_cell_records_are_hidden(loaded: InteractiveShell, stored: Memory) -> None:
    ok(loaded, remember("x = 1"))
    assert len(list(stored)) == 2
    assert "__remember__" not in ok(loaded, "%mem").text
    forget_variables(loaded, "x")
    assert ok(loaded, "%recall").notes == ["recalled x from redis-memory"]


@pytest.mark.parametrize("error", [ServerUnavailableError, OutcomeUnknownError])
def test_outage_while_storing_says_the_cell_ran(
    loaded: InteractiveShell,
    monkeypatch: pytest.MonkeyPatch,
    error: type[ServerUnavailableError],
) -> None:
    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise error("cannot reach Redis at unix:///nowhere")

    monkeypatch.setattr(cells, "store_values", unreachable)

    ran = run(loaded, remember("x = 1"))

    assert type(ran.error) is error
    assert ran.stdout.strip() == (
        f"{error.__name__}: the cell ran, but storing its names failed: "
        "cannot reach Redis at unix:///nowhere"
    )
    assert loaded.user_ns["x"] == 1


# ---------------------------------------------------------------------------
# %remember, %recall, %forget
# ---------------------------------------------------------------------------


def test_remember_names(loaded: InteractiveShell, stored: Memory) -> None:
    ok(loaded, "a = [1]\nb = 'text'\nimport json")

    ran = ok(loaded, "%remember a b json")

    assert stored.a == [1]
    assert stored.b == "text"
    assert ran.notes == [
        f"stored a, b in redis-memory (namespace {stored._namespace!r})",
        "skipped json (modules are not stored)",
    ]
    assert isinstance(loaded.user_ns["a"], SyncedList)


def test_remember_an_already_synced_value_writes_nothing(
    loaded: InteractiveShell, stored: Memory
) -> None:
    ok(loaded, "a = [1]\n%remember a")
    version = stored._version()
    assert ok(loaded, "%remember a").notes[0].startswith("stored a ")
    assert stored._version() == version


def test_remember_namespace_option(loaded: InteractiveShell, namespace: str) -> None:
    ok(loaded, f"a = 1\n%remember -n {namespace}-other a")
    assert Memory(namespace=namespace + "-other").a == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%remember", "name the variables to store, for example: %remember x y"),
        ("%remember nowhere", "there is no variable named 'nowhere' in the notebook"),
        ("%remember _i1", "_i1 is IPython's own variable; it is not stored"),
        ("%remember mem", "mem is the Memory of redis-memory; its names are stored"),
        ("%recall __remember__:0", "nothing is stored under '__remember__:0'"),
        ("%remember --bogus", "unrecognized arguments: --bogus"),
        ("%recall 'unbalanced", "cannot parse the arguments"),
        ("%recall nothing", "nothing is stored under 'nothing' in namespace"),
        (
            "%forget",
            "name what to forget, for example: %forget x y; or forget everything",
        ),
        ("%forget a --all", "give either names or --all, not both"),
        ("%forget nothing", "nothing is stored under 'nothing'"),
        ("%mem extra", "unrecognized arguments: extra"),
    ],
)
def test_usage_errors(loaded: InteractiveShell, line: str, message: str) -> None:
    ran = run(loaded, line)
    assert isinstance(ran.error, UsageError)
    assert message in str(ran.error)
    assert "Traceback" not in ran.text


def test_remember_reports_unstorable_values(
    loaded: InteractiveShell, stored: Memory
) -> None:
    ok(loaded, "import threading\nlock = threading.Lock()\nfine = 1")
    ran = ok(loaded, "%remember lock fine")
    assert stored.fine == 1
    assert ran.notes[1].startswith("not stored: lock: cannot store mem.lock")


def test_recall_all_and_some(loaded: InteractiveShell, stored: Memory) -> None:
    stored.tasks = [1]
    stored.config = {"a": 1}
    stored["mem"] = "never over the binding"

    ran = ok(loaded, "%recall")

    assert ran.notes == ["recalled tasks, config from redis-memory"]
    assert isinstance(loaded.user_ns["tasks"], SyncedList)
    assert isinstance(loaded.user_ns["mem"], Memory)
    forget_variables(loaded, "tasks", "config")
    assert ok(loaded, "%recall config").notes == ["recalled config from redis-memory"]
    assert "tasks" not in loaded.user_ns


def test_recall_empty_namespace(loaded: InteractiveShell, namespace: str) -> None:
    assert ok(loaded, "%recall").notes == [
        f"nothing is stored in namespace {namespace!r}"
    ]


def test_recall_missing_names_recalls_nothing(
    loaded: InteractiveShell, stored: Memory
) -> None:
    stored.there = 1
    ran = run(loaded, "%recall there missing other")
    assert str(ran.error).startswith(
        "nothing is stored under 'missing', 'other' in namespace"
    )
    assert "there" not in loaded.user_ns


def test_forget_names_keeps_plain_copies(
    loaded: InteractiveShell, stored: Memory
) -> None:
    ok(loaded, "a = [1, 2]\nb = {'k': 1}\nc = 3\n%remember a b c")

    ran = ok(loaded, "%forget a c")

    assert ran.notes == [f"forgot a, c (namespace {stored._namespace!r})"]
    assert sorted(stored) == ["b"]
    assert type(loaded.user_ns["a"]) is list
    assert loaded.user_ns["a"] == [1, 2]
    assert isinstance(loaded.user_ns["b"], SyncedDict)


def test_forget_missing_name_deletes_nothing(
    loaded: InteractiveShell, stored: Memory
) -> None:
    stored.a = 1
    assert isinstance(run(loaded, "%forget a missing").error, UsageError)
    assert stored.a == 1


def test_forget_all(loaded: InteractiveShell, stored: Memory) -> None:
    ok(loaded, "a = [1]\n%remember a")
    ok(loaded, remember("b = 2"))

    ran = ok(loaded, "%forget --all")

    assert ran.notes == [f"forgot all 2 names of namespace {stored._namespace!r}"]
    assert list(stored) == []
    assert loaded.user_ns["a"] == [1]
    assert type(loaded.user_ns["a"]) is list


# ---------------------------------------------------------------------------
# %mem
# ---------------------------------------------------------------------------


def test_mem_table_text_and_html(loaded: InteractiveShell, stored: Memory) -> None:
    stored.tasks = [1, 2, 3]
    stored.config = {"a": 1}
    stored["<b>odd name</b>"] = "abcd"
    stored.number = 7

    table = loaded.run_line_magic("mem", "")
    text = repr(table)
    html = table._repr_html_()

    lines = text.splitlines()
    assert lines[0].startswith(f"namespace {stored._namespace!r} on embedded server (")
    assert lines[0].endswith(": 4 names")
    assert lines[1].split() == ["name", "type", "size", "modified"]
    assert lines[2].split()[:3] == ["tasks", "list", "3"]
    assert lines[3].split()[:3] == ["config", "dict", "1"]
    assert lines[4].split()[:4] == ["<b>odd", "name</b>", "str", "4"]
    assert lines[5].split()[:2] == ["number", "int"]
    assert len(lines[5].split()) == 4  # no size, a date and a time
    assert "&lt;b&gt;odd name&lt;/b&gt;" in html
    assert "<b>odd" not in html
    assert html.count("<tr>") == 5


def test_mem_shows_html_in_jupyter_and_text_in_a_terminal(
    loaded: InteractiveShell,
) -> None:
    ok(loaded, "mem.x = 1")
    table = loaded.run_line_magic("mem", "")
    formatted, _ = DisplayFormatter().format(table)  # Jupyter's formats
    assert formatted["text/html"].startswith('<table class="redis-memory">')
    assert formatted["text/plain"].splitlines()[1].split() == [
        "name", "type", "size", "modified",
    ]  # fmt: skip


def test_mem_empty_namespace(loaded: InteractiveShell, namespace: str) -> None:
    text = repr(loaded.run_line_magic("mem", ""))
    assert text.startswith(f"namespace {namespace!r} on embedded server (")
    assert "\n" not in text
    assert text.endswith(": 0 names")


def test_mem_other_namespace(loaded: InteractiveShell, namespace: str) -> None:
    Memory(namespace=namespace + "-other").y = "x"
    text = repr(loaded.run_line_magic("mem", f"--namespace {namespace}-other"))
    assert text.splitlines()[2].split()[:3] == ["y", "str", "1"]


def test_mem_watch_without_the_widget(
    loaded: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "redis_memory.widgets", None)
    ran = run(loaded, "%mem --watch")
    assert isinstance(ran.error, UsageError)
    assert "%mem --watch needs the live view redis_memory.widgets.MemoryView" in str(
        ran.error
    )


def test_mem_watch_returns_a_live_view_closed_at_unload(
    loaded: InteractiveShell,
) -> None:
    widgets = pytest.importorskip("redis_memory.widgets")
    view = loaded.run_line_magic("mem", "--watch")
    assert isinstance(view, widgets.MemoryView)
    ok(loaded, "%unload_ext redis_memory")
    assert view._closed


def test_magic_help_is_the_docstring(loaded: InteractiveShell) -> None:
    cell_help = loaded.find_cell_magic("remember").__doc__
    line_help = loaded.find_line_magic("remember").__doc__
    assert "%%remember [--rerun] [-n NAMESPACE]" in cell_help
    assert "Run the cell once and store every name it binds" in cell_help
    assert "%remember [-n NAMESPACE] [NAME ...]" in line_help
    for name in ("recall", "forget", "mem"):
        assert f"%{name} " in loaded.find_line_magic(name).__doc__


# ---------------------------------------------------------------------------
# an unreachable server
# ---------------------------------------------------------------------------


@pytest.fixture
def down_server() -> Iterator[EmbeddedServer]:
    """A server that is not running yet; its connection gives up after 0.3 s."""
    directory = Path("/tmp") / f"rm-down-{uuid.uuid4().hex[:8]}"
    server = EmbeddedServer(directory)
    connection_module.connect(server.url)._retry_seconds = 0.3
    yield server
    server.stop()
    connection_module._connections.pop(server.url, None)
    shutil.rmtree(directory, ignore_errors=True)


def test_unreachable_server_at_load_and_later(
    ip: InteractiveShell, down_server: EmbeddedServer, namespace: str
) -> None:
    ip.config.RedisMemory.url = down_server.url

    ran = ok(ip, "%load_ext redis_memory")

    line = ran.notes[0]
    assert line.startswith(f"redis-memory: mem is not connected to {down_server.url} ")
    assert f"(namespace {namespace!r}): cannot reach Redis at {down_server.url}" in line
    assert line.endswith("; it connects when first used")
    assert "\n" not in line

    for cell in ("%mem", "mem.x = 1", remember("y = 1"), "%recall"):
        ran = run(ip, cell)
        assert isinstance(ran.error, ServerUnavailableError), cell
        assert ran.stdout.startswith("ServerUnavailableError: "), cell
        assert ran.stdout.count("\n") == 1, ran.stdout
        assert "Traceback" not in ran.text

    down_server.ensure_running()

    ok(ip, "mem.x = 1")
    assert "y" not in ip.user_ns
    ok(ip, remember("y = [1]"))
    assert isinstance(ip.user_ns["y"], SyncedList)
    assert repr(ip.run_line_magic("mem", "")).splitlines()[0].endswith(": 2 names")
    ip.user_ns["mem"]._clear()


def test_embedded_server_that_cannot_start_binds_a_pending_memory(
    ip: InteractiveShell,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    server_url: str,
    namespace: str,
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    real_data_dir = os.environ["REDIS_MEMORY_DATA_DIR"]
    monkeypatch.setattr(connection_module, "_connections", {})
    monkeypatch.setenv("REDIS_MEMORY_DATA_DIR", str(not_a_directory))

    ran = ok(ip, "%load_ext redis_memory")

    pending = ip.user_ns["mem"]
    assert isinstance(pending, PendingMemory)
    assert ran.notes[0].startswith(
        f"redis-memory: mem is not connected (namespace {namespace!r}): "
    )
    assert ran.notes[0].endswith("; it connects when first used")
    assert "not connected to embedded server" in repr(pending)
    assert isinstance(run(ip, "mem.x = 1").error, ServerUnavailableError)
    with pytest.raises(AttributeError):
        pending._repr_html_  # IPython's display probes never connect

    monkeypatch.setenv("REDIS_MEMORY_DATA_DIR", real_data_dir)

    ok(ip, "mem.x = 1")
    assert isinstance(ip.user_ns["mem"], Memory)
    assert Memory(namespace=namespace).x == 1
    assert pending["x"] == 1
    assert "x" in pending
    assert list(pending) == ["x"]
    assert len(pending) == 1
    assert pending._names() == ["x"]


# ---------------------------------------------------------------------------
# the pieces: digest, names, snapshot, records
# ---------------------------------------------------------------------------


def test_normalise_and_digest() -> None:
    assert normalise("\n\nx = 1   \n\ty = 2\t\n\n") == "x = 1\n\ty = 2"
    assert cell_digest("x = 1  \n", "a") == cell_digest("x = 1", "a")
    assert cell_digest("x = 1", "a") != cell_digest("x = 1", "b")
    assert cell_digest("x = 1", "a") != cell_digest("x  = 1", "a")
    assert record_name(cell_digest("x", "a")).startswith("__remember__:")
    assert len(record_name("f" * 64)) == len("__remember__:") + 32


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ("a = b = 1", ["a", "b"]),
        ("a, [b, *c] = x", ["a", "b", "c"]),
        ("a += 1", ["a"]),
        ("a: int = 1\nb: int", ["a"]),
        ("for i, j in x: k = 1\nelse: m = 1", ["i", "j", "k", "m"]),
        ("async def f():\n    async for i in x: pass", ["f"]),
        ("with a() as (b, c), d(): pass", ["b", "c"]),
        ("if (n := 1): pass", ["n"]),
        ("[y := i for i in x]", ["y"]),
        ("f = lambda: (z := 1)", ["f"]),
        ("import a.b.c, d as e\nfrom f import g, h as i", ["a", "e", "g", "i"]),
        (
            "@dec(w := 1)\ndef f(x=(v := 2)):\n    global g\n    g = 1\n    local = 2",
            ["w", "v", "f", "g"],
        ),
        ("class C(B := object):\n    global h", ["B", "C", "h"]),
        ("x[0] = 1\ny.attr = 2\nz[0].a[i := 1] += 3", ["x", "y", "i", "z"]),
        ("get()[0] = 1", []),
        (
            "match v:\n    case [a, *rest]: pass\n    case {'k': b, **others}: pass\n    case P(c) | c: pass\n    case _: pass",
            ["a", "rest", "b", "others", "c"],
        ),
        ("try:\n    t = 1\nexcept E as e:\n    u = 2", ["t", "u"]),
        ("del x", []),
    ],
)
def test_syntax_names(source: str, names: list[str]) -> None:
    assert SyntaxNames.of(ast.parse(source)).names == names


def test_star_import_is_noticed() -> None:
    assert SyntaxNames.of(ast.parse("from os.path import *")).star_import
    assert not SyntaxNames.of(ast.parse("from os.path import join")).star_import


def test_shell_names() -> None:
    for name in ("_", "__", "___", "_i", "_ii", "_iii", "_i12", "_12", "_oh", "_dh",
                 "_ih", "__builtins__", "In", "Out", "exit", "quit", "get_ipython"):  # fmt: skip
        assert is_shell_name(name), name
    for name in ("_private", "x", "i", "in_", "__x"):
        assert not is_shell_name(name), name
    assert is_shell_name("hidden", {"hidden": 1})


def test_snapshot_sees_new_rebound_and_changed_containers() -> None:
    items = [1, 2]
    table = {"a": 1}
    numbers = {1}
    data = bytearray(b"ab")
    big = list(range(200_000))
    kept = [1]
    namespace: dict[str, Any] = {
        "items": items, "table": table, "numbers": numbers, "data": data,
        "big": big, "kept": kept, "rebound": 1, "_": 5,
    }  # fmt: skip
    snapshot = Snapshot(namespace, {})

    items.append(3)
    table["b"] = 2
    numbers.add(2)
    data.extend(b"c")
    big[-1] = -1
    namespace["rebound"] = 2
    namespace["new"] = 3
    namespace["_"] = 6

    assert snapshot.changed(namespace) == [
        "items", "table", "numbers", "data", "big", "rebound", "new",
    ]  # fmt: skip


def test_record_from_anything_else_is_none() -> None:
    assert CellRecord.from_value(None) is None
    assert CellRecord.from_value({"format": 99}) is None
    assert CellRecord.from_value({"format": 1}) is None
    record = CellRecord("d", ["x"])
    assert CellRecord.from_value(record.to_value()) == record
