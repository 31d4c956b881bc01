"""Tests of the value codec: stored text of every type, keys, errors and pickle.

No Redis server is needed: the codec only converts values to text and back.
"""

from __future__ import annotations

import base64
import collections
import doctest
import enum
import hashlib
import hmac
import json
import math
import pathlib
import pickle
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redis_memory.codec import Codec, CodecRegistry, NodeRef, register_codec
from redis_memory.codec_registry import default_registry
from redis_memory.errors import (
    CorruptValueError,
    PickleRefusedError,
    UnsupportedTypeError,
)
from redis_memory.signed_pickle import PickleSigner

PATH = "mem.x"
NAN = float("nan")
INF = float("inf")
PARIS = ZoneInfo("Europe/Paris")
PLUS_ONE = timezone(timedelta(hours=1))

# Lua's pattern ^{"%$(%a+)":"([%w]+)"}$ written as a Python regular expression.
LUA_REF_PATTERN = re.compile(r'\{"\$([A-Za-z]+)":"([A-Za-z0-9]+)"\}')


@pytest.fixture
def codec() -> Codec:
    """A codec with pickle off and a registry of its own."""
    return Codec(registry=CodecRegistry(inherit=False))


def assert_same(expected: Any, actual: Any) -> None:
    """Assert equal type and value, recursively, telling -0.0 from 0.0 and nan."""
    assert type(actual) is type(expected), (expected, actual)
    if isinstance(expected, float):
        if math.isnan(expected):
            assert math.isnan(actual)
        else:
            assert actual == expected
            assert math.copysign(1, actual) == math.copysign(1, expected)
    elif isinstance(expected, complex):
        assert_same(expected.real, actual.real)
        assert_same(expected.imag, actual.imag)
    elif isinstance(expected, Decimal):
        assert str(actual) == str(expected)
    elif isinstance(expected, (tuple, list)):
        assert len(actual) == len(expected)
        for expected_item, actual_item in zip(expected, actual, strict=True):
            assert_same(expected_item, actual_item)
    elif isinstance(expected, (set, frozenset)):
        assert actual == expected
        stored = {item: item for item in actual}
        for item in expected:
            assert_same(item, stored[item])
    elif isinstance(expected, dict):
        assert list(actual) == list(expected)
        stored_keys = {key: key for key in actual}
        for key, item in expected.items():
            assert_same(key, stored_keys[key])
            assert_same(item, actual[key])
    elif type(expected).__module__ == "numpy":
        assert actual.dtype == expected.dtype
        assert actual.shape == expected.shape
        assert actual.tobytes() == expected.tobytes()
    elif isinstance(expected, (datetime, time)):
        # Wall time and offset, because == is False between zones for a time in a
        # DST gap or fold (PEP 495), even when both are the same instant.
        assert actual.replace(tzinfo=None) == expected.replace(tzinfo=None)
        assert actual.utcoffset() == expected.utcoffset()
        assert (actual.tzinfo is None) == (expected.tzinfo is None)
    else:
        assert actual == expected


def round_trip(codec: Codec, value: object) -> object:
    text = codec.encode(value, PATH)
    decoded_from_bytes = codec.decode(text.encode("utf-8"), PATH)
    decoded_from_str = codec.decode(text, PATH)
    assert_same(decoded_from_bytes, decoded_from_str)
    return decoded_from_bytes


# Stored text of every type.

ENCODINGS = [
    (None, "null"),
    (True, "true"),
    (False, "false"),
    (0, "0"),
    (-17, "-17"),
    (2**70, "1180591620717411303424"),
    (1.0, "1.0"),
    (-0.0, "-0.0"),
    (1e16, "1e+16"),
    (1.5e-7, "1.5e-07"),
    (NAN, '{"$float":"nan"}'),
    (INF, '{"$float":"inf"}'),
    (-INF, '{"$float":"-inf"}'),
    ("abc", '"abc"'),
    ("", '""'),
    ('say "hi"\n', '"say \\"hi\\"\\n"'),
    ("\x00\x1f", '"\\u0000\\u001f"'),
    ("héllo ✓ 😀", '"héllo ✓ 😀"'),
    ("é\ud800", '"\\u00e9\\ud800"'),
    (b"\x00\x01\xff", '{"$bytes":"AAH/"}'),
    (b"", '{"$bytes":""}'),
    ((), '{"$tuple":[]}'),
    ((1, "a", None), '{"$tuple":[1,"a",null]}'),
    ((1, [2, 3], {"k": (4,)}), '{"$tuple":[1,[2,3],{"$map":[["k",{"$tuple":[4]}]]}]}'),
    (({1: "x", (2,): []},), '{"$tuple":[{"$map":[[1,"x"],[{"$tuple":[2]},[]]]}]}'),
    ({3, 1, 2}, '{"$set":[1,2,3]}'),
    (set(), '{"$set":[]}'),
    (frozenset({"b", "a", 10}), '{"$frozenset":["a","b",10]}'),
    (datetime(2024, 1, 2, 3, 4, 5, 6), '{"$datetime":"2024-01-02T03:04:05.000006"}'),
    (
        datetime(2024, 1, 2, 3, 4, tzinfo=PLUS_ONE),
        '{"$datetime":"2024-01-02T03:04:00+01:00"}',
    ),
    (
        datetime(2024, 7, 1, 12, tzinfo=PARIS),
        '{"$datetime":"2024-07-01T12:00:00+02:00"}',
    ),
    (date(2024, 1, 2), '{"$date":"2024-01-02"}'),
    (time(3, 4, 5), '{"$time":"03:04:05"}'),
    (time(3, 4, tzinfo=timezone.utc), '{"$time":"03:04:00+00:00"}'),
    (timedelta(days=-1, seconds=5, microseconds=7), '{"$timedelta":[-1,5,7]}'),
    (Decimal("1.50"), '{"$decimal":"1.50"}'),
    (Decimal("-0"), '{"$decimal":"-0"}'),
    (Decimal("-Infinity"), '{"$decimal":"-Infinity"}'),
    (Decimal("NaN"), '{"$decimal":"NaN"}'),
    (Decimal("1E+30"), '{"$decimal":"1E+30"}'),
    (uuid.UUID(int=255), '{"$uuid":"00000000-0000-0000-0000-0000000000ff"}'),
    (complex(1, -2), '{"$complex":[1.0,-2.0]}'),
    (complex(NAN, INF), '{"$complex":[{"$float":"nan"},{"$float":"inf"}]}'),
]


@pytest.mark.parametrize(("value", "text"), ENCODINGS, ids=lambda item: repr(item)[:40])
def test_encode_exact_text(codec: Codec, value: object, text: str) -> None:
    assert codec.encode(value, PATH) == text


