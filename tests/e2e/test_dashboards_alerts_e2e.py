"""Dashboards and alert rules, proven against a real Prometheus scraping the real exporter process.

One run, several phases (each a scenario); Prometheus keeps everything, so the checks afterwards look at each
phase's time window:

- ``faults``: Connect clusters served by the simulator with connectors in every interesting state (FAILED
  connector, FAILED task, UNASSIGNED, PAUSED, STOPPED, RUNNING with no tasks, fewer tasks than tasks.max), a
  worker down, a cluster that refuses connections, a cluster whose polls fail every other time, one whose
  polls take longer than three poll intervals, auto-heal in enforce mode on a crash-looping connector
  (restarts, attempt cap, persistent failure) and on a mass failure (breaker), auto-heal in dry-run mode;
  Confluent Cloud managed connectors with the Metrics API down. A second exporter instance watches the same
  Cloud organisation with a metrics delay so long that its data is stale.
- ``cloud-flowing``: the Metrics API recovers; the throughput and dead-letter counters move.
- ``cloud-auth``: the Connect API rejects the key (403).
- ``exporter-down``: the second exporter instance is stopped.

Prometheus evaluates a copy of alerts/kafka-connect.rules.yml with every ``for:`` cut to 1s. Every alert must
be pending or firing in its scenario with the labels that say what is broken; every panel query of every
dashboard (with its variables resolved as Grafana does) and every variable query must return data in at least
one scenario.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from exporter.simulator.cloud import run_in_thread as run_cloud_in_thread
from exporter.simulator.cloud_state import CloudState
from exporter.simulator.connect import PAUSED, STOPPED, UNASSIGNED, SimCluster
from exporter.simulator.server import Fault, SimThread, run_in_thread
from tests.e2e.grafana import STEP, Dashboard, Target, resolve, substitute
from tests.e2e.prometheus import JOB, PrometheusServer, prometheus_binary, wait_for
from tests.e2e.world import Driver, exporter_process, keep_logs, refused_address
from tests.test_alerts_dashboards import DASHBOARDS, RULE_FILES, load_rules

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
    return c


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
    return state


def cloud_section(url: str, *, metrics_delay: str) -> dict[str, Any]:
    return {
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
class Phase:
    name: str
    start: float
    end: float = 0.0


@dataclass
class Expect:
    """An alert that must be pending or firing in ``phase`` with at least these labels."""

    alert: str
    phase: str
    labels: dict[str, str]

    def matches(self, labels: dict[str, str]) -> bool:
        return labels.get("alertname") == self.alert and all(labels.get(k) == v for k, v in self.labels.items())


@dataclass
class Run:
    prom: PrometheusServer
    phases: list[Phase]
    expected: list[Expect]
    instance_a: str
    instance_b: str

    @property
    def start(self) -> float:
        return self.phases[0].start

    @property
    def end(self) -> float:
        return self.phases[-1].end

    def phase(self, name: str) -> Phase:
        return next(p for p in self.phases if p.name == name)

    def alert_series(self) -> list[dict[str, str]]:
        """Every label set ALERTS had during the run (pending and firing), from Prometheus' TSDB."""
        return [s.labels for s in self.prom.query_range("ALERTS", self.start, self.end, 1.0)]


