"""A simulated Confluent Cloud: ``state`` (no I/O), ``query`` (the Metrics API v2), ``server`` (both APIs over HTTP),
``demo`` (the demo organisation and its story)."""