@pytest.mark.parametrize(("value", "text"), ENCODINGS, ids=lambda item: repr(item)[:40])
def test_round_trip_every_type(codec: Codec, value: object, text: str) -> None:
    assert_same(value, round_trip(codec, value))


def test_frozenset_text_sorted_by_element_text(codec: Codec) -> None:
    # "\"a\"" sorts before "10" because '"' (0x22) comes before '1' (0x31).
    assert (
        codec.encode(frozenset({"b", "a", 10}), PATH) == '{"$frozenset":["a","b",10]}'
    )


def test_float_text_always_decodes_as_float(codec: Codec) -> None:
    for value in (1.0, 100.0, 1e300, 5e-324, -2.0):
        text = codec.encode(value, PATH)
        assert "." in text or "e" in text
        assert type(codec.decode(text)) is float


def test_big_int_beyond_str_digit_limit(codec: Codec) -> None:
    value = -(7**9000)
    text = codec.encode(value, PATH)
    assert text.lstrip("-").isdigit()
    assert codec.decode(text) == value
    assert codec.decode(f'{{"$tuple":[{text}]}}') == (value,)


def test_zoneinfo_datetime_stored_as_offset(codec: Codec) -> None:
    winter = datetime(2024, 1, 1, 12, tzinfo=PARIS)
    decoded = round_trip(codec, winter)
    assert decoded == winter
    assert decoded.tzinfo == timezone(timedelta(hours=1))  # type: ignore[attr-defined]


def test_text_is_utf8_and_compact(codec: Codec) -> None:
    text = codec.encode(("a b", {"k": [1, 2]}, "\ud83d"), PATH)
    assert text == '{"$tuple":["a b",{"$map":[["k",[1,2]]]},"\\ud83d"]}'
    text.encode("utf-8")


def test_shared_list_inside_tuple_is_copied(codec: Codec) -> None:
    shared = [1]
    decoded = round_trip(codec, (shared, shared))
    assert decoded == ([1], [1])
    assert decoded[0] is not decoded[1]  # type: ignore[index]


def test_decode_node_refs(codec: Codec) -> None:
    assert codec.decode(b'{"$list":"a1"}') == NodeRef("list", "a1")
    assert codec.decode('{"$dict":"Z9z"}') == NodeRef("dict", "Z9z")


def test_encode_ref_matches_lua_pattern(codec: Codec) -> None:
    for ref in (NodeRef("list", "abc123"), NodeRef("dict", "X")):
        text = codec.encode_ref(ref)
        match = LUA_REF_PATTERN.fullmatch(text)
        assert match is not None
        assert match.groups() == (ref.kind, ref.node_id)
        assert codec.decode(text) == ref
    assert codec.encode_ref(NodeRef("list", "ab1")) == '{"$list":"ab1"}'


# Property-based round trips.


def outside_gap_or_fold(value: datetime) -> bool:
    """Return whether the UTC offset of ``value`` does not depend on its fold.

    A zoneinfo datetime in a DST gap or fold is stored with its offset, and Python
    compares the decoded fixed-offset datetime as unequal to it (PEP 495).
    """
    return value.replace(fold=1 - value.fold).utcoffset() == value.utcoffset()


# Offsets of whole minutes, because CPython compares aware times ignoring the
# fraction of a second of their offsets, but hashes them with it.
WHOLE_MINUTE_OFFSETS = st.integers(-1439, 1439).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
HASHABLE_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**4000), max_value=10**4000)
    | st.floats(allow_nan=False)
    | st.text(alphabet=st.characters(exclude_categories=()))
    | st.sampled_from(["😀", "e\u0301", "\u2028", "\ud800", "\udfff"])
    | st.binary()
    | st.datetimes(timezones=st.none() | st.timezones()).filter(outside_gap_or_fold)
    | st.dates()
    | st.times(timezones=st.none() | WHOLE_MINUTE_OFFSETS)
    | st.timedeltas()
    | st.decimals(allow_nan=False)
    | st.uuids()
    | st.complex_numbers(allow_nan=False)
)
SCALARS = HASHABLE_SCALARS | st.floats() | st.decimals() | st.complex_numbers()
HASHABLE_VALUES = st.recursive(
    HASHABLE_SCALARS,
    lambda children: (
        st.tuples(children, children)
        | st.lists(children, max_size=4).map(tuple)
        | st.frozensets(children, max_size=4)
    ),
    max_leaves=12,
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4).map(tuple)
        | st.sets(HASHABLE_VALUES, max_size=4)
        | st.frozensets(HASHABLE_VALUES, max_size=4)
        | st.lists(children, max_size=3).map(lambda items: (items,))
        | st.dictionaries(HASHABLE_VALUES, children, max_size=3).map(lambda d: (d,))
    ),
    max_leaves=16,
)


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_round_trip_property(value: object) -> None:
    codec = Codec(registry=CodecRegistry(inherit=False))
    text = codec.encode(value, PATH)
    text.encode("utf-8")
    assert_same(value, codec.decode(text.encode("utf-8"), PATH))


@settings(deadline=None, max_examples=200)
@given(VALUES)
def test_text_is_compact_json(value: object) -> None:
    codec = Codec(registry=CodecRegistry(inherit=False))
    text = codec.encode(value, PATH)
    compact = json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
    if not re.search("[\ud800-\udfff]", compact):
        assert compact == text


# Dict keys.


def test_equal_keys_same_text(codec: Codec) -> None:
    equal_pairs = [
        (frozenset({1, 2, 3}), frozenset({3, 2, 1})),
        (frozenset({"x", (1, 2)}), frozenset({(1, 2), "x"})),
        (0.0, -0.0),
        (complex(0.0, -0.0), complex(-0.0, 0.0)),
        ((1, -0.0), (1, 0.0)),
        (Decimal("1.0"), Decimal("1.00")),
        (Decimal("100"), Decimal("1E+2")),
        (Decimal("0E-5"), Decimal("-0")),
        (
            datetime(2024, 1, 1, 12, tzinfo=PLUS_ONE),
            datetime(2024, 1, 1, 11, tzinfo=timezone.utc),
        ),
        (
            datetime(2024, 7, 1, 12, tzinfo=PARIS),
            datetime(2024, 7, 1, 10, tzinfo=timezone.utc),
        ),
        (time(12, 0, tzinfo=PLUS_ONE), time(11, 0, tzinfo=timezone.utc)),
        (
            time(0, 30, tzinfo=PLUS_ONE),
            time(1, 30, tzinfo=timezone(timedelta(hours=2))),
        ),
        (
            time(23, 30, tzinfo=timezone(timedelta(hours=-1))),
            time(22, 30, tzinfo=timezone(timedelta(hours=-2))),
        ),
    ]
    for first, second in equal_pairs:
        assert first == second
        assert hash(first) == hash(second)
        assert codec.encode_key(first, PATH) == codec.encode_key(second, PATH), first


