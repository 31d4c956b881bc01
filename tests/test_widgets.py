"""MemoryView without a browser: widget state after writes from other processes."""

from __future__ import annotations

import html
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ipywidgets
import pytest

from conftest import run_python
from redis_memory import Memory
from redis_memory.server import EmbeddedServer
from redis_memory.widgets import MemoryView, close_all
from redis_memory.widgets import view as view_module

# Generous: a deadline only stops a failing test from hanging, it asserts nothing.
WAIT_SECONDS = 30.0
EVIL = "<img src=x onerror=alert(1)>"


def html_values(widget: Any) -> list[str]:
    """Return the HTML of every HTML widget shown under ``widget``, in order."""
    values = [widget.value] if isinstance(widget, ipywidgets.HTML) else []
    for child in getattr(widget, "children", ()):
        values.extend(html_values(child))
    return values


def markup(widget: Any) -> str:
    """Return the HTML shown under ``widget`` without its style sheets."""
    joined = "".join(html_values(widget))
    return re.sub(r"<style>.*?</style>", "", joined, flags=re.DOTALL)


def visible_text(widget: Any) -> str:
    """Return the text a reader sees: the HTML without tags, unescaped."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", markup(widget)))
    return re.sub(r"\s+", " ", text)


def buttons(widget: Any, description: str) -> list[ipywidgets.Button]:
    found = []
    if isinstance(widget, ipywidgets.Button) and widget.description == description:
        found.append(widget)
    for child in getattr(widget, "children", ()):
        found.extend(buttons(child, description))
    return found


def toggle_of(view: MemoryView, label: str) -> ipywidgets.Button:
    """Return the ▸/▾ button in the header row whose summary shows ``label``."""

    def search(widget: Any) -> ipywidgets.Button | None:
        children = getattr(widget, "children", ())
        if (
            isinstance(widget, ipywidgets.HBox)
            and len(children) == 2
            and isinstance(children[0], ipywidgets.Button)
            and f"<b>{html.escape(label)}</b>" in children[1].value
        ):
            return children[0]
        for child in children:
            result = search(child)
            if result is not None:
                return result
        return None

    button = search(view)
    assert button is not None, f"no toggle for {label!r} in {visible_text(view)!r}"
    return button


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.02)


def running_threads(*views: MemoryView) -> list[threading.Thread]:
    """Return the refresh and feed threads of ``views`` that are still running."""
    own = set()
    for view in views:
        own.update((view._thread, view._subscription._thread))
    return [thread for thread in threading.enumerate() if thread in own]


@pytest.fixture
def open_view() -> Iterator[Callable[..., MemoryView]]:
    """Create views that are closed at the end of the test."""
    views: list[MemoryView] = []

    def make(*args: Any, **kwargs: Any) -> MemoryView:
        view = MemoryView(*args, **kwargs)
        views.append(view)
        return view

    yield make
    for view in views:
        view.close()


@pytest.fixture
def private_server() -> Iterator[EmbeddedServer]:
    """An embedded server of this test's own, which it may stop and start."""
    data_dir = Path(tempfile.mkdtemp(prefix="rmview-", dir="/tmp"))
    server = EmbeddedServer(data_dir)
    server.ensure_running()
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


# -- contents ---------------------------------------------------------------------


def test_view_shows_names_types_contents(
    real_mem: Memory, open_view: Callable[..., MemoryView]
) -> None:
    real_mem.count = 7
    real_mem.tasks = ["write", "test"]
    real_mem.cfg = {"retries": 3, "hosts": ["a", "b"]}

    view = open_view(real_mem)
    text = visible_text(view)

    assert f"namespace {real_mem._namespace}" in text
    assert "connected" in text
    assert "count int 7" in text
    assert "tasks list · 2 items" in text
    assert "[0] str · 5 chars 'write'" in text
    assert "cfg dict · 2 keys" in text
    assert "'retries' int 3" in text
    assert "'hosts' list · 2 items" in text
    assert view.connection_state == "connected"
    assert view.version == real_mem._version()


