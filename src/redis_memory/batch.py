"""Batches: many changes sent in one round trip and applied in one atomic step.

Inside ``with mem._batch():`` every change made through ``mem`` and the
handles read from it is queued instead of sent. When the block ends, the queue
runs as one script call, so no other client sees a state between two of its
changes, and the whole batch costs one round trip::

    tasks = mem.tasks
    with mem._batch():
        for item in items:
            tasks.append(item)
        mem.done = False

Rules
-----
Reads
    Reads inside the block are sent at once and see the server's state
    without the queued changes: after ``mem.x = 1`` inside a batch, ``mem.x``
    still returns the old value, and ``mem.x`` for a new name raises
    AttributeError. Read handles before or inside the block and keep them.
Results
    Operations whose result is needed, ``pop()``, ``popitem()``,
    ``setdefault()``, and those that read before they write, ``remove()``,
    ``sort()`` and ``*=`` on a list, raise TypeError inside a batch, because
    their result is known only when the batch runs. ``del d[k]`` of a missing
    key raises KeyError when the batch runs, and so does ``del mem.name`` of
    a name that is not stored (AttributeError without a batch).
Errors
    When the block raises, the queue is discarded and nothing is written.
    When the batch runs, every node it changes is first checked to still
    exist, so a handle whose value another process deleted fails the batch
    with StaleReferenceError before anything is written. An operation that
    fails while the batch runs (an index out of range, a missing key, a
    node deleted by an earlier operation of the same batch) stops the batch
    there. The operations before it stay applied, the ones after it are
    skipped, and its exception is raised from the ``with`` statement, as if
    the block had run without a batch and raised at that operation.
Change messages
    Every queued call publishes its change message and bumps the version
    counter as it runs, except that consecutive appends and extends to one
    list are merged into one call: one "extend" message, one version.
Threads and nesting
    A batch belongs to the thread that opened it: changes made by other
    threads through the same ``mem`` are sent at once, as usual. A batch
    opened inside another one on the same thread joins it; if the inner
    block raises, only the changes queued inside it are discarded.
Other Memory objects
    Only changes made through this ``mem`` and the handles read from it are
    queued; another ``Memory()`` on the same namespace writes at once.
Size
    The whole queue is sent as one command and runs as one script, which
    blocks the server while it runs, a few microseconds per queued call.
    Split batches of millions of calls into smaller ones.
"""

from __future__ import annotations

import threading
from functools import cache
from importlib import resources
from types import TracebackType
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from .connection import Script
from .keys import ROOT_ID

if TYPE_CHECKING:
    from .node import Node
    from .store import Store

__all__ = ["Batch"]

# The reply that each batchable script's Store method parses, returned in its
# place while the call waits in the queue. The Store methods' results are then
# meaningless, and no public method that a batch allows uses them.
_PLACEHOLDER_REPLIES: dict[str, Any] = {
    "dict_clear": 0,
    "dict_pop": [b"", b""],
    "dict_update": 0,
    "list_insert": 0,
    "list_pop": [b""],
    "list_push": 0,
    "list_reverse": 0,
    "list_rewrite": 1,
    "list_set": 0,
    "list_slice_del": 0,
    "list_slice_set": 0,
}

_REJECTED: Any = object()

# (script, operation) pairs whose result the caller needs, by the method's name.
_NEEDS_RESULT = {
    ("list_pop", "pop"): "SyncedList.pop()",
    ("list_rewrite", "sort"): "SyncedList.sort()",
    ("list_rewrite", "imul"): "SyncedList *=",
    ("list_remove_at", "remove"): "SyncedList.remove()",
    ("dict_pop", "pop"): "SyncedDict.pop()",
    ("dict_pop", "popitem"): "SyncedDict.popitem()",
    ("dict_setdefault", "setdefault"): "SyncedDict.setdefault()",
}

# Operations for which a false reply is an error: ``del d[k]`` of a missing key.
_MISSING_IS_ERROR = frozenset({("dict_pop", "delitem")})

# Positions in a write script's arguments (0-based). Seven header fields come
# first, the last of them the operation's name. A list_push call continues
# with the side ("R" appends), the entry count, the entries and the node specs.
# A dict_pop call continues with "key", the flag that requests the value, and
# the key's aliases.
_HEADER_OPERATION = 6
_PUSH_SIDE = 7
_DICT_POP_ALIAS = 9