def test_value_keeps_what_key_canonicalizes(codec: Codec) -> None:
    assert codec.encode(-0.0, PATH) == "-0.0"
    assert codec.encode_key(-0.0, PATH) == "0.0"
    assert codec.encode(Decimal("1.00"), PATH) == '{"$decimal":"1.00"}'
    assert codec.encode_key(Decimal("1.00"), PATH) == '{"$decimal":"1"}'
    aware = datetime(2024, 1, 1, 12, tzinfo=PLUS_ONE)
    assert codec.encode_key(aware, PATH) == '{"$datetime":"2024-01-01T11:00:00+00:00"}'


@settings(deadline=None, max_examples=300)
@given(
    st.times(),
    st.integers(-86399, 86399).map(lambda seconds: timedelta(seconds=seconds)),
    st.integers(-86399, 86399).map(lambda seconds: timedelta(seconds=seconds)),
)
def test_equal_aware_times_same_key(
    clock: time, first_offset: timedelta, second_offset: timedelta
) -> None:
    codec = Codec(registry=CodecRegistry(inherit=False))
    first_time = clock.replace(tzinfo=timezone(first_offset))
    # The same instant in the second offset, if its clock time is on the same day:
    # aware times are only equal then, because Python does not compare them modulo
    # a day.
    shifted = datetime.combine(date(2000, 1, 1), clock) + (second_offset - first_offset)
    if shifted.date() != date(2000, 1, 1):
        return
    second_time = shifted.time().replace(tzinfo=timezone(second_offset))
    assert first_time == second_time
    first_text = codec.encode_key(first_time, PATH)
    assert first_text == codec.encode_key(second_time, PATH)
    assert codec.decode(first_text) == first_time


@settings(deadline=None, max_examples=300)
@given(HASHABLE_VALUES)
def test_key_round_trip_equal(key: object) -> None:
    codec = Codec(registry=CodecRegistry(inherit=False))
    decoded = codec.decode(codec.encode_key(key, PATH))
    assert type(decoded) is type(key)
    if key == key:
        assert decoded == key


@settings(deadline=None, max_examples=200)
@given(st.frozensets(HASHABLE_VALUES, max_size=5), st.randoms())
def test_frozenset_key_order_independent(key: frozenset[object], random: Any) -> None:
    codec = Codec(registry=CodecRegistry(inherit=False))
    elements = list(key)
    random.shuffle(elements)
    assert codec.encode_key(frozenset(elements), PATH) == codec.encode_key(key, PATH)


def test_unhashable_key_type_error(codec: Codec) -> None:
    with pytest.raises(
        TypeError,
        match=r"cannot use \[1, 2\] as a key of mem\.d: unhashable type: 'list'",
    ):
        codec.encode_key([1, 2], "mem.d")
    with pytest.raises(TypeError, match=r"unhashable type: 'dict'"):
        codec.encode_key({}, "mem.d")
    with pytest.raises(TypeError, match=r"unhashable type: 'list'"):
        codec.encode_key((1, [2]), "mem.d")


def test_unsupported_key_names_key_path(codec: Codec) -> None:
    with pytest.raises(
        UnsupportedTypeError,
        match=r"cannot store mem\.d<key>\[1\]: values of type object",
    ):
        codec.encode_key((1, object()), "mem.d")


KEY_ALIASES = [
    (1, ["1", "true", "1.0", '{"$complex":[1.0,0.0]}']),
    (True, ["true", "1", "1.0", '{"$complex":[1.0,0.0]}']),
    (False, ["false", "0", "0.0", '{"$complex":[0.0,0.0]}']),
    (0, ["0", "false", "0.0", '{"$complex":[0.0,0.0]}']),
    (-0.0, ["0.0", "false", "0", '{"$complex":[0.0,0.0]}']),
    (2, ["2", "2.0", '{"$complex":[2.0,0.0]}']),
    (2.0, ["2.0", "2", '{"$complex":[2.0,0.0]}']),
    (2.5, ["2.5", '{"$complex":[2.5,0.0]}']),
    (1 + 0j, ['{"$complex":[1.0,0.0]}', "true", "1", "1.0"]),
    (2.5 - 0j, ['{"$complex":[2.5,0.0]}', "2.5"]),
    (1 + 1j, ['{"$complex":[1.0,1.0]}']),
    (2**53 + 1, ["9007199254740993"]),
    (10**400, [str(10**400)]),
    (INF, ['{"$float":"inf"}', '{"$complex":[{"$float":"inf"},0.0]}']),
    (NAN, ['{"$float":"nan"}']),
    ("a", ['"a"']),
    ("é", ['"é"']),
    ("\ud800", ['"\\ud800"']),
    (Decimal(1), ['{"$decimal":"1"}']),
    ((1,), ['{"$tuple":[1]}']),
]


@pytest.mark.parametrize(("key", "aliases"), KEY_ALIASES, ids=repr)
def test_key_aliases_table(codec: Codec, key: object, aliases: list[str]) -> None:
    assert codec.key_aliases(key, PATH) == aliases


NUMBERS = (
    st.booleans()
    | st.integers(min_value=-3, max_value=3)
    | st.integers()
    | st.floats()
    | st.floats(min_value=-3, max_value=3).map(round).map(float)
    | st.complex_numbers()
    | st.builds(complex, st.integers(-3, 3), st.just(0))
)


@settings(deadline=None, max_examples=500)
@given(NUMBERS, NUMBERS)
def test_key_aliases_match_dict_equality(key: object, other: object) -> None:
    codec = Codec(registry=CodecRegistry(inherit=False))
    aliases = codec.key_aliases(key, PATH)
    if key != key or other != other:
        # Every NaN key, which only equals itself, is stored as the same field.
        return
    same_dict_key = len({key: None, other: None}) == 1
    assert (codec.encode_key(other, PATH) in aliases) == same_dict_key
    assert aliases[0] == codec.encode_key(key, PATH)
    assert len(set(aliases)) == len(aliases)


def test_key_canonical_edge_cases(codec: Codec) -> None:
    assert codec.encode_key(Decimal("-NaN123"), PATH) == '{"$decimal":"NaN"}'
    assert codec.encode_key(Decimal("-Infinity"), PATH) == '{"$decimal":"-Infinity"}'
    # Near datetime.min the UTC time does not exist, so the offset is kept.
    earliest = datetime(1, 1, 1, 0, 30, tzinfo=PLUS_ONE)
    assert (
        codec.encode_key(earliest, PATH) == '{"$datetime":"0001-01-01T00:30:00+01:00"}'
    )
    # An offset with a fraction of a second has no canonical form.
    odd_offset = timezone(timedelta(hours=23, minutes=59, seconds=59, microseconds=5))
    odd_time = time(0, 0, tzinfo=odd_offset)
    assert codec.encode_key(odd_time, PATH) == ('{"$time":"00:00:00+23:59:59.000005"}')


