"""Pause Python's cyclic garbage collector while a stage builds many small objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Loading and analysing allocate tens of thousands of acyclic records per 10k layers; the
    collector rescans them again and again (40% of the time at 10k layers) and frees nothing.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
