"""Pickled values signed with HMAC-SHA256, for types that have no codec.

Unpickling runs code chosen by the writer of the bytes, so a pickle read from Redis
is only loaded when its signature matches the reader's key. Anyone who can write to
the Redis server but does not know the key cannot make a reader unpickle their bytes.
Anyone who knows the key can, so treat it like a password.

The payload is ``{"sig": "<hex HMAC-SHA256 of the pickle bytes>", "data": "<base64
of the pickle bytes>"}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import pickle

from .errors import PickleRefusedError

__all__ = ["PICKLE_PROTOCOL", "PickleSigner"]

PICKLE_PROTOCOL = 5
"""Fixed rather than ``pickle.HIGHEST_PROTOCOL``, so every Python >= 3.8 can read it."""


class PickleSigner:
    """Pickles values with a signature and loads only correctly signed pickles.

    Parameters
    ----------
    key : bytes or str
        The HMAC key. A str is encoded as UTF-8. Every process that reads the values
        needs the same key.

    Raises
    ------
    ValueError
        If the key is empty.
    TypeError
        If the key is neither bytes nor str.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes | str) -> None:
        if isinstance(key, str):
            key = key.encode("utf-8")
        if not isinstance(key, bytes):
            raise TypeError(
                f"pickle_key must be bytes or str, not {type(key).__name__}"
            )
        if not key:
            raise ValueError("pickle_key must not be empty")
        self._key = key

    def __repr__(self) -> str:
        return "PickleSigner(key=<hidden>)"

    def dump(self, value: object) -> dict[str, str]:
        """Pickle ``value`` and return the signed payload.

        Raises
        ------
        pickle.PicklingError, TypeError, AttributeError
            If ``value`` cannot be pickled (a lambda, a lock, a local class...).
        """
        data = pickle.dumps(value, protocol=PICKLE_PROTOCOL)
        return {"sig": self._sign(data), "data": base64.b64encode(data).decode("ascii")}

    def load(self, payload: object, where: str) -> object:
        """Check the signature of ``payload`` and unpickle it.

        Parameters
        ----------
        payload : object
            The decoded JSON payload of a ``$pickle`` tag.
        where : str
            Where the value was read from, for messages.

        Raises
        ------
        PickleRefusedError
            If the signature does not match. The data is then not unpickled.
        ValueError
            If the payload is malformed, or the signed pickle fails to load (for
            example because its class cannot be imported in this process).
        """
        if not isinstance(payload, dict) or set(payload) != {"sig", "data"}:
            raise ValueError('a $pickle payload must be {"sig": ..., "data": ...}')
        signature = payload["sig"]
        encoded = payload["data"]
        if not isinstance(signature, str) or not isinstance(encoded, str):
            raise ValueError("the sig and data of a $pickle payload must be strings")
        try:
            data = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise ValueError(
                f"the data of a $pickle payload is not base64: {exc}"
            ) from None

        # surrogatepass lets any str be compared, so a forged signature can only
        # fail the comparison, never raise.
        expected = self._sign(data).encode("ascii")
        if not hmac.compare_digest(
            expected, signature.encode("utf-8", "surrogatepass")
        ):
            raise PickleRefusedError(
                f"{where} is a pickle with an invalid signature, so it was not "
                f"unpickled: it was written with another pickle_key, or changed "
                f"after it was written"
            )

        # The pickle is signed with our key, so loading it is as safe as the key.
        # Loading can raise any exception (a class that no longer exists, a failing
        # __setstate__), so all of them are reported the same way.
        try:
            return pickle.loads(data)
        except Exception as exc:
            raise ValueError(
                f"the pickle is correctly signed but loading it failed with {exc!r}. "
                f"Import or define the classes it contains before reading it."
            ) from exc

    def _sign(self, data: bytes) -> str:
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()