def test_signaling_nan_key_type_error(codec: Codec) -> None:
    with pytest.raises(
        TypeError,
        match=r"cannot use Decimal\('sNaN'\) as a key of mem\.d: Cannot hash a signaling NaN",
    ):
        codec.encode_key(Decimal("sNaN"), "mem.d")


def test_registered_key_has_no_aliases() -> None:
    registry = CodecRegistry(inherit=False)
    register_codec(
        Color, "color", lambda color: color.name, Color.__getitem__, registry=registry
    )
    codec = Codec(registry=registry)
    assert codec.key_aliases(Color.RED, PATH) == ['{"$ext:color":"RED"}']
    assert codec.decode(codec.encode_key(Color.RED, PATH)) is Color.RED


# Errors raised while encoding.


class Color(enum.IntEnum):
    RED = 1


class Pair(NamedTuple):
    left: int
    right: int


class Name(str):
    pass


@pytest.mark.parametrize(
    ("value", "type_name", "hint"),
    [
        (
            object(),
            "object",
            r"register a codec with redis_memory\.codec\.register_codec\(\)",
        ),
        (
            Color.RED,
            "test_codec.Color",
            r"it is a subclass of int, and storing it as a plain int would lose the subclass\. Convert it to a plain int first, or register a codec for Color with register_codec\(\)\.",
        ),
        (Pair(1, 2), "test_codec.Pair", r"it is a subclass of tuple"),
        (Name("x"), "test_codec.Name", r"it is a subclass of str"),
        (
            collections.OrderedDict(),
            "collections.OrderedDict",
            r"it is a subclass of dict",
        ),
        (bytearray(b"x"), "bytearray", r"register a codec .*, or pass pickle_key="),
    ],
    ids=lambda item: type(item).__name__,
)
def test_unsupported_type_message(
    codec: Codec, value: object, type_name: str, hint: str
) -> None:
    pattern = rf"cannot store mem\.x: values of type {re.escape(type_name)} are not supported; {hint}"
    with pytest.raises(UnsupportedTypeError, match=pattern) as caught:
        codec.encode(value, PATH)
    assert caught.value.path == PATH
    assert caught.value.value_type is type(value)
    assert isinstance(caught.value, TypeError)


def test_unsupported_nested_paths(codec: Codec) -> None:
    cases = [
        ((1, object()), r"mem\.x\[1\]"),
        ((1, [2, (3, Color.RED)]), r"mem\.x\[1\]\[1\]\[1\]"),
        (({"k": Color.RED},), r"mem\.x\[0\]\['k'\]"),
        (({Pair(1, 2): 1},), r"mem\.x\[0\]<key>"),
        (frozenset({Color.RED}), r"mem\.x<element>"),
        ({(1, Color.RED)}, r"mem\.x<element>\[1\]"),
    ]
    for value, path in cases:
        with pytest.raises(
            UnsupportedTypeError, match=rf"cannot store {path}: values of type"
        ):
            codec.encode(value, PATH)


def test_recursive_tuple_value_error(codec: Codec) -> None:
    inner: list[object] = []
    outer = (inner,)
    inner.append(outer)
    with pytest.raises(
        ValueError, match=r"cannot store mem\.x\[0\]\[0\]: it contains itself"
    ):
        codec.encode(outer, PATH)
    mapping: dict[str, object] = {}
    mapping["self"] = mapping
    with pytest.raises(
        ValueError, match=r"cannot store mem\.x\[0\]\['self'\]: it contains itself"
    ):
        codec.encode((mapping,), PATH)


def test_deeply_nested_value_error(codec: Codec) -> None:
    value: object = ()
    for _ in range(sys.getrecursionlimit() + 10):
        value = (value,)
    with pytest.raises(
        ValueError, match=r"cannot store mem\.x: it is nested too deeply"
    ):
        codec.encode(value, PATH)


def test_list_or_dict_at_top_type_error(codec: Codec) -> None:
    with pytest.raises(
        TypeError,
        match=r"cannot encode mem\.x as one value: a list is stored as a node",
    ):
        codec.encode([1], PATH)
    with pytest.raises(TypeError, match=r"a dict is stored as a node of its own"):
        codec.encode({}, PATH)


def test_time_without_utc_offset_value_error(codec: Codec) -> None:
    with pytest.raises(
        ValueError,
        match=r"cannot store mem\.x: its tzinfo .*Europe/Paris.* gives no UTC offset for it, so the time zone would be lost\. Use a datetime",
    ):
        codec.encode(time(12, tzinfo=PARIS), PATH)


def test_encode_ref_invalid(codec: Codec) -> None:
    with pytest.raises(
        ValueError, match=r"invalid node kind 'set': expected \"list\" or \"dict\""
    ):
        codec.encode_ref(NodeRef("set", "abc"))
    for node_id in ("", "a-b", "a b", 'a"', "é"):
        with pytest.raises(
            ValueError, match=r"invalid node id .*: expected ASCII letters and digits"
        ):
            codec.encode_ref(NodeRef("list", node_id))


# Errors raised while decoding.

