"""Auto-heal of managed connectors: the Cloud source, the shared healer and the simulated Cloud API over
loopback, on one manual clock (grace periods, backoffs and 429 resets take no real time).

Every check reads the simulator's request log, the parsed exposition or the real daemon's HTTP answers.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from structlog.testing import capture_logs

from exporter.cloud.heal import CloudRestarter, policy_view
from exporter.cloud.source import CloudSource
from exporter.config import ConfluentCloudConfig, build_config
from exporter.features import HealerPlug
from exporter.healer.metrics import collect_autoheal
from exporter.healer.runner import Healer, ManagedCluster
from exporter.model import ClusterSnapshot
from exporter.store import Store
from simulator.cloud.server import CloudSimulator
from simulator.cloud.state import CloudState
from tests.cloud.sim import Published
from tests.support.clocks import ManualClock
from tests.support.daemon_harness import running_daemon
from tests.support.scrape import Scrape, parse_exposition

ENV = "env-prod1"
LKC = "lkc-main1"
CLUSTER = "managed"
T0 = 1_800_000_000 // 3600 * 3600 + 17
SECRET = "s3cr3t-Cl0ud-API-secret-value"
MIN = 60.0


class _Collector:
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> list[Metric]:
        return list(collect_autoheal(self.store.view))


@dataclass
class World:
    clock: ManualClock
    state: CloudState
    source: Published
    healer: Healer
    store: Store

    async def cycle(self, advance: float = 0.0) -> None:
        """Time passes, then one status poll (published: the healer's derived step gets it) and the round on it."""
        self.clock.advance(advance)
        await self.source.poll_status(CLUSTER)
        await self.healer.settled()

    def restarts(self) -> list[str]:
        posts = [r for r in self.state.requests if r.method == "POST" and r.path.endswith("/restart")]
        return [r.path.split("/connectors/")[1] for r in posts]

    def scrape(self) -> Scrape:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self.store))
        return parse_exposition(generate_latest(registry).decode())

    def restarted(self, connector: str, kind: str, outcome: str) -> float | None:
        return self.scrape().value(
            "kafka_connect_autoheal_restarts_total",
            connect_cluster=CLUSTER,
            connector=connector,
            kind=kind,
            outcome=outcome,
        )


def make_config(url: str, cloud: dict[str, Any], **autoheal: Any) -> ConfluentCloudConfig:
    heal: dict[str, Any] = {"mode": "enforce", "grace_period": "1m", "backoff": {"jitter": 0}}
    heal.update(autoheal)
    return ConfluentCloudConfig.model_validate(
        {
            "api_key": "SIMKEY0123456789",
            "api_secret": SECRET,
            "api_url": url,
            "metrics_url": url,
            "environments": [{"id": ENV, "clusters": [{"id": LKC, "name": CLUSTER}]}],
            "max_retries": 2,
            "request_timeout": 2,
            "autoheal": heal,
            **cloud,
        }
    )


@pytest.fixture
async def world() -> AsyncIterator[Any]:
    made: list[tuple[CloudSimulator, CloudSource, Healer]] = []

    async def make(setup: Any = None, cloud: dict[str, Any] | None = None, **autoheal: Any) -> World:
        clock = ManualClock(T0)
        state = CloudState(clock=clock.time, api_secret=SECRET)
        state.add_cluster(ENV, LKC)
        if setup is not None:
            setup(state)
        sim = CloudSimulator(state)
        await sim.start()
        store = Store()
        config = make_config(sim.url, cloud or {}, **autoheal)
        healer = Healer([], store.publish, {}, clock=clock.time)
        store.derive(healer.step)
        source = CloudSource(config, clock)
        healer.attach()
        restarter = CloudRestarter(source.http, source.connectors_url(CLUSTER), CLUSTER)
        healer.add_managed(ManagedCluster(CLUSTER, config.autoheal, restarter, policy_view))
        made.append((sim, source, healer))
        return World(clock, state, Published(source, store), healer, store)

    yield make
    for sim, source, healer in made:
        await healer.stop()
        await source.aclose()
        await sim.stop()


