"""The operations on the stored nodes of one namespace, as calls of Lua scripts.

This is the only module that uses the key layout (see :mod:`redis_memory.keys`)
and the scripts' calling conventions (see ``scripts/_lib.lua``). Every method
costs one round trip, except where its docstring says otherwise.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from .cache import MISS, Bucket, ReadCache, existing_cache
from .codec import Codec
from .connection import Connection
from .entries import JoinedEntries, NodeMap, Plan, array_text, has_reference, parse_dump
from .errors import CorruptValueError, StaleReferenceError
from .keys import ROOT_ID, KeySpace
from .lua import script

if TYPE_CHECKING:
    from .node import Node

__all__ = ["Store", "list_digest"]


def list_digest(entries: Sequence[bytes]) -> bytes:
    """Return the text that ``list_rewrite`` compares to detect a concurrent change."""
    return b"\n".join(entries)


class Store:
    """Script calls on one namespace over one connection.

    Parameters
    ----------
    connection : Connection
        Where the namespace lives.
    namespace : str
        The namespace name; see :func:`redis_memory.keys.encode_namespace`.
    codec : Codec
        Encodes and decodes the scalars.
    """

    def __init__(self, connection: Connection, namespace: str, codec: Codec) -> None:
        self.connection = connection
        self.namespace = namespace
        self.codec = codec
        self.keys = KeySpace(namespace)
        self._origin = os.urandom(8).hex()
        self._origin_forks = _forks
        self._routing = (self.keys.meta,)
        # The batch (see batch.py) that the current thread has open, as ``batch``.
        self.thread_local = threading.local()
        # List node ids whose entries referenced other nodes when last read; see _fetch_list.
        self._lists_with_children: set[str] = set()
        self.cache: ReadCache | None = None

    @property
    def origin(self) -> str:
        """The id that this Store's change messages carry, which identifies its own.

        Stores that share a read cache share its origin. A forked child gets a
        new one, because it is another process: with its parent's id, each
        would take the other's change messages for its own.
        """
        cache = self.cache
        if cache is not None:
            return cache.origin
        if self._origin_forks != _forks:
            self._origin = os.urandom(8).hex()
            self._origin_forks = _forks
        return self._origin

    def cache_to_drop(self) -> ReadCache | None:
        """Return the read cache whose copies this Store's writes must drop.

        That is its own, or else the cache that a cached Memory of the same
        namespace and connection keeps in this process.
        """
        cache = self.cache
        if cache is not None and not cache.closed:
            return cache
        return existing_cache(self.connection, self.namespace)

    # -- plumbing -------------------------------------------------------------

    def plan(self) -> Plan:
        """Return an empty :class:`Plan` for values about to be stored."""
        return Plan(self.codec)

    def _read(self, name: str, node: Node | None, node_id: str, *args: Any) -> Any:
        cache = self.cache
        if cache is None:
            return self._fetch(name, node, node_id, args)
        top = ""
        bucket: Bucket
        if node_id != ROOT_ID and node is not None:
            top = node._name_field
            if name in _SUBTREE_READS:
                bucket = ("tree", top)
            else:
                bucket = ("node", node_id)
        elif name == "dict_get":
            bucket = ("name", args[0])
        else:
            bucket = None
        key = (name, node_id, args)
        reply = cache.lookup(bucket, key)
        if reply is not MISS:
            return reply
        epoch = cache.epoch()
        reply = self._fetch(name, node, node_id, args)
        cache.keep(
            epoch, bucket, key, reply, top if bucket and bucket[0] == "node" else ""
        )
        return reply

    def _fetch(
        self, name: str, node: Node | None, node_id: str, args: tuple[Any, ...]
    ) -> Any:
        if (
            name in _LIST_READS
            and node is not None
            and node._kind == "list"
            and node_id not in self._lists_with_children
        ):
            reply = self._fetch_list(name, node_id)
            if reply is not None:
                return reply
        try:
            return self.connection.script(
                script(name),
                self._routing,
                (self.keys.prefix, node_id, *args),
                write=False,
            )
        except ResponseError as exc:
            raise self._translate(exc, node) from None

    def _fetch_list(self, name: str, node_id: str) -> Any:
        """Return the reply of ``name`` for a list node, read with LRANGE, or None.

        LRANGE sends the entries as they are stored, while a script first
        converts them to Lua strings and back, which took 20 of the 26 ms that
        read_tree spent on a 100,000-element list (Valkey 8.1). A non-empty
        LIST key always belongs to a live node, because the script that
        deletes a node deletes its key too.

        The reply is None, and the script has to run, when the list is empty,
        because the node may then be deleted. It is None for read_tree when
        the list references other nodes, too. Such lists are remembered, so
        that their next read_tree costs one round trip again.
        """
        entries = self.connection.command("LRANGE", self.keys.node(node_id), 0, -1)
        if not entries:
            return None
        if name == "node_entries":
            return list(entries)
        text = array_text(entries)
        if has_reference(text):
            # Later reads of this list's tree go straight to the script.
            children = self._lists_with_children
            if len(children) >= _MAX_LISTS_WITH_CHILDREN:
                children.clear()  # one call, so safe from several threads
            children.add(node_id)
            return None
        # The dump of one node, already parsed (see tree()).
        return {node_id: ("list", JoinedEntries(entries, text))}

    def _write(
        self,
        name: str,
        node: Node,
        operation: str,
        *args: Any,
        field: str = "",
        nested: bool | None = True,
    ) -> Any:
        """Run a write script; ``field`` names the top-level name a root operation changes.

        ``nested`` is whether the change may replace or delete nested nodes.
        If so, the read cache drops everything under the top-level name, else
        only what reads this node. None means that the lowest bit of the
        script's integer reply is that flag.
        """
        name_field = node._name_field or field
        cache = self.cache_to_drop()
        header = (
            self.keys.prefix,
            self.origin,
            name_field,
            node._path_json(),
            int(time.time() * 1000),
            node._id,
            operation,
        )
        batch = getattr(self.thread_local, "batch", None)
        if batch is not None:
            return batch.add(name, node, operation, (*header, *args))
        reply = None
        # Whether the server may still apply the change after this call ends.
        unsure = True
        try:
            reply = self.connection.script(
                script(name),
                self._routing,
                (*header, *args),
                write=True,
                carrier=(
                    cache.carrier()
                    if cache is not None and name not in _UNBOUNDED_REPLIES
                    else None
                ),
            )
            unsure = False
            return reply
        except ResponseError as exc:
            unsure = False
            raise self._translate(exc, node) from None
        finally:
            # Also after a failure, because a change whose reply was lost may have applied.
            if cache is not None:
                if nested is None and reply is not None:
                    nested = bool(int(reply) & 1)
                if nested is False and node._name_field:
                    cache.drop_node(node._name_field, node._id)
                else:
                    cache.drop(name_field or None)
                cache.after_write()
                if unsure:
                    cache.after_unsure_write()

    def _translate(self, exc: ResponseError, node: Node | None) -> Exception:
        where = node._path if node is not None else self.namespace
        text = str(exc)
        if text.startswith("WRONGTYPE"):
            return CorruptValueError(
                where,
                self.keys.prefix,
                "a key of this namespace holds another kind of Redis value, so "
                "something else wrote under the library's keys; delete that key "
                "with redis-cli or store the value again",
            )
        match = _SCRIPT_ERROR.search(text)
        if match is None:
            return exc
        code, detail = match.group(1), match.group(2)
        if code == "RM_STALE":
            if node is not None and node._is_dangling():
                return CorruptValueError(
                    where,
                    self.keys.prefix,
                    f"the entry references node {node._id}, a node that does not "
                    "exist, so something else changed the library's keys; store "
                    "the value again",
                )
            return StaleReferenceError(where)
        if code == "RM_INDEX":
            return IndexError(detail)
        if code == "RM_VALUE":
            return ValueError(detail)
        if code == "RM_CORRUPT":
            return CorruptValueError(where, self.keys.prefix, detail)
        if code == "RM_IDCOLLISION":
            return RuntimeError(
                "two nodes got the same random id; repeat the operation"
            )
        return exc

    # -- reads ----------------------------------------------------------------

    def length(self, node: Node) -> int:
        """Return the number of entries of ``node``."""
        return int(self._read("node_len", node, node._id))

    def entries(self, node: Node) -> list[bytes]:
        """Return the entries of ``node`` (dict: field, value pairs in order)."""
        return list(self._read("node_entries", node, node._id))

    def tree(self, node: Node) -> NodeMap:
        """Return the parsed dump of ``node`` and every node below it."""
        reply = self._read("read_tree", node, node._id)
        # A flat list read with LRANGE comes parsed already; see _fetch_list.
        return reply if type(reply) is dict else parse_dump(reply)

    def list_get(self, node: Node, index: int) -> bytes:
        """Return the entry at ``index``; raise IndexError as a list does."""
        return bytes(self._read("list_get", node, node._id, _clamp(index)))

    def list_slice(
        self, node: Node, start: int | None, stop: int | None, step: int
    ) -> tuple[list[bytes], NodeMap]:
        """Return the entries of a slice and the dump of the nodes they reference."""
        reply = self._read(
            "list_slice_get", node, node._id, *_slice_args(start, stop, step)
        )
        count = int(reply[0])
        return list(reply[1 : count + 1]), parse_dump(reply, count + 1)

    def dict_get(
        self, node: Node, aliases: Sequence[str]
    ) -> tuple[bytes, bytes] | None:
        """Return (field, entry) of the first alias present, or None."""
        reply = self._read("dict_get", node, node._id, *aliases)
        if reply is None:
            return None
        return reply[0], reply[1]

    def raw_root_field(self, field: str) -> bytes | None:
        """Return the entry of a top-level field without the liveness check."""
        reply = self.connection.command("HGET", self.keys.node(ROOT_ID), field)
        return None if reply is None else bytes(reply)

    def mtimes(self) -> dict[bytes, int]:
        """Return the last change time (ms since the epoch) of every top-level field."""
        reply = self.connection.command("HGETALL", self.keys.mtime)
        if isinstance(reply, dict):
            return {bytes(k): int(v) for k, v in reply.items()}
        return {bytes(reply[i]): int(reply[i + 1]) for i in range(0, len(reply), 2)}

    # -- dict writes ----------------------------------------------------------

    def dict_update(
        self, node: Node, items: Iterable[tuple[Any, Any]], operation: str
    ) -> int:
        """Set every (key, value) of ``items`` in one atomic step; return keys added."""
        plan = self.plan()
        args: list[Any] = []
        count = 0
        first_field = ""
        for key, value in items:
            aliases = self.codec.key_aliases(key, node._path)
            args.append(len(aliases))
            args.extend(aliases)
            args.append(plan.entry(value, node, key))
            count += 1
            first_field = aliases[0]
        # A change message names the top-level name only when there is exactly one.
        field = first_field if count == 1 else ""
        reply = self._write(
            "dict_update",
            node,
            operation,
            count,
            *args,
            *plan.specs(),
            field=field,
            nested=None,
        )
        return int(reply) >> 1

    def dict_setdefault(self, node: Node, key: Any, default: Any) -> tuple[bool, bytes]:
        """Store ``default`` under ``key`` unless present; return (inserted, entry)."""
        aliases = self.codec.key_aliases(key, node._path)
        plan = self.plan()
        entry = plan.entry(default, node, key)
        reply = self._write(
            "dict_setdefault",
            node,
            "setdefault",
            len(aliases),
            *aliases,
            entry,
            *plan.specs(),
            field=aliases[0],
            nested=False,
        )
        return bool(int(reply[0])), bytes(reply[1])

    def dict_pop(
        self, node: Node, key: Any, *, last: bool = False, want_value: bool = True
    ) -> tuple[bytes, bytes, NodeMap] | None:
        """Remove ``key`` (or the last key when ``last``); return (field, entry, dump)."""
        field = ""
        if last:
            args: tuple[Any, ...] = ("last", "1" if want_value else "0")
            operation = "popitem"
        else:
            aliases = self.codec.key_aliases(key, node._path)
            args = ("key", "1" if want_value else "0", *aliases)
            operation = "pop" if want_value else "delitem"
            field = aliases[0]
        reply = self._write("dict_pop", node, operation, *args, field=field)
        if reply is None:
            return None
        return bytes(reply[0]), bytes(reply[1]), parse_dump(reply, 2)

    def dict_clear(self, node: Node) -> int:
        """Remove every key of ``node``; return how many there were."""
        return int(self._write("dict_clear", node, "clear"))

    # -- list writes ----------------------------------------------------------

    def list_push(
        self, node: Node, values: Sequence[Any], *, front: bool, operation: str
    ) -> int:
        """Append ``values`` (or prepend them when ``front``); return the new length."""
        side = "L" if front else "R"
        if len(values) == 1 and type(values[0]) in _PLAIN_SCALARS:
            # The common append of one scalar creates no node, so it skips the
            # Plan, which took 0.6 of the 0.75 us spent here. As Plan.entry
            # does, it builds the path only for an error message.
            value = values[0]
            try:
                entry = self.codec.encode(value, "")
            except (TypeError, ValueError):
                entry = self.codec.encode(value, _NewItems(node._path)._child_path(0))
            reply = self._write(
                "list_push", node, operation, side, 1, entry, 0, nested=False
            )
            return int(reply)

        plan = self.plan()
        parent = _NewItems(node._path)
        entries = [
            plan.entry(value, parent, index) for index, value in enumerate(values)
        ]
        return int(
            self._write(
                "list_push",
                node,
                operation,
                side,
                len(entries),
                *entries,
                *plan.specs(),
                nested=False,
            )
        )

    def list_insert(self, node: Node, index: int, value: Any) -> int:
        """Insert ``value`` before ``index`` as list.insert does; return its index."""
        plan = self.plan()
        entry = plan.entry(value, node, index)
        return int(
            self._write(
                "list_insert",
                node,
                "insert",
                _clamp(index),
                entry,
                *plan.specs(),
                nested=False,
            )
        )

    def list_set(self, node: Node, index: int, value: Any) -> None:
        """Replace the entry at ``index``."""
        plan = self.plan()
        entry = plan.entry(value, node, index)
        self._write(
            "list_set",
            node,
            "setitem",
            _clamp(index),
            entry,
            *plan.specs(),
            nested=None,
        )

    def list_pop(
        self,
        node: Node,
        index: int | None,
        *,
        delete: bool = False,
        want_value: bool = True,
    ) -> tuple[bytes, NodeMap]:
        """Remove the entry at ``index`` (None: the last); return it and its dump."""
        where = "" if index is None else _clamp(index)
        mode = "del" if delete else "pop"
        reply = self._write(
            "list_pop",
            node,
            "delitem" if delete else "pop",
            where,
            mode,
            "1" if want_value else "0",
        )
        return bytes(reply[0]), parse_dump(reply, 1)

    def list_slice_set(
        self,
        node: Node,
        start: int | None,
        stop: int | None,
        step: int,
        values: Sequence[Any],
    ) -> None:
        """Assign ``values`` to a slice as list slice assignment does."""
        plan = self.plan()
        parent = _NewItems(node._path)
        entries = [
            plan.entry(value, parent, index) for index, value in enumerate(values)
        ]
        self._write(
            "list_slice_set",
            node,
            "setslice",
            *_slice_args(start, stop, step),
            len(entries),
            *entries,
            *plan.specs(),
        )

    def list_slice_del(
        self, node: Node, start: int | None, stop: int | None, step: int
    ) -> int:
        """Delete a slice; return how many entries went."""
        return int(
            self._write(
                "list_slice_del", node, "delslice", *_slice_args(start, stop, step)
            )
        )

    def list_rewrite(
        self,
        node: Node,
        digest: bytes,
        entries: Sequence[bytes | str],
        plan: Plan,
        operation: str,
    ) -> bool:
        """Replace all entries if the list still has ``digest`` (``clear`` skips the check).

        Return False when another writer changed the list since it was read.
        """
        reply = self._write(
            "list_rewrite",
            node,
            operation,
            digest,
            len(entries),
            *entries,
            *plan.specs(),
        )
        return bool(int(reply))

    def list_reverse(self, node: Node) -> None:
        """Reverse the list in place."""
        self._write("list_reverse", node, "reverse", nested=False)

    def list_remove_at(self, node: Node, index: int, expected: bytes) -> bool:
        """Delete the entry at ``index`` if it still is ``expected``."""
        return bool(int(self._write("list_remove_at", node, "remove", index, expected)))

    # -- the change feed ------------------------------------------------------

    def version(self) -> int:
        """Return the namespace's version counter (0 before the first change)."""
        reply = self.connection.command("GET", self.keys.version)
        return 0 if reply is None else int(reply)


