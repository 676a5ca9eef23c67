"""Start and stop a real Apache Kafka broker (KRaft) and real Kafka Connect workers for integration tests.

Everything runs from the Maven Central jars that ``fetch.py`` puts in the cache, with ``java -cp '<libs>/*'``:
one combined broker+controller node, a distributed Connect cluster of two workers, and on demand a second
one-worker Connect cluster behind ``BasicAuthSecurityRestExtension``. All listeners bind to free ports on
127.0.0.1. Readiness is polled, never slept for. Every JVM is stopped by PID (SIGTERM, then SIGKILL after a
bound) from fixture finalizers, ``atexit`` and SIGTERM/SIGHUP handlers; the children also get
PR_SET_PDEATHSIG so they die with the test process even if it is SIGKILLed.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from tests.support.processes import free_port

from . import fetch
from .rest import FILE_SOURCE, ConnectRest, wait_until

REPO_ROOT = Path(__file__).resolve().parents[3]
FAILED_LOGS_DIR = REPO_ROOT / ".cache" / "test-logs"
BASIC_AUTH_EXTENSION = "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension"

# The machine has 2 cores and other engineers run tests too: small heaps, serial GC, C1 only (fast startup).
JVM_COMMON = (
    "-Xms64m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
    "-Djava.net.preferIPv4Stack=true",
)
BROKER_HEAP = "-Xmx512m"
WORKER_HEAP = "-Xmx384m"
STOP_GRACE_SECONDS = 20.0
START_TIMEOUT_SECONDS = 180.0

LOG4J1 = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.reflections=ERROR
"""
LOG4J2 = """\
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
"""


class HarnessError(RuntimeError):
    pass


# -- process bookkeeping ---------------------------------------------------------------------------------

