"""An operator's mistakes, as a new user makes them: each gets one clear line and an exit code, never a traceback.

Real processes (``python -m exporter``), real sockets and files; the missing ``[kafka]`` extra is a
``sitecustomize`` on PYTHONPATH that makes ``import confluent_kafka`` fail in the child only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from simulator.connect.server import SimThread
from tests.support.processes import ROOT, free_port, run_cli
from tests.support.waiting import eventually

BLOCK_KAFKA = """\
import sys


class _NoConfluentKafka:
    def find_spec(self, name, path=None, target=None):
        if name == "confluent_kafka" or name.startswith("confluent_kafka."):
            raise ImportError(f"No module named {name!r}")
        return None


sys.meta_path.insert(0, _NoConfluentKafka())
"""


def exporter(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=env, timeout=timeout)


def assert_one_clear_line(result: subprocess.CompletedProcess[str], code: int, line: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert line in result.stderr, output
    assert "Traceback" not in output and "raised an exception" not in output and "CancelledError" not in output


@contextmanager
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_run_on_a_taken_port_says_so_in_one_line_before_any_job_runs() -> None:
    unused = free_port()  # nothing listens: a job that ran would log a failed poll
    with taken_port() as port:
        result = exporter("--web.listen-address", f"127.0.0.1:{port}", "--connect.url", f"http://127.0.0.1:{unused}")
    assert_one_clear_line(
        result, 1, f"kafka-connect-exporter: cannot listen on 127.0.0.1:{port}: address already in use"
    )
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"kafka-connect-exporter: cannot listen on 127.0.0.1:{port}: address already in use"
    ]


def test_a_second_demo_on_the_same_port_suggests_another_address() -> None:
    with taken_port() as port:
        result = exporter("demo", "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "error")
    assert_one_clear_line(result, 1, f"cannot listen on 127.0.0.1:{port}: address already in use")
    assert f"--web.listen-address 127.0.0.1:{port + 1}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.fixture
def without_kafka_extra(tmp_path: Path) -> dict[str, str]:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(BLOCK_KAFKA)
    return {"PYTHONPATH": str(shim)}


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_brokers_without_the_kafka_extra_fail_check_config_and_run_alike(
    tmp_path: Path, without_kafka_extra: dict[str, str], command: str
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        f"clusters:\n  - name: a\n    urls: [http://127.0.0.1:{free_port()}]\n"
        "    kafka:\n      bootstrap_servers: [127.0.0.1:9092]\n"
    )
    listen = ["--web.listen-address", f"127.0.0.1:{free_port()}"]
    result = exporter(command, "--config.file", str(config), *listen, env=without_kafka_extra)
    assert_one_clear_line(
        result, 2, "clusters[].kafka needs confluent-kafka: pip install 'kafka-connect-exporter[kafka]'"
    )


def test_the_shim_blocks_only_confluent_kafka(without_kafka_extra: dict[str, str]) -> None:
    """The stand-in for a missing extra does what it says, and no more."""
    probe = "import yaml\ntry:\n    import confluent_kafka\nexcept ImportError:\n    print('blocked')\n"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, **without_kafka_extra},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == "blocked", result.stderr


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_an_empty_config_fails_check_config_as_it_fails_run(tmp_path: Path, command: str) -> None:
    config = tmp_path / "empty.yml"
    config.write_text("{}\n")
    result = exporter(command, "--config.file", str(config))
    assert_one_clear_line(result, 2, "nothing to watch")


def _cluster_with(extra: str) -> str:
    return f"clusters:\n  - name: a\n    urls: [http://127.0.0.1:{free_port()}]\n{extra}"


@pytest.mark.parametrize(
    ("what", "make", "line"),
    [
        ("config file is a directory", lambda d: ["--config.file", str(d)], ": cannot read: Is a directory"),
        ("config file is missing", lambda d: ["--config.file", str(d / "nope.yml")], "No such file or directory"),
        ("web config is a directory", lambda d: ["--connect.url", "http://127.0.0.1:1", "--web.config.file", str(d)],
         "web.config_file: "),
        ("CA file is not a certificate", "tls", "clusters[0].tls: cannot load the CA file or client certificate"),
        ("password file is a directory", "password", "clusters[0].auth.basic: password_file: cannot read"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", ["check-config", "run"])
def test_unreadable_files_are_named_in_one_line(
    tmp_path: Path, what: str, make: object, line: str, command: str
) -> None:
    if make == "tls":
        ca = tmp_path / "ca.pem"
        ca.write_text("not a certificate\n")
        (tmp_path / "c.yml").write_text(_cluster_with(f"    tls:\n      ca_file: {ca}\n"))
        args = ["--config.file", str(tmp_path / "c.yml")]
    elif make == "password":
        (tmp_path / "c.yml").write_text(
            _cluster_with(f"    auth:\n      basic:\n        username: u\n        password_file: {tmp_path}\n")
        )
        args = ["--config.file", str(tmp_path / "c.yml")]
    else:
        args = make(tmp_path)  # type: ignore[operator]
    result = exporter(command, *args, "--web.listen-address", f"127.0.0.1:{free_port()}")
    assert_one_clear_line(result, 2, line)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--connect.poll-interval", "5x", "--connect.url", "http://127.0.0.1:1"], "invalid duration '5x'"),
        (["--web.listen-address", "nowhere", "--connect.url", "http://127.0.0.1:1"], "'nowhere' is not host:port"),
        (["--log.level", "loud"], "invalid choice: 'loud'"),
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        (["demo", "--autoheal.mode", "sometimes"], "invalid choice: 'sometimes'"),
        (["check-config", "--autoheal.mode", "dry-run"], "--autoheal.*: these flags apply to clusters given with"),
    ],
)
def test_bad_flags_get_an_error_line_and_exit_2(args: list[str], line: str) -> None:
    assert_one_clear_line(exporter(*args), 2, line)


def test_demo_help_lists_the_demos_own_flags() -> None:
    result = exporter("demo", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: kafka-connect-exporter demo")
    for flag in ("--autoheal.mode", "--web.listen-address", "--no-worker-loss", "python -m simulator"):
        assert flag in result.stdout
    assert "--ccloud.cluster" not in result.stdout  # the general flags are not the demo's


# --- signals at any moment -------------------------------------------------------------------------------------


def _offsets_requests(sim: SimThread) -> int:
    return sum(1 for r in sim.requests() if r.path.endswith("/offsets"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_offsets_job_runs_logs_no_exception(tmp_path: Path, sim: SimThread, sig: int) -> None:
    for i in range(30):
        sim.cluster.add_connector(f"sink-{i}", "sink")
    config = tmp_path / "c.yml"
    # One offsets request a second for 30 connectors: the offsets run lasts far longer than the test waits.
    config.write_text(
        "clusters:\n  - name: prod\n    urls: [" + ", ".join(sim.urls) + "]\n    poll_interval: 1s\n"
        "    request_timeout: 500ms\n    offsets_interval: 2m\n    offsets_max_rate: 1\n"
    )
    port = free_port()
    log_path = tmp_path / "exporter.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter",
                "--config.file",
                str(config),
                "--web.listen-address",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        eventually(
            lambda: _offsets_requests(sim) >= 2,
            what="an offsets run under way",
            timeout=60,
            describe=log_path.read_text,
        )
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        proc.send_signal(sig)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    output = log_path.read_text()
    assert _offsets_requests(sim) < 30, "the offsets run had ended before the signal"
    assert code == 0, output
    assert "Traceback" not in output and "raised an exception" not in output and "CancelledError" not in output
    assert '"event": "stopped"' in output
