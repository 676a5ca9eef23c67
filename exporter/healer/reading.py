"""What the healer publishes into the store after every decision round (and every retry request).

The healer (``exporter.healer.runner``) builds a ``HealerReading``; readers (``exporter.healer.metrics``,
``exporter.healer.web``) get it with ``view.reading(HealerReading)``. Plain frozen data, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.healer.policy import TargetKey


@dataclass(frozen=True, slots=True)
class ClusterHealReading:
    mode: str
    scope: str
    # (connector, kind, outcome) -> restarts; kind is "connector" or "task"
    restarts: Mapping[tuple[str, str, str], int] = field(default_factory=lambda: MappingProxyType({}))
    suppressed: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))  # by reason
    persistent: tuple[TargetKey, ...] = ()
    unaddressable: tuple[TargetKey, ...] = ()  # names Connect cannot address over REST (a backslash or "%")
    next_attempt: Mapping[TargetKey, float] = field(default_factory=lambda: MappingProxyType({}))
    breaker_open: bool = False
    local_worker_id: str | None = None
    skipped: Mapping[TargetKey, str] = field(default_factory=lambda: MappingProxyType({}))  # -> skip rule name
    last_restart: Mapping[TargetKey, float] = field(default_factory=lambda: MappingProxyType({}))  # accepted ones
    stopped: str | None = None  # why the healer stopped restarting on this cluster (no restart endpoint)


@dataclass(frozen=True, slots=True)
class HealerReading:
    """One entry per configured cluster (mode "off" for those that do not enable auto-heal)."""

    clusters: Mapping[str, ClusterHealReading] = field(default_factory=lambda: MappingProxyType({}))
