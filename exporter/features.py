"""Where every feature registers: its sources and derived step (``plugs``), the groups /metrics serves and the
sections of the status page. The daemon knows no feature by name: it runs what is listed here.

``plugs()`` lists the features in the order of their derived steps (the store hands each new snapshot to the
failure tracker, then the offsets readers, then the source-topics readers, then the healer) and of their reload
hooks (the healer reconfigures before Cloud re-attaches, so that a healer started by a reload is handed the
managed clusters). A plug adds the jobs of a ``clusters[]`` entry, drops them when a reload removes or replaces the
entry, forgets a cluster that is gone, and attaches or reloads what the whole configuration asks for (auto-heal,
Confluent Cloud). Each list of readers is in the order served. A group or section whose reading is not in the view
renders nothing, so the lists do not depend on the configuration (a reload that turns a feature on needs nothing
registered). The golden files (tests/metrics/golden/) are rendered from ``metric_groups()`` itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Protocol

import httpx
import structlog

from exporter.cloud.metrics import collect_cloud
from exporter.config import ClusterConfig, Config
from exporter.connect.client import build_http_client
from exporter.connect.metrics import ConnectRenderer
from exporter.connect.poller import ConnectPoller
from exporter.connect.web import (
    clusters_section,
    problems_section,
    sources_down_section,
    versions_section,
    workers_section,
)
from exporter.failures.metrics import FailuresRenderer
from exporter.failures.tracker import FailureTracker
from exporter.failures.web import failures_section
from exporter.healer.metrics import collect_autoheal
from exporter.healer.web import autoheal_section
from exporter.model import ClusterSnapshot
from exporter.offsets.brokers import Brokers
from exporter.offsets.metrics import OffsetsRenderer
from exporter.offsets.reader import Offsets, OffsetsReader
from exporter.offsets.web import offsets_section
from exporter.own_metrics import collect_exporter, collect_reload, collect_warnings
from exporter.page import PageSection
from exporter.render import Collected, MetricGroup
from exporter.repeats import RepeatLimiter
from exporter.sourcetopics.metrics import SourceTopicsRenderer
from exporter.sourcetopics.reader import SourceTopicsJobs, SourceTopicsReader
from exporter.store import Step, View
from exporter.web import Route

if TYPE_CHECKING:
    from exporter.cloud.source import CloudSource
    from exporter.healer.runner import Healer

log = structlog.get_logger("exporter")

# A job returns what it read, in the order to publish it: snapshots (``ClusterSnapshot``) and readings.
JobFunc = Callable[[], Awaitable[Sequence[object]]]
# A cluster's brokers from elsewhere than ``clusters[].kafka`` (the demo's simulated topics), or None.
BrokersOf = Callable[[ClusterConfig], Brokers | None]


def metric_groups() -> list[MetricGroup]:
    """Every group /metrics serves, in exposition order; new instances (a fast group's cache belongs to one
    exposition)."""
    return [
        ConnectRenderer(),
        Collected(collect_exporter),
        Collected(collect_reload),
        Collected(collect_warnings),
        Collected(collect_cloud),
        Collected(collect_autoheal),
        FailuresRenderer(),
        OffsetsRenderer(),
        SourceTopicsRenderer(),
    ]


# The status page, top to bottom: the sources that are down lead, then the fleet view.
PAGE_SECTIONS: tuple[PageSection, ...] = (
    sources_down_section,
    failures_section,
    clusters_section,
    problems_section,
    workers_section,
    versions_section,
    offsets_section,
    autoheal_section,
)


# -- sources and derived steps -------------------------------------------------------------------------------


class Host(Protocol):
    """What the daemon lends a plug: the store's view and its writes (``publish`` is the one way a reading gets
    in), the jobs it schedules, the routes and closers of the web server, and what the sources share."""

    clients: dict[str, httpx.AsyncClient]  # each Connect cluster's client, shared by its sources and the healer
    clock: Callable[[], float]
    warnings: RepeatLimiter

    @property
    def view(self) -> View: ...
    @property
    def serving(self) -> bool: ...  # the web server is up: its routes are fixed
    @property
    def brokers(self) -> BrokersOf: ...

    def publish(self, *items: object) -> None: ...
    def expect(self, name: str) -> None: ...
    def discard(self, kind: type[object]) -> None: ...
    def add_job(self, job_id: str, interval: float, func: JobFunc, *, deadline: float | None = None) -> None: ...
    def remove_job(self, job_id: str) -> None: ...
    def add_route(self, route: Route) -> None: ...
    def add_closer(self, closer: Callable[[], Awaitable[None]]) -> None: ...
    def forget_cluster(self, name: str) -> None: ...


class Plug:
    """One feature's sources and derived step. Every hook does nothing unless the feature overrides it."""

    def step(self) -> Step | None:
        """The derived step the store hands every new snapshot to (its place: the plug's place in ``plugs()``)."""
        return None

    def add_cluster(self, host: Host, cluster: ClusterConfig, client: httpx.AsyncClient) -> None:
        """Add the jobs a ``clusters[]`` entry asks for (at start, or a reload added or changed it)."""

    def drop_cluster(self, host: Host, name: str) -> None:
        """A reload removed or replaced the cluster: its jobs end and its readings lose it."""

    def forget_cluster(self, host: Host, name: str) -> None:
        """The cluster is gone (no longer configured): drop what was derived of it."""

    def attach(self, host: Host, config: Config) -> None:
        """At start, after the clusters: what the configuration as a whole asks for."""

    async def reload(self, host: Host, old: Config, new: Config) -> None:
        """A reload swapped the configuration (after the clusters were dropped and added)."""

    async def aclose(self) -> None:
        """At stop, after the closers and before the clusters' clients close."""


