"""A real Prometheus server (Debian's /usr/bin/prometheus) for end-to-end tests, and a small client for its HTTP API.

The server scrapes the exporter every second and evaluates a copy of alerts/*.rules.yml every second, with every
``for:`` shortened so alerts go pending and firing within seconds. It listens on a free 127.0.0.1 port, keeps its
TSDB and log in a temporary directory and is stopped by PID (SIGTERM, then SIGKILL) whatever happens.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from tests.support.processes import free_port
from tests.support.waiting import eventually

PROMETHEUS = "/usr/bin/prometheus"
ROOT = Path(__file__).resolve().parents[2]
SCRAPE_INTERVAL = 1.0
SHORT_FOR = "1s"
STOP_GRACE_SECONDS = 10.0

T = TypeVar("T")


class PrometheusError(RuntimeError):
    pass


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL if the test process dies first (PR_SET_PDEATHSIG), so a killed
    pytest never leaves a Prometheus or an exporter behind. Fixture teardown still stops them by PID."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def prometheus_binary() -> str | None:
    found = shutil.which("prometheus")
    if found:
        return found
    return PROMETHEUS if Path(PROMETHEUS).is_file() else None


def documented_job() -> str:
    """The scrape job name users are given: deploy/prometheus/prometheus.yml's, else README's example.

    The e2e Prometheus uses it, so KafkaConnectExporterDown (which selects the exporter's job by name) is
    proven against the configuration we ship, not against a name only the test knows.
    """
    deploy = ROOT / "deploy" / "prometheus" / "prometheus.yml"
    if deploy.is_file():
        jobs = [c["job_name"] for c in yaml.safe_load(deploy.read_text(encoding="utf-8"))["scrape_configs"]]
        named = [j for j in jobs if "kafka-connect" in j]
        if named:
            return str(named[0])
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Prometheus", 1)[1]
    block = section.split("```yaml", 1)[1].split("```", 1)[0]
    return str(yaml.safe_load(block)["scrape_configs"][0]["job_name"])


JOB = documented_job()


def shorten_for(rule_file: Path, dest: Path, duration: str = SHORT_FOR) -> list[str]:
    """Copy a rule file with every ``for:`` set to ``duration``; returns the names of the alerts it holds."""
    doc = yaml.safe_load(rule_file.read_text(encoding="utf-8"))
    names = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                names.append(rule["alert"])
                if "for" in rule:
                    rule["for"] = duration
    dest.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return names


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll ``check`` until it returns something other than None/False (Prometheus' errors count as "not yet")."""
    return eventually(check, what=what, timeout=timeout, interval=interval, ignore=(httpx.HTTPError, PrometheusError))


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    values: list[tuple[float, str]]


class PrometheusServer:
    """``with PrometheusServer(workdir, targets, rule_files) as prom: prom.query(...)``."""

    def __init__(
        self,
        workdir: Path,
        targets: Iterable[str],
        rule_files: Iterable[Path] = (),
        *,
        scrape_interval: float = SCRAPE_INTERVAL,
        scrape_timeout: float | None = None,
    ) -> None:
        """``scrape_interval``/``scrape_timeout``: the tests' 1 s unless a benchmark scrapes large expositions."""
        self.workdir = workdir
        self.scrape_interval = scrape_interval
        self.scrape_timeout = scrape_interval if scrape_timeout is None else scrape_timeout
        self.targets = list(targets)
        self.rule_sources = list(rule_files)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "prometheus.log"
        self.alert_names: list[str] = []
        self._client = httpx.Client(timeout=30.0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        rules = []
        for i, src in enumerate(self.rule_sources):
            dest = self.workdir / f"rules-{i}-{src.name}"
            self.alert_names += shorten_for(src, dest)
            rules.append(str(dest))
        config = {
            "global": {
                "scrape_interval": f"{round(self.scrape_interval * 1000)}ms",  # Prometheus durations are integers
                "scrape_timeout": f"{round(self.scrape_timeout * 1000)}ms",
                "evaluation_interval": f"{round(self.scrape_interval * 1000)}ms",
            },
            "rule_files": rules,
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": self.targets}]}],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    def start(self, timeout: float = 60.0) -> None:
        binary = prometheus_binary()
        if binary is None:
            raise PrometheusError("prometheus not found (install Debian's prometheus package: make tools)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        self.port = free_port()
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=info",
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 (only sets the death signal)
            )

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}")
            return self._client.get(self.url + "/-/ready", timeout=2.0).status_code == 200

        wait_for(ready, timeout, "prometheus to be ready")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        self._client.close()
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def __enter__(self) -> PrometheusServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- HTTP API ----------------------------------------------------------------------------------------

    def _api(self, path: str, params: Mapping[str, Any] | list[tuple[str, Any]]) -> Any:
        resp = self._client.get(self.url + path, params=params)  # type: ignore[arg-type]
        try:
            body = resp.json()
        except ValueError:
            raise PrometheusError(f"{path}: HTTP {resp.status_code}, not JSON: {resp.text[:300]}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[Series]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._api("/api/v1/query", params)
        if data["resultType"] == "scalar":
            return [Series({}, [(float(data["result"][0]), data["result"][1])])]
        return [Series(r["metric"], [(float(r["value"][0]), r["value"][1])]) for r in data["result"]]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self._api("/api/v1/query_range", params)
        return [Series(r["metric"], [(float(t), v) for t, v in r["values"]]) for r in data["result"]]

    def series(self, match: str, start: float, end: float) -> list[dict[str, str]]:
        params = [("match[]", match), ("start", f"{start:.3f}"), ("end", f"{end:.3f}")]
        result: list[dict[str, str]] = self._api("/api/v1/series", params)
        return result

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts pending or firing now: ``{"labels": {...}, "state": "pending"|"firing", ...}``."""
        result: list[dict[str, Any]] = self._api("/api/v1/alerts", {})["alerts"]
        return result

    def rule_health(self) -> list[str]:
        """Rules whose last evaluation failed, as ``name: error``."""
        bad = []
        for group in self._api("/api/v1/rules", {})["groups"]:
            for rule in group["rules"]:
                if rule.get("health") not in ("ok", "unknown"):
                    bad.append(f"{rule['name']}: {rule.get('lastError')}")
        return bad

    def tsdb_status(self) -> dict[str, Any]:
        """``/api/v1/status/tsdb``: head block statistics (``headStats.numSeries``) and cardinality tops."""
        result: dict[str, Any] = self._api("/api/v1/status/tsdb", {})
        return result

    def targets_up(self) -> dict[str, str]:
        """Scrape URL -> health ("up", "down", "unknown") of every active target."""
        data = self._api("/api/v1/targets", {})
        return {t["scrapeUrl"]: t["health"] for t in data["activeTargets"]}


@contextlib.contextmanager
def running_prometheus(workdir: Path, targets: Iterable[str], rule_files: Iterable[Path]) -> Iterator[PrometheusServer]:
    with PrometheusServer(workdir, targets, rule_files) as prom:
        yield prom
