"""Encoding of tuples, sets, and values that have no built-in JSON form.

Inside a tuple, set or frozenset, lists are written as JSON arrays and dicts as
``{"$map":[[key,value],...]}``, because only the top of a stored value becomes a
node. Set elements are sorted by their text, so equal sets get equal text.

A value of a type with no built-in form is written, in this order of preference,
by the registered codec for its exact type, as a numpy array or scalar, or as a
signed pickle if pickle is on. Otherwise it raises `UnsupportedTypeError`.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Iterable
from typing import Any

from .codec_numpy import encode_numpy_value
from .codec_registry import BUILTIN_TYPES, CodecRegistry, ExtensionCodec
from .codec_scalars import (
    KEY_ENCODERS,
    SCALAR_ENCODERS,
    VALUE_ENCODERS,
    contains_surrogate,
)
from .errors import UnsupportedTypeError
from .signed_pickle import PickleSigner

__all__ = ["EXT_PREFIX", "ValueEncoder"]

EXT_PREFIX = "$ext:"
"""The start of the tag of a value written by a registered codec."""

_CONTAINER_TYPES = (tuple, list, set, frozenset, dict)


class ValueEncoder:
    """Writes values that contain other values, or have no built-in form.

    Parameters
    ----------
    registry : CodecRegistry
        Where to find codecs of user types.
    signer : PickleSigner or None
        Pickles values that nothing else can write, or None when pickle is off.
    """

    __slots__ = ("_registry", "_signer")

    def __init__(self, registry: CodecRegistry, signer: PickleSigner | None) -> None:
        self._registry = registry
        self._signer = signer

    def encode(self, value: object, path: str, *, canonical: bool) -> str:
        """Return the JSON text of ``value``, which may contain lists and dicts.

        Parameters
        ----------
        value : object
            The value to encode.
        path : str
            Where the value goes, for messages.
        canonical : bool
            Whether to write the form for dict keys, in which equal values of
            one type get the same text.

        Raises
        ------
        UnsupportedTypeError
            If ``value`` or a value inside it has no codec.
        ValueError
            If ``value`` contains itself or is nested too deeply.
        TypeError
            If a registered encode function returns something that is not JSON.
        """
        try:
            return self._encode_nested(value, path, canonical, set())
        except RecursionError:
            raise ValueError(f"cannot store {path}: it is nested too deeply") from None

    def _encode_nested(
        self, value: Any, path: str, canonical: bool, active: set[int]
    ) -> str:
        # `active` contains the ids of the containers being encoded around `value`,
        # to detect a structure that contains itself.
        value_type = type(value)
        simple_encoder = (KEY_ENCODERS if canonical else VALUE_ENCODERS).get(value_type)
        if simple_encoder is not None:
            return simple_encoder(value)
        scalar_encoder = SCALAR_ENCODERS.get(value_type)
        if scalar_encoder is not None:
            return scalar_encoder(value, path, canonical)
        if value_type not in _CONTAINER_TYPES:
            return self._encode_extension(value, path)

        if id(value) in active:
            raise ValueError(
                f"cannot store {path}: it contains itself, and a recursive structure "
                f"cannot be stored"
            )
        active.add(id(value))
        if value_type is dict:
            text = self._encode_map(value, path, canonical, active)
        elif value_type is tuple or value_type is list:
            elements = self._encode_elements(value, path, True, canonical, active)
            joined = ",".join(elements)
            text = f'{{"$tuple":[{joined}]}}' if value_type is tuple else f"[{joined}]"
        else:
            elements = self._encode_elements(value, path, False, canonical, active)
            elements.sort()
            tag = "$set" if value_type is set else "$frozenset"
            text = f'{{"{tag}":[{",".join(elements)}]}}'
        active.discard(id(value))
        return text

    def _encode_elements(
        self,
        items: Iterable[Any],
        path: str,
        indexed: bool,
        canonical: bool,
        active: set[int],
    ) -> list[str]:
        simple_encoders = KEY_ENCODERS if canonical else VALUE_ENCODERS
        texts = []
        for index, item in enumerate(items):
            # Plain JSON types cannot fail, so they need no path, which is only
            # formatted for the other elements.
            simple_encoder = simple_encoders.get(type(item))
            if simple_encoder is not None:
                texts.append(simple_encoder(item))
                continue
            item_path = f"{path}[{index}]" if indexed else f"{path}<element>"
            texts.append(self._encode_nested(item, item_path, canonical, active))
        return texts

    def _encode_map(
        self, mapping: dict[Any, Any], path: str, canonical: bool, active: set[int]
    ) -> str:
        pairs = []
        for key, item in mapping.items():
            key_text = self._encode_nested(key, f"{path}<key>", canonical, active)
            item_path = f"{path}[{reprlib.repr(key)}]"
            item_text = self._encode_nested(item, item_path, canonical, active)
            pairs.append(f"[{key_text},{item_text}]")
        return f'{{"$map":[{",".join(pairs)}]}}'

    def _encode_extension(self, value: object, path: str) -> str:
        value_type = type(value)
        codec = self._registry.find_by_type(value_type)
        if codec is not None:
            return _encode_registered(codec, value, path)
        numpy_text = encode_numpy_value(value)
        if numpy_text is not None:
            return numpy_text
        if self._signer is None:
            raise UnsupportedTypeError(path, value_type, _unsupported_hint(value))

        # Pickling calls the value's own __reduce__ or __getstate__, which can
        # raise any exception.
        try:
            payload = self._signer.dump(value)
        except Exception as exc:
            hint = f"pickling it failed with {exc!r}"
            raise UnsupportedTypeError(path, value_type, hint) from exc
        return '{"$pickle":' + json.dumps(payload, separators=(",", ":")) + "}"


def _encode_registered(codec: ExtensionCodec, value: object, path: str) -> str:
    payload = codec.encode(value)
    try:
        text = json.dumps(
            payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"cannot store {path}: the encode function registered for tag "
            f"{codec.tag!r} returned {reprlib.repr(payload)}, which is not JSON ({exc})"
        ) from None
    if not text.isascii() and contains_surrogate(text):
        # A lone surrogate cannot be written as UTF-8, so escape every non-ASCII
        # character instead.
        text = json.dumps(payload, allow_nan=False, separators=(",", ":"))
    return f'{{"{EXT_PREFIX}{codec.tag}":{text}}}'


def _unsupported_hint(value: object) -> str:
    value_type = type(value)
    for base in value_type.__mro__[1:]:
        if base in BUILTIN_TYPES:
            name = base.__name__
            return (
                f"it is a subclass of {name}, and storing it as a plain {name} "
                f"would lose the subclass. Convert it to a plain {name} first, or "
                f"register a codec for {value_type.__qualname__} with register_codec()."
            )
    dtype = getattr(value, "dtype", None)
    if getattr(dtype, "hasobject", False):
        return (
            "numpy arrays of Python objects have no codec. Convert the array to a "
            "tuple, or pass pickle_key=... to Memory to store it pickled."
        )
    return (
        "register a codec with redis_memory.codec.register_codec(), or pass "
        "pickle_key=... to Memory to store it pickled."
    )
