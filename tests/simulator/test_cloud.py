"""The simulated Confluent Cloud answers as ccloud-api.md documents (real HTTP over loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from simulator.cloud.server import CloudSimulator, cloud_in_thread
from simulator.cloud.state import CloudState
from tests.support.clocks import ManualClock

T0 = 1_800_000_000 // 60 * 60 + 30  # 30 s into a minute
ENV, LKC = "env-s1", "lkc-s1"
Q = "/v2/metrics/cloud/query"


@pytest.fixture
async def world() -> AsyncIterator[tuple[ManualClock, CloudState, httpx.AsyncClient]]:
    clock = ManualClock(T0)
    state = CloudState(clock=clock.time)
    state.add_connector(ENV, LKC, "a", connector_id="lcc-a", rates={"sent_records": 10}, created_at=T0 - 4 * 3600)
    state.add_connector(ENV, LKC, "b", connector_id="lcc-b", rates={"sent_records": 2}, created_at=T0 - 4 * 3600)
    state.add_connector(ENV, LKC, "c", connector_id="lcc-c", type="sink", state="FAILED", tasks=["SYSTEM_ERROR"])
    async with (
        CloudSimulator(state) as sim,
        httpx.AsyncClient(base_url=sim.url, auth=(state.api_key, state.api_secret)) as client,
    ):
        yield clock, state, client


def body(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "aggregations": [{"metric": "io.confluent.kafka.connect/sent_records"}],
        "filter": {
            "op": "OR",
            "filters": [{"field": "resource.connector.id", "op": "EQ", "value": v} for v in ("lcc-a", "lcc-b")],
        },
        "granularity": "PT1M",
        "group_by": ["resource.connector.id"],
        "intervals": ["now-10m|m/now|m"],
        "limit": 1000,
    }
    b.update(over)
    return b


async def test_expand_map_keyed_by_name_with_comma_list(world: Any) -> None:
    _, _, client = world
    r = await client.get(
        f"/connect/v1/environments/{ENV}/clusters/{LKC}/connectors", params={"expand": "id,info,status"}
    )
    assert r.status_code == 200
    data = r.json()
    assert sorted(data) == ["a", "b", "c"]
    assert data["a"]["id"] == {"id": "lcc-a", "id_type": "ID"}
    assert data["c"]["status"]["connector"] == {"state": "FAILED", "worker_id": "c", "trace": ""}
    assert data["c"]["status"]["tasks"] == [{"id": 0, "msg": "", "state": "SYSTEM_ERROR", "worker_id": "c"}]
    assert (
        data["c"]["status"]["type"] == "sink" and data["a"]["info"]["config"]["kafka.api.secret"] == "****************"
    )
    names = await client.get(f"/connect/v1/environments/{ENV}/clusters/{LKC}/connectors")
    assert names.json() == ["a", "b", "c"]
    only_id = await client.get(
        f"/connect/v1/environments/{ENV}/clusters/{LKC}/connectors", params=[("expand", "id"), ("expand", "status")]
    )
    assert set(only_id.json()["a"]) == {"id", "status"}


async def test_connect_errors_use_the_error_object_shape(world: Any) -> None:
    _, state, client = world
    r = await client.get(f"/connect/v1/environments/env-nope/clusters/{LKC}/connectors")
    assert (r.status_code, r.json()) == (404, {"error": {"code": 404, "message": "account not found"}})
    r = await client.get(f"/connect/v1/environments/{ENV}/clusters/{LKC}/connectors", auth=("x", "y"))
    assert (r.status_code, r.json()) == (401, {"error": {"code": 401, "message": "Unauthorized"}})
    state.forbid("connect")
    r = await client.get(f"/connect/v1/environments/{ENV}/clusters/{LKC}/connectors")
    assert (r.status_code, r.json()) == (403, {"error": {"code": 403, "message": "Forbidden"}})
    state.forbid("connect", False)
    state.fail_next("connect", 500)
    r = await client.get(f"/connect/v1/environments/{ENV}/clusters/{LKC}/connectors")
    assert r.json() == {"error": {"code": 500, "message": "Oops, something went wrong"}}
    r = await client.put(f"/connect/v1/environments/{ENV}/clusters/{LKC}/connectors/zzz/pause")
    assert r.json()["error"]["message"] == "resource not found"
    r = await client.put(f"/connect/v1/environments/{ENV}/clusters/{LKC}/connectors/a/pause")
    assert (r.status_code, r.content) == (202, b"")


async def test_query_points_newest_first_and_only_after_the_publication_delay(world: Any) -> None:
    clock, _, client = world
    r = await client.post(Q, json=body())
    assert r.status_code == 200
    data = r.json()["data"]
    newest_visible = (T0 - 180) // 60 * 60  # a minute appears 3 minutes after it starts
    a = [p for p in data if p["resource.connector.id"] == "lcc-a"]
    assert [p["timestamp"] for p in a][:2] == [_iso(newest_visible), _iso(newest_visible - 60)]
    assert all(p["value"] == 10 for p in a)
    assert data[0]["resource.connector.id"] == "lcc-a"  # groups in lexicographic order
    clock.advance(60)
    r = await client.post(Q, json=body())
    assert r.json()["data"][0]["timestamp"] == _iso(newest_visible + 60)


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def test_pagination_needs_identical_body_and_absolute_intervals(world: Any) -> None:
    _, state, client = world
    state.max_groups_per_page = 1
    start, end = _iso(T0 - 1800).replace(".000", ""), _iso(T0 - 600).replace(".000", "")
    b = body(intervals=[f"{start}/{end}"])
    first = (await client.post(Q, json=b)).json()
    token = first["meta"]["pagination"]["next_page_token"]
    assert {p["resource.connector.id"] for p in first["data"]} == {"lcc-a"}
    second = await client.post(Q, json=b, params={"page_token": token})
    assert {p["resource.connector.id"] for p in second.json()["data"]} == {"lcc-b"}
    assert "next_page_token" not in second.json()["meta"]["pagination"]
    other = await client.post(Q, json=body(intervals=[f"{start}/{end}"], limit=999), params={"page_token": token})
    assert other.status_code == 400 and "differs" in other.json()["errors"][0]["detail"]
    relative = await client.post(Q, json=body(), params={"page_token": token})
    assert relative.status_code == 400 and "now" in relative.json()["errors"][0]["detail"]
    state.page_token_ttl = -1
    expired = await client.post(Q, json=b, params={"page_token": token})
    assert expired.status_code == 400 and "expired" in expired.json()["errors"][0]["detail"]


@pytest.mark.parametrize(
    ("over", "status", "detail"),
    [
        ({"intervals": ["now-7h/now"]}, 400, "at most 6 hours"),
        ({"granularity": "PT2M"}, 400, "granularity"),
        ({"aggregations": []}, 400, "exactly one aggregation"),
        ({"aggregations": [{"metric": "io.confluent.kafka.connect/nope"}]}, 400, "unknown metric"),
        ({"aggregations": [{"metric": "io.confluent.kafka.connect/sent_records", "agg": "MAX"}]}, 400, "requires SUM"),
        ({"limit": 1001}, 400, "between 1 and 1000"),
        ({"filter": {"field": "resource.connector.id", "op": "NEQ", "value": "x"}}, 400, "invalid filter op"),
        ({"filter": None}, 403, "filter on resource.connector.id is required"),
        ({"order_by": [{"metric": "io.confluent.kafka.connect/sent_records"}]}, 400, "only valid for granularity ALL"),
    ],
)
async def test_query_validation_uses_the_errors_array_shape(world: Any, over: Any, status: int, detail: str) -> None:
    _, _, client = world
    r = await client.post(Q, json=body(**over))
    assert r.status_code == status
    assert r.json()["errors"][0]["status"] == str(status) and detail in r.json()["errors"][0]["detail"]


async def test_coarser_granularity_sums_minutes_and_filters_compose(world: Any) -> None:
    _, _, client = world
    flt = {"op": "NOT", "filter": {"field": "resource.connector.id", "op": "EQ", "value": "lcc-b"}}
    r = await client.post(
        Q,
        json=body(
            filter={"op": "AND", "filters": [flt, {"field": "resource.connector.id", "op": "GTE", "value": "lcc-a"}]},
            format="GROUPED",
        ),
    )
    assert r.status_code == 200, r.text
    assert [g["resource.connector.id"] for g in r.json()["data"]] == ["lcc-a"]  # lcc-c has no data points
    hour = (T0 - 7200) // 3600 * 3600
    r = await client.post(Q, json=body(granularity="PT1H", intervals=[f"{_iso(hour)}/PT1H"], format="GROUPED"))
    groups = r.json()["data"]
    assert [(g["resource.connector.id"], g["points"][0]["value"]) for g in groups] == [("lcc-a", 600), ("lcc-b", 120)]


async def test_429_carries_two_sets_of_ratelimit_headers_and_no_body(world: Any) -> None:
    _, state, client = world
    state.rate_limits["metrics"] = 2
    codes = [(await client.post(Q, json=body())).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = await client.post(Q, json=body())
    assert r.headers.get_list("rateLimit-reset") == ["60", "60"]
    assert r.headers.get_list("rateLimit-limit") == ["2", "120"] and r.content == b""
    state.rate_limits["connect"] = 0
    r = await client.get(f"/connect/v1/environments/{ENV}/clusters/{LKC}/connectors")
    assert r.status_code == 429 and r.headers["Retry-After"] and r.headers["X-RateLimit-Reset"]


async def test_descriptors_are_paged(world: Any) -> None:
    _, _, client = world
    r = await client.get("/v2/metrics/cloud/descriptors/metrics", params={"resource_type": "connector", "page_size": 3})
    page = r.json()
    assert len(page["data"]) == 3 and page["links"] is None
    token = page["meta"]["pagination"]["next_page_token"]
    rest = await client.get(
        "/v2/metrics/cloud/descriptors/metrics",
        params={"resource_type": "connector", "page_size": 3, "page_token": token},
    )
    names = {d["name"] for d in page["data"] + rest.json()["data"]}
    assert len(names) == 5 and all(d["type"] == "COUNTER_INT64" for d in rest.json()["data"])


def test_cloud_in_thread_serves_sync_callers() -> None:
    state = CloudState()
    state.add_connector(ENV, LKC, "x")
    with cloud_in_thread(state) as sim:
        r = httpx.get(
            f"{sim.url}/connect/v1/environments/{ENV}/clusters/{LKC}/connectors", auth=(state.api_key, state.api_secret)
        )
        assert r.json() == ["x"]
        assert sim.url.startswith("http://127.0.0.1:")


# -- restart, consumer lag, minutes that grow ------------------------------------------------------------------

CONNECTORS = f"/connect/v1/environments/{ENV}/clusters/{LKC}/connectors"
LAG = "io.confluent.kafka.server/consumer_lag_offsets"


async def _status(client: httpx.AsyncClient, name: str) -> tuple[str, list[str]]:
    s = (await client.get(f"{CONNECTORS}/{name}/status")).json()
    return s["connector"]["state"], [t["state"] for t in s["tasks"]]


async def test_restart_answers_202_then_restarting_then_running_or_failing_again(world: Any) -> None:
    clock, state, client = world
    r = await client.post(f"{CONNECTORS}/c/restart")
    assert (r.status_code, r.content) == (202, b"")
    assert await _status(client, "c") == ("RESTARTING", ["RESTARTING"])
    clock.advance(state.restart_delay)
    assert await _status(client, "c") == ("RUNNING", ["RUNNING"])

    state.set_state(ENV, LKC, "c", "FAILED", tasks=[("SYSTEM_ERROR", "Internal error")], trace="Task failed")
    state.fail_after_restart(ENV, LKC, "c")
    assert (await client.post(f"{CONNECTORS}/c/restart")).status_code == 202
    clock.advance(state.restart_delay)
    s = (await client.get(f"{CONNECTORS}/c/status")).json()
    assert s["connector"] == {"state": "FAILED", "worker_id": "c", "trace": "Task failed"}
    assert s["tasks"][0]["state"] == "SYSTEM_ERROR" and s["tasks"][0]["msg"] == "Internal error"

    r = await client.post(f"{CONNECTORS}/zzz/restart")
    assert (r.status_code, r.json()) == (404, {"error": {"code": 404, "message": "resource not found"}})
    state.restart_status = 405  # an account without the Preview endpoint (assumed)
    r = await client.post(f"{CONNECTORS}/c/restart")
    assert (r.status_code, r.json()["error"]["code"]) == (405, 405)


def lag_body(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "aggregations": [{"metric": LAG}],
        "filter": {
            "op": "AND",
            "filters": [
                {"field": "resource.kafka.id", "op": "EQ", "value": LKC},
                {"field": "metric.consumer_group_id", "op": "EQ", "value": "connect-lcc-c"},
            ],
        },
        "granularity": "PT1M",
        "group_by": ["metric.consumer_group_id", "metric.topic"],
        "intervals": ["now-5m|m/now|m"],
        "limit": 1000,
    }
    b.update(over)
    return b


async def test_consumer_lag_offsets_sums_partitions_per_group_and_topic(world: Any) -> None:
    _, state, client = world
    state.set_lag(LKC, "connect-lcc-c", "orders", 0, 30, since=T0 - 3600)
    state.set_lag(LKC, "connect-lcc-c", "orders", 1, 12, since=T0 - 3600)
    state.set_lag(LKC, "connect-lcc-c", "audit", 0, 5, since=T0 - 3600)
    state.set_lag(LKC, "connect-lcc-x", "orders", 0, 999, since=T0 - 3600)  # another group: filtered out
    r = await client.post(Q, json=lag_body())
    assert r.status_code == 200, r.text
    newest = {}
    for p in r.json()["data"]:
        newest.setdefault((p["metric.consumer_group_id"], p["metric.topic"]), p["value"])
    assert newest == {("connect-lcc-c", "audit"): 5, ("connect-lcc-c", "orders"): 42}
    by_partition = await client.post(Q, json=lag_body(group_by=["metric.topic", "metric.partition"]))
    assert {(p["metric.topic"], p["metric.partition"], p["value"]) for p in by_partition.json()["data"]} == {
        ("audit", "0", 5),
        ("orders", "0", 30),
        ("orders", "1", 12),
    }
    no_cluster = lag_body(filter={"field": "metric.consumer_group_id", "op": "EQ", "value": "connect-lcc-c"})
    r = await client.post(Q, json=no_cluster)
    assert r.status_code == 403 and "resource.kafka.id" in r.json()["errors"][0]["detail"]
    r = await client.post(Q, json=lag_body(group_by=["resource.connector.id"]))
    assert r.status_code == 400
    state.lag_forbidden.add(LKC)
    r = await client.post(Q, json=lag_body())
    assert r.status_code == 403 and r.json()["errors"][0]["status"] == "403"


async def test_a_minute_grows_after_it_is_first_published(world: Any) -> None:
    clock, state, client = world
    state.late_share, state.late_after = 0.3, 120.0
    minute = (T0 - 180) // 60 * 60  # just published

    async def value() -> float:
        data = (await client.post(Q, json=body())).json()["data"]
        ours = [p for p in data if p["resource.connector.id"] == "lcc-a" and p["timestamp"] == _iso(minute)]
        return float(ours[0]["value"])

    assert await value() == 7  # 70 % of 10 at first
    clock.advance(60)
    assert await value() == 7
    clock.advance(60)
    assert await value() == 10  # complete late_after seconds after publication
