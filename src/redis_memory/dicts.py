"""SyncedDict: the dict API over one stored Redis HASH and its insertion order.

Keys keep their type (``1`` and ``"1"`` are different keys) and numbers that
compare equal are one key, as in a dict (``1``, ``1.0`` and ``True``). Every
mutation is one atomic script call; ``update`` applies all its pairs at once.
"""

from __future__ import annotations

from collections.abc import (
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    ValuesView,
)
from typing import Any

from .cache import MISS
from .codec import NodeRef
from .entries import NodeMap, decode_entries, to_plain
from .errors import UnsupportedTypeError
from .node import Node, is_shareable

__all__ = ["SyncedDict"]

_MISSING: Any = object()

# Storable key types whose subclasses compare equal to a base-type value.
_KEY_BASES: tuple[type, ...] = (bool, int, float, complex, str, bytes, tuple, frozenset)


class SyncedDict(Node, MutableMapping[Any, Any], kind="dict"):
    """A dict stored in Redis; every change is written at once.

    Obtain one by reading a stored dict, for example ``mem.config`` after
    ``mem.config = {"theme": "dark"}``. Costs: one round trip per call. Key
    access, ``d[k] = v``, ``del``, ``pop`` and ``popitem`` are O(1) amortised
    on the server (see the insertion order in docs/architecture.md), and
    whole-dict operations O(n).
    """

    __slots__ = ()

    # -- reads ----------------------------------------------------------------

    def _lookup(self, key: Any) -> tuple[bytes, bytes] | None:
        """Return (field, entry) of ``key``, or None when it is absent.

        An instance of a subclass of a storable type (an IntEnum member, a
        namedtuple) is looked up as its base value, which it equals, as a dict
        would. Any other key that cannot be stored cannot be present, so it is
        not found; an unhashable key still raises TypeError.
        """
        try:
            aliases = self._store.codec.key_aliases(key, self._path)
        except UnsupportedTypeError:
            hash(key)
            base = next((kind for kind in _KEY_BASES if isinstance(key, kind)), None)
            if base is None:
                return None
            aliases = self._store.codec.key_aliases(base(key), self._path)
        return self._store.dict_get(self, aliases)

    def __getitem__(self, key: Any) -> Any:
        cache = self._store.cache
        if cache is None or type(key) is not str:
            return self._read_item(key)
        # Reads of str keys keep their decoded values, which makes a repeated
        # mem.cfg["k"] about twice as fast as keeping only the reply.
        value = cache.value(self, key)
        if value is not MISS:
            return value
        epoch = cache.epoch()
        value = self._read_item(key)
        if is_shareable(value):
            cache.keep_value(epoch, self, key, value)
        return value

    def _read_item(self, key: Any) -> Any:
        hit = self._lookup(key)
        if hit is None:
            raise KeyError(key)
        field, raw = hit
        return self._decode(raw, key, field)

    def __contains__(self, key: object) -> bool:
        return self._lookup(key) is not None

    def get(self, key: Any, default: Any = None) -> Any:
        """Return ``self[key]``, or ``default`` when the key is absent."""
        try:
            return self[key]
        except KeyError:
            return default

    def __len__(self) -> int:
        return self._store.length(self)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items(values=False))

    def __reversed__(self) -> Iterator[Any]:
        return reversed(self._items(values=False))  # type: ignore[no-any-return]

    def keys(self) -> KeysView[Any]:
        """Return a live view of the keys, in insertion order."""
        return KeysView(self)

    def values(self) -> ValuesView[Any]:
        """Return a live view of the values; iterating it reads them all at once."""
        return _Values(self)

    def items(self) -> ItemsView[Any, Any]:
        """Return a live view of the (key, value) pairs; iterating it reads them all at once."""
        return _Items(self)

    def _items(self, *, values: bool) -> list[Any]:
        raw = self._store.entries(self)
        codec = self._store.codec
        keys = decode_entries(codec, raw[0::2], f"{self._path} keys")
        if not values:
            return keys
        decoded = decode_entries(codec, raw[1::2], self._path)
        return [
            (key, self._wrap(value, key, raw[2 * i]))
            for i, (key, value) in enumerate(zip(keys, decoded, strict=True))
        ]

    @classmethod
    def fromkeys(cls, keys: Iterable[Any], value: Any = None) -> dict[Any, Any]:
        """Return a plain dict of ``keys`` to ``value``, as ``dict.fromkeys`` does.

        It is plain because a stored dict only comes from storing one: assign
        the result to a name or key to store it.
        """
        return dict.fromkeys(keys, value)

    def asdict(self) -> dict[Any, Any]:
        """Return a plain dict copy, nested lists and dicts included (one round trip)."""
        return self._plain()  # type: ignore[no-any-return]

    def copy(self) -> dict[Any, Any]:
        """Return a plain dict copy, like ``asdict()``."""
        return self._plain()  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return repr(self._plain())

    # -- comparisons and operators --------------------------------------------

    def _other(self, other: object) -> dict[Any, Any] | None:
        if isinstance(other, SyncedDict):
            return other._plain()  # type: ignore[no-any-return]
        if isinstance(other, dict):
            return other
        return None

    def __or__(self, other: object) -> dict[Any, Any]:
        plain = self._other(other)
        if plain is None:
            return NotImplemented
        result: dict[Any, Any] = self._plain()
        result.update(plain)
        return result

    def __ror__(self, other: object) -> dict[Any, Any]:
        plain = self._other(other)
        if plain is None:
            return NotImplemented
        result = dict(plain)
        result.update(self._plain())
        return result

    def __ior__(self, other: Any) -> SyncedDict:  # type: ignore[override,misc]
        self.update(other)
        return self

    # -- writes ---------------------------------------------------------------

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, Node) and self._holds(key, value):
            return
        self._store.dict_update(self, ((key, value),), "setitem")

    def _holds(self, key: Any, value: Node) -> bool:
        """Return whether ``self[key]`` already is the node behind ``value``.

        ``d[k] += x`` assigns the handle that ``__iadd__`` returned back to
        ``d[k]``, and copying it there would replace the node just changed.
        """
        if not value._same_namespace(self):
            return False
        hit = self._store.dict_get(self, self._store.codec.key_aliases(key, self._path))
        return hit is not None and value._is_entry(bytes(hit[1]))

    def __delitem__(self, key: Any) -> None:
        if self._store.dict_pop(self, key, want_value=False) is None:
            raise KeyError(key)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Set every pair of a mapping, an iterable of pairs and ``kwargs``, atomically."""
        if isinstance(other, Node):
            pairs = list(other._plain().items())
        else:
            pairs = update_pairs(other)
        pairs.extend(kwargs.items())
        if pairs:
            self._store.dict_update(self, pairs, "update")

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """Return ``self[key]``, storing ``default`` first when absent (atomic)."""
        _, raw = self._store.dict_setdefault(self, key, default)
        return self._decode(raw, key, _field_if_root(self, key))

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (plain for a list or dict)."""
        reply = self._store.dict_pop(self, key)
        if reply is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        _, raw, nodes = reply
        return self._plain_value(raw, nodes, key)

    def popitem(self) -> tuple[Any, Any]:
        """Remove and return the last inserted (key, value) pair (LIFO)."""
        reply = self._store.dict_pop(self, None, last=True)
        if reply is None:
            raise KeyError("popitem(): dictionary is empty")
        field, raw, nodes = reply
        key = self._store.codec.decode(field, f"{self._path} keys")
        return key, self._plain_value(raw, nodes, key)

    def clear(self) -> None:
        """Remove every key, and every nested list or dict with it."""
        self._store.dict_clear(self)

    def _plain_value(self, raw: bytes, nodes: NodeMap, key: object) -> Any:
        path = self._child_path(key)
        value = self._store.codec.decode(raw, path)
        if type(value) is NodeRef:
            return to_plain(self._store.codec, nodes, value, path)
        return value