def failing(state: CloudState) -> None:
    """A sink with one SYSTEM_ERROR task beside a RUNNING one (DEGRADED), a source FAILED outright, a sink whose
    only task is USER_ACTIONABLE_ERROR (FAILED), and a healthy one."""
    state.add_connector(ENV, LKC, "s3-sink", type="sink", tasks=["RUNNING", "RUNNING"])
    state.set_state(ENV, LKC, "s3-sink", "DEGRADED", tasks=[("RUNNING", ""), ("SYSTEM_ERROR", "Internal error")])
    state.add_connector(ENV, LKC, "pg-cdc", tasks=["RUNNING"])
    state.set_state(ENV, LKC, "pg-cdc", "FAILED", tasks=[("SYSTEM_ERROR", "Internal error")], trace="Task failed")
    state.add_connector(ENV, LKC, "gcs-sink", type="sink", tasks=["RUNNING"])
    state.set_state(
        ENV, LKC, "gcs-sink", "FAILED", tasks=[("USER_ACTIONABLE_ERROR", "Access Denied on bucket b")], trace="x"
    )
    state.add_connector(ENV, LKC, "datagen", tasks=["RUNNING"])


async def test_system_error_is_restarted_after_the_grace_period_and_user_actionable_is_left_alone(world: Any) -> None:
    w: World = await world(failing)
    await w.cycle()
    assert w.restarts() == []
    m = w.scrape()
    assert m.value("kafka_connect_autoheal_mode", connect_cluster=CLUSTER, mode="enforce") == 1
    assert m.value("kafka_connect_autoheal_suppressed_total", connect_cluster=CLUSTER, reason="grace") == 3
    assert m.value("kafka_connect_autoheal_suppressed_total", connect_cluster=CLUSTER, reason="skip") == 2

    await w.cycle(MIN)
    # One request per connector restarts it and its tasks: no per-task restart in Connect API v1.
    assert sorted(w.restarts()) == ["pg-cdc/restart", "s3-sink/restart"]
    assert w.restarted("s3-sink", "task", "accepted") == 1
    assert w.restarted("pg-cdc", "connector", "accepted") == 1
    assert w.restarted("pg-cdc", "task", "accepted") == 1
    assert w.restarted("gcs-sink", "task", "accepted") is None
    assert w.state.connector(ENV, LKC, "pg-cdc").state == "RESTARTING"

    await w.cycle(10)  # the status shows RESTARTING: nothing to do
    snap = w.store.view.clusters[CLUSTER]
    assert snap.connector("s3-sink") is not None and snap.connector("s3-sink").state == "RESTARTING"  # type: ignore[union-attr]
    await w.cycle(MIN)  # restart_delay passed: RUNNING
    assert {c.name: c.state for c in w.store.view.clusters[CLUSTER].connectors} == {
        "s3-sink": "RUNNING",
        "pg-cdc": "RUNNING",
        "gcs-sink": "FAILED",
        "datagen": "RUNNING",
    }
    assert sorted(w.restarts()) == ["pg-cdc/restart", "s3-sink/restart"]
    m = w.scrape()
    assert m.label_values("kafka_connect_autoheal_last_restart_timestamp_seconds", "connector") == {"pg-cdc", "s3-sink"}
    reading = w.healer.reading().clusters[CLUSTER]
    assert {(k.connector, k.task, rule) for k, rule in reading.skipped.items()} == {
        ("gcs-sink", None, "user-actionable"),
        ("gcs-sink", 0, "user-actionable"),
    }


