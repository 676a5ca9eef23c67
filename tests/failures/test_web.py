"""The fleet view (a status-page section): counts by health, worst first, fingerprints, a bounded timeline."""

from __future__ import annotations

from types import MappingProxyType

from exporter.failures.reading import ClusterFailures, Failure, FailuresReading, Transition
from exporter.failures.web import TIMELINE_ROWS, failures_section
from exporter.healer.policy import TargetKey
from exporter.healer.reading import ClusterHealReading, HealerReading
from exporter.healer.web import autoheal_section
from exporter.model import ClusterSnapshot, SourceKind
from exporter.store import View
from tests.failures.connectors import conn


def view() -> View:
    snap = ClusterSnapshot(
        cluster="prod",
        kind=SourceKind.CONNECT,
        taken_at=1_700_000_000.0,
        duration=0.1,
        up=True,
        poll_interval=30.0,
        connectors=(
            conn("a-ok", "RUNNING", "RUNNING"),
            conn("b-degraded", "RUNNING", "RUNNING", "FAILED"),
            conn("c-paused", "PAUSED", "RUNNING"),
            conn("d-failed", "FAILED", "FAILED"),
            conn("e-<script>", "RUNNING", "RUNNING", tasks_max=3),
        ),
    )
    failures = (
        Failure("b-degraded", 1, "FAILED", "org.x.ConnectException", "java.sql.SQLException", "boom <b>", 1.0, "w:1"),
        Failure("d-failed", None, "FAILED", "org.x.ConfigException", "org.x.ConfigException", "bad", 2.0, "w:1"),
    )
    timeline = tuple(
        Transition(
            float(i), "prod", "b-degraded", 1, "RUNNING" if i % 2 else "FAILED", "FAILED" if i % 2 else "RUNNING"
        )
        for i in range(TIMELINE_ROWS + 30)
    )
    reading = FailuresReading(MappingProxyType({"prod": ClusterFailures(failures, MappingProxyType({}), timeline)}))
    healer = HealerReading(
        MappingProxyType(
            {
                "prod": ClusterHealReading(
                    mode="enforce",
                    scope="cluster",
                    restarts=MappingProxyType(
                        {("b-degraded", "task", "accepted"): 3, ("b-degraded", "task", "error"): 1}
                    ),
                    skipped=MappingProxyType({TargetKey("d-failed"): "config-exception"}),
                    last_restart=MappingProxyType({TargetKey("b-degraded", 1): 1_700_000_000.0}),
                )
            }
        )
    )
    return View(
        generation=1,
        started_at=0.0,
        expected=("prod",),
        clusters=MappingProxyType({"prod": snap}),
        readings=MappingProxyType({FailuresReading: reading, HealerReading: healer}),
    )


def test_counts_by_health_then_failed_then_degraded_first() -> None:
    page = failures_section(view())
    counts = page[page.index("<th>healthy</th>") : page.index("</table>")]
    # healthy, degraded, failed, paused, stopped, unknown
    assert "<tr><td>1</td><td>2</td><td>1</td><td>1</td><td>0</td><td>0</td></tr>" in counts
    order = [page.index(n) for n in ("d-failed", "b-degraded", "e-&lt;script&gt;", "c-paused")]
    assert order == sorted(order)
    assert "a-ok</td>" not in page  # healthy connectors are only counted
    assert "<script>" not in page.replace("<script>function fleetFilter", "")  # names are escaped
    assert 'data-health="failed"' in page and "fleetFilter()" in page  # filterable by text and health


def test_rows_show_fingerprint_failed_since_restarts_last_restart_and_skip_rule() -> None:
    page = failures_section(view())
    row = page[page.index("<td>b-degraded</td>") :].split("</tr>")[0]
    assert "ConnectException ← SQLException" in row and "boom &lt;b&gt;" in row
    assert "1970-01-01 00:00:01" in row  # failed since
    assert "<td>3</td>" in row  # accepted restarts only
    assert "2023-11-14 22:13:20" in row  # last restart
    failed = page[page.index("<td>d-failed</td>") :].split("</tr>")[0]
    assert "config-exception" in failed


def test_timeline_is_bounded_newest_first() -> None:
    page = failures_section(view())
    timeline = page[page.index("Last state transitions") :]
    assert timeline.count("<tr>") == TIMELINE_ROWS + 1  # header + rows
    assert timeline.index("00:01:19") < timeline.index("00:01:18")  # i = 79 first


def test_autoheal_section_names_the_skip_rule() -> None:
    assert "d-failed (config-exception)" in autoheal_section(view())


def test_nothing_before_the_first_poll() -> None:
    assert failures_section(View(generation=0, started_at=0.0, expected=("prod",))) == ""
