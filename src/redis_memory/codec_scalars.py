"""JSON text of the scalar types that the codec stores by itself.

None, bool, int, float and str are plain JSON. Every other scalar, and the floats
nan, inf and -inf, become a tag object with one key, for example
``{"$bytes":"AAE="}``.

An encoder returns JSON text and takes ``canonical``: when true, it writes the form
used for dict keys, in which values that compare equal (``-0.0`` and ``0.0``,
``Decimal("1.0")`` and ``Decimal("1.00")``, the same instant in two time zones) get
the same text. A decoder takes the payload of its tag, as ``json.loads`` returns it,
and raises ValueError if the payload is invalid.
"""

from __future__ import annotations

import base64
import decimal
import json.encoder
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Final, TypeVar

__all__ = [
    "KEY_ENCODERS",
    "SCALAR_DECODERS",
    "SCALAR_ENCODERS",
    "VALUE_ENCODERS",
    "contains_surrogate",
    "encode_float",
    "encode_int",
    "encode_str",
    "json_kind",
    "parse_big_int",
]

# The C escapers behind json.dumps: encode_basestring keeps non-ASCII characters as
# they are, encode_basestring_ascii writes them as \uXXXX escapes.
_quote: Final = json.encoder.encode_basestring
_quote_ascii: Final = json.encoder.encode_basestring_ascii
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_NON_FINITE: Final = {
    "nan": '{"$float":"nan"}',
    "inf": '{"$float":"inf"}',
    "-inf": '{"$float":"-inf"}',
}
_ONE_DAY: Final = timedelta(days=1)
_MAX_WHOLE_SECOND_OFFSET: Final = _ONE_DAY - timedelta(seconds=1)
# The UTC offset at the end of an isoformat() string: +HH:MM[:SS[.ffffff]].
_UTC_OFFSET: Final = re.compile(
    r"([+-])([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{6}))?)?\Z"
)


def contains_surrogate(text: str) -> bool:
    """Return whether ``text`` contains a lone surrogate, which UTF-8 cannot encode."""
    return _SURROGATE.search(text) is not None


def encode_str(value: str) -> str:
    """Return ``value`` as a JSON string.

    Non-ASCII characters stay as they are, so redis-cli shows them readably, except
    in a string with a lone surrogate: UTF-8 cannot contain one, so that string is
    written with ``\\uXXXX`` escapes throughout.
    """
    if value.isascii() or _SURROGATE.search(value) is None:
        return _quote(value)
    return _quote_ascii(value)


def encode_int(value: int) -> str:
    """Return ``value`` as a JSON number, whatever its size."""
    try:
        return repr(value)
    except ValueError:
        # More digits than sys.get_int_max_str_digits() allows (4300 by default).
        # Converting through Decimal is exact and is not limited.
        return str(decimal.Decimal(value))


def parse_big_int(text: str) -> int:
    """Parse a JSON integer with more digits than ``int(text)`` accepts."""
    return int(decimal.Decimal(text))


def encode_float(value: float) -> str:
    """Return ``value`` as a JSON number, or as a ``$float`` tag if not finite.

    ``repr`` of a finite float always contains a ``.`` or an exponent, so the text
    decodes as a float again (``1.0``, ``1e+16``), and ``-0.0`` keeps its sign.
    """
    text = repr(value)
    if text[-1] in "nf":
        return _NON_FINITE[text]
    return text


def _encode_float_key(value: float) -> str:
    if value == 0.0:
        return "0.0"
    return encode_float(value)


def _encode_bool(value: bool) -> str:
    return "true" if value else "false"


def _encode_none(value: None) -> str:
    return "null"


def _encode_bytes(value: bytes, path: str, canonical: bool) -> str:
    return '{"$bytes":"' + base64.b64encode(value).decode("ascii") + '"}'


def _encode_datetime(value: datetime, path: str, canonical: bool) -> str:
    _check_utc_offset(value, path)
    if canonical and value.tzinfo is not None:
        try:
            value = value.astimezone(timezone.utc)
        except OverflowError:
            # NOTE: within a day of datetime.min or datetime.max the UTC time is out
            # of range, so such a key keeps its own offset, and an equal key with
            # another offset gets different text.
            pass
    return '{"$datetime":"' + value.isoformat() + '"}'


def _encode_date(value: date, path: str, canonical: bool) -> str:
    return '{"$date":"' + value.isoformat() + '"}'


