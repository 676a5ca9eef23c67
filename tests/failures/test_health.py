"""connector_health: one answer per connector, rule by rule (docs/metrics.md)."""

from __future__ import annotations

import pytest

from exporter.failures.health import HEALTHS, connector_health
from exporter.model import Connector
from tests.failures.connectors import conn


def c(state: str, *tasks: str, tasks_max: int | None = None) -> Connector:
    return conn("x", state, *tasks, tasks_max=tasks_max)


@pytest.mark.parametrize(
    ("connector", "health"),
    [
        (c("RUNNING", "RUNNING", "RUNNING", tasks_max=2), "healthy"),
        (c("RUNNING", "RUNNING", "RESTARTING", "UNASSIGNED"), "healthy"),  # passing task states
        (c("RUNNING", "RUNNING", "FAILED"), "degraded"),  # some tasks failed
        (c("RUNNING", "RUNNING", tasks_max=2), "degraded"),  # fewer tasks than tasks.max
        (c("RUNNING"), "degraded"),  # RUNNING with zero tasks
        (c("RUNNING", "FAILED", "FAILED"), "failed"),  # every task failed
        (c("FAILED", "RUNNING"), "failed"),
        (c("PAUSED", "FAILED"), "paused"),  # the operator's decision comes first
        (c("STOPPED"), "stopped"),
        (c("UNASSIGNED", "RUNNING"), "unknown"),
        (c("RESTARTING"), "unknown"),
        (c("HIBERNATING", "RUNNING"), "unknown"),
        # Confluent Cloud
        (c("DEGRADED", "RUNNING", "USER_ACTIONABLE_ERROR"), "degraded"),
        (c("RUNNING", "SYSTEM_ERROR"), "failed"),
        (c("PROVISIONING"), "unknown"),
    ],
)
def test_health_rules(connector: Connector, health: str) -> None:
    assert connector_health(connector) == health
    assert health in HEALTHS


def test_lost_workers_and_stalled_sinks_degrade_a_running_connector() -> None:
    ok = c("RUNNING", "RUNNING", tasks_max=1)
    assert connector_health(ok, tasks_on_lost_workers=0, stalled=False) == "healthy"
    assert connector_health(ok, tasks_on_lost_workers=1) == "degraded"
    assert connector_health(ok, stalled=True) == "degraded"
    assert connector_health(c("PAUSED", "RUNNING"), stalled=True) == "paused"  # not a cause for other states
    assert connector_health(c("FAILED"), tasks_on_lost_workers=3) == "failed"
