"""Live Jupyter widgets for redis-memory.

>>> from redis_memory import Memory                 # doctest: +SKIP
>>> from redis_memory.widgets import MemoryView     # doctest: +SKIP
>>> MemoryView(Memory())                            # doctest: +SKIP
MemoryView(namespace='default', name=None)

Needs the ``notebook`` extra (``pip install 'redis-memory[notebook]'``), which
brings ipywidgets 8. Only core ipywidgets are used, so no frontend extension
beyond ipywidgets' own is needed.
"""

from __future__ import annotations

from .view import MemoryView, close_all

__all__ = ["MemoryView", "close_all"]
