"""Fixtures that run real Apache Kafka + Kafka Connect (see kafka/harness.py) for every pinned version.

One environment per version per session: ``kafka_env`` is session-scoped and parametrized over
kafka/versions.txt, so pytest groups the tests by version. A serial run has one cluster at a time; `make test`'s
pytest-xdist run keeps each version's tests in one worker (tests/parallel.py), so each version starts once and
the versions run side by side.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import session_report

from .kafka import fetch
from .kafka.harness import ConnectCluster, HarnessError, KafkaEnvironment, install_signal_handlers, start_environment
from .kafka.postgres import PostgresError, PostgresServer
from .kafka.rest import ConnectRest, wait_until

KAFKA_VERSIONS = fetch.pinned_versions()
_HERE = Path(__file__).parent


@dataclass
class _Run:
    version: str
    reported: str = "?"
    commit: str = "?"
    timings: dict[str, float] = field(default_factory=dict)
    outcome: str = "started"
    logs: Path | None = None


_RUNS: list[_Run] = []


def pytest_configure(config: pytest.Config) -> None:
    install_signal_handlers()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


def _version_params() -> list[object]:
    return [pytest.param(v, id=f"kafka-{v}", marks=pytest.mark.integration) for v in KAFKA_VERSIONS]


@pytest.fixture(scope="session", params=_version_params())
def kafka_env(request: pytest.FixtureRequest) -> Iterator[KafkaEnvironment]:
    """A running KRaft broker and a 2-worker Connect cluster of one pinned Kafka version."""
    version: str = request.param
    run = _Run(version)
    _RUNS.append(run)
    try:
        env = start_environment(version)
    except HarnessError as exc:
        run.outcome = "failed to start"
        pytest.fail(str(exc), pytrace=False)
    run.timings = env.timings
    run.reported = str(env.server_info.get("version", "?"))
    run.commit = str(env.server_info.get("commit", "?"))
    failed_before = request.session.testsfailed
    tests_started = time.monotonic()
    yield env
    env.timings["tests"] = time.monotonic() - tests_started
    failed = request.session.testsfailed > failed_before
    problems, saved = env.close(keep_logs=failed, reason="a test failed" if failed else "")
    run.logs = saved
    run.outcome = "tests failed" if failed else "ok"
    if problems:
        run.outcome = "left behind: " + "; ".join(problems)
        pytest.fail(f"Kafka {version} teardown left something behind: {problems}; logs in {saved}", pytrace=False)


@pytest.fixture
def connect(kafka_env: KafkaEnvironment) -> Iterator[ConnectCluster]:
    """The shared 2-worker cluster; after each test, killed workers are restarted and connectors deleted."""
    cluster = kafka_env.connect
    yield cluster
    for i, alive in enumerate(cluster.alive()):
        if not alive:
            cluster.start_worker(i)
    with cluster.rest(0) as rest:
        for name in rest.connectors():
            rest.delete(name)
        wait_until(lambda: rest.connectors() == [], timeout=60, what="all connectors deleted")


@pytest.fixture
def connect_rest(connect: ConnectCluster) -> Iterator[ConnectRest]:
    """REST client for worker 0 of the shared cluster."""
    with connect.rest(0) as rest:
        yield rest


@pytest.fixture
def auth_connect(kafka_env: KafkaEnvironment) -> ConnectCluster:
    """A one-worker Connect cluster behind BasicAuthSecurityRestExtension (started on first use, per version)."""
    try:
        return kafka_env.auth_connect()
    except HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL server (wal_level=logical) on a free loopback port, stopped by PID after the test.

    Request it before ``connect`` so that the connectors are deleted before the database stops."""
    server = PostgresServer()
    try:
        server.start()
    except PostgresError as exc:
        log = server.process.tail() if server.process is not None else ""
        server.close()
        pytest.fail(f"PostgreSQL failed to start: {exc}\n{log}", pytrace=False)
    yield server
    server.close()


@pytest.fixture
def kafka_version(kafka_env: KafkaEnvironment) -> tuple[int, int, int]:
    major, minor, patch = (int(x) for x in kafka_env.version.split("."))
    return (major, minor, patch)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """One summary line per Kafka environment this process ran (tests/session_report.py prints them)."""
    labels = (
        ("fetch", "fetch"),
        ("broker_start", "broker start"),
        ("workers_start", "2 workers start"),
        ("auth_worker_start", "auth worker start"),
        ("tests", "tests"),
        ("stop", "stop"),
    )
    for run in _RUNS:
        phases = ", ".join(f"{label} {run.timings[key]:.1f}s" for key, label in labels if key in run.timings)
        line = (
            f"kafka-{run.version}: workers report version {run.reported} (commit {run.commit}); "
            f"{phases or 'no timings'}; {run.outcome}"
        )
        if run.logs:
            line += f"; logs kept in {run.logs}"
        session_report.add("Apache Kafka integration environments", line)
    _RUNS.clear()
