"""A simulated Kafka Connect cluster: ``state`` (no I/O), ``rest`` (its REST API), ``server`` (HTTP listeners per
worker), ``scenario`` (a seeded story of failures and recoveries)."""
