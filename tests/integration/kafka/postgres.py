"""A real PostgreSQL server (Debian's ``postgresql`` package) for the CDC integration tests.

``PostgresServer`` runs ``initdb`` into its own temporary directory and starts ``postgres`` on a free port of
127.0.0.1 with ``wal_level=logical``, as an unprivileged user: the current one, or Debian's ``postgres`` system
user when the tests run as root (PostgreSQL refuses to run as root). It is stopped by PID (SIGINT: PostgreSQL's
fast shutdown, as ``pg_ctl stop -m fast`` does; SIGKILL after a bound) and can be started again on the same port
and data directory (the database coming back). SQL goes through ``psql`` from the same package. The password
is generated per server and only ever passed through the environment and a 0600 file.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from .harness import JavaProcess, free_port, port_in_use
from .rest import wait_until

USER = "kce"
DATABASE = "postgres"
START_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 20.0
# Small and fast: a throwaway database on a shared 2-core machine.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "wal_level": "logical",
    "max_wal_senders": "4",
    "max_replication_slots": "4",
    "shared_buffers": "16MB",
    "max_connections": "20",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "log_min_messages": "warning",
}


class PostgresError(RuntimeError):
    pass


def bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` (Debian's layout), else the directory of ``postgres`` on
    PATH."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("postgres")
    if on_path is None:
        raise PostgresError("PostgreSQL is not installed (Debian: apt-get install postgresql; make tools does it)")
    return Path(on_path).resolve().parent


def server_version() -> str:
    out = subprocess.run([str(bin_dir() / "postgres"), "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip()


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) to run the server as, or None for the current (unprivileged) user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresError("running as root needs the 'postgres' system user (Debian's postgresql package)") from None
    return entry.pw_uid, entry.pw_gid


class PostgresProcess(JavaProcess):
    """The postmaster: started as the unprivileged user, stopped with PostgreSQL's fast shutdown (SIGINT)."""

    stop_signal = signal.SIGINT

    def __init__(self, argv: list[str], log_path: Path, run_as: tuple[int, int] | None) -> None:
        super().__init__("postgres", argv, log_path)
        self.run_as = run_as

    def popen_user(self) -> tuple[int, int] | None:
        return self.run_as


class PostgresServer:
    def __init__(self) -> None:
        self.run_as = _run_as()
        self.dir = Path(tempfile.mkdtemp(prefix="kce-postgres-"))
        self.data = self.dir / "data"
        self.socket_dir = self.dir / "socket"
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self.process: PostgresProcess | None = None
        self._initialised = False

    # -- addresses --
    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def user(self) -> str:
        return USER

    @property
    def database(self) -> str:
        return DATABASE

    # -- lifecycle --
    def _own(self, path: Path) -> None:
        if self.run_as is not None:
            os.chown(path, *self.run_as)

    def _initdb(self) -> None:
        self.dir.chmod(0o700)
        self._own(self.dir)
        self.socket_dir.mkdir()
        self._own(self.socket_dir)
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        pwfile.chmod(0o600)
        self._own(pwfile)
        argv = [
            str(bin_dir() / "initdb"),
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            user=self.run_as[0] if self.run_as else None,
            group=self.run_as[1] if self.run_as else None,
            cwd=self.dir,
        )
        pwfile.unlink()
        (self.dir / "initdb.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
        if proc.returncode != 0:
            raise PostgresError(f"initdb failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        # Logical replication over TCP from loopback (Debezium's replication connection).
        with (self.data / "pg_hba.conf").open("a", encoding="utf-8") as hba:
            hba.write("host replication all 127.0.0.1/32 scram-sha-256\n")
        self._initialised = True

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Start the server (initdb on first start); a restart keeps the port and the data."""
        if self.process is not None and self.process.alive():
            raise PostgresError(f"postgres already running (pid {self.process.pid})")
        if not self._initialised:
            self._initdb()
        for attempt in range(3):
            if not self.port or (attempt and port_in_use(self.port)):
                self.port = free_port()
            settings = {**SETTINGS, "port": str(self.port), "unix_socket_directories": str(self.socket_dir)}
            argv = [str(bin_dir() / "postgres"), "-D", str(self.data)]
            for key, value in settings.items():
                argv += ["-c", f"{key}={value}"]
            self.process = PostgresProcess(argv, self.dir / "postgres.log", self.run_as)
            self.process.start()
            try:
                wait_until(self._ready, timeout=timeout, interval=0.2, what=f"PostgreSQL on port {self.port}")
                return
            except PostgresError:
                raise
            except Exception:
                if attempt < 2 and "could not bind" in self.process.tail(50):
                    self.process.terminate(5)
                    continue
                raise

    def _ready(self) -> bool:
        assert self.process is not None
        if not self.process.alive():
            raise PostgresError(f"postgres exited:\n{self.process.tail()}")
        return self.psql("SELECT 1", check=False).returncode == 0

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Fast shutdown by PID (the database going down: clients are disconnected at once)."""
        if self.process is not None:
            self.process.terminate(grace)

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- SQL --
    def psql(self, sql: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "5"}
        argv = [
            str(bin_dir() / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            USER,
            "-d",
            DATABASE,
            "-c",
            sql,
        ]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
        if check and proc.returncode != 0:
            raise PostgresError(f"psql failed ({proc.returncode}) for {sql!r}: {proc.stderr.strip()}")
        return proc

    def scalar(self, sql: str) -> str:
        return self.psql(sql).stdout.strip()

    def drop_replication_slot(self, slot: str, attempts: int = 50) -> None:
        """Drop ``slot``, ending the walsender that holds it first (its client reconnects at once, so race it:
        terminate and drop in one statement, again until the drop finds the slot free)."""
        sql = (
            f"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{slot}' "
            f"AND active_pid IS NOT NULL; SELECT pg_drop_replication_slot('{slot}');"
        )
        for _ in range(attempts):
            proc = self.psql(sql, check=False)
            if proc.returncode == 0:
                return
            if "is active" not in proc.stderr:
                raise PostgresError(f"dropping slot {slot}: {proc.stderr.strip()}")
        raise PostgresError(f"slot {slot} stayed active over {attempts} attempts")

    def replication_slots(self) -> list[str]:
        out = self.scalar("SELECT slot_name FROM pg_replication_slots ORDER BY 1")
        return [line for line in out.splitlines() if line]


def debezium_config(
    pg: PostgresServer, prefix: str, *, user: str | None = None, password: str | None = None, **extra: str
) -> dict[str, str]:
    """A Debezium PostgreSQL source config for ``pg`` (pgoutput, a slot named after the prefix, a heartbeat every
    2 s into ``__debezium-heartbeat.<prefix>``), capturing ``public.orders``."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", prefix):
        raise ValueError(f"prefix {prefix!r}: lower-case letters, digits and _ (it names the replication slot)")
    config = {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "database.hostname": pg.host,
        "database.port": str(pg.port),
        "database.user": pg.user if user is None else user,
        "database.password": pg.password if password is None else password,
        "database.dbname": pg.database,
        "topic.prefix": prefix,
        "plugin.name": "pgoutput",
        "slot.name": f"{prefix}_slot",
        "publication.autocreate.mode": "filtered",
        "table.include.list": "public.orders",
        "heartbeat.interval.ms": "2000",
        "snapshot.mode": "initial",
    }
    config.update(extra)
    return config
