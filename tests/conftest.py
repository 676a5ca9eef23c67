from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import freezegun
import pytest

from simulator.connect.server import SimThread, connect_in_thread
from simulator.connect.state import SimCluster

# pytest times tests through _pytest.timing; under a frozen clock --durations reported 1.7e9 s set-ups.
freezegun.configure(extend_ignore_list=["_pytest.timing"])


@pytest.fixture
def sim() -> Iterator[SimThread]:
    """A two-worker Kafka 3.9 cluster served over loopback from a background thread."""
    cluster = SimCluster(version="3.9.0", worker_count=2)
    with connect_in_thread(cluster) as handle:
        yield handle


# Integration (real Kafka) and e2e (real Prometheus) tests run last: the fast tests report first, and the
# last Kafka version's JVMs, which pytest keeps until the session ends, no longer idle beside every unit
# test on a 2-core machine. Stable, and after pytest's own grouping by session fixture parameters.
_LAST = {"e2e": 1, "integration": 2}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent

    def rank(item: pytest.Item) -> int:
        rel = item.path.relative_to(tests_dir) if tests_dir in item.path.parents else None
        return _LAST.get(rel.parts[0], 0) if rel is not None and len(rel.parts) > 1 else 0

    items.sort(key=rank)
