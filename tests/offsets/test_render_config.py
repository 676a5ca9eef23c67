"""The offsets families as served (checked with prometheus_client's parser), the status-page section, the
config section with its secrets, and the offsets body parser."""

from __future__ import annotations

import time
from types import MappingProxyType

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import build_config
from exporter.connect.parse import BadResponse
from exporter.families import OFFSETS_FAMILIES
from exporter.model import ClusterSnapshot, Connector, SourceKind
from exporter.offsets.metrics import OffsetsRenderer
from exporter.offsets.parse import parse_offsets
from exporter.offsets.reading import ClusterOffsets, ConnectorOffsets, OffsetsReading, OffsetsStatus
from exporter.offsets.web import offsets_section
from exporter.render import family_block
from exporter.settings import ConfigError
from exporter.store import Store

HOSTILE = 'we"ird\\sink\nname'


def reading(now: float) -> OffsetsReading:
    sink = ConnectorOffsets(
        HOSTILE,
        "sink",
        partitions=3,
        read_at=now,
        unchanged_since=now - 1200,
        last_change=now - 1200,
        committed=MappingProxyType({"orders": 4711, 'pay"ments': 5}),
        lag=MappingProxyType({"orders": 12, 'pay"ments': 0}),
    )
    source = ConnectorOffsets("src", "source", partitions=1, read_at=now, unchanged_since=now)
    cluster = ClusterOffsets(
        "prod",
        OffsetsStatus.READING,
        120.0,
        MappingProxyType({HOSTILE: sink, "src": source}),
        errors=MappingProxyType({"http_status": 3}),
        brokers_configured=True,
        brokers_up=False,
        broker_errors=MappingProxyType({"timeout": 2}),
    )
    return OffsetsReading(MappingProxyType({"prod": cluster}))


def test_rendered_families_parse_and_carry_the_reading() -> None:
    store = Store(["prod"])
    store.publish(reading(1.7e9))
    renderer = OffsetsRenderer()
    rendered = renderer.render(store.view)
    assert [fs.family for fs in rendered] == list(OFFSETS_FAMILIES)
    text = b"".join(family_block(fs).header_text + b"".join(fs.samples) for fs in rendered).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    key = (("connect_cluster", "prod"), ("connector", HOSTILE))
    assert samples[("kafka_connect_sink_committed_offsets_total", (*key, ("topic", "orders")))] == 4711
    assert samples[("kafka_connect_sink_committed_offsets_total", (*key, ("topic", 'pay"ments')))] == 5
    assert samples[("kafka_connect_sink_lag_records", (*key, ("topic", "orders")))] == 12
    assert samples[("kafka_connect_connector_offset_partitions", key)] == 3
    assert samples[("kafka_connect_connector_offsets_last_change_timestamp_seconds", key)] == 1.7e9 - 1200
    # absent until a change is seen; sources never get committed or lag series
    src = (("connect_cluster", "prod"), ("connector", "src"))
    assert ("kafka_connect_connector_offsets_last_change_timestamp_seconds", src) not in samples
    assert not [k for k in samples if k[0].startswith("kafka_connect_sink_") and ("connector", "src") in k[1]]
    assert samples[("kafka_connect_kafka_up", (("connect_cluster", "prod"),))] == 0
    assert samples[("kafka_connect_kafka_errors_total", (("connect_cluster", "prod"), ("reason", "timeout")))] == 2
    assert samples[("kafka_connect_kafka_errors_total", (("connect_cluster", "prod"), ("reason", "connect")))] == 0
    assert (
        samples[
            ("kafka_connect_exporter_offsets_errors_total", (("connect_cluster", "prod"), ("reason", "http_status")))
        ]
        == 3
    )
    # Kept until the reading changes: the same bytes objects, not a re-render.
    again = renderer.render(store.view)
    assert all(a.samples[0] is b.samples[0] for a, b in zip(rendered, again, strict=True) if a.samples)


