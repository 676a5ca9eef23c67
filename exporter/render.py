"""How a metric group renders: one interface, one label escaper, one number formatter.

Every group /metrics serves is a ``MetricGroup``: given the store's view it returns ``Block`` objects, each a
stretch of the exposition with its header in both formats and the sample lines they share. Two kinds implement it:

- ``FastGroup``: writes its sample lines directly (the connect, failures and offsets groups: tens of thousands
  of lines at thousands of connectors), with ``escape_label_value`` and ``format_value`` below, the same escaping
  and number formatting prometheus_client uses.
- ``Collected``: a small group written as a function that yields prometheus_client families, formatted by
  prometheus_client (the exporter's own health, Confluent Cloud, auto-heal).

Both are thinned by the series budget (``metrics.state_series: current``) as ``exporter.families`` declares.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as _om_generate_latest
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from exporter.budget import ALL, SeriesBudget
from exporter.families import CLUSTER, CONNECTOR_TASKS, DERIVED_FAMILIES, SPARSE_FAMILIES, STATE_FAMILIES, Family
from exporter.store import View

_EOF = b"# EOF\n"
# Untyped upstream; the signature is (registry) -> bytes.
generate_openmetrics: Callable[[Collector], bytes] = _om_generate_latest

# -- the one value formatter and label escaper ----------------------------------------------------------------

# Untyped upstream; the value formatting prometheus_client uses ("1.0", "1.234567e+06", "+Inf").
format_value: Callable[[float], str] = floatToGoString

_INTS = tuple(f"{i}.0" for i in range(4096))  # what format_value gives for small whole numbers, precomputed


def format_count(n: int) -> str:
    """``format_value(float(n))``, without the float formatting for the small counts that dominate."""
    return _INTS[n] if 0 <= n < 4096 else format_value(float(n))


def escape_label_value(value: str) -> str:
    """Label value escaping of both formats (backslash, newline, double quote)."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


# -- what a group returns -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    """One stretch of the exposition: its header in each format and the sample lines both formats share."""

    header_text: bytes
    header_openmetrics: bytes
    samples: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class FamilySamples:
    """A catalogue family with its HELP for this view and its sample lines, already in exposition syntax.

    For gauges and for counters without ``_created`` the sample lines are the same in the classic text format
    and in OpenMetrics; only the HELP/TYPE header differs, and ``family_block`` writes it.
    """

    family: Family
    help: str
    samples: tuple[bytes, ...]  # UTF-8 sample lines, each ending in a newline, in chunks (one per cluster)


def _help_text(doc: str) -> str:
    return doc.replace("\\", r"\\").replace("\n", r"\n")


def _help_openmetrics(doc: str) -> str:
    return doc.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def family_block(fs: FamilySamples) -> Block:
    f = fs.family
    return Block(
        f"# HELP {f.sample_name} {_help_text(fs.help)}\n# TYPE {f.sample_name} {f.type}\n".encode(),
        f"# HELP {f.name} {_help_openmetrics(fs.help)}\n# TYPE {f.name} {f.type}\n".encode(),
        fs.samples,
    )


# -- the group interface --------------------------------------------------------------------------------------


class MetricGroup(ABC):
    """A part of /metrics rendered from the view. Only the render thread calls it, one view at a time."""

    @abstractmethod
    def blocks(self, view: View) -> list[Block]: ...


class FastGroup(MetricGroup):
    """A group that writes its own sample lines; an instance may keep state from one view to the next."""

    @abstractmethod
    def render(self, view: View) -> list[FamilySamples]: ...

    def blocks(self, view: View) -> list[Block]:
        return [family_block(fs) for fs in self.render(view)]


# A small group: prometheus_client families, formatted by prometheus_client.
CollectFunc = Callable[[View], Iterable[Metric]]


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


class Collected(MetricGroup):
    """A prometheus_client group behind the group interface (one block: prometheus_client writes it whole)."""

    def __init__(self, collect: CollectFunc) -> None:
        self.collect = collect

    def blocks(self, view: View) -> list[Block]:
        fixed = _Fixed(list(within_budget(self.collect(view), view)))
        return [Block(generate_latest(fixed), generate_openmetrics(fixed).removesuffix(_EOF), ())]

    def __repr__(self) -> str:
        return f"Collected({getattr(self.collect, '__name__', self.collect)!r})"


def render_blocks(view: View, groups: Iterable[MetricGroup]) -> list[Block]:
    """The snapshot part of the exposition for ``view``, group by group.

    Pass the same fast group instances from one view to the next to keep their caches.
    """
    return [block for group in groups for block in group.blocks(view)]


# -- helpers of prometheus_client groups ----------------------------------------------------------------------


def metric_family(family: Family, help_text: str | None = None) -> GaugeMetricFamily | CounterMetricFamily:
    """An empty prometheus_client family for a catalogue entry (``help_text`` when HELP gets a runtime tail)."""
    cls = CounterMetricFamily if family.type == "counter" else GaugeMetricFamily
    return cls(family.name, family.help if help_text is None else help_text, labels=family.labels)


DERIVED_NAMES = frozenset(f.name for f in DERIVED_FAMILIES)


def budget_of(view: View) -> SeriesBudget:
    return view.reading(SeriesBudget) or ALL


def within_budget(metrics: Iterable[Metric], view: View) -> Iterator[Metric]:
    """A prometheus_client group's families as the budget allows: in ``current`` mode a state-like family
    (declared in ``exporter.families``) keeps only its 1-valued samples, derived families go for the
    clusters whose task series are served, and sparse families keep only the samples that say something."""
    budget = budget_of(view)
    if not budget.current:
        yield from metrics
        return
    tasks: dict[tuple[str, str], float] = {}  # (cluster, connector) -> its task count, as the series say
    for metric in metrics:
        if metric.name == CONNECTOR_TASKS.name:
            tasks = {(s.labels.get(CLUSTER, ""), s.labels.get("connector", "")): s.value for s in metric.samples}
        if metric.name in STATE_FAMILIES:
            metric.samples = [s for s in metric.samples if s.value == 1.0]
        if metric.name in DERIVED_NAMES:
            metric.samples = [s for s in metric.samples if not budget.drops_derived(s.labels.get(CLUSTER, ""))]
        sparse = SPARSE_FAMILIES.get(metric.name)
        if sparse is not None and sparse.sparse is not None:
            metric.samples = [s for s in metric.samples if _served_sparse(sparse.sparse.rule, s, budget, tasks)]
        yield metric


def _served_sparse(rule: str, sample: Any, budget: SeriesBudget, tasks: dict[tuple[str, str], float]) -> bool:
    """Whether ``current`` mode serves a sample of a family declared ``sparse`` (``families.Sparse``)."""
    if rule == "nonzero":
        return bool(sample.value != 0)
    if rule == "unlike_tasks":
        cluster = sample.labels.get(CLUSTER, "")
        count = tasks.get((cluster, sample.labels.get("connector", "")))
        return not budget.drops_derived(cluster) or count is None or count != sample.value
    return False