def cluster_client(cluster: ClusterConfig) -> httpx.AsyncClient:
    """A Connect cluster's client (pool, TLS, auth), shared by every source of the cluster and by the healer."""
    return build_http_client(cluster)


def connect_job_id(cluster: str) -> str:
    return f"connect:{cluster}"


def offsets_job_id(cluster: str) -> str:
    return f"offsets:{cluster}"


def source_topics_job_id(cluster: str) -> str:
    return f"source-topics:{cluster}"


class ConnectPlug(Plug):
    """The Connect REST poller: one job per cluster, one snapshot per run."""

    def __init__(self) -> None:
        self.pollers: dict[str, ConnectPoller] = {}

    def add_cluster(self, host: Host, cluster: ClusterConfig, client: httpx.AsyncClient) -> None:
        poller = ConnectPoller(
            cluster,
            client,
            clock=host.clock,
            last=host.view.clusters.get(cluster.name),
            warnings=host.warnings,
        )
        self.pollers[cluster.name] = poller
        host.expect(cluster.name)
        host.add_job(
            connect_job_id(cluster.name), cluster.poll_interval, partial(self._poll, poller), deadline=cluster.deadline
        )

    def drop_cluster(self, host: Host, name: str) -> None:
        host.remove_job(connect_job_id(name))
        self.pollers.pop(name, None)

    async def _poll(self, poller: ConnectPoller) -> Sequence[object]:
        snapshot = await poller.poll()
        if self.pollers.get(poller.cluster.name) is not poller:
            return ()  # a reload replaced or removed the cluster while this poll ran
        return (snapshot,)


class FailuresPlug(Plug):
    """The failure tracker: a ``FailuresReading`` from every snapshot, Connect and Cloud."""

    def __init__(self) -> None:
        self.tracker = FailureTracker()

    def step(self) -> Step:
        return self.tracker.step

    def forget_cluster(self, host: Host, name: str) -> None:
        host.publish(self.tracker.forget(name))


class OffsetsPlug(Plug):
    """The offsets readers: a job per cluster that enables them, through the cluster's client; each notes its
    cluster's newest snapshot (the derived step) and its next run reads the connectors it names."""

    def __init__(self) -> None:
        self.offsets = Offsets()

    def step(self) -> Step:
        return self.offsets.step

    def add_cluster(self, host: Host, cluster: ClusterConfig, client: httpx.AsyncClient) -> None:
        if not cluster.offsets_enabled:
            return
        reader = OffsetsReader(cluster, client, clock=host.clock, warnings=host.warnings, brokers=host.brokers(cluster))
        self.offsets.add(reader)
        host.add_job(
            offsets_job_id(cluster.name), cluster.offsets_interval, partial(self._run, reader), deadline=reader.deadline
        )

    def drop_cluster(self, host: Host, name: str) -> None:
        if name in self.offsets.readers:
            host.remove_job(offsets_job_id(name))
            host.publish(self.offsets.remove(name))

    async def _run(self, reader: OffsetsReader) -> Sequence[object]:
        reading = await self.offsets.run(reader)
        return () if reading is None else (reading,)


class SourceTopicsPlug(Plug):
    """The sources' topics and their growth at the brokers: a job per cluster with ``kafka`` that enables it."""

    def __init__(self) -> None:
        self.jobs = SourceTopicsJobs()

    def step(self) -> Step:
        return self.jobs.step

    def add_cluster(self, host: Host, cluster: ClusterConfig, client: httpx.AsyncClient) -> None:
        if cluster.kafka is None or not cluster.source_topics.enabled:
            return
        reader = SourceTopicsReader(cluster, client, clock=host.clock)
        self.jobs.add(reader)
        host.add_job(
            source_topics_job_id(cluster.name),
            cluster.source_topics.interval,
            partial(self._run, reader),
            deadline=reader.deadline,
        )

    def drop_cluster(self, host: Host, name: str) -> None:
        if name in self.jobs.readers:
            host.remove_job(source_topics_job_id(name))
            host.publish(self.jobs.remove(name))

    async def _run(self, reader: SourceTopicsReader) -> Sequence[object]:
        reading = await self.jobs.run(reader)
        return () if reading is None else (reading,)


