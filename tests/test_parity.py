"""Property-based differential tests: a synced value follows a plain one.

Random sequences of list and dict operations, nested ones included, run on a
plain object and on a synced one; after every step both agree, and so does a
fresh Memory on its own connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import BACKENDS, open_memory
from redis_memory import Memory

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-3, 3, allow_nan=False).map(lambda x: round(x, 1)),
    st.text(max_size=3),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=6,
)
indexes = st.integers(-6, 6)
slices = st.builds(
    slice,
    st.none() | indexes,
    st.none() | indexes,
    st.none() | st.sampled_from([1, 2, -1, -2]),
)

Op = Callable[[Any], Any]


def _call(name: str, *args: Any, **kwargs: Any) -> Op:
    def op(target: Any) -> Any:
        return getattr(target, name)(*args, **kwargs)

    op.__name__ = f"{name}{args!r}{kwargs!r}"
    return op


list_ops = st.one_of(
    st.builds(lambda v: _call("append", v), values),
    st.builds(lambda v: _call("extend", v), st.lists(values, max_size=3)),
    st.builds(lambda i, v: _call("insert", i, v), indexes, values),
    st.builds(lambda v: _call("remove", v), scalars),
    st.builds(lambda i: _call("pop", i), indexes),
    st.just(_call("pop")),
    st.just(_call("clear")),
    st.just(_call("reverse")),
    st.builds(lambda i, v: _call("__setitem__", i, v), indexes, values),
    st.builds(
        lambda s, v: _call("__setitem__", s, v), slices, st.lists(values, max_size=3)
    ),
    st.builds(lambda i: _call("__delitem__", i), indexes),
    st.builds(lambda s: _call("__delitem__", s), slices),
    st.builds(lambda v: _call("__iadd__", v), st.lists(values, max_size=2)),
    st.builds(lambda n: _call("__imul__", n), st.integers(0, 2)),
    st.builds(lambda v: _call("count", v), scalars),
    st.builds(lambda v: _call("index", v), scalars),
    st.builds(lambda i: _call("__getitem__", i), indexes),
    st.builds(lambda s: _call("__getitem__", s), slices),
)

keys = st.text(max_size=2) | st.integers(-2, 2)
dict_ops = st.one_of(
    st.builds(lambda k, v: _call("__setitem__", k, v), keys, values),
    st.builds(lambda k: _call("__delitem__", k), keys),
    st.builds(lambda k: _call("pop", k), keys),
    st.builds(lambda k, d: _call("pop", k, d), keys, scalars),
    st.just(_call("popitem")),
    st.just(_call("clear")),
    st.builds(lambda m: _call("update", m), st.dictionaries(keys, values, max_size=3)),
    st.builds(lambda k, v: _call("setdefault", k, v), keys, values),
    st.builds(lambda k: _call("get", k), keys),
    st.builds(lambda k: _call("__getitem__", k), keys),
)


def _plain(value: Any) -> Any:
    if hasattr(value, "_plain"):
        return value._plain()
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    return value


def _outcome(target: Any, op: Op) -> tuple[str, Any]:
    try:
        return ("ok", _plain(op(target)))
    except Exception as exc:  # the exception type and text must match the builtin's
        return (type(exc).__name__, str(exc))


def _sort_op(reverse: bool) -> Op:
    return _call("sort", key=repr, reverse=reverse)


def _run(mem: Memory, fresh: Memory, plain: Any, ops: list[Op], name: str) -> None:
    setattr(mem, name, plain)
    expected = _plain(getattr(mem, name))
    assert expected == plain
    for op in ops:
        synced = getattr(mem, name)
        got = _outcome(synced, op)
        want = _outcome(plain, op)
        assert got == want, op.__name__
        assert getattr(mem, name) == plain, op.__name__
        assert getattr(fresh, name) == plain, op.__name__
        assert repr(getattr(fresh, name)) == repr(plain), op.__name__


@pytest.mark.parametrize("backend", BACKENDS)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    start=st.lists(values, max_size=5),
    ops=st.lists(list_ops | st.builds(_sort_op, st.booleans()), max_size=8),
)
def test_list_operations_match_list(
    backend: str,
    namespace: str,
    request: pytest.FixtureRequest,
    start: list[Any],
    ops: list[Op],
) -> None:
    mem = open_memory(backend, namespace, request)
    fresh = open_memory(
        "valkey" if backend == "cached" else backend, namespace, request
    )
    try:
        _run(mem, fresh, start, ops, "items")
    finally:
        mem._clear()


@pytest.mark.parametrize("backend", BACKENDS)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    start=st.dictionaries(keys, values, max_size=5), ops=st.lists(dict_ops, max_size=8)
)
def test_dict_operations_match_dict(
    backend: str,
    namespace: str,
    request: pytest.FixtureRequest,
    start: dict[Any, Any],
    ops: list[Op],
) -> None:
    mem = open_memory(backend, namespace, request)
    fresh = open_memory(
        "valkey" if backend == "cached" else backend, namespace, request
    )
    try:
        _run(mem, fresh, start, ops, "d")
    finally:
        mem._clear()


@pytest.mark.parametrize("backend", ["valkey", "cached"])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    start=st.lists(st.lists(values, max_size=3), min_size=1, max_size=3),
    steps=st.lists(st.tuples(st.integers(0, 2), list_ops), max_size=6),
)
def test_nested_list_operations_match(
    backend: str,
    namespace: str,
    request: pytest.FixtureRequest,
    start: list[Any],
    steps: list[tuple[int, Op]],
) -> None:
    mem = open_memory(backend, namespace, request)
    fresh = open_memory(
        "valkey" if backend == "cached" else backend, namespace, request
    )
    try:
        mem.grid = start
        for row, op in steps:
            if row >= len(start) or not isinstance(start[row], list):
                continue
            got = _outcome(mem.grid[row], op)
            want = _outcome(start[row], op)
            assert got == want, op.__name__
            assert fresh.grid == start, op.__name__
            assert mem.grid == start, op.__name__
            assert len(mem.grid[row]) == len(start[row]), op.__name__
    finally:
        mem._clear()


@pytest.mark.parametrize("backend", ["valkey", "cached"])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    start=st.dictionaries(
        keys, st.dictionaries(keys, values, max_size=3), min_size=1, max_size=3
    ),
    steps=st.lists(st.tuples(keys, dict_ops), max_size=6),
)
def test_nested_dict_operations_match(
    backend: str,
    namespace: str,
    request: pytest.FixtureRequest,
    start: dict[Any, Any],
    steps: list[tuple[Any, Op]],
) -> None:
    mem = open_memory(backend, namespace, request)
    fresh = open_memory(
        "valkey" if backend == "cached" else backend, namespace, request
    )
    try:
        mem.tree = start
        for key, op in steps:
            if key not in start or not isinstance(start[key], dict):
                continue
            inner = mem.tree[key]
            got = _outcome(inner, op)
            want = _outcome(start[key], op)
            assert got == want, op.__name__
            assert mem.tree == start, op.__name__
            assert len(mem.tree[key]) == len(start[key]), op.__name__
            assert fresh.tree == start, op.__name__
    finally:
        mem._clear()
