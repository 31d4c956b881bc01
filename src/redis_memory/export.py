"""Export a namespace to a JSON document, and import such a document back.

The document, written by ``redis-memory export`` and read by ``redis-memory
import``::

    {
      "format": "redis-memory-export",
      "version": 1,
      "namespace": "default",
      "exported_at": "2024-05-01T12:00:00.000000+00:00",
      "names": {"tasks": [1, 2], "when": {"$date": "2024-05-01"}}
    }

Each value in ``names`` is written in the *export encoding*, which round-trips
every type the codec stores:

- a list is a JSON array of its items, each in the export encoding;
- a dict whose keys are all strings, none starting with ``$``, is a JSON
  object;
- any other dict is ``{"$map": [[key, value], ...]}``, the key in the codec's
  tagged JSON and the value in the export encoding;
- everything else is the codec's stored text: plain JSON for None, bool, int,
  float and str, and a one-key tag object such as ``{"$tuple": [1, 2]}`` for
  the other types (docs/storage-format.md lists the tags).

So a JSON object with exactly one key that starts with ``$`` is a tag, and
every other JSON object is a dict.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, TypeAlias

from .codec import Codec, NodeRef
from .dicts import SyncedDict
from .errors import RedisMemoryError, StaleReferenceError
from .lists import SyncedList
from .memory import Memory

__all__ = [
    "FORMAT",
    "VERSION",
    "ExportDocument",
    "ExportFormatError",
    "decode_value",
    "encode_value",
    "export_namespace",
    "import_values",
    "open_for_replace",
    "read_export",
    "read_plain",
]

FORMAT: Final = "redis-memory-export"
"""The value of the document's ``format`` field."""

VERSION: Final = 1
"""The version of the document layout that this module writes and reads."""

Progress = Callable[[int], object]
"""Called with the number of names just exported or imported."""

