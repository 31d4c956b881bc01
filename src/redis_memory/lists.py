"""SyncedList: the list API over one stored Redis LIST.

Every mutation is one atomic script call. Reads return live handles for
nested lists and dicts and plain values for scalars; slices, ``copy()`` and
``aslist()`` return plain lists.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable, Iterable, Iterator, MutableSequence
from typing import Any, SupportsIndex, overload

from .cache import MISS
from .codec import NodeRef
from .entries import decode_entries, decode_entries_tagged, plain_entries
from .node import Node, is_shareable
from .store import list_digest

__all__ = ["SyncedList"]

# How often sort(), remove() and *= read again after another writer changed the list.
_MAX_CONFLICTS = 50
# The read cache's key for a list's items as a whole.
_ITEMS = object()


class _Child:
    """Stands for a nested node in comparisons with a scalar: equal to nothing else."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return other is self

    __hash__ = object.__hash__


_CHILD = _Child()


def _index(index: Any) -> int:
    """Return an item index as ``list.__getitem__`` and ``__setitem__`` take it."""
    try:
        position = operator.index(index)
    except TypeError:
        raise TypeError(
            f"list indices must be integers or slices, not {type(index).__name__}"
        ) from None
    if not -sys.maxsize - 1 <= position <= sys.maxsize:
        raise IndexError("cannot fit 'int' into an index-sized integer")
    return position


def _argument(index: Any) -> int:
    """Return an index argument as ``list.insert`` and ``list.pop`` take it."""
    try:
        position = operator.index(index)
    except TypeError:
        raise TypeError(
            f"'{type(index).__name__}' object cannot be interpreted as an integer"
        ) from None
    if not -sys.maxsize - 1 <= position <= sys.maxsize:
        raise OverflowError("Python int too large to convert to C ssize_t")
    return position


def _slice_parts(item: slice) -> tuple[int | None, int | None, int]:
    parts: list[int | None] = []
    for part in (item.start, item.stop):
        if part is None:
            parts.append(None)
            continue
        try:
            parts.append(operator.index(part))
        except TypeError:
            raise TypeError(
                "slice indices must be integers or None or have an __index__ method"
            ) from None
    step = 1 if item.step is None else _index(item.step)
    if step == 0:
        raise ValueError("slice step cannot be zero")
    return parts[0], parts[1], step


def _plain(value: Any) -> Any:
    return value._plain() if isinstance(value, Node) else value


