"""The series budget readers apply: the state encoding and which clusters serve per-task series.

A reading (``store.publish(SeriesBudget(...))``, ``view.reading(SeriesBudget)``) so that a configuration
reload changes what the next render writes without any reader holding configuration. Without a reading the
renderers serve everything (``all`` mode, task series on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

StateSeries = Literal["all", "current"]


@dataclass(frozen=True, slots=True)
class SeriesBudget:
    state_series: StateSeries = "all"
    without_task_metrics: frozenset[str] = frozenset()  # clusters configured with ``task_metrics: false``

    @property
    def current(self) -> bool:
        """Only the current state's sample of each state-like family (value 1)."""
        return self.state_series == "current"

    def task_metrics(self, cluster: str) -> bool:
        return cluster not in self.without_task_metrics

    def drops_derived(self, cluster: str) -> bool:
        """``current`` mode drops what a query derives from the task series, where they are served."""
        return self.current and self.task_metrics(cluster)


ALL = SeriesBudget()
