"""The IPython extension in real Jupyter kernels: restarts, two kernels at once, Run All."""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from redis_memory import Memory

pytestmark = pytest.mark.slow

TIMEOUT = 120
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Reply:
    """What one execute request produced."""

    status: str
    ename: str | None
    outputs: list[dict[str, Any]] = field(default_factory=list)

    def texts(self, msg_type: str) -> list[str]:
        """The text of the outputs of one type (stream text or text/plain)."""
        found = []
        for output in self.outputs:
            if output["msg_type"] != msg_type:
                continue
            content = output["content"]
            found.append(
                content.get("text") or content.get("data", {}).get("text/plain", "")
            )
        return found

    @property
    def stdout(self) -> str:
        return "".join(
            output["content"]["text"]
            for output in self.outputs
            if output["msg_type"] == "stream" and output["content"]["name"] == "stdout"
        )

    @property
    def result(self) -> str:
        """The text/plain of the execute_result."""
        results = self.texts("execute_result")
        assert len(results) == 1, self.outputs
        return results[0]


class Kernel:
    """A python3 kernel started with ``env``, driven through jupyter_client."""

    def __init__(self, env: dict[str, str]) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=TIMEOUT)

    def run(self, code: str) -> Reply:
        """Execute ``code`` and collect its outputs."""
        outputs: list[dict[str, Any]] = []

        def keep(message: dict[str, Any]) -> None:
            if message["msg_type"] in (
                "stream",
                "display_data",
                "execute_result",
                "error",
            ):
                outputs.append(
                    {"msg_type": message["msg_type"], "content": message["content"]}
                )

        reply = self.client.execute_interactive(
            textwrap.dedent(code), output_hook=keep, timeout=TIMEOUT
        )
        content = reply["content"]
        return Reply(content["status"], content.get("ename"), outputs)

    def ok(self, code: str) -> Reply:
        reply = self.run(code)
        assert reply.status == "ok", reply.outputs
        return reply

    def restart(self) -> None:
        self.manager.restart_kernel(now=True)
        self.client.wait_for_ready(timeout=TIMEOUT)

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture
def kernel_env(namespace: str, server_url: str) -> dict[str, str]:
    """The test process's environment (its data dir, so its server) and the namespace."""
    env = os.environ.copy()
    env["REDIS_MEMORY_NAMESPACE"] = namespace
    return env


@pytest.fixture
def kernels(kernel_env: dict[str, str], namespace: str) -> Iterator[list[Kernel]]:
    """Start kernels on demand with ``start(kernels)``; all are shut down afterwards."""
    started: list[Kernel] = []
    yield started
    for kernel in started:
        kernel.shutdown()
    Memory(namespace=namespace)._clear()


def start(kernels: list[Kernel], env: dict[str, str]) -> Kernel:
    kernel = Kernel(env)
    kernels.append(kernel)
    return kernel


def training_cell(log: Path, second: float = 0.87) -> str:
    """A %%remember cell that leaves two traces of each execution: a log line and a count."""
    return textwrap.dedent(f"""\
        %%remember
        from IPython.display import HTML, display
        with open({str(log)!r}, "a") as log:
            log.write("ran\\n")
        del log
        mem["executions"] = mem["executions"] + 1 if "executions" in mem else 1
        scores = [0.91, {second}]
        config = {{"lr": 0.1}}
        print("trained", round(sum(scores), 2))
        display(HTML("<b>model</b>"))
        len(scores)
        """)


