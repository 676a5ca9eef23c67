"""The simulator cannot drift from real Kafka Connect: one scenario, two clusters, two exporters, one exposition.

The same REST requests build the same scenario on the real 2-worker cluster and on a 2-worker ``SimCluster``
of the same version with the same plugins: a running source, a running 2-task sink, a paused source, a
stopped source and a sink whose task FAILED (the real one cannot create its output file; the simulated one is
told to fail). The exporter CLI scrapes each, and the parsed expositions must agree: the same families, per
family the same label names and the same label values and sample values once what must differ (worker URLs,
worker ids, commits, Kafka cluster ids) is normalised. Only the exporter's own timings and counters are
compared by labels alone. The two exporters reach that state at different moments, so the test waits for their
common steady state (``common_steady_state``, bounded by poll rounds of both) before it compares.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.config import ClusterConfig
from simulator.connect.server import connect_in_thread
from simulator.connect.state import PluginSpec, SimCluster, task_trace
from tests.support.scrape import Scrape

from .cli_exporter import POLL_INTERVAL, Exporter, exporter, polls_done, task_states, wait_scrape
from .kafka.harness import ConnectCluster, KafkaEnvironment
from .kafka.rest import FILE_SINK, FILE_SOURCE, ConnectRest

pytestmark = pytest.mark.integration

# name -> (connector state, task states by id) the scenario ends in
EXPECTED: dict[str, tuple[str, list[str]]] = {
    "par-source": ("RUNNING", ["RUNNING"]),
    "par-sink": ("RUNNING", ["RUNNING", "RUNNING"]),
    "par-paused": ("PAUSED", ["PAUSED"]),
    "par-stopped": ("STOPPED", []),
    "par-failed": ("RUNNING", ["FAILED"]),
}
TASKS_MAX = {"par-source": 1, "par-sink": 2, "par-paused": 1, "par-stopped": 1, "par-failed": 1}
# Families whose values are the exporter's own timings and counters: compared by label names and values only.
VOLATILE_PREFIXES = ("kafka_connect_exporter_", "process_", "python_")
# Compared by their labels only: timestamps of when the exporter saw something, and how Connect spread the same
# connectors and tasks over two workers (its assignor's choice, not the API's shape; their totals are compared).
VALUE_VOLATILE = {
    "kafka_connect_failed_since_timestamp_seconds",
    "kafka_connect_connector_offsets_last_change_timestamp_seconds",
    "kafka_connect_worker_connectors",
    "kafka_connect_worker_tasks",
}
# How many poll cycles of each exporter a comparison waits at most for the two to agree: two runs of the
# offsets reader (its own job, spreading a run over the offsets interval) at the quick-start poll interval.
STEADY_ROUNDS = math.ceil(2 * ClusterConfig.model_fields["offsets_interval"].default / POLL_INTERVAL) + 10
# Only a hung exporter stops publishing polls for this long (it polls every POLL_INTERVAL).
STALLED_SECONDS = 300.0
NORMALISED = {"worker_id": "<worker_id>", "commit": "<commit>", "kafka_cluster_id": "<kafka_cluster_id>"}

Normalised = dict[str, tuple[frozenset[frozenset[str]], frozenset[tuple[tuple[str, str], ...]]]]


def build_scenario(rest: ConnectRest, files: Path, fail: Callable[[], None] | None = None) -> None:
    """The same requests for both clusters; ``fail`` makes the simulated sink task fail like the real one."""
    files.mkdir(parents=True, exist_ok=True)
    for name in ("par-source", "par-paused", "par-stopped"):
        (files / f"{name}.txt").write_text("one\n", encoding="utf-8")
        rest.create_connector(
            name,
            {
                "connector.class": FILE_SOURCE,
                "file": str(files / f"{name}.txt"),
                "topic": "par-lines",
                "tasks.max": "1",
            },
        )
    for name, out in (("par-sink", files / "out.txt"), ("par-failed", files / "no-such-dir" / "out.txt")):
        config = {"connector.class": FILE_SINK, "file": str(out), "topics": "par-lines"}
        rest.create_connector(name, {**config, "tasks.max": str(TASKS_MAX[name])})
    if fail is not None:
        fail()
    rest.wait_for_state("par-failed", "RUNNING", task_state="FAILED", tasks=1)
    for name in ("par-source", "par-sink", "par-paused", "par-stopped"):
        rest.wait_for_state(name, "RUNNING", task_state="RUNNING", tasks=TASKS_MAX[name])
    rest.pause("par-paused")
    rest.stop("par-stopped")
    for name, (state, tasks) in EXPECTED.items():
        rest.wait_for_state(name, state, task_state=tasks[0] if tasks else None, tasks=len(tasks))


def reached(s: Scrape) -> bool:
    """The exporter shows exactly the scenario's end state."""
    connectors = {lbl["connector"] for lbl, _ in s.samples("kafka_connect_connector_state")}
    if connectors != set(EXPECTED):
        return False
    for name, (state, tasks) in EXPECTED.items():
        shown = task_states(s, name)
        if s.current_state("kafka_connect_connector_state", connector=name) != state:
            return False
        if [shown[t][0] for t in sorted(shown, key=int)] != tasks:
            return False
    return True