# Names written per atomic ``mem._update`` call when importing.
_IMPORT_BATCH: Final = 100
# How often a name is read again when another process replaces it while it is read.
_READ_ATTEMPTS: Final = 5
_INDENT: Final = "  "
_LINE_WIDTH: Final = 88
# The constants json.loads accepts but JSON does not, and the codec's names for them.
_NON_FINITE: Final = {"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}


class ExportFormatError(RedisMemoryError, ValueError):
    """A document is not a valid redis-memory export; the message names the place."""


class _Raw:
    """JSON text kept verbatim: a value written by the codec, or a parsed number.

    Numbers stay text when a document is parsed, so that ints of any size and
    floats reach the codec exactly as written.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


JSONTree: TypeAlias = "_Raw | str | bool | list[JSONTree] | dict[str, JSONTree] | None"


# -- values -------------------------------------------------------------------


def encode_value(codec: Codec, value: Any, path: str = "value") -> str:
    """Return ``value`` in the export encoding, as indented JSON text.

    Parameters
    ----------
    codec : Codec
        Encodes the scalars, for example ``mem._store.codec``.
    value : object
        A plain value; a synced list or dict is read first.
    path : str
        Where the value comes from, for error messages.

    Raises
    ------
    UnsupportedTypeError
        If a value inside has no codec.
    """
    parts: list[str] = []
    _write_tree(_to_tree(codec, _plain(value), path), parts.append, 0)
    return "".join(parts)


def decode_value(codec: Codec, text: str, path: str = "value") -> Any:
    """Return the value that ``text``, in the export encoding, describes.

    Raises
    ------
    ExportFormatError
        If ``text`` is not JSON, or contains a dict key that is not hashable or
        a node reference.
    CorruptValueError
        If a tag object is not one that the codec writes.
    """
    return _from_tree(codec, _parse(text, path), path)


def _plain(value: Any) -> Any:
    if isinstance(value, (SyncedList, SyncedDict)):
        return value.copy()
    return value


def _to_tree(codec: Codec, value: Any, path: str) -> JSONTree:
    kind = type(value)
    if kind is list:
        return [
            _to_tree(codec, item, f"{path}[{index}]")
            for index, item in enumerate(value)
        ]
    if kind is dict:
        if all(type(key) is str and not key.startswith("$") for key in value):
            return {
                key: _to_tree(codec, item, f"{path}[{key!r}]")
                for key, item in value.items()
            }
        pairs: list[JSONTree] = [
            [
                _Raw(codec.encode(key, f"{path}<key>")),
                _to_tree(codec, item, f"{path}[{key!r}]"),
            ]
            for key, item in value.items()
        ]
        return {"$map": pairs}
    return _Raw(codec.encode(value, path))


def _write_tree(tree: JSONTree, write: Callable[[str], object], level: int) -> None:
    """Write ``tree`` as JSON indented by two spaces per level.

    A list, or an object whose values are all scalars, stays on one line when
    that line fits in `_LINE_WIDTH` characters: ``"scores": [95, 87, 96]``.
    """
    if isinstance(tree, _Raw):
        write(tree.text)
        return
    if _fits_one_line(tree):
        one_line = _one_line(tree)
        if len(one_line) + len(_INDENT) * level <= _LINE_WIDTH:
            write(one_line)
            return
    if isinstance(tree, list):
        inner = _INDENT * (level + 1)
        write("[")
        for index, item in enumerate(tree):
            write(",\n" + inner if index else "\n" + inner)
            _write_tree(item, write, level + 1)
        write("\n" + _INDENT * level + "]")
        return
    if isinstance(tree, dict):
        inner = _INDENT * (level + 1)
        write("{")
        for index, (key, item) in enumerate(tree.items()):
            write(",\n" + inner if index else "\n" + inner)
            write(_json_string(key) + ": ")
            _write_tree(item, write, level + 1)
        write("\n" + _INDENT * level + "}")
        return
    write(json.dumps(tree))


def _fits_one_line(tree: JSONTree) -> bool:
    if isinstance(tree, list):
        return True
    if isinstance(tree, dict):
        return not any(isinstance(item, (list, dict)) for item in tree.values())
    return False


def _one_line(tree: JSONTree) -> str:
    """Return ``tree`` as JSON on one line, with a space after each , and :."""
    if isinstance(tree, _Raw):
        return tree.text
    if isinstance(tree, list):
        return "[" + ", ".join(_one_line(item) for item in tree) + "]"
    if isinstance(tree, dict):
        members = (
            _json_string(key) + ": " + _one_line(item) for key, item in tree.items()
        )
        return "{" + ", ".join(members) + "}"
    return json.dumps(tree)


def _json_string(text: str) -> str:
    """Return ``text`` as a JSON string, non-ASCII characters kept as they are.

    A string with a lone surrogate, which UTF-8 cannot encode, is written with
    ``\\uXXXX`` escapes instead.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(text)
    return json.dumps(text, ensure_ascii=False)


def _compact(tree: JSONTree) -> str:
    """Return ``tree`` as JSON text without whitespace, the form the codec reads."""
    if isinstance(tree, _Raw):
        return tree.text
    if isinstance(tree, list):
        return "[" + ",".join(_compact(item) for item in tree) + "]"
    if isinstance(tree, dict):
        members = (json.dumps(key) + ":" + _compact(item) for key, item in tree.items())
        return "{" + ",".join(members) + "}"
    return json.dumps(tree)


def _from_tree(codec: Codec, tree: JSONTree, path: str) -> Any:
    if isinstance(tree, _Raw):
        return codec.decode(tree.text, path)
    if isinstance(tree, list):
        return [
            _from_tree(codec, item, f"{path}[{index}]")
            for index, item in enumerate(tree)
        ]
    if isinstance(tree, dict):
        if len(tree) == 1:
            [(tag, payload)] = tree.items()
            if tag == "$map":
                return _from_map(codec, payload, path)
            if tag.startswith("$"):
                return _from_tag(codec, tree, path)
        return {
            key: _from_tree(codec, item, f"{path}[{key!r}]")
            for key, item in tree.items()
        }
    return tree


def _from_map(codec: Codec, payload: JSONTree, path: str) -> dict[Any, Any]:
    if not isinstance(payload, list):
        raise ExportFormatError(
            f"invalid $map at {path}: expected a JSON array of [key, value] pairs"
        )
    result: dict[Any, Any] = {}
    for index, pair in enumerate(payload):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ExportFormatError(
                f"invalid $map at {path}: item {index} is not a [key, value] pair"
            )
        key = _from_tree(codec, pair[0], f"{path}<key {index}>")
        try:
            hash(key)
        except TypeError:
            raise ExportFormatError(
                f"invalid $map at {path}: key {index} is a {type(key).__name__}, "
                "which cannot be a dict key"
            ) from None
        result[key] = _from_tree(codec, pair[1], f"{path}[{key!r}]")
    return result


def _from_tag(codec: Codec, tree: JSONTree, path: str) -> Any:
    value = codec.decode(_compact(tree), path)
    if type(value) is NodeRef:
        raise ExportFormatError(
            f"invalid value at {path}: {_compact(tree)} is a reference to a stored "
            "node, which an export never contains; write the list or dict itself"
        )
    return value


def _parse(text: str | bytes, where: str) -> JSONTree:
    """Parse JSON text, keeping numbers as text and rejecting duplicate keys."""

    def reject_constant(name: str) -> None:
        raise ExportFormatError(
            f"invalid JSON in {where}: {name} is not JSON; the export encoding "
            f'writes it as {{"$float": "{_NON_FINITE[name]}"}}'
        )

    def object_from_pairs(pairs: list[tuple[str, JSONTree]]) -> dict[str, JSONTree]:
        result: dict[str, JSONTree] = {}
        for key, item in pairs:
            if key in result:
                raise ExportFormatError(
                    f"invalid JSON in {where}: the key {key!r} appears twice "
                    "in one object"
                )
            result[key] = item
        return result

    try:
        tree: JSONTree = json.loads(
            text,
            parse_int=_Raw,
            parse_float=_Raw,
            parse_constant=reject_constant,
            object_pairs_hook=object_from_pairs,
        )
    except json.JSONDecodeError as error:
        raise ExportFormatError(
            f"invalid JSON in {where}: {error.msg} at line {error.lineno}, "
            f"column {error.colno}"
        ) from None
    except UnicodeDecodeError as error:
        raise ExportFormatError(f"invalid JSON in {where}: {error}") from None
    return tree


# -- reading a namespace ------------------------------------------------------


def read_plain(mem: Memory, name: str) -> Any:
    """Return the plain value stored under ``name``, or raise KeyError.

    A list or dict is read in one round trip, so it is consistent even while
    other processes change it. When another process replaces the value between
    the two reads that this takes, it is read again.
    """
    for _ in range(_READ_ATTEMPTS):
        value = mem[name]
        try:
            return _plain(value)
        except StaleReferenceError:
            continue
    raise RuntimeError(
        f"mem[{name!r}] was replaced by other processes {_READ_ATTEMPTS} times "
        "while it was being read; try again when fewer processes write to it"
    )


# -- export -------------------------------------------------------------------


def export_namespace(
    mem: Memory, out: IO[str], *, progress: Progress | None = None
) -> list[str]:
    """Write every name of ``mem`` to ``out`` as an export document.

    Each name is read in one atomic step, but names are read one after the
    other: a name that another process changes during the export may be
    exported before or after that change. A name deleted meanwhile is left out.

    Parameters
    ----------
    mem : Memory
        The namespace to export.
    out : file object
        Where the document goes, opened for text.
    progress : callable, optional
        Called with 1 after each name.

    Returns
    -------
    list of str
        The names written, in the namespace's insertion order.
    """
    codec = mem._store.codec
    exported_at = datetime.datetime.now(datetime.timezone.utc).isoformat()
    out.write(
        "{\n"
        f'  "format": {json.dumps(FORMAT)},\n'
        f'  "version": {VERSION},\n'
        f'  "namespace": {_json_string(mem._namespace)},\n'
        f'  "exported_at": {json.dumps(exported_at)},\n'
        '  "names": {'
    )
    written: list[str] = []
    for name in mem._names():
        try:
            value = read_plain(mem, name)
        except KeyError:
            continue
        tree = _to_tree(codec, value, f"mem[{name!r}]")
        out.write(",\n    " if written else "\n    ")
        out.write(_json_string(name) + ": ")
        _write_tree(tree, out.write, 2)
        written.append(name)
        if progress is not None:
            progress(1)
    out.write("\n  }\n}\n" if written else "}\n}\n")
    return written


@contextlib.contextmanager
def open_for_replace(path: Path) -> Iterator[IO[str]]:
    """Open a temporary file next to ``path`` that replaces it on success.

    On an exception the temporary file is removed and ``path`` is unchanged,
    so a failed export never leaves a truncated file behind.
    """
    directory = path.parent
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            yield file
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


# -- import -------------------------------------------------------------------


@dataclass(frozen=True)
class ExportDocument:
    """The contents of an export document.

    Attributes
    ----------
    namespace : str
        The namespace the document was exported from.
    values : dict
        Every name and its value, in the document's order.
    """

    namespace: str
    values: dict[str, Any]


def read_export(text: str | bytes, codec: Codec, where: str) -> ExportDocument:
    """Parse and decode an export document.

    Every value is decoded before anything is stored, so a document with an
    error anywhere imports nothing.

    Parameters
    ----------
    text : str or bytes
        The document.
    codec : Codec
        Decodes the scalars, for example ``mem._store.codec``.
    where : str
        The document's file name, for error messages.

    Raises
    ------
    ExportFormatError
        If the document is not JSON, not an export, of another version, or
        contains an invalid value.
    CorruptValueError
        If a tag object is not one that the codec writes.
    """
    tree = _parse(text, where)
    if not isinstance(tree, dict) or tree.get("format") != FORMAT:
        raise ExportFormatError(
            f'{where} is not a redis-memory export: it has no "format": '
            f'"{FORMAT}" field at the top level; create one with '
            "`redis-memory export FILE`"
        )
    if "version" not in tree:
        raise ExportFormatError(
            f'{where} has no "version" field at the top level; add the version '
            f'of the export layout, "version": {VERSION}'
        )
    version = tree["version"]
    if not isinstance(version, _Raw) or version.text != str(VERSION):
        raise ExportFormatError(
            f"{where} has export version {_compact(version)}, but this redis-memory "
            f"reads version {VERSION} only; import it with the redis-memory "
            "release that wrote it"
        )
    namespace = tree.get("namespace")
    if not isinstance(namespace, str):
        raise ExportFormatError(
            f'{where} has no "namespace" string at the top level; add the '
            'namespace it was exported from, for example "namespace": "default"'
        )
    names = tree.get("names")
    if not isinstance(names, dict):
        raise ExportFormatError(
            f'{where} has no "names" object at the top level; an export without '
            'values has "names": {}'
        )
    values = {
        name: _from_tree(codec, item, f"names[{name!r}]")
        for name, item in names.items()
    }
    return ExportDocument(namespace, values)


def import_values(
    mem: Memory,
    values: dict[str, Any],
    *,
    replace: bool = False,
    progress: Progress | None = None,
) -> list[str]:
    """Store ``values`` in ``mem``, overwriting names that exist.

    Names are written in batches of up to 100, each batch in one atomic step.
    With ``replace``, the names of ``mem`` that ``values`` lacks are deleted
    afterwards, so the namespace ends up equal to ``values`` without ever
    being empty in between.

    Parameters
    ----------
    mem : Memory
        The namespace to write to.
    values : dict
        Names and plain values, as in `ExportDocument.values`.
    replace : bool
        Delete the other names of ``mem`` too.
    progress : callable, optional
        Called with the number of names stored by each batch.

    Returns
    -------
    list of str
        The names deleted because of ``replace``.
    """
    for batch in _batches(values.items(), _IMPORT_BATCH):
        mem._update(batch)
        if progress is not None:
            progress(len(batch))
    if not replace:
        return []
    deleted = []
    for name in mem._names():
        if name not in values:
            with contextlib.suppress(KeyError):
                del mem[name]
                deleted.append(name)
    return deleted


def _batches(items: Iterable[tuple[str, Any]], size: int) -> Iterator[dict[str, Any]]:
    batch: dict[str, Any] = {}
    for name, value in items:
        batch[name] = value
        if len(batch) == size:
            yield batch
            batch = {}
    if batch:
        yield batch
