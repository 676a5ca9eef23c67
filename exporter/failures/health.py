"""One answer per connector: ``healthy``, ``degraded``, ``failed``, ``paused``, ``stopped`` or ``unknown``.

A pure function of the connector's snapshot and of what other features know about it (tasks on a lost worker,
a stalled sink, a silent source), each an optional input: without it, that cause of ``degraded`` is simply not
considered.
docs/metrics.md ("kafka_connect_connector_health") states the rules; the order below is theirs.
"""

from __future__ import annotations

from exporter.model import CLOUD_ERROR_STATES, CONNECTOR_HEALTHS, FAILED, RUNNING, Connector

HEALTHS: tuple[str, ...] = CONNECTOR_HEALTHS
HEALTHY, DEGRADED, HEALTH_FAILED, PAUSED, STOPPED, UNKNOWN = HEALTHS

# States of a task or connector that mean it failed: Kafka Connect's FAILED, Confluent Cloud's error states.
FAILED_STATES: frozenset[str] = frozenset({FAILED, *CLOUD_ERROR_STATES})
_DEGRADED = "DEGRADED"  # Confluent Cloud: "operational but not at full capacity"
_CHOSEN = {"PAUSED": PAUSED, "STOPPED": STOPPED}


def is_failed(state: str) -> bool:
    return state in FAILED_STATES


def connector_health(
    connector: Connector,
    *,
    tasks_on_lost_workers: int | None = None,
    stalled: bool | None = None,
    silent: bool | None = None,
) -> str:
    """The health of one connector (see the module docstring for the optional inputs)."""
    state = connector.state
    if state in FAILED_STATES:
        return HEALTH_FAILED
    if state not in (RUNNING, _DEGRADED):
        # An operator's choice, or UNASSIGNED, RESTARTING, PROVISIONING, NONE or a state this version does not know.
        return _CHOSEN.get(state, UNKNOWN)
    tasks = connector.tasks
    failed = sum(1 for t in tasks if t.state in FAILED_STATES)
    if tasks and failed == len(tasks):
        return HEALTH_FAILED
    if (
        state == _DEGRADED
        or failed
        or not tasks
        or (connector.tasks_max is not None and len(tasks) < connector.tasks_max)
        or (tasks_on_lost_workers or 0) > 0
        or stalled
        or silent
    ):
        return DEGRADED
    return HEALTHY