def expectations(instance_b: str, prod_worker_down: str) -> list[Expect]:
    e = Expect
    return [
        e("KafkaConnectClusterUnreachable", "faults", {"connect_cluster": "down"}),
        e("KafkaConnectWorkerDown", "faults", {"connect_cluster": "prod", "worker": prod_worker_down}),
        e("KafkaConnectConnectorFailed", "faults", {"connect_cluster": "prod", "connector": "orders-sink"}),
        e("KafkaConnectConnectorFailed", "faults", {"connect_cluster": CLOUD, "connector": "snowflake-sink"}),
        e(
            "KafkaConnectTaskFailed",
            "faults",
            {"connect_cluster": "prod", "connector": "billing-sink", "task": "1", "state": "FAILED"},
        ),
        e(
            "KafkaConnectTaskFailed",
            "faults",
            {"connect_cluster": CLOUD, "connector": "s3-archive", "task": "1", "state": "USER_ACTIONABLE_ERROR"},
        ),
        e(
            "KafkaConnectTaskFailed",
            "faults",
            {"connect_cluster": CLOUD, "connector": "snowflake-sink", "task": "0", "state": "SYSTEM_ERROR"},
        ),
        e("KafkaConnectConnectorUnassigned", "faults", {"connect_cluster": "prod", "connector": "inventory-src"}),
        e(
            "KafkaConnectTaskUnassigned",
            "faults",
            {"connect_cluster": "prod", "connector": "inventory-src", "task": "0"},
        ),
        e(
            "KafkaConnectTaskUnassigned",
            "faults",
            {"connect_cluster": "prod", "connector": "inventory-src", "task": "1"},
        ),
        e("KafkaConnectConnectorNoTasks", "faults", {"connect_cluster": "prod", "connector": "idle-src"}),
        e("KafkaConnectConnectorTasksBelowMax", "faults", {"connect_cluster": "prod", "connector": "clicks-src"}),
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
        e(
            "KafkaConnectCloudDeadLetterRecords",
            "cloud-flowing",
            {"connect_cluster": CLOUD, "connector": "s3-archive"},
        ),
        e("KafkaConnectCloudMetricsStale", "cloud-flowing", {"connect_cluster": CLOUD, "instance": instance_b}),
        e("KafkaConnectCloudApiAuthFailed", "cloud-auth", {"api": "connect"}),
        e("KafkaConnectExporterDown", "exporter-down", {"instance": instance_b, "job": JOB}),
    ]


def wait_for_alerts(run: Run, phase: str, timeout: float = PHASE_TIMEOUT) -> None:
    """Poll /api/v1/alerts until every alert expected in ``phase`` is pending or firing (bounded).

    A timeout is not raised here: the per-alert tests report what is missing, with what Prometheus saw.
    """
    wanted = [e for e in run.expected if e.phase == phase]

    def all_seen() -> bool:
        alerts = run.prom.alerts()
        return all(any(e.matches(a["labels"]) for a in alerts) for e in wanted)

    with contextlib.suppress(AssertionError):
        wait_for(all_seen, timeout, f"the alerts of phase {phase}", interval=0.5)


