"""End offsets of the sinks' partitions from the Kafka brokers, with confluent-kafka (the ``[kafka]`` extra).

confluent-kafka is blocking: ``end_offsets`` is called in a thread. One ``list_offsets`` request per run asks for
every partition at once. Failures become a ``BrokerError`` with a reason for the broker error counter; messages
never carry the SASL password (librdkafka does not put it in errors).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from exporter.offsets.config import KafkaConfig
from exporter.offsets.parse import SinkPartition
from exporter.settings import ConfigError


class EndOffsets(Protocol):
    """What the offsets reader asks the brokers: each partition's end offset (blocking; called in a thread)."""

    def end_offsets(self, partitions: Iterable[SinkPartition]) -> dict[SinkPartition, int]: ...


class BrokerError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _reason(error: Any) -> str:
    from confluent_kafka import KafkaError

    code = error.code() if hasattr(error, "code") else None
    if code in (KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT):
        return "timeout"
    if code in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE, KafkaError._SSL):
        return "connect"
    if code in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED):
        return "unauthorized"
    if code in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED):
        return "forbidden"
    return "error"


class BrokerOffsets:
    """The brokers of one Connect cluster; ``end_offsets`` blocks, so call it from a thread."""

    def __init__(self, config: KafkaConfig) -> None:
        try:
            from confluent_kafka.admin import AdminClient
        except ImportError:
            raise ConfigError(
                "clusters[].kafka needs confluent-kafka: pip install 'kafka-connect-exporter[kafka]'"
            ) from None
        self.config = config
        # librdkafka logs to stderr on its own; connection noise belongs in the error counter, not the log.
        settings: dict[str, Any] = {**config.client_settings(), "log_level": 3, "log.connection.close": False}
        self._admin = AdminClient(settings)

    def end_offsets(self, partitions: Iterable[SinkPartition]) -> dict[SinkPartition, int]:
        from confluent_kafka import KafkaException, TopicPartition
        from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]  # re-exported, not in __all__

        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        wanted = {TopicPartition(topic, number): latest for topic, number in sorted(set(partitions))}
        if not wanted:
            return {}
        timeout = self.config.request_timeout
        try:
            futures = self._admin.list_offsets(wanted, request_timeout=timeout)
            out: dict[SinkPartition, int] = {}
            for tp, future in futures.items():
                out[(tp.topic, tp.partition)] = int(future.result(timeout=timeout + 1).offset)
            return out
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            raise BrokerError(_reason(error), str(error or exc)) from None
        except TimeoutError:
            raise BrokerError("timeout", f"no answer from the brokers in {timeout:g}s") from None
