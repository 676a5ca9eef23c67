"""The restart client against simulated workers over real HTTP: every answer class and its consequence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from exporter.config import ClusterConfig
from exporter.connect.client import build_http_client
from exporter.healer.client import RestartClient
from exporter.healer.policy import Outcome, RestartGroup, TargetKey
from simulator.connect.server import SimConnectServer
from simulator.connect.state import SimCluster
from simulator.faults import Fault

T0, T1, C = TargetKey("orders", 0), TargetKey("orders", 1), TargetKey("orders")


@asynccontextmanager
async def client_for(sim: SimCluster) -> AsyncIterator[tuple[SimConnectServer, RestartClient]]:
    async with SimConnectServer(sim) as server:
        cfg = ClusterConfig(
            name="sim",
            urls=server.urls,
            autoheal={"mode": "enforce", "request_timeout": "300ms"},
        )
        http = build_http_client(cfg)
        try:
            yield server, RestartClient(cfg, http)
        finally:
            await http.aclose()


def _sim(version: str = "3.9.0", workers: int = 2) -> SimCluster:
    sim = SimCluster(version=version, worker_count=workers)
    sim.add_connector("orders", "sink", tasks_max=2)
    return sim


async def test_unreachable_preferred_worker_fails_over_to_the_next() -> None:
    sim = _sim()
    sim.fail_task("orders", 0)
    async with client_for(sim) as (server, client):
        await server.set_fault(0, Fault.refuse())
        sent, unsent = await client.restart(RestartGroup("orders", (T0,), combined=True), server.url(0))
        assert [s.result.outcome for s in sent] == [Outcome.ACCEPTED] and unsent == []
        assert sent[0].answer.url.startswith(server.url(1))
        assert sim.connector("orders").tasks[0].state == "RESTARTING"


async def test_timeout_is_not_resent_elsewhere_and_spends_no_attempt() -> None:
    sim = _sim()
    sim.fail_task("orders", 0)
    async with client_for(sim) as (server, client):
        await server.set_fault(0, Fault.hang(path="/connectors/.*"))
        sent, _ = await client.restart(RestartGroup("orders", (T0,), combined=True), server.url(0))
        assert sent[0].result.outcome is Outcome.ERROR and not sent[0].result.spent
        assert [r.worker for r in server.requests if r.method == "POST"] == [0]  # it may have arrived: no resend


@pytest.mark.parametrize(
    ("fault", "outcome", "spent"),
    [
        (Fault.http_status(409), Outcome.CONFLICT, False),
        (
            Fault.http_status(500, "Request cannot be completed because a rebalance is expected"),
            Outcome.CONFLICT,
            False,
        ),
        (
            Fault.http_status(500, "Request timed out. The worker is currently ensuring membership"),
            Outcome.ERROR,
            False,
        ),
        (Fault.http_status(503), Outcome.ERROR, False),
        (Fault.http_status(500, "Failed to restart"), Outcome.ERROR, True),
        (Fault.unauthorized(), Outcome.ERROR, True),
        (Fault.http_status(404, "HTTP 404 Not Found"), Outcome.ERROR, True),  # a wrong route, not a gone connector
        (Fault.http_status(404, "Unknown connector: orders"), Outcome.NOT_FOUND, False),
        (Fault.http_status(404, "Connector orders not found"), Outcome.NOT_FOUND, False),  # standalone
    ],
)
async def test_answers_are_classified(fault: Fault, outcome: Outcome, spent: bool | int) -> None:
    sim = _sim(workers=1)
    async with client_for(sim) as (server, client):
        await server.set_fault(0, fault)
        sent, _ = await client.restart(RestartGroup("orders", (T0,), combined=True), None)
        assert [(s.result.outcome, s.result.spent) for s in sent] == [(outcome, bool(spent))]
        assert sent[0].answer.status == fault.status


async def test_old_worker_stops_the_group_at_a_conflict() -> None:
    sim = _sim(version="2.8.2", workers=1)
    sim.fail_connector("orders")
    sim.fail_task("orders", 0)
    sim.fail_task("orders", 1)
    async with client_for(sim) as (server, client):
        await server.set_fault(0, Fault.http_status(409, path=r"/connectors/orders/tasks/0/restart"))
        sent, unsent = await client.restart(RestartGroup("orders", (T1, C, T0), combined=False), None)
        assert [(s.result.key, s.result.outcome) for s in sent] == [(C, Outcome.ACCEPTED), (T0, Outcome.CONFLICT)]
        assert unsent == [T1]  # left for the next cycle: a rebalance is under way


async def test_real_404_for_a_deleted_task_and_connector() -> None:
    sim = _sim(version="2.8.2", workers=1)
    async with client_for(sim) as (_server, client):
        sent, _ = await client.restart(RestartGroup("orders", (TargetKey("orders", 7),), combined=False), None)
        assert sent[0].result.outcome is Outcome.NOT_FOUND and not sent[0].result.forget_connector
        assert sent[0].answer.message == "Unknown task: orders-7"
        sim.delete("orders")
        sent, unsent = await client.restart(RestartGroup("orders", (C, T0), combined=False), None)
        assert [(s.result.outcome, s.result.forget_connector) for s in sent] == [(Outcome.NOT_FOUND, True)]
        assert unsent == []


async def test_connector_names_are_percent_encoded() -> None:
    sim = SimCluster(version="3.9.0", worker_count=1)
    name = "orders/eu west?x=1"
    sim.add_connector(name, "sink", tasks_max=1)
    sim.fail_task(name, 0)
    async with client_for(sim) as (server, client):
        sent, _ = await client.restart(RestartGroup(name, (TargetKey(name, 0),), combined=True), None)
        assert sent[0].result.outcome is Outcome.ACCEPTED
        assert [r.path for r in server.requests if r.method == "POST"] == [
            "/connectors/orders%2Feu%20west%3Fx%3D1/restart"
        ]


@pytest.mark.parametrize("name", ["C:\\data\\sink", "50% sample"])
@pytest.mark.parametrize("combined", [True, False])
async def test_a_name_connect_cannot_address_is_one_request_and_not_addressable(name: str, combined: bool) -> None:
    sim = SimCluster(version="3.9.0", worker_count=2)
    sim.add_connector(name, "sink", tasks_max=2)
    sim.fail_task(name, 0)
    sim.fail_task(name, 1)
    keys = (TargetKey(name, 0), TargetKey(name, 1))
    async with client_for(sim) as (server, client):
        sent, unsent = await client.restart(RestartGroup(name, keys, combined=combined), None)
    assert [(s.result.outcome, s.result.spent) for s in sent] == [(Outcome.NOT_ADDRESSABLE, False)] * 2
    assert unsent == []
    posts = [r for r in server.requests if r.method == "POST"]
    assert len(posts) == 1  # the 400 is about the name: not sent for the other task, nor to the other worker
    assert sent[0].answer.status == 400


async def test_a_400_for_an_ordinary_name_stays_an_error() -> None:
    sim = _sim(workers=1)
    sim.fail_task("orders", 0)
    async with client_for(sim) as (server, client):
        await server.set_fault(0, Fault.http_status(400, "bad request", path=".*/restart"))
        sent, _ = await client.restart(RestartGroup("orders", (T0,), combined=True), None)
    assert (sent[0].result.outcome, sent[0].result.spent) == (Outcome.ERROR, True)


async def test_basic_auth_credentials_are_sent() -> None:
    sim = _sim(workers=1)
    sim.fail_task("orders", 0)
    async with SimConnectServer(sim, credentials={"heal": "s3cret-pw"}) as server:
        cfg = ClusterConfig(
            name="sim",
            urls=server.urls,
            auth={"basic": {"username": "heal", "password": "s3cret-pw"}},
            autoheal={"mode": "enforce"},
        )
        http = build_http_client(cfg)
        try:
            sent, _ = await RestartClient(cfg, http).restart(RestartGroup("orders", (T0,), combined=True), None)
        finally:
            await http.aclose()
        assert sent[0].result.outcome is Outcome.ACCEPTED
        assert "s3cret-pw" not in sent[0].answer.describe()