CORRUPT_TEXTS = [
    (b"", r"not valid JSON: no value at index 0"),
    (b" 1", r"not valid JSON: no value at index 0"),
    (b"1 ", r"unexpected text after the JSON value, at index 1"),
    (b"[1", r"not valid JSON"),
    (b'"abc', r"not valid JSON: Unterminated string"),
    (b"\xff", r"the bytes are not UTF-8 \(invalid start byte at index 0\)"),
    (b"NaN", r"NaN is not valid JSON"),
    (b"[1]", r"a JSON array is only valid inside a tagged value"),
    (b"{}", r"a JSON object must have exactly one key, its tag, not 0"),
    (b'{"$tuple":[],"$set":[]}', r"exactly one key, its tag, not 2"),
    (b'{"a":1}', r'must be a tag starting with "\$", not \'a\''),
    (b'{"$nope":1}', r"unknown tag '\$nope'"),
    (b'{"$map":[]}', r"\$map is only valid inside a tuple or set"),
    (
        b'{"$tuple":[{"$list":"a"}]}',
        r"\$list references are only valid as a whole entry",
    ),
    (b'{"$list":"a-b"}', r"invalid node id 'a-b' in a \$list reference"),
    (b'{"$dict":7}', r"invalid node id 7 in a \$dict reference"),
    (b'{"$tuple":{}}', r"the payload of \$tuple must be an array, not an object"),
    (
        b'{"$set":[[1]]}',
        r"an element of a \$set is not hashable: unhashable type: 'list'",
    ),
    (b'{"$tuple":[{"$map":[[[1],2]]}]}', r"a key of a \$map is not hashable"),
    (b'{"$tuple":[{"$map":[1]}]}', r"array of \[key, value\] pairs"),
    (b'{"$float":"1.5"}', r'must be "nan", "inf" or "-inf"'),
    (b'{"$float":null}', r'must be "nan", "inf" or "-inf", not None'),
    (b'{"$bytes":"***"}', r"Only base64 data is allowed"),
    (b'{"$bytes":1}', r"the payload of \$bytes must be a string, not a number"),
    (b'{"$bytes":null}', r"the payload of \$bytes must be a string, not null"),
    (b'{"$uuid":false}', r"the payload of \$uuid must be a string, not a boolean"),
    (b'{"$date":{}}', r"the payload of \$date must be a string, not an object"),
    (
        b'{"$datetime":"2024-01-01T00:00+01:00+01:00"}',
        r"unexpected second UTC offset in '2024-01-01T00:00:00\+01:00'",
    ),
    (b'{"$time":"01:00+24:00"}', r"offset must be a timedelta strictly between"),
    (b'{"$datetime":"yesterday"}', r"Invalid isoformat string"),
    (b'{"$date":"2024-13-01"}', r"month must be in 1\.\.12"),
    (b'{"$time":[1]}', r"the payload of \$time must be a string, not an array"),
    (b'{"$timedelta":[1,2]}', r"\[days, seconds, microseconds\] \(integers\)"),
    (b'{"$timedelta":[1,2,true]}', r"\[days, seconds, microseconds\]"),
    (b'{"$timedelta":[1e9,0,0]}', r"\[days, seconds, microseconds\]"),
    (
        b'{"$timedelta":[1000000000,0,0]}',
        r"days=1000000000; must have magnitude <= 999999999",
    ),
    (b'{"$decimal":"one"}', r"invalid \$decimal payload 'one'"),
    (b'{"$uuid":"xyz"}', r"badly formed hexadecimal UUID string"),
    (b'{"$complex":[1,2]}', r"a part of a \$complex must be a number with a"),
    (b'{"$complex":[1.0]}', r"the payload of \$complex must be \[real, imaginary\]"),
    (
        b'{"$ext:nobody":1}',
        r"no codec is registered for tag 'nobody'\. Register one with register_codec",
    ),
    (b'{"$tuple":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}", r"nested too deeply"),
    ("[" * 100_000, r"nested too deeply"),
]


@pytest.mark.parametrize(
    ("text", "reason"), CORRUPT_TEXTS, ids=lambda item: repr(item)[:30]
)
def test_decode_corrupt_reason(codec: Codec, text: bytes | str, reason: str) -> None:
    with pytest.raises(CorruptValueError, match=reason) as caught:
        codec.decode(text, "mem.x[3]")
    assert caught.value.where == "mem.x[3]"
    assert caught.value.raw == text
    assert str(caught.value).startswith("corrupt value at mem.x[3]: ")


def test_decode_wrong_argument_type(codec: Codec) -> None:
    with pytest.raises(TypeError, match=r"decode\(\) expects bytes or str, not int"):
        codec.decode(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"not bytearray"):
        codec.decode(bytearray(b"1"))  # type: ignore[arg-type]


GARBAGE_TAGS = [
    "$float",
    "$bytes",
    "$tuple",
    "$set",
    "$frozenset",
    "$datetime",
    "$date",
    "$time",
    "$timedelta",
    "$decimal",
    "$uuid",
    "$complex",
    "$ndarray",
    "$npscalar",
    "$pickle",
    "$map",
    "$list",
    "$dict",
    "$ext:x",
    "$",
    "x",
]
JSON_GARBAGE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["nan", "inf", "2024-01-01", "AAE=", "<f8", "O"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(GARBAGE_TAGS) | st.text(max_size=3), children, max_size=2
        )
        | st.dictionaries(
            st.sampled_from(["dtype", "shape", "data", "sig"]), children, max_size=3
        )
    ),
    max_leaves=10,
)


@settings(deadline=None, max_examples=1000)
@given(st.binary(max_size=64))
def test_decode_random_bytes_only_corrupt(text: bytes) -> None:
    codec = Codec(registry=CodecRegistry(inherit=False))
    try:
        codec.decode(text)
    except (CorruptValueError, PickleRefusedError):
        pass


@settings(deadline=None, max_examples=1000)
@given(JSON_GARBAGE)
def test_decode_random_json_only_corrupt(garbage: object) -> None:
    codec = Codec(registry=CodecRegistry(inherit=False), pickle_key=b"k")
    text = json.dumps(garbage, separators=(",", ":"))
    try:
        codec.decode(text.encode("utf-8", "surrogatepass"))
        codec.decode(text)
    except (CorruptValueError, PickleRefusedError):
        pass


@settings(deadline=None, max_examples=300)
@given(VALUES, st.data())
def test_decode_mutated_text_only_corrupt(value: object, data: st.DataObject) -> None:
    codec = Codec(registry=CodecRegistry(inherit=False))
    text = codec.encode(value, PATH).encode("utf-8")
    position = data.draw(st.integers(0, len(text)))
    insert = data.draw(st.binary(max_size=3))
    cut = data.draw(st.integers(0, 3))
    mutated = text[:position] + insert + text[position + cut :]
    try:
        codec.decode(mutated)
    except CorruptValueError:
        pass


# Pickle.


@dataclass
class Point:
    x: int
    y: int


class WritesFile:
    """Unpickling it writes a file: a stand-in for a malicious payload."""

    def __init__(self, target: pathlib.Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.write_text, (self.target, "unpickled"))


def pickle_text(key: bytes, value: object) -> str:
    return Codec(pickle_key=key).encode(value, PATH)


def test_pickle_off_by_default(codec: Codec) -> None:
    assert codec.pickle_enabled is False
    with pytest.raises(
        UnsupportedTypeError, match=r"or pass pickle_key=\.\.\. to Memory"
    ):
        codec.encode(Point(1, 2), PATH)


def test_pickle_round_trip_with_key() -> None:
    for key in (b"secret", "secret"):
        codec = Codec(pickle_key=key, registry=CodecRegistry(inherit=False))
        assert codec.pickle_enabled is True
        decoded = round_trip(codec, Point(1, 2))
        assert decoded == Point(1, 2)
        assert round_trip(codec, (Point(3, 4), "x")) == (Point(3, 4), "x")


