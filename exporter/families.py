"""Every metric family the exporter serves, declared once: name, type, HELP text and label names.

Plain frozen data; of ours it imports only the known states (``exporter.model``). The renderers (each feature's
``metrics`` module, ``exporter.own_metrics``), the docs check (``tests/project/test_docs.py`` against
docs/metrics.md) and ``dashboards/generate.py`` read names from here, so a family is renamed (which breaks
dashboards and alerts) in one visible place. The golden files under ``tests/metrics/golden/`` pin the exact
exposition.

Some HELP texts get a sentence appended at render time that depends on configuration: the poll cadence
(``POLLED``) and the Cloud Metrics API lag (``CLOUD_THROUGHPUT``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from exporter.model import (
    AUTOHEAL_MODES,
    CLOUD_CONNECTOR_STATES,
    CLOUD_TASK_STATES,
    CONNECT_CONNECTOR_STATES,
    CONNECT_TASK_STATES,
    CONNECTOR_HEALTHS,
    WORKER_HEALTH_STATES,
)

FamilyType = Literal["gauge", "counter"]


@dataclass(frozen=True, slots=True)
class StateSet:
    """A state-like family's state label and known states: one series per known state, 1 for the current one
    and 0 for the others (``metrics.state_series: all``), or only the current one's (``current``)."""

    label: str
    known: tuple[str, ...]
    cloud: tuple[str, ...] | None = None  # Confluent Cloud's own list, where its states differ


# How ``metrics.state_series: current`` thins a family that is not state-like (``Family.sparse``):
#   nonzero      only the samples whose value is not 0 (a family that is 0 for nearly every connector)
#   unlike_tasks only where it differs from the connector's task count (where the task series are served)
#   detail       not served at all (a detail for the status page and ``all`` mode)
SparseRule = Literal["nonzero", "unlike_tasks", "detail"]


@dataclass(frozen=True, slots=True)
class Sparse:
    rule: SparseRule
    # The query that gives the whole family back from what ``current`` mode serves (docs/metrics.md lists it);
    # None for a detail no query gives back.
    query: str | None


@dataclass(frozen=True, slots=True)
class Family:
    name: str  # the OpenMetrics family name: a counter's without ``_total``
    type: FamilyType
    help: str
    labels: tuple[str, ...]  # in the order the docs list them; both formats write them sorted by name
    # State-like families declare their states: ``metrics.state_series: current`` then serves only the sample
    # of the current state (value 1), for every family declared so, whoever renders it.
    state: StateSet | None = None
    # Families a query derives from the task series: the query (docs/metrics.md lists it). ``current`` mode
    # drops them for clusters whose task series are served.
    derived: str | None = None
    # Families ``current`` mode serves only where they say something (see ``Sparse``).
    sparse: Sparse | None = None

    @property
    def sample_name(self) -> str:
        """The name a query uses: a counter's samples end in ``_total``."""
        return self.name + "_total" if self.type == "counter" else self.name


# Not ``cluster``, which many setups use as a target or external label.
CLUSTER = "connect_cluster"

# Known states (``exporter.model``): each exported as its own 0/1 series; a state outside them still gets one.

# -- Connect clusters, connectors and tasks (self-managed and Confluent Cloud) --------------------------------

