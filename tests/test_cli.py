"""Tests of the data commands of ``redis-memory``: ls, show, export, import, delete, demo.

Most tests call ``cli.main`` in-process on the session's embedded server; a
few run ``python -m redis_memory`` and the console script, to check what a
shell gets: exit statuses, stdin and stdout, and that errors are one line.
"""

from __future__ import annotations

import datetime
import decimal
import io
import json
import math
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redis_memory import Memory, cli, register_codec
from redis_memory.cli import main
from redis_memory.export import ExportFormatError, decode_value, encode_value

np = pytest.importorskip("numpy")


class _Point:
    """A user type with a registered codec, to check that ``$ext`` values export."""

    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Point) and (self.x, self.y) == (other.x, other.y)

    __hash__ = None  # type: ignore[assignment]


register_codec(
    _Point,
    "test-cli:point",
    lambda point: [point.x, point.y],
    lambda payload: _Point(*payload),
)


def every_type() -> dict[str, Any]:
    """Return one name per supported type, and nested values that mix them."""
    moment = datetime.datetime(
        2024, 5, 1, 12, 30, 15, 250, tzinfo=datetime.timezone.utc
    )
    return {
        "none": None,
        "true": True,
        "false": False,
        "int": -42,
        "big_int": 7**6000,
        "float": 0.1,
        "negative_zero": -0.0,
        "nan": math.nan,
        "inf": math.inf,
        "minus_inf": -math.inf,
        "str": 'héllo\n"quoted" \u2603',
        "lone_surrogate": "a\ud800b",
        "bytes": b"\x00\xff\x80 bytes",
        "tuple": (1, "a", None, (2.5,)),
        "set": {1, 2, 3},
        "frozenset": frozenset({"a", "b"}),
        "datetime": moment,
        "naive_datetime": datetime.datetime(2024, 5, 1, 12, 30),
        "date": datetime.date(2024, 5, 1),
        "time": datetime.time(23, 59, 59, 999999),
        "timedelta": datetime.timedelta(days=-1, seconds=5, microseconds=7),
        "decimal": decimal.Decimal("1.50"),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "complex": complex(1.5, -2),
        "ndarray": np.arange(6, dtype=np.int32).reshape(2, 3),
        "npscalar": np.float32(1.25),
        "point": _Point(3, 4),
        "empty_list": [],
        "empty_dict": {},
        "list": [1, "two", 3.0, None, [4, [5, {"six": 6}]]],
        "dict": {"theme": "dark", "sizes": {"font": 12}, "tags": ["a", "b"]},
        "typed_keys": {
            1: "int",
            "1": "str",
            2.5: "float",
            None: "none",
            (1, "a"): "tuple",
            frozenset({1}): "frozenset",
            datetime.date(2024, 1, 1): "date",
            b"k": "bytes",
            decimal.Decimal("3"): "decimal",
        },
        "dollar_keys": {"$tuple": [1], "$map": {"$x": 1}, "plain": 2},
        "nested": {
            "users": [
                {"name": "Ann", "scores": [95, 87], "joined": moment},
                {"name": "Bo", "scores": [], "tags": {"admin", "dev"}},
            ],
            "matrix": [[1, 2], [3, 4]],
            "pairs": ({"in": "tuple"}, [{"deep": [{"deeper": (1, 2)}]}]),
        },
        "name with spaces": "spaces",
        "$dollar_name": "dollar",
        "": "empty name",
    }


