"""The newest view of everything the sources have seen, shared with every reader.

Sources publish; readers (metrics rendering, the healer, the landing page, readiness) read ``store.view``,
an immutable object replaced as a whole on every publish, so a reader never sees half an update and needs
no lock. All publishing happens on the event loop thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from exporter.model import ClusterSnapshot

Listener = Callable[["View"], None]


def _frozen(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True, slots=True)
class View:
    generation: int
    started_at: float
    expected: tuple[str, ...]  # names of every configured source, polled or not
    clusters: Mapping[str, ClusterSnapshot] = field(default_factory=lambda: _frozen({}))
    # Readings of optional features, keyed by feature ("ccloud_throughput", "autoheal", ...).
    # Each feature's metrics group knows the type of its own section.
    sections: Mapping[str, Any] = field(default_factory=lambda: _frozen({}))

    @property
    def ready(self) -> bool:
        """Every configured source has finished at least one cycle, successful or not."""
        return all(name in self.clusters for name in self.expected)


class Store:
    def __init__(self, expected: Iterable[str] = ()) -> None:
        self._view = View(generation=0, started_at=time.time(), expected=tuple(expected))
        self._listeners: list[Listener] = []

    @property
    def view(self) -> View:
        return self._view

    def expect(self, name: str) -> None:
        if name not in self._view.expected:
            self._swap(replace(self._view, expected=(*self._view.expected, name)))

    def publish_cluster(self, snapshot: ClusterSnapshot) -> None:
        clusters = dict(self._view.clusters)
        clusters[snapshot.cluster] = snapshot
        self._swap(replace(self._view, clusters=_frozen(clusters)))

    def publish_section(self, key: str, value: Any) -> None:
        sections = dict(self._view.sections)
        sections[key] = value
        self._swap(replace(self._view, sections=_frozen(sections)))

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(view)`` after every publish (on the publishing thread; keep it cheap)."""
        self._listeners.append(listener)

    def _swap(self, view: View) -> None:
        self._view = replace(view, generation=self._view.generation + 1)
        for listener in self._listeners:
            listener(self._view)
