"""The fast renderer writes exactly what prometheus_client writes from the same snapshots.

``tests.metrics.oracle`` (prometheus_client metric families) is the reference; the exposition served on
/metrics is built by ``exporter.connect.metrics.ConnectRenderer``. Both formats are compared byte for byte and as
parsed sample sets, on hostile names, unknown states, several clusters and random input.
"""

from __future__ import annotations

import gzip
from dataclasses import replace
from types import MappingProxyType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families

from exporter.connect.metrics import ConnectRenderer
from exporter.exposition import GzipPrefix, Rendered
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
from exporter.own_metrics import collect_exporter, collect_reload
from exporter.render import Collected, MetricGroup, render_blocks
from exporter.store import View
from tests.metrics.oracle import reference_exposition

HOSTILE = [
    'quote"in',
    "back\\slash",
    "new\nline",
    "ünïcødé-名前",
    "{braces},=",
    'all\\"\n"\\',
    "",
    "emoji 🚀",
]


def _snapshot(name: str, kind: SourceKind = SourceKind.CONNECT, interval: float = 30.0) -> ClusterSnapshot:
    connectors = []
    for i, cname in enumerate(HOSTILE):
        state = ["RUNNING", "FAILED", "HIBERNATING", 'WEIRD"STATE\\', "PAUSED"][i % 5]
        tasks = tuple(
            Task(id=t, state=["RUNNING", "FAILED", "NEW\nSTATE"][(i + t) % 3], worker_id=HOSTILE[(i + t) % 8])
            for t in range(i % 4)
        )
        connectors.append(
            Connector(
                name=cname,
                type=["source", "sink", 'un"known'][i % 3],
                class_name=None if i % 4 == 0 else f"org.x.{cname}",
                state=state,
                worker_id=HOSTILE[-i],
                tasks=tasks,
                tasks_max=None if i % 3 == 0 else [1, 12345678, 0][i % 3],
                connector_id=None if i % 2 else f"lcc-{i}",
            )
        )
    return ClusterSnapshot(
        cluster=name,
        kind=kind,
        taken_at=1_700_000_000.25,
        duration=0.125,
        up=True,
        poll_interval=interval,
        workers=(
            Worker(url="http://a:8083", reachable=True, version="3.9.0", commit='c"1', kafka_cluster_id="k\\1"),
            Worker(url="http://b:8083", reachable=False),
            Worker(url="http://c:8083", reachable=True),
        ),
        connectors=tuple(connectors),
        plugins=(Plugin("org.P", "sink", None), Plugin('org."Q"', "source", "1.0\n")),
        stats=PollStats(3, 1, MappingProxyType({"timeout": 2})),
        last_success=1_700_000_000.0,
        named_workers=(
            NamedWorker(HOSTILE[0], WorkerState.REACHABLE, 3, 1, "3.9.0", "healthy"),
            NamedWorker(HOSTILE[1], WorkerState.LOST, 2, 0),
            NamedWorker(HOSTILE[2], WorkerState.UNKNOWN, 0, 2),
            NamedWorker(HOSTILE[3], WorkerState.REACHABLE, 1, 1, "4.3.1", "unhealthy"),
            NamedWorker(HOSTILE[4], WorkerState.REACHABLE, 5000, 1, "3.8.1"),
        ),
    )


def core_groups() -> list[MetricGroup]:
    """The groups every exporter serves whatever its features (fresh: the connect renderer keeps a cache)."""
    return [ConnectRenderer(), Collected(collect_exporter), Collected(collect_reload)]


def _view(*snaps: ClusterSnapshot) -> View:
    return View(
        generation=1,
        started_at=0.0,
        expected=tuple(s.cluster for s in snaps),
        clusters=MappingProxyType({s.cluster: s for s in snaps}),
    )


def _fast(view: View) -> tuple[bytes, bytes]:
    rendered = Rendered(view.generation, render_blocks(view, core_groups()))
    return rendered.text, rendered.openmetrics


def _samples(text: str, *, openmetrics: bool) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    parse = om_parse if openmetrics else text_string_to_metric_families
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for fam in parse(text + ("# EOF\n" if openmetrics else ""))
        for s in fam.samples
    }


def _assert_same(view: View) -> None:
    ref_text, ref_om = reference_exposition(view)
    fast_text, fast_om = _fast(view)
    assert fast_text == ref_text
    assert fast_om == ref_om
    assert _samples(fast_text.decode(), openmetrics=False) == _samples(ref_text.decode(), openmetrics=False)
    assert _samples(fast_om.decode(), openmetrics=True) == _samples(ref_om.decode(), openmetrics=True)


def test_hostile_names_and_unknown_states_render_identically() -> None:
    view = _view(
        _snapshot("prod"),
        _snapshot('we"ird\\clu\nster'),
        _snapshot("cloud", SourceKind.CLOUD, interval=60.0),
    )
    _assert_same(view)
    text, _ = _fast(view)
    # The reference really covers the hard cases: escaped names and unknown states made it into the output.
    assert b'connector="all\\\\\\"\\n\\"\\\\"' in text
    assert b'state="NEW\\nSTATE"' in text