@pytest.fixture(scope="module")
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    if prometheus_binary() is None:
        pytest.fail("prometheus not found: install Debian's prometheus package (make tools)")
    workdir = tmp_path_factory.mktemp("e2e")
    failed_before = request.session.testsfailed
    env = {"E2E_CCLOUD_KEY": CLOUD_KEY, "E2E_CCLOUD_SECRET": CLOUD_SECRET}
    state = cloud_state()
    state.set_outage("metrics", 503)  # phase "faults": the Metrics API is down
    with contextlib.ExitStack() as stack:
        prod: SimThread = stack.enter_context(run_in_thread(prod_cluster()))
        heal: SimThread = stack.enter_context(run_in_thread(heal_cluster()))
        breaker: SimThread = stack.enter_context(run_in_thread(breaker_cluster()))
        flaky: SimThread = stack.enter_context(run_in_thread(single("lines-src")))
        slow: SimThread = stack.enter_context(run_in_thread(single("slow-src")))
        cloud = stack.enter_context(run_cloud_in_thread(state))
        down = stack.enter_context(refused_address())

        prod.set_fault(2, Fault.refuse())  # a worker down in a live cluster
        slow.set_fault(0, Fault.slow(4.0))  # every answer takes 4s: cycles take > 3 poll intervals
        driver = stack.enter_context(Driver())
        driver.every(0.2, heal.cluster.tick)  # restarts finish; persistent faults fail again
        driver.every(0.2, breaker.cluster.tick)
        # One failed status request per second at two polls a second: about half the cycles fail.
        driver.every(1.0, lambda: flaky.set_fault(0, Fault.http_status(500, path="/connectors", times=1)))

        fast_heal = {"grace_period": "0.5s", "stable_period": "1h", "backoff": {"initial": "1s", "max": "2s"}}
        config_a = {
            "log": {"level": "info"},
            "clusters": [
                cluster("prod", prod.urls, autoheal={"mode": "dry-run", "grace_period": "1s"}),
                cluster("down", [f"http://{down}"]),
                cluster("flaky", flaky.urls),
                cluster("slow", slow.urls, cycle_timeout="30s", request_timeout="30s"),
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
            "confluent_cloud": cloud_section(cloud.url, metrics_delay="1s"),
        }
        # Instance B: the same organisation, but buckets are only counted 1000s after they began: stale.
        config_b = {"confluent_cloud": cloud_section(cloud.url, metrics_delay="1000s")}
        exporter_a = stack.enter_context(exporter_process("a", workdir, config_a, env))
        exporter_b = stack.enter_context(exporter_process("b", workdir, config_b, env))

        prom = stack.enter_context(
            PrometheusServer(workdir / "prometheus", [exporter_a.address, exporter_b.address], RULE_FILES)
        )
        wait_for(
            lambda: set(prom.targets_up().values()) == {"up"} and len(prom.targets_up()) == 2,
            30,
            "Prometheus to scrape both exporters",
        )
        run = Run(prom, [], expectations(exporter_b.address, prod.urls[2]), exporter_a.address, exporter_b.address)
        try:
            run.phases.append(Phase("faults", time.time()))
            break_heal_cluster(heal.cluster)
            wait_for_alerts(run, "faults")
            driver.check()

            run.phases[-1].end = time.time()
            state.set_outage("metrics", None)
            run.phases.append(Phase("cloud-flowing", time.time()))
            wait_for_alerts(run, "cloud-flowing")

            run.phases[-1].end = time.time()
            state.forbid("connect")
            run.phases.append(Phase("cloud-auth", time.time()))
            wait_for_alerts(run, "cloud-auth")

            run.phases[-1].end = time.time()
            exporter_b.stop()
            run.phases.append(Phase("exporter-down", time.time()))
            wait_for_alerts(run, "exporter-down")
            run.phases[-1].end = time.time() + 1
            time.sleep(1.5)  # let the last evaluation land in the TSDB before the window closes
            driver.check()
            yield run
        finally:
            if request.session.testsfailed > failed_before:
                prom.stop()
                exporter_a.stop()
                saved = keep_logs(workdir, "dashboards-alerts")
                print(f"\ne2e logs (Prometheus, exporters, configs) kept in {saved}")


# --------------------------------------------------------------------------------------------- alerts
def test_prometheus_loads_and_evaluates_every_rule(run: Run) -> None:
    assert sorted(run.prom.alert_names) == sorted(r["alert"] for r in load_rules())
    assert run.prom.rule_health() == []


def test_every_alert_has_a_scenario(run: Run) -> None:
    missing = {r["alert"] for r in load_rules()} - {e.alert for e in run.expected}
    assert not missing, f"alerts without an end-to-end scenario: {sorted(missing)}"


@pytest.mark.parametrize("alert", [r["alert"] for r in load_rules()])
def test_alert_goes_pending_or_firing_in_its_scenario(run: Run, alert: str) -> None:
    series = run.alert_series()
    problems = []
    for exp in (e for e in run.expected if e.alert == alert):
        if not any(exp.matches(s) for s in series):
            phase = run.phase(exp.phase)
            got = [s for s in series if s.get("alertname") == alert]
            problems.append(
                f"{alert}{exp.labels} never pending/firing in phase {exp.phase} "
                f"({phase.end - phase.start:.0f}s); its ALERTS series: {got or 'none'}"
            )
    assert not problems, "\n".join(problems)


def test_task_alerts_do_not_split_by_worker(run: Run) -> None:
    task_alerts = [
        s for s in run.alert_series() if s["alertname"] in ("KafkaConnectTaskFailed", "KafkaConnectTaskUnassigned")
    ]
    assert task_alerts
    assert not [s for s in task_alerts if "worker_id" in s]


def test_alerts_stay_silent_where_another_alert_explains_it(run: Run) -> None:
    """A cluster that is down is one alert (ClusterUnreachable), not also worker, poll or staleness alerts;
    credentials rejected are CloudApiAuthFailed, not also CloudApiDown; PAUSED and STOPPED are no failures."""
    series = run.alert_series()
    wrong = [
        s
        for s in series
        if (s.get("connect_cluster") == "down" and s["alertname"] != "KafkaConnectClusterUnreachable")
        or (s["alertname"] == "KafkaConnectCloudApiDown" and s.get("api") == "connect")
        or (s.get("connector") in ("audit-src", "archive-sink", "gcs-logs", "payments-src", "steady-src"))
    ]
    assert not wrong, wrong


# --------------------------------------------------------------------------------------------- dashboards
@dataclass
class Hit:
    phase: str
    binding: dict[str, str]


@dataclass
class Evaluated:
    target: Target
    hit: Hit | None
    core_hit: Hit | None  # the query without `or vector(0)`; None when there is no fallback or no data

    @property
    def ok(self) -> bool:
        return self.hit is not None and (self.target.core() is None or self.core_hit is not None)


def returns_data(prom: PrometheusServer, expr: str, instant: bool, phase: Phase) -> bool:
    """Range targets as Grafana runs them (query_range over the window); instant targets (tables) with
    /api/v1/query at moments of the window, newest first, as a user opening the dashboard then would."""
    if not instant:
        return any(s.values for s in prom.query_range(expr, phase.start, phase.end, STEP))
    at = phase.end
    while at >= phase.start:
        if prom.query(expr, at=at):
            return True
        at -= 2.0
    return False


def first_hit(
    prom: PrometheusServer, expr: str, instant: bool, tries: list[tuple[Phase, list[dict[str, str]]]]
) -> Hit | None:
    for phase, bindings in tries:
        for binding in bindings:
            if returns_data(prom, substitute(expr, binding), instant, phase):
                return Hit(phase.name, binding)
    return None


def evaluate(
    prom: PrometheusServer, phases: list[Phase], only: dict[str, str] | None = None, dashboards: list[Path] = DASHBOARDS
) -> tuple[list[Evaluated], dict[str, set[str]]]:
    results: list[Evaluated] = []
    variables: dict[str, set[str]] = {}
    for path in dashboards:
        d = Dashboard.load(path)
        tries = []
        for phase in phases:
            res = resolve(prom, d, phase.start, phase.end, only)
            for name, values in res.values.items():
                variables.setdefault(f"{d.title} / ${name}", set()).update(values)
            tries.append((phase, res.bindings))
        for t in d.targets():
            hit = first_hit(prom, t.expr, t.instant, tries)
            core = t.core()
            core_hit = first_hit(prom, core, t.instant, tries) if core is not None else None
            results.append(Evaluated(t, hit, core_hit))
    return results, variables


@pytest.fixture(scope="module")
def dashboards(run: Run) -> tuple[list[Evaluated], dict[str, set[str]]]:
    return evaluate(run.prom, run.phases)


def test_every_dashboard_variable_has_values(dashboards: tuple[list[Evaluated], dict[str, set[str]]]) -> None:
    _, variables = dashboards
    assert variables
    empty = sorted(name for name, values in variables.items() if not values)
    assert not empty, f"variable queries that return nothing in every scenario: {empty}"


def test_every_panel_query_returns_data(dashboards: tuple[list[Evaluated], dict[str, set[str]]]) -> None:
    results, _ = dashboards
    assert len(results) >= 60, len(results)  # all four dashboards were read
    empty = [f"{r.target.where}: {r.target.expr}" for r in results if r.hit is None]
    fallback_only = [
        f"{r.target.where}: only its `or vector(0)` fallback ever answers: {r.target.core()}"
        for r in results
        if r.hit is not None and not r.ok
    ]
    problems = empty + fallback_only
    assert not problems, (
        f"{len(problems)} of {len(results)} panel queries return nothing in every scenario:\n" + "\n".join(problems)
    )
