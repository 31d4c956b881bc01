"""Scripts run as functions of one library, and by SHA-1 where the server offers no functions.

Every server here is this module's own Valkey child process on a free port.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import redis

from redis_memory import Memory, lua
from redis_memory.batch import _batch_script
from redis_memory.errors import ServerFullError
from redis_processes import ServerProcess, scratch_dir, valkey_binary

# The scripts that change nothing, so their functions may run on a replica or a full server.
READS = {
    "dict_get",
    "list_get",
    "list_slice_get",
    "node_entries",
    "node_len",
    "read_tree",
}
# The scripts that only delete, so their functions may run on a full server.
DELETES = {"dict_clear", "dict_pop", "list_pop", "list_remove_at", "list_slice_del"}


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerProcess]]:
    """Start Valkey child processes; every one is stopped after the test."""
    started: list[ServerProcess] = []
    with scratch_dir("rmfn") as directory:

        def start(*arguments: str) -> ServerProcess:
            server = ServerProcess(
                valkey_binary(), directory / f"s{len(started)}", arguments
            )
            started.append(server)
            server.start()
            return server

        yield start
        for server in started:
            server.stop()


def new_namespace() -> str:
    return f"fn-{uuid.uuid4().hex[:10]}"


def script_names() -> set[str]:
    folder = Path(str(resources.files("redis_memory").joinpath("scripts")))
    return {path.stem for path in folder.glob("*.lua") if not path.stem.startswith("_")}


def loaded_functions(client: redis.Redis) -> dict[str, set[str]]:
    """Return the flags of each function of this version's library on the server."""
    libraries = client.function_list(library=lua.library().name)
    functions: dict[str, set[str]] = {}
    for library in map(as_dict, libraries):
        assert library[b"library_name"] == lua.library().name.encode()
        for function in map(as_dict, library[b"functions"]):
            name = function[b"name"].decode()
            functions[name] = {flag.decode() for flag in function[b"flags"]}
    return functions


def as_dict(reply: list[Any] | dict[bytes, Any]) -> dict[bytes, Any]:
    """Return a map reply as a dict; over RESP2 it is a flat list of keys and values."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


def calls(client: redis.Redis, command: str) -> int:
    stats = client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def test_first_call_loads_library(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    client = redis.Redis.from_url(server.url)
    mem = Memory(server.url, new_namespace(), cache=False)

    mem.items = [1, 2]
    mem.items.append(3)

    functions = loaded_functions(client)
    names = lua.library().functions
    assert set(names) == script_names()
    assert set(functions) == set(names.values())
    for name, function in names.items():
        expected = (
            {"no-writes"}
            if name in READS
            else {"allow-oom"}
            if name in DELETES
            else set()
        )
        assert functions[function] == expected, name
    assert calls(client, "fcall") >= 1
    assert calls(client, "evalsha") == 0
    assert Memory(server.url, mem._namespace, cache=False).items == [1, 2, 3]


def test_write_after_flush_applies_once(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    client = redis.Redis.from_url(server.url)
    mem = Memory(server.url, new_namespace(), cache=False)
    mem.items = [1]
    mem.cfg = {"a": 1}

    client.function_flush()
    mem.items.append(2)
    client.function_flush()
    mem.cfg["b"] = 2

    fresh = Memory(server.url, mem._namespace, cache=False)
    assert fresh.items == [1, 2]
    assert fresh.cfg == {"a": 1, "b": 2}
    assert set(loaded_functions(client)) == set(lua.library().functions.values())


def test_full_server_runs_reads_and_deletes(
    start_server: Callable[..., ServerProcess],
) -> None:
    # A function without flags is rejected when memory is full, before it
    # runs. The reads carry no-writes and the deletes allow-oom, so both go on.
    server = start_server("--maxmemory-policy", "noeviction")
    client = redis.Redis.from_url(server.url)
    mem = Memory(server.url, new_namespace(), cache=False)
    mem.items = [1, 2, 3]
    mem.cfg = {"a": [1]}
    client.config_set("maxmemory", 1)

    try:
        assert mem.items[1] == 2
        assert mem.items[0:2] == [1, 2]
        assert len(mem.items) == 3
        assert mem.cfg["a"] == [1]
        assert mem.cfg.asdict() == {"a": [1]}
        with pytest.raises(ServerFullError):
            mem.items.append(4)
        assert mem.items.pop() == 3
        del mem.cfg["a"]
        assert Memory(server.url, mem._namespace, cache=False)._asdict() == {
            "items": [1, 2],
            "cfg": {},
        }
    finally:
        client.config_set("maxmemory", 0)


def test_user_without_functions_uses_scripts(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser(
        "nofunctions",
        enabled=True,
        passwords=["+fn-pw-123"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-fcall", "-fcall_ro", "-function"],
    )
    url = f"redis://nofunctions:fn-pw-123@127.0.0.1:{server.port}/0"
    mem = Memory(url, new_namespace(), cache=False)

    mem.items = [1]
    mem.items.append(2)
    mem.items.insert(0, 0)
    mem.cfg = {"a": {"b": 1}}
    mem.cfg["a"]["c"] = 2
    assert mem.items == [0, 1, 2]

    assert calls(admin, "fcall") == 0
    assert calls(admin, "evalsha") >= 6
    assert admin.function_list() == []
    fresh = Memory(server.url, mem._namespace, cache=False)
    assert fresh.items == [0, 1, 2]
    assert fresh.cfg == {"a": {"b": 1, "c": 2}}


def test_server_without_functions_uses_scripts(
    start_server: Callable[..., ServerProcess],
) -> None:
    # Renamed away, FCALL and FUNCTION reply "unknown command" as on Redis 6.
    server = start_server(
        "--rename-command", "FCALL", "", "--rename-command", "FUNCTION", ""
    )
    admin = redis.Redis.from_url(server.url)
    mem = Memory(server.url, new_namespace(), cache=False)

    mem.log = []
    for number in range(5):
        mem.log.append(number)
    mem.cfg = {"k": "v"}
    del mem.cfg["k"]

    fresh = Memory(server.url, mem._namespace, cache=False)
    assert fresh.log == [0, 1, 2, 3, 4]
    assert fresh.cfg == {}
    assert calls(admin, "evalsha") >= 8


def test_library_runs_prelude_once() -> None:
    library = lua.library()
    source = library.source

    assert source.startswith(f"#!lua name={library.name}\n")
    assert library.name.startswith("redis_memory_")
    # The prelude's per-call lines run in each function, not at load.
    assert "local P = ARGV[1]" not in source
    assert source.count("DROPPED.any = false") == len(library.functions)
    # The batch runner stays a script of its own, with the whole prelude.
    assert "local P = ARGV[1]" in _batch_script().source
    for name, function in library.functions.items():
        assert lua.script(name).function == function
        assert lua.script(name).library == source
