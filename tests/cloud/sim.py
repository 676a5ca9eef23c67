"""What the Cloud tests share: the simulated environment's names, a config for it, and the source run as the daemon
runs it (what it returns goes into a store)."""

from __future__ import annotations

from typing import Any

from exporter.cloud.config import CloudConfig
from exporter.cloud.reading import CloudReading
from exporter.cloud.source import CloudSource
from exporter.model import ClusterSnapshot
from exporter.store import Store

ENV = "env-prod1"
LKC = "lkc-main1"
CLUSTER = "managed"
T0 = 1_800_000_000 // 3600 * 3600 + 17  # 17 s past a full hour: polls never land on minute edges
SECRET = "s3cr3t-Cl0ud-API-secret-value"


def make_config(url: str, **extra: Any) -> CloudConfig:
    base: dict[str, Any] = {
        "api_key": "SIMKEY0123456789",
        "api_secret": SECRET,
        "api_url": url,
        "metrics_url": url,
        "environments": [{"id": ENV, "clusters": [{"id": LKC, "name": CLUSTER}]}],
        "max_retries": 2,
        "request_timeout": 2,
    }
    base.update(extra)
    return CloudConfig.model_validate(base)


class Published:
    """A ``CloudSource`` whose cycles publish what they return into ``store``, as the daemon's jobs do."""

    def __init__(self, source: CloudSource, store: Store) -> None:
        self.source = source
        self.store = store
        for name in source.clusters:
            store.expect(name)
        store.publish(source.reading())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)

    async def poll_status(self, name: str) -> ClusterSnapshot | None:
        snapshot = await self.source.poll_status(name)
        if snapshot is not None:
            self.store.publish_cluster(snapshot)
            self.store.publish(self.source.reading())
        return snapshot

    async def poll_metrics(self) -> CloudReading | None:
        reading = await self.source.poll_metrics()
        if reading is not None:
            self.store.publish(reading)
        return reading
