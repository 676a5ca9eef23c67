"""Source connectors' output read from the brokers: their topics (KIP-558), how those grow, and silent sources."""
