"""Prometheus families of the Confluent Cloud source, rendered from the published ``CloudReading``.

Managed connectors' state, info and tasks come out of the shared ``kafka_connect_*`` families (their
snapshots are ordinary ``ClusterSnapshot`` objects of kind CLOUD); this group adds throughput counters
and the health of the two Cloud APIs.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from exporter.cloud.reading import CloudReading
from exporter.families import CLOUD_API_ERRORS, CLOUD_API_UP, CLOUD_LATE, CLOUD_NEWEST_BUCKET, CLOUD_THROUGHPUT
from exporter.render import metric_family
from exporter.store import View


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
        counter = CLOUD_THROUGHPUT[metric]
        family = metric_family(counter, counter.help + lag)
        for s in reading.series:
            family.add_metric([s.cluster, s.connector, s.connector_id], s.values.get(metric, 0.0))
        yield family

    newest = metric_family(CLOUD_NEWEST_BUCKET)
    for cluster in reading.clusters:
        ts = reading.newest_bucket.get(cluster)
        if ts is not None:
            newest.add_metric([cluster], ts)
    yield newest

    late = metric_family(CLOUD_LATE)
    for (cluster, metric), value in reading.late.items():
        late.add_metric([cluster, metric], value)
    yield late

    up = metric_family(CLOUD_API_UP)
    for api, ok in reading.api_up.items():
        up.add_metric([api], 1.0 if ok else 0.0)
    yield up

    errors = metric_family(CLOUD_API_ERRORS)
    for (api, reason), n in reading.api_errors.items():
        errors.add_metric([api, reason], float(n))
    yield errors
