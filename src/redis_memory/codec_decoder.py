"""Decoding of stored JSON text: parsing, node references and tags.

Every error that invalid stored text can cause is raised as `CorruptValueError`,
except `PickleRefusedError` for a pickle that must not be loaded, and
ModuleNotFoundError for a numpy value when numpy is missing.
"""

from __future__ import annotations

import json
import json.scanner
import re
from collections.abc import Callable
from typing import Any, Final, NamedTuple, NoReturn

from .codec_encoder import EXT_PREFIX
from .codec_numpy import decode_ndarray, decode_numpy_scalar
from .codec_registry import CodecRegistry
from .codec_scalars import SCALAR_DECODERS, json_kind, parse_big_int
from .errors import CorruptValueError, PickleRefusedError
from .signed_pickle import PickleSigner

__all__ = ["NODE_ID", "NodeRef", "ValueDecoder", "parse_again", "scan"]

NODE_ID: Final = re.compile(r"[A-Za-z0-9]+")
"""The form of a node id: what Lua's ``%w`` matches, so scripts can parse refs."""

_REF_TAGS: Final = {"$list": "list", "$dict": "dict"}
# Errors that invalid stored text can raise while it is decoded. ArithmeticError
# covers decimal.InvalidOperation and OverflowError.
_DECODE_ERRORS: Final = (ValueError, TypeError, ArithmeticError, RecursionError)


class NodeRef(NamedTuple):
    """A reference, stored as an entry, to a child list or dict node."""

    kind: str
    """``"list"`` or ``"dict"``."""
    node_id: str
    """The child's id: ASCII letters and digits only."""


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _make_scanner(**options: Any) -> Callable[[str, int], tuple[Any, int]]:
    decoder = json.JSONDecoder(parse_constant=_reject_constant, **options)
    # typeshed declares make_scanner as a class taking a scanner, not a decoder.
    make_scanner: Any = json.scanner.make_scanner
    scanner: Callable[[str, int], tuple[Any, int]] = make_scanner(decoder)
    return scanner


scan: Final = _make_scanner()
"""Parse one JSON value at an index, and return it with the index after it.

It skips the whitespace handling of ``json.loads``, which makes decoding a small
value about ten times faster. It raises StopIteration where no value starts.
"""

_scan_with_big_ints: Final = _make_scanner(parse_int=parse_big_int)


def parse_again(
    text: bytes | str, where: str, error: Exception
) -> tuple[object, int, str]:
    """Parse ``text`` after `scan` raised ``error``, or raise CorruptValueError.

    `scan` fails on integers with more digits than ``int()`` accepts, so those are
    parsed again with `parse_big_int`.

    Returns
    -------
    tuple
        The value, the index after it, and ``text`` as str.

    Raises
    ------
    CorruptValueError
        If ``text`` is not UTF-8 or not valid JSON.
    TypeError
        If ``text`` is neither bytes nor str.
    """
    if not isinstance(text, (bytes, str)):
        raise TypeError(f"decode() expects bytes or str, not {type(text).__name__}")
    if type(error) is ValueError:
        try:
            string = text.decode() if isinstance(text, bytes) else text
            value, end = _scan_with_big_ints(string, 0)
            return value, end, string
        except (ValueError, StopIteration, RecursionError) as exc:
            error = exc
    raise CorruptValueError(where, text, _describe_parse_error(error)) from error


