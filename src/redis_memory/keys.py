"""Key and channel names of a namespace.

Every key of one namespace carries the same Redis Cluster hash tag, the
namespace name percent-encoded, so a Lua script may touch any of them and the
whole namespace lives in one slot. The layout (``P`` is the prefix)::

    P = rm:{<namespace>}:
    P..meta        HASH   node id -> "list" | "dict", for every live node but the root
    P..n:<id>      LIST or HASH: the entries of one node ("root" is the namespace)
    P..o:<id>      LIST   dict fields in insertion order, deleted ones left stale,
                          unless they fit in the dict's HASH (field NUL + order)
    P..ver         STRING version counter, bumped by every change
    P..mtime       HASH   top-level field -> last change, milliseconds since the epoch
    P..feed        channel of change messages
"""

from __future__ import annotations

import re

__all__ = ["ROOT_ID", "KeySpace", "encode_namespace"]

ROOT_ID = "root"

# Characters kept as they are in a namespace's hash tag; every other byte of its
# UTF-8 form becomes %XX, so braces, colons and spaces cannot break the tag.
_SAFE = re.compile(r"[A-Za-z0-9_.\-]")


def encode_namespace(namespace: str) -> str:
    """Percent-encode ``namespace`` for use inside a hash tag."""
    parts = []
    for char in namespace:
        if _SAFE.fullmatch(char):
            parts.append(char)
        else:
            parts.extend(
                f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass")
            )
    return "".join(parts)


class KeySpace:
    """The key names of one namespace."""

    __slots__ = ("channel", "meta", "mtime", "namespace", "prefix", "version")

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.prefix = f"rm:{{{encode_namespace(namespace)}}}:"
        self.meta = self.prefix + "meta"
        self.version = self.prefix + "ver"
        self.mtime = self.prefix + "mtime"
        self.channel = self.prefix + "feed"

    def node(self, node_id: str) -> str:
        """Return the key holding the entries of node ``node_id``."""
        return f"{self.prefix}n:{node_id}"

    def order(self, node_id: str) -> str:
        """Return the key holding the insertion order of dict node ``node_id``."""
        return f"{self.prefix}o:{node_id}"
