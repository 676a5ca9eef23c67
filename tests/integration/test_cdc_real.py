"""A real CDC connector against a real database: Debezium PostgreSQL 3.6.1.Final on every pinned Kafka version,
against PostgreSQL from Debian's package (tests/integration/kafka/postgres.py).

- A connector whose replication slot was dropped fails outright (its offsets point at WAL the server no longer
  has): the exporter shows the real exception and root-cause classes, and auto-heal restarts it on its backoff
  schedule, never in a storm. (A wrong or rotated password does not fail the task: Debezium retries a connection
  error for ever and Connect says RUNNING, which is the silent-source case.)
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest

from .kafka.harness import ConnectCluster
from .kafka.postgres import PostgresServer, debezium_config
from .kafka.rest import ConnectRest
from .test_failures_real import fingerprint_of, oracle
from .watch import FAST, eventually, watching

pytestmark = pytest.mark.integration

CDC_USER = "cdc"


def prepare(pg: PostgresServer) -> str:
    """A replication role for Debezium (its own, so rotating its password leaves the test's admin role alone) and
    the captured table with a few rows. Returns the role's password."""
    password = secrets.token_urlsafe(12)
    pg.psql(
        f"CREATE ROLE {CDC_USER} LOGIN SUPERUSER REPLICATION PASSWORD '{password}';"
        "CREATE TABLE public.orders (id serial PRIMARY KEY, item text NOT NULL);"
        "INSERT INTO public.orders (item) VALUES ('first'), ('second');"
    )
    return password


def tasks(rest: ConnectRest, name: str) -> list[dict[str, Any]]:
    resp = rest.request("GET", f"/connectors/{name}/status")
    return list(resp.json().get("tasks", [])) if resp.status_code == 200 else []


def task_states(rest: ConnectRest, name: str) -> list[str]:
    return [str(t["state"]) for t in tasks(rest, name)]


async def test_dropped_replication_slot_fails_with_the_real_classes_and_autoheal_backs_off(
    postgres: PostgresServer, connect: ConnectCluster, connect_rest: ConnectRest
) -> None:
    password = prepare(postgres)
    name = "cdc-noslot"
    connect_rest.create_connector(name, debezium_config(postgres, "noslot", user=CDC_USER, password=password))
    await eventually(lambda: task_states(connect_rest, name) == ["RUNNING"], 120, "the CDC task to run")
    await eventually(lambda: "noslot_slot" in postgres.replication_slots(), 120, "the replication slot")
    # Someone drops the slot (a DBA cleaning up, a failover to a replica without it): the WAL position the
    # connector's offsets point at is gone, which no restart can fix.
    postgres.drop_replication_slot("noslot_slot")
    await eventually(lambda: task_states(connect_rest, name) == ["FAILED"], 120, "the CDC task to fail")
    trace = str(tasks(connect_rest, name)[0]["trace"])
    assert "no longer available on the server" in trace, trace[:2000]
    expected = oracle(trace)
    assert expected[0] == "io.debezium.DebeziumException", trace[:2000]

    policy = {**FAST, "backoff": {"initial": "2s", "max": "4s", "jitter": 0}, "max_attempts": 50}
    async with watching(connect, policy) as w:
        await eventually(lambda: fingerprint_of(w.scrape(), name) is not None, 60, "the failure fingerprint")
        s = w.scrape()
        assert fingerprint_of(s, name) == expected
        # The exporter's rendering of the classes, not the message (which names LSNs and transaction ids).
        [(info, _)] = s.samples("kafka_connect_failure_info", connector=name, task="0")
        assert "LSN" not in str(info) and "no longer available" not in str(info)
        assert s.label_values("kafka_connect_connector_health", "health", connector=name) == {"failed"}
        # Restarts are tried and fail again. Backed off: each waits at least the initial backoff (2 s) after the
        # previous one however fast the polls come, so a window allows at most one restart per 2 s of it.
        await eventually(lambda: w.restarts(name) >= 2, 90, "two restarts of the still-failing connector")
        started, before = w.rounds, w.restarts(name)
        clock = time.monotonic()
        await w.after(12, rounds=12)
        elapsed, rounds = time.monotonic() - clock, w.rounds - started
        done = w.restarts(name) - before
        assert 1 <= done <= elapsed / 2.0 + 1, (done, elapsed, rounds)
        assert done < rounds  # not one per poll: no storm
        assert fingerprint_of(w.scrape(), name) == expected  # it failed the same way after every restart
        print(f"Kafka {connect.version}: {done:g} restarts in {elapsed:.1f}s over {rounds} polls; {expected}")
