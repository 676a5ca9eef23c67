"""The KIP-875 ``ConnectorOffsets`` body (the Connect REST reference): ``{"offsets": [{"partition": {…},
"offset": {…}|null}]}``. Sink partitions are keyed ``kafka_topic``/``kafka_partition`` with ``kafka_offset``;
source partitions and offsets are whatever the connector defines, so they are digested, never interpreted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from exporter.connect.parse import BadResponse

SinkPartition = tuple[str, int]  # (topic, partition)


@dataclass(frozen=True, slots=True)
class ParsedOffsets:
    partitions: int
    digest: bytes  # equal digests: the same offsets
    sink: dict[SinkPartition, int]  # committed offset per partition (sinks; null offsets left out)


def parse_offsets(data: Any, *, sink: bool) -> ParsedOffsets:
    if not isinstance(data, dict) or not isinstance(data.get("offsets"), list):
        raise BadResponse('expected {"offsets": [...]}')
    entries = data["offsets"]
    committed: dict[SinkPartition, int] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("partition"), dict):
            raise BadResponse("an offsets entry without a partition map")
        if not sink:
            continue
        partition, offset = entry["partition"], entry.get("offset")
        topic, number = partition.get("kafka_topic"), partition.get("kafka_partition")
        if not isinstance(topic, str) or not isinstance(number, int) or isinstance(number, bool):
            raise BadResponse("a sink offsets entry without kafka_topic/kafka_partition")
        if offset is None:  # reset partition
            continue
        value = offset.get("kafka_offset") if isinstance(offset, dict) else None
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadResponse("a sink offset without an integer kafka_offset")
        committed[(topic, number)] = value
    # Entry order is not part of the answer's meaning: sort before digesting.
    canonical = "\n".join(sorted(json.dumps(e, sort_keys=True, separators=(",", ":")) for e in entries)).encode()
    return ParsedOffsets(len(entries), hashlib.blake2b(canonical, digest_size=16).digest(), committed)