def test_a_connector_deleted_since_the_last_offsets_run_is_not_served() -> None:
    """Offsets are read every few minutes, statuses every poll: the newest snapshot decides who is still there."""

    def snapshot(*names: str) -> ClusterSnapshot:
        connectors = tuple(Connector(n, "sink", None, "RUNNING", "w:1", ()) for n in names)
        return ClusterSnapshot("prod", SourceKind.CONNECT, 1.7e9, 0.1, True, 30.0, connectors=connectors)

    def connectors_served(renderer: OffsetsRenderer, store: Store) -> set[str]:
        text = b"".join(family_block(fs).header_text + b"".join(fs.samples) for fs in renderer.render(store.view))
        return {
            s.labels["connector"]
            for f in text_string_to_metric_families(text.decode())
            for s in f.samples
            if "connector" in s.labels
        }

    store = Store(["prod"])
    store.publish(reading(1.7e9))
    renderer = OffsetsRenderer()
    store.publish_cluster(snapshot(HOSTILE, "src"))
    assert connectors_served(renderer, store) == {HOSTILE, "src"}
    store.publish_cluster(snapshot(HOSTILE))  # "src" deleted; its offsets reading is still the old one
    assert connectors_served(renderer, store) == {HOSTILE}
    store.publish_cluster(snapshot())  # a cycle that saw no connector (or failed) exports none
    assert connectors_served(renderer, store) == set()


def test_status_page_shows_lag_and_how_long_offsets_are_unchanged() -> None:
    store = Store(["prod"])
    store.publish(reading(time.time()))
    page = offsets_section(store.view)
    assert "offsets unchanged for" in page and "<td>12</td>" in page and "<td>20m</td>" in page
    assert HOSTILE not in page and "we&quot;ird" in page  # escaped
    assert "did not answer" in page  # brokers down
    assert offsets_section(Store([]).view) == ""


def config(**cluster: object) -> object:
    raw = {"clusters": [{"name": "c", "urls": ["http://127.0.0.1:8083"], **cluster}]}
    return build_config(raw).clusters[0]


def test_offsets_defaults_and_kafka_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    c = config()
    assert (c.offsets_enabled, c.offsets_interval, c.offsets_max_rate, c.offsets_concurrency, c.kafka) == (
        True,
        120.0,
        5.0,
        2,
        None,
    )
    monkeypatch.setenv("KAFKA_PW", "s3cret")
    c = config(
        kafka={
            "bootstrap_servers": "b1:9092,b2:9092",
            "security_protocol": "SASL_SSL",
            "sasl": {"mechanism": "SCRAM-SHA-512", "username": "exporter", "password_env": "KAFKA_PW"},
        }
    )
    settings = c.kafka.client_settings()  # type: ignore[attr-defined]
    assert settings["bootstrap.servers"] == "b1:9092,b2:9092" and settings["sasl.password"] == "s3cret"
    assert settings["sasl.mechanism"] == "SCRAM-SHA-512" and settings["security.protocol"] == "SASL_SSL"
    assert "s3cret" not in repr(c)
    with pytest.raises(ConfigError, match="sasl"):
        config(kafka={"bootstrap_servers": "b:9092", "security_protocol": "SASL_SSL"})
    with pytest.raises(ConfigError, match="password"):
        config(kafka={"bootstrap_servers": "b:9092", "security_protocol": "SASL_SSL", "sasl": {"username": "u"}})


def test_parse_offsets_shapes() -> None:
    sink = {
        "offsets": [
            {"partition": {"kafka_topic": "a", "kafka_partition": 0}, "offset": {"kafka_offset": 7}},
            {"partition": {"kafka_topic": "a", "kafka_partition": 1}, "offset": None},  # reset
        ]
    }
    parsed = parse_offsets(sink, sink=True)
    assert parsed.partitions == 2 and parsed.sink == {("a", 0): 7}
    source = {"offsets": [{"partition": {"file": "/x"}, "offset": {"position": 3}}]}
    assert parse_offsets(source, sink=False).sink == {}
    assert (
        parse_offsets(source, sink=False).digest
        != parse_offsets({"offsets": [{"partition": {"file": "/x"}, "offset": {"position": 4}}]}, sink=False).digest
    )
    for bad in ({}, {"offsets": {}}, {"offsets": [1]}, {"offsets": [{"partition": {"kafka_topic": "a"}}]}):
        with pytest.raises(BadResponse):
            parse_offsets(bad, sink=True)