def _encode_time(value: time, path: str, canonical: bool) -> str:
    _check_utc_offset(value, path)
    if canonical and value.tzinfo is not None:
        value = _canonical_time(value)
    return '{"$time":"' + value.isoformat() + '"}'


def _canonical_time(value: time) -> time:
    """Return the canonical time among all times equal to ``value``.

    CPython compares two aware times by their clock time minus their UTC offset,
    a duration that may fall outside 00:00 to 24:00. In range, the canonical form
    is that UTC time. Out of range, it is the clock time that gives that duration
    with the offset +23:59:59 (below 00:00) or -23:59:59 (from 24:00).
    """
    offset = value.utcoffset()
    if offset is None:
        return value
    clock = timedelta(
        hours=value.hour,
        minutes=value.minute,
        seconds=value.second,
        microseconds=value.microsecond,
    )
    since_midnight_utc = clock - offset
    if since_midnight_utc < timedelta(0):
        offset = _MAX_WHOLE_SECOND_OFFSET
    elif since_midnight_utc >= _ONE_DAY:
        offset = -_MAX_WHOLE_SECOND_OFFSET
    else:
        offset = timedelta(0)
    local = since_midnight_utc + offset
    if not timedelta(0) <= local < _ONE_DAY:
        # NOTE: only reachable with an offset that has a fraction of a second. CPython
        # ignores that fraction when it compares times but not when it hashes them,
        # so such keys have no consistent canonical form and are kept as they are.
        return value
    return (datetime.min + local).time().replace(tzinfo=timezone(offset))


def _check_utc_offset(value: datetime | time, path: str) -> None:
    # A time with a zoneinfo.ZoneInfo has no offset (it depends on the date), and
    # storing it without one would silently drop the time zone.
    if value.tzinfo is not None and value.utcoffset() is None:
        raise ValueError(
            f"cannot store {path}: its tzinfo {value.tzinfo!r} gives no UTC offset "
            f"for it, so the time zone would be lost. Use a datetime, or a fixed "
            f"offset such as datetime.timezone.utc."
        )


def _encode_timedelta(value: timedelta, path: str, canonical: bool) -> str:
    return f'{{"$timedelta":[{value.days},{value.seconds},{value.microseconds}]}}'


def _encode_decimal(value: decimal.Decimal, path: str, canonical: bool) -> str:
    if canonical:
        value = _canonical_decimal(value)
    return '{"$decimal":"' + str(value) + '"}'


def _canonical_decimal(value: decimal.Decimal) -> decimal.Decimal:
    """Return ``value`` without trailing zeros: 1.00 -> 1, 100 -> 1E+2, -0 -> 0.

    Built from the digit tuple, so no context precision can round it.
    """
    if value.is_nan():
        # NaNs are never equal to anything, so sign and payload do not matter.
        return decimal.Decimal("NaN")
    if value.is_zero():
        return decimal.Decimal(0)
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        # Infinity, whose exponent is the letter "F".
        return value
    trimmed = list(digits)
    while trimmed[-1] == 0:
        trimmed.pop()
        exponent += 1
    return decimal.Decimal((sign, tuple(trimmed), exponent))


def _encode_uuid(value: uuid.UUID, path: str, canonical: bool) -> str:
    return '{"$uuid":"' + str(value) + '"}'


def _encode_complex(value: complex, path: str, canonical: bool) -> str:
    encode_part = _encode_float_key if canonical else encode_float
    real = encode_part(value.real)
    imag = encode_part(value.imag)
    return '{"$complex":[' + real + "," + imag + "]}"


VALUE_ENCODERS: Final[dict[type, Callable[[Any], str]]] = {
    str: encode_str,
    int: encode_int,
    float: encode_float,
    bool: _encode_bool,
    type(None): _encode_none,
}
"""Encoders of the plain JSON types, which need no path because they cannot fail."""

KEY_ENCODERS: Final[dict[type, Callable[[Any], str]]] = {
    **VALUE_ENCODERS,
    float: _encode_float_key,
}
"""`VALUE_ENCODERS` with the canonical float form, in which -0.0 is written 0.0."""

SCALAR_ENCODERS: Final[dict[type, Callable[[Any, str, bool], str]]] = {
    bytes: _encode_bytes,
    datetime: _encode_datetime,
    date: _encode_date,
    time: _encode_time,
    timedelta: _encode_timedelta,
    decimal.Decimal: _encode_decimal,
    uuid.UUID: _encode_uuid,
    complex: _encode_complex,
}
"""Encoders of the tagged scalars, called with the value, its path and ``canonical``."""


