"""Dashboards and alert rules, proven against a real Prometheus scraping the real exporter process.

One run, several phases (each a scenario); Prometheus keeps everything, so the checks afterwards look at each
phase's time window:

- ``faults``: Connect clusters served by the simulator with connectors in every interesting state (FAILED
  connector, FAILED task, UNASSIGNED, PAUSED, STOPPED, RUNNING with no tasks, fewer tasks than tasks.max), a
  worker down, a worker killed while the statuses keep its work RUNNING (the exporter configured with one URL
  of that cluster) and one whose herder is stuck, a cluster that refuses connections, a cluster whose polls
  fail every other time, one whose polls take longer than three poll intervals, auto-heal in enforce mode on a
  crash-looping connector (restarts, attempt cap, persistent failure) and on a mass failure (breaker), auto-heal
  in dry-run mode;
  Confluent Cloud managed connectors with the Metrics API down. A second exporter instance watches the same
  Cloud organisation with a metrics delay so long that its data is stale.
- ``cloud-flowing``: the Metrics API recovers; the throughput and dead-letter counters move.
- ``cloud-auth``: the Connect API rejects the key (403).
- ``config-broken``: the first exporter's config file is broken and it gets SIGHUP: the reload fails, it keeps
  serving on the old configuration.
- ``exporter-down``: the second exporter instance is stopped.

The whole run happens twice, once per state encoding (``metrics.state_series: all`` and ``current``): every
alert and every dashboard query must work in both.

Prometheus evaluates a copy of alerts/kafka-connect.rules.yml with every ``for:`` cut to 1s. Every alert must
be pending or firing in its scenario with the labels that say what is broken; every panel query of every
dashboard (with its variables resolved as Grafana does) and every variable query must return data in at least
one scenario.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from exporter.families import SINK_LAG_RECORDS
from simulator.cloud.server import cloud_in_thread
from simulator.cloud.state import CloudState
from simulator.connect.server import SimThread, connect_in_thread
from simulator.connect.state import PAUSED, STOPPED, UNASSIGNED, SimCluster
from simulator.faults import Fault
from tests.e2e import report
from tests.e2e.coverage import BROKER_FAMILIES, REAL_KAFKA_ALERTS
from tests.e2e.evaluate import (
    Evaluation,
    Expect,
    Phase,
    alert_series,
    evaluate,
    missing_alerts,
    peak,
    wait_for_alerts,
)
from tests.e2e.grafana import Dashboard, Target
from tests.e2e.prometheus import JOB, PrometheusServer, prometheus_binary, wait_for
from tests.e2e.world import Driver, exporter_process, keep_logs, refused_address
from tests.support.artifacts import DASHBOARDS, RULE_FILES, load_rules, metric_names

pytestmark = pytest.mark.e2e

ENV_ID, LKC_ID, CLOUD = "env-e2e01", "lkc-e2e01", "cloud-prod"
CLOUD_KEY, CLOUD_SECRET = "E2EKEY0000000001", "e2e-secret-not-a-real-one"
PHASE_TIMEOUT = 90.0
POLL = "0.5s"


# --------------------------------------------------------------------------------------------- the world
def prod_cluster() -> SimCluster:
    """A Kafka 3.9 cluster of three workers with a connector in every state worth an alert or a panel."""
    c = SimCluster(version="3.9.0", worker_count=3)
    c.add_connector("orders-sink", "sink")
    c.fail_connector("orders-sink")
    c.add_connector("billing-sink", "sink", tasks_max=2)
    c.fail_task("billing-sink", 1)
    c.add_connector("inventory-src", "source", tasks_max=2)
    c.set_state("inventory-src", UNASSIGNED)
    for task in (0, 1):
        c.set_state("inventory-src", UNASSIGNED, task=task)
    c.add_connector("audit-src", "source", state=PAUSED)
    c.add_connector("archive-sink", "sink", state=STOPPED)
    idle = c.add_connector("idle-src", "source", tasks_max=2)
    clicks = c.add_connector("clicks-src", "source", tasks_max=2)
    with c.lock:
        idle.tasks.clear()  # RUNNING, yet the connector generated no task configs
        clicks.config["tasks.max"] = "4"  # the connector created fewer tasks than allowed
    c.add_connector("payments-src", "source", tasks_max=2)
    c.add_connector("flappy-sink", "sink")  # ``flap`` fails and recovers its task over and over
    return c


def flap(c: SimCluster) -> None:
    """Fail flappy-sink's task if it runs, bring it back if it failed: KafkaConnectConnectorFlapping."""
    if c.connector("flappy-sink").tasks[0].state == "FAILED":
        c.set_state("flappy-sink", "RUNNING", task=0)
    else:
        c.fail_task("flappy-sink", 0)


