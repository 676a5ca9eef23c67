"""Self-managed Kafka Connect: REST client, parsers and the per-cluster poller."""
