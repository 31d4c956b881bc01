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
from redis_memory.errors import ServerFullError, ServerUnavailableError
from redis_memory.keys import KeySpace
from redis_processes import ServerProcess, scratch_dir, server_starter, wait_until

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
    with scratch_dir("rmfn") as directory, server_starter(directory) as start:
        yield start


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


def test_full_server_runs_rewrites_as_scripts(
    start_server: Callable[..., ServerProcess],
) -> None:
    # A script runs until its first command that needs memory, so the
    # rewrites that delete first went through as scripts, and still do.
    server = start_server("--maxmemory-policy", "noeviction")
    client = redis.Redis.from_url(server.url)
    mem = Memory(server.url, new_namespace(), cache=False)
    mem.items = [3, 1, 2, 5, 4]
    mem.more = [1, 2]
    mem.rest = [1]
    client.config_set("maxmemory", 1)

    try:
        mem.items.reverse()
        assert mem.items == [4, 5, 2, 1, 3]
        mem.items.sort()
        assert mem.items == [1, 2, 3, 4, 5]
        mem.items[0:2] = []
        assert mem.items == [3, 4, 5]
        mem.items.clear()
        assert mem.items == []
        mem.more *= 0
        assert mem.more == []
        with pytest.raises(ServerFullError):
            mem.rest.extend([7, 8])
        assert mem.rest == [1]
    finally:
        client.config_set("maxmemory", 0)


@pytest.mark.parametrize(
    "denied",
    [("-fcall", "-fcall_ro", "-function"), ("-fcall", "-fcall_ro"), ("-function",)],
)
def test_user_without_functions_uses_scripts(
    start_server: Callable[..., ServerProcess], denied: tuple[str, ...]
) -> None:
    server = start_server()
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser(
        "nofunctions",
        enabled=True,
        passwords=["+fn-pw-123"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", *denied],
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
    fresh = Memory(server.url, mem._namespace, cache=False)
    assert fresh.items == [0, 1, 2]
    assert fresh.cfg == {"a": {"b": 1, "c": 2}}


def test_key_denial_keeps_functions(start_server: Callable[..., ServerProcess]) -> None:
    # NOPERM for a key is the user's problem with one namespace; FCALL
    # itself is allowed, so the other namespaces keep using it.
    server = start_server()
    admin = redis.Redis.from_url(server.url)
    allowed, other = new_namespace(), new_namespace()
    admin.acl_setuser(
        "onenamespace",
        enabled=True,
        passwords=["+fn-pw-123"],
        keys=[f"rm:{{{allowed}}}:*"],
        channels=["*"],
        commands=["+@all"],
    )
    url = f"redis://onenamespace:fn-pw-123@127.0.0.1:{server.port}/0"
    mem = Memory(url, allowed, cache=False)
    mem.items = [1]

    with pytest.raises(ServerUnavailableError, match="lacks a permission"):
        Memory(url, other, cache=False).items = [1]
    for number in range(5):
        mem.items.append(number)

    assert mem.items == [1, 0, 1, 2, 3, 4]
    assert calls(admin, "fcall") >= 6
    assert calls(admin, "evalsha") == 0


def test_error_inside_function_is_not_repeated(
    start_server: Callable[..., ServerProcess],
) -> None:
    # Renamed away, PUBLISH fails inside the function after its writes, which
    # a script does not undo. Sending the call again would apply it twice.
    server = start_server("--rename-command", "PUBLISH", "")
    admin = redis.Redis.from_url(server.url)
    mem = Memory(server.url, new_namespace(), cache=False)

    with pytest.raises(redis.ResponseError, match="[Uu]nknown command"):
        mem.items = [1]
    with pytest.raises(redis.ResponseError, match="[Uu]nknown command"):
        mem.items.append(2)

    assert mem.items == [1, 2]
    assert calls(admin, "evalsha") == 0


def test_replica_without_library_loads_once(
    start_server: Callable[..., ServerProcess],
) -> None:
    # The replica rejects FUNCTION LOAD, so reads go by SHA-1 for a while
    # instead of trying FCALL and the load before each of them.
    master = start_server("--repl-diskless-sync-delay", "0")
    replica = start_server("--replicaof", "127.0.0.1", str(master.port))
    namespace = new_namespace()
    Memory(master.url, namespace, cache=False).items = [1, 2, 3]
    redis.Redis.from_url(master.url).function_flush()
    replica_client = redis.Redis.from_url(replica.url)
    wait_until(
        lambda: (
            replica_client.function_list() == []
            and replica_client.exists(KeySpace(namespace).node("root")) == 1
        ),
        20,
        "the replica has the data and no library",
    )
    mem = Memory(replica.url, namespace, cache=False)

    for _ in range(5):
        assert mem.items[1] == 2

    stats = replica_client.info("commandstats")
    # Its calls include the loads replicated from the master.
    assert stats["cmdstat_function|load"]["rejected_calls"] == 1
    assert "cmdstat_fcall" not in stats
    assert stats["cmdstat_evalsha"]["calls"] >= 5


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


def test_digest_covers_registrations(monkeypatch: pytest.MonkeyPatch) -> None:
    name = lua.library().name
    monkeypatch.setattr(lua, "_CALL_SETUP", lua._CALL_SETUP + "; local unused = 1")
    lua.library.cache_clear()
    try:
        changed = lua.library()
    finally:
        monkeypatch.undo()
        lua.library.cache_clear()

    assert changed.name != name
    assert lua.library().name == name


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