def heal_cluster() -> SimCluster:
    """Healthy until ``break_heal_cluster``: Prometheus must see the restart counters move."""
    c = SimCluster(version="3.9.0", worker_count=2)
    c.add_connector("crashloop-sink", "sink", tasks_max=8)
    c.add_connector("hiccup-src", "source")
    c.add_connector("steady-src", "source")
    return c


def break_heal_cluster(c: SimCluster) -> None:
    """A crash-looping connector (every restart fails again) and one that a single restart heals."""
    for task in range(8):
        c.fail_task("crashloop-sink", task, persistent=True)
    c.fail_task("hiccup-src", 0)


def breaker_cluster() -> SimCluster:
    """Three of four tasks failed at once: a mass failure that opens auto-heal's breaker."""
    c = SimCluster(version="3.9.0", worker_count=1)
    c.add_connector("mass-sink", "sink", tasks_max=3)
    for task in range(3):
        c.fail_task("mass-sink", task, persistent=True)
    c.add_connector("ok-src", "source")
    return c


def lost_cluster() -> SimCluster:
    """Three workers with work on each; the exporter knows only the first URL. Worker 2's herder is stuck
    (GET /health 500 unhealthy); ``kill_worker(1)`` in phase ``faults`` leaves its work RUNNING under it."""
    c = SimCluster(version="3.9.0", worker_count=3)
    for name in ("spread-sink", "spread-src"):
        c.add_connector(name, "sink" if name.endswith("sink") else "source", tasks_max=3)
    c.set_health(2, "unhealthy")
    return c


def single(name: str) -> SimCluster:
    c = SimCluster(version="3.9.0", worker_count=1)
    c.add_connector(name, "source")
    return c


def cloud_state() -> CloudState:
    state = CloudState(api_key=CLOUD_KEY, api_secret=CLOUD_SECRET, latency=0.0)
    hour_ago = time.time() - 3600
    state.add_connector(
        ENV_ID,
        LKC_ID,
        "orders-datagen",
        type="source",
        class_name="DatagenSource",
        rates={"sent_records": 600, "sent_bytes": 150_000},
        created_at=hour_ago,
    )
    state.add_connector(
        ENV_ID,
        LKC_ID,
        "s3-archive",
        type="sink",
        class_name="S3_SINK",
        state="DEGRADED",
        tasks=["RUNNING", "USER_ACTIONABLE_ERROR"],
        rates={"received_records": 400, "received_bytes": 90_000, "dead_letter_queue_records": 5},
        created_at=hour_ago,
    )
    state.add_connector(
        ENV_ID,
        LKC_ID,
        "snowflake-sink",
        type="sink",
        class_name="SnowflakeSink",
        state="FAILED",
        tasks=["SYSTEM_ERROR"],
    )
    state.add_connector(ENV_ID, LKC_ID, "gcs-logs", type="sink", class_name="GcsSink", state="PAUSED", tasks=["PAUSED"])
    # RUNNING with records waiting and none received: a stalled managed sink (lag from consumer_lag_offsets).
    state.add_connector(
        ENV_ID, LKC_ID, "bigquery-sink", type="sink", class_name="BigQueryStorageSink", created_at=hour_ago
    )
    state.set_sink_lag(ENV_ID, LKC_ID, "bigquery-sink", {"clicks": 2500}, since=hour_ago)
    state.set_sink_lag(ENV_ID, LKC_ID, "s3-archive", {"orders": 40}, since=hour_ago)
    return state