UP = Family(
    "kafka_connect_up",
    "gauge",
    "1 if the last poll read the connector statuses of the cluster, else 0.",
    (CLUSTER,),
)
WORKER_UP = Family(
    "kafka_connect_worker_up",
    "gauge",
    "1 if the worker answered GET / in the last poll, else 0.",
    (CLUSTER, "worker"),
)
WORKER_INFO = Family(
    "kafka_connect_worker_info",
    "gauge",
    "Version, commit and Kafka cluster id a worker reported (value is always 1).",
    (CLUSTER, "worker", "version", "commit", "kafka_cluster_id"),
)
CONNECTOR_STATE = Family(
    "kafka_connect_connector_state",
    "gauge",
    "Connector state: 1 for the current state, 0 for every other known state.",
    (CLUSTER, "connector", "state"),
    state=StateSet("state", CONNECT_CONNECTOR_STATES, CLOUD_CONNECTOR_STATES),
)
CONNECTOR_INFO = Family(
    "kafka_connect_connector_info",
    "gauge",
    "Connector class, type, owning worker, (Confluent Cloud) connector id and running plugin versions of the "
    "connector and its tasks (Kafka 4.1+) (value is always 1).",
    (
        CLUSTER,
        "connector",
        "connector_class",
        "connector_type",
        "worker_id",
        "connector_id",
        "connector_version",
        "task_version",
    ),
)
CONNECTOR_TASKS = Family(
    "kafka_connect_connector_tasks",
    "gauge",
    "Number of tasks the connector has now, in any state.",
    (CLUSTER, "connector"),
    derived="count without (task, worker_id, state) (kafka_connect_task_state == 1)",
)
CONNECTOR_TASKS_MAX = Family(
    "kafka_connect_connector_tasks_max",
    "gauge",
    "The connector's configured tasks.max (absent when the config could not be read).",
    (CLUSTER, "connector"),
    sparse=Sparse(
        "unlike_tasks",
        "kafka_connect_connector_tasks_max or count without (task, worker_id, state) (kafka_connect_task_state == 1)",
    ),
)
CONNECTOR_TASKS_BY_STATE = Family(
    "kafka_connect_connector_tasks_by_state",
    "gauge",
    "Number of the connector's tasks in each state.",
    (CLUSTER, "connector", "state"),
    derived="count without (task, worker_id) (kafka_connect_task_state == 1)",
)
TASK_STATE = Family(
    "kafka_connect_task_state",
    "gauge",
    "Task state: 1 for the current state, 0 for every other known state; worker_id is the task's worker.",
    (CLUSTER, "connector", "task", "worker_id", "state"),
    state=StateSet("state", CONNECT_TASK_STATES, CLOUD_TASK_STATES),
)
PLUGIN_INFO = Family(
    "kafka_connect_plugin_info",
    "gauge",
    "Connector plugins installed on the cluster's workers (value is always 1). Polled on a slower cadence.",
    (CLUSTER, "plugin_class", "plugin_type", "version"),
)
# Workers the statuses name (worker_id), probed each cycle (exporter.connect.workers); absent without probes.
WORKER_REACHABLE = Family(
    "kafka_connect_worker_reachable",
    "gauge",
    "1 if a worker that the statuses name answered GET / this cycle, 0 if it answered before and no longer does "
    "(lost); absent while it never answered from here.",
    (CLUSTER, "worker_id"),
)
WORKER_TASKS = Family(
    "kafka_connect_worker_tasks",
    "gauge",
    "Tasks the connector and task statuses assign to the worker.",
    (CLUSTER, "worker_id"),
)
WORKER_CONNECTORS = Family(
    "kafka_connect_worker_connectors",
    "gauge",
    "Connectors the statuses assign to the worker.",
    (CLUSTER, "worker_id"),
)
WORKER_HEALTH = Family(
    "kafka_connect_worker_health",
    "gauge",
    "GET /health of the worker (Kafka >= 3.9): 1 for the current status (healthy, starting, unhealthy), 0 for the "
    "others; absent before 3.9 and for workers that do not answer.",
    (CLUSTER, "worker_id", "status"),
    state=StateSet("status", WORKER_HEALTH_STATES),
)
CONNECTOR_TASKS_ON_LOST_WORKERS = Family(
    "kafka_connect_connector_tasks_on_lost_workers",
    "gauge",
    "Tasks of the connector whose worker is lost or unhealthy (Connect may still report them RUNNING).",
    (CLUSTER, "connector"),
    sparse=Sparse(
        "nonzero",
        "kafka_connect_connector_tasks_on_lost_workers"
        " or 0 * group without (state) (kafka_connect_connector_state == 1)",
    ),
)

# In the order they are served.
CONNECT_FAMILIES: tuple[Family, ...] = (
    UP,
    WORKER_UP,
    WORKER_INFO,
    CONNECTOR_STATE,
    CONNECTOR_INFO,
    CONNECTOR_TASKS,
    CONNECTOR_TASKS_MAX,
    CONNECTOR_TASKS_BY_STATE,
    TASK_STATE,
    PLUGIN_INFO,
    WORKER_REACHABLE,
    WORKER_TASKS,
    WORKER_CONNECTORS,
    WORKER_HEALTH,
    CONNECTOR_TASKS_ON_LOST_WORKERS,
)
# Families whose HELP ends with how often the data is polled (plugins say their own cadence).
POLLED: frozenset[Family] = frozenset(CONNECT_FAMILIES) - {PLUGIN_INFO}

