"""Which e2e run proves which alerts and panels: the real-offsets run (test_real_offsets_e2e.py) proves those
that need a real broker's lag, the simulated run (test_dashboards_alerts_e2e.py) the rest."""

from __future__ import annotations

from exporter.families import (
    CONNECTOR_OFFSETS_LAST_CHANGE,
    KAFKA_ERRORS,
    KAFKA_UP,
    SINK_COMMITTED_OFFSETS,
    SINK_LAG_RECORDS,
)

# Alerts whose scenario is here rather than in the simulated run (test_dashboards_alerts_e2e.py): they need the
# brokers (a sink's lag, a source's topic growth).
REAL_KAFKA_ALERTS = ("KafkaConnectSinkStalled", "KafkaConnectSourceSilent")
# Families only the brokers give; the simulated run has none, so their panels are proven here.
BROKER_FAMILIES = frozenset({SINK_LAG_RECORDS.sample_name, KAFKA_UP.sample_name, KAFKA_ERRORS.sample_name})
# The "throughput and lag" row's families: proven here, where sinks commit, stall and lag for real.
OFFSETS_PANEL_FAMILIES = BROKER_FAMILIES | {SINK_COMMITTED_OFFSETS.sample_name, CONNECTOR_OFFSETS_LAST_CHANGE.name}
