"""The daemon's poll loop in a test: the real poller reads the real workers every second, and the failure tracker
and (when enabled) the healer step on each snapshot, in the daemon's order.

Shared by the failure-intelligence and auto-heal tests against real Kafka Connect. ``Watch.rounds`` counts the
polls, so a test that asserts nothing happened waits for poll rounds as well as for the clock: a loaded machine
polls less often than once a second, and a window of seconds alone would prove less than it says.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

from exporter.config import ClusterConfig
from exporter.connect.client import build_http_client
from exporter.connect.poller import ConnectPoller
from exporter.failures.metrics import FailuresRenderer
from exporter.failures.tracker import FailureTracker
from exporter.healer.metrics import collect_autoheal
from exporter.healer.runner import Healer
from exporter.model import ClusterSnapshot
from exporter.render import render_blocks
from exporter.store import Store
from tests.support.scrape import Scrape, parse_exposition
from tests.support.waiting import eventually_async

from .kafka.harness import ConnectCluster

# The policy's minutes scaled down to seconds.
FAST: dict[str, Any] = {
    "mode": "enforce",
    "grace_period": "2s",
    "backoff": {"initial": "2s", "max": "4s", "jitter": 0},
    "max_attempts": 50,
    "stable_period": "1h",
    "breaker": {"min_failed_tasks": 1000},  # these tests are about single connectors
}


class _AutohealCollector:
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> list[Metric]:
        return list(collect_autoheal(self.store.view))


@dataclass
class Watch:
    store: Store
    tracker: FailureTracker
    healer: Healer | None
    rounds: int = 0
    # Every task state each poll saw, per connector: the independent record the transition counts must equal.
    seen: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)

    def scrape(self) -> Scrape:
        """The failure families as the exporter renders them, and the healer's."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_AutohealCollector(self.store))
        failures = b"".join(
            b.header_text + b"".join(b.samples) for b in render_blocks(self.store.view, [FailuresRenderer()])
        )
        return parse_exposition(failures.decode() + generate_latest(registry).decode())

    def observe(self, snap: ClusterSnapshot) -> None:
        self.rounds += 1
        if snap.up:
            for c in snap.connectors:
                self.seen.setdefault(c.name, []).append((c.state, *(t.state for t in c.tasks)))

    def changes(self, connector: str) -> dict[str, int]:
        """Changes of the connector's or its tasks' states between consecutive polls, by new state."""
        out: dict[str, int] = {}
        polls = self.seen.get(connector, [])
        for before, after in itertools.pairwise(polls):
            for a, b in zip(before, after, strict=False):
                if a != b:
                    out[b] = out.get(b, 0) + 1
        return out

    def restarts(self, connector: str, outcome: str = "accepted") -> float:
        return sum(
            v
            for _, v in self.scrape().samples(
                "kafka_connect_autoheal_restarts_total", connector=connector, outcome=outcome
            )
        )

    async def after(self, seconds: float, rounds: int) -> None:
        """Return once ``seconds`` have passed (grace periods and backoffs run on the clock) and at least ``rounds``
        more polls have been stepped (the chances the tracker and healer had to act)."""
        target = self.rounds + rounds
        await asyncio.sleep(seconds)
        # 1 s apart when idle; 10x that is a generous bound on a loaded 2-core machine.
        await eventually_async(
            lambda: self.rounds >= target, timeout=10.0 * rounds, interval=0.5, what=f"{rounds} poll rounds"
        )


@asynccontextmanager
async def watching(connect: ConnectCluster, autoheal: dict[str, Any] | None = None) -> AsyncIterator[Watch]:
    cfg = ClusterConfig(name="real", urls=connect.urls, poll_interval=1.0, autoheal=autoheal or {"mode": "off"})
    store = Store(expected=["real"])
    client = build_http_client(cfg)
    poller = ConnectPoller(cfg, client)
    tracker = FailureTracker()
    store.derive(tracker.step)  # the derived steps, in the daemon's order
    healer = None
    if cfg.autoheal.enabled:
        healer = Healer([cfg], store.publish, {cfg.name: client})
        healer.attach()
        store.derive(healer.step)
    watch = Watch(store, tracker, healer)

    async def poll_forever() -> None:
        while True:
            snap = await poller.poll()
            store.publish_cluster(snap)  # what the daemon does with what its poll job returns
            watch.observe(snap)
            await asyncio.sleep(1.0)

    polling = asyncio.create_task(poll_forever())
    try:
        yield watch
    finally:
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)
        if healer is not None:
            await healer.stop()
        await client.aclose()
