"""Benchmarks of kafka-connect-exporter at scale (``make bench``); see docs/performance.md."""
