"""A manual clock for tests: an hour of Cloud polling, rate-limit resets and backoffs in a second."""

from __future__ import annotations

import asyncio


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
