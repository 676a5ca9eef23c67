"""The one way a test waits for something: ``eventually`` (threads, subprocesses) and ``eventually_async`` (the
event loop), never a fixed sleep.

Both call ``check`` until it returns something other than None or False and return that. They count the rounds
they polled: they give up only once ``timeout`` seconds have passed *and* ``check`` has had ``min_rounds``
chances, so a machine too loaded to poll often still gets its rounds, and the failure says how many there were
and what the last round saw (its value or the exception named in ``ignore``).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

MIN_ROUNDS = 3


class TimedOut(AssertionError):
    """``check`` never held: after ``rounds`` rounds and ``seconds`` seconds, ``last`` is what it last gave."""

    def __init__(self, what: str, rounds: int, seconds: float, last: object) -> None:
        super().__init__(f"timed out waiting for {what} ({rounds} rounds in {seconds:.1f}s); last: {last!r}"[:3000])
        self.rounds = rounds
        self.last = last


class _Rounds:
    def __init__(self, timeout: float, min_rounds: int) -> None:
        self.started = time.monotonic()
        self.timeout = timeout
        self.min_rounds = min_rounds
        self.count = 0
        self.last: object = None

    def done(self, result: object) -> bool:
        self.count += 1
        self.last = result
        return result is not None and result is not False

    def over(self) -> bool:
        return self.count >= self.min_rounds and time.monotonic() - self.started > self.timeout

    def timed_out(self, what: str, describe: Callable[[], object] | None) -> TimedOut:
        last = describe() if describe is not None else self.last
        return TimedOut(what, self.count, time.monotonic() - self.started, last)


def eventually(
    check: Callable[[], T | None],
    *,
    what: str,
    timeout: float = 30.0,
    interval: float = 0.1,
    min_rounds: int = MIN_ROUNDS,
    ignore: tuple[type[BaseException], ...] = (),
    describe: Callable[[], object] | None = None,
) -> T:
    """``check()`` once it holds (see the module docstring); exceptions in ``ignore`` count as "not yet".
    ``describe``: what the failure shows of the last round, instead of what ``check`` returned."""
    rounds = _Rounds(timeout, min_rounds)
    while True:
        try:
            result: object = check()
        except ignore as exc:
            rounds.last = exc
            rounds.count += 1
        else:
            if rounds.done(result):
                return result  # type: ignore[return-value]
        if rounds.over():
            raise rounds.timed_out(what, describe)
        time.sleep(interval)


async def eventually_async(
    check: Callable[[], T | Awaitable[T | None] | None],
    *,
    what: str,
    timeout: float = 30.0,
    interval: float = 0.05,
    min_rounds: int = MIN_ROUNDS,
    ignore: tuple[type[BaseException], ...] = (),
    describe: Callable[[], object] | None = None,
) -> T:
    """``eventually`` on the event loop: ``check`` may be a coroutine function; the loop runs between rounds."""
    rounds = _Rounds(timeout, min_rounds)
    while True:
        try:
            result: object = check()
            if inspect.isawaitable(result):
                result = await result
        except ignore as exc:
            rounds.last = exc
            rounds.count += 1
        else:
            if rounds.done(result):
                return result  # type: ignore[return-value]
        if rounds.over():
            raise rounds.timed_out(what, describe)
        await asyncio.sleep(interval)
