"""Configuration: which Redis server to use, the namespace, and the data directory.

Every setting comes from an explicit argument first, then from an environment
variable, then from a default. An environment variable set to the empty string
counts as unset, so ``REDIS_MEMORY_URL= python script.py`` falls back to the
next source.

This module only reads the environment and parses strings. It imports neither
redis nor platformdirs at import time, so ``import redis_memory`` stays fast.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_NAMESPACE",
    "NAMESPACE_ENV",
    "URL_ENV",
    "URL_FALLBACK_ENV",
    "data_dir",
    "mask_url",
    "resolve_namespace",
    "resolve_url",
]

URL_ENV = "REDIS_MEMORY_URL"
URL_FALLBACK_ENV = "REDIS_URL"
NAMESPACE_ENV = "REDIS_MEMORY_NAMESPACE"
DATA_DIR_ENV = "REDIS_MEMORY_DATA_DIR"
DEFAULT_NAMESPACE = "default"

# Schemes that redis-py's ``from_url`` accepts, plus the Sentinel and Cluster
# forms that redis_memory.clients turns into clients.
_ACCEPTED_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")
_ACCEPTED_FORMS = (
    "redis://[[user]:password@]host[:port][/db], "
    "rediss://[[user]:password@]host[:port][/db], "
    "unix://[[user]:password@]/path/to/socket[?db=N], "
    "redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db] or "
    "redis+cluster://[[user]:password@]host:port[,host:port...]"
)
_MASK = "***"
# Query parameters whose values are secrets, for example ``?password=...``.
_SECRET_QUERY_PARAMETER = re.compile(r"([?&][^=&#]*pass[^=&#]*=)[^&#]*", re.IGNORECASE)


def _getenv(name: str) -> str | None:
    """Return the environment variable ``name``, or None if it is unset or empty."""
    value = os.environ.get(name)
    return value or None


def resolve_url(url: str | None) -> str | None:
    """Resolve the Redis URL to connect to.

    Parameters
    ----------
    url : str or None
        An explicit URL. None or the empty string means unset.

    Returns
    -------
    str or None
        ``url`` if set, else ``$REDIS_MEMORY_URL``, else ``$REDIS_URL``, else
        None, which means that the embedded server is to be used.

    Raises
    ------
    TypeError
        If ``url`` is neither a str nor None.
    ValueError
        If the chosen URL has no accepted scheme (redis, rediss, unix,
        redis+sentinel, redis+cluster), contains whitespace, has an invalid port,
        or is a unix URL without a socket path. The message shows the URL with
        its password masked and names the variable it came from.
    """
    if url is not None and not isinstance(url, str):
        raise TypeError(f"url must be a str or None, not {type(url).__name__}: {url!r}")

    candidates = (
        ("the url argument", url or None),
        (f"${URL_ENV}", _getenv(URL_ENV)),
        (f"${URL_FALLBACK_ENV}", _getenv(URL_FALLBACK_ENV)),
    )
    for source, value in candidates:
        if value is not None:
            _validate_url(value, source)
            return value
    return None


def _validate_url(url: str, source: str) -> None:
    """Raise ValueError unless ``url`` is a Redis URL of an accepted form."""
    problem = _find_url_problem(url)
    if problem:
        raise ValueError(
            f"invalid Redis URL {mask_url(url)!r} (from {source}): {problem}; "
            f"expected one of {_ACCEPTED_FORMS}, or leave {URL_ENV} and "
            f"{URL_FALLBACK_ENV} unset to use the embedded server"
        )


def _find_url_problem(url: str) -> str:
    """Return what is wrong with ``url``, or the empty string if nothing is."""
    if any(character.isspace() for character in url):
        return "it contains whitespace"
    if "://" not in url:
        return "it has no scheme"

    scheme = url.split("://", 1)[0].lower()
    if scheme not in _ACCEPTED_SCHEMES:
        return f"the scheme {scheme}:// is not supported"

    parts = urlsplit(url)
    if scheme == "unix":
        if not parts.path:
            return "it names no socket path"
        return ""
    if scheme in ("redis", "rediss"):
        try:
            _ = parts.port  # raises ValueError for a non-numeric or too large port
        except ValueError:
            return "its port is not a number from 0 to 65535"
    return ""


def mask_url(url: str) -> str:
    """Hide the credentials in a URL so that it can be shown in messages and logs.

    The whole ``user:password@`` part is replaced by ``***@``, and so are the
    values of query parameters whose names contain ``pass`` (``?password=``).
    Strings that are not URLs are masked the same way, so that this function
    is safe to call on invalid input.

    Parameters
    ----------
    url : str
        Any string, usually a Redis URL.

    Returns
    -------
    str
        The masked text.

    Examples
    --------
    >>> mask_url("redis://alice:s3cret@cache.example:6379/0")
    'redis://***@cache.example:6379/0'
    >>> mask_url("unix:///run/redis.sock?db=1&password=s3cret")
    'unix:///run/redis.sock?db=1&password=***'
    """
    scheme_end = url.find("://")
    authority_start = scheme_end + 3 if scheme_end >= 0 else 0
    authority_end = len(url)
    for delimiter in "/?#":
        position = url.find(delimiter, authority_start)
        if position >= 0:
            authority_end = min(authority_end, position)

    # A password may itself contain "@", so the credentials end at the last one.
    at = url.rfind("@", authority_start, authority_end)
    if at >= 0:
        url = url[:authority_start] + _MASK + url[at:]
    return _SECRET_QUERY_PARAMETER.sub(rf"\g<1>{_MASK}", url)


def resolve_namespace(namespace: str | None) -> str:
    """Resolve the namespace that keeps one project's data apart from another's.

    Parameters
    ----------
    namespace : str or None
        An explicit namespace. None means unset.

    Returns
    -------
    str
        ``namespace`` if given, else ``$REDIS_MEMORY_NAMESPACE`` if set and not
        empty, else ``"default"``.

    Raises
    ------
    TypeError
        If ``namespace`` is neither a str nor None.
    ValueError
        If ``namespace`` is the empty string.
    """
    if namespace is None:
        return _getenv(NAMESPACE_ENV) or DEFAULT_NAMESPACE
    if not isinstance(namespace, str):
        raise TypeError(
            f"namespace must be a str, not {type(namespace).__name__}: {namespace!r}"
        )
    if not namespace:
        raise ValueError(
            "namespace must be a non-empty str, not ''; pass None to use "
            f"${NAMESPACE_ENV} or {DEFAULT_NAMESPACE!r}"
        )
    return namespace


def data_dir() -> Path:
    """Return the directory of the embedded server's files.

    Returns
    -------
    pathlib.Path
        ``$REDIS_MEMORY_DATA_DIR`` (with ``~`` expanded) if set and not empty,
        else the platform's user data directory for ``redis-memory``, for
        example ``~/.local/share/redis-memory`` on Linux. The directory may not
        exist yet.
    """
    configured = _getenv(DATA_DIR_ENV)
    if configured is not None:
        return Path(configured).expanduser().absolute()

    import platformdirs

    return platformdirs.user_data_path("redis-memory")