async def test_a_failure_that_comes_back_backs_off_then_becomes_persistent(world: Any) -> None:
    def setup(state: CloudState) -> None:
        state.add_connector(ENV, LKC, "pg-cdc", tasks=["RUNNING"])
        state.set_state(ENV, LKC, "pg-cdc", "FAILED", tasks=[("SYSTEM_ERROR", "Internal error")])
        state.fail_after_restart(ENV, LKC, "pg-cdc")

    w: World = await world(setup, max_attempts=2, backoff={"initial": "2m", "jitter": 0})
    await w.cycle()
    await w.cycle(MIN)
    assert w.restarts() == ["pg-cdc/restart"]
    await w.cycle(MIN)  # failed again after 30 s; backoff 2 m from the restart
    assert w.restarts() == ["pg-cdc/restart"]
    assert w.scrape().value("kafka_connect_autoheal_suppressed_total", connect_cluster=CLUSTER, reason="backoff") == 2
    await w.cycle(MIN)
    assert w.restarts() == ["pg-cdc/restart"] * 2
    for _ in range(5):
        await w.cycle(MIN)
    assert w.restarts() == ["pg-cdc/restart"] * 2
    m = w.scrape()
    assert m.value("kafka_connect_autoheal_persistent_failures", connect_cluster=CLUSTER) == 2  # connector + task
    assert m.value("kafka_connect_autoheal_persistent_failure", connect_cluster=CLUSTER, connector="pg-cdc", task="")

    assert w.healer.retry(CLUSTER, "pg-cdc") == 2  # what POST /-/autoheal/retry does
    await w.cycle(1)
    assert w.restarts() == ["pg-cdc/restart"] * 3


@pytest.mark.parametrize("status", [404, 405])
async def test_an_account_without_the_restart_endpoint_is_told_once_and_left_alone(world: Any, status: int) -> None:
    def setup(state: CloudState) -> None:
        failing(state)
        state.restart_status = status

    w: World = await world(setup)
    await w.cycle()
    with capture_logs() as logs:
        for _ in range(4):
            await w.cycle(MIN)
    posts = [r for r in w.state.requests if r.method == "POST"]
    assert [r.status for r in posts] == [status]  # the first one only; no more tries on this cluster
    warned = [e for e in logs if e["event"] == "ccloud_autoheal_unsupported"]
    assert len(warned) == 1 and warned[0]["status"] == status
    if status == 404:  # the connector's status read proves the 404 was the route's
        assert [r.path.rsplit("/", 1)[1] for r in w.state.requests_to("connect", "/status")] == ["status"]
    first = "pg-cdc"  # the oldest failure first, then by name
    assert w.restarted(first, "connector", "unsupported") == 1
    assert w.restarted("s3-sink", "task", "accepted") is None
    reading = w.healer.reading().clusters[CLUSTER]
    assert reading.stopped is not None and f"HTTP {status}" in reading.stopped
    assert reading.next_attempt == {}

    w.healer.retry(CLUSTER)  # the operator says try again: it is tried once more
    w.state.restart_status = None
    await w.cycle(1)
    assert sorted(r.path.split("/connectors/")[1] for r in w.state.requests if r.method == "POST")[-2:] == [
        "pg-cdc/restart",
        "s3-sink/restart",
    ]


async def test_a_restart_of_a_connector_deleted_meanwhile_forgets_it(world: Any) -> None:
    def setup(state: CloudState) -> None:
        state.add_connector(ENV, LKC, "pg-cdc", tasks=["RUNNING"])
        state.set_state(ENV, LKC, "pg-cdc", "FAILED", tasks=[("SYSTEM_ERROR", "Internal error")])

    w: World = await world(setup)
    await w.cycle()
    snap = await w.source.poll_status(CLUSTER)  # read while it still exists ...
    await w.healer.settled()
    w.state.delete_connector(ENV, LKC, "pg-cdc")  # ... deleted before the restart goes out
    w.clock.advance(MIN)
    assert snap is not None
    fresh = ClusterSnapshot(**{**{f: getattr(snap, f) for f in snap.__dataclass_fields__}, "taken_at": w.clock.time()})
    w.healer.step(fresh)
    await w.healer.settled()
    assert w.restarted("pg-cdc", "connector", "not_found") == 1
    assert w.healer.reading().clusters[CLUSTER].stopped is None  # a 404 for a gone connector is not "unsupported"


