"""Auto-heal metric families, rendered from the immutable ``HealerReading`` the healer publishes.

The healer publishes a ``HealerReading`` into the store after every decision round; the collector calls
``collect_autoheal(view)`` at scrape time. Series of a deleted connector disappear with the round that
notices the deletion.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from exporter.families import (
    AUTOHEAL_BREAKER_OPEN,
    AUTOHEAL_LAST_RESTART,
    AUTOHEAL_MODE,
    AUTOHEAL_NEXT_ATTEMPT,
    AUTOHEAL_PERSISTENT_FAILURE,
    AUTOHEAL_PERSISTENT_FAILURES,
    AUTOHEAL_RESTARTS,
    AUTOHEAL_SUPPRESSED,
)
from exporter.healer.policy import REASONS
from exporter.healer.reading import HealerReading
from exporter.model import AUTOHEAL_MODES
from exporter.render import metric_family
from exporter.store import View


def collect_autoheal(view: View) -> Iterator[Metric]:
    """Sample::

    kafka_connect_autoheal_restarts_total{connect_cluster="prod",connector="orders",kind="task",outcome="accepted"} 2
    kafka_connect_autoheal_suppressed_total{connect_cluster="prod",reason="backoff"} 14.0
    kafka_connect_autoheal_persistent_failure{connect_cluster="prod",connector="orders-sink",task="1"} 1.0
    """
    healer = view.reading(HealerReading)
    if healer is None:
        return
    mode = metric_family(AUTOHEAL_MODE)
    restarts = metric_family(AUTOHEAL_RESTARTS)
    suppressed = metric_family(AUTOHEAL_SUPPRESSED)
    persistent_count = metric_family(AUTOHEAL_PERSISTENT_FAILURES)
    persistent = metric_family(AUTOHEAL_PERSISTENT_FAILURE)
    next_attempt = metric_family(AUTOHEAL_NEXT_ATTEMPT)
    breaker = metric_family(AUTOHEAL_BREAKER_OPEN)
    last_restart = metric_family(AUTOHEAL_LAST_RESTART)
    enabled = False
    for name in sorted(healer.clusters):
        c = healer.clusters[name]
        for m in AUTOHEAL_MODES:
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
        for key, at in sorted(c.last_restart.items(), key=lambda kv: kv[0].sort_key()):
            last_restart.add_metric([name, key.connector, key.task_label], at)
    yield mode
    if enabled:
        yield from (restarts, suppressed, persistent_count, persistent, next_attempt, breaker, last_restart)