def test_pickle_text_format() -> None:
    text = pickle_text(b"secret", Point(1, 2))
    payload = json.loads(text)["$pickle"]
    assert list(payload) == ["sig", "data"]
    assert re.fullmatch(r"[0-9a-f]{64}", payload["sig"])
    assert (
        text == f'{{"$pickle":{{"sig":"{payload["sig"]}","data":"{payload["data"]}"}}}}'
    )


def test_pickle_refused_without_key(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "side-effect"
    text = pickle_text(b"secret", WritesFile(target))
    with pytest.raises(
        PickleRefusedError,
        match=r"mem\.x is a pickled value, but pickle is off, so it was not unpickled\. Pass pickle_key=\.\.\. to Memory to load it\.",
    ):
        Codec().decode(text, PATH)
    with pytest.raises(PickleRefusedError, match=r"pickle is off"):
        Codec().decode(f'{{"$tuple":[{text}]}}', PATH)
    assert not target.exists()


def test_pickle_refused_other_key(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "side-effect"
    text = pickle_text(b"attacker", WritesFile(target))
    with pytest.raises(
        PickleRefusedError,
        match=r"mem\.x is a pickle with an invalid signature, so it was not unpickled",
    ):
        Codec(pickle_key=b"secret").decode(text, PATH)
    assert not target.exists()


def test_pickle_refused_tampered(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "side-effect"
    signed = json.loads(pickle_text(b"secret", Point(1, 2)))["$pickle"]
    evil = pickle.dumps(WritesFile(target), protocol=5)
    forged_signatures = [
        signed["sig"],
        "",
        "0" * 64,
        signed["sig"].upper(),
        "é" * 64,
        "\ud800",
    ]
    codec = Codec(pickle_key=b"secret")
    for signature in forged_signatures:
        payload = {"sig": signature, "data": base64_text(evil)}
        text = json.dumps({"$pickle": payload})
        with pytest.raises(PickleRefusedError, match=r"invalid signature"):
            codec.decode(text, PATH)
    assert not target.exists()


def test_pickle_signed_payload_runs(tmp_path: pathlib.Path) -> None:
    # The control for the tests above: the same payload, correctly signed, does
    # write the file, so their check of the file would catch a wrong unpickle.
    target = tmp_path / "side-effect"
    text = pickle_text(b"secret", WritesFile(target))
    Codec(pickle_key=b"secret").decode(text, PATH)
    assert target.read_text() == "unpickled"


def test_pickle_malformed_payload_corrupt() -> None:
    codec = Codec(pickle_key=b"secret")
    cases = [
        (
            '{"$pickle":[]}',
            r'a \$pickle payload must be \{"sig": \.\.\., "data": \.\.\.\}',
        ),
        ('{"$pickle":{"sig":"00"}}', r"a \$pickle payload must be"),
        (
            '{"$pickle":{"sig":1,"data":""}}',
            r"the sig and data of a \$pickle payload must be strings",
        ),
        (
            '{"$pickle":{"sig":"00","data":"***"}}',
            r"the data of a \$pickle payload is not base64",
        ),
    ]
    for text, reason in cases:
        with pytest.raises(CorruptValueError, match=reason):
            codec.decode(text, PATH)


def test_pickle_signed_but_unloadable_corrupt() -> None:
    key = b"secret"
    data = b"\x80\x05\x8c\x0bno_such_mod\x94\x8c\x01X\x94\x93\x94."  # no_such_mod.X
    signature = hmac.new(key, data, hashlib.sha256).hexdigest()
    text = json.dumps({"$pickle": {"sig": signature, "data": base64_text(data)}})
    with pytest.raises(
        CorruptValueError,
        match=r"the pickle is correctly signed but loading it failed with ModuleNotFoundError.*\. Import or define the classes it contains",
    ):
        Codec(pickle_key=key).decode(text, PATH)


def test_pickle_unpicklable_value() -> None:
    codec = Codec(pickle_key=b"secret", registry=CodecRegistry(inherit=False))
    with pytest.raises(
        UnsupportedTypeError,
        match=r"values of type function are not supported; pickling it failed with",
    ):
        codec.encode(lambda: None, PATH)


def test_pickle_key_invalid() -> None:
    with pytest.raises(ValueError, match=r"pickle_key must not be empty"):
        Codec(pickle_key=b"")
    with pytest.raises(TypeError, match=r"pickle_key must be bytes or str, not int"):
        Codec(pickle_key=5)  # type: ignore[arg-type]


def test_pickle_key_not_in_repr() -> None:
    assert "secret" not in repr(Codec(pickle_key=b"secret"))
    assert repr(PickleSigner(b"secret")) == "PickleSigner(key=<hidden>)"


def base64_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# Codecs of user types.


def point_codec(registry: CodecRegistry, tag: str = "point") -> None:
    register_codec(
        Point,
        tag,
        lambda point: [point.x, point.y],
        lambda payload: Point(*payload),
        registry=registry,
    )


def test_registered_codec_round_trip() -> None:
    registry = CodecRegistry(inherit=False)
    point_codec(registry)
    codec = Codec(registry=registry)
    assert codec.encode(Point(1, 2), PATH) == '{"$ext:point":[1,2]}'
    assert codec.decode(b'{"$ext:point":[1,2]}') == Point(1, 2)
    assert round_trip(codec, (Point(1, 2), [Point(3, 4)])) == (
        Point(1, 2),
        [Point(3, 4)],
    )


def test_registered_payload_keeps_unicode() -> None:
    registry = CodecRegistry(inherit=False)
    register_codec(
        Point,
        "p",
        lambda point: {"name": "é\ud800"},
        lambda payload: payload,
        registry=registry,
    )
    codec = Codec(registry=registry)
    text = codec.encode(Point(0, 0), PATH)
    assert text == '{"$ext:p":{"name":"\\u00e9\\ud800"}}'
    assert codec.decode(text) == {"name": "é\ud800"}


def test_registered_codec_duplicates_rejected() -> None:
    registry = CodecRegistry(inherit=False)
    point_codec(registry)

    @dataclass
    class Other:
        pass

    with pytest.raises(
        ValueError,
        match=r"codec tag 'point' is already registered for test_codec\.Point\. Choose another tag for test_codec\..*Other\.",
    ):
        register_codec(Other, "point", repr, repr, registry=registry)
    with pytest.raises(
        ValueError,
        match=r"test_codec\.Point already has a codec under tag 'point', and a type can have one tag only",
    ):
        point_codec(registry, tag="point2")


def test_registered_codec_same_class_replaced() -> None:
    # Re-running a notebook cell defines a new class object with the same name.
    registry = CodecRegistry(inherit=False)
    point_codec(registry)
    point_codec(registry)
    namespace: dict[str, Any] = {"__name__": __name__}
    exec(
        "from dataclasses import dataclass\n@dataclass\nclass Point:\n    x: int\n    y: int",
        namespace,
    )
    new_point = namespace["Point"]
    register_codec(
        new_point,
        "point",
        lambda p: [p.x, p.y],
        lambda p: new_point(*p),
        registry=registry,
    )
    codec = Codec(registry=registry)
    assert type(codec.decode('{"$ext:point":[1,2]}')) is new_point
    with pytest.raises(UnsupportedTypeError):
        codec.encode(Point(1, 2), PATH)


@pytest.mark.parametrize(
    "builtin",
    [int, bool, str, tuple, list, dict, datetime, Decimal, uuid.UUID, type(None)],
)
def test_register_builtin_type_rejected(builtin: type) -> None:
    with pytest.raises(
        ValueError,
        match=r"is stored by redis-memory itself, so a codec cannot be registered for it",
    ):
        register_codec(builtin, "b", repr, repr, registry=CodecRegistry(inherit=False))


def test_register_invalid_arguments() -> None:
    registry = CodecRegistry(inherit=False)
    for tag in ("", "a b", 'a"', "é", 5):
        with pytest.raises(
            ValueError,
            match=r"invalid codec tag .*: use letters, digits and _ \. : / - only",
        ):
            register_codec(Point, tag, repr, repr, registry=registry)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"type_ must be a class, not Point"):
        register_codec(Point(1, 2), "p", repr, repr, registry=registry)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"encode and decode must be callable, got str and builtin_function_or_method",
    ):
        register_codec(Point, "p", "x", repr, registry=registry)  # type: ignore[arg-type]


def test_registered_subclass_not_matched() -> None:
    registry = CodecRegistry(inherit=False)
    point_codec(registry)

    class Point3(Point):
        pass

    with pytest.raises(
        UnsupportedTypeError,
        match=r"values of type test_codec\..*Point3 are not supported",
    ):
        Codec(registry=registry).encode(Point3(1, 2), PATH)


def test_registered_encode_not_json() -> None:
    registry = CodecRegistry(inherit=False)
    register_codec(Point, "p", lambda point: {"x": object()}, repr, registry=registry)
    with pytest.raises(
        TypeError,
        match=r"cannot store mem\.x: the encode function registered for tag 'p' returned .*, which is not JSON",
    ):
        Codec(registry=registry).encode(Point(1, 2), PATH)
    registry = CodecRegistry(inherit=False)
    register_codec(Point, "p", lambda point: [NAN], repr, registry=registry)
    with pytest.raises(
        TypeError, match=r"which is not JSON \(Out of range float values"
    ):
        Codec(registry=registry).encode(Point(1, 2), PATH)


def test_registered_decode_failure_corrupt() -> None:
    registry = CodecRegistry(inherit=False)
    point_codec(registry)
    with pytest.raises(
        CorruptValueError,
        match=r"the decode function registered for tag 'point' failed with TypeError",
    ):
        Codec(registry=registry).decode('{"$ext:point":[1,2,3]}', PATH)


@pytest.fixture
def restore_default_registry() -> Any:
    registry = default_registry()
    saved = (dict(registry._by_type), dict(registry._by_tag))
    yield registry
    registry._by_type, registry._by_tag = saved


def test_default_registry_seen_live(restore_default_registry: CodecRegistry) -> None:
    default_codec = Codec()
    inheriting = Codec(registry=CodecRegistry())
    isolated = Codec(registry=CodecRegistry(inherit=False))
    register_codec(Point, "test-point", lambda p: [p.x, p.y], lambda p: Point(*p))
    assert default_codec.decode(default_codec.encode(Point(1, 2), PATH)) == Point(1, 2)
    assert inheriting.decode(inheriting.encode(Point(1, 2), PATH)) == Point(1, 2)
    with pytest.raises(UnsupportedTypeError):
        isolated.encode(Point(1, 2), PATH)
    with pytest.raises(
        CorruptValueError, match=r"no codec is registered for tag 'test-point'"
    ):
        isolated.decode('{"$ext:test-point":[1,2]}', PATH)


# numpy.


def test_import_does_not_import_numpy() -> None:
    code = "import sys, redis_memory.codec; print('numpy' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


NUMPY_ARRAYS = [
    ("<f8", (2, 3)),
    ("<f4", (5,)),
    ("|i1", (0,)),
    ("<u8", ()),
    ("|b1", (2, 2)),
    ("<c16", (3,)),
    (">i4", (2, 0, 3)),
    ("<U5", (2,)),
    ("|S3", (2,)),
    ("<M8[s]", (2,)),
    ("<m8[ns]", (1,)),
    ("<f2", (4, 1)),
]


@pytest.mark.parametrize(("dtype", "shape"), NUMPY_ARRAYS, ids=str)
def test_numpy_array_round_trip(
    codec: Codec, dtype: str, shape: tuple[int, ...]
) -> None:
    np = pytest.importorskip("numpy")
    count = math.prod(shape)
    raw = np.arange(count * np.dtype(dtype).itemsize, dtype=np.uint8).tobytes()
    array = np.frombuffer(raw, dtype=dtype).reshape(shape)
    decoded: Any = round_trip(codec, array)
    assert type(decoded) is np.ndarray
    assert decoded.dtype == array.dtype
    assert decoded.shape == array.shape
    assert decoded.tobytes() == array.tobytes()
    assert decoded.flags.writeable


def test_numpy_array_exact_text(codec: Codec) -> None:
    np = pytest.importorskip("numpy")
    array = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype="<f8")
    text = codec.encode(array, PATH)
    prefix = '{"$ndarray":{"dtype":"<f8","shape":[2,3],"data":"'
    assert text.startswith(prefix)
    assert text == prefix + base64_text(array.tobytes()) + '"}}'


