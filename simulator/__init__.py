"""Simulators that stand in for real services in fast tests, benchmarks and the demo, over real HTTP.

``connect``: a Kafka Connect cluster in distributed mode (``state``, ``rest``, ``server``, and the demo's
``scenario``); ``cloud``: Confluent Cloud's Connect API v1 and Metrics API v2 (``state``, ``query``,
``server``, and the ``demo`` organisation). Shared by both: the simulated ``connector``, the ``faults`` a
test injects and ``background`` (serving from a thread). ``python -m simulator`` serves a Connect cluster.
"""
