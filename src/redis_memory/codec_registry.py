"""Codecs for user types, and the registries that map types and tags to them.

A codec turns a value of one user type into a JSON payload and back. The value is
stored as ``{"$ext:<tag>": <payload>}``, so the tag must stay the same across
processes and versions of the user's program, while the Python type may be renamed
as long as the tag is kept.

Example
-------
>>> from fractions import Fraction
>>> registry = CodecRegistry(inherit=False)
>>> register_codec(
...     Fraction,
...     "fraction",
...     lambda value: [value.numerator, value.denominator],
...     lambda payload: Fraction(*payload),
...     registry=registry,
... )
>>> registry.find_by_tag("fraction").type is Fraction
True
"""

from __future__ import annotations

import datetime
import decimal
import re
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeAlias

__all__ = [
    "BUILTIN_TYPES",
    "CodecRegistry",
    "ExtensionCodec",
    "JSONValue",
    "default_registry",
    "register_codec",
]

JSONValue: TypeAlias = (
    "bool | int | float | str | Sequence[JSONValue] | Mapping[str, JSONValue] | None"
)
"""A value that ``json.dumps`` accepts, with mappings and sequences nested in it."""

BUILTIN_TYPES: frozenset[type] = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        tuple,
        list,
        dict,
        set,
        frozenset,
        datetime.datetime,
        datetime.date,
        datetime.time,
        datetime.timedelta,
        decimal.Decimal,
        uuid.UUID,
    }
)
"""Types that the codec stores by itself, so no codec can be registered for them."""

# The tag is written into the stored JSON without escaping, so it is limited to
# characters that need none. A colon is allowed for namespacing ("myapp:point").
_TAG_PATTERN = re.compile(r"[A-Za-z0-9_.:/-]+")


class ExtensionCodec(NamedTuple):
    """A registered codec: the type it handles, its tag and its two functions."""

    type: type
    tag: str
    encode: Callable[[Any], JSONValue]
    decode: Callable[[Any], Any]


class CodecRegistry:
    """A set of codecs for user types, found by exact type or by tag.

    Parameters
    ----------
    inherit : bool, default True
        Whether lookups that find nothing here fall back to the default registry
        (the one ``register_codec`` fills when no registry is given). The fallback
        is live: a codec registered globally later is found too.

    Notes
    -----
    Codecs are matched by exact type, so a codec for ``Point`` is not used for a
    subclass of ``Point``. Register the subclass too.
    """

    def __init__(self, *, inherit: bool = True) -> None:
        self._by_type: dict[type, ExtensionCodec] = {}
        self._by_tag: dict[str, ExtensionCodec] = {}
        self._inherit = inherit

    def __repr__(self) -> str:
        tags = sorted(self._by_tag)
        return f"CodecRegistry(tags={tags!r}, inherit={self._inherit})"

    def register(
        self,
        type_: type,
        tag: str,
        encode: Callable[[Any], JSONValue],
        decode: Callable[[Any], Any],
    ) -> None:
        """Add a codec for ``type_`` stored under ``tag``.

        See `register_codec` for the parameters and the exceptions raised.
        """
        _validate_registration(type_, tag, encode, decode)
        codec = ExtensionCodec(type_, tag, encode, decode)

        # Registering the same type again under the same tag replaces the codec. A
        # class of the same module and name counts as the same type, because
        # re-running a notebook cell creates a new class object for the same class.
        previous = self.find_by_tag(tag)
        if previous is not None and not _same_class(previous.type, type_):
            owner = _type_name(previous.type)
            raise ValueError(
                f"codec tag {tag!r} is already registered for {owner}. Choose another "
                f"tag for {_type_name(type_)}."
            )
        other = self.find_by_type(type_)
        if other is not None and other.tag != tag:
            raise ValueError(
                f"{_type_name(type_)} already has a codec under tag {other.tag!r}, "
                f"and a type can have one tag only"
            )

        if previous is not None:
            self._by_type.pop(previous.type, None)
        self._by_type[type_] = codec
        self._by_tag[tag] = codec

    def find_by_type(self, type_: type) -> ExtensionCodec | None:
        """Return the codec registered for exactly ``type_``, or None."""
        codec = self._by_type.get(type_)
        if codec is None and self._inherit and self is not _DEFAULT_REGISTRY:
            codec = _DEFAULT_REGISTRY._by_type.get(type_)
        return codec

    def find_by_tag(self, tag: str) -> ExtensionCodec | None:
        """Return the codec registered under ``tag``, or None."""
        codec = self._by_tag.get(tag)
        if codec is None and self._inherit and self is not _DEFAULT_REGISTRY:
            codec = _DEFAULT_REGISTRY._by_tag.get(tag)
        return codec


