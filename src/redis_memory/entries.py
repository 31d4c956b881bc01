"""Turning Python values into stored entries and stored entries back into values.

An entry is the text in one slot of a LIST or HASH: an encoded scalar, or a
reference to a child node. Storing a list or dict creates one node per
container, so a value is flattened into the entry for its slot plus the specs
of the nodes below it, which a script creates in the same atomic step.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from .codec import Codec, NodeRef
from .errors import CorruptValueError, RedisMemoryError
from .json_array import parse_array

__all__ = [
    "HasPath",
    "JoinedEntries",
    "NodeMap",
    "Plan",
    "array_text",
    "decode_entries",
    "decode_entries_tagged",
    "has_reference",
    "key_repr",
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
    return f"{path}[{key_repr(key)}]"


_KEY_REPR_LIMIT = 60


def key_repr(key: object) -> str:
    """Return ``repr(key)`` shortened for paths; it never raises for an int.

    ``repr`` of an int of more than 4,300 digits raises ValueError, and a path
    is built after the server has already applied a pop, so it must not fail.
    """
    try:
        text = repr(key)
    except ValueError:
        return f"<int of {key.bit_length()} bits>" if isinstance(key, int) else "<key>"
    if len(text) > _KEY_REPR_LIMIT:
        return text[: _KEY_REPR_LIMIT - 3] + "..."
    return text


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
            The value contains itself, or is nested too deeply.
        """
        if type(value) in _SCALARS:
            try:
                return self._codec.encode(value, "")
            except (TypeError, ValueError):
                return self._codec.encode(value, parent._child_path(key))
        path = parent._child_path(key)
        try:
            return self._entry(value, path, set())
        except RecursionError:
            # NOTE: flattening recurses, so the depth limit follows sys.getrecursionlimit().
            raise ValueError(
                f"cannot store {path}: it is nested too deeply to store in one "
                f"step (about {sys.getrecursionlimit() // 2} levels); store the "
                "outer levels first and add the deeper ones through the handles"
            ) from None

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
_REFERENCE_KINDS = {"$list": "list", "$dict": "dict"}


def has_reference(text: bytes) -> bool:
    """Return whether an entry of comma-joined entries may reference a child node.

    False means that none does. True can also come from a user codec whose
    JSON contains a reference's text, which only costs a slower read. A mark
    has no comma, so it cannot span two entries.
    """
    return any(mark in text for mark in _REFERENCE_MARKS)


def array_text(entries: list[bytes]) -> bytes:
    """Return ``entries`` as one JSON array text, built by one join.

    The brackets are added to the first and last entry for the join and
    taken off again, which saves two copies of the text (about 2 of the 11 ms
    that ``aslist()`` of 100,000 ints took in the benchmark's harness). So no
    other thread may read ``entries`` meanwhile: pass a list that only the
    caller holds.
    """
    if not entries:
        return b"[]"
    first, last = entries[0], entries[-1]
    entries[0] = b"[" + first
    entries[-1] = entries[-1] + b"]"
    try:
        return b",".join(entries)
    finally:
        entries[0] = first
        entries[-1] = last


class JoinedEntries(list[bytes]):
    """A node's entries together with their text as one JSON array.

    Joining 100,000 entries took about 3.5 ms right after reading them, so a
    reader that has joined them once passes the text on to the decoder with them.
    """

    __slots__ = ("array",)

    def __init__(self, entries: Iterable[bytes], array: bytes) -> None:
        super().__init__(entries)
        self.array = array


def decode_entries(codec: Codec, raw: Sequence[bytes], where: str) -> list[Any]:
    """Decode many entries at once; a reference becomes a :class:`NodeRef`.

    Plain scalars are parsed by one ``json.loads`` call over the joined
    entries, over ten times faster than one call per entry for 100,000 of them
    (figures in docs/architecture.md). Tagged values are then decoded one by one.
    """
    return decode_entries_tagged(codec, raw, where)[0]


def decode_entries_tagged(
    codec: Codec, raw: Sequence[bytes], where: str
) -> tuple[list[Any], bool]:
    """Return the decoded entries and whether any of them was a tagged value."""
    if not raw:
        return [], False
    text = b"[" + b",".join(raw) + b"]"
    values = parse_array(text)
    if values is None or len(values) != len(raw):
        decoded = [
            codec.decode(item, f"{where}[{index}]") for index, item in enumerate(raw)
        ]
        return decoded, True

    # Tagged values are JSON objects, so text without "{" has none. Searching the
    # bytes skips a Python loop that took 6 ms for 100,000 entries.
    if not _may_be_tagged(text):
        return values, False
    tagged = False
    for index, value in enumerate(values):
        if type(value) is dict or type(value) is list:
            values[index] = codec.decode(raw[index], f"{where}[{index}]")
            tagged = True
    return values, tagged


def parse_dump(dump: Sequence[Any], start: int = 0) -> NodeMap:
    """Parse a script's subtree dump (id, kind, [entries], ...) from ``start``."""
    nodes: NodeMap = {}
    for i in range(start, len(dump) - 2, 3):
        node_id, kind, entries = dump[i], dump[i + 1], dump[i + 2]
        if type(node_id) is bytes:
            node_id, kind = node_id.decode(), kind.decode()
        nodes[node_id] = (kind, entries if type(entries) is list else list(entries))
    return nodes


