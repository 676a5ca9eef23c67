"""Time as the Cloud source sees it: injectable, so tests can run an hour of polling in a second."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to; ``sleep`` moves it forward instead of waiting.

    Shared by a test, the simulated Cloud API and the exporter, so waits for rate-limit resets and
    backoffs take no real time but still move the simulated world along.
    """

    def __init__(self, start: float) -> None:
        self._now = float(start)
        self.slept: list[float] = []

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def set(self, now: float) -> None:
        self._now = float(now)

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept.append(seconds)
            self._now += seconds
        await asyncio.sleep(0)