_RUNNER = """
-- Run the queued operations in order. BATCH[1] is the key prefix, BATCH[2]
-- the count of node ids that must exist before anything is written, then the
-- ids; then per operation: script name, '1' when a false reply is an error,
-- argument count, arguments. Return {operations done, error text, index of
-- the missing node id when the check failed}.
-- A queue of thousands of calls keeps a large ARGV alive, and every garbage
-- collection cycle marks all of it. A higher pause makes cycles rarer, which
-- halved the time per call in a 10,000-call batch on Valkey 8.1; it is set
-- back before returning.
local pause = collectgarbage('setpause', 400)
local function finish(reply)
  collectgarbage('setpause', pause)
  return reply
end
local i = 3
for k = 1, tonumber(BATCH[2]) do
  local id = BATCH[i]
  if redis.call('HEXISTS', META, id) == 0 then return finish({0, 'RM_STALE', k}) end
  i = i + 1
end
local done = 0
while i <= #BATCH do
  local name, strict, n = BATCH[i], BATCH[i + 1], tonumber(BATCH[i + 2])
  local args = {}
  for j = 1, n do args[j] = BATCH[i + 2 + j] end
  ARGV = args
  local ok, reply = pcall(OPS[name])
  if not ok then
    if type(reply) == 'table' then reply = reply.err end
    return finish({done, tostring(reply)})
  end
  if strict == '1' and not reply then return finish({done, 'RM_MISSING'}) end
  done = done + 1
  i = i + 3 + n
end
return finish({done, ''})
"""


@cache
def _batch_script() -> Script:
    """Return the script that runs a queue: _lib.lua, each batchable script as a function, the runner.

    ``ARGV`` is a local variable here. _lib.lua's helpers and the operations
    read it as an upvalue, so the runner points it at each operation's
    arguments in turn.
    """
    folder = resources.files(__package__).joinpath("scripts")
    lib = folder.joinpath("_lib.lua").read_text(encoding="utf-8")
    parts = [
        "local BATCH = ARGV",
        "local ARGV = {BATCH[1]}",
        lib,
        "local OPS = {}",
    ]
    for name in sorted(_PLACEHOLDER_REPLIES):
        body = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
        parts.append(f"OPS['{name}'] = function()\n{body}\nend")
    parts.append(_RUNNER)
    return Script("batch", "\n".join(parts))


class _Call:
    """One queued script call: its arguments, the header fields first.

    Consecutive appends to one list are merged into one call, so a list_push
    call that appends keeps its entries and node specs apart until rendered.
    """

    __slots__ = (
        "appends",
        "args",
        "entries",
        "name",
        "node",
        "operation",
        "spec_count",
        "specs",
    )

    def __init__(
        self, name: str, node: Node, operation: str, args: tuple[Any, ...]
    ) -> None:
        self.name = name
        self.node = node
        self.operation = operation
        self.args = args
        self.appends = name == "list_push" and args[_PUSH_SIDE] == "R"
        self.entries: list[Any] = []
        self.specs: list[Any] = []
        self.spec_count = 0
        if self.appends:
            self.append(args)
            self.operation = operation

    def append(self, args: tuple[Any, ...]) -> None:
        """Add the entries and node specs of list_push ``args`` that append to the same list."""
        count = int(args[_PUSH_SIDE + 1])
        first = _PUSH_SIDE + 2
        self.entries += args[first : first + count]
        spec_count = int(args[first + count])
        if spec_count:
            self.spec_count += spec_count
            self.specs += args[first + count + 1 :]
        # The merged call's change message carries the last call's time.
        self.args = args
        self.operation = "extend"

    def render(self) -> tuple[Any, ...]:
        """Return the script's arguments."""
        if not self.appends:
            return self.args
        return (
            *self.args[:_HEADER_OPERATION],
            self.operation,
            "R",
            len(self.entries),
            *self.entries,
            self.spec_count,
            *self.specs,
        )


