"""Parsing of sentinel and cluster URLs into redis-py clients, without a server."""

from __future__ import annotations

import pytest

from redis_memory.clients import parse_hosts, sentinel_client


@pytest.mark.parametrize(
    ("url", "hosts", "path"),
    [
        ("redis+cluster://h1:7000", [("h1", 7000)], ""),
        ("redis+cluster://h1,h2:7001", [("h1", 6379), ("h2", 7001)], ""),
        ("redis+sentinel://s1/mymaster/2", [("s1", 26379)], "mymaster/2"),
        ("redis+sentinel://[::1]:26380/svc", [("::1", 26380)], "svc"),
        ("redis+cluster://u:p@ss@h1:7000/0", [("h1", 7000)], "0"),
    ],
)
def test_parse_hosts(url: str, hosts: list[tuple[str, int]], path: str) -> None:
    parsed_hosts, parsed_path, _ = parse_hosts(url)

    assert parsed_hosts == hosts
    assert parsed_path == path


def test_parse_hosts_credentials_and_options() -> None:
    _, _, options = parse_hosts(
        "redis+cluster://alice:p%40ss@h1:7000,h2:7000"
        "?socket_timeout=2.5&ssl=true&ssl_ca_certs=/ca.pem"
    )

    assert options == {
        "username": "alice",
        "password": "p@ss",
        "socket_timeout": 2.5,
        "ssl": True,
        "ssl_ca_certs": "/ca.pem",
    }


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+cluster://:secret@h1:port", "the port 'port' of h1 is not a number"),
        ("redis+cluster://:secret@h1:7000,,h2", "a host is missing"),
        ("redis+sentinel://:secret@s1:26379", "it names no service"),
        ("redis+sentinel://:secret@s1:26379/svc/x", "the database 'x'"),
    ],
)
def test_invalid_urls_masked(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        if "sentinel" in url:
            sentinel_client(url)
        else:
            parse_hosts(url)

    assert "secret" not in str(raised.value)
    assert "***@" in str(raised.value)


def test_sentinel_client_options() -> None:
    client = sentinel_client(
        "redis+sentinel://:data-pw@s1:26379,s2:26380/mymaster/3"
        "?sentinel_password=sentinel-pw&socket_timeout=4"
    )

    pool = client.connection_pool
    assert pool.service_name == "mymaster"
    assert pool.connection_kwargs["password"] == "data-pw"
    assert pool.connection_kwargs["db"] == 3
    assert pool.connection_kwargs["socket_timeout"] == 4.0
    sentinels = pool.proxy.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [
        26379,
        26380,
    ]
    sentinel_kwargs = sentinels[0].connection_pool.connection_kwargs
    assert sentinel_kwargs["password"] == "sentinel-pw"
    assert sentinel_kwargs["socket_timeout"] == 4.0
    assert "db" not in sentinel_kwargs or sentinel_kwargs["db"] == 0
