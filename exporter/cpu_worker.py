"""One worker thread for the CPU-heavy steps (parsing big status responses, rendering the exposition).

Off the event loop, so scrapes keep being answered; one at a time, since the GIL serialises them anyway and
each extra thread would get its own malloc arena (peak RSS grew by about 80 MB at 5,000 connectors with the
default pool). The cyclic GC is paused for the duration of a step: these steps build hundreds of thousands
of acyclic objects that live on in the snapshot, and collections triggered by their allocation rescanned
them over and over (parsing 3,300 connectors x 8 tasks took twice as long with the GC on).

While the worker runs Python code, the event loop thread needs the GIL back after every socket call and
every epoll wake-up, and by default waits up to 5 ms each time: a scrape then took 20-30 ms per request
queued before it (p99 over 200 ms at 5,000 connectors with 8 scrapers). A 0.5 ms switch interval makes the
worker yield ten times sooner, at a cost too small to measure in its own run time.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

SWITCH_INTERVAL = 0.0005
_M_ARENA_MAX = -8  # glibc malloc.h
_worker = ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="kce-cpu", initializer=sys.setswitchinterval, initargs=(SWITCH_INTERVAL,)
)


def without_gc(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` with the cyclic GC paused, as the worker runs every step (the bench measures
    the steps the same way)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return func(*args, **kwargs)
    finally:
        if enabled:
            gc.enable()


def limit_malloc_arenas() -> None:
    """Make every thread allocate from glibc's main arena (like ``MALLOC_ARENA_MAX=1``); call before threads.

    Large objects (response bodies, rendered lines) are built in the worker thread and freed in the event loop
    thread, or the other way round; with an arena per thread, memory freed in one cannot serve the other's
    next cycle, and peak RSS at 5,000 connectors x 4 tasks was about 6 MB higher (bench, single runs). The GIL
    already serialises the two threads, so sharing the arena costs nothing measurable. No-op off glibc.
    """
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_ARENA_MAX, 1)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        pass


async def off_loop(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` in the worker thread, with the cyclic GC paused while it runs."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_worker, lambda: without_gc(func, *args, **kwargs))