def test_numpy_non_contiguous_and_structured(codec: Codec) -> None:
    np = pytest.importorskip("numpy")
    fortran = np.asfortranarray(np.arange(6, dtype="<i8").reshape(2, 3))
    strided = np.arange(10.0)[::3]
    structured = np.array(
        [(1.5, [1, 2], b"ab"), (2.5, [3, 4], b"cd")],
        dtype=np.dtype([("x", "<f8"), ("y", "<i4", (2,)), ("s", "S3")], align=True),
    )
    for array in (fortran, strided, structured, np.float64(NAN) * np.ones(3)):
        decoded: Any = round_trip(codec, array)
        assert decoded.dtype == array.dtype
        assert decoded.tobytes() == np.ascontiguousarray(array).tobytes()


def test_numpy_scalar_round_trip(codec: Codec) -> None:
    np = pytest.importorskip("numpy")
    scalars = [
        np.float64(1.5),
        np.float32(-0.0),
        np.int8(-3),
        np.uint64(2**64 - 1),
        np.bool_(True),
        np.complex64(1 - 2j),
        np.str_("héllo"),
        np.bytes_(b"ab"),
        np.datetime64("2024-01-02T03:04", "m"),
    ]
    for scalar in scalars:
        decoded: Any = round_trip(codec, scalar)
        assert type(decoded) is type(scalar)
        assert decoded.dtype == scalar.dtype
        assert decoded.tobytes() == scalar.tobytes()
    text = codec.encode(np.float64(1.5), PATH)
    assert text == '{"$npscalar":{"dtype":"<f8","data":"AAAAAAAA+D8="}}'


