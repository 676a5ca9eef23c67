"""A real CDC connector against a real database: Debezium PostgreSQL 3.6.1.Final on every pinned Kafka version,
against PostgreSQL from Debian's package (tests/integration/kafka/postgres.py).

- A connector whose replication slot was dropped fails outright (its offsets point at WAL the server no longer
  has): the exporter shows the real exception and root-cause classes, and auto-heal restarts it on its backoff
  schedule, never in a storm. (A wrong or rotated password does not fail the task: Debezium retries a connection
  error for ever and Connect says RUNNING, which is the silent-source case.)
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.scrape import Scrape
from tests.support.waiting import eventually_async

from .cli_exporter import exporter, wait_scrape
from .fingerprints import fingerprint_of, oracle
from .kafka.harness import ConnectCluster, KafkaEnvironment
from .kafka.postgres import PostgresServer, debezium_config
from .kafka.rest import ConnectRest
from .watch import FAST, watching

pytestmark = pytest.mark.integration

CDC_USER = "cdc"


async def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    await eventually_async(check, timeout=timeout, what=what, interval=0.5)


SILENT = "kafka_connect_source_silent"
SOURCE_GROWTH = "kafka_connect_source_topic_last_growth_timestamp_seconds"
RECORDS = "kafka_connect_source_topic_records_written_total"
TOPIC_INFO = "kafka_connect_connector_topic_info"
OFFSETS_CHANGED = "kafka_connect_connector_offsets_last_change_timestamp_seconds"


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


def offsets(rest: ConnectRest, name: str) -> list[Any]:
    resp = rest.request("GET", f"/connectors/{name}/offsets")
    return list(resp.json().get("offsets", [])) if resp.status_code == 200 else []


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
    # Streaming must have committed a source offset (a WAL position) first; without one a restart would
    # simply take a new snapshot and create the slot again.
    await eventually(lambda: bool(offsets(connect_rest, name)), 120, "the first committed source offset")
    before = offsets(connect_rest, name)
    postgres.psql("INSERT INTO public.orders (item) VALUES ('streamed')")
    await eventually(lambda: offsets(connect_rest, name) != before, 120, "a streamed change's offset")
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


@dataclass
class Moment:
    """One look at both sides: what Connect said and what the exporter said."""

    mono: float  # time.monotonic() of the look
    connect: str  # connector state / task states
    silent: float | None
    health: str
    idle_silent: float | None
    heartbeat_age: float | None  # seconds since the exporter last saw the heartbeat topic grow

    def line(self, stopped: float) -> str:
        age = "-" if self.heartbeat_age is None else f"{self.heartbeat_age:.0f}s"
        return (
            f"{self.mono - stopped:+6.0f}s  Connect: {self.connect:<17} exporter: silent={self.silent}"
            f" health={self.health:<9} heartbeat grew {age} ago; idle source silent={self.idle_silent}"
        )


def source_exporter_config(path: Path, kafka_env: KafkaEnvironment) -> Path:
    """The exporter with the brokers configured and the source_topics defaults (15 s reads, 5 x 2 s >= 30 s)."""
    config = {
        "clusters": [
            {
                "name": "real",
                "urls": kafka_env.connect.urls,
                "poll_interval": "2s",
                "offsets_interval": "5s",
                "offsets_max_rate": 20,
                "kafka": {"bootstrap_servers": kafka_env.broker.bootstrap, "request_timeout": "5s"},
            }
        ]
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


async def test_database_down_is_a_silent_source_while_connect_says_running_and_clears_when_back(
    postgres: PostgresServer,
    kafka_env: KafkaEnvironment,
    connect: ConnectCluster,
    connect_rest: ConnectRest,
    tmp_path: Path,
) -> None:
    password = prepare(postgres)
    idle_db = PostgresServer()  # a second database that stays up and idle: its source must never be silent
    try:
        idle_db.start()
        idle_password = prepare(idle_db)
        name, idle = "cdc-orders", "cdc-idle"
        connect_rest.create_connector(name, debezium_config(postgres, "orders", user=CDC_USER, password=password))
        connect_rest.create_connector(idle, debezium_config(idle_db, "idle", user=CDC_USER, password=idle_password))
        for c in (name, idle):
            await eventually(lambda c=c: task_states(connect_rest, c) == ["RUNNING"], 180, f"{c} to run")
        heartbeat, data_topic = "__debezium-heartbeat.orders", "orders.public.orders"
        config = source_exporter_config(tmp_path / "exporter.yml", kafka_env)
        with exporter(tmp_path / "exporter.log", config=config) as ex:

            def grown(s: Scrape, c: str, topic: str) -> float | None:
                return s.value(SOURCE_GROWTH, connect_cluster="real", connector=c, topic=topic)

            # Before: the heartbeat topic grows (seen twice by the exporter), both sources are healthy.
            first = wait_scrape(ex, lambda s: grown(s, name, heartbeat) is not None, "the heartbeat to grow", 180)
            g0 = grown(first, name, heartbeat)
            s = wait_scrape(ex, lambda s: (grown(s, name, heartbeat) or 0) > (g0 or 0), "it to grow again", 120)
            assert s.value(SILENT, connector=name, topic=heartbeat) == 0.0
            assert s.value(SILENT, connector=idle, topic="__debezium-heartbeat.idle") == 0.0
            assert ("real", name, data_topic) in {
                (lbl["connect_cluster"], lbl["connector"], lbl["topic"]) for lbl, _ in s.samples(TOPIC_INFO)
            }
            before_rows = s.value(RECORDS, connector=name, topic=data_topic)
            assert before_rows is not None and before_rows >= 2  # the snapshot of the two rows

            timeline: list[Moment] = []
            stopped = time.monotonic() + 3600.0  # set when the database stops

            def lines() -> str:
                return "\n".join(m.line(stopped) for m in timeline)

            def look() -> Moment:
                st = connect_rest.status(name)
                said = f"{st['connector']['state']}/{','.join(t['state'] for t in st['tasks'])}"
                m = ex.scrape()
                g = grown(m, name, heartbeat)
                health = m.label_values("kafka_connect_connector_health", "health", connector=name)
                moment = Moment(
                    time.monotonic(),
                    said,
                    m.value(SILENT, connector=name, topic=heartbeat),
                    ",".join(sorted(health)),
                    m.value(SILENT, connector=idle, topic="__debezium-heartbeat.idle"),
                    None if g is None else time.time() - g,
                )
                timeline.append(moment)
                return moment

            async def until(check: Callable[[Moment], bool], bound: float, what: str) -> Moment:
                deadline = time.monotonic() + bound
                while True:
                    m = look()
                    if check(m):
                        return m
                    if time.monotonic() > deadline:
                        raise AssertionError(f"timed out after {bound:.0f}s waiting for {what}:\n{lines()}")
                    await asyncio.sleep(5)

            for _ in range(2):  # a few looks before the stop
                look()
                await asyncio.sleep(5)
            stopped = time.monotonic()
            postgres.stop()  # the database goes down; Debezium retries for ever
            # The bound at the defaults is about 30 s (20 s flat + one 10 s read): 5x that and more for a busy machine.
            silent = await until(lambda m: m.silent == 1.0, 5 * 60, "the silent-source signal")
            assert silent.health == "degraded", lines()
            detected = silent.mono - stopped
            await asyncio.sleep(30)  # the outage goes on: still silent, Connect still says RUNNING
            down = await until(lambda m: True, 0, "one more look")
            assert down.silent == 1.0 and down.health == "degraded", lines()
            assert all(m.connect == "RUNNING/RUNNING" for m in timeline), lines()  # Connect never knew
            assert all(m.idle_silent == 0.0 for m in timeline), lines()

            postgres.start()  # the database is back on the same port with the same data
            restarted = time.monotonic() - stopped
            cleared = await until(lambda m: m.silent == 0.0 and m.health == "healthy", 5 * 60, "the signal to clear")
            postgres.psql("INSERT INTO public.orders (item) VALUES ('after-1'), ('after-2'), ('after-3')")
            wait_scrape(
                ex,
                lambda s: (s.value(RECORDS, connector=name, topic=data_topic) or 0) >= before_rows + 3,
                "the new rows in the data topic",
                180,
            )
            offsets_moved = wait_scrape(
                ex, lambda s: s.value(OFFSETS_CHANGED, connector=name) is not None, "the source offsets to move", 180
            )
            assert offsets_moved.value(OFFSETS_CHANGED, connector=name) is not None
            assert all(m.idle_silent == 0.0 for m in timeline), lines()
        text = lines()
        print(
            f"\nKafka {kafka_env.version}: database stopped at 0 s, silent signal at {detected:.0f}s, database started"
            f" at {restarted:.0f}s, signal cleared at {cleared.mono - stopped:.0f}s\n{text}"
        )
        (tmp_path.parent / f"cdc-timeline-{kafka_env.version}.txt").write_text(text + "\n", encoding="utf-8")
    finally:
        idle_db.close()
