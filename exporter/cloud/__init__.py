"""Confluent Cloud managed connectors: Connect API v1 status and Metrics API v2 throughput counters."""

# Load order: exporter.config imports exporter.cloud.config part-way through, after the names that
# exporter.cloud.config takes from it; importing it first here keeps either import order working.
import exporter.config  # noqa: F401
