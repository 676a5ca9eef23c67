"""A deadline for network work that always ends in a result or a ``TimeoutError``, never a stray cancel.

httpx runs on anyio. When ``asyncio.timeout`` cancels a task while anyio is cancelling its own scope (the
happy-eyeballs connect does that as soon as one address answers), anyio can leave its own cancel request
on the task, and ``asyncio.timeout`` then lets the ``CancelledError`` through instead of turning it into a
``TimeoutError`` (seen in CI under load: a poll job died with "Cancelled via cancel scope" and published no
snapshot, so the previous one stayed current). Running the work in a task of its own keeps the caller's
cancellation state clean: whatever that task ends with once it is cut, the caller sees a ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

# How long a cut task may take to unwind (close its connections) before the caller moves on without it.
UNWIND_SECONDS = 1.0


async def within(seconds: float, work: Awaitable[T]) -> T:
    """``await work``, cut after ``seconds``: its result, its exception, or ``TimeoutError``.

    Cancelling the caller cancels the work too. A work task that ends cancelled although nobody here
    cancelled it (a cancel leaked from the HTTP stack) also counts as cut.
    """
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        await _cut(task)
        raise
    if not done:
        await _cut(task)
        raise TimeoutError(f"not finished within {seconds:g}s")
    if task.cancelled():
        raise TimeoutError("cancelled by the HTTP client before the deadline")
    return task.result()


async def _cut(task: asyncio.Future[Any]) -> None:
    task.cancel()
    task.add_done_callback(_consume)
    # Let it unwind (close its requests) before the caller goes on, e.g. to close the HTTP client.
    await asyncio.wait({task}, timeout=UNWIND_SECONDS)


def _consume(task: asyncio.Future[Any]) -> None:
    # The outcome of a cut task is of no interest, but asyncio logs one that is never retrieved.
    if not task.cancelled():
        task.exception()