def _field_if_root(node: SyncedDict, key: Any) -> bytes | None:
    # Children of the namespace record their own top-level field for change messages.
    if node._name_field:
        return None
    return node._store.codec.encode_key(key, node._path).encode()


def update_pairs(other: Any) -> list[tuple[Any, Any]]:
    """Return the pairs ``dict.update(other)`` would set, raising as it does."""
    if isinstance(other, Mapping):
        return [(key, other[key]) for key in other]
    if hasattr(other, "keys"):
        return [(key, other[key]) for key in other.keys()]
    pairs = []
    for index, item in enumerate(other):
        try:
            pair = tuple(item)
        except TypeError:
            raise TypeError(
                f"cannot convert dictionary update sequence element #{index} to a sequence"
            ) from None
        if len(pair) != 2:
            raise ValueError(
                f"dictionary update sequence element #{index} has length {len(pair)}; "
                "2 is required"
            )
        pairs.append(pair)
    return pairs


class _Items(ItemsView[Any, Any]):
    _mapping: SyncedDict

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return iter(self._mapping._items(values=True))

    def __reversed__(self) -> Iterator[tuple[Any, Any]]:
        return reversed(self._mapping._items(values=True))  # type: ignore[no-any-return]


class _Values(ValuesView[Any]):
    _mapping: SyncedDict

    def __iter__(self) -> Iterator[Any]:
        return iter([value for _, value in self._mapping._items(values=True)])

    def __reversed__(self) -> Iterator[Any]:
        return reversed([value for _, value in self._mapping._items(values=True)])  # type: ignore[no-any-return]

    def __contains__(self, value: object) -> bool:
        return any(item is value or item == value for item in self)
