"""An outage is not a recovery: a failed poll keeps the last known state for ``stale_after``, then drops it.

The real daemon against the simulator over loopback; the workers answer 500, refuse connections or never answer.
The daemon's wall clock is moved by the test (``Shifted``), so "older than stale_after" needs no waiting and no
time budget: the held state is checked with the clock at rest, the drop after moving it past ``stale_after``.
"""

from __future__ import annotations

import time

import pytest

from simulator.connect.server import SimThread
from simulator.faults import Fault
from tests.support.daemon_harness import Running, quick_config, running_daemon
from tests.support.scrape import Scrape

STALE_AFTER = 600.0
# What a failed poll itself changes: whether the statuses were read, each configured URL's GET /, and the
# exporter's own bookkeeping (poll counts, errors, durations, timestamps).
THIS_CYCLE = ("kafka_connect_up", "kafka_connect_worker_up", "kafka_connect_worker_info", "kafka_connect_exporter_")

FAULTS = {
    "http 500": Fault.http_status(500, "Request timed out"),
    "refused": Fault.refuse(),
    "never answers": Fault.hang(),
}


class Shifted:
    """The wall clock plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def cluster_series(scrape: Scrape) -> Series:
    """Every sample of cluster ``c`` except what a failed poll itself changes, keyed by name and labels."""
    out = {}
    for line in scrape.text.splitlines():
        if line.startswith("#") or 'connect_cluster="c"' not in line or line.startswith(THIS_CYCLE):
            continue
        name = line.split("{", 1)[0]
        labels = tuple(sorted(dict(scrape_labels(line)).items()))
        out[(name, labels)] = float(line.rsplit(" ", 1)[1])
    return out


def scrape_labels(line: str) -> list[tuple[str, str]]:
    body = line[line.index("{") + 1 : line.rindex("}")]
    pairs = []
    for part in body.split('",'):
        key, _, value = part.partition('="')
        pairs.append((key, value.rstrip('"')))
    return pairs


# What the last successful poll learnt by probing the workers: a poll that read the statuses just before the fault
# began may have had its probes cut by it, and that poll's content is the last known state. Compared by series,
# not values.
PROBED = {
    "kafka_connect_worker_reachable",
    "kafka_connect_worker_health",
    "kafka_connect_connector_tasks_on_lost_workers",
    "kafka_connect_connector_health",
}


def held_as_before(during: Series, before: Series) -> None:
    """Every series of ``before`` is held; from the statuses value for value, from the probes series for series."""
    plain = {k: v for k, v in during.items() if k[0] not in PROBED}
    assert plain == {k: v for k, v in before.items() if k[0] not in PROBED}

    def probed(series: Series) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        return {(n, tuple(kv for kv in lbl if kv[0] not in ("health", "status"))) for n, lbl in series if n in PROBED}

    # A worker's /health status exists only while it answered: a probe the fault cut leaves it out, never adds one.
    def health(series: set[tuple[str, tuple[tuple[str, str], ...]]]) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        return {k for k in series if k[0] == "kafka_connect_worker_health"}

    assert probed(during) - health(probed(during)) == probed(before) - health(probed(before))
    assert health(probed(during)) <= health(probed(before))


def families(series: Series) -> set[str]:
    return {name for name, _ in series}


def transitions(scrape: Scrape) -> float | None:
    return scrape.value("kafka_connect_state_transitions_total", connector="src", to_state="FAILED")


def up(scrape: Scrape) -> float | None:
    return scrape.value("kafka_connect_up", connect_cluster="c")


async def until_steady(ex: Running) -> Scrape:
    """Every family of the healthy cluster present: connectors, a failed task with its failure, offsets."""
    return await ex.wait_for(
        lambda s: (
            up(s) == 1.0
            and transitions(s) == 1.0
            and s.value("kafka_connect_sink_committed_offsets_total", connector="s", topic="orders") == 4711
            and bool(s.samples("kafka_connect_failure_info", connector="src"))
            and bool(s.samples("kafka_connect_worker_reachable", connect_cluster="c"))
        ),
        timeout=20,
        what="every family of a healthy cluster with one failed task",
    )


@pytest.mark.parametrize("fault", list(FAULTS.values()), ids=list(FAULTS))
async def test_a_failed_poll_holds_the_last_known_state_until_stale_after(sim: SimThread, fault: Fault) -> None:
    sim.cluster.add_connector("s", "sink", topics=["orders"])
    sim.cluster.add_connector("src", "source", tasks_max=2)
    clock = Shifted()
    config = quick_config(
        {"c": sim.urls},
        request_timeout=0.3,
        stale_after=f"{STALE_AFTER:g}s",
        offsets_enabled=True,
        offsets_interval="1s",
    )
    async with running_daemon(config, clock=clock) as ex:
        await ex.wait_for(
            lambda s: (
                up(s) == 1.0 and s.current_state("kafka_connect_task_state", connector="src", task="0") == "RUNNING"
            )
        )
        sim.cluster.fail_task("src", 0)  # seen as a transition RUNNING -> FAILED
        before = cluster_series(await until_steady(ex))
        assert {
            "kafka_connect_connector_state",
            "kafka_connect_task_state",
            "kafka_connect_worker_reachable",
            "kafka_connect_failure_info",
            "kafka_connect_connector_health",
            "kafka_connect_sink_committed_offsets_total",
            "kafka_connect_plugin_info",
        } <= families(before)

        for worker in (0, 1):
            sim.set_fault(worker, fault)
        await ex.wait_for(lambda s: up(s) == 0.0, timeout=20, what="up 0")
        during = await ex.next_polls("c", 3, timeout=30)  # several failed polls: the state is held by each
        assert up(during) == 0.0
        held_as_before(cluster_series(during), before)  # every family, counters included
        snap = ex.daemon.store.view.clusters["c"]
        assert snap.stale and not snap.up and snap.seen_at is not None and snap.down_since is not None
        assert snap.seen_at < snap.down_since <= snap.taken_at

        clock.offset = STALE_AFTER + 1.0  # the held state is now older than stale_after
        gone = await ex.wait_for(
            lambda s: not s.samples("kafka_connect_connector_state", connect_cluster="c"),
            timeout=20,
            what="the last known state dropped after stale_after",
        )
        assert up(gone) == 0.0
        left = families(cluster_series(gone))
        assert left == {"kafka_connect_state_transitions_total"}, left  # only the counter, never reset
        assert transitions(gone) == 1.0
        assert not ex.daemon.store.view.clusters["c"].stale

        sim.clear_faults()
        await until_steady(ex)
        # Every series back; the first probes after a hang may still find a worker slow (unhealthy) for a cycle.
        back = await ex.wait_for(
            lambda s: cluster_series(s).keys() == before.keys(), timeout=30, what="every series of the cluster back"
        )
    assert transitions(back) == 1.0  # an outage is neither a transition nor a reset


async def test_a_connector_a_successful_poll_no_longer_lists_goes_at_once(sim: SimThread) -> None:
    sim.cluster.add_connector("a", "source")
    sim.cluster.add_connector("b", "source")
    config = quick_config({"c": sim.urls}, stale_after="10m")
    async with running_daemon(config) as ex:
        await ex.wait_for(lambda s: s.label_values("kafka_connect_connector_state", "connector") == {"a", "b"})
        for worker in (0, 1):
            sim.set_fault(worker, Fault.http_status(500))
        held = await ex.wait_for(lambda s: up(s) == 0.0, what="up 0")
        assert held.label_values("kafka_connect_connector_state", "connector") == {"a", "b"}
        sim.cluster.delete_connector("b")  # deleted while the exporter could not see it
        sim.clear_faults()
        after = await ex.wait_for(lambda s: up(s) == 1.0, what="recovery")
    assert after.label_values("kafka_connect_connector_state", "connector") == {"a"}
    assert after.label_values("kafka_connect_task_state", "connector") == {"a"}


async def test_stale_after_zero_drops_the_state_with_the_first_failed_poll(sim: SimThread) -> None:
    sim.cluster.add_connector("a", "source")
    config = quick_config({"c": sim.urls}, stale_after="0s")
    async with running_daemon(config) as ex:
        await ex.wait_for(lambda s: s.label_values("kafka_connect_connector_state", "connector") == {"a"})
        for worker in (0, 1):
            sim.set_fault(worker, Fault.http_status(500))
        down = await ex.wait_for(lambda s: up(s) == 0.0, what="up 0")
    assert down.samples("kafka_connect_connector_state", connect_cluster="c") == []
    assert down.samples("kafka_connect_connector_health", connect_cluster="c") == []
