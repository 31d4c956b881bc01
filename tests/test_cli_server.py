"""Tests of ``redis-memory server status|start|stop``.

Most tests call ``cli.main`` in-process. A few run the installed console
script and ``python -m redis_memory`` to check the entry points and exit
statuses as a shell sees them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_memory.cli import main
from redis_memory.errors import EmbeddedServerError
from redis_memory.server import EmbeddedServer


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh data directory, set in REDIS_MEMORY_DATA_DIR, whose server is stopped."""
    parent = Path(tempfile.mkdtemp(prefix="rm-cli-", dir="/tmp"))
    path = parent / "data"
    monkeypatch.setenv("REDIS_MEMORY_DATA_DIR", str(path))
    monkeypatch.delenv("REDIS_MEMORY_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    yield path
    try:
        EmbeddedServer(path).stop()
    except EmbeddedServerError:
        pass
    shutil.rmtree(parent, ignore_errors=True)


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m redis_memory`` with the current environment."""
    return subprocess.run(
        [sys.executable, "-m", "redis_memory", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# In-process


def test_status_not_running(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["server", "status"]) == 0

    output = capsys.readouterr()
    assert output.out.splitlines() == [
        "embedded server: not running",
        f"data dir:        {data_dir}",
    ]
    assert output.err == ""


def test_start_then_status(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["server", "start"]) == 0
    started = capsys.readouterr().out
    status = EmbeddedServer(data_dir).status()

    assert started == (
        f"the embedded server started (pid {status.pid}) at {status.url}\n"
    )

    assert main(["server", "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "embedded server: running"
    assert lines[1] == f"pid:             {status.pid}"
    assert lines[2] == f"url:             unix://{data_dir}/redis.sock"
    assert lines[3] == f"data dir:        {data_dir}"
    assert lines[4].startswith("version:         Valkey ")
    assert lines[5].startswith("uptime:          ")
    assert lines[6].startswith("memory used:     ")
    assert lines[6].endswith(" MiB")


def test_start_twice(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["server", "start"])
    capsys.readouterr()

    assert main(["server", "start"]) == 0

    assert "the embedded server is already running (pid " in capsys.readouterr().out


def test_status_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["server", "start"])
    capsys.readouterr()

    assert main(["server", "status", "--json"]) == 0

    status = json.loads(capsys.readouterr().out)
    assert set(status) == {
        "running",
        "pid",
        "url",
        "data_dir",
        "version",
        "uptime_seconds",
        "used_memory_bytes",
    }
    assert status["running"] is True
    assert isinstance(status["pid"], int)
    assert status["url"] == f"unix://{data_dir}/redis.sock"
    assert status["data_dir"] == str(data_dir)
    assert isinstance(status["used_memory_bytes"], int)


def test_json_option_before_command(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--json", "server", "status"]) == 0

    status = json.loads(capsys.readouterr().out)
    assert status["running"] is False
    assert status["pid"] is None
    assert status["url"] is None


def test_start_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["server", "start", "--json"]) == 0

    status = json.loads(capsys.readouterr().out)
    assert status["running"] is True


def test_stop(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["server", "start"])
    capsys.readouterr()

    assert main(["server", "stop"]) == 0
    assert capsys.readouterr().out == f"stopped the embedded server of {data_dir}\n"

    assert main(["server", "stop"]) == 0
    assert capsys.readouterr().out == (
        f"the embedded server of {data_dir} was not running\n"
    )


def test_stop_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["server", "start"])
    capsys.readouterr()

    assert main(["server", "stop", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "was_running": True,
        "data_dir": str(data_dir),
    }

    assert main(["server", "stop", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "was_running": False,
        "data_dir": str(data_dir),
    }


def test_url_option_is_rejected(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--url", "redis://localhost", "server", "status"]) == 1

    output = capsys.readouterr()
    assert output.out == ""
    assert output.err == (
        "redis-memory: error: --url cannot be used with `server`, which manages "
        f"the embedded server in {data_dir}\n"
    )


def test_note_when_url_is_configured(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_MEMORY_URL", "redis://:secret@localhost:6379")

    assert main(["server", "status"]) == 0

    assert capsys.readouterr().err == (
        "redis-memory: note: $REDIS_MEMORY_URL is set, so redis-memory connects to "
        "redis://***@localhost:6379, not to the embedded server\n"
    )


def test_start_failure_is_one_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir.parent.mkdir(exist_ok=True)
    data_dir.write_text("not a directory")

    assert main(["server", "start"]) == 1

    output = capsys.readouterr()
    assert output.out == ""
    assert output.err.count("\n") == 1
    assert output.err.startswith(
        f"redis-memory: error: cannot use {data_dir} as the embedded server's data "
        "directory"
    )


def test_start_failure_omits_log_tail(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir.mkdir(mode=0o700)
    (data_dir / "appendonlydir").write_text("a file where the AOF dir goes")

    assert main(["server", "start"]) == 1

    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "exited during startup; see " in error
    assert error.endswith(f"{data_dir / 'redis.log'}\n")


def test_unknown_action_is_usage_error(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["server", "restart"])

    assert raised.value.code == 2
    assert "invalid choice: 'restart'" in capsys.readouterr().err


def test_missing_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main([])

    assert raised.value.code == 2
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err


# Subprocesses


def test_module_entry_point_lifecycle(data_dir: Path) -> None:
    started = _run("server", "start")
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith("the embedded server started (pid ")

    status = _run("server", "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["running"] is True

    stopped = _run("server", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == f"stopped the embedded server of {data_dir}\n"

    status = _run("--json", "server", "status")
    assert json.loads(status.stdout)["running"] is False


def test_module_entry_point_failure(data_dir: Path) -> None:
    data_dir.parent.mkdir(exist_ok=True)
    data_dir.write_text("not a directory")

    completed = _run("server", "start")

    assert completed.returncode == 1
    assert completed.stdout == ""
    assert len(completed.stderr.splitlines()) == 1
    assert completed.stderr.startswith("redis-memory: error: cannot use ")


def test_console_script(data_dir: Path) -> None:
    script = Path(sys.executable).with_name("redis-memory")
    if not script.exists():
        pytest.skip("the redis-memory console script is not installed")

    completed = subprocess.run(
        [str(script), "server", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ},
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("embedded server: not running\n")