def cloud_section(url: str, *, metrics_delay: str, autoheal: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        **({"autoheal": autoheal} if autoheal else {}),
        "api_key_env": "E2E_CCLOUD_KEY",
        "api_secret_env": "E2E_CCLOUD_SECRET",
        "api_url": url,
        "metrics_url": url,
        "environments": [{"id": ENV_ID, "clusters": [{"id": LKC_ID, "name": CLOUD}]}],
        "status_interval": "1s",
        "metrics_interval": "1s",
        "metrics_delay": metrics_delay,
        "request_timeout": "5s",
        "max_retries": 0,
    }


def cluster(name: str, urls: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "urls": urls, "poll_interval": POLL, "request_timeout": "2s", **extra}


# --------------------------------------------------------------------------------------------- the run
@dataclass
class Run:
    prom: PrometheusServer
    phases: list[Phase]
    expected: list[Expect]
    instance_b: str

    def alert_series(self) -> list[dict[str, str]]:
        """ALERTS label sets of every phase (each phase's window is sampled as its checks sampled it)."""
        return [labels for p in self.phases for labels in alert_series(self.prom, p.start, p.end)]


def cause(root_cause: str) -> dict[str, str]:
    """The fingerprint labels of a simulated Connect failure (its traces start with a ConnectException)."""
    return {"exception": "org.apache.kafka.connect.errors.ConnectException", "root_cause": root_cause}


def expectations(
    instance_b: str, prod_worker_down: str, instance_a: str = "a", lost_workers: tuple[str, str] = ("l", "u")
) -> list[Expect]:
    e = Expect
    prod = {"connect_cluster": "prod"}
    lost, stuck = lost_workers
    return [
        e("KafkaConnectWorkOnLostWorker", "faults", {"connect_cluster": "lost", "worker_id": lost}),
        e("KafkaConnectWorkerUnhealthy", "faults", {"connect_cluster": "lost", "worker_id": stuck}),
        e("KafkaConnectClusterUnreachable", "faults", {"connect_cluster": "down"}),
        e("KafkaConnectWorkerDown", "faults", {**prod, "worker": prod_worker_down}),
        # The failed-connector and failed-task alerts name the cause, joined from kafka_connect_failure_info.
        e(
            "KafkaConnectConnectorFailed",
            "faults",
            {**prod, "connector": "orders-sink", **cause("java.net.ConnectException")},
        ),
        # Managed connectors report no Java trace: the root cause is their error state.
        e(
            "KafkaConnectConnectorFailed",
            "faults",
            {
                "connect_cluster": CLOUD,
                "connector": "snowflake-sink",
                "exception": "unknown",
                "root_cause": "SYSTEM_ERROR",
            },
        ),
        e(
            "KafkaConnectTaskFailed",
            "faults",
            {**prod, "connector": "billing-sink", "task": "1", "state": "FAILED", **cause("java.sql.SQLException")},
        ),
        e(
            "KafkaConnectTaskFailed",
            "faults",
            {
                "connect_cluster": CLOUD,
                "connector": "s3-archive",
                "task": "1",
                "state": "USER_ACTIONABLE_ERROR",
                "root_cause": "USER_ACTIONABLE_ERROR",
            },
        ),
        e(
            "KafkaConnectTaskFailed",
            "faults",
            {"connect_cluster": CLOUD, "connector": "snowflake-sink", "task": "0", "state": "SYSTEM_ERROR"},
        ),
        e("KafkaConnectConnectorUnassigned", "faults", {**prod, "connector": "inventory-src"}),
        e("KafkaConnectTaskUnassigned", "faults", {**prod, "connector": "inventory-src", "task": "0"}),
        e("KafkaConnectTaskUnassigned", "faults", {**prod, "connector": "inventory-src", "task": "1"}),
        e("KafkaConnectConnectorNoTasks", "faults", {**prod, "connector": "idle-src"}),
        e("KafkaConnectConnectorTasksBelowMax", "faults", {**prod, "connector": "clicks-src"}),
        e("KafkaConnectConnectorFlapping", "faults", {**prod, "connector": "flappy-sink"}),
        e(
            "KafkaConnectAutohealPersistentFailure",
            "faults",
            {"connect_cluster": "heal", "connector": "crashloop-sink", "task": "0"},
        ),
        e("KafkaConnectAutohealRestartStorm", "faults", {"connect_cluster": "heal"}),
        e("KafkaConnectAutohealBreakerOpen", "faults", {"connect_cluster": "breaker"}),
        e("KafkaConnectExporterPollsFailing", "faults", {"connect_cluster": "flaky"}),
        e("KafkaConnectExporterDataStale", "faults", {"connect_cluster": "slow"}),
        e("KafkaConnectCloudApiDown", "faults", {"api": "metrics"}),
        e("KafkaConnectCloudDeadLetterRecords", "cloud-flowing", {"connect_cluster": CLOUD, "connector": "s3-archive"}),
        e("KafkaConnectCloudMetricsStale", "cloud-flowing", {"connect_cluster": CLOUD, "instance": instance_b}),
        # Lag is read once the Metrics API answers; bigquery-sink's received_records stays flat.
        e("KafkaConnectManagedSinkStalled", "cloud-flowing", {"connect_cluster": CLOUD, "connector": "bigquery-sink"}),
        e("KafkaConnectCloudApiAuthFailed", "cloud-auth", {"api": "connect"}),
        e("KafkaConnectExporterConfigReloadFailed", "config-broken", {"instance": instance_a, "job": JOB}),
        e("KafkaConnectExporterDown", "exporter-down", {"instance": instance_b, "job": JOB}),
    ]


