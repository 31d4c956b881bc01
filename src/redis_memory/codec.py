"""Encoding of stored scalars as compact, tagged JSON text.

Every entry of a stored list or dict is the JSON text of one scalar, or a reference
to a child node (``{"$list":"<id>"}``). None, bool, int, float and str are plain
JSON. Other types become an object with exactly one key, the tag:
``{"$tuple":[1,"a"]}``. docs/storage-format.md lists every tag with examples.

Types are matched exactly: a subclass of a supported type (an ``IntEnum``, a
``namedtuple``, an ``OrderedDict``, a ``str`` subclass) raises
`UnsupportedTypeError` instead of being stored as its base type, which would lose
the subclass on reading. Register a codec for the subclass, or enable pickle.

Example
-------
>>> codec = Codec()
>>> codec.encode((1, b"\\x00"), "mem.x")
'{"$tuple":[1,{"$bytes":"AA=="}]}'
>>> codec.decode(b'{"$tuple":[1,{"$bytes":"AA=="}]}')
(1, b'\\x00')
"""

from __future__ import annotations

import json.encoder
import re
import reprlib
from typing import Any, Final

from .codec_decoder import NODE_ID, NodeRef, ValueDecoder, parse_again, scan
from .codec_encoder import ValueEncoder
from .codec_registry import (
    CodecRegistry,
    JSONValue,
    default_registry,
    register_codec,
)
from .codec_scalars import (
    KEY_ENCODERS,
    SCALAR_ENCODERS,
    encode_float,
    encode_int,
    encode_str,
)
from .errors import CorruptValueError
from .signed_pickle import PickleSigner

__all__ = [
    "Codec",
    "CodecRegistry",
    "JSONValue",
    "NodeRef",
    "default_registry",
    "register_codec",
]

_quote: Final = json.encoder.encode_basestring


# encode_ref's output: {"$list":"<16 hex digits>"} or {"$dict":"..."}.
_REF_KINDS: dict[bytes, str] = {b'{"$list":"': "list", b'{"$dict":"': "dict"}
_REF_LENGTH = 10 + 16 + 2
_REF_ID = re.compile(rb"[0-9a-f]{16}")


