"""What a worker's version string (``GET /`` ``version``) says about the Kafka it runs, and which REST features
that Kafka has. One place for every version check: the worker probes, the healer and the offsets reader.

Apache Kafka reports its own version ("3.9.2", "4.3.1"). Confluent Platform reports its own with a
``-ccs``/``-ce`` suffix ("7.6.0-ccs"), and each CP line ships one Kafka line: 5.x -> 2.x, 6.0 -> 2.6 (6.1 -> 2.7,
6.2 -> 2.8), 7.x -> 3.x, 8.x -> 4.x. A version without the suffix is Kafka's, whatever its major.
"""

from __future__ import annotations

import re

KafkaVersion = tuple[int, int]  # (major, minor)

# The Kafka version that brought each REST feature we use.
RESTART_PLAN: KafkaVersion = (3, 0)  # POST .../restart?includeTasks&onlyFailed (KIP-745)
OFFSETS_API: KafkaVersion = (3, 5)  # GET /connectors/{c}/offsets (KIP-875)
HEALTH_ENDPOINT: KafkaVersion = (3, 9)  # GET /health (KIP-1017)

_VERSION = re.compile(r"^\s*(\d+)\.(\d+)")
_CONFLUENT = re.compile(r"-(ccs|ce)\b")
# Confluent Platform major -> (Kafka major, what to add to the minor).
_CONFLUENT_LINES = {5: (2, 0), 6: (2, 6), 7: (3, 0), 8: (4, 0)}


def kafka_version(version: str | None) -> KafkaVersion | None:
    """The Kafka (major, minor) a worker of this version runs; None when the string says nothing."""
    m = _VERSION.match(version or "")
    if m is None:
        return None
    major, minor = int(m.group(1)), int(m.group(2))
    if _CONFLUENT.search(version or ""):
        kafka_major, add = _CONFLUENT_LINES.get(major, (major - 4, 0))
        return kafka_major, minor + add
    return major, minor


def at_least(version: str | None, since: KafkaVersion) -> bool | None:
    """Whether a worker of this version runs Kafka ``since`` or later; None when the version says nothing."""
    kafka = kafka_version(version)
    return None if kafka is None else kafka >= since