@pytest.fixture(scope="module", params=["all", "current"], ids=lambda mode: f"state_series={mode}")
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    mode: str = request.param
    if prometheus_binary() is None:
        pytest.fail("prometheus not found: install Debian's prometheus package (make tools)")
    workdir = tmp_path_factory.mktemp("e2e")
    failed_before = request.session.testsfailed
    began = time.monotonic()
    env = {"E2E_CCLOUD_KEY": CLOUD_KEY, "E2E_CCLOUD_SECRET": CLOUD_SECRET}
    state = cloud_state()
    state.set_outage("metrics", 503)  # phase "faults": the Metrics API is down
    with contextlib.ExitStack() as stack:
        prod: SimThread = stack.enter_context(connect_in_thread(prod_cluster()))
        heal: SimThread = stack.enter_context(connect_in_thread(heal_cluster()))
        breaker: SimThread = stack.enter_context(connect_in_thread(breaker_cluster()))
        flaky: SimThread = stack.enter_context(connect_in_thread(single("lines-src")))
        slow: SimThread = stack.enter_context(connect_in_thread(single("slow-src")))
        lost: SimThread = stack.enter_context(connect_in_thread(lost_cluster()))
        cloud = stack.enter_context(cloud_in_thread(state))
        down = stack.enter_context(refused_address())

        prod.set_fault(2, Fault.refuse())  # a worker down in a live cluster
        slow.set_fault(0, Fault.slow(4.0))  # every answer takes 4s: cycles take > 3 poll intervals
        driver = stack.enter_context(Driver())
        driver.every(0.2, heal.cluster.tick)  # restarts finish; persistent faults fail again
        driver.every(0.2, breaker.cluster.tick)
        driver.every(1.0, lambda: flap(prod.cluster))  # a change every second, seen by polls twice a second
        # One failed status request every 1.2s at two polls a second: about 40% of the cycles fail, and up is 1
        # often enough that Prometheus' 1s scrapes do not see a cluster that is down all the time.
        driver.every(1.2, lambda: flaky.set_fault(0, Fault.http_status(500, path="/connectors", times=1)))
        # A sink that commits: its offsets move, so the "throughput and lag" row has committed records/s and a
        # last-change time (lag needs real brokers: tests/e2e/test_real_offsets_e2e.py).
        committed = itertools.count(0, 50)
        driver.every(1.0, lambda: prod.cluster.set_sink_offsets("billing-sink", {("billing", 0): next(committed)}))

        fast_heal = {"grace_period": "0.5s", "stable_period": "1h", "backoff": {"initial": "1s", "max": "2s"}}
        config_a = {
            "log": {"level": "info"},
            "metrics": {"state_series": mode},
            "clusters": [
                cluster("prod", prod.urls, autoheal={"mode": "dry-run", "grace_period": "1s"}, offsets_interval="1s"),
                cluster("down", [f"http://{down}"]),
                cluster("flaky", flaky.urls),
                cluster("slow", slow.urls, cycle_timeout="30s", request_timeout="30s"),
                cluster("lost", lost.urls[:1]),  # one URL: the other workers are found in the statuses
                cluster(
                    "heal",
                    heal.urls,
                    autoheal={
                        "mode": "enforce",
                        **fast_heal,
                        "max_attempts": 3,
                        "restarts_per_minute": 1000,
                        "breaker": {"min_failed_tasks": 1000},
                    },
                ),
                cluster(
                    "breaker",
                    breaker.urls,
                    autoheal={
                        "mode": "enforce",
                        **fast_heal,
                        "max_attempts": 1,
                        "breaker": {"min_failed_tasks": 2, "max_failed_share": 0.5, "probe_interval": "1h"},
                    },
                ),
            ],
            # Managed auto-heal decides (dry-run) on snowflake-sink's SYSTEM_ERROR; nothing is sent.
            "confluent_cloud": cloud_section(
                cloud.url, metrics_delay="1s", autoheal={"mode": "dry-run", "grace_period": "1s"}
            ),
        }
        # Instance B: the same organisation, but buckets are only counted 1000s after they began: stale.
        config_b = {"confluent_cloud": cloud_section(cloud.url, metrics_delay="1000s")}
        exporter_a = stack.enter_context(exporter_process("a", workdir, config_a, env))
        exporter_b = stack.enter_context(exporter_process("b", workdir, config_b, env))

        targets = [exporter_a.address, exporter_b.address]
        prom = stack.enter_context(PrometheusServer(workdir / "prometheus", targets, RULE_FILES))
        wait_for(lambda: sorted(prom.targets_up().values()) == ["up", "up"], 30, "Prometheus to scrape both exporters")
        lost_workers = (lost.cluster.worker_id(1), lost.cluster.worker_id(2))
        expected = expectations(exporter_b.address, prod.urls[2], exporter_a.address, lost_workers)
        run = Run(prom, [], expected, exporter_b.address)

        def phase(name: str, begin: Callable[[], object]) -> None:
            run.phases.append(Phase(name, time.time()))
            begin()
            wait_for_alerts(prom, [e for e in run.expected if e.phase == name], run.phases[-1], PHASE_TIMEOUT)
            driver.check()

        clean = False
        try:
            # The heal cluster breaks while Prometheus watches, so it sees the restart counters move.
            def faults() -> None:
                break_heal_cluster(heal.cluster)
                lost.kill_worker(1)  # SIGKILL: its statuses stay RUNNING under its id

            phase("faults", faults)
            phase("cloud-flowing", lambda: state.set_outage("metrics", None))
            phase("cloud-auth", lambda: state.forbid("connect"))
            phase("config-broken", lambda: exporter_a.reload_with("clusters: [{name: prod, urls: [not-a-url]}]\n"))
            phase("exporter-down", exporter_b.stop)
            report.add(
                f"simulated world (state_series: {mode}): {len(run.phases)} phases "
                + ", ".join(f"{p.name} {p.end - p.start:.0f}s" for p in run.phases)
                + f"; set-up and phases took {time.monotonic() - began:.0f}s"
            )
            yield run
            clean = request.session.testsfailed == failed_before
        finally:
            if not clean:
                prom.stop()
                exporter_a.stop()
                print(f"\ne2e logs (Prometheus, exporters, configs) kept in {keep_logs(workdir, f'simulated-{mode}')}")


