"""What the failure tracker publishes after each snapshot: current failures, transitions and a timeline.

The tracker (``exporter.failures.tracker``) builds a ``FailuresReading``; readers (``exporter.failures.metrics``,
``exporter.failures.web``) get it with ``view.reading(FailuresReading)``. Plain frozen data, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Failure:
    """One FAILED connector or task (``task`` None for the connector instance itself)."""

    connector: str
    task: int | None
    state: str
    exception: str
    root_cause: str
    first_line: str  # for pages and logs, never for labels
    since: float  # the first poll that saw it failed (epoch seconds)
    worker_id: str

    @property
    def task_label(self) -> str:
        return "" if self.task is None else str(self.task)


@dataclass(frozen=True, slots=True)
class Transition:
    at: float  # snapshot time of the poll that saw the new state
    cluster: str
    connector: str
    task: int | None
    from_state: str
    to_state: str


@dataclass(frozen=True, slots=True)
class ClusterFailures:
    failures: tuple[Failure, ...] = ()  # by connector, connector instance first, then tasks by id
    # (connector, to_state) -> changes seen since the exporter started (deleted connectors are forgotten)
    transitions: Mapping[tuple[str, str], int] = field(default_factory=lambda: MappingProxyType({}))
    timeline: tuple[Transition, ...] = ()  # the last transitions, oldest first


@dataclass(frozen=True, slots=True)
class FailuresReading:
    clusters: Mapping[str, ClusterFailures] = field(default_factory=lambda: MappingProxyType({}))