async def test_restarts_share_the_request_budget_under_a_429_storm(world: Any) -> None:
    def setup(state: CloudState) -> None:
        for i in range(6):
            state.add_connector(ENV, LKC, f"sink-{i}", type="sink", tasks=["RUNNING"])
            state.set_state(ENV, LKC, f"sink-{i}", "FAILED", tasks=[("SYSTEM_ERROR", "Internal error")])

    budget = 4
    w: World = await world(
        setup, cloud={"max_requests_per_minute": budget}, restarts_per_minute=100, breaker={"min_failed_tasks": 100}
    )
    await w.cycle()
    # Every Connect API request now answers 429 for a while (with Retry-After), while six restarts are due.
    w.state.fail_next("connect", 429, times=8, headers={"Retry-After": "20"})
    await w.cycle(MIN)
    await w.source.poll_metrics()
    for _ in range(6):
        await w.cycle(MIN)
        await w.source.poll_metrics()
    sent = sorted(w.state.requests, key=lambda r: r.at)
    assert sum(1 for r in sent if r.status == 429) == 8
    # Never more than the budget in any 60 s, statuses, restarts and metrics queries together.
    for r in sent:
        window = [x for x in sent if r.at <= x.at < r.at + 60.0]
        assert len(window) <= budget, [(x.method, x.path[-24:], x.status, round(x.at - T0, 1)) for x in window]
    # No request went out while a 429's Retry-After was pending.
    for a, b in itertools.pairwise(sent):
        if a.status == 429:
            assert b.at >= a.at + 20.0
    # The storm cost no attempt: every connector was restarted once, accepted, and is RUNNING again.
    accepted = [r.path.split("/connectors/")[1] for r in sent if r.method == "POST" and r.status == 202]
    assert sorted(accepted) == [f"sink-{i}/restart" for i in range(6)]
    for i in range(6):
        assert w.restarted(f"sink-{i}", "connector", "accepted") == 1
    assert all(c.state == "RUNNING" for c in w.store.view.clusters[CLUSTER].connectors)


def test_policy_view_marks_what_a_restart_may_fix() -> None:
    state = CloudState(clock=lambda: float(T0))
    failing(state)
    from exporter.cloud.status import parse_expanded
    from exporter.model import SourceKind

    payload = {
        c.name: {
            "id": {"id": c.id, "id_type": "ID"},
            "status": {
                "name": c.name,
                "type": c.type,
                "connector": {"state": c.state, "worker_id": c.name, "trace": c.trace},
                "tasks": [{"id": t.id, "state": t.state, "worker_id": c.name, "msg": t.trace} for t in c.tasks],
            },
        }
        for c in state.connectors.values()
    }
    connectors, _ = parse_expanded(payload)
    view = policy_view(ClusterSnapshot(CLUSTER, SourceKind.CLOUD, 0.0, 0.0, True, 60.0, connectors=connectors))
    got = {c.name: (c.state, c.trace, tuple((t.state, t.trace) for t in c.tasks)) for c in view.connectors}
    assert got["s3-sink"] == ("RUNNING", None, (("RUNNING", None), ("FAILED", "SYSTEM_ERROR: Internal error")))
    assert got["pg-cdc"] == ("FAILED", "FAILED: Task failed", (("FAILED", "SYSTEM_ERROR: Internal error"),))
    assert got["gcs-sink"][0:2] == ("FAILED", "USER_ACTIONABLE_ERROR: x")
    assert got["datagen"] == ("RUNNING", None, (("RUNNING", None),))