# --------------------------------------------------------------------------------------------- alerts
def test_prometheus_loads_and_evaluates_every_rule(run: Run) -> None:
    assert sorted(run.prom.alert_names) == sorted(r["alert"] for r in load_rules())
    assert run.prom.rule_health() == []


def test_every_alert_has_a_scenario() -> None:
    # Alerts that need real Kafka brokers (sink lag) have their scenario in the real-Kafka offsets run.
    covered = {e.alert for e in expectations("b", "w", ("l", "u"))} | set(REAL_KAFKA_ALERTS)
    missing = {r["alert"] for r in load_rules()} - covered
    assert not missing, f"alerts without an end-to-end scenario: {sorted(missing)}"


@pytest.fixture(scope="module")
def alerts_seen(run: Run) -> dict[str, set[str]]:
    """alertname -> the states (pending, firing) it reached during the run; reported at the end with how long
    each took to go pending after its phase began."""
    seen: dict[str, set[str]] = {}
    first: dict[str, float] = {}
    for p in run.phases:
        for s in run.prom.query_range("ALERTS", p.start, p.end, 1.0):
            name = s.labels["alertname"]
            seen.setdefault(name, set()).add(s.labels["alertstate"])
            first[name] = min(first.get(name, float("inf")), s.values[0][0])
    rules = [r["alert"] for r in load_rules()]
    fired = [a for a in rules if a in seen]
    delays = []
    for a in fired:
        phase = next(p for p in run.phases if p.name == next(e.phase for e in run.expected if e.alert == a))
        delays.append((max(0.0, first[a] - phase.start), a))
    slowest = ", ".join(f"{a} {d:.0f}s" for d, a in sorted(delays, reverse=True)[:3])
    report.add(
        f"alerts: {len(fired)} of {len(rules)} pending or firing in their scenarios "
        f"({sum('firing' in seen[a] for a in fired)} reached firing with `for:` cut to 1s); slowest to go "
        f"pending after their phase began: {slowest}"
    )
    return seen