class SyncedList(Node, MutableSequence[Any], kind="list"):
    """A list stored in Redis; every change is written at once.

    Obtain one by reading a stored list, for example ``mem.tasks`` after
    ``mem.tasks = [1, 2]``. Assigning a value copies it into Redis. Costs: one
    round trip per call. ``append``, ``pop()`` and ``insert(0, x)`` do O(1)
    work on the server, index access and middle inserts O(min(i, n - i)), and
    whole-list operations O(n).
    """

    __slots__ = ()

    # -- reads ----------------------------------------------------------------

    def __len__(self) -> int:
        return self._store.length(self)

    @overload
    def __getitem__(self, index: SupportsIndex) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            start, stop, step = _slice_parts(index)
            raw, nodes = self._store.list_slice(self, start, stop, step)
            return plain_entries(self._store.codec, raw, nodes, self._path)
        position = _index(index)
        return self._decode(self._store.list_get(self, position), position)

    def __iter__(self) -> Iterator[Any]:
        # Unlike a list's iterator, this one reads every item when it is created.
        cache = self._store.cache
        if cache is None:
            return iter(self._items()[0])
        items = cache.value(self, _ITEMS)
        if items is MISS:
            epoch = cache.epoch()
            values, shareable = self._items()
            items = tuple(values)
            if shareable:
                cache.keep_value(epoch, self, _ITEMS, items)
        return iter(items)

    def _items(self) -> tuple[list[Any], bool]:
        """Return the items, nested values as handles, and whether all are shareable."""
        raw = self._store.entries(self)
        values, tagged = decode_entries_tagged(self._store.codec, raw, self._path)
        if not tagged:
            # Untagged entries are JSON scalars: str, int, float, bool or None.
            return values, True
        shareable = True
        for index, value in enumerate(values):
            if type(value) is NodeRef:
                values[index] = self._wrap(value, index)
            elif shareable and not is_shareable(value):
                shareable = False
        return values, shareable

    def __reversed__(self) -> Iterator[Any]:
        return reversed(list(self))  # type: ignore[no-any-return]

    def __contains__(self, value: object) -> bool:
        return any(item is value or item == value for item in self._comparable(value))

    def index(
        self, value: Any, start: SupportsIndex = 0, stop: SupportsIndex = sys.maxsize
    ) -> int:
        """Return the first index of ``value``; raise ValueError if it is not present."""
        for bound in (start, stop):
            if not hasattr(type(bound), "__index__"):
                raise TypeError(
                    "slice indices must be integers or have an __index__ method"
                )
        items = self._comparable(value)
        for position in range(*slice(start, stop).indices(len(items))):
            item = items[position]
            if item is value or item == value:
                return position
        raise ValueError(f"{value!r} is not in list")

    def count(self, value: Any) -> int:
        """Return the number of occurrences of ``value``."""
        return sum(
            1 for item in self._comparable(value) if item is value or item == value
        )

    def _comparable(self, value: object) -> list[Any]:
        return self._snapshot(value)[1]

    def aslist(self) -> list[Any]:
        """Return a plain list copy, nested lists and dicts included (one round trip)."""
        return self._plain()  # type: ignore[no-any-return]

    def copy(self) -> list[Any]:
        """Return a plain list copy, like ``aslist()``."""
        return self._plain()  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return repr(self._plain())

    # -- comparisons and operators --------------------------------------------

    def _other(self, other: object) -> list[Any] | None:
        if isinstance(other, SyncedList):
            return other._plain()  # type: ignore[no-any-return]
        if isinstance(other, list):
            return other
        return None

    def _compare(self, other: object, op: Callable[[Any, Any], bool]) -> bool:
        plain = self._other(other)
        if plain is None:
            return NotImplemented  # type: ignore[no-any-return]
        return op(self._plain(), plain)

    def __lt__(self, other: object) -> bool:
        return self._compare(other, operator.lt)

    def __le__(self, other: object) -> bool:
        return self._compare(other, operator.le)

    def __gt__(self, other: object) -> bool:
        return self._compare(other, operator.gt)

    def __ge__(self, other: object) -> bool:
        return self._compare(other, operator.ge)

    def __add__(self, other: object) -> list[Any]:
        plain = self._other(other)
        if plain is None:
            raise TypeError(
                f'can only concatenate list (not "{type(other).__name__}") to list'
            )
        return self._plain() + plain  # type: ignore[no-any-return]

    def __radd__(self, other: object) -> list[Any]:
        plain = self._other(other)
        if plain is None:
            return NotImplemented
        return plain + self._plain()  # type: ignore[no-any-return]

    def __mul__(self, count: SupportsIndex) -> list[Any]:
        return self._plain() * operator.index(count)  # type: ignore[no-any-return]

    __rmul__ = __mul__

    def __iadd__(self, values: Iterable[Any]) -> SyncedList:  # type: ignore[override,misc]
        self.extend(values)
        return self

    def __imul__(self, count: SupportsIndex) -> SyncedList:  # type: ignore[override,misc]
        times = operator.index(count)
        if times <= 0:
            self.clear()
            return self
        for _ in range(_MAX_CONFLICTS):
            nodes = self._store.tree(self)
            raw = nodes[self._id][1]
            plain = plain_entries(self._store.codec, raw, nodes, self._path)
            plan = self._store.plan()
            entries: list[bytes | str] = list(raw)
            # Every repeat of a nested list or dict becomes a new node, never a shared one.
            for _ in range(times - 1):
                entries.extend(
                    plan.entry(item, self, i) for i, item in enumerate(plain)
                )
            if self._store.list_rewrite(self, list_digest(raw), entries, plan, "imul"):
                return self
        raise _conflict("*=", self._path)

    # -- writes ---------------------------------------------------------------

    @overload
    def __setitem__(self, index: SupportsIndex, value: Any) -> None: ...

    @overload
    def __setitem__(self, index: slice, value: Iterable[Any]) -> None: ...

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            start, stop, step = _slice_parts(index)
            if value is self:
                values = self._plain()
            else:
                try:
                    values = list(value)
                except TypeError:
                    message = "can only assign an iterable"
                    if step != 1:
                        message = "must assign iterable to extended slice"
                    raise TypeError(message) from None
            self._store.list_slice_set(self, start, stop, step, values)
            return
        position = _index(index)
        if isinstance(value, Node) and value._same_namespace(self):
            # l[i] += x assigns the handle that __iadd__ returned back to l[i].
            try:
                if value._is_entry(self._store.list_get(self, position)):
                    return
            except IndexError:
                pass  # list_set below raises the assignment's own IndexError
        self._store.list_set(self, position, value)

    def __delitem__(self, index: Any) -> None:
        if isinstance(index, slice):
            start, stop, step = _slice_parts(index)
            self._store.list_slice_del(self, start, stop, step)
            return
        self._store.list_pop(self, _index(index), delete=True, want_value=False)

    def append(self, value: Any) -> None:
        """Append ``value`` (a copy of it, for lists and dicts). O(1)."""
        self._store.list_push(self, (value,), front=False, operation="append")

    def extend(self, values: Iterable[Any]) -> None:
        """Append every item of ``values`` in one atomic step."""
        items = self._plain() if values is self else list(values)
        if items:
            self._store.list_push(self, items, front=False, operation="extend")

    def insert(self, index: SupportsIndex, value: Any) -> None:
        """Insert ``value`` before ``index``. O(1) at either end, else O(min(i, n - i))."""
        position = _argument(index)
        self._store.list_insert(self, position, value)

    def pop(self, index: SupportsIndex = -1) -> Any:
        """Remove and return the item at ``index``; a nested list or dict comes back plain."""
        position = _argument(index)
        raw, nodes = self._store.list_pop(self, None if position == -1 else position)
        value = self._store.codec.decode(raw, self._child_path(position))
        if type(value) is NodeRef:
            return _to_plain(self, nodes, value, position)
        return value

    def remove(self, value: Any) -> None:
        """Remove the first item equal to ``value``; raise ValueError if there is none."""
        for _ in range(_MAX_CONFLICTS):
            raw, items = self._snapshot(value)
            position = next(
                (i for i, item in enumerate(items) if item is value or item == value),
                None,
            )
            if position is None:
                raise ValueError("list.remove(x): x not in list")
            if self._store.list_remove_at(self, position, raw[position]):
                return
        raise _conflict("remove()", self._path)

    def _snapshot(self, value: object) -> tuple[list[bytes], list[Any]]:
        """Return the entries and the items to compare with ``value``, from one read.

        A container may equal a nested list or dict, so those need the whole
        tree; a scalar never equals one, so this node's entries are enough.
        """
        if isinstance(value, (list, dict, Node)):
            nodes = self._store.tree(self)
            raw = nodes[self._id][1]
            return raw, plain_entries(self._store.codec, raw, nodes, self._path)
        raw = self._store.entries(self)
        decoded = decode_entries(self._store.codec, raw, self._path)
        return raw, [_CHILD if type(item) is NodeRef else item for item in decoded]

    def clear(self) -> None:
        """Remove every item, and every nested list or dict with it."""
        self._store.list_rewrite(self, b"", [], self._store.plan(), "clear")

    def reverse(self) -> None:
        """Reverse the list in place, in one atomic step."""
        self._store.list_reverse(self)

    def sort(
        self, *, key: Callable[[Any], Any] | None = None, reverse: bool = False
    ) -> None:
        """Sort in place, stably, as ``list.sort`` does.

        The items are read, sorted here (``key`` receives plain copies), and
        written back in one step that checks that no other writer changed the
        list meanwhile, else it starts again. If ``key`` or a comparison raises, the
        stored list is unchanged.
        """
        for _ in range(_MAX_CONFLICTS):
            nodes = self._store.tree(self)
            raw = nodes[self._id][1]
            plain = plain_entries(self._store.codec, raw, nodes, self._path)
            if key is None:
                order = sorted(
                    range(len(plain)), key=plain.__getitem__, reverse=reverse
                )
            else:
                keys = [key(item) for item in plain]
                order = sorted(range(len(plain)), key=keys.__getitem__, reverse=reverse)
            entries = [raw[i] for i in order]
            if self._store.list_rewrite(
                self, list_digest(raw), entries, self._store.plan(), "sort"
            ):
                return
        raise _conflict("sort()", self._path)


def _to_plain(node: Node, nodes: Any, ref: NodeRef, key: object) -> Any:
    from .entries import to_plain

    return to_plain(node._store.codec, nodes, ref, node._child_path(key))


def _conflict(operation: str, path: str) -> RuntimeError:
    return RuntimeError(
        f"{operation} on {path} gave up after other processes changed the list "
        f"{_MAX_CONFLICTS} times while it ran; try again"
    )
