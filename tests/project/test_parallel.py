"""The scopes `make test` hands to its pytest-xdist workers (tests/parallel.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.parallel import scope_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("nodeid", "scope"),
    [
        ("tests/integration/test_auth_real.py::test_basic_auth[kafka-3.9.2]", "kafka-3.9.2"),
        (
            "tests/integration/test_harness_smoke.py::test_not_found[kafka-4.3.1-GET-/connectors/x-Connector x]",
            "kafka-4.3.1",
        ),
        ("tests/integration/test_parity.py::test_same[sim-kafka-10.0.0]", "kafka-10.0.0"),
        (
            "tests/integration/test_demo_kafka.py::test_demo_kafka_stops_on_ctrl_c",
            "tests/integration/test_demo_kafka.py",
        ),
        (
            "tests/e2e/test_dashboards_alerts_e2e.py::test_alert[state_series=all-KafkaConnectWorkerDown]",
            "tests/e2e/test_dashboards_alerts_e2e.py",
        ),
        ("tests/offsets/test_parse.py::test_topic[my-kafka-topic]", "tests/offsets/test_parse.py"),
    ],
)
def test_scope_of(nodeid: str, scope: str) -> None:
    assert scope_of(nodeid) == scope


def test_each_pinned_kafka_version_is_one_scope_of_the_real_collection() -> None:
    # The node ids pytest really gives: every test that takes kafka_env lands in its version's scope (one cluster,
    # one worker), and nothing else does.
    from tests.integration.kafka.fetch import pinned_versions

    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests/integration"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    nodeids = [line for line in proc.stdout.splitlines() if "::" in line]
    scopes: dict[str, set[str]] = {}
    for nodeid in nodeids:
        scopes.setdefault(scope_of(nodeid), set()).add(nodeid.split("::")[0])
    kafka = {s for s in scopes if s.startswith("kafka-")}
    assert kafka == {f"kafka-{v}" for v in pinned_versions()}
    # Each version's scope spans the integration modules, and every version has the same ones.
    assert len({frozenset(scopes[s]) for s in kafka}) == 1 and len(scopes[min(kafka)]) > 5
    assert set(scopes) - kafka == {"tests/integration/test_demo_kafka.py"}  # starts its own Kafka