# -- the exporter's own health ---------------------------------------------------------------------------------

BUILD_INFO = Family(
    "kafka_connect_exporter_build_info",
    "gauge",
    "Version of kafka-connect-exporter and of the Python running it (value is always 1).",
    ("version", "python_version"),
)
POLL_DURATION = Family(
    "kafka_connect_exporter_poll_duration_seconds",
    "gauge",
    "Wall time of the last poll cycle.",
    (CLUSTER,),
)
POLL_INTERVAL = Family(
    "kafka_connect_exporter_poll_interval_seconds",
    "gauge",
    "Configured time between poll cycles.",
    (CLUSTER,),
)
LAST_POLL = Family(
    "kafka_connect_exporter_last_poll_timestamp_seconds",
    "gauge",
    "Unix time the last poll cycle ended, successful or not.",
    (CLUSTER,),
)
LAST_SUCCESS = Family(
    "kafka_connect_exporter_last_success_timestamp_seconds",
    "gauge",
    "Unix time the last successful poll cycle ended (absent until one succeeds).",
    (CLUSTER,),
)
POLLS = Family(
    "kafka_connect_exporter_polls",
    "counter",
    "Poll cycles since the exporter started, by result.",
    (CLUSTER, "result"),
)
POLL_ERRORS = Family(
    "kafka_connect_exporter_poll_errors",
    "counter",
    "Failed requests to the cluster since the exporter started, by reason.",
    (CLUSTER, "reason"),
)

EXPORTER_FAMILIES: tuple[Family, ...] = (
    BUILD_INFO,
    POLL_DURATION,
    POLL_INTERVAL,
    LAST_POLL,
    LAST_SUCCESS,
    POLLS,
    POLL_ERRORS,
)

# -- Confluent Cloud -------------------------------------------------------------------------------------------


def _throughput(metric: str, what: str) -> Family:
    return Family(
        f"kafka_connect_cloud_{metric}",
        "counter",
        f"{what} since the exporter started (Confluent Cloud io.confluent.kafka.connect/{metric}).",
        (CLUSTER, "connector", "connector_id"),
    )


# Metrics API metric (io.confluent.kafka.connect/<key>) -> its counter. HELP gets the Metrics API lag appended.
CLOUD_THROUGHPUT: dict[str, Family] = {
    "received_records": _throughput("received_records", "Records the sink connector received from Kafka"),
    "sent_records": _throughput("sent_records", "Records the source connector wrote to Kafka, after transformations"),
    "received_bytes": _throughput("received_bytes", "Bytes the sink connector received from Kafka"),
    "sent_bytes": _throughput("sent_bytes", "Bytes the source connector wrote to Kafka"),
    "dead_letter_queue_records": _throughput(
        "dead_letter_queue_records", "Records the connector wrote to its dead letter queue topic"
    ),
}
CLOUD_NEWEST_BUCKET = Family(
    "kafka_connect_cloud_newest_bucket_timestamp_seconds",
    "gauge",
    "Start (Unix time) of the newest minute bucket added to the throughput counters of the managed"
    " cluster, for all metrics. Absent until the first minute is counted.",
    (CLUSTER,),
)
CLOUD_LATE = Family(
    "kafka_connect_cloud_late",
    "counter",
    "What the Metrics API added to minute buckets after the exporter first counted them, found by re-reading the"
    " last revision_window of counted minutes, in the metric's unit (records or bytes). Already included in the"
    " throughput counters; without the re-read it would have been lost.",
    (CLUSTER, "metric"),
)
CLOUD_API_UP = Family(
    "kafka_connect_cloud_api_up",
    "gauge",
    "1 if the last requests to the Confluent Cloud API succeeded, 0 if they failed (401, 403, 429 after"
    " retries, 5xx, timeout; the reason is in kafka_connect_cloud_api_errors_total and the log).",
    ("api",),
)
CLOUD_API_ERRORS = Family(
    "kafka_connect_cloud_api_errors",
    "counter",
    "Failed requests to the Confluent Cloud API since the exporter started, by API and reason"
    " (every attempt counts, retries included).",
    ("api", "reason"),
)

