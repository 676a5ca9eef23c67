"""The offsets part of a ``clusters[]`` entry (``offsets_*``) and its ``kafka`` section: how to reach the Kafka
brokers behind a Connect cluster, for the sinks' committed offsets (their consumer groups) and lag.

``kafka`` is optional: without it the exporter reads offsets from the workers only (no
``kafka_connect_sink_lag_records``). Its values map one to one onto librdkafka settings (``client_settings``);
secrets resolve as everywhere else.
"""

from __future__ import annotations

from typing import Literal, Protocol, Self

from pydantic import Field, model_validator

from exporter.settings import CommaList, Duration, StrictModel, TLSConfig, UsernamePassword


class KafkaSasl(UsernamePassword):
    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"


class KafkaConfig(StrictModel):
    bootstrap_servers: CommaList = Field(min_length=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl: KafkaSasl | None = None
    tls: TLSConfig = TLSConfig()
    request_timeout: Duration = 10.0
    # Sinks' consumer groups read at once (one admin request each; librdkafka sends them to each group's
    # coordinator). A run reads every sink's group, so 5,000 sinks take 5,000 / concurrency round trips.
    concurrency: int = Field(default=32, ge=1, le=256)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.security_protocol.startswith("SASL") and self.sasl is None:
            raise ValueError(f"security_protocol {self.security_protocol} needs sasl.username and a password")
        if self.sasl is not None and not self.security_protocol.startswith("SASL"):
            raise ValueError("sasl is set: use security_protocol SASL_SSL (or SASL_PLAINTEXT)")
        return self

    def client_settings(self) -> dict[str, str]:
        """librdkafka settings (secrets included: never log this)."""
        out = {
            "bootstrap.servers": ",".join(self.bootstrap_servers),
            "security.protocol": self.security_protocol,
            "client.id": "kafka-connect-exporter",
        }
        if self.sasl is not None:
            assert self.sasl.password is not None
            out["sasl.mechanism"] = self.sasl.mechanism
            out["sasl.username"] = self.sasl.username
            out["sasl.password"] = self.sasl.password.get_secret_value()
        if self.security_protocol.endswith("SSL"):
            tls = self.tls
            if tls.ca_file is not None:
                out["ssl.ca.location"] = str(tls.ca_file)
            if tls.cert_file is not None and tls.key_file is not None:
                out["ssl.certificate.location"] = str(tls.cert_file)
                out["ssl.key.location"] = str(tls.key_file)
            if tls.key_password is not None:
                out["ssl.key.password"] = tls.key_password.get_secret_value()
            if tls.insecure_skip_verify:
                out["enable.ssl.certificate.verification"] = "false"
                out["ssl.endpoint.identification.algorithm"] = "none"
        return out


class OffsetsSettings(StrictModel):
    """The offsets keys of a ``clusters[]`` entry (``exporter.config.ClusterConfig`` composes them)."""

    # Connector offsets (KIP-875, workers >= 3.5) on their own cadence, spread over the interval, never more
    # than offsets_max_rate requests a second: 5,000 connectors cost the workers a trickle, not a burst.
    offsets_enabled: bool = True
    offsets_interval: Duration = Field(default=120.0, ge=1.0)
    offsets_max_rate: float = Field(default=5.0, gt=0, le=1000)
    offsets_concurrency: int = Field(default=2, ge=1, le=16)
    kafka: KafkaConfig | None = None  # the brokers, for sink lag (needs the [kafka] extra)


class OffsetsCluster(Protocol):
    """What an offsets reader reads of its cluster's configuration (``exporter.config.ClusterConfig`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def urls(self) -> list[str]: ...
    @property
    def request_timeout(self) -> float: ...
    @property
    def offsets_interval(self) -> float: ...
    @property
    def offsets_max_rate(self) -> float: ...
    @property
    def offsets_concurrency(self) -> int: ...
    @property
    def kafka(self) -> KafkaConfig | None: ...
