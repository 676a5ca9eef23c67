"""The auto-heal loop over real HTTP on a hand-driven clock: simulator workers -> real poller -> store -> Healer.

Time is a clock shared by the poller and the healer, so grace periods and backoffs of minutes pass instantly;
the simulated cluster only moves on when ``sim.tick()`` is called.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

from exporter.config import ClusterConfig
from exporter.connect.client import build_http_client
from exporter.connect.poller import ConnectPoller
from exporter.healer.metrics import collect_autoheal
from exporter.healer.runner import Healer
from exporter.model import ClusterSnapshot
from exporter.store import Store
from simulator.connect.server import RecordedRequest, SimConnectServer
from simulator.connect.state import SimCluster
from tests.support.scrape import Scrape, parse_exposition

MIN = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


class _Collector:
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> list[Metric]:
        return list(collect_autoheal(self.store.view))


@dataclass
class Loop:
    sim: SimCluster
    server: SimConnectServer
    store: Store
    poller: ConnectPoller
    healer: Healer
    clock: Clock
    config: ClusterConfig

    async def cycle(self, advance: float = 0.0, tick: bool = False) -> None:
        """Let time pass, optionally let the simulated cluster move, then one poll and one healer round."""
        self.clock.now += advance
        if tick:
            self.sim.tick()
        self.publish(await self.poller.poll())
        await self.healer.settled()

    def publish(self, snap: ClusterSnapshot) -> None:
        """What the daemon does with a new snapshot (the healer gets it from the store's subscription)."""
        self.store.publish_cluster(snap)

    def restarts(self) -> list[str]:
        return [show(r) for r in self.server.requests if r.method == "POST"]

    def scrape(self) -> Scrape:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self.store))
        return parse_exposition(generate_latest(registry).decode())


def show(r: RecordedRequest) -> str:
    query = "&".join(f"{k}={v}" for k, v in r.query)
    return r.path + (f"?{query}" if query else "")


@asynccontextmanager
async def loop(sim: SimCluster, **autoheal: Any) -> AsyncIterator[Loop]:
    settings: dict[str, Any] = {"mode": "enforce", "grace_period": "1m", "backoff": {"jitter": 0}}
    settings.update(autoheal)
    async with SimConnectServer(sim) as server:
        config = ClusterConfig(name="sim", urls=server.urls, autoheal=settings)
        clock = Clock()
        store = Store(expected=["sim"])
        client = build_http_client(config)
        healer = Healer([config], store.publish, {config.name: client}, clock=clock)
        store.derive(healer.step)
        healer.attach()
        try:
            yield Loop(sim, server, store, ConnectPoller(config, client, clock=clock), healer, clock, config)
        finally:
            await healer.stop()
            await client.aclose()
