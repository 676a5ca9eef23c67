"""Property tests of every parser of external input: Connect REST bodies, Confluent Cloud API bodies and
headers, the YAML config with its environment overrides, and the web config.

Each property: arbitrary input gives either the parser's typed error or a valid result, never another
exception. Valid results are then rendered and parsed back as Prometheus exposition, so whatever a
worker sends (names, states, ids) cannot break a scrape.
"""

from __future__ import annotations

import contextlib
import string
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.cloud import query as cloud_query
from exporter.cloud import status as cloud_status
from exporter.cloud.http import rate_limit_wait
from exporter.config import apply_env, build_config
from exporter.connect import parse
from exporter.model import ClusterSnapshot, Connector, Plugin, SinkSubscription, SourceKind, Task, Worker
from exporter.settings import ConfigError, read_yaml
from exporter.store import Store
from exporter.transport import error_message, status_message
from exporter.web_security import parse_web_config
from tests.metrics.oracle import SnapshotCollector

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies -------------------------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["RUNNING", "FAILED", "PAUSED", "²", "1" * 5000, "", " 3 ", "-1", "1e3", "\x00"])
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
)


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The right shape most of the time, anything at all otherwise (reaches deep into the parsers)."""
    return st.one_of(value, value, value, json_values)


state = st.sampled_from(["RUNNING", "FAILED", "PAUSED", "UNASSIGNED", "RESTARTING", "STOPPED"]) | st.text(max_size=20)
task = st.fixed_dictionaries(
    {"id": maybe(st.integers(min_value=-2, max_value=50)), "state": maybe(state)},
    optional={"worker_id": maybe(st.text(max_size=20)), "trace": maybe(st.text(max_size=200)), "msg": json_values},
)
status = st.fixed_dictionaries(
    {"connector": maybe(st.fixed_dictionaries({"state": maybe(state)}, optional={"worker_id": json_values}))},
    optional={
        "name": json_values,
        "tasks": maybe(st.lists(maybe(task), max_size=4)),
        "type": maybe(st.sampled_from(["source", "sink", "unknown"]) | st.text(max_size=10)),
    },
)
info = st.fixed_dictionaries(
    {},
    optional={
        "config": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "connector.class": maybe(st.text(max_size=40)),
                    "tasks.max": maybe(st.text(string.digits + " ²-x", max_size=6) | st.integers()),
                    "type": json_values,
                },
            )
        ),
        "type": json_values,
        "tasks": json_values,
    },
)
names = st.text(max_size=40)
expanded = maybe(
    st.dictionaries(
        names,
        maybe(
            st.fixed_dictionaries(
                {"status": maybe(status)},
                optional={"info": maybe(st.none() | info), "id": maybe(st.fixed_dictionaries({"id": json_values}))},
            )
        ),
        max_size=6,
    )
)


# --- exposition check -------------------------------------------------------------------------------------------


def render_ok(
    connectors: tuple[Connector, ...], plugins: tuple[Plugin, ...] = (), kind: SourceKind = SourceKind.CONNECT
) -> None:
    """The parsed result renders as valid exposition without duplicate series."""
    store = Store(expected=["fuzz"])
    store.publish_cluster(
        ClusterSnapshot(
            cluster="fuzz",
            kind=kind,
            taken_at=1.0,
            duration=0.1,
            up=True,
            poll_interval=30.0,
            workers=(Worker(url="http://w:8083", reachable=True, version="3.9.0"),),
            connectors=connectors,
            plugins=plugins,
        )
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(store))
    text = generate_latest(registry).decode("utf-8")
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in seen, f"duplicate series {key}"
            seen.add(key)
    exported = {
        s.labels["connector"]
        for f in text_string_to_metric_families(text)
        if f.name == "kafka_connect_connector_state"
        for s in f.samples
    }
    assert exported == {c.name for c in connectors}


def valid_connector(c: Connector) -> None:
    assert isinstance(c.name, str) and isinstance(c.state, str) and isinstance(c.type, str)
    assert c.tasks_max is None or (isinstance(c.tasks_max, int) and not isinstance(c.tasks_max, bool))
    ids = [t.id for t in c.tasks]
    assert all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
    assert ids == sorted(ids)
    assert all(isinstance(t.state, str) and isinstance(t.worker_id, str) for t in c.tasks)


# --- Connect REST -----------------------------------------------------------------------------------------------


@FUZZ
@given(expanded)
def test_connect_expanded_body(data: Any) -> None:
    try:
        connectors, problems = parse.parse_expanded(data)
    except parse.BadResponse:
        return
    assert all(isinstance(p, str) for p in problems)
    for c in connectors:
        valid_connector(c)
        assert len({t.id for t in c.tasks}) == len(c.tasks)
    assert len({c.name for c in connectors}) == len(connectors)
    render_ok(connectors)


@FUZZ
@given(names, maybe(status), maybe(st.none() | info))
def test_connect_single_connector(name: str, status_body: Any, info_body: Any) -> None:
    try:
        c = parse.parse_connector(name, status_body, info_body)
    except parse.BadResponse:
        return
    valid_connector(c)
    render_ok((c,))


@FUZZ
@given(
    maybe(
        st.fixed_dictionaries(
            {"version": maybe(st.text(max_size=20))},
            optional={"commit": json_values, "kafka_cluster_id": json_values},
        )
    )
)
def test_connect_server_info(data: Any) -> None:
    try:
        version, commit, cluster_id = parse.parse_server_info(data)
    except parse.BadResponse:
        return
    assert isinstance(version, str)
    assert commit is None or isinstance(commit, str)
    assert cluster_id is None or isinstance(cluster_id, str)


@FUZZ
@given(
    maybe(
        st.lists(
            maybe(
                st.fixed_dictionaries(
                    {"class": maybe(st.text(max_size=30))},
                    optional={"type": json_values, "version": json_values},
                )
            ),
            max_size=6,
        )
    ),
    json_values,
)
def test_connect_plugins_and_names(plugins: Any, names_body: Any) -> None:
    try:
        parsed = parse.parse_plugins(plugins)
    except parse.BadResponse:
        parsed = None
    if parsed is not None:
        assert len(set(parsed)) == len(parsed)
        render_ok((), parsed)
    try:
        listed = parse.parse_connector_names(names_body)
    except parse.BadResponse:
        return
    assert all(isinstance(n, str) for n in listed)


@FUZZ
@given(st.binary(max_size=3000) | json_values.map(lambda v: yaml.safe_dump(v).encode()), st.integers(400, 599))
def test_connect_error_bodies(body: bytes, code: int) -> None:
    message = error_message(body, httpx.Response(code).reason_phrase)
    assert isinstance(message, str) and "\n" not in message and len(message) <= 300


# --- Confluent Cloud --------------------------------------------------------------------------------------------


@FUZZ
@given(expanded, st.lists(st.text(max_size=10), max_size=3))
def test_cloud_connect_api_body(data: Any, only: list[str]) -> None:
    try:
        connectors, problems = cloud_status.parse_expanded(data, only)
    except cloud_query.BadResponse:
        return
    assert all(isinstance(p, str) for p in problems)
    for c in connectors:
        valid_connector(c)
        assert len({t.id for t in c.tasks}) == len(c.tasks)
    render_ok(connectors, kind=SourceKind.CLOUD)


point = st.fixed_dictionaries(
    {
        "timestamp": maybe(
            st.datetimes().map(lambda d: d.isoformat() + "Z")
            | st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000Z", "0001-01-01T00:00:00+14:00"])
        ),
        "value": maybe(st.floats() | st.integers()),
    },
    optional={"resource.connector.id": maybe(st.text(max_size=12))},
)
page = maybe(
    st.fixed_dictionaries(
        {
            "data": maybe(
                st.lists(
                    maybe(point | st.fixed_dictionaries({"points": maybe(st.lists(point, max_size=3))})), max_size=5
                )
            )
        },
        optional={
            "meta": maybe(
                st.fixed_dictionaries({"pagination": maybe(st.fixed_dictionaries({"next_page_token": json_values}))})
            )
        },
    )
)


@FUZZ
@given(page)
def test_cloud_metrics_api_pages(data: Any) -> None:
    try:
        points, token, problems = cloud_query.parse_page(data)
    except cloud_query.BadResponse:
        pass
    else:
        assert token is None or (isinstance(token, str) and token)
        assert all(isinstance(p, str) for p in problems)
        for cid, ts, value in points:
            assert isinstance(cid, str) and isinstance(ts, int) and ts % 60 == 0
            assert value >= 0 and value == value and value != float("inf")
    try:
        found, token = cloud_query.parse_descriptors(data)
    except cloud_query.BadResponse:
        return
    assert all(isinstance(n, str) for n in found)


@FUZZ
@given(
    st.binary(max_size=2000) | json_values.map(lambda v: yaml.safe_dump(v).encode()),
    st.integers(100, 599),
    st.lists(
        st.tuples(
            st.sampled_from(["retry-after", "ratelimit-reset", "x-ratelimit-reset", "x-other"]),
            st.text(string.printable.strip(), max_size=40)
            | st.sampled_from(
                ["nan", "inf", "-1", "1e400", "Wed, 21 Oct 2015 07:28:00 GMT", "Mon, 01 Jan 0001 00:00:00"]
            ),
        ),
        max_size=4,
    ),
)
def test_cloud_error_bodies_and_rate_limit_headers(body: bytes, code: int, headers: list[tuple[str, str]]) -> None:
    message = status_message(body, code, "Reason")
    assert message.startswith(f"HTTP {code}: ") and "\n" not in message
    wait = rate_limit_wait(httpx.Headers(headers), now=1_700_000_000.0)
    assert wait is None or (0.0 <= wait < float("inf"))


# --- valid inputs parse, to what they say ----------------------------------------------------------------------
# The properties above accept a BadResponse; these prove the parsers accept every documented shape and read
# the values in it, so a parser that rejected everything (or dropped a field) would fail here.

VALID_STATES = ["RUNNING", "FAILED", "PAUSED", "UNASSIGNED", "RESTARTING", "STOPPED"]
words = st.text(min_size=1, max_size=20)
traces = st.none() | st.text(min_size=1, max_size=200)


@st.composite
def connectors(draw: st.DrawFn, cloud: bool = False) -> Connector:
    ids = draw(st.lists(st.integers(0, 50), unique=True, max_size=5))
    tasks = tuple(
        Task(id=i, state=draw(st.sampled_from(VALID_STATES)), worker_id=draw(words), trace=draw(traces))
        for i in sorted(ids)
    )
    name, type_ = draw(words), draw(st.sampled_from(["source", "sink"]))
    sink = None
    if type_ == "sink" and not cloud:
        topic_names = st.from_regex(r"[a-zA-Z0-9._-]{1,20}", fullmatch=True)
        regex = draw(st.none() | topic_names.map(lambda t: t + ".*"))
        group = draw(st.none() | topic_names)
        sink = SinkSubscription(
            group_id=group or f"connect-{name}",
            topics=() if regex else tuple(draw(st.lists(topic_names, max_size=3))),
            topics_regex=regex,
        )
    return Connector(
        name=name,
        type=type_,
        sink=sink,
        class_name=draw(words),
        state=draw(st.sampled_from(VALID_STATES)),
        worker_id=draw(words),
        tasks=tasks,
        tasks_max=draw(st.integers(0, 10_000)),
        trace=draw(traces),
        connector_id=draw(st.from_regex(r"lcc-[a-z0-9]{5,8}", fullmatch=True)) if cloud else None,
    )


def connect_entry(c: Connector) -> dict[str, Any]:
    """``expand=status&expand=info`` for one connector, as a worker sends it (tasks in any order)."""
    conn: dict[str, Any] = {"state": c.state, "worker_id": c.worker_id}
    if c.trace is not None:
        conn["trace"] = c.trace
    tasks = [
        {"id": t.id, "state": t.state, "worker_id": t.worker_id, **({"trace": t.trace} if t.trace else {})}
        for t in reversed(c.tasks)
    ]
    config = {"connector.class": c.class_name, "tasks.max": str(c.tasks_max), "name": c.name}
    if c.sink is not None:
        if c.sink.topics:
            config["topics"] = ", ".join(c.sink.topics)
        if c.sink.topics_regex is not None:
            config["topics.regex"] = c.sink.topics_regex
        if c.sink.group_id != f"connect-{c.name}":
            config["consumer.override.group.id"] = c.sink.group_id
    return {
        "status": {"name": c.name, "connector": conn, "tasks": tasks, "type": c.type},
        "info": {"name": c.name, "config": config, "tasks": [], "type": c.type},
    }


def cloud_entry(c: Connector) -> dict[str, Any]:
    """``expand=id,info,status`` for one managed connector: empty strings where nothing is to say."""
    tasks = [{"id": t.id, "msg": t.trace or "", "state": t.state, "worker_id": t.worker_id} for t in c.tasks]
    conn = {"state": c.state, "worker_id": c.worker_id, "trace": c.trace or ""}
    config = {"connector.class": c.class_name, "tasks.max": str(c.tasks_max), "name": c.name}
    return {
        "id": {"id": c.connector_id, "id_type": "ID"},
        "info": {"name": c.name, "config": config},
        "status": {"name": c.name, "connector": conn, "tasks": tasks, "type": c.type},
    }


def by_name(items: list[Connector]) -> tuple[Connector, ...]:
    unique = {c.name: c for c in items}
    return tuple(sorted(unique.values(), key=lambda c: c.name))


@FUZZ
@given(st.lists(connectors(), max_size=6).map(by_name))
def test_valid_connect_expanded_body_parses_to_what_it_says(expected: tuple[Connector, ...]) -> None:
    connectors_, problems = parse.parse_expanded({c.name: connect_entry(c) for c in expected})
    assert problems == []
    assert connectors_ == expected
    render_ok(connectors_)


@FUZZ
@given(st.lists(connectors(cloud=True), max_size=6).map(by_name))
def test_valid_cloud_connect_api_body_parses_to_what_it_says(expected: tuple[Connector, ...]) -> None:
    connectors_, problems = cloud_status.parse_expanded({c.name: cloud_entry(c) for c in expected})
    assert problems == []
    assert connectors_ == expected
    render_ok(connectors_, kind=SourceKind.CLOUD)


@FUZZ
@given(st.text(max_size=20), st.none() | st.text(max_size=20), st.none() | st.text(max_size=30))
def test_valid_server_info_parses_to_what_it_says(version: str, commit: str | None, cluster_id: str | None) -> None:
    body: dict[str, Any] = {"version": version}
    if commit is not None:
        body["commit"] = commit
    if cluster_id is not None:
        body["kafka_cluster_id"] = cluster_id
    assert parse.parse_server_info(body) == (version, commit, cluster_id)


@FUZZ
@given(
    st.lists(
        st.builds(Plugin, class_name=words, type=st.sampled_from(["source", "sink"]), version=st.none() | words),
        max_size=6,
    ),
    st.lists(words, max_size=6),
)
def test_valid_plugins_and_names_parse_to_what_they_say(plugins: list[Plugin], listed: list[str]) -> None:
    body = [
        {"class": p.class_name, "type": p.type, **({"version": p.version} if p.version is not None else {})}
        for p in plugins
    ]
    expected = tuple(sorted(set(plugins), key=lambda p: (p.class_name, p.type, p.version or "")))
    assert parse.parse_plugins(body + body) == expected  # listed twice (two plugin paths): once each
    assert parse.parse_connector_names(listed) == listed


minutes = st.integers(0, 10**7).map(lambda m: 1_500_000_000 // 60 * 60 + m * 60)
deltas = st.integers(0, 10**12) | st.floats(min_value=0, max_value=1e15, allow_nan=False, allow_infinity=False)


@FUZZ
@given(
    st.lists(st.tuples(st.from_regex(r"lcc-[a-z0-9]{5}", fullmatch=True), minutes, deltas), max_size=8),
    st.booleans(),
    st.booleans(),
    st.none() | words,
)
def test_valid_metrics_api_page_parses_to_what_it_says(
    points: list[tuple[str, int, float]], grouped: bool, millis: bool, token: str | None
) -> None:
    def stamp(ts: int) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S") + (".000Z" if millis else "Z")

    if grouped:
        data = [
            {"resource.connector.id": cid, "points": [{"timestamp": stamp(ts), "value": value}]}
            for cid, ts, value in points
        ]
    else:
        data = [{"timestamp": stamp(ts), "value": value, "resource.connector.id": cid} for cid, ts, value in points]
    body: dict[str, Any] = {"data": data}
    if token is not None:
        body["meta"] = {"pagination": {"next_page_token": token}}
    parsed, next_token, problems = cloud_query.parse_page(body)
    assert problems == []
    assert parsed == [(cid, ts, float(value)) for cid, ts, value in points]
    assert next_token == token


# --- configuration files ----------------------------------------------------------------------------------------

config_like = st.fixed_dictionaries(
    {},
    optional={
        "web": maybe(
            st.fixed_dictionaries(
                {},
                optional={"listen_address": maybe(st.text(max_size=20)), "telemetry_path": json_values},
            )
        ),
        "log": json_values,
        "clusters": maybe(
            st.lists(
                maybe(
                    st.fixed_dictionaries(
                        {
                            "name": maybe(st.text(max_size=10)),
                            "urls": maybe(st.lists(st.text(max_size=30), max_size=3)),
                        },
                        optional={
                            "poll_interval": maybe(st.text(max_size=8) | st.floats()),
                            "max_response_size": json_values,
                            "auth": json_values,
                            "tls": json_values,
                            "headers": json_values,
                            "autoheal": json_values,
                            "kafka_cluster_id": json_values,
                        },
                    )
                ),
                max_size=3,
            )
        ),
        "confluent_cloud": json_values,
    },
)


@FUZZ
@given(
    config_like,
    st.dictionaries(
        st.text(string.ascii_uppercase + "_0123456789", max_size=25).map(lambda s: "KCE_" + s),
        st.text(max_size=20),
        max_size=3,
    ),
)
def test_config_dicts_and_environment(raw: dict[str, Any], environ: dict[str, str]) -> None:
    try:
        apply_env(raw, environ)
        build_config(raw)
    except ConfigError as exc:
        assert str(exc)


@FUZZ
@given(
    st.text(max_size=400) | config_like.map(yaml.safe_dump) | st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
)
def test_config_and_web_config_files(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "file.yml"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        try:
            raw = read_yaml(path)
        except ConfigError as exc:
            assert str(exc).startswith(str(path))
        else:
            with contextlib.suppress(ConfigError):
                build_config(raw)
        try:
            parse_web_config(path)
        except ConfigError as exc:
            assert str(exc).startswith(str(path))


web_like = st.fixed_dictionaries(
    {},
    optional={
        "tls_server_config": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "cert_file": json_values,
                    "key_file": json_values,
                    "client_auth_type": maybe(st.sampled_from(["NoClientCert", "RequireAndVerifyClientCert", "x"])),
                    "client_ca_file": json_values,
                    "min_version": maybe(st.sampled_from(["TLS12", "TLS13", "TLS99"])),
                    "cipher_suites": json_values,
                    "client_allowed_sans": json_values,
                },
            )
        ),
        "basic_auth_users": maybe(st.dictionaries(st.text(max_size=8), maybe(st.text(max_size=70)), max_size=3)),
        "http_server_config": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "headers": maybe(st.dictionaries(st.text(max_size=30), json_values, max_size=3)),
                    "http2": json_values,
                },
            )
        ),
        "rate_limit": maybe(st.fixed_dictionaries({}, optional={"interval": json_values, "burst": json_values})),
    },
)


@FUZZ
@given(web_like)
def test_web_config_structures(data: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "web.yml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        try:
            cfg = parse_web_config(path)
        except ConfigError as exc:
            assert str(exc).startswith(str(path))
            return
        assert all(isinstance(v, str) for v in cfg.http_server_config.headers.values())
