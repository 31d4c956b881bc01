"""The extension's settings: a traitlets Configurable named ``RedisMemory``.

Set them in ``ipython_config.py`` before the extension loads::

    c.RedisMemory.url = "redis://localhost:6379/0"
    c.RedisMemory.namespace = "course"
    c.RedisMemory.name = "mem"
    c.RedisMemory.autorestore = True

or in a running session with ``%config RedisMemory.namespace = "course"``,
which reconnects ``mem`` at once.
"""

from __future__ import annotations

import keyword
from typing import Any

from traitlets import Bool, TraitError, Unicode, validate
from traitlets.config import Configurable

__all__ = ["RedisMemory"]


class RedisMemory(Configurable):  # type: ignore[misc]
    """Where ``%load_ext redis_memory`` connects and what it binds."""

    url = Unicode(
        "",
        help=(
            "URL of the Redis server (redis://, rediss:// or unix://). Empty: "
            "$REDIS_MEMORY_URL, else $REDIS_URL, else the embedded server."
        ),
    ).tag(config=True)

    namespace = Unicode(
        "",
        help=(
            "Namespace of the stored names. Empty: $REDIS_MEMORY_NAMESPACE, "
            "else 'default'."
        ),
    ).tag(config=True)

    name = Unicode(
        "mem",
        help="Name of the variable that holds the Memory in the user namespace.",
    ).tag(config=True)

    autorestore = Bool(
        False,
        help="Recall every stored name into the user namespace when the extension loads.",
    ).tag(config=True)

    @validate("name")
    def _check_name(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if not value.isidentifier() or keyword.iskeyword(value):
            raise TraitError(
                f"RedisMemory.name must be a Python identifier such as 'mem', "
                f"not {value!r}"
            )
        return str(value)
