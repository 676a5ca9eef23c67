"""Self-managed Kafka Connect: its config section (``clusters[]``), REST client, parsers and the per-cluster poller."""