class Codec:
    """Converts scalars to the JSON text stored in Redis, and back.

    Parameters
    ----------
    pickle_key : bytes or str, optional
        Enables pickle for values that have no codec, signed with HMAC-SHA256
        under this key. Without it, such values raise `UnsupportedTypeError`, and
        reading a pickled value raises `PickleRefusedError` without unpickling it.
    registry : CodecRegistry, optional
        Where to find codecs of user types. By default, the process-wide registry
        that `register_codec` fills, including codecs registered later.

    Notes
    -----
    Paths in messages name where a value goes, such as ``mem.cfg['users'][2]``.
    Inside a tuple, ``[i]`` is a position and ``[key]`` a dict value. A set element
    is written ``<element>`` and a dict key ``<key>``.
    """

    __slots__ = ("_decoder", "_encoder", "_registry", "_signer")

    def __init__(
        self,
        *,
        pickle_key: bytes | str | None = None,
        registry: CodecRegistry | None = None,
    ) -> None:
        self._registry = default_registry() if registry is None else registry
        self._signer = None if pickle_key is None else PickleSigner(pickle_key)
        self._encoder = ValueEncoder(self._registry, self._signer)
        self._decoder = ValueDecoder(self._registry, self._signer)

    def __repr__(self) -> str:
        pickle = "on" if self._signer is not None else "off"
        return f"Codec(pickle={pickle}, registry={self._registry!r})"

    @property
    def pickle_enabled(self) -> bool:
        """Whether values without a codec are pickled (a ``pickle_key`` was given)."""
        return self._signer is not None

    def encode(self, value: object, path: str) -> str:
        """Return the JSON text that stores the scalar ``value``.

        Parameters
        ----------
        value : object
            A scalar, or a tuple, set or frozenset, which may contain lists and
            dicts. Lists and dicts themselves are stored as nodes (see `encode_ref`).
        path : str
            Where the value goes, for messages, such as ``mem.cfg['users'][2]``.

        Raises
        ------
        UnsupportedTypeError
            If a type has no codec (and pickle is off or cannot pickle it).
        ValueError
            If the value contains itself, is nested too deeply, or is a time whose
            tzinfo gives no UTC offset.
        TypeError
            If ``value`` is a list or dict, or a registered encode function returns
            something that is not JSON.
        """
        item: Any = value
        value_type = type(item)
        if value_type is str:
            if item.isascii():
                return _quote(item)
            return encode_str(item)
        if value_type is int:
            # encode_int inlined: repr fails only past sys.get_int_max_str_digits().
            try:
                return repr(item)
            except ValueError:
                return encode_int(item)
        if value_type is float:
            return encode_float(item)
        if value_type is bool:
            return "true" if item else "false"
        if item is None:
            return "null"

        scalar_encoder = SCALAR_ENCODERS.get(value_type)
        if scalar_encoder is not None:
            return scalar_encoder(item, path, False)
        if value_type is list or value_type is dict:
            raise TypeError(
                f"cannot encode {path} as one value: a {value_type.__name__} is "
                f"stored as a node of its own, referenced with encode_ref()"
            )
        return self._encoder.encode(item, path, canonical=False)

    def encode_key(self, key: object, path: str) -> str:
        """Return the JSON text that stores the dict key ``key`` as a hash field.

        Equal keys of one type get identical text, so ``-0.0`` is written ``0.0``,
        ``Decimal("1.00")`` ``Decimal("1")``, an aware datetime in UTC, and set
        elements are sorted by their text. Equal keys of different types (``1``,
        ``True``, ``1.0``) get different text, listed by `key_aliases`.

        Parameters
        ----------
        key : object
            The key: any hashable value that `encode` accepts.
        path : str
            Where the dict is, for messages, such as ``mem.cfg``.

        Raises
        ------
        TypeError
            If ``key`` is unhashable. The message ends like Python's own, for
            example ``unhashable type: 'list'``.
        UnsupportedTypeError, ValueError
            As `encode` raises them.

        Notes
        -----
        A registered codec or pickle must itself write equal keys identically,
        which pickle does not guarantee, for example for a set inside an object.
        """
        item: Any = key
        key_type = type(item)
        if key_type is str:
            if item.isascii():
                return _quote(item)
            return encode_str(item)
        if key_type is int:
            return encode_int(item)

        try:
            hash(item)
        except TypeError as exc:
            raise TypeError(
                f"cannot use {reprlib.repr(item)} as a key of {path}: {exc}"
            ) from None
        simple_encoder = KEY_ENCODERS.get(key_type)
        if simple_encoder is not None:
            return simple_encoder(item)
        scalar_encoder = SCALAR_ENCODERS.get(key_type)
        if scalar_encoder is not None:
            return scalar_encoder(item, f"{path}<key>", True)
        return self._encoder.encode(item, f"{path}<key>", canonical=True)

    def key_aliases(self, key: object, path: str) -> list[str]:
        """Return the text of ``key`` and of every other key that equals it.

        Python's dict treats ``1``, ``True``, ``1.0`` and ``1+0j`` as one key, so a
        store that looks a key up must try each of their texts. The key's own
        text comes first, then those of bool, int, float and complex, in that
        order: ``key_aliases(1, p) == ["1", "true", "1.0", '{"$complex":[1.0,0.0]}']``.

        Only bool, int, float and complex keys have aliases. Decimal keys, numpy
        scalars, and numbers inside tuple or frozenset keys are not aliased: ``(1,)`` and ``(1.0,)`` are stored as two keys.

        Raises
        ------
        TypeError, UnsupportedTypeError, ValueError
            As `encode_key` raises them.
        """
        own = self.encode_key(key, path)
        if not isinstance(key, (int, float, complex)):
            return [own]
        if type(key) not in (bool, int, float, complex):
            return [own]
        equal_keys = _equal_numbers(key)
        return [own, *(self.encode_key(equal, path) for equal in equal_keys)]

    def encode_ref(self, ref: NodeRef) -> str:
        """Return the text that references a child node: ``{"$list":"<id>"}``.

        The text has no spaces, because Lua scripts recognise it with the pattern
        ``^{"%$(%a+)":"([%w]+)"}$``.

        Raises
        ------
        ValueError
            If the kind is not ``"list"`` or ``"dict"``, or the id is not ASCII
            letters and digits.
        """
        kind, node_id = ref
        if kind not in ("list", "dict"):
            raise ValueError(f'invalid node kind {kind!r}: expected "list" or "dict"')
        if not isinstance(node_id, str) or NODE_ID.fullmatch(node_id) is None:
            raise ValueError(
                f"invalid node id {node_id!r}: expected ASCII letters and digits"
            )
        return '{"$' + kind + '":"' + node_id + '"}'

    def decode(self, text: bytes | str, where: str = "value") -> object:
        """Return the value stored as ``text``, or a `NodeRef` for a reference.

        Parameters
        ----------
        text : bytes or str
            The stored text. Bytes must be UTF-8.
        where : str
            Where the text was read, for messages, such as ``mem.cfg['users']``.

        Raises
        ------
        CorruptValueError
            If ``text`` is not a value that `encode` or `encode_ref` writes, or
            its tag ``$ext:<tag>`` has no registered codec.
        PickleRefusedError
            If ``text`` is a pickle and pickle is off, or its signature does not
            match ``pickle_key``. The pickle is then not loaded.
        ModuleNotFoundError
            If ``text`` is a numpy array or scalar and numpy is not installed.
        """
        if type(text) is bytes and len(text) == _REF_LENGTH:
            # A reference written by encode_ref: skip parsing on the hot path of reads.
            kind = _REF_KINDS.get(text[:10])
            if (
                kind is not None
                and text[-2:] == b'"}'
                and _REF_ID.fullmatch(text[10:-2])
            ):
                return NodeRef(kind, text[10:-2].decode())
        try:
            string = text.decode() if type(text) is bytes else text
            value, end = scan(string, 0)  # type: ignore[arg-type]
        except (ValueError, TypeError, StopIteration, RecursionError) as exc:
            value, end, string = parse_again(text, where, exc)

        if end != len(string):
            raise CorruptValueError(
                where, text, f"unexpected text after the JSON value, at index {end}"
            )
        value_type = type(value)
        if value_type is dict:
            return self._decoder.decode_root_tag(value, text, where)
        if value_type is list:
            raise CorruptValueError(
                where, text, "a JSON array is only valid inside a tagged value"
            )
        return value


def _equal_numbers(key: int | float | complex) -> list[object]:
    """Return the numbers of the other numeric types that equal ``key``.

    They come in the order bool, int, float, complex, without ``key``'s own type.
    """
    real: int | float
    if isinstance(key, complex):
        if key.imag != 0:
            return []
        real = key.real
    else:
        real = key
    if real != real:
        return []

    candidates: list[object] = []
    if real == 0 or real == 1:
        candidates.append(bool(real))
    if type(real) is not float or real.is_integer():
        candidates.append(int(real))
    try:
        as_float = float(real)
    except OverflowError:
        as_float = None
    if as_float is not None and as_float == real:
        candidates.append(as_float)
        candidates.append(complex(as_float, 0.0))
    return [number for number in candidates if type(number) is not type(key)]