_DEFAULT_REGISTRY = CodecRegistry(inherit=False)


def default_registry() -> CodecRegistry:
    """Return the process-wide registry that `register_codec` fills by default."""
    return _DEFAULT_REGISTRY


def register_codec(
    type_: type,
    tag: str,
    encode: Callable[[Any], JSONValue],
    decode: Callable[[Any], Any],
    *,
    registry: CodecRegistry | None = None,
) -> None:
    """Register a codec so values of ``type_`` can be stored.

    Parameters
    ----------
    type_ : type
        The exact type to handle. Subclasses need their own codec.
    tag : str
        The name stored with each value, as ``{"$ext:<tag>": payload}``. Letters,
        digits and ``_ . : / -`` are allowed. Keep it stable: values stored under a
        tag can only be read while a codec for that tag is registered.
    encode : callable
        Takes a value of ``type_`` and returns its payload: None, bool, int, finite
        float, str, or lists and str-keyed dicts of those.
    decode : callable
        Takes the payload as ``json.loads`` returns it (lists for arrays) and
        returns the value.
    registry : CodecRegistry, optional
        Where to register. By default, the process-wide registry, which every
        `Codec` created without its own registry uses.

    Raises
    ------
    ValueError
        If the tag is already registered for another type, ``type_`` already has a
        codec under another tag, the tag contains other characters, or ``type_`` is
        one that the codec stores by itself (int, str, tuple, datetime, numpy arrays,
        ...).
    TypeError
        If ``type_`` is not a class or ``encode`` or ``decode`` is not callable.
    """
    target = _DEFAULT_REGISTRY if registry is None else registry
    target.register(type_, tag, encode, decode)


def _validate_registration(
    type_: object, tag: object, encode: object, decode: object
) -> None:
    if not isinstance(type_, type):
        raise TypeError(f"type_ must be a class, not {type(type_).__name__}: {type_!r}")
    if not isinstance(tag, str) or _TAG_PATTERN.fullmatch(tag) is None:
        raise ValueError(
            f"invalid codec tag {tag!r}: use letters, digits and _ . : / - only"
        )
    if not callable(encode) or not callable(decode):
        raise TypeError(
            f"encode and decode must be callable, got {type(encode).__name__} "
            f"and {type(decode).__name__}"
        )
    if type_ in BUILTIN_TYPES or _is_numpy_builtin(type_):
        raise ValueError(
            f"{_type_name(type_)} is stored by redis-memory itself, so a codec cannot "
            f"be registered for it"
        )


def _is_numpy_builtin(type_: type) -> bool:
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return False
    if type_ is numpy.ndarray:
        return True
    return issubclass(type_, numpy.generic) and type_.__module__ == "numpy"


def _same_class(first: type, second: type) -> bool:
    if first is second:
        return True
    return (first.__module__, first.__qualname__) == (
        second.__module__,
        second.__qualname__,
    )


def _type_name(type_: type) -> str:
    if type_.__module__ == "builtins":
        return type_.__qualname__
    return f"{type_.__module__}.{type_.__qualname__}"