def assert_same(actual: Any, expected: Any, path: str = "value") -> None:
    """Assert that ``actual`` equals ``expected`` with every type identical."""
    assert type(actual) is type(expected), f"{path}: {type(actual)} != {type(expected)}"
    if isinstance(expected, float):
        if math.isnan(expected):
            assert math.isnan(actual), path
        else:
            assert actual == expected, path
            assert math.copysign(1, actual) == math.copysign(1, expected), path
    elif isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype, path
        assert np.array_equal(actual, expected), path
    elif isinstance(expected, dict):
        assert len(actual) == len(expected), path
        for (key, value), (expected_key, expected_value) in zip(
            actual.items(), expected.items(), strict=True
        ):
            assert_same(key, expected_key, f"{path} key {expected_key!r}")
            assert_same(value, expected_value, f"{path}[{expected_key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), path
        for index, (item, expected_item) in enumerate(
            zip(actual, expected, strict=True)
        ):
            assert_same(item, expected_item, f"{path}[{index}]")
    else:
        assert actual == expected, path
        if isinstance(expected, datetime.datetime):
            assert actual.tzinfo == expected.tzinfo, path


def run_cli(
    *arguments: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m redis_memory`` with the test session's environment."""
    return subprocess.run(
        [sys.executable, "-m", "redis_memory", *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def ns(real_mem: Memory) -> str:
    """The namespace of ``real_mem``, for ``--namespace``."""
    return real_mem._namespace


@pytest.fixture
def backup(tmp_path: Path) -> Path:
    return tmp_path / "backup.json"


@pytest.fixture
def second_namespace(namespace: str, server_url: str) -> Iterator[str]:
    """Another namespace no other test uses, cleared afterwards."""
    name = namespace + "-second"
    yield name
    Memory(namespace=name)._clear()


# ls


def test_ls_table(
    real_mem: Memory, ns: str, capsys: pytest.CaptureFixture[str]
) -> None:
    real_mem.tasks = [1, 2, 3]
    real_mem.config = {"theme": "dark"}
    real_mem.when = datetime.date(2024, 1, 1)
    real_mem["two words"] = "hi"

    assert main(["ls", "--namespace", ns]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "SIZE", "MODIFIED"]
    assert [line.split()[:3] for line in lines[1:4]] == [
        ["tasks", "list", "3"],
        ["config", "dict", "1"],
        ["when", "date", "-"],
    ]
    assert lines[4].startswith("two words  str ")
    assert len(lines) == 5


def test_ls_modified_is_local_time(
    real_mem: Memory, ns: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = datetime.datetime.now().replace(microsecond=0)
    real_mem.x = 1
    after = datetime.datetime.now()

    assert main(["ls", "--namespace", ns]) == 0

    row = capsys.readouterr().out.splitlines()[1]
    shown = datetime.datetime.strptime(row[-19:], "%Y-%m-%d %H:%M:%S")
    assert before <= shown <= after


def test_ls_json(real_mem: Memory, ns: str, capsys: pytest.CaptureFixture[str]) -> None:
    real_mem.tasks = [1, 2]
    real_mem.n = None
    real_mem.blob = b"abc"

    assert main(["--json", "ls", "--namespace", ns]) == 0

    rows = json.loads(capsys.readouterr().out)
    assert [(row["name"], row["type"], row["size"]) for row in rows] == [
        ("tasks", "list", 2),
        ("n", "NoneType", None),
        ("blob", "bytes", 3),
    ]
    for row in rows:
        modified = datetime.datetime.fromisoformat(row["modified"])
        assert modified.utcoffset() == datetime.timedelta(0)


def test_ls_pickled_value_without_key(
    real_mem: Memory, ns: str, capsys: pytest.CaptureFixture[str]
) -> None:
    real_mem.plain = [1]
    Memory(namespace=ns, pickle_key=b"key").pickled = _Unregistered()

    assert main(["--json", "ls", "--namespace", ns]) == 0

    rows = json.loads(capsys.readouterr().out)
    assert [(row["name"], row["type"], row["size"]) for row in rows] == [
        ("plain", "list", 1),
        ("pickled", "pickle", None),
    ]
    assert rows[0]["error"] is None
    assert "pickle" in rows[1]["error"]


def test_ls_unregistered_codec_in_cli(real_mem: Memory, ns: str) -> None:
    # The codec of _Point is registered in this process only, not in the CLI's.
    real_mem.point = _Point(1, 2)
    real_mem.n = 1

    result = run_cli("ls", "--namespace", ns)

    assert result.returncode == 0, result.stderr
    rows = [line.split()[:3] for line in result.stdout.splitlines()[1:]]
    assert rows == [["point", "ext:test-cli:point", "-"], ["n", "int", "-"]]
    assert result.stderr.startswith(
        "redis-memory: note: cannot decode 1 value here, for example 'point': "
    )
    assert result.stderr.count("\n") == 1


def test_ls_unprintable_name_is_quoted(
    real_mem: Memory, ns: str, capsys: pytest.CaptureFixture[str]
) -> None:
    real_mem["two\nlines"] = 1

    assert main(["ls", "--namespace", ns]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("'two\\nlines'  int")


def test_ls_empty_namespace(ns: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", "--namespace", ns]) == 0

    output = capsys.readouterr()
    assert output.out == ""
    assert output.err == f"redis-memory: namespace {ns!r} is empty\n"


def test_ls_namespace_from_environment(
    real_mem: Memory,
    ns: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real_mem.only_here = 1
    monkeypatch.setenv("REDIS_MEMORY_NAMESPACE", ns)

    assert main(["--json", "ls"]) == 0

    assert [row["name"] for row in json.loads(capsys.readouterr().out)] == ["only_here"]


# show


def test_show_dict(
    real_mem: Memory, ns: str, capsys: pytest.CaptureFixture[str]
) -> None:
    real_mem.config = {
        "theme": "dark",
        "sizes": [10, 12],
        "when": datetime.date(2024, 1, 2),
    }

    assert main(["show", "config", "--namespace", ns]) == 0

    assert capsys.readouterr().out == (
        "{\n"
        '  "theme": "dark",\n'
        '  "sizes": [10, 12],\n'
        '  "when": {"$date":"2024-01-02"}\n'
        "}\n"
    )


def test_show_output_round_trips(
    real_mem: Memory, ns: str, capsys: pytest.CaptureFixture[str]
) -> None:
    value = every_type()["nested"]
    real_mem.nested = value

    assert main(["--json", "show", "nested", "--namespace", ns]) == 0

    shown = capsys.readouterr().out
    assert_same(decode_value(real_mem._store.codec, shown), value)


def test_show_missing_name(ns: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "nope", "--namespace", ns]) == 1

    output = capsys.readouterr()
    assert output.out == ""
    assert output.err == (
        f"redis-memory: error: no value named 'nope' in namespace {ns!r}; "
        f"`redis-memory ls --namespace {ns}` lists the stored names\n"
    )


def test_show_name_starting_with_underscore(
    real_mem: Memory, ns: str, capsys: pytest.CaptureFixture[str]
) -> None:
    real_mem["_private"] = [1]

    assert main(["show", "_private", "--namespace", ns]) == 0

    assert capsys.readouterr().out == "[1]\n"


# export and import


def test_round_trip_restores_every_type(
    real_mem: Memory, ns: str, backup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = every_type()
    for name, value in values.items():
        real_mem[name] = value
    stored_before = real_mem._asdict()

    assert main(["export", str(backup), "--namespace", ns]) == 0
    assert main(["delete", *values, "--namespace", ns]) == 0
    assert len(real_mem) == 0
    assert main(["import", str(backup), "--namespace", ns]) == 0

    restored = Memory(namespace=ns)._asdict()
    assert list(restored) == list(values)
    assert_same(restored, stored_before)
    for name, value in values.items():
        if name not in ("typed_keys",):
            assert_same(restored[name], value, name)
    output = capsys.readouterr().out.splitlines()
    assert (
        output[0] == f"exported {len(values)} names from namespace {ns!r} to {backup}"
    )
    assert (
        output[-1]
        == f"imported {len(values)} names into namespace {ns!r} from {backup}"
    )


def test_round_trip_typed_keys_exactly(real_mem: Memory, ns: str, backup: Path) -> None:
    keys = every_type()["typed_keys"]
    real_mem.keys_ = keys
    stored = real_mem.keys_.copy()

    assert main(["export", str(backup), "--namespace", ns]) == 0
    del real_mem.keys_
    assert main(["import", str(backup), "--namespace", ns]) == 0

    assert_same(real_mem.keys_.copy(), stored)
    assert set(map(type, stored)) == set(map(type, keys))


def test_round_trip_seen_by_second_process(
    real_mem: Memory, ns: str, backup: Path
) -> None:
    real_mem.complex = {"users": [{"name": "Ann", "scores": [95, 87]}], "n": (1, {2})}
    assert run_cli("export", str(backup), "--namespace", ns).returncode == 0
    real_mem._clear()

    result = run_cli("import", str(backup), "--namespace", ns)

    assert result.returncode == 0, result.stderr
    shown = run_cli("show", "complex", "--namespace", ns)
    assert json.loads(shown.stdout) == {
        "users": [{"name": "Ann", "scores": [95, 87]}],
        "n": {"$tuple": [1, {"$set": [2]}]},
    }
    real_mem.complex["users"][0]["scores"].append(96)
    assert Memory(namespace=ns).complex["users"][0]["scores"] == [95, 87, 96]


def test_export_document_layout(real_mem: Memory, ns: str, backup: Path) -> None:
    real_mem.tasks = [1, 2]
    real_mem.when = datetime.date(2024, 1, 2)
    real_mem.keyed = {1: "a"}

    assert main(["export", str(backup), "--namespace", ns]) == 0

    document = json.loads(backup.read_text(encoding="utf-8"))
    assert list(document) == ["format", "version", "namespace", "exported_at", "names"]
    assert document["format"] == "redis-memory-export"
    assert document["version"] == 1
    assert document["namespace"] == ns
    exported_at = datetime.datetime.fromisoformat(document["exported_at"])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs(now - exported_at) < datetime.timedelta(minutes=1)
    assert document["names"] == {
        "tasks": [1, 2],
        "when": {"$date": "2024-01-02"},
        "keyed": {"$map": [[1, "a"]]},
    }


def test_export_empty_namespace(ns: str, backup: Path) -> None:
    assert main(["export", str(backup), "--namespace", ns]) == 0

    assert json.loads(backup.read_text(encoding="utf-8"))["names"] == {}


def test_export_file_is_private(real_mem: Memory, ns: str, backup: Path) -> None:
    real_mem.secret = "s3cret"

    assert main(["export", str(backup), "--namespace", ns]) == 0

    assert backup.stat().st_mode & 0o777 == 0o600


def test_export_json_summary(
    real_mem: Memory, ns: str, backup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real_mem.a = 1
    real_mem.b = [2]

    assert main(["--json", "export", str(backup), "--namespace", ns]) == 0

    assert json.loads(capsys.readouterr().out) == {
        "file": str(backup),
        "namespace": ns,
        "names": ["a", "b"],
    }


def test_failed_export_keeps_old_file(
    real_mem: Memory, ns: str, backup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backup.write_text("old contents", encoding="utf-8")
    real_mem.fine = 1
    # A pickled value cannot be read without its key, so the export fails on it.
    Memory(namespace=ns, pickle_key=b"key").pickled = _Unregistered()

    assert main(["export", str(backup), "--namespace", ns]) == 1

    assert backup.read_text(encoding="utf-8") == "old contents"
    assert sorted(path.name for path in backup.parent.iterdir()) == ["backup.json"]
    error = capsys.readouterr().err
    assert error.startswith("redis-memory: error: ")
    assert error.count("\n") == 1


class _Unregistered:
    """A type with no codec, stored only with pickle."""


def test_export_to_missing_directory(
    real_mem: Memory, ns: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real_mem.a = 1
    target = tmp_path / "no" / "such" / "dir.json"

    assert main(["export", str(target), "--namespace", ns]) == 1

    error = capsys.readouterr().err
    assert "No such file or directory" in error
    assert error.count("\n") == 1


def test_export_stdout_import_stdin(
    real_mem: Memory, ns: str, second_namespace: str
) -> None:
    real_mem.tasks = [1, (2, 3)]
    real_mem.config = {"theme": "dark"}

    exported = run_cli("export", "-", "--namespace", ns)
    assert exported.returncode == 0, exported.stderr
    assert exported.stderr == f"exported 2 names from namespace {ns!r} to stdout\n"
    imported = run_cli(
        "import", "-", "--namespace", second_namespace, stdin=exported.stdout
    )

    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == (
        f"imported 2 names into namespace {second_namespace!r} from stdin\n"
    )
    copy = Memory(namespace=second_namespace)
    assert_same(copy._asdict(), {"tasks": [1, (2, 3)], "config": {"theme": "dark"}})


def test_import_into_file_namespace_by_default(
    real_mem: Memory, ns: str, backup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real_mem.a = [1]
    assert main(["export", str(backup), "--namespace", ns]) == 0
    real_mem._clear()

    assert main(["import", str(backup)]) == 0

    assert real_mem._asdict() == {"a": [1]}
    assert f"into namespace {ns!r}" in capsys.readouterr().out


def test_import_into_other_namespace(
    real_mem: Memory, ns: str, backup: Path, second_namespace: str
) -> None:
    real_mem.a = {"b": [1]}
    assert main(["export", str(backup), "--namespace", ns]) == 0

    assert main(["import", str(backup), "--namespace", second_namespace]) == 0

    assert Memory(namespace=second_namespace)._asdict() == {"a": {"b": [1]}}
    assert real_mem._asdict() == {"a": {"b": [1]}}


def test_import_overwrites_and_keeps_others(
    real_mem: Memory, ns: str, backup: Path
) -> None:
    real_mem.a = [1, 2]
    assert main(["export", str(backup), "--namespace", ns]) == 0
    real_mem.a.append(3)
    real_mem.extra = "kept"

    assert main(["import", str(backup), "--namespace", ns]) == 0

    assert real_mem._asdict() == {"a": [1, 2], "extra": "kept"}


def test_import_replace_deletes_others(
    real_mem: Memory, ns: str, backup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real_mem.a = [1, 2]
    assert main(["export", str(backup), "--namespace", ns]) == 0
    capsys.readouterr()
    real_mem.extra = {"nested": [1]}
    real_mem.more = 2

    assert main(["--json", "import", str(backup), "--replace", "--namespace", ns]) == 0

    assert real_mem._asdict() == {"a": [1, 2]}
    assert json.loads(capsys.readouterr().out) == {
        "file": str(backup),
        "namespace": ns,
        "names": ["a"],
        "deleted": ["extra", "more"],
    }


def test_import_many_names_in_batches(real_mem: Memory, ns: str, backup: Path) -> None:
    values = {f"n{i}": {"i": i, "sq": [i * i]} for i in range(250)}
    real_mem._update(values)
    assert main(["export", str(backup), "--namespace", ns]) == 0
    real_mem._clear()

    assert main(["import", str(backup), "--namespace", ns]) == 0

    assert real_mem._asdict() == values


BAD_DOCUMENTS = [
    pytest.param(
        "{not json",
        "invalid JSON in {file}: Expecting property name enclosed in double quotes "
        "at line 1, column 2",
        id="not-json",
    ),
    pytest.param(
        '{"names": {}}',
        '{file} is not a redis-memory export: it has no "format": '
        '"redis-memory-export" field at the top level; create one with '
        "`redis-memory export FILE`",
        id="no-format",
    ),
    pytest.param(
        "[1, 2]",
        '{file} is not a redis-memory export: it has no "format": '
        '"redis-memory-export" field at the top level; create one with '
        "`redis-memory export FILE`",
        id="not-an-object",
    ),
    pytest.param(
        '{"format": "redis-memory-export", "version": 2, "namespace": "x", "names": {}}',
        "{file} has export version 2, but this redis-memory reads version 1 only; "
        "import it with the redis-memory release that wrote it",
        id="version-2",
    ),
    pytest.param(
        '{"format": "redis-memory-export", "namespace": "x", "names": {}}',
        '{file} has no "version" field at the top level; add the version of the '
        'export layout, "version": 1',
        id="no-version",
    ),
    pytest.param(
        '{"format": "redis-memory-export", "version": 1, "names": {}}',
        '{file} has no "namespace" string at the top level; add the namespace it '
        'was exported from, for example "namespace": "default"',
        id="no-namespace",
    ),
    pytest.param(
        '{"format": "redis-memory-export", "version": 1, "namespace": "x"}',
        '{file} has no "names" object at the top level; an export without values '
        'has "names": {{}}',
        id="no-names",
    ),
    pytest.param(
        '{"format": "redis-memory-export", "version": 1, "namespace": "x", '
        '"names": {"a": 1, "a": 2}}',
        "invalid JSON in {file}: the key 'a' appears twice in one object",
        id="duplicate-name",
    ),
    pytest.param(
        '{"format": "redis-memory-export", "version": 1, "namespace": "x", '
        '"names": {"a": NaN}}',
        "invalid JSON in {file}: NaN is not JSON; the export encoding writes it as "
        '{{"$float": "nan"}}',
        id="nan-constant",
    ),
    pytest.param(
        '{"format": "redis-memory-export", "version": 1, "namespace": "x", '
        '"names": {"ok": 1, "a": {"$map": [[[1], 2]]}}}',
        "invalid $map at names['a']: key 0 is a list, which cannot be a dict key",
        id="unhashable-key",
    ),
    pytest.param(
        '{"format": "redis-memory-export", "version": 1, "namespace": "x", '
        '"names": {"a": {"$map": [[1, 2, 3]]}}}',
        "invalid $map at names['a']: item 0 is not a [key, value] pair",
        id="map-triple",
    ),
    pytest.param(
        '{"format": "redis-memory-export", "version": 1, "namespace": "x", '
        '"names": {"a": {"$map": {"k": 1}}}}',
        "invalid $map at names['a']: expected a JSON array of [key, value] pairs",
        id="map-object",
    ),
    pytest.param(
        '{"format": "redis-memory-export", "version": 1, "namespace": "x", '
        '"names": {"a": [{"$list": "abc123"}]}}',
        'invalid value at names[\'a\'][0]: {{"$list":"abc123"}} is a reference to a '
        "stored node, which an export never contains; write the list or dict itself",
        id="node-reference",
    ),
    pytest.param(
        '{"format": "redis-memory-export", "version": 1, "namespace": "x", '
        '"names": {"a": {"b": {"$nope": 1}}}}',
        "corrupt value at names['a']['b']: unknown tag '$nope' "
        "(stored text: '{{\"$nope\":1}}')",
        id="unknown-tag",
    ),
]


@pytest.mark.parametrize(("document", "message"), BAD_DOCUMENTS)
def test_import_rejects_bad_document(
    real_mem: Memory,
    ns: str,
    backup: Path,
    document: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real_mem.untouched = [1]
    backup.write_text(document, encoding="utf-8")

    assert main(["import", str(backup), "--namespace", ns]) == 1

    output = capsys.readouterr()
    assert output.err == f"redis-memory: error: {message.format(file=backup)}\n"
    assert output.out == ""
    assert real_mem._asdict() == {"untouched": [1]}


def test_import_missing_file(
    ns: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.json"

    assert main(["import", str(missing), "--namespace", ns]) == 1

    assert capsys.readouterr().err == (
        f"redis-memory: error: [Errno 2] No such file or directory: '{missing}'\n"
    )


def test_import_bad_document_exit_status(ns: str, backup: Path) -> None:
    backup.write_text("[]", encoding="utf-8")

    result = run_cli("import", str(backup), "--namespace", ns)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"redis-memory: error: {backup} is not a")
    assert result.stderr.count("\n") == 1


def test_progress_bar_on_terminal(
    real_mem: Memory,
    ns: str,
    backup: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real_mem._update({f"n{i}": i for i in range(30)})
    terminal = _Terminal()
    monkeypatch.setattr(cli, "_PROGRESS_DELAY", 0)
    monkeypatch.setattr(sys, "stderr", terminal)

    assert main(["export", str(backup), "--namespace", ns]) == 0
    assert main(["import", str(backup), "--namespace", ns]) == 0

    # tqdm throttles redraws, so the bar may not reach 100% before it is erased.
    drawn = terminal.getvalue()
    assert "\rexport: " in drawn
    assert "\rimport: " in drawn
    assert drawn.count("/30 [") >= 2
    assert drawn.endswith("\r")
    assert capsys.readouterr().out.count("30 names") == 2


def test_no_progress_bar_when_not_terminal(
    real_mem: Memory,
    ns: str,
    backup: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real_mem._update({f"n{i}": i for i in range(30)})
    monkeypatch.setattr(cli, "_PROGRESS_DELAY", 0)

    assert main(["export", str(backup), "--namespace", ns]) == 0

    assert capsys.readouterr().err == ""


class _Terminal(io.StringIO):
    """A stderr that claims to be a terminal, so tqdm draws its bar."""

    def isatty(self) -> bool:
        return True


# export encoding


@pytest.mark.parametrize("name", list(every_type()))
def test_encoding_round_trips(real_mem: Memory, name: str) -> None:
    value = every_type()[name]
    codec = real_mem._store.codec

    text = encode_value(codec, value)

    assert_same(decode_value(codec, text), value, name)


def test_encoding_str_keyed_dict_is_object(real_mem: Memory) -> None:
    text = encode_value(real_mem._store.codec, {"a": [1, {"b": None}], "c": {}})

    assert json.loads(text) == {"a": [1, {"b": None}], "c": {}}


def test_encoding_reads_synced_values(real_mem: Memory) -> None:
    real_mem.config = {"users": [{"name": "Ann"}]}

    text = encode_value(real_mem._store.codec, real_mem.config["users"])

    assert text == '[{"name": "Ann"}]'


def test_encoding_layout(real_mem: Memory) -> None:
    value = {
        "short": [1, [2, 3]],
        "pairs": {1: "one", "two": [2]},
        "nested": {"inner": {"a": 1}},
        "long": list(range(40)),
        "café": "crème",
    }

    text = encode_value(real_mem._store.codec, value)

    lines = text.splitlines()
    assert lines[:8] == [
        "{",
        '  "short": [1, [2, 3]],',
        '  "pairs": {',
        '    "$map": [[1, "one"], ["two", [2]]]',
        "  },",
        '  "nested": {',
        '    "inner": {"a": 1}',
        "  },",
    ]
    assert lines[8] == '  "long": ['
    assert lines[9] == "    0,"
    assert lines[-2] == '  "café": "crème"'


def test_encoding_lone_surrogate_key(real_mem: Memory) -> None:
    codec = real_mem._store.codec
    value = {"a\ud800": "b\udc00"}

    text = encode_value(codec, value)

    assert text == '{"a\\ud800": "b\\udc00"}'
    assert decode_value(codec, text) == value


def test_decoding_rejects_invalid_json(real_mem: Memory) -> None:
    with pytest.raises(
        ExportFormatError, match=r"invalid JSON in value: Expecting value"
    ):
        decode_value(real_mem._store.codec, "[1,")


# delete


def test_delete_names(
    real_mem: Memory, ns: str, capsys: pytest.CaptureFixture[str]
) -> None:
    real_mem.a = {"nested": [1, 2]}
    real_mem.b = 2
    real_mem.c = 3

    assert main(["delete", "a", "b", "--namespace", ns]) == 0

    assert real_mem._names() == ["c"]
    assert capsys.readouterr().out == f"deleted 'a', 'b' from namespace {ns!r}\n"


def test_delete_removes_nested_keys(real_mem: Memory, ns: str, server_url: str) -> None:
    import redis

    real_mem.a = {"nested": [1, {"deeper": [2]}]}
    client = redis.Redis.from_url(server_url)
    prefix = real_mem._store.keys.prefix
    # The namespace's root node, the dict, the two lists and the inner dict.
    assert len(client.keys(prefix.replace("{", "\\{").replace("}", "\\}") + "n:*")) == 5

    assert main(["delete", "a", "--namespace", ns]) == 0

    node_keys = client.keys(prefix.replace("{", "\\{").replace("}", "\\}") + "n:*")
    assert node_keys == []


def test_delete_missing_name_deletes_nothing(
    real_mem: Memory, ns: str, capsys: pytest.CaptureFixture[str]
) -> None:
    real_mem.a = 1

    assert main(["delete", "a", "nope", "--namespace", ns]) == 1

    assert real_mem._names() == ["a"]
    assert capsys.readouterr().err == (
        f"redis-memory: error: no value named 'nope' in namespace {ns!r}; "
        f"`redis-memory ls --namespace {ns}` lists the stored names\n"
    )


def test_delete_json(
    real_mem: Memory, ns: str, capsys: pytest.CaptureFixture[str]
) -> None:
    real_mem.a = 1

    assert main(["--json", "delete", "a", "a", "--namespace", ns]) == 0

    assert json.loads(capsys.readouterr().out) == {"namespace": ns, "deleted": ["a"]}


def test_delete_without_name_is_usage_error() -> None:
    result = run_cli("delete")

    assert result.returncode == 2
    assert "the following arguments are required: NAME" in result.stderr


# demo


def test_demo_runs_in_its_own_namespace(
    server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    untouched = Memory(namespace="default")
    untouched.keep_me = [1]
    try:
        assert main(["demo"]) == 0

        output = capsys.readouterr().out
        assert output.startswith("Writing to Memory(")
        assert "namespace='redis-memory-demo')" in output.splitlines()[0]
        assert output.endswith("OK: the second process saw every change.\n")
        assert untouched.keep_me == [1]
        assert Memory(namespace="redis-memory-demo").tasks == [0, 1, 2, 3, 4, 5, 6]
    finally:
        untouched._clear()
        Memory(namespace="redis-memory-demo")._clear()


def test_demo_namespace_option(ns: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--namespace", ns]) == 0

    assert f"namespace={ns!r})" in capsys.readouterr().out
    assert Memory(namespace=ns).items == [10, 20, 30]


def test_demo_rejects_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "demo"]) == 1

    assert capsys.readouterr().err == (
        "redis-memory: error: demo prints a walkthrough and has no --json output\n"
    )


# the process as run from a shell


def test_console_script_ls(real_mem: Memory, ns: str) -> None:
    real_mem.tasks = [1, 2, 3]
    script = Path(sys.executable).with_name("redis-memory")

    result = subprocess.run(
        [str(script), "--json", "ls", "--namespace", ns],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert [row["name"] for row in json.loads(result.stdout)] == ["tasks"]


@pytest.mark.slow
def test_unreachable_server_is_one_line(ns: str) -> None:
    # Nothing listens on port 1 of the loopback interface. The connection
    # retries for 10 s before it gives up, hence the slow mark.
    result = run_cli("--url", "redis://127.0.0.1:1/0", "ls", "--namespace", ns)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("redis-memory: error: ")
    assert "127.0.0.1:1" in result.stderr
    assert result.stderr.count("\n") == 1


def test_closed_stdout_is_quiet(real_mem: Memory, ns: str) -> None:
    real_mem.big = list(range(100_000))

    process = subprocess.Popen(
        [sys.executable, "-m", "redis_memory", "show", "big", "--namespace", ns],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.read(10)
    process.stdout.close()
    error = process.stderr.read()
    process.stderr.close()

    assert process.wait(timeout=60) == 1
    assert error == b""


def test_help_lists_every_command() -> None:
    result = run_cli("--help")

    assert result.returncode == 0
    for command in ("ls", "show", "export", "import", "delete", "demo", "server"):
        assert f"\n    {command} " in result.stdout
