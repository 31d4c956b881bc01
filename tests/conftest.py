"""Shared fixtures: a real embedded server for the session, and fakeredis.

The session's server runs in a private temporary data directory, and
``REDIS_MEMORY_DATA_DIR`` points there, so ``Memory()`` with no URL, in this
process and in the subprocesses the tests start, uses it and never the user's
own embedded server.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

# Set before redis_memory is imported anywhere, so no test touches the user's data dir.
_DATA_DIR = Path(tempfile.mkdtemp(prefix="rmtest-", dir="/tmp"))
os.environ["REDIS_MEMORY_DATA_DIR"] = str(_DATA_DIR)
# Removed at exit too, for sessions that never start the server.
atexit.register(shutil.rmtree, _DATA_DIR, ignore_errors=True)
for _name in ("REDIS_MEMORY_URL", "REDIS_URL", "REDIS_MEMORY_NAMESPACE"):
    os.environ.pop(_name, None)

from redis_memory import Memory  # noqa: E402
from redis_memory.errors import CorruptValueError  # noqa: E402
from redis_memory.inline_feed import InlineFeed  # noqa: E402
from redis_memory.server import EmbeddedServer  # noqa: E402


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """The URL of the session's embedded server."""
    server = EmbeddedServer(_DATA_DIR)
    url = server.ensure_running()
    yield url
    server.stop()
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def fake_server() -> object:
    fakeredis = pytest.importorskip("fakeredis")
    return fakeredis.FakeServer()


BACKENDS = ["valkey", "cached", "fakeredis"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Run the test on the embedded server, with and without the read cache, and on fakeredis."""
    return str(request.param)


def open_memory(backend: str, namespace: str, request: pytest.FixtureRequest) -> Memory:
    """Return a Memory on its own connection, so it sees only what is stored.

    The "cached" backend keeps the read cache on, so every read after this
    Memory's own writes checks that the cache never serves a stale value.
    """
    if backend == "cached":
        url = request.getfixturevalue("server_url")
        memory = Memory(url, namespace, cache=True)
        request.addfinalizer(memory._close)
        return memory
    if backend == "fakeredis":
        import fakeredis

        server = request.getfixturevalue("fake_server")
        return Memory(namespace=namespace, client=fakeredis.FakeRedis(server=server))
    import redis

    url = request.getfixturevalue("server_url")
    return Memory(namespace=namespace, client=redis.Redis.from_url(url))


@pytest.fixture
def mem(
    backend: str, namespace: str, request: pytest.FixtureRequest
) -> Iterator[Memory]:
    """A Memory on a fresh namespace, cleared afterwards."""
    memory = open_memory(backend, namespace, request)
    yield memory
    memory._clear()


@pytest.fixture
def other(backend: str, namespace: str, request: pytest.FixtureRequest) -> Memory:
    """A second Memory on the same namespace over a separate connection, without a cache."""
    return open_memory("valkey" if backend == "cached" else backend, namespace, request)


@pytest.fixture
def real_mem(namespace: str, server_url: str) -> Iterator[Memory]:
    """A Memory on the embedded server only, for tests that start processes."""
    memory = Memory(namespace=namespace)
    yield memory
    memory._clear()
    memory._close()


@pytest.fixture
def cached(server_url: str, namespace: str) -> Iterator[Memory]:
    """A Memory on the embedded server with the read cache on."""
    memory = Memory(server_url, namespace, cache=True)
    yield memory
    memory._clear()
    memory._close()


@pytest.fixture
def admin(server_url: str) -> redis.Redis:
    """A plain redis-py client of the session's server, to write raw text and manage clients."""
    return redis.Redis.from_url(server_url)


def _memory_on_own_client(server_url: str, namespace: str) -> Iterator[Memory]:
    memory = Memory(namespace=namespace, client=redis.Redis.from_url(server_url))
    yield memory
    memory._clear()


@pytest.fixture
def writer(server_url: str, namespace: str) -> Iterator[Memory]:
    """A Memory without a cache on a client of its own: another process, in effect."""
    yield from _memory_on_own_client(server_url, namespace)


@pytest.fixture
def plain(server_url: str, namespace: str) -> Iterator[Memory]:
    """Another Memory like ``writer``, for tests that also need a writer."""
    yield from _memory_on_own_client(server_url, namespace)


def read_outcome(read: Callable[[], object]) -> str:
    """Return the repr of what ``read()`` returns, or "CorruptValueError" when it raises that."""
    try:
        return repr(read())
    except CorruptValueError:
        return "CorruptValueError"


def run_python(code: str, *, namespace: str, timeout: float = 60) -> object:
    """Run ``code`` in a new Python process and return the JSON it prints last.

    The code sees ``mem = Memory(namespace=...)`` and calls ``emit(value)``.
    """
    prelude = textwrap.dedent(
        f"""
        import json, sys
        from redis_memory import Memory
        mem = Memory(namespace={namespace!r})
        def emit(value):
            print(json.dumps(value, default=repr))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def count_polls(
    cached: Memory, monkeypatch: pytest.MonkeyPatch
) -> tuple[InlineFeed, list[float]]:
    """Return the cache's feed and a list that records each poll of its socket."""
    cache = cached._store.cache
    assert cache is not None
    feed = cache._feed
    assert feed is not None
    polls: list[float] = []
    poll = feed._poll

    def counted(timeout: float) -> list[object]:
        polls.append(timeout)
        return poll(timeout)

    monkeypatch.setattr(feed, "_poll", counted)
    return feed, polls
