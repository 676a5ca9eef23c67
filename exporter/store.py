"""The newest view of everything the sources have seen, shared with every reader.

Sources return readings and the daemon alone publishes them here (``exporter.daemon``); readers (metrics
rendering, the status page, readiness) read ``store.view``, an immutable object replaced as a whole on every
publish, so a reader never sees half an update and needs no lock. All publishing happens on the event loop thread.

Steps that derive a reading from the snapshots (failure tracking, the offsets readers, auto-heal) subscribe with
``derive``: after each ``publish_cluster`` the store hands the new snapshot, and the view it is in (for the other
readings a step reads), to each step in the order they subscribed, and publishes what a step returns before
calling the next, all within that one call.

A view holds one ``ClusterSnapshot`` per cluster (Kafka Connect or Confluent Cloud) and at most one reading
per feature (e.g. ``CloudReading``, ``HealerReading``): a frozen object the feature publishes with
``publish(reading)`` and readers get back by its type, ``view.reading(CloudReading)``. Reading types live in
their feature's ``reading`` module, which sources and readers both import.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, TypeVar, cast

from exporter.model import ClusterSnapshot

R = TypeVar("R")
Listener = Callable[["View"], None]
# Given each new snapshot and the view it is in; returns the reading it derives (published at once), or None.
Step = Callable[[ClusterSnapshot, "View"], object | None]


def _frozen(d: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True, slots=True)
class View:
    generation: int
    started_at: float
    expected: tuple[str, ...]  # names of every configured source, polled or not
    clusters: Mapping[str, ClusterSnapshot] = field(default_factory=lambda: _frozen({}))
    # Feature readings keyed by their exact type: ``Store.publish`` keeps key and value in step.
    readings: Mapping[type[object], object] = field(default_factory=lambda: _frozen({}))

    @property
    def ready(self) -> bool:
        """Every configured source has finished at least one cycle, successful or not."""
        return all(name in self.clusters for name in self.expected)

    @property
    def unseen(self) -> tuple[str, ...]:
        """Configured sources whose newest cycle failed or that have not finished one: nothing current is known
        of their connectors, so no reader may call them healthy."""
        return tuple(n for n in self.expected if n not in self.clusters or not self.clusters[n].up)

    def reading(self, kind: type[R]) -> R | None:
        """The newest reading of type ``kind``, or None before its feature first published one."""
        return cast("R | None", self.readings.get(kind))


class Store:
    def __init__(self, expected: Iterable[str] = ()) -> None:
        self._view = View(generation=0, started_at=time.time(), expected=tuple(expected))
        self._listeners: list[Listener] = []
        self._steps: list[Step] = []
        self._notifying = False

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
        for step in self._steps:
            reading = step(snapshot, self._view)
            if reading is not None:
                self.publish(reading)

    def remove_cluster(self, name: str) -> None:
        """Forget a source no longer configured (a reload removed it): its series go with the next render."""
        clusters = {k: v for k, v in self._view.clusters.items() if k != name}
        expected = tuple(n for n in self._view.expected if n != name)
        self._swap(replace(self._view, clusters=_frozen(clusters), expected=expected))

    def discard(self, kind: type[object]) -> None:
        """Drop the reading of type ``kind`` (its feature was switched off by a reload)."""
        if kind in self._view.readings:
            readings = {k: v for k, v in self._view.readings.items() if k is not kind}
            self._swap(replace(self._view, readings=_frozen(readings)))

    def publish(self, reading: object) -> None:
        """Replace the reading of ``type(reading)``; pass a frozen object, readers share it unlocked."""
        readings = dict(self._view.readings)
        readings[type(reading)] = reading
        self._swap(replace(self._view, readings=_frozen(readings)))

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(view)`` after every publish (on the publishing thread; keep it cheap).

        For readers that prepare for the next request (the exposition's prerender). Data flows one way: a
        listener that publishes raises, since it would turn the store into a loop.
        """
        self._listeners.append(listener)

    def derive(self, step: Step) -> None:
        """Hand every snapshot published from now on to ``step``, after the steps that subscribed before it; what
        it returns is published before the next step runs (so a later step may read it in the view)."""
        self._steps.append(step)

    def _swap(self, view: View) -> None:
        if self._notifying:
            raise RuntimeError("a store listener must not publish")
        self._view = replace(view, generation=self._view.generation + 1)
        self._notifying = True
        try:
            for listener in self._listeners:
                listener(self._view)
        finally:
            self._notifying = False
