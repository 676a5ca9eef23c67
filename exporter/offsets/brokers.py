"""What the Kafka brokers say about the sinks, with confluent-kafka's admin client (the ``[kafka]`` extra):
the topics and their partition counts, each partition's log start and end offsets, and each sink's consumer
group's committed offsets.

The admin client's calls return futures resolved by librdkafka's own thread, awaited here with
``asyncio.wrap_future``: many groups are read concurrently without a thread each. Only ``list_topics`` blocks
(it is called in a thread). One ``list_offsets`` call per run asks for every partition at once (librdkafka
splits it by partition leader). Failures become a ``BrokerError`` with a reason for the broker error counter;
messages never carry the SASL password (librdkafka does not put it in errors).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from typing import Any, Protocol

from exporter.offsets.config import KafkaConfig
from exporter.offsets.parse import SinkPartition
from exporter.settings import ConfigError


class Brokers(Protocol):
    """What the offsets reader asks the brokers (``BrokerOffsets``; the demo's simulated topics answer the same)."""

    requests: int  # calls made since the start

    def topics(self) -> dict[str, int]:
        """Every topic and its partition count. Blocks: called in a thread."""
        ...

    async def log_offsets(
        self, partitions: Iterable[SinkPartition]
    ) -> tuple[dict[SinkPartition, int], dict[SinkPartition, int]]:
        """Each partition's log start and end offsets."""
        ...

    async def committed(self, group: str) -> dict[SinkPartition, int]:
        """A consumer group's committed offset per partition."""
        ...


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


def admin_client(client_settings: Mapping[str, str]) -> Any:
    """A confluent-kafka ``AdminClient`` for one cluster's brokers (``ConfigError`` without the [kafka] extra)."""
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError:
        raise ConfigError(
            "clusters[].kafka needs confluent-kafka: pip install 'kafka-connect-exporter[kafka]'"
        ) from None
    # librdkafka logs to stderr on its own; connection noise belongs in the error counter, not the log.
    return AdminClient({**client_settings, "log_level": 3, "log.connection.close": False})


class BrokerOffsets:
    """The brokers of one Connect cluster. ``topics`` blocks (call it from a thread); the rest are awaitable."""

    def __init__(self, config: KafkaConfig) -> None:
        self.config = config
        self._admin = admin_client(config.client_settings())
        self.requests = 0  # admin API calls made since the exporter started (list_topics, list_offsets, groups)

    def _failure(self, exc: Exception) -> BrokerError:
        from confluent_kafka import KafkaException

        if isinstance(exc, KafkaException):
            error = exc.args[0] if exc.args else None
            return BrokerError(_reason(error), str(error or exc))
        if isinstance(exc, TimeoutError | asyncio.TimeoutError):
            return BrokerError("timeout", f"no answer from the brokers in {self.config.request_timeout:g}s")
        return BrokerError("error", f"{type(exc).__name__}: {exc}")

    async def _await(self, future: Future[Any]) -> Any:
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.config.request_timeout + 1)
        except Exception as exc:
            raise self._failure(exc) from None

    def topics(self) -> dict[str, int]:
        """Every topic the client may see and its partition count (one metadata request). Blocks."""
        self.requests += 1
        try:
            metadata = self._admin.list_topics(timeout=self.config.request_timeout)
        except Exception as exc:
            raise self._failure(exc) from None
        return {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None}

    async def log_offsets(
        self, partitions: Iterable[SinkPartition]
    ) -> tuple[dict[SinkPartition, int], dict[SinkPartition, int]]:
        """Each partition's log start and end offsets: two ``list_offsets`` calls in flight together."""
        from confluent_kafka import TopicPartition
        from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]  # re-exported, not in __all__

        wanted = sorted(set(partitions))
        if not wanted:
            return {}, {}
        out: list[dict[SinkPartition, int]] = []
        calls = []
        for spec in (OffsetSpec.earliest(), OffsetSpec.latest()):  # type: ignore[no-untyped-call]
            self.requests += 1
            try:
                futures = self._admin.list_offsets(
                    {TopicPartition(t, p): spec for t, p in wanted}, request_timeout=self.config.request_timeout
                )
            except Exception as exc:
                raise self._failure(exc) from None
            calls.append(futures)
        for futures in calls:
            found: dict[SinkPartition, int] = {}
            failed: BrokerError | None = None
            for tp, future in futures.items():
                try:
                    found[(tp.topic, tp.partition)] = int((await self._await(future)).offset)
                except BrokerError as exc:  # one partition (a topic deleted meanwhile) leaves the others' lag
                    failed = failed or exc
            if failed is not None and not found:
                raise failed
            out.append(found)
        return out[0], out[1]

    async def committed(self, group: str) -> dict[SinkPartition, int]:
        """The group's committed offset per partition (partitions without one are left out; an unknown group
        has none)."""
        from confluent_kafka import ConsumerGroupTopicPartitions

        self.requests += 1
        try:
            futures = self._admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group)], request_timeout=self.config.request_timeout
            )
        except Exception as exc:
            raise self._failure(exc) from None
        result = await self._await(futures[group])
        return {
            (tp.topic, tp.partition): int(tp.offset)
            for tp in (result.topic_partitions or ())
            if tp.offset >= 0 and tp.error is None
        }
