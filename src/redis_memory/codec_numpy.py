"""Tagged JSON forms of numpy arrays and numpy scalars.

numpy is never imported to encode: a value can only be a numpy object if the user's
program has already imported numpy, so ``sys.modules`` is checked instead. Decoding
an array imports numpy on first use, which keeps ``import redis_memory`` fast.

The dtype is written as ``numpy.lib.format.dtype_to_descr`` returns it (the same
form ``.npy`` files use): a string such as ``"<f8"``, or a list of fields for
structured dtypes. The data are the raw bytes in C order, base64-encoded, in the
dtype's byte order, so any machine reads them back exactly.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import sys
from typing import Any

__all__ = ["decode_ndarray", "decode_numpy_scalar", "encode_numpy_value"]


def encode_numpy_value(value: object) -> str | None:
    """Return the tagged JSON text of a numpy array or scalar, or None.

    None means ``value`` is not an exact ``numpy.ndarray`` or numpy scalar type, or
    its dtype contains Python objects, which have no exact binary form.
    """
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return None
    value_type = type(value)
    if value_type is numpy.ndarray:
        tag = "$ndarray"
    elif issubclass(value_type, numpy.generic) and value_type.__module__ == "numpy":
        tag = "$npscalar"
    else:
        return None

    array: Any = value
    if array.dtype.hasobject:
        return None
    from numpy.lib import format as npy_format

    payload: dict[str, object] = {"dtype": npy_format.dtype_to_descr(array.dtype)}
    if tag == "$ndarray":
        payload["shape"] = list(array.shape)
    payload["data"] = base64.b64encode(array.tobytes(order="C")).decode("ascii")
    return f'{{"{tag}":{json.dumps(payload, separators=(",", ":"))}}}'


def decode_ndarray(payload: object) -> Any:
    """Rebuild a numpy array from a ``$ndarray`` payload.

    Raises
    ------
    ValueError
        If the payload is malformed.
    ModuleNotFoundError
        If numpy is not installed.
    """
    if not isinstance(payload, dict) or set(payload) != {"dtype", "shape", "data"}:
        raise ValueError(
            'a $ndarray payload must be {"dtype": ..., "shape": ..., "data": ...}'
        )
    shape = payload["shape"]
    if not isinstance(shape, list) or not all(
        type(size) is int and size >= 0 for size in shape
    ):
        raise ValueError(
            f"the shape of a $ndarray must be a list of sizes >= 0, not {shape!r}"
        )
    return _decode_array(payload, tuple(shape))


def decode_numpy_scalar(payload: object) -> Any:
    """Rebuild a numpy scalar from a ``$npscalar`` payload.

    Raises
    ------
    ValueError
        If the payload is malformed.
    ModuleNotFoundError
        If numpy is not installed.
    """
    if not isinstance(payload, dict) or set(payload) != {"dtype", "data"}:
        raise ValueError('a $npscalar payload must be {"dtype": ..., "data": ...}')
    return _decode_array(payload, ())[()]


def _decode_array(payload: dict[str, Any], shape: tuple[int, ...]) -> Any:
    numpy = _import_numpy()
    from numpy.lib import format as npy_format

    try:
        dtype = npy_format.descr_to_dtype(payload["dtype"])
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise ValueError(f"invalid numpy dtype {payload['dtype']!r}: {exc}") from None
    if dtype.hasobject:
        raise ValueError("numpy arrays of Python objects are never decoded from bytes")
    encoded = payload["data"]
    if not isinstance(encoded, str):
        raise ValueError("the data of a numpy value must be a base64 string")
    try:
        data = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"the data of a numpy value is not base64: {exc}") from None

    count = math.prod(shape)
    if len(data) != count * dtype.itemsize:
        raise ValueError(
            f"{len(data)} bytes of data do not fit shape {list(shape)} of dtype {dtype}"
        )
    if count == 0 or dtype.itemsize == 0:
        return numpy.empty(shape, dtype=dtype)
    # A bytearray makes the array writable without another copy.
    return numpy.frombuffer(bytearray(data), dtype=dtype, count=count).reshape(shape)


def _import_numpy() -> Any:
    try:
        import numpy
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "this value is a numpy array or scalar, and reading it needs numpy, which "
            "is not installed. Install it with pip install 'redis-memory[numpy]'.",
            name="numpy",
        ) from exc
    return numpy