def test_named_worker_families() -> None:
    text = _fast(_view(_snapshot("prod")))[0].decode()
    samples = _samples(text, openmetrics=False)

    def value(name: str, **labels: str) -> float | None:
        want = tuple(sorted({"connect_cluster": "prod", **labels}.items()))
        found = [v for n, lbl, v in samples if n == name and lbl == want]
        return found[0] if found else None

    assert value("kafka_connect_worker_reachable", worker_id=HOSTILE[0]) == 1.0
    assert value("kafka_connect_worker_reachable", worker_id=HOSTILE[1]) == 0.0
    assert value("kafka_connect_worker_reachable", worker_id=HOSTILE[2]) is None  # unknown: absent
    assert value("kafka_connect_worker_tasks", worker_id=HOSTILE[2]) == 0.0
    assert value("kafka_connect_worker_connectors", worker_id=HOSTILE[2]) == 2.0
    assert value("kafka_connect_worker_tasks", worker_id=HOSTILE[4]) == 5000.0
    assert value("kafka_connect_worker_health", worker_id=HOSTILE[3], status="unhealthy") == 1.0
    assert value("kafka_connect_worker_health", worker_id=HOSTILE[3], status="healthy") == 0.0
    assert value("kafka_connect_worker_health", worker_id=HOSTILE[4], status="healthy") is None  # before 3.9
    # tasks on the lost (HOSTILE[1]) and the unhealthy (HOSTILE[3]) worker, per connector
    snap = _snapshot("prod")
    for c in snap.connectors:
        expected = sum(1 for t in c.tasks if t.worker_id in (HOSTILE[1], HOSTILE[3]))
        assert value("kafka_connect_connector_tasks_on_lost_workers", connector=c.name) == float(expected)
    assert sum(v for n, _, v in samples if n == "kafka_connect_connector_tasks_on_lost_workers") > 0
    # without probes (no named workers) the worker families are empty
    bare = _fast(_view(replace(snap, named_workers=())))[0].decode()
    assert "kafka_connect_connector_tasks_on_lost_workers{" not in bare
    assert "kafka_connect_worker_tasks{" not in bare


def test_empty_and_down_clusters_render_identically() -> None:
    down = ClusterSnapshot(
        cluster="down", kind=SourceKind.CONNECT, taken_at=1.0, duration=2.0, up=False, poll_interval=5.0
    )
    _assert_same(_view())
    _assert_same(_view(down))
    _assert_same(_view(down, _snapshot("prod", interval=5.0)))


def test_gzip_prefix_is_one_stream_with_any_suffix() -> None:
    rendered = Rendered(1, render_blocks(_view(_snapshot("prod")), core_groups()))
    prefix = rendered.variant((True, True))
    assert isinstance(prefix, GzipPrefix)
    for suffix in (b"", b"live 1.0\n# EOF\n"):
        assert gzip.decompress(prefix.finish(suffix)) == rendered.openmetrics + suffix


names = st.text(st.characters(codec="utf-8"), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cluster=names,
    connectors=st.lists(
        st.tuples(
            names,
            st.sampled_from(["RUNNING", "FAILED", "PAUSED", "X"]) | names,
            st.lists(st.tuples(st.sampled_from(["RUNNING", "FAILED"]) | names, names), max_size=3),
            st.none() | st.integers(min_value=0, max_value=10**12),
        ),
        max_size=6,
        unique_by=lambda c: c[0],
    ),
)
def test_random_snapshots_render_identically(
    cluster: str, connectors: list[tuple[str, str, list[tuple[str, str]], int | None]]
) -> None:
    snap = ClusterSnapshot(
        cluster=cluster,
        kind=SourceKind.CONNECT,
        taken_at=2.0,
        duration=0.5,
        up=True,
        poll_interval=10.0,
        connectors=tuple(
            Connector(
                name=name,
                type="sink",
                class_name=name,
                state=state,
                worker_id=state,
                tasks=tuple(Task(id=i, state=s, worker_id=w) for i, (s, w) in enumerate(tasks)),
                tasks_max=tasks_max,
            )
            for name, state, tasks, tasks_max in connectors
        ),
    )
    _assert_same(_view(snap))


def test_cached_cluster_lines_follow_new_and_deleted_snapshots() -> None:
    groups = core_groups()  # the same renderer instances: their per-cluster caches carry over
    a1, b1 = _snapshot("a"), _snapshot("b")
    render_blocks(_view(a1, b1), groups)
    down = ClusterSnapshot(
        cluster="a", kind=SourceKind.CONNECT, taken_at=3.0, duration=1.0, up=False, poll_interval=30.0
    )
    for view in (_view(down, b1), _view(b1), _view(a1, b1)):
        rendered = Rendered(view.generation, render_blocks(view, groups))
        assert rendered.text == reference_exposition(view)[0]