CLOUD_FAMILIES: tuple[Family, ...] = (
    *CLOUD_THROUGHPUT.values(),
    CLOUD_NEWEST_BUCKET,
    CLOUD_LATE,
    CLOUD_API_UP,
    CLOUD_API_ERRORS,
)

# -- auto-heal -------------------------------------------------------------------------------------------------

AUTOHEAL_MODE = Family(
    "kafka_connect_autoheal_mode",
    "gauge",
    "Auto-heal mode of the cluster: 1 for the configured mode (off, dry-run, enforce), 0 for the others.",
    (CLUSTER, "mode"),
    state=StateSet("mode", AUTOHEAL_MODES),
)
AUTOHEAL_RESTARTS = Family(
    "kafka_connect_autoheal_restarts",
    "counter",
    "Restarts the healer decided on, by target kind (connector, task) and outcome (accepted, conflict, "
    "not_found, error, not_addressable, unsupported; dry_run when only logged).",
    (CLUSTER, "connector", "kind", "outcome"),
)
AUTOHEAL_SUPPRESSED = Family(
    "kafka_connect_autoheal_suppressed",
    "counter",
    "Decisions not to restart a FAILED target yet, by reason (grace, backoff, budget, breaker, denied, "
    "dry_run, scope, cap, skip, lost_worker, not_addressable). One per target and decision round.",
    (CLUSTER, "reason"),
)
AUTOHEAL_PERSISTENT_FAILURES = Family(
    "kafka_connect_autoheal_persistent_failures",
    "gauge",
    "Targets that reached the attempt cap and are left alone until they recover or a retry is requested.",
    (CLUSTER,),
)
AUTOHEAL_PERSISTENT_FAILURE = Family(
    "kafka_connect_autoheal_persistent_failure",
    "gauge",
    "1 for each target in persistent failure (task is empty for the connector instance itself).",
    (CLUSTER, "connector", "task"),
)
AUTOHEAL_NEXT_ATTEMPT = Family(
    "kafka_connect_autoheal_next_attempt_timestamp_seconds",
    "gauge",
    "Earliest time (Unix seconds) grace period and backoff allow the next restart of a FAILED target.",
    (CLUSTER, "connector", "task"),
)
AUTOHEAL_BREAKER_OPEN = Family(
    "kafka_connect_autoheal_breaker_open",
    "gauge",
    "1 while the mass-failure breaker holds restarts of the cluster, else 0.",
    (CLUSTER,),
)

AUTOHEAL_FAMILIES: tuple[Family, ...] = (
    AUTOHEAL_MODE,
    AUTOHEAL_RESTARTS,
    AUTOHEAL_SUPPRESSED,
    AUTOHEAL_PERSISTENT_FAILURES,
    AUTOHEAL_PERSISTENT_FAILURE,
    AUTOHEAL_NEXT_ATTEMPT,
    AUTOHEAL_BREAKER_OPEN,
)

# -- failure intelligence: fingerprints, failed-since, transitions, connector health ---------------------------

FAILURE_INFO = Family(
    "kafka_connect_failure_info",
    "gauge",
    "1 for each FAILED connector or task (task is empty for the connector itself): exception is the class of"
    " the trace's first line, root_cause the class of its last 'Caused by:' (unknown when none is recognised).",
    (CLUSTER, "connector", "task", "exception", "root_cause"),
)
FAILED_SINCE = Family(
    "kafka_connect_failed_since_timestamp_seconds",
    "gauge",
    "Unix time of the first poll that saw the connector or task FAILED (task is empty for the connector"
    " itself); kept across moves to another worker, gone on recovery.",
    (CLUSTER, "connector", "task"),
)
STATE_TRANSITIONS = Family(
    "kafka_connect_state_transitions",
    "counter",
    "Changes of state of the connector or any of its tasks seen between polls since the exporter started,"
    " by the new state.",
    (CLUSTER, "connector", "to_state"),
    sparse=Sparse(
        "nonzero",
        "kafka_connect_state_transitions_total or label_replace(0 * group without (state)"
        ' (kafka_connect_connector_state == 1), "to_state", "FAILED", "", "")',
    ),
)
CONNECTOR_HEALTH = Family(
    "kafka_connect_connector_health",
    "gauge",
    "One answer per connector: 1 for its current health (healthy, degraded, failed, paused, stopped, unknown;"
    " see docs/metrics.md), only that series.",
    (CLUSTER, "connector", "health"),
    # Served as the current value only, in either state_series mode.
    state=StateSet("health", CONNECTOR_HEALTHS),
)
AUTOHEAL_LAST_RESTART = Family(
    "kafka_connect_autoheal_last_restart_timestamp_seconds",
    "gauge",
    "Unix time of the healer's last accepted restart of the connector or task (task is empty for the"
    " connector instance itself).",
    (CLUSTER, "connector", "task"),
)

