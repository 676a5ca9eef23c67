"""exporter.deadline.within: every way a piece of network work can end, seen from the caller."""

from __future__ import annotations

import asyncio
import time

import pytest

from exporter.deadline import within


async def test_result_and_exception_pass_through() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def broken() -> None:
        raise ValueError("bad body")

    assert await within(1.0, answer()) == 42
    with pytest.raises(ValueError, match="bad body"):
        await within(1.0, broken())


async def test_deadline_cuts_the_work_and_cancels_it() -> None:
    cancelled = asyncio.Event()

    async def hang() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            cancelled.set()

    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"not finished within 0\.05s"):
        await within(0.05, hang())
    assert time.monotonic() - started < 30  # cut, not left to run its 60 s
    assert cancelled.is_set()  # unwound before the caller moved on
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0


async def test_a_leaked_cancel_is_a_timeout_not_a_cancel_of_the_caller() -> None:
    # What anyio's connect can do under load: the work ends in CancelledError nobody here asked for.
    async def leaks() -> None:
        await asyncio.sleep(0)
        raise asyncio.CancelledError("Cancelled via cancel scope")

    with pytest.raises(TimeoutError, match="cancelled by the HTTP client"):
        await within(1.0, leaks())
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0
    await asyncio.sleep(0)  # the caller is still alive and can await


async def test_cancelling_the_caller_cancels_the_work() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hang() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            cancelled.set()

    caller = asyncio.ensure_future(within(30.0, hang()))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert cancelled.is_set()  # the work unwound before the caller's cancellation reached its awaiter
