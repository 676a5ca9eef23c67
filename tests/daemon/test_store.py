"""The store: one immutable view, feature readings found by their type, data flowing one way."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from exporter.store import Store, View


@dataclass(frozen=True)
class _Apples:
    count: int


@dataclass(frozen=True)
class _Pears:
    count: int


def test_a_reading_is_found_by_its_type_and_replaced_by_the_next() -> None:
    store = Store()
    assert store.view.reading(_Apples) is None
    store.publish(_Apples(1))
    first = store.view
    store.publish(_Pears(7))
    store.publish(_Apples(2))
    assert store.view.reading(_Apples) == _Apples(2)
    assert store.view.reading(_Pears) == _Pears(7)
    assert first.reading(_Apples) == _Apples(1)  # an earlier view never changes
    assert first.reading(_Pears) is None
    assert store.view.generation == first.generation + 2


def test_listeners_see_every_publish_but_may_not_publish() -> None:
    store = Store()
    seen: list[int] = []
    store.subscribe(lambda view: seen.append(view.generation))
    store.publish(_Apples(1))
    assert seen == [store.view.generation]

    def loops_back(view: View) -> None:
        store.publish(_Pears(view.generation))

    store.subscribe(loops_back)
    with pytest.raises(RuntimeError, match="must not publish"):
        store.publish(_Apples(2))
    assert store.view.reading(_Apples) == _Apples(2)  # the publish itself stands ...
    assert store.view.reading(_Pears) is None  # ... the listener's did not happen