def normalise(s: Scrape, urls: list[str]) -> Normalised:
    """family -> (label-name sets, normalised label values (+ the value unless the family is volatile))."""
    url_index = {u: f"<worker {i}>" for i, u in enumerate(urls)}
    out: Normalised = {}
    for family, samples in s.families.items():
        volatile = family.startswith(VOLATILE_PREFIXES) or family in VALUE_VOLATILE
        names = frozenset(frozenset(lbl) for lbl, _ in samples)
        values: set[tuple[tuple[str, str], ...]] = set()
        for lbl, value in samples:
            norm = {k: url_index.get(v, v) if k == "worker" else NORMALISED.get(k, v) for k, v in lbl.items()}
            key = tuple(sorted(norm.items()))
            values.add(key if volatile else (*key, ("<value>", repr(value))))
        out[family] = (names, frozenset(values))
    return out


def describe_difference(real: Normalised, sim: Normalised) -> str:
    lines = []
    for family in sorted(set(real) | set(sim)):
        if family not in sim or family not in real:
            lines.append(f"{family}: only in {'real' if family in real else 'simulator'}")
            continue
        (rn, rv), (sn, sv) = real[family], sim[family]
        if rn != sn:
            lines.append(f"{family}: label names real {sorted(map(sorted, rn))} vs simulator {sorted(map(sorted, sn))}")
        for extra in sorted(rv - sv):
            lines.append(f"{family}: only real     {extra}")
        for extra in sorted(sv - rv):
            lines.append(f"{family}: only simulator {extra}")
    return "\n".join(lines)


def differences(real: Scrape, simulated: Scrape, real_urls: list[str], sim_urls: list[str]) -> str:
    """Everything the two expositions must agree on, as a readable list; empty when they agree."""
    n_real, n_sim = normalise(real, real_urls), normalise(simulated, sim_urls)
    problems = []
    if set(n_real) != set(n_sim) or any(n_real[f] != n_sim[f] for f in n_real):
        problems.append(describe_difference(n_real, n_sim))
    for family in ("kafka_connect_worker_connectors", "kafka_connect_worker_tasks"):
        r, s = (sum(v for _, v in x.samples(family)) for x in (real, simulated))
        if r != s:
            problems.append(f"{family}: total real {r:g} vs simulator {s:g}")
    return "\n".join(p for p in problems if p)


