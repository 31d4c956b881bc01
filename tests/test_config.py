"""Tests of redis_memory.config: URL, namespace and data directory resolution."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from redis_memory import config
from redis_memory.config import (
    data_dir,
    mask_url,
    resolve_namespace,
    resolve_url,
)

_ENV_NAMES = (
    "REDIS_MEMORY_URL",
    "REDIS_URL",
    "REDIS_MEMORY_NAMESPACE",
    "REDIS_MEMORY_DATA_DIR",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


# resolve_url


@pytest.mark.parametrize(
    ("argument", "memory_url", "redis_url", "expected"),
    [
        ("redis://arg", "redis://memory", "redis://plain", "redis://arg"),
        (None, "redis://memory", "redis://plain", "redis://memory"),
        (None, None, "redis://plain", "redis://plain"),
        (None, None, None, None),
        ("", "redis://memory", None, "redis://memory"),
        (None, "", "redis://plain", "redis://plain"),
        (None, "", "", None),
    ],
)
def test_resolve_url_order(
    monkeypatch: pytest.MonkeyPatch,
    argument: str | None,
    memory_url: str | None,
    redis_url: str | None,
    expected: str | None,
) -> None:
    if memory_url is not None:
        monkeypatch.setenv("REDIS_MEMORY_URL", memory_url)
    if redis_url is not None:
        monkeypatch.setenv("REDIS_URL", redis_url)

    assert resolve_url(argument) == expected


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost",
        "redis://localhost:6379/0",
        "REDIS://localhost",
        "redis://:secret@127.0.0.1:6380/2",
        "rediss://user:secret@cache.example:6380",
        "unix:///tmp/redis.sock",
        "unix:///tmp/redis.sock?db=3",
        "redis+sentinel://127.0.0.1:26379,127.0.0.2:26379/mymaster",
        "redis+cluster://127.0.0.1:7000",
    ],
)
def test_resolve_url_accepts_supported_schemes(url: str) -> None:
    assert resolve_url(url) == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://localhost:6379", "the scheme http:// is not supported"),
        ("localhost:6379", "it has no scheme"),
        ("redis://localhost:port", "its port is not a number"),
        ("redis://localhost:70000", "its port is not a number"),
        ("unix://", "it names no socket path"),
        ("redis://local host", "it contains whitespace"),
        ("redis://localhost\n", "it contains whitespace"),
    ],
)
def test_resolve_url_rejects_invalid(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)) as raised:
        resolve_url(url)

    message = str(raised.value)
    assert message.startswith("invalid Redis URL ")
    assert "(from the url argument)" in message
    assert "redis://[[user]:password@]host[:port][/db]" in message
    assert "unix://[[user]:password@]/path/to/socket" in message
    assert "leave REDIS_MEMORY_URL and REDIS_URL unset" in message


def test_resolve_url_error_names_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "http://example.invalid")

    with pytest.raises(ValueError, match=r"\(from \$REDIS_URL\)"):
        resolve_url(None)


def test_resolve_url_error_masks_password() -> None:
    with pytest.raises(ValueError) as raised:
        resolve_url("http://alice:hunter2@localhost")

    assert "hunter2" not in str(raised.value)
    assert "'http://***@localhost'" in str(raised.value)


def test_resolve_url_rejects_non_string() -> None:
    with pytest.raises(TypeError, match=r"url must be a str or None, not int: 6379"):
        resolve_url(6379)  # type: ignore[arg-type]


# mask_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:secret@localhost:6379/0", "redis://***@localhost:6379/0"),
        ("redis://alice:secret@localhost", "redis://***@localhost"),
        ("redis://alice@localhost", "redis://***@localhost"),
        ("rediss://alice:p@ss@host:6380", "rediss://***@host:6380"),
        ("unix://:secret@/tmp/redis.sock", "unix://***@/tmp/redis.sock"),
        (
            "unix:///tmp/redis.sock?password=secret",
            "unix:///tmp/redis.sock?password=***",
        ),
        (
            "unix:///tmp/r.sock?db=1&password=secret&x=1",
            "unix:///tmp/r.sock?db=1&password=***&x=1",
        ),
        (
            "redis+sentinel://h:26379/m?sentinel_password=secret",
            "redis+sentinel://h:26379/m?sentinel_password=***",
        ),
        ("alice:secret@localhost:6379", "***@localhost:6379"),
        ("redis://localhost/path@with-at", "redis://localhost/path@with-at"),
        ("not a url", "not a url"),
        ("", ""),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


# resolve_namespace


def test_resolve_namespace_argument_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_MEMORY_NAMESPACE", "from-env")

    assert resolve_namespace("from-arg") == "from-arg"


def test_resolve_namespace_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_MEMORY_NAMESPACE", "from-env")

    assert resolve_namespace(None) == "from-env"


def test_resolve_namespace_default() -> None:
    assert resolve_namespace(None) == "default"


def test_resolve_namespace_empty_env_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_MEMORY_NAMESPACE", "")

    assert resolve_namespace(None) == "default"


def test_resolve_namespace_rejects_empty() -> None:
    with pytest.raises(ValueError, match=r"namespace must be a non-empty str, not ''"):
        resolve_namespace("")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, "namespace must be a str, not int: 5"),
        (b"raw", "namespace must be a str, not bytes: b'raw'"),
    ],
)
def test_resolve_namespace_rejects_non_string(value: object, message: str) -> None:
    with pytest.raises(TypeError, match=re.escape(message)):
        resolve_namespace(value)  # type: ignore[arg-type]


# data_dir


def test_data_dir_from_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REDIS_MEMORY_DATA_DIR", str(tmp_path / "data"))

    assert data_dir() == tmp_path / "data"


def test_data_dir_expands_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("REDIS_MEMORY_DATA_DIR", "~/rm-data")

    assert data_dir() == tmp_path / "rm-data"


def test_data_dir_makes_relative_path_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDIS_MEMORY_DATA_DIR", "relative")

    assert data_dir() == tmp_path / "relative"


@pytest.mark.skipif(sys.platform != "linux", reason="XDG_DATA_HOME is Linux only")
def test_data_dir_default_is_user_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("REDIS_MEMORY_DATA_DIR", "")

    assert data_dir() == tmp_path / "redis-memory"


def test_data_dir_does_not_create_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REDIS_MEMORY_DATA_DIR", str(tmp_path / "data"))

    data_dir()

    assert not (tmp_path / "data").exists()


# Import cost


def test_config_imports_no_redis_or_platformdirs() -> None:
    # The module is loaded from its file so that the package's __init__,
    # which may import redis for other reasons, does not count.
    spec = importlib.util.find_spec("redis_memory.config")
    assert spec is not None
    assert spec.origin is not None
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('alone', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "loaded = [name for name in ('redis', 'platformdirs') if name in sys.modules]\n"
        "print(loaded)\n"
    )

    completed = subprocess.run(
        [sys.executable, "-c", code, spec.origin],
        capture_output=True,
        text=True,
        check=True,
    )

    assert completed.stdout.strip() == "[]"


def test_all_names_exist() -> None:
    for name in config.__all__:
        assert hasattr(config, name), name
