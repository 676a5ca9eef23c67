"""End offsets of whole topics from the Kafka brokers (confluent-kafka, blocking: call from a thread).

One metadata request names the topics' partitions, one ``list_offsets`` request gets every partition's end
offset; a topic's end offset is the sum over its partitions (records ever written, as retention never lowers it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from exporter.offsets.brokers import BrokerError, BrokerOffsets
from exporter.offsets.config import KafkaConfig


class TopicEnds:
    """The brokers of one Connect cluster, asked about whole topics."""

    def __init__(self, config: KafkaConfig) -> None:
        self._partitions = BrokerOffsets(config)  # raises ConfigError without confluent-kafka
        from confluent_kafka.admin import AdminClient

        self.config = config
        settings: dict[str, Any] = {**config.client_settings(), "log_level": 3, "log.connection.close": False}
        self._admin = AdminClient(settings)

    def end_offsets(self, topics: Iterable[str]) -> dict[str, int]:
        """Topic -> sum of its partitions' end offsets; topics the brokers do not know are left out."""
        from confluent_kafka import KafkaException

        wanted = sorted(set(topics))
        if not wanted:
            return {}
        timeout = self.config.request_timeout
        try:
            metadata = self._admin.list_topics(timeout=timeout)
        except KafkaException as exc:
            from confluent_kafka import KafkaError

            error: Any = exc.args[0] if exc.args else None
            code = error.code() if hasattr(error, "code") else None

            reason = "timeout" if code in (KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT) else "connect"
            raise BrokerError(reason, str(error or exc)) from None
        partitions = [
            (topic, number)
            for topic in wanted
            if topic in metadata.topics and metadata.topics[topic].error is None
            for number in metadata.topics[topic].partitions
        ]
        ends = self._partitions.end_offsets(partitions)
        out: dict[str, int] = {}
        for (topic, _), end in ends.items():
            if end >= 0:
                out[topic] = out.get(topic, 0) + end
        return out
