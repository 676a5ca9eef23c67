"""Serve a simulated service from a background thread with its own event loop.

For synchronous tests, for tests that run the exporter as a subprocess, and for ``demo``: the service's
coroutines run on that loop, the caller's thread stays free.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Service(Protocol):
    async def start(self) -> object: ...

    async def stop(self) -> None: ...


class LoopThread:
    """The event loop a service runs on, in its own thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the service's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextlib.contextmanager
def run_in_thread(service: Service, name: str) -> Iterator[LoopThread]:
    """Start ``service`` on a new event loop in a daemon thread named ``name``; stop both on exit.

    A failure to start (e.g. a port in use) is raised here, in the caller's thread.
    """
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    thread = threading.Thread(target=_run_loop, args=(loop, ready), name=name, daemon=True)
    thread.start()
    ready.wait()
    handle = LoopThread(loop)
    try:
        handle.call(service.start())
        yield handle
    finally:
        try:
            handle.call(service.stop())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()
