"""The connect group: clusters, workers, connectors, tasks and plugins, written from the snapshots.

At thousands of connectors this group is ~190k samples; building prometheus_client Sample objects and formatting
them one by one takes seconds. ``ConnectRenderer`` writes the lines directly from the snapshots (families in
catalogue order, labels sorted by name, with ``exporter.render``'s escaping and value formatting).
tests/metrics/oracle.py keeps the prometheus_client version of this group, built from the same catalogue, and
tests/metrics/test_render.py checks both give the same bytes on hostile input. Each cluster's lines are kept until
that cluster publishes a new snapshot, so a poll of one cluster re-renders only that cluster: the cost of a render
grows with what changed, not with every cluster. Names, HELP and labels come from ``exporter.families``; a deleted
connector disappears with the next poll and traces never become labels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from exporter.budget import ALL, SeriesBudget
from exporter.families import (
    CONNECT_FAMILIES,
    CONNECTOR_INFO,
    CONNECTOR_STATE,
    CONNECTOR_TASKS,
    CONNECTOR_TASKS_BY_STATE,
    CONNECTOR_TASKS_MAX,
    CONNECTOR_TASKS_ON_LOST_WORKERS,
    PLUGIN_INFO,
    POLL_INTERVAL,
    POLLED,
    TASK_STATE,
    UP,
    WORKER_CONNECTORS,
    WORKER_HEALTH,
    WORKER_INFO,
    WORKER_REACHABLE,
    WORKER_TASKS,
    WORKER_UP,
    Family,
    StateSet,
)
from exporter.model import WORKER_HEALTH_STATES, ClusterSnapshot, SourceKind, Task, WorkerState, tasks_on
from exporter.render import FamilySamples, FastGroup, budget_of, escape_label_value, format_count
from exporter.store import View

_ONE = "1.0"
_ZERO = "0.0"
_count = format_count
_esc = escape_label_value


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


def with_unknown(known: Sequence[str], actual: Iterable[str]) -> list[str]:
    """Known states plus any unknown one actually seen: a future state is exported, never dropped."""
    extra = sorted({s for s in actual if s not in known})
    return [*known, *extra]


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
    _worker_lines(cl, snap, worker_up, worker_info)
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
        # Where the task series are served, ``current`` mode writes tasks.max only where it says something the
        # task series do not: a connector short of (or over) its tasks.max.
        if c.tasks_max is not None and (with_derived or c.tasks_max != len(tasks)):
            c_tasks_max.append(f"{CONNECTOR_TASKS_MAX.name}{{{p}}} {_count(c.tasks_max)}\n")
        if with_derived:
            c_tasks.append(f"{CONNECTOR_TASKS.name}{{{p}}} {_count(len(tasks))}\n")
            c_by_state.append(p.join(_by_state_parts(by_state_parts, t_states, t_known, [t.state for t in tasks])))
        if with_tasks:
            _task_state_lines(t_state, f'{TASK_STATE.name}{{{p},state="', tasks, esc, t_states, current=current)
    for pl in snap.plugins:
        plugin_info.append(
            f'{PLUGIN_INFO.name}{{{cl},plugin_class="{esc(pl.class_name)}",'
            f'plugin_type="{esc(pl.type)}",version="{esc(pl.version or "")}"}} {_ONE}\n'
        )
    families = (up, worker_up, worker_info, c_state, c_info, c_tasks, c_tasks_max, c_by_state, t_state, plugin_info)
    return tuple("".join(lines).encode() for lines in families) + named_worker_samples(cl, snap, current=current)


def _worker_lines(cl: str, snap: ClusterSnapshot, worker_up: list[str], worker_info: list[str]) -> None:
    """The configured workers' lines: answered this cycle or not, and what they said of themselves."""
    for w in snap.workers:
        wl = f'worker="{_esc(w.url)}"'
        worker_up.append(f"{WORKER_UP.name}{{{cl},{wl}}} {_ONE if w.reachable else _ZERO}\n")
        if w.reachable:
            worker_info.append(
                f'{WORKER_INFO.name}{{commit="{_esc(w.commit or "")}",{cl},'
                f'kafka_cluster_id="{_esc(w.kafka_cluster_id or "")}",version="{_esc(w.version or "")}",'
                f"{wl}}} {_ONE}\n"
            )


def _task_state_lines(
    out: list[str],
    head: str,
    tasks: Sequence[Task],
    esc: Callable[[str], str],
    t_states: tuple[str, ...],
    *,
    current: bool,
) -> None:
    """One connector's task state lines (``head``: the family and the connector's labels, up to ``state="``):
    the current state's only, or one per known state with the parts cached by the task's state."""
    if current:
        for t in tasks:
            out.append(f'{head}{esc(t.state)}",task="{t.id}",worker_id="{esc(t.worker_id)}"}} {_ONE}\n')
        return
    task_parts: dict[str, list[str]] = {}  # by the task's state, for this connector
    for t in tasks:
        cur = t.state
        parts = task_parts.get(cur)
        if parts is None:
            states = list(t_states) if cur in t_states else with_unknown(t_states, [cur])
            parts = task_parts[cur] = _around(
                [f"{head}{_esc(s)}" for s in states], [_ONE if s == cur else _ZERO for s in states]
            )
        out.append(f'",task="{t.id}",worker_id="{esc(t.worker_id)}"}} '.join(parts))


def named_worker_samples(cl: str, snap: ClusterSnapshot, *, current: bool = False) -> tuple[bytes, ...]:
    """The lines of the worker families at the end of ``CONNECT_FAMILIES`` (``cl``: the cluster label;
    ``current``: the health family, a state family, gets only the current status's line, and the tasks on lost
    workers only the connectors that have some)."""
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
            if current and n == 0:
                continue
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
