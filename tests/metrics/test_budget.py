"""The series budget: ``metrics.state_series: current`` and ``task_metrics: false`` follow the catalogue.

The fast renderer's lines in each mode must equal what the catalogue rule gives when applied to the
prometheus_client oracle's full exposition: keep only the 1-valued samples of each family that declares
states, drop the families that declare a derivation from the task series (where task series are served),
and drop the task series of clusters without them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from exporter.budget import SeriesBudget
from exporter.connect.metrics import ConnectRenderer
from exporter.exposition import Rendered
from exporter.failures.metrics import FailuresRenderer
from exporter.families import ALL_FAMILIES, CLUSTER, STATE_FAMILIES, TASK_STATE
from exporter.healer.metrics import collect_autoheal
from exporter.model import ClusterSnapshot, Connector, SourceKind, Task, Worker
from exporter.render import Collected, render_blocks, within_budget
from exporter.store import View
from tests.metrics.golden_view import golden_view
from tests.metrics.oracle import collect_connect
from tests.support.scrape import parse_exposition

ROOT = Path(__file__).resolve().parents[2]

BUDGETS = [
    SeriesBudget("all"),
    SeriesBudget("current"),
    SeriesBudget("all", frozenset({"prod"})),
    SeriesBudget("current", frozenset({"prod", "cloud"})),
]


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def _by_rule(view: View, budget: SeriesBudget) -> bytes:
    metrics = list(within_budget(collect_connect(view), view))
    for m in metrics:
        if m.name == TASK_STATE.name:
            m.samples = [s for s in m.samples if budget.task_metrics(s.labels[CLUSTER])]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(metrics))
    return generate_latest(registry)


def _view(budget: SeriesBudget) -> View:
    view = golden_view()
    return replace(view, readings=MappingProxyType({**view.readings, SeriesBudget: budget}))


@pytest.mark.parametrize(
    "budget", BUDGETS, ids=lambda b: f"{b.state_series}-{'-'.join(sorted(b.without_task_metrics))}"
)
def test_fast_renderer_follows_the_catalogue_rule(budget: SeriesBudget) -> None:
    view = _view(budget)
    fast = Rendered(7, render_blocks(view, [ConnectRenderer()])).text
    assert fast == _by_rule(view, budget)


def test_current_mode_serves_no_zero_state_samples_and_no_derived_families() -> None:
    view = _view(SeriesBudget("current"))
    groups = [
        ConnectRenderer(),
        Collected(collect_autoheal),
        FailuresRenderer(),
    ]  # every renderer of a state-like family
    text = Rendered(7, render_blocks(view, groups)).text.decode()
    state_lines = [line for line in text.splitlines() if line.split("{")[0] in STATE_FAMILIES]
    assert state_lines and all(line.endswith(" 1.0") for line in state_lines)
    assert {line.split("{")[0] for line in state_lines} == set(STATE_FAMILIES)  # autoheal_mode too
    derived = [f.name for f in ALL_FAMILIES if f.derived]
    assert derived and not [line for line in text.splitlines() if line.split("{")[0] in derived]
    # The same view in ``all`` mode has the zeros: the check above can fail.
    full = Rendered(
        7, render_blocks(_view(SeriesBudget()), [ConnectRenderer(), Collected(collect_autoheal), FailuresRenderer()])
    ).text.decode()
    assert any(line.split("{")[0] in STATE_FAMILIES and line.endswith(" 0.0") for line in full.splitlines())


def test_a_new_budget_re_renders_cached_clusters() -> None:
    renderer = ConnectRenderer()
    full = Rendered(1, render_blocks(_view(SeriesBudget()), [renderer])).text
    thin = Rendered(2, render_blocks(_view(SeriesBudget("current")), [renderer])).text
    assert len(thin) < len(full)
    assert Rendered(3, render_blocks(_view(SeriesBudget()), [renderer])).text == full


def _estate(connectors: int, tasks: int) -> View:
    """One self-managed cluster of RUNNING connectors with ``tasks`` RUNNING tasks each, tasks.max readable."""
    snap = ClusterSnapshot(
        cluster="prod",
        kind=SourceKind.CONNECT,
        taken_at=1.0,
        duration=0.1,
        up=True,
        poll_interval=30.0,
        workers=(Worker(url="http://w:8083", reachable=True, version="3.9.0", commit="c", kafka_cluster_id="k"),),
        connectors=tuple(
            Connector(
                name=f"c{i}",
                type="sink",
                class_name="X",
                state="RUNNING",
                worker_id="w:8083",
                tasks=tuple(Task(id=t, state="RUNNING", worker_id="w:8083") for t in range(tasks)),
                tasks_max=tasks,
            )
            for i in range(connectors)
        ),
    )
    return View(generation=1, started_at=0.0, expected=("prod",), clusters=MappingProxyType({"prod": snap}))


def documented_series_table() -> dict[tuple[str, bool], tuple[int, int]]:
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(all|current)` \| `(true|false)` \| (\d+) \| (\d+) \|$", text, re.MULTILINE)
    return {(mode, tm == "true"): (int(c), int(t)) for mode, tm, c, t in rows}


def test_docs_table_of_series_per_connector_and_task_matches_a_scrape() -> None:
    table = documented_series_table()
    assert len(table) == 4, table
    connectors, tasks = 3, 4
    for (mode, task_metrics), documented in table.items():
        budget = SeriesBudget("current" if mode == "current" else "all", frozenset() if task_metrics else {"prod"})
        view = _estate(connectors, tasks)
        view = replace(view, readings=MappingProxyType({SeriesBudget: budget}))
        scrape = parse_exposition(Rendered(1, render_blocks(view, [ConnectRenderer()])).text.decode())
        samples = [labels for family in scrape.families.values() for labels, _ in family]
        per_task = sum("task" in s for s in samples) / (connectors * tasks)
        per_connector = sum("connector" in s and "task" not in s for s in samples) / connectors
        assert (per_connector, per_task) == documented, (mode, task_metrics)
