"""Run the real daemon in-process on loopback and read its real HTTP output."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from exporter.config import Config, build_config
from exporter.daemon import Daemon
from tests.support.scrape import Scrape, parse_exposition
from tests.support.waiting import eventually_async


@dataclass
class Running:
    daemon: Daemon
    base: str
    client: httpx.AsyncClient

    async def scrape(self) -> Scrape:
        # Scrapes serve the newest finished rendering; make it reflect every poll published so far.
        await self.daemon.exposition.caught_up()
        response = await self.client.get(self.base + "/metrics")
        assert response.status_code == 200, response.text
        return parse_exposition(response.text)

    async def wait_for(
        self, predicate: Callable[[Scrape], bool], timeout: float = 10.0, what: str = "condition"
    ) -> Scrape:
        """Scrape until ``predicate`` holds; the last scrape is shown when it never does."""

        latest: list[Scrape] = []

        async def check() -> Scrape | None:
            latest[:] = [await self.scrape()]
            return latest[0] if predicate(latest[0]) else None

        return await eventually_async(
            check, what=what, timeout=timeout, describe=lambda: latest[0].text[-3000:] if latest else "no scrape"
        )

    async def next_polls(self, cluster: str, count: int = 1, timeout: float = 10.0) -> Scrape:
        """Wait until ``count`` more poll cycles of ``cluster`` have been published."""

        def polls() -> int:
            snap = self.daemon.store.view.clusters.get(cluster)
            return (snap.stats.polls_ok + snap.stats.polls_failed) if snap else 0

        done = polls()
        await eventually_async(
            lambda: polls() >= done + count, what=f"{count} new polls of {cluster}", timeout=timeout, interval=0.02
        )
        return await self.scrape()


def quick_config(clusters: dict[str, list[str]], **cluster_opts: Any) -> Config:
    """Clusters polled every 0.2 s by default, the exporter on a free loopback port.

    The cycle deadline is 2 s rather than the interval: on a loaded 2-core CI machine a 0.2 s deadline
    cut healthy cycles short and made behaviour tests flaky. Tests of the deadline set their own. Offsets are off
    unless ``offsets_enabled=True`` is passed.
    """
    # Offsets (their own job, per-connector requests) are off unless a test asks: the daemon tests count the
    # status poll's requests. tests/offsets turns them on.
    opts = {"poll_interval": 0.2, "cycle_timeout": 2.0, "offsets_enabled": False, **cluster_opts}
    raw = {
        "web": {"listen_address": "127.0.0.1:0"},
        "clusters": [{"name": n, "urls": urls, **opts} for n, urls in clusters.items()],
    }
    return build_config(raw)


@asynccontextmanager
async def running_daemon(
    config: Config,
    setup: Callable[[Daemon], Awaitable[None] | None] | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[Running]:
    """``clock``: the daemon's wall clock (snapshot times, staleness, auto-heal), for tests that move it."""
    daemon = Daemon(config, clock=clock)
    if setup is not None:
        result = setup(daemon)
        if asyncio.iscoroutine(result):
            await result
    await daemon.start()
    host, port = daemon.bound[0]
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            yield Running(daemon, f"http://{host}:{port}", client)
    finally:
        await daemon.stop()