def json_kind(payload: object) -> str:
    """Return the JSON name of a decoded payload's type, for messages."""
    if payload is None:
        return "null"
    if isinstance(payload, bool):
        return "a boolean"
    if isinstance(payload, (int, float)):
        return "a number"
    if isinstance(payload, str):
        return "a string"
    if isinstance(payload, list):
        return "an array"
    return "an object"


def _require_str(payload: object, tag: str) -> str:
    if type(payload) is not str:
        raise ValueError(
            f"the payload of {tag} must be a string, not {json_kind(payload)}"
        )
    return payload


def _decode_float(payload: object) -> float:
    if payload not in ("nan", "inf", "-inf"):
        raise ValueError(
            f'the payload of $float must be "nan", "inf" or "-inf", not {payload!r}'
        )
    return float(_require_str(payload, "$float"))


def _decode_bytes(payload: object) -> bytes:
    return base64.b64decode(_require_str(payload, "$bytes"), validate=True)


def _decode_datetime(payload: object) -> datetime:
    text, tzinfo = _split_utc_offset(_require_str(payload, "$datetime"))
    return _attach_tzinfo(datetime.fromisoformat(text), tzinfo)


def _decode_date(payload: object) -> date:
    return date.fromisoformat(_require_str(payload, "$date"))


def _decode_time(payload: object) -> time:
    text, tzinfo = _split_utc_offset(_require_str(payload, "$time"))
    return _attach_tzinfo(time.fromisoformat(text), tzinfo)


def _split_utc_offset(text: str) -> tuple[str, timezone | None]:
    """Split the UTC offset off an ``isoformat()`` string.

    The offset is parsed here because ``fromisoformat`` of CPython 3.11 reads an
    offset between -1 s and 0, such as ``-00:00:00.000001``, as UTC.
    """
    match = _UTC_OFFSET.search(text)
    if match is None:
        return text, None
    sign, hours, minutes, seconds, microseconds = match.groups()
    offset = timedelta(
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds or 0),
        microseconds=int(microseconds or 0),
    )
    return text[: match.start()], timezone(-offset if sign == "-" else offset)


_Clock = TypeVar("_Clock", datetime, time)


def _attach_tzinfo(value: _Clock, tzinfo: timezone | None) -> _Clock:
    if value.tzinfo is not None:
        raise ValueError(f"unexpected second UTC offset in {value.isoformat()!r}")
    if tzinfo is None:
        return value
    return value.replace(tzinfo=tzinfo)


def _decode_timedelta(payload: object) -> timedelta:
    if (
        type(payload) is not list
        or len(payload) != 3
        or any(type(part) is not int for part in payload)
    ):
        raise ValueError(
            "the payload of $timedelta must be [days, seconds, microseconds] (integers)"
        )
    days, seconds, microseconds = payload
    return timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _decode_decimal(payload: object) -> decimal.Decimal:
    text = _require_str(payload, "$decimal")
    try:
        return decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise ValueError(f"invalid $decimal payload {text!r}") from None


def _decode_uuid(payload: object) -> uuid.UUID:
    return uuid.UUID(_require_str(payload, "$uuid"))


def _decode_complex(payload: object) -> complex:
    if type(payload) is not list or len(payload) != 2:
        raise ValueError("the payload of $complex must be [real, imaginary]")
    real, imag = (_decode_complex_part(part) for part in payload)
    return complex(real, imag)


def _decode_complex_part(part: object) -> float:
    if type(part) is float:
        return part
    if type(part) is dict and len(part) == 1 and "$float" in part:
        return _decode_float(part["$float"])
    raise ValueError(
        f'a part of a $complex must be a number with a "." or exponent, or a $float '
        f"tag, not {part!r}"
    )


SCALAR_DECODERS: Final[dict[str, Callable[[object], object]]] = {
    "$float": _decode_float,
    "$bytes": _decode_bytes,
    "$datetime": _decode_datetime,
    "$date": _decode_date,
    "$time": _decode_time,
    "$timedelta": _decode_timedelta,
    "$decimal": _decode_decimal,
    "$uuid": _decode_uuid,
    "$complex": _decode_complex,
}
"""Decoders of the tagged scalars, by tag."""
