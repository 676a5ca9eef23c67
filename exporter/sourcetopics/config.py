"""The ``clusters[].source_topics`` config section: reading source connectors' topics and heartbeats.

Active only with ``clusters[].kafka`` (the brokers are where a source's output is seen). A source connector's
heartbeat topic is Debezium's ``__debezium-heartbeat.<topic.prefix>`` (its expected interval the connector's
``heartbeat.interval.ms``), or a topic a ``heartbeats`` rule marks.
"""

from __future__ import annotations

import re
from typing import Protocol

from pydantic import Field

from exporter.settings import Duration, StrictModel


class HeartbeatRule(StrictModel):
    """Connectors whose name matches ``connector`` (whole name) write ``topic`` (whole name) every ``interval``."""

    connector: re.Pattern[str]
    topic: re.Pattern[str]
    interval: Duration = Field(gt=0)


class SourceTopicsConfig(StrictModel):
    enabled: bool = True
    # How often the brokers' end offsets of the sources' topics are read (one batched request). The topic lists
    # themselves are read at the offsets cadence (offsets_interval) and rate bound (offsets_max_rate).
    interval: Duration = Field(default=10.0, ge=1.0)
    # A RUNNING source whose heartbeat topic has not grown for silent_after x its expected interval is silent.
    silent_after: float = Field(default=5.0, ge=1.0, le=1000.0)
    # ... and for at least this long (a read cadence must fit in the window, and a 1 s heartbeat is not 5 s).
    silent_min: Duration = Field(default=20.0, ge=1.0)
    heartbeats: list[HeartbeatRule] = []


class SourceTopicsSettings(StrictModel):
    """The ``source_topics`` key of a ``clusters[]`` entry (``exporter.config.ClusterConfig`` composes it)."""

    # With clusters[].kafka: source connectors' topics, their growth and silent sources (heartbeat topics).
    source_topics: SourceTopicsConfig = SourceTopicsConfig()


class BrokerSettings(Protocol):
    """What reading the brokers needs of ``clusters[].kafka`` (``exporter.offsets.config.KafkaConfig`` has it)."""

    @property
    def request_timeout(self) -> float: ...
    def client_settings(self) -> dict[str, str]: ...


class SourceTopicsCluster(Protocol):
    """What the source-topics reader reads of its cluster's configuration (``exporter.config.ClusterConfig``)."""

    @property
    def name(self) -> str: ...
    @property
    def urls(self) -> list[str]: ...
    @property
    def offsets_interval(self) -> float: ...
    @property
    def offsets_max_rate(self) -> float: ...
    @property
    def kafka(self) -> BrokerSettings | None: ...
    @property
    def source_topics(self) -> SourceTopicsConfig: ...
    def watches(self, connector: str) -> bool: ...
