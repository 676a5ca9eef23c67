from __future__ import annotations

from collections.abc import Iterator

import pytest

from exporter.simulator.connect import SimCluster
from exporter.simulator.server import SimThread, run_in_thread


@pytest.fixture
def sim() -> Iterator[SimThread]:
    """A two-worker Kafka 3.9 cluster served over loopback from a background thread."""
    cluster = SimCluster(version="3.9.0", worker_count=2)
    with run_in_thread(cluster) as handle:
        yield handle
