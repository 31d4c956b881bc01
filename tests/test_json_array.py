"""Whole reads parse entries as one JSON array: orjson where it agrees with json."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from redis_memory import Memory
from redis_memory.errors import CorruptValueError
from redis_memory.json_array import parse_array

# Texts on which orjson and json differ or orjson gives up; each must come out as json has it.
EDGE_TEXTS = [
    b"[1180591620717411303424]",
    b"[-9223372036854775809,9223372036854775807]",
    b"[18446744073709551616]",
    b'["\\ud800"]',
    b"[1e400]",
    b'["0000000000000000000"]',
    b"[" * 900 + b"]" * 900,
]


@pytest.mark.parametrize("text", EDGE_TEXTS, ids=lambda text: repr(text[:24]))
def test_parse_array_agrees_with_json(text: bytes) -> None:
    got = parse_array(text)
    want = json.loads(text)
    assert repr(got) == repr(want)
    assert [type(value) for value in got or []] == [type(value) for value in want]


# NaN and Infinity are not JSON, and the last one is nested deeper than both parsers allow.
NOT_ARRAYS = [
    b"",
    b"{}",
    b"[1],[2]",
    b"[1,",
    b'"text"',
    b"[NaN]",
    b"[1,-Infinity]",
    b"[" * 5000 + b"]" * 5000,
]


@pytest.mark.parametrize("text", NOT_ARRAYS, ids=lambda text: repr(text[:12]))
def test_parse_array_rejects_non_arrays(text: bytes) -> None:
    assert parse_array(text) is None


BIG_AND_ODD: list[Any] = [
    2**64,
    -(2**63) - 1,
    2**63 - 1,
    10**30,
    7**90,
    1.5,
    -0.0,
    math.inf,
    "\ud800 lone surrogate",
    "0" * 40,
    {"$list": "not a reference, a dict"},
    (1, 2),
]


def test_whole_list_read_keeps_big_ints_exact(real_mem: Memory) -> None:
    values = [*BIG_AND_ODD, *range(1_000)]
    real_mem.big = values
    got = Memory(real_mem._url, real_mem._namespace, cache=False).big.aslist()
    assert got == values
    assert [type(value) for value in got] == [type(value) for value in values]


def test_whole_read_of_foreign_non_json_entries(real_mem: Memory) -> None:
    # Entries written by hand with redis-cli: NaN is not JSON, so no read takes it.
    real_mem.odd = [0]
    key = real_mem._store.keys.node(real_mem.odd._id)
    client = real_mem._store.connection.client
    client.rpush(key, b"7", b"12345678901234567890123")
    fresh = Memory(real_mem._url, real_mem._namespace, cache=False)
    assert fresh.odd.aslist() == [0, 7, 12345678901234567890123]
    assert fresh.odd[2] == 12345678901234567890123
    client.rpush(key, b"NaN")
    with pytest.raises(CorruptValueError, match=r"mem\.odd\[3\].*NaN"):
        fresh.odd.aslist()
    with pytest.raises(CorruptValueError, match="NaN"):
        fresh.odd[3]