class Batch:
    """A context manager that queues this thread's changes and sends them at exit.

    Obtain one from ``mem._batch()``; the module docstring gives the rules.
    ``len(batch)`` is the number of queued script calls, where consecutive
    appends to one list count as one.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._calls: list[_Call] = []
        self._outer: Batch | None = None
        # Where this batch's calls start in the outer queue, and the outer
        # queue's merge floor to restore at exit.
        self._mark = 0
        self._outer_floor = 0
        # Calls before this index belong to an enclosing block and are not merged into.
        self._floor = 0
        self._thread: int | None = None

    def __len__(self) -> int:
        if self._outer is not None:
            return len(self._outer._calls) - self._mark
        return len(self._calls)

    def __repr__(self) -> str:
        return f"<Batch of {len(self)} calls on {self._store.namespace!r}>"

    def __enter__(self) -> Batch:
        if self._thread is not None:
            raise RuntimeError(
                "this batch was already entered; open a new one with mem._batch()"
            )
        self._thread = threading.get_ident()
        state = self._store.thread_local
        current: Batch | None = getattr(state, "batch", None)
        if current is None:
            state.batch = self
        else:
            self._outer = current
            self._mark = len(current._calls)
            self._outer_floor = current._floor
            current._floor = self._mark
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if threading.get_ident() != self._thread:
            raise RuntimeError("a batch must be closed by the thread that opened it")
        outer = self._outer
        if outer is not None:
            if exc_type is not None:
                del outer._calls[self._mark :]
            outer._floor = self._outer_floor
            return

        self._store.thread_local.batch = None
        calls, self._calls = self._calls, []
        if exc_type is None and calls:
            self._run(calls)

    def add(self, name: str, node: Node, operation: str, args: tuple[Any, ...]) -> Any:
        """Queue one write script call; return the placeholder reply of ``name``.

        Raises
        ------
        TypeError
            The operation's result is needed before the batch runs.
        """
        placeholder = _PLACEHOLDER_REPLIES.get(name, _REJECTED)
        if placeholder is _REJECTED or (name, operation) in _NEEDS_RESULT:
            method = _NEEDS_RESULT.get((name, operation), operation)
            raise TypeError(
                f"{method} cannot run inside mem._batch(), because its result is "
                f"known only when the batch runs; call it before or after the with "
                f"block (on {node._path})"
            )
        calls = self._calls
        if name == "list_push" and args[_PUSH_SIDE] == "R" and len(calls) > self._floor:
            last = calls[-1]
            if last.appends and last.node._id == node._id:
                last.append(args)
                return placeholder
        calls.append(_Call(name, node, operation, args))
        return placeholder

    def _run(self, calls: list[_Call]) -> None:
        """Send the queue as one script call; raise the error of a failed operation."""
        store = self._store
        ids = list(dict.fromkeys(c.node._id for c in calls if c.node._id != ROOT_ID))
        argv: list[Any] = [store.keys.prefix, len(ids), *ids]
        for call in calls:
            strict = "1" if (call.name, call.operation) in _MISSING_IS_ERROR else "0"
            args = call.render()
            argv += [call.name, strict, len(args), *args]

        unsure = True
        try:
            reply = store.connection.script(
                _batch_script(), (store.keys.meta,), argv, write=True
            )
            unsure = False
        except ResponseError:
            unsure = False
            raise
        finally:
            _forget_cached(store, calls, unsure=unsure)

        done = int(reply[0])
        error = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
        if not error:
            return
        if error == "RM_STALE" and len(reply) > 2:
            missing = ids[int(reply[2]) - 1]
            node = next(c.node for c in calls if c.node._id == missing)
            raise store._translate(ResponseError("RM_STALE"), node)
        raise _failure(store, calls, done, error)


def _failure(store: Store, calls: list[_Call], done: int, error: str) -> Exception:
    """Return the exception of the call at index ``done``, with a note on the others."""
    call = calls[done]
    exc: Exception
    if error == "RM_MISSING":
        alias = call.args[_DICT_POP_ALIAS]
        exc = KeyError(store.codec.decode(alias, f"{call.node._path} keys"))
    else:
        exc = store._translate(ResponseError(error), call.node)
    add_note = getattr(exc, "add_note", None)  # Python 3.11 and later
    if add_note is not None:
        add_note(
            f"raised by call {done + 1} of {len(calls)} of a batch "
            f"({call.operation} on {call.node._path}): the {done} calls before it "
            "were applied, the ones after it were not"
        )
    return exc


def _forget_cached(store: Store, calls: list[_Call], *, unsure: bool) -> None:
    """Drop the read cache's copies of every top-level name the batch changed.

    ``unsure`` is whether the batch may still apply after its call ended.
    """
    cache = store.cache_to_drop()
    if cache is None:
        return
    # The third header field is the changed top-level name, "" for the namespace.
    for field in dict.fromkeys(call.args[2] for call in calls):
        cache.drop(field or None)
    cache.after_write(len(calls))
    if unsure:
        cache.after_unsure_write()
