"""End offsets of whole topics from the Kafka brokers (confluent-kafka, blocking: call from a thread).

One metadata request names the topics' partitions, one ``list_offsets`` request gets every partition's end
offset; a topic's end offset is the sum over its partitions (records ever written, as retention never lowers it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from exporter.offsets.brokers import BrokerError, admin_client
from exporter.sourcetopics.config import BrokerSettings


class TopicEnds:
    """The brokers of one Connect cluster, asked about whole topics."""

    def __init__(self, config: BrokerSettings) -> None:
        self.config = config
        self._admin = admin_client(config.client_settings())

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
        from confluent_kafka import KafkaException, TopicPartition
        from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]  # re-exported, not in __all__

        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        if not partitions:
            return {}
        out: dict[str, int] = {}
        try:
            futures = self._admin.list_offsets(
                {TopicPartition(t, n): latest for t, n in partitions}, request_timeout=timeout
            )
            for tp, future in futures.items():
                end = int(future.result(timeout=timeout + 1).offset)
                if end >= 0:
                    out[tp.topic] = out.get(tp.topic, 0) + end
        except KafkaException as exc:
            raise BrokerError("error", str(exc.args[0] if exc.args else exc)) from None
        except TimeoutError:
            raise BrokerError("timeout", f"no answer from the brokers in {timeout:g}s") from None
        return out
