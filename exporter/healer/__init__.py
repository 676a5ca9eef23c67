"""Auto-heal: bounded, backed-off restarts of FAILED Kafka Connect connectors and tasks (docs/autoheal.md).

Modules: ``config`` (settings), ``policy`` (the pure decision function), ``client`` (restart requests),
``runner`` (``Healer``: one decision round per new snapshot), ``metrics`` (``collect_autoheal``).
Nothing is imported here: ``exporter.connect.config`` imports ``exporter.healer.config`` and must not pull
in the rest.
"""