async def test_retry_endpoint_and_page_section_through_the_daemon() -> None:
    state = CloudState(api_secret=SECRET)
    state.restart_delay = 0.05
    state.add_connector(ENV, LKC, "pg-cdc", tasks=["RUNNING"])
    state.set_state(ENV, LKC, "pg-cdc", "FAILED", tasks=[("SYSTEM_ERROR", "Internal error")])
    state.fail_after_restart(ENV, LKC, "pg-cdc")
    async with CloudSimulator(state) as sim:
        raw = {
            "web": {"listen_address": "127.0.0.1:0"},
            "confluent_cloud": {
                "api_key": "SIMKEY0123456789",
                "api_secret": SECRET,
                "api_url": sim.url,
                "metrics_url": sim.url,
                "environments": [{"id": ENV, "clusters": [{"id": LKC, "name": CLUSTER}]}],
                "status_interval": 0.2,
                "autoheal": {"mode": "enforce", "grace_period": "200ms", "max_attempts": 1},
            },
        }
        async with running_daemon(build_config(raw)) as ex:
            s = await ex.wait_for(
                lambda s: s.value("kafka_connect_autoheal_persistent_failures", connect_cluster=CLUSTER) == 2.0,
                timeout=20,
                what="persistent failure",
            )
            assert (
                s.value(
                    "kafka_connect_autoheal_restarts_total",
                    connect_cluster=CLUSTER,
                    connector="pg-cdc",
                    kind="connector",
                    outcome="accepted",
                )
                == 1.0
            )
            page = (await ex.client.get(ex.base + "/")).text
            assert "<h2>Auto-heal</h2>" in page and "pg-cdc/0" in page
            retried = await ex.client.post(
                ex.base + "/-/autoheal/retry", params={"connect_cluster": CLUSTER, "connector": "pg-cdc"}
            )
            assert retried.status_code == 200 and retried.json()["reset"] == 2
            await ex.wait_for(
                lambda s: (
                    s.value(
                        "kafka_connect_autoheal_restarts_total",
                        connect_cluster=CLUSTER,
                        connector="pg-cdc",
                        kind="connector",
                        outcome="accepted",
                    )
                    == 2.0
                ),
                timeout=20,
                what="a second restart after the retry",
            )


async def test_a_reload_turns_managed_auto_heal_on_and_off() -> None:
    state = CloudState(api_secret=SECRET)
    state.restart_delay = 0.05
    state.add_connector(ENV, LKC, "pg-cdc", tasks=["RUNNING"])
    state.set_state(ENV, LKC, "pg-cdc", "FAILED", tasks=[("SYSTEM_ERROR", "Internal error")])
    async with CloudSimulator(state) as sim:

        def config(autoheal: dict[str, Any] | None) -> Any:
            cloud: dict[str, Any] = {
                "api_key": "SIMKEY0123456789",
                "api_secret": SECRET,
                "api_url": sim.url,
                "metrics_url": sim.url,
                "environments": [{"id": ENV, "clusters": [{"id": LKC, "name": CLUSTER}]}],
                "status_interval": 0.2,
            }
            if autoheal is not None:
                cloud["autoheal"] = autoheal
            return build_config({"web": {"listen_address": "127.0.0.1:0"}, "confluent_cloud": cloud})

        async with running_daemon(config(None)) as ex:
            await ex.wait_for(lambda s: s.value("kafka_connect_up", connect_cluster=CLUSTER) == 1.0, what="status")
            assert ex.daemon.plug(HealerPlug).healer is None
            ex.daemon.loader = lambda: config({"mode": "enforce", "grace_period": "200ms"})
            assert await ex.daemon.reload()
            await ex.wait_for(
                lambda s: (
                    s.value(
                        "kafka_connect_autoheal_restarts_total",
                        connect_cluster=CLUSTER,
                        connector="pg-cdc",
                        kind="connector",
                        outcome="accepted",
                    )
                    == 1.0
                ),
                timeout=20,
                what="a restart once a reload turned auto-heal on",
            )
            ex.daemon.loader = lambda: config({"mode": "off"})
            assert await ex.daemon.reload()
            s = await ex.scrape()
            assert s.value("kafka_connect_autoheal_mode", connect_cluster=CLUSTER, mode="off") == 1.0
            assert s.samples("kafka_connect_autoheal_restarts_total") == []