_LIVE: dict[int, JavaProcess] = {}
_LIVE_LOCK = threading.Lock()


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class JavaProcess:
    """One JVM, its log file and its lifecycle. Stdout and stderr both go to ``log_path``.

    Other servers the tests run (PostgreSQL) reuse it with their own stop signal and user."""

    stop_signal: int = signal.SIGTERM

    def popen_user(self) -> tuple[int, int] | None:
        """(uid, gid) to run as; None: this process's user."""
        return None

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        if self.alive():
            raise HarnessError(f"{self.name} already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} starting: {' '.join(self.argv)}\n".encode())
            log.flush()
            # New session: a Ctrl-C in the terminal reaches pytest only, which then stops the JVMs in order.
            run_as = self.popen_user()
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_set_pdeathsig,  # noqa: PLW1509 - only ever called from the main thread
                user=run_as[0] if run_as else None,
                group=run_as[1] if run_as else None,
                cwd=self.log_path.parent if run_as else None,
            )
        with _LIVE_LOCK:
            _LIVE[self.proc.pid] = self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL, no cleanup in the JVM (simulates a crashed worker)."""
        self._signal(signal.SIGKILL)
        self._reap(10.0)

    def terminate(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """``stop_signal`` (SIGTERM), then SIGKILL if the process has not exited after ``grace`` seconds."""
        self._signal(self.stop_signal)
        if not self._reap(grace):
            self._signal(signal.SIGKILL)
            self._reap(10.0)

    def _reap(self, timeout: float) -> bool:
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        with _LIVE_LOCK:
            _LIVE.pop(self.proc.pid, None)
        return True

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])


def stop_all(grace: float = 5.0) -> None:
    """Stop every JVM this process started (last resort: atexit and signal handlers)."""
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
    for p in procs:
        p._signal(p.stop_signal)
    deadline = time.monotonic() + grace
    for p in procs:
        if not p._reap(max(0.0, deadline - time.monotonic())):
            p.kill()


_OPEN_ENVIRONMENTS: list[KafkaEnvironment] = []


def emergency_cleanup() -> None:
    """Interrupted before fixture teardown: stop environments (keeping their logs), then any stray JVM."""
    for env in list(_OPEN_ENVIRONMENTS):
        with contextlib.suppress(Exception):
            env.close(keep_logs=True, reason="interrupted before teardown (signal or exit)")
    stop_all()


atexit.register(emergency_cleanup)
_HANDLERS_INSTALLED: list[bool] = []  # non-empty once installed


def install_signal_handlers() -> None:
    """On SIGTERM/SIGHUP stop the JVMs, then let the previous handler (usually: die) run."""
    if _HANDLERS_INSTALLED or threading.current_thread() is not threading.main_thread():
        return
    _HANDLERS_INSTALLED.append(True)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            emergency_cleanup()
            if callable(previous):
                previous(signum, frame)
            else:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        signal.signal(sig, handler)


# -- ports and probes -------------------------------------------------------------------------------------


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def kafka_api_versions_ok(port: int, timeout: float = 2.0) -> bool:
    """Send a Kafka ApiVersions v0 request; True when the broker answers with error_code 0."""
    client_id = b"kce-harness"
    correlation = 4242
    body = struct.pack(">hhih", 18, 0, correlation, len(client_id)) + client_id
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            head = _recv_exact(s, 4)
            size = struct.unpack(">i", head)[0]
            payload = _recv_exact(s, size)
    except (OSError, struct.error):
        return False
    corr, error_code = struct.unpack(">ih", payload[:6])
    return bool(corr == correlation and error_code == 0)


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return buf


def _write_properties(path: Path, props: dict[str, str]) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()), encoding="utf-8")


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise HarnessError("java is not on PATH (Java 17 is required)")
    return found


def _bind_failed(proc: JavaProcess) -> bool:
    text = proc.tail(400)
    return "Address already in use" in text or "BindException" in text


# -- broker -----------------------------------------------------------------------------------------------


class KafkaBroker:
    """A single KRaft node acting as broker and controller."""

    def __init__(self, version: str, libs: Path, workdir: Path) -> None:
        self.version = version
        self.libs = libs
        self.dir = workdir / "broker"
        self.port = 0
        self.controller_port = 0
        self.process: JavaProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _jvm(self, main: str, *args: str, heap: str = BROKER_HEAP) -> list[str]:
        return [
            _java(),
            heap,
            *JVM_COMMON,
            f"-Dlog4j.configuration=file:{self.dir / 'log4j.properties'}",
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
            "-cp",
            f"{self.libs}/*",
            main,
            *args,
        ]

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        for attempt in range(3):  # a free port can be taken by someone else before the JVM binds it
            self._configure()
            self._format()
            self.process = JavaProcess(
                "broker", self._jvm("kafka.Kafka", str(self.dir / "server.properties")), self.dir / "server.log"
            )
            self.process.start()
            try:
                wait_until(self._ready, timeout=timeout, interval=0.2, what=f"Kafka {self.version} broker")
                return
            except HarnessError:
                if attempt < 2 and _bind_failed(self.process):
                    self.process.terminate(5)
                    continue
                raise

    def _ready(self) -> bool:
        assert self.process is not None
        if not self.process.alive():
            raise HarnessError(
                f"broker exited with {self.process.proc and self.process.proc.returncode}:\n{self.process.tail()}"
            )
        return kafka_api_versions_ok(self.port)

    def _configure(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir / "data", ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port, self.controller_port = free_port(), free_port()
        (self.dir / "log4j.properties").write_text(LOG4J1, encoding="utf-8")
        (self.dir / "log4j2.properties").write_text(LOG4J2, encoding="utf-8")
        _write_properties(
            self.dir / "server.properties",
            {
                "process.roles": "broker,controller",
                "node.id": "1",
                "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
                "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names": "CONTROLLER",
                "inter.broker.listener.name": "PLAINTEXT",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "log.dirs": str(self.dir / "data"),
                "num.partitions": "1",
                # Single node: every internal topic with RF 1 and few partitions (faster to create).
                "offsets.topic.replication.factor": "1",
                "offsets.topic.num.partitions": "1",
                "transaction.state.log.replication.factor": "1",
                "transaction.state.log.min.isr": "1",
                "transaction.state.log.num.partitions": "1",
                "share.coordinator.state.topic.replication.factor": "1",
                "share.coordinator.state.topic.min.isr": "1",
                "group.initial.rebalance.delay.ms": "0",
                "auto.create.topics.enable": "true",
            },
        )

    def _format(self) -> None:
        cluster_id = _kafka_uuid()
        argv = self._jvm(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(self.dir / "server.properties"),
            heap="-Xmx256m",
        )
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        (self.dir / "format.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
        if proc.returncode != 0:
            raise HarnessError(f"kafka-storage format failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")

    def ports(self) -> list[int]:
        return [self.port, self.controller_port]

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        if self.process is not None:
            self.process.terminate(grace)


def _kafka_uuid() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting with '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


# -- Connect ----------------------------------------------------------------------------------------------


@dataclass
class BasicAuth:
    user: str
    password: str = field(repr=False)

    @property
    def pair(self) -> tuple[str, str]:
        return (self.user, self.password)


class ConnectCluster:
    """A distributed Connect cluster (one group.id, its own internal topics) of ``size`` workers."""

    def __init__(
        self,
        broker: KafkaBroker,
        workdir: Path,
        *,
        name: str = "connect",
        size: int = 2,
        basic_auth: BasicAuth | None = None,
        scheduled_rebalance_max_delay_ms: int = 10_000,
    ) -> None:
        self.broker = broker
        self.version = broker.version
        self.name = name
        self.dir = workdir / name
        self.size = size
        self.basic_auth = basic_auth
        self.scheduled_rebalance_max_delay_ms = scheduled_rebalance_max_delay_ms
        self.ports: list[int] = [0] * size
        self.processes: list[JavaProcess | None] = [None] * size

    # -- addresses --
    @property
    def group_id(self) -> str:
        return f"kce-{self.name}"

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.ports]

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def worker_ids(self) -> list[str]:
        """The ``worker_id`` each worker reports in status (``rest.advertised.host.name:port``)."""
        return [f"127.0.0.1:{p}" for p in self.ports]

    @property
    def auth(self) -> tuple[str, str] | None:
        return self.basic_auth.pair if self.basic_auth else None

    def rest(self, worker: int = 0, *, auth: tuple[str, str] | bool | None = True) -> ConnectRest:
        """A REST client for one worker; with ``auth=False`` it sends no credentials even on the auth cluster."""
        creds = self.auth if auth is True else (auth or None)
        return ConnectRest(self.urls[worker], auth=creds)

    # -- lifecycle --
    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "log4j.properties").write_text(LOG4J1, encoding="utf-8")
        (self.dir / "log4j2.properties").write_text(LOG4J2, encoding="utf-8")
        if self.basic_auth:
            self._write_jaas()
        for i in range(self.size):
            self.ports[i] = free_port()
        # Launch all workers first and poll them together: JVM start-up overlaps on the two cores.
        for i in range(self.size):
            self._launch(i)
        for i in range(self.size):
            self._await(i, timeout)

    def _launch(self, i: int) -> None:
        props = self._worker_properties(i)
        _write_properties(self.dir / f"worker-{i}.properties", props)
        argv = [
            _java(),
            WORKER_HEAP,
            *JVM_COMMON,
            f"-Dlog4j.configuration=file:{self.dir / 'log4j.properties'}",
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
        ]
        if self.basic_auth:
            argv.append(f"-Djava.security.auth.login.config={self.dir / 'jaas.conf'}")
        argv += [
            "-cp",
            f"{self.broker.libs}/*",
            "org.apache.kafka.connect.cli.ConnectDistributed",
            str(self.dir / f"worker-{i}.properties"),
        ]
        proc = JavaProcess(f"{self.name}-worker-{i}", argv, self.dir / f"worker-{i}.log")
        self.processes[i] = proc
        proc.start()

    def _await(self, i: int, timeout: float) -> None:
        for attempt in range(3):
            try:
                wait_until(
                    lambda: self._worker_ready(i),
                    timeout=timeout,
                    interval=0.25,
                    what=f"Connect {self.version} {self.name} worker {i} at {self.urls[i]}",
                )
                return
            except HarnessError:
                proc = self.processes[i]
                if attempt < 2 and proc is not None and _bind_failed(proc):
                    proc.terminate(5)
                    self.ports[i] = free_port()
                    self._launch(i)
                    continue
                raise

    def _worker_ready(self, i: int) -> bool:
        proc = self.processes[i]
        assert proc is not None
        if not proc.alive():
            code = proc.proc.returncode if proc.proc else None
            raise HarnessError(f"{proc.name} exited with {code}:\n{proc.tail()}")
        with httpx.Client(base_url=self.urls[i], auth=self.auth, timeout=5.0) as c:
            if c.get("/").status_code != 200:
                return False
            plugins = c.get("/connector-plugins")
            if plugins.status_code != 200 or not any(p.get("class") == FILE_SOURCE for p in plugins.json()):
                return False
            # /health (3.9+) answers 200 only once the herder finished start-up and joined the group.
            health = c.get("/health")
            return health.status_code in (200, 404)

    def _worker_properties(self, i: int) -> dict[str, str]:
        props = {
            "bootstrap.servers": self.broker.bootstrap,
            "group.id": self.group_id,
            "config.storage.topic": f"{self.group_id}-configs",
            "offset.storage.topic": f"{self.group_id}-offsets",
            "status.storage.topic": f"{self.group_id}-status",
            "config.storage.replication.factor": "1",
            "offset.storage.replication.factor": "1",
            "status.storage.replication.factor": "1",
            "offset.storage.partitions": "1",
            "status.storage.partitions": "1",
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable": "false",
            "value.converter.schemas.enable": "false",
            "offset.flush.interval.ms": "1000",
            "listeners": f"http://127.0.0.1:{self.ports[i]}",
            "rest.advertised.host.name": "127.0.0.1",
            "rest.advertised.port": str(self.ports[i]),
            # connect-file is on the classpath and Debezium on the plugin path; both jars ship ServiceLoader
            # manifests, so skip the slow scan.
            "plugin.discovery": "service_load",
            # Connect's plugin.path names the directory that holds one directory per plugin.
            "plugin.path": str(fetch.plugins_root()),
            # How long a SIGKILLed worker's connectors/tasks wait before reassignment (default 5 min).
            "scheduled.rebalance.max.delay.ms": str(self.scheduled_rebalance_max_delay_ms),
            "task.shutdown.graceful.timeout.ms": "2000",
        }
        if self.basic_auth:
            props["rest.extension.classes"] = BASIC_AUTH_EXTENSION
        return props

    def _write_jaas(self) -> None:
        assert self.basic_auth is not None
        creds = self.dir / "credentials.properties"
        creds.write_text(f"{self.basic_auth.user}={self.basic_auth.password}\n", encoding="utf-8")
        creds.chmod(0o600)
        (self.dir / "jaas.conf").write_text(
            "KafkaConnect {\n"
            "  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required\n"
            f'  file="{creds}";\n'
            "};\n",
            encoding="utf-8",
        )

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker ``i`` (a crash: no graceful leave, its status records stay as they were)."""
        proc = self.processes[i]
        if proc is not None:
            proc.kill()

    def stop_worker(self, i: int, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM worker ``i`` (a clean shutdown)."""
        proc = self.processes[i]
        if proc is not None:
            proc.terminate(grace)

    def start_worker(self, i: int, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """(Re)start worker ``i`` on its previous port, so its worker_id stays the same."""
        proc = self.processes[i]
        if proc is not None and proc.alive():
            raise HarnessError(f"{proc.name} is still running")
        self._launch(i)
        self._await(i, timeout)

    def alive(self) -> list[bool]:
        return [p is not None and p.alive() for p in self.processes]

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        live = [p for p in self.processes if p is not None and p.alive()]
        for p in live:
            p._signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in live:
            if not p._reap(max(0.1, deadline - time.monotonic())):
                p.kill()


# -- environment ------------------------------------------------------------------------------------------


class KafkaEnvironment:
    """Broker + 2-worker Connect cluster for one Kafka version, plus an optional basic-auth Connect cluster."""

    def __init__(self, version: str, workdir: Path) -> None:
        self.version = version
        self.workdir = workdir
        self.libs = fetch.libs_dir(version)
        self.broker = KafkaBroker(version, self.libs, workdir)
        self.connect = ConnectCluster(self.broker, workdir, name="connect", size=2)
        self._auth_connect: ConnectCluster | None = None
        self.timings: dict[str, float] = {}
        self.server_info: dict[str, Any] = {}

    def _timed(self, phase: str, fn: Callable[[], Any]) -> Any:
        start = time.monotonic()
        try:
            return fn()
        finally:
            self.timings[phase] = self.timings.get(phase, 0.0) + time.monotonic() - start

    def start(self) -> None:
        self._timed("fetch", lambda: (fetch.fetch(self.version, quiet=True), fetch.fetch_plugin(quiet=True)))
        self._timed("broker_start", self.broker.start)
        self._timed("workers_start", self.connect.start)
        with self.connect.rest() as rest:
            self.server_info = rest.server_info()

    def auth_connect(self) -> ConnectCluster:
        """The one-worker basic-auth Connect cluster, started on first use (other group id and topics)."""
        if self._auth_connect is None:
            cluster = ConnectCluster(
                self.broker,
                self.workdir,
                name="connect-auth",
                size=1,
                basic_auth=BasicAuth("kce-test", secrets.token_urlsafe(18)),
            )
            self._auth_connect = cluster
            self._timed("auth_worker_start", cluster.start)
        return self._auth_connect

    def all_processes(self) -> list[JavaProcess]:
        clusters = [self.connect] + ([self._auth_connect] if self._auth_connect else [])
        procs = [p for c in clusters for p in c.processes if p is not None]
        return procs + ([self.broker.process] if self.broker.process else [])

    def all_ports(self) -> list[int]:
        clusters = [self.connect] + ([self._auth_connect] if self._auth_connect else [])
        return [p for c in clusters for p in c.ports if p] + [p for p in self.broker.ports() if p]

    def stop(self) -> list[str]:
        """Stop workers, then the broker. Returns problems (processes or ports left behind), empty if clean."""

        def _stop() -> None:
            if self._auth_connect:
                self._auth_connect.stop()
            self.connect.stop()
            self.broker.stop()

        self._timed("stop", _stop)
        problems = [f"{p.name} (pid {p.pid}) still alive" for p in self.all_processes() if p.alive()]
        problems += [f"port {port} still accepting connections" for port in self.all_ports() if port_in_use(port)]
        return problems

    def save_logs(self, reason: str) -> Path:
        """Copy logs and configs (not data, not credentials) to .cache/test-logs/ in the repo."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        dest = FAILED_LOGS_DIR / f"kafka-{self.version}-{stamp}-{os.getpid()}"
        dest.mkdir(parents=True, exist_ok=True)
        for src in _log_files(self.workdir):
            target = dest / src.relative_to(self.workdir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
        (dest / "REASON.txt").write_text(reason + "\n", encoding="utf-8")
        return dest

    def tails(self, lines: int = 30) -> str:
        return "\n".join(f"----- {p.name}: {p.log_path}\n{p.tail(lines)}" for p in self.all_processes())

    def close(self, *, keep_logs: bool = False, reason: str = "") -> tuple[list[str], Path | None]:
        if self in _OPEN_ENVIRONMENTS:
            _OPEN_ENVIRONMENTS.remove(self)
        problems = self.stop()
        saved = self.save_logs(reason or "; ".join(problems)) if keep_logs or problems else None
        shutil.rmtree(self.workdir, ignore_errors=True)
        return problems, saved


def _log_files(root: Path) -> Iterable[Path]:
    for p in sorted(root.rglob("*")):
        wanted = p.suffix in (".log", ".properties", ".conf") and p.name != "credentials.properties"
        if wanted and p.is_file() and "data" not in p.relative_to(root).parts:
            yield p


WORKDIR_PREFIX = "kce-kafka-"


def _sweep_stale_workdirs() -> None:
    """Remove work dirs left by test processes that were SIGKILLed (their owner pid is gone)."""
    for d in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"):
        try:
            owner = int((d / "owner.pid").read_text(encoding="utf-8"))
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (OSError, ValueError):
            continue  # no/invalid pid file (young dir) or not ours to judge


def start_environment(version: str) -> KafkaEnvironment:
    """Fetch (if needed) and start Kafka ``version``; on failure, save the logs and stop what was started."""
    _sweep_stale_workdirs()
    workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{version}-"))
    (workdir / "owner.pid").write_text(str(os.getpid()), encoding="utf-8")
    env = KafkaEnvironment(version, workdir)
    _OPEN_ENVIRONMENTS.append(env)
    try:
        env.start()
    except (KeyboardInterrupt, SystemExit):
        env.close(keep_logs=True, reason="interrupted during start-up")
        raise
    except Exception as exc:
        tails = env.tails()
        _, saved = env.close(keep_logs=True, reason=f"start-up failed: {exc}")
        raise HarnessError(f"Kafka {version} failed to start: {exc}\nlogs saved to {saved}\n{tails}") from exc
    return env
