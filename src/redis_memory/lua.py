"""The Lua sources of the scripts: each alone for EVALSHA, and all of them as one library for FCALL.

Each ``scripts/<name>.lua`` file is the body of one operation, and
``scripts/_lib.lua`` is the prelude of helpers that the bodies share. The
server runs a script's whole text on every EVALSHA, so each helper it defines
costs a closure on every call. A function library is run once when it is
loaded, so its helpers exist from then on and a call runs only its body. For
``d[k] = v`` that took the server time from 11.6 us by EVALSHA to 8.1 us by
FCALL (INFO commandstats, Valkey 8.1, 20,000 calls each, in a throwaway script).
Servers without functions (before Redis 7.0) and users whom ACLs deny them
get the scripts; see :meth:`redis_memory.connection.Connection.script`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from .connection import Script

__all__ = ["Library", "library", "script"]

# The prelude's lines that read the call's arguments. A library runs them at
# the start of each call instead, because it runs the prelude itself only once.
_PER_CALL = "local P = ARGV[1]\nlocal META = P .. 'meta'\n"
_PER_CALL_STATE = "local ARGV, P, META\n"
# The statements a library function runs before the body: the prelude's
# per-call lines, and the reset of the flag that drop() sets.
_CALL_SETUP = "ARGV = args; P = args[1]; META = P .. 'meta'; DROPPED.any = false"

# Stands for the digest in the library's text until the digest of that text is known.
_DIGEST = "@DIGEST@"

# The first line of a script that gives its function's flags.
_FLAGS = re.compile(r"-- Function flags: ([a-z-]+(?:, [a-z-]+)*)\n")

# A top-level helper of _lib.lua with the comment lines directly above it.
_LIB_HELPER = re.compile(r"^(?:--[^\n]*\n)*local function (\w+)\b", re.MULTILINE)


@dataclass(frozen=True)
class Library:
    """Every script as one function library.

    Attributes
    ----------
    name : str
        The library's name, which ends with a digest of its text, so that
        different versions of redis-memory can use one server at a time.
    source : str
        The text for FUNCTION LOAD.
    functions : dict of str to str
        The function name of each script.
    """

    name: str
    source: str
    functions: dict[str, str]


@cache
def script(name: str) -> Script:
    """Return the script ``scripts/<name>.lua`` with the prelude it needs."""
    lib = _read("_lib")
    body = _read(name)
    return Script(
        name,
        f"{_used_lib(lib, body)}\n-- {name}.lua\n{body}",
        function=library().functions.get(name),
        library=library().source,
    )


@cache
def library() -> Library:
    """Return the library of every script except the batch runner, which batch.py builds.

    A script's first line may give its function's flags, as in ``-- Function
    flags: no-writes``. A function without flags is rejected while the
    server's memory is full, before it runs. A script, in contrast, runs
    until its first command that needs memory, so a script that deletes
    before it writes went through. Hence the flags:

    - ``no-writes`` for the reads, which then run on a full server and on a replica;
    - ``allow-oom`` for the operations that only delete, besides the small
      change bookkeeping, so that a full server can be emptied.

    The other operations go by SHA-1 while memory is full (see
    :meth:`redis_memory.connection.Connection.script`), so that those that
    delete first, such as ``clear()`` and ``sort()``, run as before.
    """
    lib = _read("_lib")
    if _PER_CALL not in lib:
        raise RuntimeError(f"_lib.lua no longer starts its calls with {_PER_CALL!r}")
    parts = [_PER_CALL_STATE + lib.replace(_PER_CALL, "", 1), "local BODIES = {}"]
    names = sorted(
        entry.name.removesuffix(".lua")
        for entry in resources.files(__package__).joinpath("scripts").iterdir()
        if entry.name.endswith(".lua") and not entry.name.startswith("_")
    )
    for name in names:
        parts.append(
            f"-- {name}.lua\nBODIES['{name}'] = function()\n{_read(name)}\nend"
        )
    registrations = []
    for name in names:
        match = _FLAGS.match(_read(name))
        flags = ""
        if match:
            quoted = ", ".join(f"'{flag}'" for flag in match.group(1).split(", "))
            flags = f", flags = {{{quoted}}}"
        registrations.append(
            f"redis.register_function{{function_name = 'rm_{_DIGEST}_{name}', "
            f"callback = function(_, args) {_CALL_SETUP}; "
            f"return BODIES['{name}']() end{flags}}}"
        )
    template = "\n".join(
        [f"#!lua name=redis_memory_{_DIGEST}", *parts, *registrations, ""]
    )
    # The digest covers the whole text, so no two versions share a name.
    digest = hashlib.sha1(template.encode("utf-8")).hexdigest()[:12]
    functions = {name: f"rm_{digest}_{name}" for name in names}
    source = template.replace(_DIGEST, digest)
    return Library(f"redis_memory_{digest}", source, functions)


@cache
def _read(name: str) -> str:
    folder = resources.files(__package__).joinpath("scripts")
    text: str = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    return text


def _used_lib(lib: str, body: str) -> str:
    """Return ``lib`` without the helpers that ``body`` uses neither directly nor indirectly.

    The server runs the whole text on every call, so each helper defined costs
    a closure: pruning took about 1 us off the 6 us that ``list_push`` ran on
    Valkey 8.1. A name in a comment keeps a helper too, which is harmless.
    """
    matches = list(_LIB_HELPER.finditer(lib))
    if not matches:
        return lib
    ends = [match.start() for match in matches[1:]] + [len(lib)]
    helpers = {
        match.group(1): lib[match.start() : end]
        for match, end in zip(matches, ends, strict=True)
    }

    used: set[str] = set()
    pending = [body]
    while pending:
        text = pending.pop()
        for helper, source in helpers.items():
            if helper not in used and re.search(rf"\b{helper}\b", text):
                used.add(helper)
                pending.append(source)

    kept = (source for helper, source in helpers.items() if helper in used)
    return lib[: matches[0].start()] + "".join(kept)