# Alerts that need real brokers go pending in tests/e2e/test_real_offsets_e2e.py instead.
@pytest.mark.parametrize("alert", [r["alert"] for r in load_rules() if r["alert"] not in REAL_KAFKA_ALERTS])
def test_alert_goes_pending_or_firing_in_its_scenario(run: Run, alerts_seen: dict[str, set[str]], alert: str) -> None:
    problems = missing_alerts(run.prom, [e for e in run.expected if e.alert == alert], run.phases)
    assert not problems, "\n".join(problems)
    assert alerts_seen.get(alert)


def test_task_alerts_do_not_split_by_worker(run: Run) -> None:
    task_alerts = [
        s for s in run.alert_series() if s["alertname"] in ("KafkaConnectTaskFailed", "KafkaConnectTaskUnassigned")
    ]
    assert task_alerts
    assert not [s for s in task_alerts if "worker_id" in s]


def test_alerts_stay_silent_where_another_alert_explains_it(run: Run) -> None:
    """A cluster that is down is one alert (ClusterUnreachable), not also worker, poll or staleness alerts;
    credentials rejected are CloudApiAuthFailed, not also CloudApiDown; PAUSED, STOPPED and healthy
    connectors raise nothing."""
    quiet = ("audit-src", "archive-sink", "gcs-logs", "payments-src", "steady-src", "orders-datagen")
    wrong = [
        s
        for s in run.alert_series()
        if (s.get("connect_cluster") == "down" and s["alertname"] != "KafkaConnectClusterUnreachable")
        or (s["alertname"] == "KafkaConnectCloudApiDown" and s.get("api") == "connect")
        or s.get("connector") in quiet
    ]
    assert not wrong, wrong


# --------------------------------------------------------------------------------------------- dashboards
def without_broker_families(t: Target) -> bool:
    """Queries this run can answer: not those of broker-only families, which the simulated world has no brokers
    for; tests/e2e/test_real_offsets_e2e.py proves those against real brokers. Sink lag is answered here by the
    simulated Confluent Cloud's managed sinks (the same family)."""
    return not metric_names(t.expr) & (BROKER_FAMILIES - {SINK_LAG_RECORDS.sample_name})


