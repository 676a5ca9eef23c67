"""One worker thread for the CPU-heavy steps (parsing big status responses, rendering the exposition).

Off the event loop, so scrapes keep being answered; one at a time, since the GIL serialises them anyway and
each extra thread would get its own malloc arena (peak RSS grew by about 80 MB at 5,000 connectors with the
default pool). The cyclic GC is paused for the duration of a step: these steps build hundreds of thousands
of acyclic objects that live on in the snapshot, and collections triggered by their allocation rescanned
them over and over (parsing 3,300 connectors x 8 tasks took twice as long with the GC on).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kce-cpu")


def _without_gc(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    enabled = gc.isenabled()
    gc.disable()
    try:
        return func(*args, **kwargs)
    finally:
        if enabled:
            gc.enable()


async def off_loop(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` in the worker thread, with the cyclic GC paused while it runs."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_worker, lambda: _without_gc(func, *args, **kwargs))