def wants_healer(config: Config) -> bool:
    cloud = config.confluent_cloud
    return any(c.autoheal.enabled for c in config.clusters) or (cloud is not None and cloud.autoheal.enabled)


class HealerPlug(Plug):
    """Auto-heal (docs/autoheal.md), once some cluster enables it: steps on each new snapshot and wakes the
    cluster's round, whose ``HealerReading`` comes back through ``publish``. It restarts through its cluster's own
    client, which the daemon closes last."""

    def __init__(self) -> None:
        self.healer: Healer | None = None

    def step(self) -> Step:
        return self._step

    def _step(self, snapshot: ClusterSnapshot, view: View) -> None:
        if self.healer is not None:
            self.healer.step(snapshot, view)  # returns at once: restarts never delay this job or the next poll

    def attach(self, host: Host, config: Config) -> None:
        if wants_healer(config):
            self._start(host, config)

    async def reload(self, host: Host, old: Config, new: Config) -> None:
        if self.healer is not None:
            await self.healer.reconfigure(new.clusters)
        elif wants_healer(new):
            self._start(host, new)

    def _start(self, host: Host, config: Config) -> None:
        from exporter.healer.runner import Healer
        from exporter.healer.web import retry_handler

        healer = self.healer = Healer(config.clusters, host.publish, host.clients, clock=host.clock)
        healer.attach()
        if not host.serving:
            host.add_route(("POST", "/-/autoheal/retry", retry_handler(healer)))
        else:  # aiohttp's routes are fixed once serving
            log.warning("autoheal_retry_endpoint_needs_restart", hint="auto-heal was enabled by a reload")
        host.add_closer(healer.stop)


class CloudPlug(Plug):
    """Confluent Cloud: a status job per watched Kafka cluster and one metrics job. Its managed clusters are
    handed to the healer (their mode is published even when off): the shared policy sees their snapshots through
    ``policy_view``, and restarts go through the Cloud source's client and budget."""

    def __init__(self, healer: HealerPlug) -> None:
        self.source: CloudSource | None = None
        self._healer = healer
        self._handed_to: Healer | None = None

    def attach(self, host: Host, config: Config) -> None:
        if config.confluent_cloud is not None:
            self._start(host, config)
        self._heal(config)

    async def reload(self, host: Host, old: Config, new: Config) -> None:
        if new.confluent_cloud != old.confluent_cloud:
            await self._stop(host, keep={c.name for c in new.clusters})
            if new.confluent_cloud is not None:
                self._start(host, new)
        self._heal(new)

    async def aclose(self) -> None:
        if self.source is not None:
            await self.source.aclose()

    def _start(self, host: Host, config: Config) -> None:
        from exporter.cloud.source import CloudSource

        assert config.confluent_cloud is not None
        cloud = self.source = CloudSource(config.confluent_cloud, last=host.view.clusters)
        self._handed_to = None
        for name in cloud.clusters:
            host.expect(name)
        host.publish(cloud.reading())
        for job in cloud.jobs():
            host.add_job(job.id, job.interval, job.run)

    def _heal(self, config: Config) -> None:
        """Hand the managed clusters to the healer, once per source and healer."""
        healer, cloud = self._healer.healer, self.source
        if healer is None or cloud is None or config.confluent_cloud is None or self._handed_to is healer:
            return
        from exporter.cloud.heal import CloudRestarter, policy_view
        from exporter.healer.runner import ManagedCluster

        autoheal = config.confluent_cloud.autoheal
        for name in cloud.clusters:
            restarter = CloudRestarter(cloud.http, cloud.connectors_url(name), name)
            healer.add_managed(ManagedCluster(name, autoheal, restarter, policy_view))
        self._handed_to = healer

    async def _stop(self, host: Host, *, keep: set[str]) -> None:
        cloud, self.source = self.source, None
        self._handed_to = None
        if cloud is None:
            return
        from exporter.cloud.reading import CloudReading

        for job in cloud.jobs():
            host.remove_job(job.id)
        if self._healer.healer is not None:
            await self._healer.healer.remove_managed(cloud.clusters)  # before its client closes
        await cloud.aclose()
        for name in cloud.clusters:
            if name not in keep:
                host.forget_cluster(name)
        host.discard(CloudReading)


def plugs() -> list[Plug]:
    """Every feature's sources and derived step, new instances for one daemon, in the order of the derived steps
    (failure tracker, offsets, source topics, healer) and of the reload hooks."""
    healer = HealerPlug()
    return [ConnectPlug(), FailuresPlug(), OffsetsPlug(), SourceTopicsPlug(), healer, CloudPlug(healer)]
