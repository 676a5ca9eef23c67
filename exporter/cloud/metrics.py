"""Prometheus families of the Confluent Cloud source, rendered from the published ``CloudReading``.

Managed connectors' state, info and tasks come out of the shared ``kafka_connect_*`` families (their
snapshots are ordinary ``ClusterSnapshot`` objects of kind CLOUD); this group adds throughput counters
and the health of the two Cloud APIs.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.cloud.reading import CloudReading
from exporter.store import View

CLUSTER = "connect_cluster"

# Short metric name -> (Prometheus family name without _total, what one unit is).
FAMILIES: dict[str, tuple[str, str]] = {
    "received_records": ("kafka_connect_cloud_received_records", "Records the sink connector received from Kafka"),
    "sent_records": (
        "kafka_connect_cloud_sent_records",
        "Records the source connector wrote to Kafka, after transformations",
    ),
    "received_bytes": ("kafka_connect_cloud_received_bytes", "Bytes the sink connector received from Kafka"),
    "sent_bytes": ("kafka_connect_cloud_sent_bytes", "Bytes the source connector wrote to Kafka"),
    "dead_letter_queue_records": (
        "kafka_connect_cloud_dead_letter_queue_records",
        "Records the connector wrote to its dead letter queue topic",
    ),
}


def collect_cloud(view: View) -> Iterator[Metric]:
    """Sample::

    kafka_connect_cloud_sent_records_total{connect_cluster="prod",connector="orders-src",connector_id="lcc-1"} 1.2e+06
    kafka_connect_cloud_newest_bucket_timestamp_seconds{connect_cluster="prod"} 1.7e+09
    kafka_connect_cloud_api_up{api="metrics"} 1.0
    """
    reading = view.reading(CloudReading)
    if reading is None:
        return
    lag = (
        f" Counted from the Metrics API's per-minute deltas once a minute is {reading.metrics_delay:g}s old"
        f" (polled every {reading.metrics_interval:g}s), so it trails real time by about that much;"
        " use rate() or increase()."
    )
    for metric in reading.metrics:
        name, what = FAMILIES[metric]
        family = CounterMetricFamily(
            name,
            f"{what} since the exporter started (Confluent Cloud io.confluent.kafka.connect/{metric})." + lag,
            labels=[CLUSTER, "connector", "connector_id"],
        )
        for s in reading.series:
            family.add_metric([s.cluster, s.connector, s.connector_id], s.values.get(metric, 0.0))
        yield family

    newest = GaugeMetricFamily(
        "kafka_connect_cloud_newest_bucket_timestamp_seconds",
        "Start (Unix time) of the newest minute bucket added to the throughput counters of the managed"
        " cluster, for all metrics. Absent until the first minute is counted.",
        labels=[CLUSTER],
    )
    for cluster in reading.clusters:
        ts = reading.newest_bucket.get(cluster)
        if ts is not None:
            newest.add_metric([cluster], ts)
    yield newest

    up = GaugeMetricFamily(
        "kafka_connect_cloud_api_up",
        "1 if the last requests to the Confluent Cloud API succeeded, 0 if they failed (401, 403, 429 after"
        " retries, 5xx, timeout; the reason is in kafka_connect_cloud_api_errors_total and the log).",
        labels=["api"],
    )
    for api, ok in reading.api_up.items():
        up.add_metric([api], 1.0 if ok else 0.0)
    yield up

    errors = CounterMetricFamily(
        "kafka_connect_cloud_api_errors",
        "Failed requests to the Confluent Cloud API since the exporter started, by API and reason"
        " (every attempt counts, retries included).",
        labels=["api", "reason"],
    )
    for (api, reason), n in reading.api_errors.items():
        errors.add_metric([api, reason], float(n))
    yield errors
