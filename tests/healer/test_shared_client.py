"""The daemon's healer sends through its cluster's one client, and stops before that client is closed."""

from __future__ import annotations

import httpx

from exporter.daemon import Daemon
from simulator.connect.server import SimThread
from tests.support.daemon_harness import quick_config, running_daemon


async def test_restarts_go_through_the_pollers_client_which_closes_after_the_healer(sim: SimThread) -> None:
    sim.cluster.add_connector("orders", "sink", tasks_max=1)
    sim.cluster.fail_task("orders", 0)
    sent: list[str] = []
    open_when_closers_ran: list[bool] = []

    async def record(request: httpx.Request) -> None:
        sent.append(f"{request.method} {request.url.path}")

    def setup(daemon: Daemon) -> None:
        client = daemon.clients["c"]
        client.event_hooks = {**client.event_hooks, "request": [*client.event_hooks["request"], record]}

        async def after_the_healer() -> None:  # closers run in order; the healer's was added first
            open_when_closers_ran.append(not client.is_closed)

        daemon.add_closer(after_the_healer)

    autoheal = {"mode": "enforce", "grace_period": "200ms"}
    async with running_daemon(quick_config({"c": sim.urls}, autoheal=autoheal), setup) as ex:
        await ex.wait_for(lambda _: "POST /connectors/orders/restart" in sent, timeout=15, what="a restart")
        daemon = ex.daemon
    assert "GET /connectors" in sent  # the poller's requests, through the same client
    assert open_when_closers_ran == [True] and daemon.clients["c"].is_closed
