"""The whole auto-heal loop over real HTTP: simulator workers -> real poller -> store and Healer -> restarts.

Time is a hand-driven clock shared by the poller and the healer, so grace periods and backoffs of minutes
pass instantly; the simulated cluster only moves on when ``sim.tick()`` is called.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from exporter.config import ClusterConfig
from exporter.connect.client import build_http_client
from exporter.connect.poller import ConnectPoller
from exporter.healer.policy import TargetKey
from exporter.healer.runner import Healer
from exporter.store import Store
from simulator.connect.server import SimConnectServer, SimThread
from simulator.connect.state import SimCluster
from simulator.faults import Fault
from tests.healer.world import MIN, Clock, loop, show
from tests.support.waiting import eventually_async

KIP745 = "?includeTasks=true&onlyFailed=true"


async def test_failed_task_is_healed_with_one_kip745_call_after_the_grace_period() -> None:
    sim = SimCluster(version="3.9.0", worker_count=2)
    sim.add_connector("orders", "sink", tasks_max=3)
    async with loop(sim) as lp:
        await lp.cycle()
        assert lp.scrape().value("kafka_connect_autoheal_breaker_open", connect_cluster="sim") == 0
        sim.fail_task("orders", 1)
        await lp.cycle(30)
        assert lp.restarts() == []
        m = lp.scrape()
        assert m.value("kafka_connect_autoheal_suppressed_total", connect_cluster="sim", reason="grace") == 1
        assert m.value(
            "kafka_connect_autoheal_next_attempt_timestamp_seconds", connect_cluster="sim", connector="orders", task="1"
        ) == pytest.approx(lp.clock.now + MIN)
        await lp.cycle(MIN)
        assert lp.restarts() == ["/connectors/orders/restart" + KIP745]
        m = lp.scrape()
        assert (
            m.value(
                "kafka_connect_autoheal_restarts_total",
                connect_cluster="sim",
                connector="orders",
                kind="task",
                outcome="accepted",
            )
            == 1
        )
        # Backoff after the first attempt: 2 minutes.
        assert m.value(
            "kafka_connect_autoheal_next_attempt_timestamp_seconds", connect_cluster="sim", connector="orders", task="1"
        ) == pytest.approx(lp.clock.now + 2 * MIN)
        assert sim.connector("orders").tasks[1].state == "RESTARTING"
        await lp.cycle(30, tick=True)
        assert sim.connector("orders").tasks[1].state == "RUNNING"
        for _ in range(5):
            await lp.cycle(MIN, tick=True)
        assert len(lp.restarts()) == 1
        assert lp.scrape().samples("kafka_connect_autoheal_next_attempt_timestamp_seconds") == []


async def test_old_worker_restarts_the_connector_then_each_failed_task() -> None:
    sim = SimCluster(version="2.8.2", worker_count=2)
    sim.add_connector("orders", "sink", tasks_max=3)
    async with loop(sim) as lp:
        sim.fail_connector("orders")
        sim.fail_task("orders", 0)
        sim.fail_task("orders", 2)
        await lp.cycle()
        await lp.cycle(MIN)
        assert lp.restarts() == [
            "/connectors/orders/restart",
            "/connectors/orders/tasks/0/restart",
            "/connectors/orders/tasks/2/restart",
        ]
        m = lp.scrape()
        by_kind = {lbl["kind"]: v for lbl, v in m.samples("kafka_connect_autoheal_restarts_total", outcome="accepted")}
        assert by_kind == {"connector": 1, "task": 2}
        c = sim.connector("orders")
        assert [c.state, *(t.state for t in c.tasks)] == ["RUNNING"] * 4


async def test_worker_that_ignores_the_kip745_params_gets_task_restarts_too() -> None:
    # Reports 3.x but answers like 2.8: the 204 shows only the connector was restarted.
    sim = SimCluster(version="3.1.0", api_version="2.8.0", worker_count=1)
    sim.add_connector("orders", "sink", tasks_max=2)
    async with loop(sim) as lp:
        sim.fail_connector("orders")
        sim.fail_task("orders", 1)
        await lp.cycle()
        await lp.cycle(MIN)
        assert lp.restarts() == ["/connectors/orders/restart" + KIP745, "/connectors/orders/tasks/1/restart"]
        assert sim.connector("orders").tasks[1].state == "RUNNING"


async def test_rebalance_409_is_retried_next_cycle_without_spending_an_attempt() -> None:
    sim = SimCluster(version="3.9.0", worker_count=2)
    sim.add_connector("orders", "sink", tasks_max=2)
    async with loop(sim) as lp:
        sim.fail_task("orders", 0)
        await lp.cycle()
        sim.set_rebalancing(True)
        await lp.cycle(MIN)
        await lp.cycle(30)
        assert len(lp.restarts()) == 2  # one per cycle, no backoff
        assert lp.healer.state("sim").targets[TargetKey("orders", 0)].attempts == 0
        m = lp.scrape()
        assert (
            m.value("kafka_connect_autoheal_restarts_total", connector="orders", kind="task", outcome="conflict") == 2
        )
        sim.set_rebalancing(False)
        await lp.cycle(30)
        assert len(lp.restarts()) == 3
        assert lp.healer.state("sim").targets[TargetKey("orders", 0)].attempts == 1
        assert lp.scrape().value("kafka_connect_autoheal_restarts_total", kind="task", outcome="accepted") == 1


async def test_mass_failure_holds_restarts_probes_then_heals_within_budget() -> None:
    sim = SimCluster(version="3.9.0", worker_count=3)
    for i in range(10):
        sim.add_connector(f"src-{i}", "source", tasks_max=1)
    async with loop(sim, restarts_per_minute=3, breaker={"probe_interval": "5m"}) as lp:
        await lp.cycle()
        for i in range(8):  # the brokers go away: most source tasks fail at once
            sim.fail_task(f"src-{i}", 0)
        await lp.cycle(30)
        m = lp.scrape()
        assert m.value("kafka_connect_autoheal_breaker_open", connect_cluster="sim") == 1
        for _ in range(9):
            await lp.cycle(30)
        assert lp.restarts() == []
        assert m.value("kafka_connect_autoheal_suppressed_total", reason="grace") == 8
        assert lp.scrape().value("kafka_connect_autoheal_suppressed_total", reason="breaker") > 0  # type: ignore[operator]
        await lp.cycle(30)  # five minutes after opening: one probe
        assert lp.restarts() == ["/connectors/src-0/restart" + KIP745]
        for _ in range(9):
            await lp.cycle(30, tick=True)
            assert len(lp.restarts()) == 1  # nothing else while the probe proves itself
        await lp.cycle(30, tick=True)
        assert lp.scrape().value("kafka_connect_autoheal_breaker_open", connect_cluster="sim") == 0
        assert len(lp.restarts()) == 1 + 3  # the budget paces the rest: 3 a minute
        for _ in range(4):
            await lp.cycle(30, tick=True)
        assert len(lp.restarts()) == 8
        sim.tick()
        assert all(t.state == "RUNNING" for n in sim.connector_names() for t in sim.connector(n).tasks)


async def test_persistent_failure_reaches_the_cap_and_is_left_alone_until_retry() -> None:
    sim = SimCluster(version="3.9.0", worker_count=2)
    sim.add_connector("orders", "sink", tasks_max=1)
    async with loop(sim, max_attempts=3, backoff={"initial": "1m", "jitter": 0}) as lp:
        sim.fail_task("orders", 0, persistent=True)
        await lp.cycle()
        for _ in range(60):
            await lp.cycle(MIN, tick=True)
        assert len(lp.restarts()) == 3
        m = lp.scrape()
        assert m.value("kafka_connect_autoheal_persistent_failures", connect_cluster="sim") == 1
        assert m.value("kafka_connect_autoheal_persistent_failure", connector="orders", task="0") == 1
        assert m.value("kafka_connect_autoheal_suppressed_total", reason="cap") > 50  # type: ignore[operator]
        assert m.samples("kafka_connect_autoheal_next_attempt_timestamp_seconds") == []
        # The cause is fixed, but the healer was told to give up: it waits for the operator.
        sim.set_persistent_fault("orders", 0, None)
        await lp.cycle(MIN, tick=True)
        assert len(lp.restarts()) == 3
        assert lp.healer.retry("sim", "orders") == 1
        await lp.cycle(MIN, tick=True)
        assert len(lp.restarts()) == 4
        await lp.cycle(MIN, tick=True)
        assert sim.connector("orders").tasks[0].state == "RUNNING"
        assert lp.scrape().value("kafka_connect_autoheal_persistent_failures", connect_cluster="sim") == 0


async def test_paused_and_stopped_connectors_are_never_touched() -> None:
    sim = SimCluster(version="3.9.0", worker_count=2)
    sim.add_connector("paused", "sink", tasks_max=2)
    sim.add_connector("stopped", "sink", tasks_max=2)
    async with loop(sim) as lp:
        sim.fail_task("paused", 0)
        sim.pause("paused")  # FAILED tasks stay FAILED under a paused connector
        sim.stop("stopped")
        for _ in range(20):
            await lp.cycle(MIN, tick=True)
        assert sim.connector("paused").tasks[0].state == "FAILED"
        assert lp.restarts() == []
        assert sim.connector("paused").state == "PAUSED" and sim.connector("stopped").state == "STOPPED"


async def test_dry_run_decides_and_counts_but_sends_nothing() -> None:
    sim = SimCluster(version="3.9.0", worker_count=2)
    sim.add_connector("orders", "sink", tasks_max=1)
    async with loop(sim, mode="dry-run") as lp:
        sim.fail_task("orders", 0)
        await lp.cycle()
        await lp.cycle(MIN)
        await lp.cycle(MIN)
        await lp.cycle(MIN)  # two minutes after the first would-be restart: the second one
        assert lp.restarts() == []
        m = lp.scrape()
        assert m.value("kafka_connect_autoheal_restarts_total", connector="orders", outcome="dry_run") == 2
        assert m.value("kafka_connect_autoheal_suppressed_total", reason="dry_run") == 2
        assert m.value("kafka_connect_autoheal_mode", connect_cluster="sim", mode="dry-run") == 1
        assert m.value("kafka_connect_autoheal_mode", connect_cluster="sim", mode="enforce") == 0
        assert sim.connector("orders").tasks[0].state == "FAILED"


async def test_connector_deleted_before_the_restart_is_forgotten() -> None:
    sim = SimCluster(version="3.9.0", worker_count=2)
    sim.add_connector("orders", "sink", tasks_max=1)
    async with loop(sim) as lp:
        sim.fail_task("orders", 0)
        await lp.cycle()
        lp.clock.now += MIN
        snap = await lp.poller.poll()
        sim.delete("orders")  # gone between the poll and the restart
        lp.publish(snap)
        await lp.healer.settled()
        assert lp.restarts() == ["/connectors/orders/restart" + KIP745]
        assert lp.healer.state("sim").targets == {}
        await lp.cycle(MIN)  # the next poll no longer lists it: its counters go too
        assert lp.scrape().samples("kafka_connect_autoheal_restarts_total") == []


async def test_local_worker_sidecars_never_restart_the_same_task() -> None:
    sim = SimCluster(version="3.9.0", worker_count=2)
    for i in range(4):
        sim.add_connector(f"c{i}", "sink", tasks_max=2)
    async with SimConnectServer(sim) as server:
        store = Store(expected=["sim"])
        clock = Clock()
        healers = []
        sidecar_clients = []  # one process per worker in production, each with its own client
        for w in range(2):
            cfg = ClusterConfig(
                name="sim",
                urls=server.urls,
                autoheal={
                    "mode": "enforce",
                    "scope": "local-worker",
                    "worker_id": sim.worker_id(w),
                    "breaker": {"max_failed_share": 1.0},
                },
            )
            sidecar_clients.append(build_http_client(cfg))
            healer = Healer([cfg], store.publish, {cfg.name: sidecar_clients[-1]}, clock=clock)
            store.derive(healer.step)
            healer.attach()
            healers.append(healer)
        client = build_http_client(cfg)
        poller = ConnectPoller(cfg, client, clock=clock)
        try:
            for i in range(4):
                for t in range(2):
                    sim.fail_task(f"c{i}", t)
            for _ in range(3):
                clock.now += MIN
                snap = await poller.poll()
                store.publish_cluster(snap)  # each healer gets it from the store's subscription
                for h in healers:
                    await h.settled()
        finally:
            for h in healers:
                await h.stop()
            for c in [client, *sidecar_clients]:
                await c.aclose()
        posts = [show(r) for r in server.requests if r.method == "POST"]
    restarted: list[tuple[str, int]] = []
    for p in posts:
        parts = p.split("?")[0].split("/")  # ['', 'connectors', c, 'restart'] or [..., 'tasks', t, 'restart']
        if parts[3] == "tasks":
            restarted.append((parts[2], int(parts[4])))
        else:
            assert p.endswith(KIP745)
            restarted.extend((parts[2], t) for t in range(2))  # a combined call: both tasks were local
    assert sorted(restarted) == [(f"c{i}", t) for i in range(4) for t in range(2)]  # each once, none twice
    assert all(t.state in ("RUNNING", "RESTARTING") for n in sim.connector_names() for t in sim.connector(n).tasks)


async def test_metric_names_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    sim = SimCluster(version="3.9.0", worker_count=1)
    sim.add_connector("orders", "sink", tasks_max=1)
    async with loop(sim, max_attempts=1) as lp:
        sim.fail_task("orders", 0, persistent=True)
        await lp.cycle()
        await lp.cycle(MIN)
        await lp.cycle(MIN, tick=True)
        text = lp.scrape().text
    assert "kafka_connect_autoheal_persistent_failure{" in text
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


async def test_daemon_wires_the_healer_and_serves_its_metrics(sim: SimThread) -> None:
    from tests.support.daemon_harness import quick_config, running_daemon

    sim.cluster.add_connector("orders", "sink", tasks_max=2)
    sim.cluster.fail_task("orders", 1)
    config = quick_config({"c": sim.urls}, autoheal={"mode": "enforce", "grace_period": "300ms"})
    async with running_daemon(config) as ex:
        scrape = await ex.wait_for(
            lambda s: (
                (s.value("kafka_connect_autoheal_restarts_total", connector="orders", outcome="accepted") or 0) >= 1
            ),
            what="a restart by the daemon's healer",
        )
        assert scrape.value("kafka_connect_autoheal_mode", connect_cluster="c", mode="enforce") == 1
        assert scrape.value("kafka_connect_autoheal_suppressed_total", connect_cluster="c", reason="grace") >= 1  # type: ignore[operator]
    posts = [show(r) for r in sim.server.requests if r.method == "POST"]
    assert posts == ["/connectors/orders/restart" + KIP745]


async def test_daemon_without_autoheal_has_no_healer(sim: SimThread) -> None:
    from tests.support.daemon_harness import quick_config, running_daemon

    sim.cluster.add_connector("orders", "sink", tasks_max=1)
    sim.cluster.fail_task("orders", 0)
    async with running_daemon(quick_config({"c": sim.urls})) as ex:
        scrape = await ex.next_polls("c", 3)
        assert not [n for n in scrape.families if n.startswith("kafka_connect_autoheal_")]
    assert [r for r in sim.server.requests if r.method == "POST"] == []


async def test_a_hanging_restart_never_blocks_the_publisher_or_other_rounds() -> None:
    sim = SimCluster(version="3.9.0", worker_count=1)
    sim.add_connector("orders", "sink", tasks_max=1)
    async with loop(sim, request_timeout="2s") as lp:
        sim.fail_task("orders", 0)
        await lp.cycle()
        await lp.server.set_fault(0, Fault.hang(path=r"/connectors/orders/restart"))
        lp.clock.now += MIN
        snap = await lp.poller.poll()
        started = time.monotonic()
        lp.publish(snap)  # the healer's round starts and hangs on the restart ...
        lp.publish(snap)
        # ... but publishing returns at once: waiting for the restart would take its 2 s request timeout.
        # The bound is far above a dictionary update and far below the restart's 2 s request timeout.
        assert time.monotonic() - started < 0.5
        await eventually_async(
            lambda: any(r.method == "POST" for r in lp.server.requests), what="the restart sent (and hanging)"
        )
        assert lp.store.view.clusters["sim"] is snap
        await lp.healer.settled()
        assert time.monotonic() - started >= 1.5
        assert lp.scrape().value("kafka_connect_autoheal_restarts_total", outcome="error") == 1
        assert lp.healer.state("sim").targets[TargetKey("orders", 0)].attempts == 0  # a timeout spends none


async def test_daemon_keeps_polling_and_serving_while_a_restart_hangs(sim: SimThread) -> None:
    from tests.support.daemon_harness import quick_config, running_daemon

    sim.cluster.add_connector("orders", "sink", tasks_max=1)
    sim.cluster.fail_task("orders", 0)
    for worker in range(2):
        sim.set_fault(worker, Fault.hang(path=r"/connectors/orders/restart"))
    # The restart hangs for its whole 60 s request timeout, far beyond everything awaited below.
    autoheal = {"mode": "enforce", "grace_period": "200ms", "request_timeout": "60s"}
    async with running_daemon(quick_config({"c": sim.urls}, autoheal=autoheal)) as ex:
        await eventually_async(
            lambda: any(r.method == "POST" for r in sim.requests()), what="the restart sent", timeout=10
        )
        scrape = await ex.next_polls("c", 3)  # the poll schedule and /metrics go on meanwhile
        assert scrape.value("kafka_connect_up", connect_cluster="c") == 1
        assert scrape.samples("kafka_connect_autoheal_restarts_total") == []  # the restart is still hanging