# The number of fork() calls that led to this process, for Store.origin.
_forks = 0


def _count_fork() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_count_fork)

# Reads that _fetch_list serves for list nodes without running the script.
_LIST_READS = frozenset({"node_entries", "read_tree"})
# The maximum number of list nodes with children a Store records; past it the record is cleared.
_MAX_LISTS_WITH_CHILDREN = 4096

# A script's error reply: the server adds the script's position before the code
# and its SHA-1 (or, in fakeredis, a Lua traceback) after the message.
_SCRIPT_ERROR = re.compile(r"\b(RM_[A-Z]+)\b ?(.*?)(?: script: |\n|$)")


# Python types whose values are stored as one encoded entry, never as a node.
_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})

_INDEX_LIMIT = 2**62

# Reads whose reply contains nested nodes' entries, so that a change anywhere
# under the top-level name can alter it.
_SUBTREE_READS = frozenset({"read_tree", "list_slice_get"})

# Writes whose reply contains stored values, of any size. They never go on the
# read cache's subscription: the server closes a subscribed connection whose
# output passes client-output-buffer-limit pubsub (32 MB by default), and a
# change whose reply is lost so cannot be repeated.
_UNBOUNDED_REPLIES = frozenset({"list_pop", "dict_pop", "dict_setdefault"})


def _clamp(index: int) -> int:
    # Lua numbers are doubles; clamping keeps huge indexes out of range without overflow.
    return max(-_INDEX_LIMIT, min(_INDEX_LIMIT, index))


def _slice_args(start: int | None, stop: int | None, step: int) -> tuple[Any, Any, int]:
    return (
        "" if start is None else _clamp(start),
        "" if stop is None else _clamp(stop),
        _clamp(step),
    )


class _NewItems:
    """Names the values being added to a list in error messages, by their offset."""

    __slots__ = ("_path",)

    def __init__(self, path: str) -> None:
        self._path = path

    def _child_path(self, key: object) -> str:
        return f"{self._path}[<new item {key}>]"