# The healer renders the last one (exporter.healer.metrics) from its own reading.
FAILURE_FAMILIES: tuple[Family, ...] = (
    FAILURE_INFO,
    FAILED_SINCE,
    STATE_TRANSITIONS,
    CONNECTOR_HEALTH,
    AUTOHEAL_LAST_RESTART,
)

ALL_FAMILIES: tuple[Family, ...] = (
    *CONNECT_FAMILIES,
    *EXPORTER_FAMILIES,
    *CLOUD_FAMILIES,
    *AUTOHEAL_FAMILIES,
    *FAILURE_FAMILIES,
)

# -- configuration reload (series budget, filters, reload, sharding) --------------------------------------------

CONFIG_RELOAD_SUCCESSFUL = Family(
    "kafka_connect_exporter_config_last_reload_successful",
    "gauge",
    "1 if the last configuration reload (SIGHUP or POST /-/reload) succeeded, 0 if it failed and the previous"
    " configuration is still in use.",
    (),
)
CONFIG_RELOAD_SUCCESS_TIMESTAMP = Family(
    "kafka_connect_exporter_config_last_reload_success_timestamp_seconds",
    "gauge",
    "Unix time the configuration in use was loaded: at start, or by the last successful reload.",
    (),
)

RELOAD_FAMILIES: tuple[Family, ...] = (CONFIG_RELOAD_SUCCESSFUL, CONFIG_RELOAD_SUCCESS_TIMESTAMP)
ALL_FAMILIES += RELOAD_FAMILIES

# -- offsets: is data moving? (KIP-875 offsets, sink lag from the brokers) -------------------------------------

SINK_COMMITTED_OFFSETS = Family(
    "kafka_connect_sink_committed_offsets",
    "counter",
    "Sum of the sink connector's committed offsets over the topic's partitions (GET /connectors/{c}/offsets);"
    " rate() is the records per second it committed. Commits follow offset.flush.interval.ms, so it trails.",
    (CLUSTER, "connector", "topic"),
)
CONNECTOR_OFFSETS_LAST_CHANGE = Family(
    "kafka_connect_connector_offsets_last_change_timestamp_seconds",
    "gauge",
    "Unix time the exporter last saw any of the connector's offsets change (absent until a change is seen).",
    (CLUSTER, "connector"),
)
CONNECTOR_OFFSET_PARTITIONS = Family(
    "kafka_connect_connector_offset_partitions",
    "gauge",
    "Number of partitions the connector reports offsets for (sink: topic partitions; source: its own maps).",
    (CLUSTER, "connector"),
    sparse=Sparse("detail", None),
)
SINK_LAG_RECORDS = Family(
    "kafka_connect_sink_lag_records",
    "gauge",
    "Records the sink has not committed yet: end offset minus committed offset (minus the log start offset where"
    " nothing is committed) from the Kafka brokers, summed over the topic's partitions, never negative (needs"
    " clusters[].kafka); for a Confluent Cloud managed sink, the Metrics API's consumer_lag_offsets of its consumer"
    " group, newest minute.",
    (CLUSTER, "connector", "topic"),
    sparse=Sparse(
        "nonzero",
        "kafka_connect_sink_lag_records or (0 * kafka_connect_sink_committed_offsets_total"
        " and on (job, instance, connect_cluster) (kafka_connect_kafka_up == 1))",
    ),
)
OFFSETS_ERRORS = Family(
    "kafka_connect_exporter_offsets_errors",
    "counter",
    "Failed GET /connectors/{c}/offsets requests since the exporter started, by reason (404s are not counted).",
    (CLUSTER, "reason"),
)
KAFKA_UP = Family(
    "kafka_connect_kafka_up",
    "gauge",
    "1 if the last requests to the cluster's Kafka brokers succeeded, else 0 (absent until the first requests"
    " end, and without clusters[].kafka).",
    (CLUSTER,),
)
KAFKA_ERRORS = Family(
    "kafka_connect_kafka_errors",
    "counter",
    "Failed requests to the cluster's Kafka brokers since the exporter started, by reason.",
    (CLUSTER, "reason"),
)