def common_steady_state(
    real_ex: Exporter, sim_ex: Exporter, differ: Callable[[Scrape, Scrape], str], rounds: int
) -> tuple[Scrape, Scrape]:
    """Scrape both exporters until ``differ`` finds nothing, or until each has published ``rounds`` more poll
    cycles (a loaded machine polls less often; it does not poll less far); then the last pair of scrapes.

    Two live systems reach the same state at different moments (each exporter's poll, worker probe and offsets
    schedules run on their own clocks), so a comparison waits for agreement instead of for a list of families.
    """
    real, simulated = real_ex.scrape(), sim_ex.scrape()
    start = (polls_done(real), polls_done(simulated))
    progress, progressed_at = start, time.monotonic()
    while differ(real, simulated):
        done = (polls_done(real) - start[0], polls_done(simulated) - start[1])
        if min(done) >= rounds:
            break
        if (polls_done(real), polls_done(simulated)) != progress:
            progress, progressed_at = (polls_done(real), polls_done(simulated)), time.monotonic()
        elif time.monotonic() - progressed_at > STALLED_SECONDS:
            raise AssertionError(f"an exporter stopped polling after {done} rounds")
        time.sleep(0.2)
        real, simulated = real_ex.scrape(), sim_ex.scrape()
    return real, simulated


def test_simulator_and_real_workers_give_the_same_exposition(
    kafka_env: KafkaEnvironment, connect: ConnectCluster, connect_rest: ConnectRest, tmp_path: Path
) -> None:
    # The simulated worker has the real worker's plugins (all types, so version-omission rules are compared).
    plugins = [
        PluginSpec(p["class"], p["type"], p.get("version", "undefined"))
        for p in connect_rest.plugins(connectors_only=False)
    ]
    cluster = SimCluster(kafka_env.version, worker_count=2, plugins=plugins)
    build_scenario(connect_rest, tmp_path / "real")
    with connect_in_thread(cluster) as sim:
        with ConnectRest(sim.urls[0]) as sim_rest:
            # The real sink fails because its directory is missing: the same exception and root cause classes.
            missing = ("java.nio.file.NoSuchFileException", str(tmp_path / "sim" / "missing" / "out.txt"))

            def fail_like_the_real_sink() -> None:
                cluster.fail_task("par-failed", 0, trace=task_trace("sink", missing))
                # The simulator moves no records: it is told what the real sinks commit, the three lines the
                # three sources write, and nothing for the sink whose task failed before it consumed any.
                cluster.set_sink_offsets("par-sink", {("par-lines", 0): 3})
                cluster.set_offsets("par-failed", [])

            build_scenario(sim_rest, tmp_path / "sim", fail=fail_like_the_real_sink)
        with (
            exporter(tmp_path / "real.log", connect.urls) as real_ex,
            exporter(tmp_path / "sim.log", sim.urls) as sim_ex,
        ):
            wait_scrape(real_ex, reached, "the real cluster's scenario in /metrics")
            wait_scrape(sim_ex, reached, "the simulated scenario in /metrics")
            real, simulated = common_steady_state(
                real_ex,
                sim_ex,
                lambda r, s: differences(r, s, connect.urls, sim.urls),
                STEADY_ROUNDS,
            )
        sim_ids = {u.removeprefix("http://") for u in sim.urls}

    assert reached(real) and reached(simulated)
    assert differences(real, simulated, connect.urls, sim.urls) == ""

    # The (connector, task, state) triples the issue asks for, spelled out, and worker ids from each cluster.
    def triples(s: Scrape) -> set[tuple[str, str, str, float]]:
        return {
            (lbl["connector"], lbl.get("task", ""), lbl["state"], v)
            for f in ("kafka_connect_connector_state", "kafka_connect_task_state")
            for lbl, v in s.samples(f)
        }

    assert triples(real) == triples(simulated)
    assert ("par-failed", "0", "FAILED", 1.0) in triples(real)
    assert real.label_values("kafka_connect_task_state", "worker_id") <= set(connect.worker_ids)
    assert simulated.label_values("kafka_connect_task_state", "worker_id") <= sim_ids