def test_view_of_empty_namespace(
    real_mem: Memory, open_view: Callable[..., MemoryView]
) -> None:
    view = open_view(real_mem)

    assert f"namespace '{real_mem._namespace}' is empty" in visible_text(view)


def test_view_follows_other_process(
    real_mem: Memory,
    open_view: Callable[..., MemoryView],
    capsys: pytest.CaptureFixture[str],
) -> None:
    real_mem.keep = 1
    view = open_view(real_mem)

    run_python(
        "mem.greeting = 'hello from elsewhere'; emit(0)", namespace=real_mem._namespace
    )
    wait_until(
        lambda: "'hello from elsewhere'" in visible_text(view), "the view shows it"
    )

    text = visible_text(view)
    assert "greeting str · 20 chars 'hello from elsewhere'" in text
    assert "last change: setitem at mem.greeting by another writer" in text
    assert view.version == real_mem._version()
    assert capsys.readouterr().out == ""


def test_view_names_own_writes(
    real_mem: Memory, open_view: Callable[..., MemoryView]
) -> None:
    view = open_view(real_mem)

    real_mem["two words"] = [1]
    wait_until(lambda: "two words list · 1 item" in visible_text(view), "it shows")

    assert "last change: setitem at mem['two words'] by this Memory" in visible_text(
        view
    )


def test_view_highlights_latest_change(
    real_mem: Memory, open_view: Callable[..., MemoryView]
) -> None:
    real_mem.a = 1
    real_mem.b = 2
    real_mem.nested = {"inner": [1, 2]}
    view = open_view(real_mem)
    assert "rm-changed" not in markup(view._tree.widget)

    run_python("mem.nested['inner'].append(3); emit(0)", namespace=real_mem._namespace)
    wait_until(lambda: "'inner' list · 3 items" in visible_text(view), "3 items show")

    tree_html = markup(view._tree.widget)
    marked = re.findall(r'class="rm-view rm-changed"><b>([^<]*)</b>', tree_html)
    assert marked == ["nested", html.escape("'inner'")]
    assert "last change: append at mem.nested['inner']" in visible_text(view)
    assert '<tr class="rm-changed"><td class="rm-key">a<' not in tree_html
    assert '<tr><td class="rm-key">a</td>' in tree_html


def test_view_burst_of_appends(
    real_mem: Memory, open_view: Callable[..., MemoryView]
) -> None:
    real_mem.items = []
    view = open_view(real_mem)
    before = view.refresh_count

    seconds = run_python(
        """
        import time
        items = mem.items
        started = time.perf_counter()
        for i in range(5000):
            items.append(i)
        emit(time.perf_counter() - started)
        """,
        namespace=real_mem._namespace,
    )
    wait_until(lambda: "items list · 5,000 items" in visible_text(view), "5,000 show")
    # A refresh records the version it started from, and its read may already
    # show later changes, so the version can catch up one refresh later.
    version = real_mem._version()
    wait_until(lambda: view.version == version, "the view's version is the last")

    refreshes = view.refresh_count - before
    assert "items 1 to 50 of 5,000 · … 4,950 more" in visible_text(view)
    # Coalesced: far fewer redraws than changes.
    assert refreshes < 500
    if seconds < 5:
        assert refreshes < 50


def test_view_escapes_stored_html(
    real_mem: Memory, open_view: Callable[..., MemoryView]
) -> None:
    real_mem.evil = EVIL
    real_mem["<b>name</b>"] = {"<script>k</script>": [EVIL]}

    view = open_view(real_mem)
    toggle_of(view, "'<script>k</script>'").click()
    raw = "".join(html_values(view))
    text = visible_text(view)

    assert "<img" not in raw
    assert "<script>" not in raw
    assert "<b>name</b>" not in raw
    assert html.escape(EVIL) in raw
    assert f"evil str · 28 chars '{EVIL}'" in text
    assert "<b>name</b> dict · 1 key" in text
    assert "'<script>k</script>' list · 1 item" in text


