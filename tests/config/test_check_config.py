"""``check-config`` runs the checks ``run`` runs, warns on legal-but-wrong values, and writes durations as in a file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from exporter.checks import review
from exporter.config import load_config
from exporter.settings import format_duration, parse_duration
from tests.support.processes import run_cli


def check_config(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("check-config", *args)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return str(path)


CLUSTER = "clusters:\n  - name: a\n    urls: [http://127.0.0.1:1]\n"


def warnings_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


def test_a_clean_config_passes_without_warnings_and_prints_durations_as_written(tmp_path: Path) -> None:
    result = check_config("--config.file", write(tmp_path, CLUSTER + "    poll_interval: 90s\n"))
    assert result.returncode == 0, result.stderr
    assert warnings_of(result) == []
    dumped = yaml.safe_load(result.stdout)["clusters"][0]
    assert dumped["poll_interval"] == "1m30s"
    assert dumped["request_timeout"] == "10s"
    assert dumped["autoheal"]["grace_period"] == "1m"
    assert dumped["offsets_interval"] == "2m"
    assert "30.0" not in result.stdout and "600.0" not in result.stdout
    # What it prints is a valid configuration that loads back to the same values.
    again = check_config("--config.file", write(tmp_path, result.stdout))
    assert again.returncode == 0, again.stderr
    assert again.stdout == result.stdout


def test_a_sub_second_poll_interval_warns_but_passes() -> None:
    result = check_config("--connect.url", "http://127.0.0.1:1", "--connect.poll-interval", "1ms")
    assert result.returncode == 0, result.stderr
    assert any(w.startswith("warning: clusters[0].poll_interval: 1ms is under 1s") for w in warnings_of(result))


def test_a_request_timeout_not_shorter_than_the_poll_interval_warns_but_passes(tmp_path: Path) -> None:
    result = check_config(
        "--config.file", write(tmp_path, CLUSTER + "    poll_interval: 5s\n    request_timeout: 60s\n")
    )
    assert result.returncode == 0, result.stderr
    assert warnings_of(result) == [
        "warning: clusters[0].request_timeout: 1m is not shorter than the cycle deadline (5s, the poll_interval "
        "unless cycle_timeout is set): a slow request is cut by the deadline, not timed out, and takes the whole "
        "cycle with it"
    ]
    ok = check_config(
        "--config.file",
        write(tmp_path, CLUSTER + "    poll_interval: 5s\n    request_timeout: 60s\n    cycle_timeout: 2m\n"),
    )
    assert warnings_of(ok) == []


@pytest.mark.parametrize(
    ("settings", "warning"),
    [
        ("    offsets_interval: 20m\n", "clusters[0].offsets_interval: 20m is longer than the 15m"),
    ],
)
def test_offsets_that_cannot_all_be_read_within_the_stall_window_warn(
    tmp_path: Path, settings: str, warning: str
) -> None:
    kafka = "    kafka:\n      bootstrap_servers: [127.0.0.1:9092]\n"
    result = check_config("--config.file", write(tmp_path, CLUSTER + settings + kafka))
    assert result.returncode == 0, result.stderr
    assert any(w.startswith("warning: " + warning) for w in warnings_of(result)), result.stderr
    # Without brokers there is no lag, so no sink is ever called stalled: nothing to warn about.
    assert warnings_of(check_config("--config.file", write(tmp_path, CLUSTER + settings))) == []


def test_a_low_offsets_rate_is_no_warning_with_brokers(tmp_path: Path) -> None:
    # The rate bounds only the workers' offsets requests (sources): with brokers, sinks come from their groups.
    kafka = "    kafka:\n      bootstrap_servers: [127.0.0.1:9092]\n"
    result = check_config("--config.file", write(tmp_path, CLUSTER + "    offsets_max_rate: 0.5\n" + kafka))
    assert result.returncode == 0 and warnings_of(result) == [], result.stderr


def test_a_bad_regex_says_why_and_where(tmp_path: Path) -> None:
    result = check_config("--config.file", write(tmp_path, CLUSTER + "    exclude: ['ok-.*', 'orders-(']\n"))
    assert result.returncode == 2
    assert result.stderr.splitlines()[1] == (
        "clusters[0].exclude[1]: 'orders-(' is not a valid regular expression: missing ), unterminated subpattern "
        "at position 7"
    )
    assert "Traceback" not in result.stderr


def test_patterns_print_as_written(tmp_path: Path) -> None:
    result = check_config("--config.file", write(tmp_path, CLUSTER + "    include: ['orders-.*']\n"))
    assert yaml.safe_load(result.stdout)["clusters"][0]["include"] == ["orders-.*"]


def test_run_and_check_config_share_one_review() -> None:
    """The in-process view of the same checks: what check-config prints is what review returns."""
    config = load_config(None, environ={}, quickstart_urls=["http://127.0.0.1:1"], quickstart_interval=0.2)
    found = review(config)
    assert found.errors == ()
    assert [w.split(":")[0] for w in found.warnings] == ["clusters[0].poll_interval", "clusters[0].request_timeout"]
    empty = review(load_config(None, environ={}))
    assert empty.errors and empty.errors[0].startswith("nothing to watch")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(30, "30s"), (0.3, "300ms"), (90, "1m30s"), (3600, "1h"), (5400, "1h30m"), (86400, "1d"), (1.5, "1.5s"),
     (0.001, "1ms"), (61.25, "1m1.25s"), (0.0001, "0.0001s"), (93784.5, "1d2h3m4.5s")],
)  # fmt: skip
def test_durations_format_as_written_and_read_back(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)
