"""Metric groups rendered from the store's current view; names, HELP and labels come from ``exporter.families``.

Everything is built fresh from immutable snapshots at render time, so a deleted connector disappears
with the next poll and no label set can appear twice. Traces never become labels.

Two kinds of group: a ``FastGroup`` writes exposition lines directly (the connect group, ~190k samples at
thousands of connectors), a ``CollectGroup`` yields prometheus_client families and is formatted by
prometheus_client (the small groups: the exporter's own health, Confluent Cloud, auto-heal).
"""

from __future__ import annotations

import platform
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from exporter import __version__
from exporter.budget import ALL, SeriesBudget
from exporter.config_reading import ConfigReading
from exporter.families import (
    BUILD_INFO,
    CLUSTER,
    CONFIG_RELOAD_SUCCESS_TIMESTAMP,
    CONFIG_RELOAD_SUCCESSFUL,
    CONNECT_FAMILIES,
    CONNECTOR_INFO,
    CONNECTOR_STATE,
    CONNECTOR_TASKS,
    CONNECTOR_TASKS_BY_STATE,
    CONNECTOR_TASKS_MAX,
    CONNECTOR_TASKS_ON_LOST_WORKERS,
    DERIVED_FAMILIES,
    LAST_POLL,
    LAST_SUCCESS,
    PLUGIN_INFO,
    POLL_DURATION,
    POLL_ERRORS,
    POLL_INTERVAL,
    POLLED,
    POLLS,
    STATE_FAMILIES,
    TASK_STATE,
    UP,
    WARNINGS,
    WORKER_CONNECTORS,
    WORKER_HEALTH,
    WORKER_HEALTH_STATES,
    WORKER_INFO,
    WORKER_REACHABLE,
    WORKER_TASKS,
    WORKER_UP,
    Family,
    StateSet,
)
from exporter.model import ERROR_REASONS, ClusterSnapshot, SourceKind, WorkerState, tasks_on
from exporter.repeats import WarningsReading
from exporter.store import View

# A small group: prometheus_client families, formatted by prometheus_client.
CollectGroup = Callable[[View], Iterable[Metric]]


def metric_family(family: Family, help_text: str | None = None) -> GaugeMetricFamily | CounterMetricFamily:
    """An empty prometheus_client family for a catalogue entry (``help_text`` when HELP gets a runtime tail)."""
    cls = CounterMetricFamily if family.type == "counter" else GaugeMetricFamily
    return cls(family.name, family.help if help_text is None else help_text, labels=family.labels)


def polled_help(view: View) -> str:
    """HELP suffix saying the data is polled, and how often (HELP is per family, intervals per cluster)."""
    intervals = sorted({s.poll_interval for s in view.clusters.values()})
    if len(intervals) == 1:
        return f" Polled every {intervals[0]:g}s, not at scrape time."
    return f" Polled on a schedule, not at scrape time (see {POLL_INTERVAL.name})."


def known_states(snapshot: ClusterSnapshot, *, tasks: bool) -> Sequence[str]:
    states = _state_set(TASK_STATE if tasks else CONNECTOR_STATE)
    if snapshot.kind == SourceKind.CLOUD and states.cloud is not None:
        return states.cloud
    return states.known


def _state_set(family: Family) -> StateSet:
    assert family.state is not None, f"{family.name} declares no states"
    return family.state


DERIVED_NAMES = frozenset(f.name for f in DERIVED_FAMILIES)


def budget_of(view: View) -> SeriesBudget:
    return view.reading(SeriesBudget) or ALL


def within_budget(metrics: Iterable[Metric], view: View) -> Iterator[Metric]:
    """A prometheus_client group's families as the budget allows: in ``current`` mode a state-like family
    (declared in ``exporter.families``) keeps only its 1-valued samples, and derived families go for the
    clusters whose task series are served."""
    budget = budget_of(view)
    if not budget.current:
        yield from metrics
        return
    for metric in metrics:
        if metric.name in STATE_FAMILIES:
            metric.samples = [s for s in metric.samples if s.value == 1.0]
        if metric.name in DERIVED_NAMES:
            metric.samples = [s for s in metric.samples if not budget.drops_derived(s.labels.get(CLUSTER, ""))]
        yield metric


