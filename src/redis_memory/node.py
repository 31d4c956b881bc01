"""The base of SyncedList and SyncedDict: a handle on one stored node.

A handle is (store, node id, display path) and keeps no copy of the data.
Reads go to Redis, or to the read cache that the change feed keeps coherent
(see :mod:`redis_memory.cache`), so they see other processes' writes. When the node
is deleted or replaced, by this process or another, the handle's operations
raise :class:`~redis_memory.errors.StaleReferenceError`; read the value again
from its parent.
"""

from __future__ import annotations

import datetime
import json
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from .codec import NodeRef
from .entries import key_repr, to_plain

if TYPE_CHECKING:
    from .store import Store

__all__ = ["Node", "is_shareable"]

# Decoded types whose values cannot be changed, so the read cache can hand the
# same object to every caller. Tuples and frozensets are left out, because a
# tuple may contain a set.
_IMMUTABLE = frozenset(
    {
        str,
        int,
        float,
        bool,
        type(None),
        bytes,
        complex,
        Decimal,
        datetime.datetime,
        datetime.date,
        datetime.time,
        datetime.timedelta,
        uuid.UUID,
    }
)


class Node:
    """A live handle on one stored list or dict node."""

    __slots__ = (
        "__weakref__",
        "_id",
        "_key",
        "_name_field",
        "_parent",
        "_path",
        "_path_text",
        "_store",
    )

    _kinds: ClassVar[dict[str, type[Node]]] = {}
    _kind: ClassVar[str]

    def __init_subclass__(cls, kind: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind:
            cls._kind = kind
            Node._kinds[kind] = cls

    def __init__(self, store: Store, node_id: str, path: str, name_field: str) -> None:
        self._store = store
        self._id = node_id
        self._path = path
        self._name_field = name_field
        self._path_text: str | None = None
        # Where the handle was read, to tell a deleted node from a broken reference.
        self._parent: Node | None = None
        self._key: object = None

    # -- paths ----------------------------------------------------------------

    def _child_path(self, key: object) -> str:
        return f"{self._path}[{key_repr(key)}]"

    def _path_json(self) -> str:
        if self._path_text is None:
            self._path_text = json.dumps(self._path, ensure_ascii=False)
        return self._path_text

    # -- values ---------------------------------------------------------------

    def _wrap(self, value: Any, key: object, field: bytes | str | None = None) -> Any:
        """Return a handle for a reference read at ``self[key]``, else the value."""
        if type(value) is not NodeRef:
            return value
        name_field = self._name_field
        if not name_field:
            name_field = field.decode() if isinstance(field, bytes) else (field or "")
        cls = Node._kinds[value.kind]
        handle = cls(self._store, value.node_id, self._child_path(key), name_field)
        handle._parent = self
        handle._key = key
        return handle

    def _is_dangling(self) -> bool:
        """Return whether the parent still references this missing node (corrupt data).

        A writer of this library deletes a node and its reference in one step,
        so a node that is gone while its reference stays was broken by foreign
        writes, not replaced.
        """
        parent = self._parent
        if parent is None:
            return False
        ref = self._store.codec.encode_ref(NodeRef(self._kind, self._id)).encode()
        try:
            raw = parent._store.entries(parent)
        except (LookupError, ValueError):
            return False
        return ref in raw

    def _decode(self, raw: bytes, key: object, field: bytes | None = None) -> Any:
        value = self._store.codec.decode(raw, self._child_path(key))
        return self._wrap(value, key, field)

    def _is_entry(self, raw: bytes | None) -> bool:
        """Return whether the stored entry ``raw`` is the reference to this node."""
        if raw is None:
            return False
        return (
            raw == self._store.codec.encode_ref(NodeRef(self._kind, self._id)).encode()
        )

    def _same_namespace(self, other: Node) -> bool:
        return (
            other._store.connection is self._store.connection
            and other._store.namespace == self._store.namespace
        )

    def _plain(self) -> Any:
        """Return a plain copy of the whole value, read in one round trip."""
        nodes = self._store.tree(self)
        return to_plain(
            self._store.codec, nodes, NodeRef(self._kind, self._id), self._path
        )

    # -- comparisons ----------------------------------------------------------

    def _other(self, other: object) -> Any:
        """Return ``other`` as a plain value of this node's type, or None."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        plain = self._other(other)
        if plain is None:
            return NotImplemented
        return self._plain() == plain  # type: ignore[no-any-return]

    def __ne__(self, other: object) -> bool:
        plain = self._other(other)
        if plain is None:
            return NotImplemented
        return self._plain() != plain  # type: ignore[no-any-return]

    # -- copies ---------------------------------------------------------------

    def __copy__(self) -> Any:
        return self._plain()

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self._plain()

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        # Pickling gives the plain value: a handle is only meaningful next to its server.
        plain = self._plain()
        return (type(plain), (plain,))

    __hash__ = None  # type: ignore[assignment]


def is_shareable(value: object) -> bool:
    """Return whether one decoded ``value`` may be returned to several callers.

    Immutable scalars may, and so may handles, because a handle keeps no data.
    """
    return type(value) in _IMMUTABLE or isinstance(value, Node)