def test_view_escapes_namespace_and_errors(
    server_url: str, open_view: Callable[..., MemoryView]
) -> None:
    mem = Memory(namespace=f"<i>{uuid.uuid4().hex[:8]}</i>")
    view = open_view(mem)

    assert "<i>" not in view._status.value
    assert "&lt;i&gt;" in view._status.value


def test_view_pages_long_list(
    real_mem: Memory, open_view: Callable[..., MemoryView]
) -> None:
    real_mem.big = list(range(120))
    view = open_view(real_mem, page_size=50)

    text = visible_text(view)
    assert "items 1 to 50 of 120 · … 70 more" in text
    assert "[49] int 49" in text
    assert "[50]" not in text
    assert buttons(view, "◂ previous")[0].disabled

    buttons(view, "next ▸")[0].click()
    text = visible_text(view)
    assert "items 51 to 100 of 120 · … 20 more" in text
    assert "[49]" not in text
    assert "[50] int 50" in text

    buttons(view, "next ▸")[0].click()
    text = visible_text(view)
    assert "items 101 to 120 of 120" in text
    assert "more" not in text
    assert buttons(view, "next ▸")[0].disabled

    buttons(view, "◂ previous")[0].click()
    assert "items 51 to 100 of 120" in visible_text(view)


def test_view_pages_namespace_names(
    real_mem: Memory, open_view: Callable[..., MemoryView]
) -> None:
    real_mem._update({f"n{i:02}": i for i in range(7)})
    view = open_view(real_mem, page_size=3)

    text = visible_text(view)
    assert "items 1 to 3 of 7 · … 4 more" in text
    assert "n02 int 2" in text
    assert "n03" not in text


def test_page_clamped_after_list_shrinks(
    real_mem: Memory, open_view: Callable[..., MemoryView]
) -> None:
    real_mem.big = list(range(30))
    view = open_view(real_mem, page_size=10)
    buttons(view, "next ▸")[0].click()
    buttons(view, "next ▸")[0].click()
    assert "items 21 to 30 of 30" in visible_text(view)

    run_python("del mem.big[5:]; emit(0)", namespace=real_mem._namespace)
    wait_until(lambda: "big list · 5 items" in visible_text(view), "5 items show")

    text = visible_text(view)
    assert "[4] int 4" in text
    assert "items" not in text.split("big list · 5 items")[1]


def test_view_expands_and_collapses(
    real_mem: Memory, open_view: Callable[..., MemoryView]
) -> None:
    real_mem.cfg = {"inner": {"deep": "value"}}
    view = open_view(real_mem)
    assert "'inner' dict · 1 key" in visible_text(view)
    assert "deep" not in visible_text(view)

    toggle_of(view, "'inner'").click()
    assert "'deep' str · 5 chars 'value'" in visible_text(view)
    assert toggle_of(view, "'inner'").description == "▾"

    toggle_of(view, "'inner'").click()
    assert "deep" not in visible_text(view)

    toggle_of(view, "cfg").click()
    assert "inner" not in visible_text(view)
    assert "cfg dict · 1 key" in visible_text(view)


def test_view_of_one_name(
    real_mem: Memory, open_view: Callable[..., MemoryView]
) -> None:
    real_mem.other = "not shown"
    real_mem.results = [{"score": 1}]
    view = open_view(real_mem, "results")

    text = visible_text(view)
    assert "name results" in text
    assert "results list · 1 item" in text
    assert "[0] dict · 1 key" in text
    assert "not shown" not in text

    run_python("del mem.results; emit(0)", namespace=real_mem._namespace)
    wait_until(
        lambda: "nothing is stored under 'results'" in visible_text(view), "gone"
    )

    run_python("mem.results = 'done'; emit(0)", namespace=real_mem._namespace)
    wait_until(lambda: "results str · 4 chars 'done'" in visible_text(view), "scalar")

    run_python("mem.results = [1, 2]; emit(0)", namespace=real_mem._namespace)
    wait_until(lambda: "results list · 2 items" in visible_text(view), "new list")


# -- connection -------------------------------------------------------------------


