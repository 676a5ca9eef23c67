"""kafka-connect-exporter: Kafka Connect and Confluent Cloud connectors as Prometheus metrics."""

__version__ = "0.1.0"
