"""Turning Python values into stored entries and stored entries back into values.

An entry is the text in one slot of a LIST or HASH: an encoded scalar, or a
reference to a child node. Storing a list or dict creates one node per
container, so a value is flattened into the entry for its slot plus the specs
of the nodes below it, which a script creates in the same atomic step.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from .codec import Codec, NodeRef
from .errors import CorruptValueError

__all__ = [
    "HasPath",
    "NodeMap",
    "Plan",
    "decode_entries",
    "has_reference",
    "parse_dump",
    "plain_entries",
    "to_plain",
]

# node id -> (kind, entries); dict entries alternate field and value.
NodeMap = dict[str, tuple[str, list[bytes]]]

_SCALARS = frozenset({str, int, float, bool, type(None)})


class HasPath(Protocol):
    """Anything that can name the display path of one of its slots."""

    def _child_path(self, key: object) -> str: ...


def new_node_id() -> str:
    """Return a random 64-bit node id in hex; a collision is detected by the scripts."""
    return os.urandom(8).hex()


def child_path(path: str, key: object) -> str:
    """Return the display path of ``key`` inside the value at ``path``."""
    return f"{path}[{key!r}]"


class Plan:
    """The node specs that storing some values needs, built up value by value.

    Call :meth:`entry` for every value that goes into a slot, then pass
    :meth:`specs` to the script, which creates every node in one step.
    """

    __slots__ = ("_codec", "_count", "_specs")

    def __init__(self, codec: Codec) -> None:
        self._codec = codec
        self._specs: list[Any] = []
        self._count = 0

    def specs(self) -> list[Any]:
        """Return the node specs: their count, then id, kind, n and n entries each."""
        return [self._count, *self._specs]

    def entry(self, value: object, parent: HasPath, key: object) -> str:
        """Return the entry storing ``value`` at ``parent[key]``, adding the nodes it needs.

        Raises
        ------
        TypeError
            A value inside has no codec; nothing has been sent yet.
        ValueError
            The value contains itself.
        """
        if type(value) in _SCALARS:
            try:
                return self._codec.encode(value, "")
            except (TypeError, ValueError):
                return self._codec.encode(value, parent._child_path(key))
        return self._entry(value, parent._child_path(key), set())

    def _entry(self, value: object, path: str, ancestors: set[int]) -> str:
        from .node import Node

        if isinstance(value, Node):
            value = value._plain()
        kind = type(value)
        if kind is list or kind is dict:
            marker = id(value)
            if marker in ancestors:
                raise ValueError(
                    f"cannot store {path}: the value contains itself; "
                    "store a copy without the cycle"
                )
            ancestors.add(marker)
            try:
                if kind is list:
                    return self._list_node(value, path, ancestors)  # type: ignore[arg-type]
                return self._dict_node(value, path, ancestors)  # type: ignore[arg-type]
            finally:
                ancestors.discard(marker)
        if kind in _SCALARS:
            return self._codec.encode(value, path)
        if isinstance(value, (list, dict)):
            raise TypeError(
                f"cannot store {path}: {kind.__qualname__} is a subclass of "
                f"{'list' if isinstance(value, list) else 'dict'} and would lose its type; "
                f"convert it first, for example with "
                f"{'list' if isinstance(value, list) else 'dict'}(value)"
            )
        return self._codec.encode(value, path)

    def _list_node(self, items: list[Any], path: str, ancestors: set[int]) -> str:
        entries = []
        for index, item in enumerate(items):
            if type(item) in _SCALARS:
                entries.append(self._encode_scalar(item, path, index))
            else:
                entries.append(self._entry(item, child_path(path, index), ancestors))
        return self._add("list", entries)

    def _dict_node(
        self, mapping: dict[Any, Any], path: str, ancestors: set[int]
    ) -> str:
        entries = []
        for key, item in mapping.items():
            entries.append(self._codec.encode_key(key, path))
            if type(item) in _SCALARS:
                entries.append(self._encode_scalar(item, path, key))
            else:
                entries.append(self._entry(item, child_path(path, key), ancestors))
        return self._add("dict", entries)

    def _encode_scalar(self, value: object, path: str, key: object) -> str:
        # The path string is built only when it is needed for an error message.
        try:
            return self._codec.encode(value, "")
        except (TypeError, ValueError):
            return self._codec.encode(value, child_path(path, key))

    def _add(self, kind: str, entries: list[str]) -> str:
        node_id = new_node_id()
        self._specs.extend((node_id, kind, len(entries)))
        self._specs.extend(entries)
        self._count += 1
        return self._codec.encode_ref(NodeRef(kind, node_id))


# Every reference is encoded as {"$list":"<id>"} or {"$dict":"<id>"}, and a JSON
# string escapes its quotes, so a string scalar cannot contain these bytes.
_REFERENCE_MARKS = (b'{"$list":', b'{"$dict":')


def has_reference(raw: Sequence[bytes]) -> bool:
    """Return whether an entry may reference a child node.

    False means that none does. True can also come from a user codec whose
    JSON contains a reference's text, which only costs a slower read.
    """
    joined = b"\n".join(raw)
    return any(mark in joined for mark in _REFERENCE_MARKS)


def decode_entries(codec: Codec, raw: Sequence[bytes], where: str) -> list[Any]:
    """Decode many entries at once; a reference becomes a :class:`NodeRef`.

    Plain scalars are parsed by one ``json.loads`` call over the joined
    entries, over ten times faster than one call per entry for 100,000 of them
    (figures in docs/architecture.md). Tagged values are then decoded one by one.
    """
    return _decode(codec, raw, where)[0]


def _decode(codec: Codec, raw: Sequence[bytes], where: str) -> tuple[list[Any], bool]:
    """Return the decoded entries and whether any of them was a tagged value."""
    if not raw:
        return [], False
    joined = b",".join(raw)
    values: list[Any] | None
    try:
        values = json.loads(b"[" + joined + b"]")
    except ValueError:
        values = None
    if values is None or len(values) != len(raw):
        decoded = [
            codec.decode(item, f"{where}[{index}]") for index, item in enumerate(raw)
        ]
        return decoded, True

    # Tagged values are JSON objects, so text without "{" has none. Searching the
    # bytes skips a Python loop that took 6 ms for 100,000 entries.
    if b"{" not in joined and b"[" not in joined:
        return values, False
    tagged = False
    for index, value in enumerate(values):
        if type(value) is dict or type(value) is list:
            values[index] = codec.decode(raw[index], f"{where}[{index}]")
            tagged = True
    return values, tagged


def parse_dump(dump: Sequence[Any], start: int = 0) -> NodeMap:
    """Parse a script's subtree dump (id, kind, n, n entries, ...) from ``start``."""
    nodes: NodeMap = {}
    i = start
    while i < len(dump):
        node_id = _text(dump[i])
        kind = _text(dump[i + 1])
        count = int(dump[i + 2])
        nodes[node_id] = (kind, list(dump[i + 3 : i + 3 + count]))
        i += 3 + count
    return nodes


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def to_plain(
    codec: Codec, nodes: NodeMap, ref: NodeRef, where: str
) -> list[Any] | dict[Any, Any]:
    """Build the plain list or dict of node ``ref`` from a parsed dump."""
    try:
        kind, raw = nodes[ref.node_id]
    except KeyError:
        raise CorruptValueError(
            where, ref.node_id, "references a node that does not exist"
        ) from None
    if kind == "list":
        items, tagged = _decode(codec, raw, where)
        if tagged:
            _replace_references(codec, nodes, items, where)
        return items
    keys = decode_entries(codec, raw[0::2], f"{where} keys")
    values, tagged = _decode(codec, raw[1::2], where)
    if not tagged:
        return dict(zip(keys, values, strict=True))
    result = {}
    for key, value in zip(keys, values, strict=True):
        if type(value) is NodeRef:
            value = to_plain(codec, nodes, value, f"{where}[{key!r}]")
        result[key] = value
    return result


def plain_entries(
    codec: Codec, raw: Iterable[bytes], nodes: NodeMap, where: str
) -> list[Any]:
    """Decode entries and replace every reference by its plain value from ``nodes``."""
    items, tagged = _decode(codec, list(raw), where)
    if tagged:
        _replace_references(codec, nodes, items, where)
    return items


def _replace_references(
    codec: Codec, nodes: NodeMap, items: list[Any], where: str
) -> None:
    for index, item in enumerate(items):
        if type(item) is NodeRef:
            items[index] = to_plain(codec, nodes, item, f"{where}[{index}]")