OFFSETS_FAMILIES: tuple[Family, ...] = (
    SINK_COMMITTED_OFFSETS,
    CONNECTOR_OFFSETS_LAST_CHANGE,
    CONNECTOR_OFFSET_PARTITIONS,
    SINK_LAG_RECORDS,
    OFFSETS_ERRORS,
    KAFKA_UP,
    KAFKA_ERRORS,
)

ALL_FAMILIES += OFFSETS_FAMILIES

# Source connectors' output, read from the brokers (clusters[].kafka; exporter/sourcetopics/).
CONNECTOR_TOPIC_INFO = Family(
    "kafka_connect_connector_topic_info",
    "gauge",
    "A topic the source connector has written to, as GET /connectors/{c}/topics names it (KIP-558; value is"
    " always 1): joins connectors to topics.",
    (CLUSTER, "connector", "topic"),
)
SOURCE_TOPIC_LAST_GROWTH = Family(
    "kafka_connect_source_topic_last_growth_timestamp_seconds",
    "gauge",
    "When the exporter last saw the topic's end offset (summed over its partitions, from the brokers) grow"
    " (absent until it has grown once since the exporter started).",
    (CLUSTER, "connector", "topic"),
)
SOURCE_TOPIC_RECORDS = Family(
    "kafka_connect_source_topic_records_written",
    "counter",
    "Records in the topic (end offsets summed over its partitions), exported only where the connector is the"
    " only source of the cluster that names the topic.",
    (CLUSTER, "connector", "topic"),
)
SOURCE_HEARTBEAT_INTERVAL = Family(
    "kafka_connect_source_heartbeat_interval_seconds",
    "gauge",
    "The interval at which the source writes its heartbeat topic (Debezium's heartbeat.interval.ms, or a"
    " source_topics.heartbeats rule).",
    (CLUSTER, "connector", "topic"),
)
SOURCE_SILENT = Family(
    "kafka_connect_source_silent",
    "gauge",
    "1 if the source is RUNNING but its heartbeat topic has not grown for source_topics.silent_after times its"
    " interval (at least silent_min), else 0.",
    (CLUSTER, "connector", "topic"),
)
SOURCE_TOPICS_READ = Family(
    "kafka_connect_source_topics_last_read_timestamp_seconds",
    "gauge",
    "When the brokers last answered the end-offset request for the source connectors' topics.",
    (CLUSTER,),
)

SOURCE_TOPICS_FAMILIES: tuple[Family, ...] = (
    CONNECTOR_TOPIC_INFO,
    SOURCE_TOPIC_LAST_GROWTH,
    SOURCE_TOPIC_RECORDS,
    SOURCE_HEARTBEAT_INTERVAL,
    SOURCE_SILENT,
    SOURCE_TOPICS_READ,
)

ALL_FAMILIES += SOURCE_TOPICS_FAMILIES

# -- warnings that repeat ---------------------------------------------------------------------------------------

WARNINGS = Family(
    "kafka_connect_exporter_warnings",
    "counter",
    "Warnings since the exporter started, by log event, whether logged or held back: a warning that repeats every"
    " cycle (a worker that never answers) is logged once, then summarised every 5 minutes.",
    ("event",),
)

WARNING_FAMILIES: tuple[Family, ...] = (WARNINGS,)
ALL_FAMILIES += WARNING_FAMILIES

# Families ``metrics.state_series: current`` thins out, by name (prometheus_client families carry only the name).
STATE_FAMILIES: dict[str, Family] = {f.name: f for f in ALL_FAMILIES if f.state is not None}
DERIVED_FAMILIES: frozenset[Family] = frozenset(f for f in ALL_FAMILIES if f.derived is not None)
SPARSE_FAMILIES: dict[str, Family] = {f.name: f for f in ALL_FAMILIES if f.sparse is not None}