def test_numpy_inside_tuple(codec: Codec) -> None:
    np = pytest.importorskip("numpy")
    decoded: Any = round_trip(codec, (np.arange(3), np.int16(7)))
    assert decoded[0].tolist() == [0, 1, 2]
    assert decoded[1] == np.int16(7)


def test_numpy_object_arrays_unsupported(codec: Codec) -> None:
    np = pytest.importorskip("numpy")
    array = np.array([1, "a"], dtype=object)
    with pytest.raises(
        UnsupportedTypeError,
        match=r"values of type numpy\.ndarray are not supported; numpy arrays of Python objects have no codec\. Convert the array",
    ):
        codec.encode(array, PATH)
    pickled = Codec(pickle_key=b"k", registry=CodecRegistry(inherit=False))
    assert pickled.decode(pickled.encode(array, PATH)).tolist() == [1, "a"]  # type: ignore[attr-defined]


def test_numpy_subclass_unsupported(codec: Codec) -> None:
    np = pytest.importorskip("numpy")

    class Tagged(np.ndarray):  # type: ignore[misc]
        pass

    with pytest.raises(
        UnsupportedTypeError,
        match=r"values of type test_codec\..*Tagged are not supported",
    ):
        codec.encode(np.zeros(2).view(Tagged), PATH)


def test_numpy_register_rejected() -> None:
    np = pytest.importorskip("numpy")
    for numpy_type in (np.ndarray, np.float64, np.int8):
        with pytest.raises(ValueError, match=r"is stored by redis-memory itself"):
            register_codec(
                numpy_type, "n", repr, repr, registry=CodecRegistry(inherit=False)
            )


NUMPY_CORRUPT = [
    (
        '{"$ndarray":{"dtype":"<f8","shape":[2],"data":"AAAAAAAA8D8="}}',
        r"8 bytes of data do not fit shape \[2\] of dtype float64",
    ),
    (
        '{"$ndarray":{"dtype":"O","shape":[1],"data":"AAAAAAAAAAA="}}',
        r"numpy arrays of Python objects are never decoded from bytes",
    ),
    (
        '{"$ndarray":{"dtype":[["a","O"]],"shape":[1],"data":"AAAAAAAAAAA="}}',
        r"never decoded from bytes",
    ),
    (
        '{"$ndarray":{"dtype":"<zz","shape":[1],"data":""}}',
        r"invalid numpy dtype '<zz'",
    ),
    ('{"$ndarray":{"dtype":5,"shape":[1],"data":""}}', r"invalid numpy dtype 5"),
    (
        '{"$ndarray":{"dtype":"<f8","shape":[-1],"data":""}}',
        r"the shape of a \$ndarray must be a list of sizes >= 0, not \[-1\]",
    ),
    ('{"$ndarray":{"dtype":"<f8","shape":[true],"data":""}}', r"list of sizes >= 0"),
    (
        '{"$ndarray":{"dtype":"<f8","shape":[1]}}',
        r'a \$ndarray payload must be \{"dtype"',
    ),
    (
        '{"$ndarray":{"dtype":"<f8","shape":[1],"data":"%%"}}',
        r"the data of a numpy value is not base64",
    ),
    (
        '{"$npscalar":{"dtype":"<f8","data":7}}',
        r"the data of a numpy value must be a base64 string",
    ),
    (
        '{"$npscalar":[]}',
        r'a \$npscalar payload must be \{"dtype": \.\.\., "data": \.\.\.\}',
    ),
]


@pytest.mark.parametrize(("text", "reason"), NUMPY_CORRUPT, ids=lambda item: item[:40])
def test_numpy_corrupt_payload(codec: Codec, text: str, reason: str) -> None:
    pytest.importorskip("numpy")
    with pytest.raises(CorruptValueError, match=reason):
        codec.decode(text, PATH)


def test_numpy_missing_module_not_found() -> None:
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "from redis_memory.codec import Codec\n"
        "try:\n"
        '    Codec().decode(\'{"$npscalar":{"dtype":"<f8","data":"AAAAAAAA+D8="}}\')\n'
        "except ModuleNotFoundError as exc:\n"
        "    print(exc.name, exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith(
        "numpy this value is a numpy array or scalar, and reading it needs numpy"
    )
    assert "Install it with pip install 'redis-memory[numpy]'." in result.stdout


# Documentation.

DOCS = pathlib.Path(__file__).parent.parent / "docs" / "storage-format.md"


def documented_encodings() -> list[tuple[str, str]]:
    """Return the (Python values, stored texts) cells of the table of every type."""
    section = DOCS.read_text(encoding="utf-8").split("### Every type", 1)[1]
    rows = []
    for line in section.split("\n\n", 2)[1].splitlines()[2:]:
        python_cell, text_cell = (cell.strip() for cell in line.strip("|").split(" | "))
        if "`, with" in python_cell or not python_cell.startswith("`"):
            continue
        rows.append((python_cell, text_cell))
    return rows


def test_docs_table_matches_codec(codec: Codec) -> None:
    np = pytest.importorskip("numpy")
    names = {
        "date": date,
        "datetime": datetime,
        "time": time,
        "timedelta": timedelta,
        "timezone": timezone,
        "ZoneInfo": ZoneInfo,
        "Decimal": Decimal,
        "UUID": uuid.UUID,
        "numpy": np,
    }
    rows = documented_encodings()
    assert len(rows) >= 20
    for python_cell, text_cell in rows:
        values = eval(f"({python_cell.replace('`', '')},)", names)
        texts = text_cell[1:-1].split("`, `")
        assert len(values) == len(texts), python_cell
        for value, text in zip(values, texts, strict=True):
            assert codec.encode(value, PATH) == text, python_cell


def test_docstring_examples() -> None:
    from redis_memory import codec as codec_module
    from redis_memory import codec_registry

    for module in (codec_module, codec_registry):
        result = doctest.testmod(module)
        assert result.attempted > 0
        assert result.failed == 0
