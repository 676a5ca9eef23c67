"""One reading of worker versions for every feature that depends on one (exporter/versions.py)."""

from __future__ import annotations

import pytest

from exporter.versions import HEALTH_ENDPOINT, OFFSETS_API, RESTART_PLAN, KafkaVersion, at_least, kafka_version


@pytest.mark.parametrize(
    ("version", "kafka"),
    [
        ("3.9.2", (3, 9)),
        ("4.0.0-SNAPSHOT", (4, 0)),  # a suffix that is not Confluent's is Kafka's own
        ("0.10.2.1", (0, 10)),
        ("5.0.0", (5, 0)),  # Kafka 5, not Confluent Platform 5: no suffix
        ("5.5.1-ccs", (2, 5)),
        ("6.2.4-ce", (2, 8)),
        ("7.6.0-ccs", (3, 6)),
        ("8.0.0-ce", (4, 0)),
        ("trunk", None),
        ("", None),
        (None, None),
    ],
)
def test_kafka_version(version: str | None, kafka: KafkaVersion | None) -> None:
    assert kafka_version(version) == kafka


@pytest.mark.parametrize(
    ("version", "since", "expected"),
    [
        # The restart plan (KIP-745): Kafka 3.0, Confluent Platform 7.0.
        ("3.0.0", RESTART_PLAN, True),
        ("2.8.2", RESTART_PLAN, False),
        ("7.0.1-ccs", RESTART_PLAN, True),
        ("6.2.4-ce", RESTART_PLAN, False),
        # Offsets (KIP-875): Kafka 3.5, Confluent Platform 7.5; a later major never turns them off.
        ("3.4.1", OFFSETS_API, False),
        ("3.5.0", OFFSETS_API, True),
        ("4.3.1", OFFSETS_API, True),
        ("5.0.0", OFFSETS_API, True),
        ("7.4.0-ccs", OFFSETS_API, False),
        ("7.6.0-ccs", OFFSETS_API, True),
        # GET /health (KIP-1017): Kafka 3.9, Confluent Platform 7.9.
        ("3.8.1", HEALTH_ENDPOINT, False),
        ("3.9.0", HEALTH_ENDPOINT, True),
        ("7.8.0-ccs", HEALTH_ENDPOINT, False),
        ("7.9.0-ccs", HEALTH_ENDPOINT, True),
        ("8.0.0-ce", HEALTH_ENDPOINT, True),
        # Nothing to go by.
        ("garbage", HEALTH_ENDPOINT, None),
        (None, RESTART_PLAN, None),
    ],
)
def test_at_least(version: str | None, since: KafkaVersion, expected: bool | None) -> None:
    assert at_least(version, since) is expected
