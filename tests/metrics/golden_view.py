"""The golden files' view: a small hand-built view that holds every kind of cluster and reading, and the files
(tests/metrics/test_golden.py renders it and compares)."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from exporter.budget import SeriesBudget
from exporter.cloud.http import REASONS
from exporter.cloud.reading import CloudReading, ThroughputSeries
from exporter.cloud.source import APIS
from exporter.config_reading import ConfigReading
from exporter.failures.reading import ClusterFailures, Failure, FailuresReading
from exporter.healer.policy import TargetKey
from exporter.healer.reading import ClusterHealReading, HealerReading
from exporter.model import (
    ClusterSnapshot,
    Connector,
    NamedWorker,
    Plugin,
    PollStats,
    SourceKind,
    Task,
    Worker,
    WorkerState,
)
from exporter.offsets.reading import ClusterOffsets, ConnectorOffsets, OffsetsReading, OffsetsStatus
from exporter.repeats import WarningsReading
from exporter.sourcetopics.reading import (
    ClusterSourceTopics,
    Heartbeat,
    SourceTopics,
    SourceTopicsReading,
    TopicGrowth,
)
from exporter.store import View

GOLDEN = Path(__file__).parent / "golden"
FILES = {False: GOLDEN / "exposition.txt", True: GOLDEN / "exposition.openmetrics.txt"}
CURRENT_FILES = {False: GOLDEN / "exposition.current.txt", True: GOLDEN / "exposition.current.openmetrics.txt"}


def golden_view(budget: SeriesBudget | None = None) -> View:
    """One self-managed cluster, one down cluster, one Cloud cluster with throughput, one healed cluster."""
    prod = ClusterSnapshot(
        cluster="prod",
        kind=SourceKind.CONNECT,
        taken_at=1_700_000_030.5,
        duration=0.042,
        up=True,
        poll_interval=30.0,
        workers=(
            Worker(
                url="http://connect-0:8083", reachable=True, version="3.9.1", commit="f745dfdc", kafka_cluster_id="Mk"
            ),
            Worker(url="http://connect-1:8083", reachable=False),
        ),
        connectors=(
            Connector(
                name="orders-sink",
                type="sink",
                class_name="io.confluent.connect.jdbc.JdbcSinkConnector",
                state="RUNNING",
                worker_id="10.0.0.12:8083",
                tasks=(
                    Task(id=0, state="RUNNING", worker_id="10.0.0.12:8083", version="10.8.4"),
                    Task(id=1, state="FAILED", worker_id="10.0.0.13:8083", trace="java.lang.Oops", version="10.8.3"),
                ),
                tasks_max=3,
                version="10.8.4",
            ),
            Connector(
                name='we"ird\\name',
                type="source",
                class_name=None,
                state="HIBERNATING",  # a state this version does not know: exported, not dropped
                worker_id="10.0.0.13:8083",
                tasks=(),
            ),
        ),
        plugins=(Plugin("org.apache.kafka.connect.file.FileStreamSinkConnector", "sink", "3.9.1"),),
        stats=PollStats(12, 2, MappingProxyType({"timeout": 2, "http_status": 1})),
        last_success=1_700_000_030.5,
        named_workers=(
            NamedWorker(
                "10.0.0.12:8083", WorkerState.REACHABLE, tasks=1, connectors=1, version="3.9.1", health="healthy"
            ),
            NamedWorker("10.0.0.13:8083", WorkerState.LOST, tasks=1, connectors=1),
        ),
    )
    down = ClusterSnapshot(
        cluster="staging",
        kind=SourceKind.CONNECT,
        taken_at=1_700_000_031.0,
        duration=5.0,
        up=False,
        poll_interval=30.0,
        workers=(Worker(url="http://staging:8083", reachable=False),),
        stats=PollStats(0, 3, MappingProxyType({"connect": 3})),
    )
    cloud = ClusterSnapshot(
        cluster="cloud",
        kind=SourceKind.CLOUD,
        taken_at=1_700_000_040.0,
        duration=0.3,
        up=True,
        poll_interval=60.0,
        connectors=(
            Connector(
                name="orders-src",
                type="source",
                class_name="PostgresCdcSource",
                state="PROVISIONING",
                worker_id="",
                tasks=(Task(id=0, state="USER_ACTIONABLE_ERROR", worker_id=""),),
                tasks_max=1,
                connector_id="lcc-1",
            ),
        ),
        stats=PollStats(5, 0),
        last_success=1_700_000_040.0,
    )
    reading = CloudReading(
        metrics=("received_records", "sent_records", "received_bytes", "sent_bytes", "dead_letter_queue_records"),
        clusters=("cloud",),
        series=(ThroughputSeries("cloud", "orders-src", "lcc-1", MappingProxyType({"sent_records": 1_234_567.0})),),
        newest_bucket=MappingProxyType({"cloud": 1_699_999_760.0}),
        late=MappingProxyType({("cloud", "sent_records"): 412.0, ("cloud", "received_records"): 0.0}),
        api_up=MappingProxyType({"connect": True, "metrics": False}),
        # As the source fills it: every (api, reason) pair in exposition order, zeros included.
        api_errors=MappingProxyType(
            {(a, r): 4 if (a, r) == ("metrics", "rate_limited") else 0 for a in APIS for r in REASONS}
        ),
    )
    healer = HealerReading(
        MappingProxyType(
            {
                "prod": ClusterHealReading(
                    mode="enforce",
                    scope="all",
                    restarts=MappingProxyType({("orders-sink", "task", "accepted"): 2}),
                    suppressed=MappingProxyType({"backoff": 3}),
                    persistent=(TargetKey("orders-sink", 1),),
                    next_attempt=MappingProxyType({TargetKey("orders-sink", 1): 1_700_000_090.0}),
                    last_restart=MappingProxyType({TargetKey("orders-sink", 1): 1_700_000_020.0}),
                ),
                "staging": ClusterHealReading(mode="off", scope="all"),
            }
        )
    )
    failures = FailuresReading(
        MappingProxyType(
            {
                "prod": ClusterFailures(
                    failures=(
                        Failure(
                            "orders-sink", 1, "FAILED", "java.lang.Oops", "java.lang.Oops", "java.lang.Oops",
                            1_700_000_000.5, "10.0.0.13:8083",
                        ),
                    ),
                    transitions=MappingProxyType({("orders-sink", "FAILED"): 2, ("orders-sink", "RUNNING"): 1}),
                ),
                "cloud": ClusterFailures(
                    failures=(
                        Failure(
                            "orders-src", 0, "USER_ACTIONABLE_ERROR", "unknown", "USER_ACTIONABLE_ERROR", "",
                            1_700_000_040.0, "",
                        ),
                    ),
                ),
            }
        )
    )  # fmt: skip
    offsets = OffsetsReading(
        MappingProxyType(
            {
                "prod": ClusterOffsets(
                    "prod",
                    OffsetsStatus.READING,
                    120.0,
                    MappingProxyType(
                        {
                            "orders-sink": ConnectorOffsets(
                                "orders-sink",
                                "sink",
                                partitions=3,
                                read_at=1_700_000_030.0,
                                unchanged_since=1_700_000_020.0,
                                last_change=1_700_000_020.0,
                                committed=MappingProxyType({"orders": 4711}),
                                lag=MappingProxyType({"orders": 12}),
                            ),
                            'we"ird\\name': ConnectorOffsets(
                                'we"ird\\name', "source", partitions=1, read_at=1_700_000_030.0, unchanged_since=0.0
                            ),
                        }
                    ),
                    errors=MappingProxyType({"timeout": 1}),
                    brokers_configured=True,
                    brokers_up=True,
                    broker_errors=MappingProxyType({"connect": 2}),
                )
            }
        )
    )
    weird = 'we"ird\\name'
    heartbeat = "__debezium-heartbeat.pgcdc"
    sources = SourceTopicsReading(
        MappingProxyType(
            {
                "prod": ClusterSourceTopics(
                    "prod",
                    read_at=1_700_000_030.0,
                    brokers_up=True,
                    connectors=MappingProxyType(
                        {
                            weird: SourceTopics(
                                weird,
                                (
                                    TopicGrowth(heartbeat, 40, 1_700_000_000.0, 1_700_000_002.0, exclusive=True),
                                    TopicGrowth("pgcdc.public.orders", 9, 1_700_000_000.0, None, exclusive=False),
                                ),
                                Heartbeat(heartbeat, 2.0, 30.0, silent=True),
                            )
                        }
                    ),
                )
            }
        )
    )
    return View(
        generation=7,
        started_at=1_700_000_000.0,
        expected=("cloud", "prod", "staging"),
        clusters=MappingProxyType({s.cluster: s for s in (prod, down, cloud)}),
        readings=MappingProxyType(
            {
                CloudReading: reading,
                HealerReading: healer,
                FailuresReading: failures,
                OffsetsReading: offsets,
                SourceTopicsReading: sources,
                ConfigReading: ConfigReading(last_reload_successful=True, last_success=1_700_000_000.0),
                WarningsReading: WarningsReading(MappingProxyType({"poll_failed": 42, "offsets_failed": 3})),
                **({SeriesBudget: budget} if budget is not None else {}),
            }
        ),
    )
