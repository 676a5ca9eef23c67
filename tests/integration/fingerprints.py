"""The failure fingerprint as a deliberately naive oracle reads it from a real trace, and as the exporter shows it.

Shared by the real-Kafka failure tests (FileStream connectors and Debezium)."""

from __future__ import annotations

from tests.support.scrape import Scrape


def oracle(trace: str) -> tuple[str, str]:
    """(class of the first line, class of the last ``Caused by:``, or the first when there is none)."""
    lines = trace.splitlines()
    first = lines[0].split(":", 1)[0].strip()
    causes = [ln[len("Caused by: ") :].split(":", 1)[0].strip() for ln in lines if ln.startswith("Caused by: ")]
    return first, causes[-1] if causes else first


def fingerprint_of(s: Scrape, connector: str, task: str = "0") -> tuple[str, str] | None:
    found = s.samples("kafka_connect_failure_info", connector=connector, task=task)
    return (found[0][0]["exception"], found[0][0]["root_cause"]) if found else None
