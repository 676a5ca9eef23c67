"""The simulated connector and its tasks, one shape for both simulated services.

A Connect worker and Confluent Cloud show the same thing: a named connector with a type, a config, a state,
a trace and numbered tasks. What only one of them keeps is data on the side, in fields the other leaves at
their defaults: a self-managed cluster's bookkeeping (target state, owning worker, pending restarts,
persistent faults) and a managed connector's place, id and per-minute throughput.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from enum import StrEnum

MINUTE = 60  # seconds in one Metrics API bucket


class TargetState(StrEnum):
    """The operator's intent (TargetState in Connect), distinct from the reported status state."""

    STARTED = "STARTED"
    PAUSED = "PAUSED"
    STOPPED = "STOPPED"


@dataclass(slots=True)
class SimTask:
    id: int
    state: str
    trace: str | None = None  # the Cloud's task "msg"
    # A Connect worker's bookkeeping
    worker: int = 0  # index of the owning SimWorker
    has_status: bool = True
    fault: str | None = None  # persistent fault: every (re)start fails with this trace
    restart_pending: bool = False  # RESTARTING until the next tick()


@dataclass(slots=True)
class SimConnector:
    name: str
    config: dict[str, str]
    type: str  # source | sink (| unknown on a Connect worker)
    state: str
    tasks: list[SimTask] = field(default_factory=list)
    trace: str | None = None
    # A Connect worker's bookkeeping
    target: TargetState = TargetState.STARTED
    worker: int = 0
    has_status: bool = True
    info_vanished: bool = False  # expand=info answers null (AbstractHerder#connectorInfo returned null)
    fault: str | None = None
    restart_pending: bool = False
    topics: list[str] | None = None  # None: derived from the config
    # Confluent Cloud's: where the managed connector lives, its id, its lifetime and throughput
    env: str = ""
    cluster: str = ""
    id: str = ""
    created_at: float = 0.0
    deleted_at: float | None = None
    # Per-minute deltas: a constant per metric, overridden minute by minute with ``values``.
    rates: dict[str, float] = field(default_factory=dict)
    values: dict[tuple[str, int], float] = field(default_factory=dict)
    noise: bool = False

    @property
    def class_name(self) -> str:
        return self.config.get("connector.class", "")

    @property
    def tasks_max(self) -> int:
        try:
            return max(0, int(self.config.get("tasks.max", "1")))
        except ValueError:
            return 1

    def value(self, metric: str, minute: int) -> float | None:
        """The delta of one minute bucket, or None when the connector did not exist in that minute."""
        if minute + MINUTE <= self.created_at or (self.deleted_at is not None and minute >= self.deleted_at):
            return None
        if (metric, minute) in self.values:
            return self.values[(metric, minute)]
        if metric in self.rates:
            if self.noise:  # deterministic +-50% per minute, so graphs move
                factor = 0.5 + zlib.crc32(f"{self.id}/{metric}/{minute}".encode()) % 1000 / 1000
                return float(round(self.rates[metric] * factor))
            return self.rates[metric]
        return None
