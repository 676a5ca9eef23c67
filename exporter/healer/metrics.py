"""Auto-heal metric families, rendered from the immutable ``HealerReading`` the healer publishes.

The healer publishes a ``HealerReading`` into the store after every decision round; the collector calls
``collect_autoheal(view)`` at scrape time. Series of a deleted connector disappear with the round that
notices the deletion.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.healer.policy import REASONS
from exporter.healer.reading import HealerReading
from exporter.store import View

CLUSTER = "connect_cluster"
MODES: tuple[str, ...] = ("off", "dry-run", "enforce")


def collect_autoheal(view: View) -> Iterator[Metric]:
    """Sample::

    kafka_connect_autoheal_restarts_total{connect_cluster="prod",connector="orders",kind="task",outcome="accepted"} 2
    kafka_connect_autoheal_suppressed_total{connect_cluster="prod",reason="backoff"} 14.0
    kafka_connect_autoheal_persistent_failure{connect_cluster="prod",connector="orders-sink",task="1"} 1.0
    """
    healer = view.reading(HealerReading)
    if healer is None:
        return
    mode = GaugeMetricFamily(
        "kafka_connect_autoheal_mode",
        "Auto-heal mode of the cluster: 1 for the configured mode (off, dry-run, enforce), 0 for the others.",
        labels=[CLUSTER, "mode"],
    )
    restarts = CounterMetricFamily(
        "kafka_connect_autoheal_restarts",
        "Restarts the healer decided on, by target kind (connector, task) and outcome (accepted, conflict, "
        "not_found, error; dry_run when only logged).",
        labels=[CLUSTER, "connector", "kind", "outcome"],
    )
    suppressed = CounterMetricFamily(
        "kafka_connect_autoheal_suppressed",
        "Decisions not to restart a FAILED target yet, by reason (grace, backoff, budget, breaker, denied, "
        "dry_run, scope, cap). One per target and decision round.",
        labels=[CLUSTER, "reason"],
    )
    persistent_count = GaugeMetricFamily(
        "kafka_connect_autoheal_persistent_failures",
        "Targets that reached the attempt cap and are left alone until they recover or a retry is requested.",
        labels=[CLUSTER],
    )
    persistent = GaugeMetricFamily(
        "kafka_connect_autoheal_persistent_failure",
        "1 for each target in persistent failure (task is empty for the connector instance itself).",
        labels=[CLUSTER, "connector", "task"],
    )
    next_attempt = GaugeMetricFamily(
        "kafka_connect_autoheal_next_attempt_timestamp_seconds",
        "Earliest time (Unix seconds) grace period and backoff allow the next restart of a FAILED target.",
        labels=[CLUSTER, "connector", "task"],
    )
    breaker = GaugeMetricFamily(
        "kafka_connect_autoheal_breaker_open",
        "1 while the mass-failure breaker holds restarts of the cluster, else 0.",
        labels=[CLUSTER],
    )
    enabled = False
    for name in sorted(healer.clusters):
        c = healer.clusters[name]
        for m in MODES:
            mode.add_metric([name, m], 1.0 if m == c.mode else 0.0)
        if c.mode == "off":
            continue
        enabled = True
        for (connector, kind, outcome), n in sorted(c.restarts.items()):
            restarts.add_metric([name, connector, kind, outcome], float(n))
        for reason in REASONS:
            suppressed.add_metric([name, reason], float(c.suppressed.get(reason, 0)))
        persistent_count.add_metric([name], float(len(c.persistent)))
        for key in c.persistent:
            persistent.add_metric([name, key.connector, key.task_label], 1.0)
        for key, at in sorted(c.next_attempt.items(), key=lambda kv: kv[0].sort_key()):
            next_attempt.add_metric([name, key.connector, key.task_label], at)
        breaker.add_metric([name], 1.0 if c.breaker_open else 0.0)
    yield mode
    if enabled:
        yield from (restarts, suppressed, persistent_count, persistent, next_attempt, breaker)