def with_unknown(known: Sequence[str], actual: Iterable[str]) -> list[str]:
    """Known states plus any unknown one actually seen: a future state is exported, never dropped."""
    extra = sorted({s for s in actual if s not in known})
    return [*known, *extra]


def collect_exporter(view: View) -> Iterator[Metric]:
    """The exporter's own health, per polled source.

    Sample::

        kafka_connect_exporter_poll_duration_seconds{connect_cluster="prod"} 0.042
        kafka_connect_exporter_poll_errors_total{connect_cluster="prod",reason="timeout"} 3.0
    """
    build = metric_family(BUILD_INFO)
    build.add_metric([__version__, platform.python_version()], 1.0)
    duration = metric_family(POLL_DURATION)
    interval = metric_family(POLL_INTERVAL)
    last_poll = metric_family(LAST_POLL)
    last_ok = metric_family(LAST_SUCCESS)
    polls = metric_family(POLLS)
    poll_errors = metric_family(POLL_ERRORS)
    for name in sorted(view.clusters):
        snap = view.clusters[name]
        duration.add_metric([name], snap.duration)
        interval.add_metric([name], snap.poll_interval)
        last_poll.add_metric([name], snap.taken_at)
        if snap.last_success is not None:
            last_ok.add_metric([name], snap.last_success)
        polls.add_metric([name, "success"], float(snap.stats.polls_ok))
        polls.add_metric([name, "failure"], float(snap.stats.polls_failed))
        for reason in ERROR_REASONS:
            poll_errors.add_metric([name, reason], float(snap.stats.errors.get(reason, 0)))
    yield from (build, duration, interval, last_poll, last_ok, polls, poll_errors)


def collect_reload(view: View) -> Iterator[Metric]:
    """Configuration reloads, named as Prometheus names its own (absent before the daemon publishes them).

    Sample::

        kafka_connect_exporter_config_last_reload_successful 1.0
    """
    reading = view.reading(ConfigReading)
    if reading is None:
        return
    ok = metric_family(CONFIG_RELOAD_SUCCESSFUL)
    ok.add_metric([], 1.0 if reading.last_reload_successful else 0.0)
    at = metric_family(CONFIG_RELOAD_SUCCESS_TIMESTAMP)
    at.add_metric([], reading.last_success)
    yield from (ok, at)


def collect_warnings(view: View) -> Iterator[Metric]:
    """Repeat-limited warnings by event, every occurrence counted (absent until the first one).

    Sample::

        kafka_connect_exporter_warnings_total{event="poll_failed"} 42.0
    """
    reading = view.reading(WarningsReading)
    if reading is None or not reading.counts:
        return
    family = metric_family(WARNINGS)
    for event in sorted(reading.counts):
        family.add_metric([event], float(reading.counts[event]))
    yield family


# -- fast rendering ------------------------------------------------------------------------------------------
#
# At thousands of connectors the connect group is ~190k samples; building prometheus_client Sample objects
# and formatting them one by one takes seconds. ``ConnectRenderer`` writes the lines directly from the
# snapshots (families in catalogue order, labels sorted by name, the same escaping and value formatting as
# prometheus_client). tests/metrics/oracle.py keeps the prometheus_client version of this group, built from
# the same catalogue, and tests/metrics/test_render.py checks both give the same bytes on hostile input.
# Each cluster's lines are kept until that cluster publishes a new snapshot, so a poll of one cluster
# re-renders only that cluster: the cost of a render grows with what changed, not with every cluster.


@dataclass(frozen=True, slots=True)
class FamilySamples:
    """A catalogue family with its HELP for this view and its sample lines, already in exposition syntax.

    For gauges and for counters without ``_created`` the sample lines are the same in the classic text format
    and in OpenMetrics; only the HELP/TYPE header differs, and the exposition module writes it.
    """

    family: Family
    help: str
    samples: tuple[bytes, ...]  # UTF-8 sample lines, each ending in a newline, in chunks (one per cluster)