def test_restart_restores_the_unchanged_cell_without_running_it(
    kernels: list[Kernel], kernel_env: dict[str, str], namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "executions.log"
    kernel = start(kernels, kernel_env)
    loaded = kernel.ok("%load_ext redis_memory")
    assert loaded.texts("display_data") == [
        loaded.texts("display_data")[0]
    ]  # exactly one line
    assert loaded.texts("display_data")[0].startswith(
        "redis-memory: mem is connected to embedded server ("
    )
    assert loaded.texts("display_data")[0].endswith(
        f"namespace {namespace!r}, 0 names stored"
    )
    kernel.ok("mem.results = [1, 2]")

    first = kernel.ok(training_cell(log))

    assert first.stdout == "trained 1.78\n"
    assert first.result == "2"
    assert any(
        output["content"].get("data", {}).get("text/html") == "<b>model</b>"
        for output in first.outputs
    )
    assert first.texts("display_data")[-2] == (
        f"stored scores, config in redis-memory (namespace {namespace!r})"
    )
    assert log.read_text() == "ran\n"

    kernel.restart()
    assert kernel.ok("'scores' in dir()").result == "False"
    loaded = kernel.ok("%load_ext redis_memory")
    assert loaded.texts("display_data")[0].endswith(", 4 names stored")

    again = kernel.ok(training_cell(log))

    assert log.read_text() == "ran\n"  # not executed
    assert again.texts("display_data")[0] == (
        "restored scores, config from redis-memory (cell unchanged; use --rerun to execute)"
    )
    assert again.stdout == "trained 1.78\n"  # the outputs are replayed
    assert "<b>model</b>" in [
        output["content"].get("data", {}).get("text/html")
        for output in again.outputs[1:]
    ]
    assert again.texts("display_data")[-1] == "2"
    state = kernel.ok(
        "mem.executions, type(scores).__name__, scores, config['lr'], mem.results"
    )
    assert state.result == "(1, 'SyncedList', [0.91, 0.87], 0.1, [1, 2])"
    kernel.ok("scores.append(0.5)")
    assert Memory(namespace=namespace).scores == [0.91, 0.87, 0.5]

    changed = kernel.ok(training_cell(log, second=0.5))

    assert log.read_text() == "ran\nran\n"
    assert changed.stdout == "trained 1.41\n"
    assert kernel.ok("mem.executions, mem.scores").result == "(2, [0.91, 0.5])"


def test_restored_plots_are_shown_again(
    kernels: list[Kernel], kernel_env: dict[str, str], namespace: str
) -> None:
    pytest.importorskip("matplotlib")
    cell = """\
        %%remember
        import matplotlib.pyplot as plt
        points = [1, 4, 9]
        plt.plot(points)
        plt.show()
        """
    kernel = start(kernels, kernel_env)
    kernel.ok("%matplotlib inline\n%load_ext redis_memory")
    first = kernel.ok(cell)
    assert any("image/png" in o["content"].get("data", {}) for o in first.outputs)

    kernel.restart()
    kernel.ok("%matplotlib inline\n%load_ext redis_memory")
    again = kernel.ok(cell)

    assert again.texts("display_data")[0].startswith(
        "restored points from redis-memory"
    )
    images = [
        output["content"]["data"]["image/png"]
        for output in again.outputs
        if "image/png" in output["content"].get("data", {})
    ]
    assert len(images) == 1
    assert kernel.ok("points, plt.__name__").result == (
        "([1, 4, 9], 'matplotlib.pyplot')"
    )


def test_two_kernels_share_one_namespace(
    kernels: list[Kernel], kernel_env: dict[str, str]
) -> None:
    first = start(kernels, kernel_env)
    second = start(kernels, kernel_env)
    for kernel in (first, second):
        kernel.ok("%load_ext redis_memory")

    first.ok("mem.shared = []")
    second.ok("mem.shared.append('from the second')")
    assert first.ok("mem.shared").result == "['from the second']"

    cell = "%%remember\nvalue = {'from': 'first'}\nmem['runs'] = mem['runs'] + 1 if 'runs' in mem else 1"
    first.ok(cell)
    second.ok("%recall value")
    assert second.ok("value['from'], type(value).__name__").result == (
        "('first', 'SyncedDict')"
    )
    second.ok("value['seen_by'] = 'second'")
    assert first.ok("value['seen_by']").result == "'second'"

    restored = second.ok(cell)  # the same cell in the other kernel: restored
    assert restored.texts("display_data")[0].startswith("restored value ")
    assert first.ok("mem.runs").result == "1"


def test_failing_cell_and_unreachable_server_in_a_kernel(
    kernels: list[Kernel], kernel_env: dict[str, str], tmp_path: Path
) -> None:
    kernel = start(kernels, kernel_env)
    kernel.ok("%load_ext redis_memory")

    failed = kernel.run("%%remember\nfirst = 1\nsecond = 1 / 0")

    assert failed.status == "error"
    assert failed.ename == "ZeroDivisionError"
    errors = [o for o in failed.outputs if o["msg_type"] == "error"]
    assert len(errors) == 1
    traceback = ANSI.sub("", "".join(errors[0]["content"]["traceback"]))
    assert "second = 1 / 0" in traceback
    assert "run_cell_magic" not in traceback
    assert kernel.ok("'first' in mem").result == "False"

    awaiting = kernel.run(
        "%%remember\nimport asyncio\nawait asyncio.sleep(0)\nlate = 1"
    )
    assert awaiting.status == "error"
    assert (
        "%%remember cannot run a cell with top-level await"
        in awaiting.stdout + "".join(awaiting.texts("stream"))
    )

    socket = tmp_path / "nothing.sock"
    kernel.ok(f"""
        from redis_memory import connection
        connection.connect('unix://{socket}')._retry_seconds = 0.3
        """)
    kernel.ok(f"%config RedisMemory.url = 'unix://{socket}'")
    down = kernel.run("mem.x = 1")

    assert down.status == "error"
    assert down.ename == "ServerUnavailableError"
    (error,) = [o for o in down.outputs if o["msg_type"] == "error"]
    assert len(error["content"]["traceback"]) == 1
    assert error["content"]["traceback"][0].startswith(
        f"ServerUnavailableError: cannot reach Redis at unix://{socket}"
    )
    kernel.ok("%config RedisMemory.url = ''")
    kernel.ok("mem.x = 1")  # the notebook works again


def test_run_all_stops_at_a_failing_remember_cell(
    kernel_env: dict[str, str], namespace: str
) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext redis_memory"),
        nbformat.v4.new_code_cell("%%remember\nbroken = 1 / 0"),
        nbformat.v4.new_code_cell("mem.after = True"),
    ]
    client = NotebookClient(notebook, timeout=TIMEOUT, kernel_name="python3")
    try:
        with pytest.raises(CellExecutionError, match="ZeroDivisionError"):
            client.execute(env=kernel_env)
        assert "after" not in Memory(namespace=namespace)
    finally:
        Memory(namespace=namespace)._clear()
