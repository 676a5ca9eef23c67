"""Workers the statuses name: the pure tracker (reachable / lost / unknown / forgotten) and real probes
against simulated workers that answer, die, come back, never answer, or have a stuck herder."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import httpx
import pytest
from structlog.testing import capture_logs

from exporter.connect.workers import (
    ProbeResult,
    Work,
    WorkerTracker,
    health_of,
    probe_all,
    probe_base,
    work_by_worker,
)
from exporter.model import Connector, Task, WorkerState
from simulator.connect.server import connect_in_thread
from simulator.connect.state import SimCluster
from tests.support.daemon_harness import quick_config, running_daemon
from tests.support.net import is_loopback

A, B, C = "10.0.0.1:8083", "10.0.0.2:8083", "10.0.0.3:8083"  # never probed: the tracker is pure
OK = ProbeResult(True, "3.9.0", "K1", "healthy")
DOWN = ProbeResult(False)


def states(named: tuple[object, ...]) -> dict[str, WorkerState]:
    return {w.worker_id: w.state for w in named}  # type: ignore[attr-defined]


# -- pure parts -------------------------------------------------------------------------------------------


def test_work_by_worker_counts_connectors_and_tasks_per_named_worker() -> None:
    conns = [
        Connector("a", "sink", None, "RUNNING", A, (Task(0, "RUNNING", A), Task(1, "RUNNING", B))),
        Connector("b", "sink", None, "RUNNING", B, (Task(0, "FAILED", B),)),
        Connector("c", "sink", None, "UNASSIGNED", "", ()),  # no worker named: no entry
    ]
    assert work_by_worker(conns) == {A: Work(tasks=1, connectors=1), B: Work(tasks=2, connectors=1)}


@pytest.mark.parametrize(
    ("wid", "base"),
    [
        ("127.0.0.1:8083", "http://127.0.0.1:8083"),
        ("connect-0.connect.svc:8083", "http://connect-0.connect.svc:8083"),
        ("[::1]:8083", "http://[::1]:8083"),
        ("no-port", None),
        ("host:0", None),
        ("host:99999", None),
        ("user@host:8083", None),
        ("host/path:8083", None),
        ("", None),
    ],
)
def test_probe_base(wid: str, base: str | None) -> None:
    assert probe_base(wid, "http") == base


def test_health_of_prefers_the_body_then_the_status() -> None:
    assert health_of(200, {"status": "healthy"}) == "healthy"
    assert health_of(503, {"status": "starting", "message": "..."}) == "starting"
    assert health_of(500, {"status": "unhealthy"}) == "unhealthy"
    assert health_of(500, {"error_code": 500, "message": "Worker is shutting down"}) == "unhealthy"
    assert health_of(503, None) == "starting"


def test_tracker_reachable_lost_unknown_forgotten() -> None:
    t = WorkerTracker()
    work = {A: Work(2, 1), B: Work(1, 0), C: Work(0, 1)}
    first = t.step(work, {A: OK, B: OK, C: DOWN}, "K1")
    assert states(first) == {A: WorkerState.REACHABLE, B: WorkerState.REACHABLE, C: WorkerState.UNKNOWN}
    assert [(w.tasks, w.connectors) for w in first] == [(2, 1), (1, 0), (0, 1)]
    assert first[0].version == "3.9.0" and first[0].health == "healthy"

    second = t.step(work, {A: OK, B: DOWN, C: DOWN}, "K1")
    assert states(second) == {A: WorkerState.REACHABLE, B: WorkerState.LOST, C: WorkerState.UNKNOWN}
    assert [w.worker_id for w in second if w.impaired] == [B]
    assert second[1].version is None and second[1].health is None

    # still lost while it stays named and silent; back to reachable when it answers again
    assert states(t.step(work, {A: OK, B: DOWN, C: DOWN}, "K1"))[B] is WorkerState.LOST
    assert states(t.step(work, {A: OK, B: OK, C: DOWN}, "K1"))[B] is WorkerState.REACHABLE

    # the rebalance moved B's work: no status names B, so it is forgotten after one cycle...
    t.step(work, {A: OK, B: DOWN, C: DOWN}, "K1")
    moved = {A: Work(3, 1), C: Work(0, 1)}
    assert states(t.step(moved, {A: OK, C: DOWN}, "K1")) == {A: WorkerState.REACHABLE, C: WorkerState.UNKNOWN}
    # ...and when a status names it again, silent, it is unknown, not lost
    assert states(t.step(work, {A: OK, B: DOWN, C: DOWN}, "K1"))[B] is WorkerState.UNKNOWN


def test_tracker_another_kafka_cluster_id_is_no_answer() -> None:
    t = WorkerTracker()
    t.step({A: Work(1)}, {A: OK}, "K1")
    foreign = ProbeResult(True, "3.9.0", "OTHER")
    (w,) = t.step({A: Work(1)}, {A: foreign}, "K1")
    assert w.state is WorkerState.LOST
    assert w.error is not None and "OTHER" in w.error.message
    # without an expected id (none configured, none seen yet) any id is accepted
    assert WorkerTracker().step({A: Work(1)}, {A: foreign}, None)[0].state is WorkerState.REACHABLE


def test_unhealthy_counts_as_impaired_but_reachable() -> None:
    (w,) = WorkerTracker().step({A: Work(4)}, {A: ProbeResult(True, "3.9.0", "K1", "unhealthy")}, "K1")
    assert w.state is WorkerState.REACHABLE and w.impaired


def test_loopback_guard_check() -> None:
    assert (
        is_loopback("http://127.0.0.10:8083") and is_loopback("https://[::1]:1") and is_loopback("http://localhost:1")
    )
    assert not is_loopback("http://10.0.0.1:8083") and not is_loopback("http://connect-0:8083")


# -- real probes against simulated workers --------------------------------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.10 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.10", 0))
        port = int(s.getsockname()[1])
    yield port


async def test_probe_all_health_states_and_refused() -> None:
    cluster = SimCluster(version="3.9.0", worker_count=3)
    cluster.set_health(1, "unhealthy")
    cluster.set_health(2, "starting")
    with connect_in_thread(cluster) as sim, socket.socket() as s:
        s.bind(("127.0.0.10", 0))
        dead = f"http://127.0.0.10:{s.getsockname()[1]}"  # bound, never listening: refused
        bases = {f"w{i}": u for i, u in enumerate(sim.urls)} | {"dead": dead}
        async with httpx.AsyncClient() as client:
            out = await probe_all(client, bases, per_request=2.0, concurrency=2)
    assert {k: (r.answered, r.health) for k, r in out.items()} == {
        "w0": (True, "healthy"),
        "w1": (True, "unhealthy"),
        "w2": (True, "starting"),
        "dead": (False, None),
    }
    assert out["w0"].kafka_cluster_id == cluster.kafka_cluster_id


async def test_probe_asks_health_only_from_3_9_and_once_per_worker() -> None:
    for version, paths in (("3.8.1", ["/"]), ("3.9.0", ["/", "/health"])):
        cluster = SimCluster(version=version, worker_count=1)
        with connect_in_thread(cluster) as sim:
            async with httpx.AsyncClient() as client:
                out = await probe_all(client, {"w": sim.urls[0]}, per_request=2.0, concurrency=1)
            assert out["w"].answered
            assert [r.path for r in sim.requests()] == paths


async def test_probe_concurrency_bound_holds_for_a_thousand_worker_ids() -> None:
    """A thousand named workers (all the same slow loopback listener): never more than `concurrency` at once."""
    cluster = SimCluster(version="3.8.1", worker_count=1)
    in_flight = peak = 0

    class Counting(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await asyncio.sleep(0)  # let every other probe that may start, start
                return await super().handle_async_request(request)
            finally:
                in_flight -= 1

    with connect_in_thread(cluster) as sim:
        bases = {f"127.0.0.1:{i}": sim.urls[0] for i in range(1000)}
        async with httpx.AsyncClient(transport=Counting(limits=httpx.Limits(max_connections=64))) as client:
            out = await probe_all(client, bases, per_request=10.0, concurrency=7)
        assert len([r for r in sim.requests() if r.path == "/"]) == 1000  # one probe per worker id
    assert all(r.answered for r in out.values())
    assert peak == 7


# -- the poller: workers that answer, die, come back, never answer --------------------------------------------


def named(ex: object, cluster: str = "c") -> dict[str, WorkerState]:
    snap = ex.daemon.store.view.clusters[cluster]  # type: ignore[attr-defined]
    return {w.worker_id: w.state for w in snap.named_workers}


async def test_poller_sees_a_killed_worker_as_lost_before_connect_moves_its_work(closed_port: int) -> None:
    cluster = SimCluster(version="3.9.0", worker_count=3)
    for i in range(6):
        cluster.add_connector(f"conn-{i}", "sink", tasks_max=2)
    with connect_in_thread(cluster) as sim:
        w1 = cluster.worker_id(1)
        # worker 2 advertises an address nothing answers on (the exporter has no route to it)
        sim.kill_worker(2)
        cluster.set_worker_id(2, f"127.0.0.10:{closed_port}")
        async with running_daemon(quick_config({"c": sim.urls[:1]})) as ex:  # ONE configured URL
            await ex.next_polls("c", 2)
            assert named(ex) == {
                cluster.worker_id(0): WorkerState.REACHABLE,
                w1: WorkerState.REACHABLE,
                f"127.0.0.10:{closed_port}": WorkerState.UNKNOWN,
            }
            sim.kill_worker(1)  # SIGKILL: statuses still say RUNNING on it
            await ex.next_polls("c", 2)
            snap = ex.daemon.store.view.clusters["c"]
            assert named(ex)[w1] is WorkerState.LOST
            on_w1 = [t for c in snap.connectors for t in c.tasks if t.worker_id == w1]
            assert on_w1 and all(t.state == "RUNNING" for t in on_w1)  # the gap: Connect says all is well
            assert w1 in snap.impaired_worker_ids()
            assert snap.up  # a lost named worker is no poll failure
            scrape = await ex.scrape()
            assert scrape.value("kafka_connect_worker_reachable", connect_cluster="c", worker_id=w1) == 0.0
            assert scrape.value("kafka_connect_worker_tasks", connect_cluster="c", worker_id=w1) == len(on_w1)
            on_lost = {
                lbl["connector"]: v for lbl, v in scrape.samples("kafka_connect_connector_tasks_on_lost_workers")
            }
            assert sum(on_lost.values()) == len(on_w1) and len(on_lost) == 6
            # One answer per connector: RUNNING by Connect's word, degraded by ours while work sits on w1.
            health = {lbl["connector"]: lbl["health"] for lbl, _ in scrape.samples("kafka_connect_connector_health")}
            assert {n for n, h in health.items() if h == "degraded"} == {n for n, v in on_lost.items() if v > 0}
            assert {n for n, h in health.items() if h != "degraded"} == {n for n, v in on_lost.items() if v == 0}
            assert all(h == "healthy" for n, h in health.items() if on_lost[n] == 0)
            unknown_id = f"127.0.0.10:{closed_port}"
            assert scrape.value("kafka_connect_worker_reachable", connect_cluster="c", worker_id=unknown_id) is None
            page = (await ex.client.get(ex.base + "/")).text
            assert "<h2 id=workers>Workers</h2>" in page
            assert f"<td>{w1}</td><td>lost</td>" in page and f"<td>{unknown_id}</td><td>unknown</td>" in page
            assert "never answered the exporter" in page
            marked = {c.name for c in snap.connectors if any(t.worker_id == w1 for t in c.tasks)}
            assert marked and all(f"<td>{n} <strong class=lost-worker>[on lost worker]" in page for n in marked)

            sim.start_worker(1)  # it comes back before the rebalance delay ends
            await ex.next_polls("c", 2)
            assert named(ex)[w1] is WorkerState.REACHABLE

            sim.kill_worker(1)
            cluster.tick()  # the rebalance moves its work: no status names it any more
            await ex.next_polls("c", 2)
            assert w1 not in named(ex)


async def test_unhealthy_worker_is_impaired_and_probes_can_be_turned_off() -> None:
    cluster = SimCluster(version="4.3.1", worker_count=2)
    cluster.add_connector("a", "sink", tasks_max=4)
    cluster.set_health(1, "unhealthy")
    with connect_in_thread(cluster) as sim:
        async with running_daemon(quick_config({"c": sim.urls})) as ex:
            await ex.next_polls("c", 2)
            snap = ex.daemon.store.view.clusters["c"]
            (bad,) = [w for w in snap.named_workers if w.worker_id == cluster.worker_id(1)]
            assert bad.health == "unhealthy" and bad.state is WorkerState.REACHABLE and bad.impaired
        sim.clear_requests()
        async with running_daemon(quick_config({"c": sim.urls}, worker_probes={"enabled": False})) as ex:
            await ex.next_polls("c", 2)
            assert ex.daemon.store.view.clusters["c"].named_workers == ()
        assert not [r for r in sim.requests() if r.path == "/health"]


async def test_a_worker_id_shared_by_two_clusters_is_judged_per_cluster() -> None:
    """Two clusters whose statuses name the same address (a reused host:port): each cluster's own Kafka
    cluster id decides, so the worker is reachable for the one it belongs to and not for the other."""
    one = SimCluster(version="3.9.0", worker_count=1, kafka_cluster_id="AAAAAAAAAAAAAAAAAAAAAA")
    two = SimCluster(version="3.9.0", worker_count=1, kafka_cluster_id="BBBBBBBBBBBBBBBBBBBBBB")
    one.add_connector("x", "sink")
    two.add_connector("y", "sink")
    with connect_in_thread(one) as s1, connect_in_thread(two) as s2:
        shared = one.worker_id(0)
        two.set_worker_id(0, shared)  # cluster two's statuses name cluster one's worker
        cfg = quick_config({"one": s1.urls, "two": s2.urls})
        async with running_daemon(cfg) as ex:
            await ex.next_polls("one", 2)
            await ex.next_polls("two", 2)
            assert named(ex, "one") == {shared: WorkerState.REACHABLE}
            assert named(ex, "two") == {shared: WorkerState.UNKNOWN}  # never answered as two's worker


async def test_a_worker_that_never_answers_is_logged_once_and_never_lost(closed_port: int) -> None:
    cluster = SimCluster(version="3.9.0", worker_count=2)
    cluster.add_connector("a", "sink", tasks_max=4)
    with connect_in_thread(cluster) as sim:
        sim.kill_worker(1)  # killed before the exporter ever saw it answer
        silent = f"127.0.0.10:{closed_port}"
        cluster.set_worker_id(1, silent)
        with capture_logs() as logs:
            async with running_daemon(quick_config({"c": sim.urls[:1]})) as ex:
                await ex.next_polls("c", 4)
                assert named(ex)[silent] is WorkerState.UNKNOWN
                scrape = await ex.scrape()
        unknown = [e for e in logs if e["event"] == "worker_unknown"]
        assert len(unknown) == 1 and unknown[0]["worker_id"] == silent
        assert "no route" in unknown[0]["hint"]
    assert scrape.value("kafka_connect_worker_reachable", connect_cluster="c", worker_id=silent) is None
    assert all(v == 0.0 for _, v in scrape.samples("kafka_connect_connector_tasks_on_lost_workers"))


async def test_a_probe_off_loopback_fails_the_test_and_is_never_sent(loopback_probes_only: list[str]) -> None:
    # tests/conftest.py wraps every probe: a worker id off 127.0.0.0/8 raises before any packet leaves.
    async with httpx.AsyncClient() as client:
        with pytest.raises(AssertionError, match="not loopback"):
            await probe_all(client, {"far": "http://10.255.255.1:8083"}, per_request=0.5, concurrency=1)
    assert loopback_probes_only == ["http://10.255.255.1:8083"]
    loopback_probes_only.clear()  # the fixture would fail this test for it otherwise