class FastGroup(ABC):
    """A group that writes its own sample lines; an instance may keep state from one view to the next."""

    @abstractmethod
    def render(self, view: View) -> list[FamilySamples]: ...


# Both kinds, as the exposition keeps them; ``core_groups`` gives a fresh list (fast groups keep caches).
MetricGroup = CollectGroup | FastGroup

_ONE = "1.0"
_ZERO = "0.0"
# Untyped upstream; the value formatting prometheus_client uses ("1.0", "1.234567e+06", "+Inf").
_num: Callable[[float], str] = floatToGoString

_INTS = tuple(f"{i}.0" for i in range(4096))  # what _num gives for small whole numbers, precomputed


def _count(n: int) -> str:
    return _INTS[n] if 0 <= n < 4096 else _num(float(n))


def _esc(value: str) -> str:
    """Label value escaping of both formats (backslash, newline, double quote)."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


# For other fast groups (the offsets renderer): the same escaping.
escape_label_value = _esc


def connect_cluster_samples(name: str, snap: ClusterSnapshot, budget: SeriesBudget = ALL) -> tuple[bytes, ...]:
    """One cluster's sample lines of each family in ``CONNECT_FAMILIES``, in that order.

    Label names are written sorted, in the f-strings below (the oracle in tests/metrics builds the same lines
    from the catalogue's label names, so a label written here that the catalogue does not declare fails there).
    ``budget``: in ``current`` mode the state families get only the current state's line and the families
    derived from the task series (``Family.derived``) none; ``task_metrics: false`` drops the task lines.
    """
    current = budget.current
    with_tasks = budget.task_metrics(name)
    with_derived = not budget.drops_derived(name)
    up: list[str] = []
    worker_up: list[str] = []
    worker_info: list[str] = []
    c_state: list[str] = []
    c_info: list[str] = []
    c_tasks: list[str] = []
    c_tasks_max: list[str] = []
    c_by_state: list[str] = []
    t_state: list[str] = []
    plugin_info: list[str] = []
    esc_cache: dict[str, str] = {}  # worker ids, classes and states repeat thousands of times

    def esc(value: str) -> str:
        found = esc_cache.get(value)
        if found is None:
            found = esc_cache[value] = _esc(value)
        return found

    cl = f'connect_cluster="{_esc(name)}"'
    up.append(f"{UP.name}{{{cl}}} {_ONE if snap.up else _ZERO}\n")
    for w in snap.workers:
        wl = f'worker="{_esc(w.url)}"'
        worker_up.append(f"{WORKER_UP.name}{{{cl},{wl}}} {_ONE if w.reachable else _ZERO}\n")
        if w.reachable:
            worker_info.append(
                f'{WORKER_INFO.name}{{commit="{_esc(w.commit or "")}",{cl},'
                f'kafka_cluster_id="{_esc(w.kafka_cluster_id or "")}",version="{_esc(w.version or "")}",'
                f"{wl}}} {_ONE}\n"
            )
    c_states = known_states(snap, tasks=False)
    t_states = tuple(known_states(snap, tasks=True))
    t_known = frozenset(t_states)
    # A connector's state lines, by-state counts and each task's state lines differ only in the labels they
    # share (cluster and connector, then task and worker): each block is one ``shared.join(parts)``, with the
    # parts cached by what they depend on (the current state, or the counts).
    c_state_parts: dict[str, list[str]] = {}
    by_state_parts: dict[ByStateKey, list[str]] = {}
    for c in snap.connectors:
        p = f'{cl},connector="{esc(c.name)}"'
        cur = c.state
        parts = c_state_parts.get(cur)
        if parts is None:
            states = [cur] if current else with_unknown(c_states, [cur])
            parts = c_state_parts[cur] = _parts(
                CONNECTOR_STATE.name + "{",
                [f',state="{_esc(s)}"}} {_ONE if s == cur else _ZERO}\n' for s in states],
            )
        c_state.append(p.join(parts))
        c_info.append(
            f'{CONNECTOR_INFO.name}{{{p},connector_class="{esc(c.class_name or "")}",'
            f'connector_id="{esc(c.connector_id or "")}",connector_type="{esc(c.type)}",'
            f'connector_version="{esc(c.version or "")}",task_version="{esc(",".join(c.task_versions))}",'
            f'worker_id="{esc(c.worker_id)}"}} {_ONE}\n'
        )
        tasks = c.tasks
        if c.tasks_max is not None:
            c_tasks_max.append(f"{CONNECTOR_TASKS_MAX.name}{{{p}}} {_count(c.tasks_max)}\n")
        if with_derived:
            c_tasks.append(f"{CONNECTOR_TASKS.name}{{{p}}} {_count(len(tasks))}\n")
            c_by_state.append(p.join(_by_state_parts(by_state_parts, t_states, t_known, [t.state for t in tasks])))
        if not with_tasks:
            continue
        if current:
            head = f'{TASK_STATE.name}{{{p},state="'
            for t in tasks:
                wid = esc_cache.get(t.worker_id)
                if wid is None:
                    wid = esc(t.worker_id)
                t_state.append(f'{head}{esc(t.state)}",task="{t.id}",worker_id="{wid}"}} {_ONE}\n')
            continue
        task_parts: dict[str, list[str]] = {}  # by the task's state, for this connector
        head = f'{TASK_STATE.name}{{{p},state="'
        for t in tasks:
            cur = t.state
            parts = task_parts.get(cur)
            if parts is None:
                states = list(t_states) if cur in t_known else with_unknown(t_states, [cur])
                parts = task_parts[cur] = _around(
                    [f"{head}{_esc(s)}" for s in states], [_ONE if s == cur else _ZERO for s in states]
                )
            wid = esc_cache.get(t.worker_id)
            if wid is None:
                wid = esc(t.worker_id)
            t_state.append(f'",task="{t.id}",worker_id="{wid}"}} '.join(parts))
    for pl in snap.plugins:
        plugin_info.append(
            f'{PLUGIN_INFO.name}{{{cl},plugin_class="{esc(pl.class_name)}",'
            f'plugin_type="{esc(pl.type)}",version="{esc(pl.version or "")}"}} {_ONE}\n'
        )
    families = (up, worker_up, worker_info, c_state, c_info, c_tasks, c_tasks_max, c_by_state, t_state, plugin_info)
    return tuple("".join(lines).encode() for lines in families) + named_worker_samples(cl, snap, current=current)


def named_worker_samples(cl: str, snap: ClusterSnapshot, *, current: bool = False) -> tuple[bytes, ...]:
    """The lines of the worker families at the end of ``CONNECT_FAMILIES`` (``cl``: the cluster label;
    ``current``: the health family, a state family, gets only the current status's line)."""
    reachable: list[str] = []
    tasks: list[str] = []
    connectors: list[str] = []
    health: list[str] = []
    on_lost: list[str] = []
    for nw in snap.named_workers:
        wl = f'worker_id="{_esc(nw.worker_id)}"'
        if nw.state is not WorkerState.UNKNOWN:
            value = _ONE if nw.state is WorkerState.REACHABLE else _ZERO
            reachable.append(f"{WORKER_REACHABLE.name}{{{cl},{wl}}} {value}\n")
        tasks.append(f"{WORKER_TASKS.name}{{{cl},{wl}}} {_count(nw.tasks)}\n")
        connectors.append(f"{WORKER_CONNECTORS.name}{{{cl},{wl}}} {_count(nw.connectors)}\n")
        if nw.health is not None:
            health.extend(
                f'{WORKER_HEALTH.name}{{{cl},status="{st}",{wl}}} {_ONE if nw.health == st else _ZERO}\n'
                for st in ((nw.health,) if current else WORKER_HEALTH_STATES)
            )
    if snap.named_workers:
        impaired = snap.impaired_worker_ids()
        for c in snap.connectors:
            n = tasks_on(c, impaired)
            on_lost.append(f'{CONNECTOR_TASKS_ON_LOST_WORKERS.name}{{{cl},connector="{_esc(c.name)}"}} {_count(n)}\n')
    return tuple("".join(lines).encode() for lines in (reachable, tasks, connectors, health, on_lost))


ByStateKey = tuple[tuple[str, ...], tuple[int, ...]]


def _by_state_parts(
    cache: dict[ByStateKey, list[str]], t_states: tuple[str, ...], t_known: frozenset[str], seen: list[str]
) -> list[str]:
    """The ``shared.join`` pieces of a connector's tasks_by_state lines, cached by the counts."""
    if t_known.issuperset(seen):
        key = (t_states, tuple(seen.count(s) for s in t_states))
    else:
        counts = Counter(seen)
        unknown = tuple(with_unknown(t_states, counts))
        key = (unknown, tuple(counts.get(s, 0) for s in unknown))
    parts = cache.get(key)
    if parts is None:
        parts = cache[key] = _parts(
            CONNECTOR_TASKS_BY_STATE.name + "{",
            [f',state="{_esc(s)}"}} {_count(n)}\n' for s, n in zip(*key, strict=True)],
        )
    return parts


# For other fast groups (exporter.failures.metrics): the same value formatting and label escaping.
format_value = _num
format_count = _count
escape_label_value = _esc


def _parts(head: str, tails: list[str]) -> list[str]:
    """Pieces that ``shared.join(pieces)`` turns into one line ``head + shared + tail`` per tail."""
    return [head, *(t + head for t in tails[:-1]), tails[-1]]


def _around(starts: list[str], values: list[str]) -> list[str]:
    """Pieces that ``shared.join(pieces)`` turns into one line ``start + shared + " " + value`` per start."""
    return [starts[0], *(f"{v}\n{s}" for v, s in zip(values[:-1], starts[1:], strict=True)), f"{values[-1]}\n"]


class ConnectRenderer(FastGroup):
    """Connect clusters, workers, connectors, tasks and plugins, keeping each cluster's lines until its snapshot
    changes.

    Sample::

        kafka_connect_up{connect_cluster="prod"} 1.0
        kafka_connect_connector_state{connect_cluster="prod",connector="orders-sink",state="FAILED"} 1.0
        kafka_connect_task_state{connect_cluster="prod",connector="orders-sink",state="FAILED",task="1",\
worker_id="10.0.0.13:8083"} 1.0

    Not thread-safe: one exposition renders one view at a time.
    """

    def __init__(self) -> None:
        self._clusters: dict[str, tuple[ClusterSnapshot, SeriesBudget, tuple[bytes, ...]]] = {}

    def render(self, view: View) -> list[FamilySamples]:
        polled = polled_help(view)
        budget = budget_of(view)
        kept: dict[str, tuple[ClusterSnapshot, SeriesBudget, tuple[bytes, ...]]] = {}
        for name in sorted(view.clusters):
            snap = view.clusters[name]
            hit = self._clusters.get(name)
            if hit is not None and hit[0] is snap and hit[1] == budget:
                kept[name] = hit
            else:
                kept[name] = (snap, budget, connect_cluster_samples(name, snap, budget))
        self._clusters = kept  # deleted clusters are dropped with their lines
        per_cluster = [samples for _, _, samples in kept.values()]
        return [
            FamilySamples(f, f.help + polled if f in POLLED else f.help, tuple(s[i] for s in per_cluster if s[i]))
            for i, f in enumerate(CONNECT_FAMILIES)
        ]


def core_groups() -> list[MetricGroup]:
    """The groups every exporter serves, new (a renderer's cache belongs to one exposition)."""
    return [ConnectRenderer(), collect_exporter, collect_reload, collect_warnings]
