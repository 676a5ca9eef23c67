"""Confluent Cloud managed connectors: Connect API v1 status and Metrics API v2 throughput counters."""