def to_plain(
    codec: Codec, nodes: NodeMap, ref: NodeRef, where: str
) -> list[Any] | dict[Any, Any]:
    """Build the plain list or dict of node ``ref`` from a parsed dump."""
    try:
        return _Assembler(codec, nodes).build(ref, where)
    except RecursionError:
        # NOTE: assembling recurses, so the depth limit follows sys.getrecursionlimit().
        raise ValueError(
            f"cannot copy {where} into plain values: it is nested more than about "
            f"{sys.getrecursionlimit() // 2} levels deep; read it level by level "
            "through the handles instead"
        ) from None


def plain_entries(
    codec: Codec, raw: Iterable[bytes], nodes: NodeMap, where: str
) -> list[Any]:
    """Decode entries and replace every reference by its plain value from ``nodes``."""
    items, tagged = decode_entries_tagged(codec, list(raw), where)
    if tagged:
        assembler = _Assembler(codec, nodes)
        for index, item in enumerate(items):
            if type(item) is NodeRef:
                items[index] = assembler.build(item, f"{where}[{index}]")
    return items


class _Assembler:
    """Builds plain values from a parsed dump whose entries are decoded together.

    One ``json.loads`` over the entries of every node took 4.5 ms for a dump
    of 2,001 nodes and 100,000 scalars, against 13 ms for one call per node.
    A node whose text does not parse, or whose tagged values fail to decode,
    is decoded again on its own, so that its error names the exact path.
    """

    __slots__ = ("_codec", "_decoded", "_nodes")

    def __init__(self, codec: Codec, nodes: NodeMap) -> None:
        self._codec = codec
        self._nodes = nodes
        self._decoded: dict[str, tuple[list[Any], bool]] | None = None

    def build(self, ref: NodeRef, where: str) -> list[Any] | dict[Any, Any]:
        """Return the plain value of node ``ref``, whose display path is ``where``."""
        try:
            kind, raw = self._nodes[ref.node_id]
        except KeyError:
            raise CorruptValueError(
                where, ref.node_id, "references a node that does not exist"
            ) from None
        if self._decoded is None:
            self._decoded = _decode_nodes(self._codec, self._nodes)
        # Each node is built once, so its decoded entries need no copy.
        known = self._decoded.pop(ref.node_id, None)

        if kind == "list":
            if known is None:
                items, tagged = decode_entries_tagged(self._codec, raw, where)
            else:
                items, tagged = known
            if tagged:
                for index, item in enumerate(items):
                    if type(item) is NodeRef:
                        items[index] = self.build(item, f"{where}[{index}]")
            return items

        if known is None:
            keys = decode_entries(self._codec, raw[0::2], f"{where} keys")
            values, tagged = decode_entries_tagged(self._codec, raw[1::2], where)
        else:
            keys, values, tagged = known[0][0::2], known[0][1::2], known[1]
        if not tagged:
            return dict(zip(keys, values, strict=True))
        result = {}
        for key, value in zip(keys, values, strict=True):
            if type(value) is NodeRef:
                value = self.build(value, f"{where}[{key_repr(key)}]")
            result[key] = value
        return result


def _decode_nodes(codec: Codec, nodes: NodeMap) -> dict[str, tuple[list[Any], bool]]:
    """Return each node's decoded entries and whether any was tagged, decoded together.

    Nodes left out are to be decoded one by one: all of them when the joined
    text does not parse, and those whose tagged values fail to decode.
    """
    if len(nodes) == 1:
        # One node, such as a whole flat list: its text may come joined already.
        ((node_id, (_, raw)),) = nodes.items()
        text = raw.array if type(raw) is JoinedEntries else array_text(list(raw))
        values = parse_array(text)
        if values is None or len(values) != len(raw):
            return {}
        tagged = _may_be_tagged(text)
        if tagged and not _decode_tagged(codec, raw, values):
            return {}
        return {node_id: (values, tagged)}

    parts = [b",".join(raw) for _, raw in nodes.values()]
    values = parse_array(b"[" + b",".join(part for part in parts if part) + b"]")
    if values is None or len(values) != sum(len(raw) for _, raw in nodes.values()):
        return {}

    decoded: dict[str, tuple[list[Any], bool]] = {}
    offset = 0
    for (node_id, (_, raw)), part in zip(nodes.items(), parts, strict=True):
        items = values[offset : offset + len(raw)]
        offset += len(raw)
        tagged = b"{" in part or b"[" in part
        if tagged and not _decode_tagged(codec, raw, items):
            continue
        decoded[node_id] = (items, tagged)
    return decoded


def _may_be_tagged(text: bytes) -> bool:
    """Return whether a JSON array text of entries may hold a tagged value.

    Tagged values are JSON objects, and an entry that is a JSON array is
    rejected by the codec, so text without "{" or "[" between the array's own
    brackets has neither. Searching the bytes skips a Python loop that took
    6 ms for 100,000 entries.
    """
    return b"{" in text or text.find(b"[", 1, len(text) - 1) != -1


def _decode_tagged(codec: Codec, raw: Sequence[bytes], items: list[Any]) -> bool:
    """Decode the tagged values among ``items`` in place; return False on an error.

    A reference, ``{"$list": "<id>"}`` or ``{"$dict": "<id>"}`` once parsed,
    becomes a NodeRef here, without parsing its text again in the codec. Its
    id is not checked, because the assembler only looks it up among the
    dump's node ids, which the script matched as hex digits.
    """
    for index, value in enumerate(items):
        if type(value) is dict and len(value) == 1:
            ((tag, node_id),) = value.items()
            kind = _REFERENCE_KINDS.get(tag)
            if kind is not None and type(node_id) is str:
                items[index] = NodeRef(kind, node_id)
                continue
        if type(value) is dict or type(value) is list:
            try:
                items[index] = codec.decode(raw[index], "")
            except (RedisMemoryError, TypeError, ValueError):
                return False
    return True