@pytest.fixture(scope="module")
def dashboards(run: Run) -> Evaluation:
    # Queries of broker-only families (sink lag) are proven with real brokers: tests/e2e/test_real_offsets_e2e.py.
    evaluation = evaluate(
        run.prom,
        [Dashboard.load(p) for p in DASHBOARDS],
        run.phases,
        want=without_broker_families,
    )
    results = evaluation.results
    panels = {(r.target.dashboard, r.target.panel) for r in results}
    report.add(
        f"dashboards: {len(DASHBOARDS)} dashboards, {len(panels)} panels with queries, {len(results)} queries "
        f"({sum(r.target.instant for r in results)} instant); {sum(r.ok for r in results)} return data "
        f"in a scenario; {len(evaluation.variables)} variable queries, "
        f"{len(evaluation.variables) - len(evaluation.empty_variables())} with values"
    )
    return evaluation


def test_every_dashboard_variable_has_values(dashboards: Evaluation) -> None:
    assert len(dashboards.variables) >= 4 * 3
    assert not dashboards.empty_variables(), "variable queries that return nothing in every scenario"


def test_every_panel_query_returns_data(dashboards: Evaluation) -> None:
    results = dashboards.results
    assert len(results) >= 60, len(results)  # all four dashboards were read
    problems = dashboards.problems()
    assert not problems, f"{len(problems)} of {len(results)} panel queries return nothing in every scenario:\n" + (
        "\n".join(problems)
    )


# Panels whose whole point is a number that moves: showing data is not enough, it must not be all zeros.
MOVING = {
    ("Kafka Connect / Confluent Cloud connectors", "Records in"),
    ("Kafka Connect / Confluent Cloud connectors", "Records out"),
    ("Kafka Connect / Confluent Cloud connectors", "Bytes in"),
    ("Kafka Connect / Confluent Cloud connectors", "Bytes out"),
    ("Kafka Connect / Confluent Cloud connectors", "Dead-letter records"),
    ("Kafka Connect / Connector", "Records in"),
    ("Kafka Connect / Connector", "Dead-letter records"),
    ("Kafka Connect / Overview", "Auto-heal restarts"),
    ("Kafka Connect / Overview", "Auto-heal restarts held back"),
    ("Kafka Connect / Connector", "Auto-heal restarts"),
    ("Kafka Connect / Connector", "Task state changes"),
    ("Kafka Connect / Exporter", "Poll errors by reason"),
    ("Kafka Connect / Confluent Cloud connectors", "API errors by reason"),
}


def test_rate_panels_show_movement(run: Run, dashboards: Evaluation) -> None:
    flat = []
    for r in dashboards.results:
        key = (r.target.dashboard, r.target.panel)
        if key in MOVING and peak(run.prom, r.target.expr, dashboards.tries[r.target.dashboard]) <= 0:
            flat.append(f"{r.target.where}: never above 0: {r.target.expr}")
    assert not flat, "\n".join(flat)
    found = {(r.target.dashboard, r.target.panel) for r in dashboards.results}
    assert found >= MOVING, MOVING - found


def test_a_query_that_returns_nothing_is_caught(run: Run) -> None:
    """The checks above can fail: misspelt metrics, impossible label values and a dead query behind
    `or vector(0)` in a copy of the overview dashboard are each reported, the untouched queries are not."""
    path = next(p for p in DASHBOARDS if p.name == "kafka-connect-overview.json")
    data = copy.deepcopy(Dashboard.load(path).data)
    broken = {
        "Workers": ("kafka_connect_worker_info", "kafka_connect_worker_infos"),
        "Tasks by state": ("kafka_connect_task_state{", 'kafka_connect_task_state{state="NO_SUCH_STATE", '),
        "Failed connectors": ('state="FAILED"', 'state="FAILD"'),
    }
    for p in data["panels"]:
        if p.get("title") in broken:
            old, new = broken[p["title"]]
            for t in p["targets"]:
                assert old in t["expr"], (p["title"], t["expr"])
                t["expr"] = t["expr"].replace(old, new)
    # The first phase only, where the Metrics API is down: no lag at all, so lag panels are left out here too.
    evaluation = evaluate(
        run.prom, [Dashboard(path, data)], run.phases[:1], want=lambda t: not metric_names(t.expr) & BROKER_FAMILIES
    )
    flagged = {r.target.panel for r in evaluation.results if not r.ok}
    assert flagged == set(broken), evaluation.problems()