def test_view_reconnects_after_restart(
    private_server: EmbeddedServer, open_view: Callable[..., MemoryView]
) -> None:
    mem = Memory(url=private_server.url, namespace="restart")
    mem.before = 1
    view = open_view(mem)
    states: list[str] = []
    view.observe(lambda change: states.append(change["new"]), "connection_state")

    private_server.stop()
    wait_until(lambda: "reconnecting: " in visible_text(view), "reconnecting shows")
    private_server.ensure_running()
    wait_until(lambda: view.connection_state == "connected", "connected again")
    mem.after = 2
    wait_until(lambda: "after int 2" in visible_text(view), "a new write shows")

    assert "● connected" in visible_text(view)
    assert "reconnecting" in states
    assert states[-1] == "connected"
    assert states.index("reconnecting") < len(states) - 1


def test_view_without_server(
    open_view: Callable[..., MemoryView], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(view_module, "_DISCONNECTED_AFTER_SECONDS", 0.5)
    data_dir = Path(tempfile.mkdtemp(prefix="rmview-", dir="/tmp"))
    try:
        mem = Memory(url=EmbeddedServer(data_dir).url, namespace="nowhere")
        view = open_view(mem)
        text = visible_text(view)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    assert view.connection_state == "reconnecting"
    assert "reconnecting: ConnectionError" in text
    assert "waiting for the server" in text
    wait_until(lambda: view.connection_state == "disconnected", "0.5 s pass")
    assert "disconnected: ConnectionError" in visible_text(view)
    assert "; retrying" in visible_text(view)


# -- lifecycle --------------------------------------------------------------------


def test_close_stops_threads(real_mem: Memory) -> None:
    view = MemoryView(real_mem)
    assert len(running_threads(view)) == 2

    view.close()
    view.close()

    assert running_threads(view) == []
    assert view.connection_state == "disconnected"
    assert view.comm is None


def test_ipywidgets_close_all_stops_view(real_mem: Memory) -> None:
    first = MemoryView(real_mem)
    second = MemoryView(real_mem, "x")

    ipywidgets.Widget.close_all()

    assert running_threads(first, second) == []


def test_close_all_closes_views(real_mem: Memory) -> None:
    first = MemoryView(real_mem)
    second = MemoryView(real_mem, "x")

    close_all()

    assert running_threads(first, second) == []
    assert first.connection_state == "disconnected"
    assert second.connection_state == "disconnected"


def test_repr_is_short_and_stable(
    real_mem: Memory, open_view: Callable[..., MemoryView]
) -> None:
    view = open_view(real_mem, "results")
    expected = f"MemoryView(namespace={real_mem._namespace!r}, name='results')"

    assert repr(view) == expected
    assert view._repr_mimebundle_()["text/plain"] == expected


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (({},), {}, TypeError, "MemoryView shows a Memory, not dict"),
        ((None, 3), {}, TypeError, "name must be a str or None, not int: 3"),
        (
            (None,),
            {"page_size": 0},
            ValueError,
            "page_size must be an int of at least 1, not 0",
        ),
        ((None,), {"page_size": 2.0}, ValueError, "page_size must be an int"),
        (
            (None,),
            {"throttle": -1},
            ValueError,
            "throttle must be a number of seconds of at least 0, not -1",
        ),
        ((None,), {"throttle": float("nan")}, ValueError, "not nan"),
        ((None,), {"throttle": "1"}, ValueError, "not '1'"),
    ],
)
def test_view_rejects_bad_arguments(
    real_mem: Memory,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    if args[0] is None:
        args = (real_mem, *args[1:])
    before = set(threading.enumerate())

    with pytest.raises(error, match=re.escape(message)):
        MemoryView(*args, **kwargs)
    assert set(threading.enumerate()) - before == set()


def test_view_hides_remember_records(real_mem: Memory) -> None:
    from redis_memory.memory import RECORD_PREFIX

    real_mem.shown = 1
    real_mem[RECORD_PREFIX + "0123"] = {"names": ["x"]}
    view = MemoryView(real_mem, throttle=0.05)
    try:
        snapshot = view._read()
        assert "shown" in snapshot
        assert RECORD_PREFIX + "0123" not in snapshot
    finally:
        view.close()