def _describe_parse_error(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"the bytes are not UTF-8 ({error.reason} at index {error.start})"
    if isinstance(error, StopIteration):
        return f"not valid JSON: no value at index {error.value}"
    if isinstance(error, RecursionError):
        return "the JSON is nested too deeply"
    if isinstance(error, json.JSONDecodeError):
        return f"not valid JSON: {error}"
    return str(error)


class ValueDecoder:
    """Converts a parsed tag object into the value or node reference it encodes.

    Parameters
    ----------
    registry : CodecRegistry
        Where to find codecs for ``$ext:<tag>`` tags.
    signer : PickleSigner or None
        Checks and loads ``$pickle`` values, or None when pickle is off.
    """

    __slots__ = ("_registry", "_signer")

    def __init__(self, registry: CodecRegistry, signer: PickleSigner | None) -> None:
        self._registry = registry
        self._signer = signer

    def decode_root_tag(
        self, tagged: dict[str, Any], text: bytes | str, where: str
    ) -> object:
        """Return the value of a JSON object parsed from a whole stored ``text``.

        Raises
        ------
        CorruptValueError
            If the object is not a valid tag and payload.
        PickleRefusedError
            If it is a pickle that must not be loaded.
        """
        try:
            tag, payload = _split_tag(tagged)
            kind = _REF_TAGS.get(tag)
            if kind is not None:
                return _decode_ref(kind, payload)
            if tag == "$map":
                raise ValueError(
                    "$map is only valid inside a tuple or set, because a dict is "
                    "stored as a node"
                )
            return self._decode_tagged(tag, payload, where)
        except PickleRefusedError:
            raise
        except _DECODE_ERRORS as exc:
            raise CorruptValueError(where, text, str(exc)) from exc

    def _decode_nested(self, value: Any, where: str) -> Any:
        value_type = type(value)
        if value_type is list:
            return [self._decode_nested(item, where) for item in value]
        if value_type is not dict:
            return value
        tag, payload = _split_tag(value)
        if tag == "$map":
            return self._decode_map(payload, where)
        if tag in _REF_TAGS:
            raise ValueError(f"{tag} references are only valid as a whole entry")
        return self._decode_tagged(tag, payload, where)

    def _decode_tagged(self, tag: str, payload: Any, where: str) -> object:
        scalar_decoder = SCALAR_DECODERS.get(tag)
        if scalar_decoder is not None:
            return scalar_decoder(payload)
        if tag in ("$tuple", "$set", "$frozenset"):
            return self._decode_collection(tag, payload, where)
        if tag == "$ndarray":
            return decode_ndarray(payload)
        if tag == "$npscalar":
            return decode_numpy_scalar(payload)
        if tag == "$pickle":
            if self._signer is None:
                raise PickleRefusedError(
                    f"{where} is a pickled value, but pickle is off, so it was not "
                    f"unpickled. Pass pickle_key=... to Memory to load it."
                )
            return self._signer.load(payload, where)
        if tag.startswith(EXT_PREFIX):
            return self._decode_registered(tag[len(EXT_PREFIX) :], payload)
        raise ValueError(f"unknown tag {tag!r}")

    def _decode_collection(self, tag: str, payload: Any, where: str) -> object:
        if type(payload) is not list:
            kind = json_kind(payload)
            raise ValueError(f"the payload of {tag} must be an array, not {kind}")
        elements = [self._decode_nested(item, where) for item in payload]
        if tag == "$tuple":
            return tuple(elements)
        try:
            return set(elements) if tag == "$set" else frozenset(elements)
        except TypeError as exc:
            raise ValueError(f"an element of a {tag} is not hashable: {exc}") from None

    def _decode_map(self, payload: Any, where: str) -> dict[Any, Any]:
        if type(payload) is not list or any(
            type(pair) is not list or len(pair) != 2 for pair in payload
        ):
            raise ValueError(
                "the payload of $map must be an array of [key, value] pairs"
            )
        mapping = {}
        for key, item in payload:
            decoded_key = self._decode_nested(key, where)
            decoded_item = self._decode_nested(item, where)
            try:
                mapping[decoded_key] = decoded_item
            except TypeError as exc:
                raise ValueError(f"a key of a $map is not hashable: {exc}") from None
        return mapping

    def _decode_registered(self, tag: str, payload: Any) -> object:
        codec = self._registry.find_by_tag(tag)
        if codec is None:
            raise ValueError(
                f"no codec is registered for tag {tag!r}. Register one with "
                f"register_codec(<type>, {tag!r}, encode, decode) before reading "
                f"this value."
            )
        # The decode function is user code, so any exception means this payload
        # cannot be read, and is reported as such.
        try:
            return codec.decode(payload)
        except Exception as exc:
            raise ValueError(
                f"the decode function registered for tag {tag!r} failed with {exc!r}"
            ) from exc


def _split_tag(tagged: dict[str, Any]) -> tuple[str, Any]:
    if len(tagged) != 1:
        raise ValueError(
            f"a JSON object must have exactly one key, its tag, not {len(tagged)}"
        )
    ((tag, payload),) = tagged.items()
    if not tag.startswith("$"):
        raise ValueError(
            f'the key of a JSON object must be a tag starting with "$", not {tag!r}'
        )
    return tag, payload


def _decode_ref(kind: str, payload: object) -> NodeRef:
    if type(payload) is not str or NODE_ID.fullmatch(payload) is None:
        raise ValueError(f"invalid node id {payload!r} in a ${kind} reference")
    return NodeRef(kind, payload)
