"""``python -m bench.run`` (``make bench``): the exporter measured at scale, as users run it.

For each size (N connectors x T tasks, spread over C clusters of 2 workers each) and each run:

1. ``bench.simfarm`` serves the clusters (per-request latency configurable) in its own process.
2. The exporter runs as a real process (``kafka-connect-exporter --config.file ...``). Over K whole poll
   cycles with nobody scraping, the harness counts the HTTP requests the simulator answered and reads the
   exporter's CPU time from /proc/<pid>/stat: requests and CPU per poll cycle (fetch, parse, snapshot,
   render, and the gzip a scraper asked for).
3. ``bench.scrape`` (another process) runs 8 concurrent scrapers for 30 s while polling continues: /metrics
   latency p50/p99. Then peak RSS (VmHWM) and the exposition size, plain and gzip.
4. In the harness process, the same cycle with ``time.process_time`` around each stage (poll: fetch, JSON
   decode, parse, snapshot; render: lines, gzip) against the same simulator, to attribute the cost.

``--offsets on`` runs the exporter with its offsets reader at the defaults (off by default here, so figures stay
comparable with earlier tables); the offsets requests then show in ``req/cycle/cluster`` (docs/performance.md).

Every figure is the median over the runs. Prints a table and writes a JSON file. ``BENCH_QUICK=1`` (or
``--quick``) runs small sizes briefly, for a smoke test. Every process started here is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import build_config
from exporter.connect.client import build_http_client
from exporter.connect.parse import parse_expanded
from exporter.connect.poller import EXPAND_PARAMS, ConnectPoller
from exporter.cpu_worker import without_gc
from exporter.exposition import Rendered
from exporter.features import metric_groups
from exporter.json_decode import loads
from exporter.render import render_blocks
from exporter.store import Store

ROOT = Path(__file__).resolve().parent.parent
EXPORTER = Path(sys.executable).parent / "kafka-connect-exporter"
CLK_TCK = os.sysconf("SC_CLK_TCK")
OFFSETS_PATH = "GET /connectors/{c}/offsets"
OM_GZIP = {"Accept": "application/openmetrics-text; version=1.0.0", "Accept-Encoding": "gzip"}


def relative_paths(profile: str) -> str:
    """A profile's file paths relative to the repository root (the standard library's as ``<stdlib>/``), so a
    committed profile records no path of the machine it ran on."""
    stdlib = sysconfig.get_path("stdlib")
    return profile.replace(f"{ROOT}{os.sep}", "").replace(f"{stdlib}{os.sep}", "<stdlib>/")


@dataclass(frozen=True)
class Size:
    connectors: int
    tasks: int
    clusters: int

    @property
    def label(self) -> str:
        return f"{self.connectors:,}x{self.tasks}/{self.clusters}cl"

    @classmethod
    def parse(cls, text: str, clusters: int) -> Size:
        """``5000x4`` or ``5000x4x3`` (connectors x tasks x clusters)."""
        parts = [int(p) for p in text.lower().replace("_", "").split("x")]
        return cls(parts[0], parts[1], parts[2] if len(parts) > 2 else clusters)


# -- processes ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def simfarm(size: Size, latency: float, extra: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    cmd = [sys.executable, "-m", "bench.simfarm", "--clusters", str(size.clusters)]
    cmd += ["--connectors", str(size.connectors), "--tasks", str(size.tasks), "--latency", str(latency), *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator exited with {proc.wait()}")
        yield json.loads(line)
    finally:
        stop(proc)


@contextlib.contextmanager
def exporter(
    farm: dict[str, Any],
    poll_interval: float,
    workdir: Path,
    settings: dict[str, Any] | None = None,
    cluster_settings: dict[str, Any] | None = None,
) -> Iterator[tuple[int, str]]:
    """``settings``: extra top-level config sections; ``cluster_settings``: extra keys for every cluster."""
    port = free_port()
    config = {
        "web": {"listen_address": f"127.0.0.1:{port}"},
        "log": {"level": "warning"},
        "clusters": [
            {"name": n, "urls": urls, "poll_interval": poll_interval, **(cluster_settings or {})}
            for n, urls in farm["clusters"].items()
        ],
        **(settings or {}),
    }
    path = workdir / "exporter.yml"
    path.write_text(yaml.safe_dump(config))
    log = (workdir / "exporter.log").open("w")
    proc = subprocess.Popen([str(EXPORTER), "--config.file", str(path)], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"exporter exited with {proc.returncode}; see {workdir / 'exporter.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("exporter not ready within 120 s")
            time.sleep(0.1)
        yield proc.pid, base
    finally:
        stop(proc)
        log.close()


# -- process measurements ----------------------------------------------------------------------------------


_control = httpx.Client(timeout=10, trust_env=False)  # keep-alive: the harness polls it while measuring


def request_counts(control: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = _control.get(control + "/requests").json()
    return out


def status_reads(counts: dict[str, dict[str, int]]) -> int:
    return sum(c.get("GET /connectors", 0) for c in counts.values())


def wait_cycle_start(control: str, after: int, timeout: float) -> dict[str, dict[str, int]]:
    """Wait until every cluster's status read of the next cycle has arrived."""
    deadline = time.monotonic() + timeout
    while True:
        counts = request_counts(control)
        if status_reads(counts) >= after:
            # The cycle's other requests (GET / on every worker) arrive alongside: wait until the counts
            # settle, but read them well before the next cycle can start (or it would be counted too).
            settle_by = time.monotonic() + timeout / 6
            while time.monotonic() < settle_by:
                time.sleep(0.05)
                latest = request_counts(control)
                if latest == counts:
                    break
                counts = latest
            return counts
        if time.monotonic() > deadline:
            raise RuntimeError("no poll cycle started in time")
        time.sleep(0.05)


def scrape_metrics(base: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = httpx.get(base + "/metrics", timeout=30).text
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("kafka_connect_exporter_"):
            for s in family.samples:
                out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def measure_process(size: Size, farm: dict[str, Any], args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    # Offsets at their defaults (every 2 min, at most 5 requests/s per cluster) when on.
    offsets = {"offsets_enabled": args.offsets == "on"}
    with exporter(farm, args.poll_interval, workdir, cluster_settings=offsets) as (pid, base):
        control = farm["control"]
        clusters = size.clusters
        # One scrape as Prometheus asks: from now on each new view is rendered with that variant ready.
        httpx.get(base + "/metrics", headers=OM_GZIP, timeout=30)
        counts = wait_cycle_start(control, status_reads(request_counts(control)) + clusters, args.poll_interval * 3)
        first, cpu0 = counts, cpu_seconds(pid)
        for _ in range(args.cycles):
            counts = wait_cycle_start(control, status_reads(counts) + clusters, args.poll_interval * 3)
        cpu1 = cpu_seconds(pid)
        per_path: dict[str, float] = {}
        for name, paths in counts.items():
            for path, n in paths.items():
                key = OFFSETS_PATH if path.endswith("/offsets") else path  # one line for every connector's
                per_path[key] = per_path.get(key, 0) + (n - first.get(name, {}).get(path, 0))
        per_cycle = {p: n / args.cycles / clusters for p, n in sorted(per_path.items())}
        durations = [v for _, v in scrape_metrics(base)["kafka_connect_exporter_poll_duration_seconds"]]

        cpu_s0, wall_s0 = cpu_seconds(pid), time.monotonic()
        scraped = run_scrapers(base + "/metrics", args.scrapers, args.scrape_seconds, args.scraper)
        cpu_s1, wall_s1 = cpu_seconds(pid), time.monotonic()
        rss = vm_hwm_mb(pid)  # before the plain scrapes below, which users rarely make
        plain = httpx.get(base + "/metrics", headers={"Accept-Encoding": "identity"}, timeout=60)
        gz = httpx.get(base + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=60)
        return {
            "requests_per_cluster_cycle": per_cycle,
            "cycle_cpu_s": (cpu1 - cpu0) / args.cycles,
            "poll_wall_s": max(durations),
            "scraper": scraped["tool"],
            "scrapes": scraped["count"],
            "scrape_errors": scraped["errors"],
            "scrape_p50_ms": scraped["p50_ms"],
            "scrape_p99_ms": scraped["p99_ms"],
            "scrape_max_ms": scraped["max_ms"],
            "cpu_while_scraping": (cpu_s1 - cpu_s0) / (wall_s1 - wall_s0),
            "peak_rss_mb": rss,
            "exposition_bytes": len(plain.content),
            "exposition_gzip_bytes": int(gz.headers.get("content-length", len(gz.content))),
        }


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _wrk_ms(text: str) -> float:
    for unit in ("us", "ms", "s", "m"):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * _UNITS[unit]
    raise ValueError(f"unreadable wrk latency {text!r}")


def run_scrapers(url: str, scrapers: int, seconds: float, tool: str) -> dict[str, Any]:
    """``scrapers`` concurrent back-to-back scrapers asking like Prometheus (OpenMetrics, gzip).

    wrk (Debian package) when present: a C client keeps its own overhead out of the latency. Otherwise
    bench.scrape, an asyncio + httpx client in its own process.
    """
    if tool == "wrk" or (tool == "auto" and shutil.which("wrk")):
        cmd = ["wrk", "-t", str(min(2, scrapers)), "-c", str(scrapers), "-d", f"{seconds:g}s", "--latency"]
        cmd += ["-H", "Accept: " + OM_GZIP["Accept"], "-H", "Accept-Encoding: gzip", url]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
        lat: dict[str, float] = {}
        count = errors = 0
        for line in out.splitlines():
            words = line.split()
            if len(words) == 2 and words[0] in ("50%", "99%"):
                lat[words[0]] = _wrk_ms(words[1])
            elif len(words) > 2 and words[1] == "requests" and words[2] == "in":
                count = int(words[0])
            elif line.strip().startswith(("Non-2xx", "Socket errors")):
                errors += sum(int(w.strip(",")) for w in words if w.strip(",").isdigit())
            elif len(words) >= 4 and words[0] == "Latency" and words[1] != "Distribution":
                lat["max"] = _wrk_ms(words[3])
        return {
            "tool": "wrk",
            "count": count,
            "errors": errors,
            "p50_ms": lat["50%"],
            "p99_ms": lat["99%"],
            "max_ms": lat.get("max", float("nan")),
        }
    cmd = [sys.executable, "-m", "bench.scrape", url, "--scrapers", str(scrapers), "--seconds", str(seconds)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return {"tool": "bench.scrape", **json.loads(done.stdout)}


# -- in-process attribution --------------------------------------------------------------------------------


async def measure_stages(farm: dict[str, Any], runs: int, profile: bool) -> tuple[list[dict[str, float]], str]:
    config = build_config({"clusters": [{"name": n, "urls": u} for n, u in farm["clusters"].items()]})
    clients = {c.name: build_http_client(c) for c in config.clusters}
    pollers = [ConnectPoller(c, clients[c.name]) for c in config.clusters]
    store = Store([c.name for c in config.clusters])
    groups = metric_groups()  # the same instances every cycle: the renderer keeps unchanged clusters' lines
    out = []
    profiled = ""
    try:
        for run in range(runs + 1):  # the first cycle opens connections and reads plugins: not counted
            prof = cProfile.Profile() if profile and run == runs else None
            if prof is not None:
                prof.enable()
            c0, w0 = time.process_time(), time.perf_counter()
            snaps = await asyncio.gather(*(p.poll() for p in pollers))
            c1, w1 = time.process_time(), time.perf_counter()
            for snap in snaps:
                store.publish_cluster(snap)
            view = store.view
            rendered = Rendered(view.generation, render_blocks(view, groups))
            c2 = time.process_time()
            rendered.variant((True, True))
            c3, w3 = time.process_time(), time.perf_counter()
            if prof is not None:
                prof.disable()
                buf = io.StringIO()
                pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
                profiled = relative_paths(buf.getvalue())
            # The status body alone: how much of the poll is JSON decoding and parsing.
            decode = parse = 0.0
            for c in config.clusters:
                body = (await clients[c.name].get(c.urls[0] + "/connectors", params=EXPAND_PARAMS)).content
                d0 = time.process_time()
                data = without_gc(loads, body)  # as the exporter does: in its worker, GC paused
                d1 = time.process_time()
                without_gc(parse_expanded, data)
                decode, parse = decode + d1 - d0, parse + time.process_time() - d1
            if run:
                out.append(
                    {
                        "poll_cpu_s": c1 - c0,
                        "poll_wall_s": w1 - w0,
                        "decode_cpu_s": decode,
                        "parse_cpu_s": parse,
                        "fetch_snapshot_cpu_s": max(0.0, c1 - c0 - decode - parse),
                        "render_cpu_s": c2 - c1,
                        "gzip_cpu_s": c3 - c2,
                        "cycle_cpu_s": c3 - c0,
                        "cycle_wall_s": w3 - w0,
                    }
                )
    finally:
        for client in clients.values():
            await client.aclose()
    return out, profiled


# -- report ------------------------------------------------------------------------------------------------


def median_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in rows[0].items():
        if isinstance(value, dict):
            out[key] = median_of([r[key] for r in rows])
        elif isinstance(value, str):  # e.g. the scraper tool: the same in every run (a median of 2 would add them)
            out[key] = value
        else:
            out[key] = statistics.median(r[key] for r in rows)
    return out


def table(results: list[dict[str, Any]]) -> str:
    cols: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("size (conn x tasks / clusters)", lambda r: r["size"]),
        ("req/cycle/cluster", lambda r: _requests(r["process"]["requests_per_cluster_cycle"])),
        ("cycle CPU s", lambda r: f"{r['process']['cycle_cpu_s']:.3f}"),
        ("in-proc CPU s (poll+render+gzip)", lambda r: _stages(r["stages"])),
        ("cycle wall s", lambda r: f"{r['stages']['cycle_wall_s']:.3f}"),
        ("p50 ms", lambda r: f"{r['process']['scrape_p50_ms']:.1f}"),
        ("p99 ms", lambda r: f"{r['process']['scrape_p99_ms']:.1f}"),
        ("scrapes/30s", lambda r: f"{r['process']['scrapes']:.0f}"),
        ("exposition MB", lambda r: f"{r['process']['exposition_bytes'] / 1e6:.1f}"),
        ("gzip MB", lambda r: f"{r['process']['exposition_gzip_bytes'] / 1e6:.2f}"),
        ("peak RSS MB", lambda r: f"{r['process']['peak_rss_mb']:.0f}"),
    ]
    rows = [[c[0] for c in cols]] + [[fmt(r) for _, fmt in cols] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def stages_table(results: list[dict[str, Any]]) -> str:
    keys = ["decode_cpu_s", "parse_cpu_s", "fetch_snapshot_cpu_s", "render_cpu_s", "gzip_cpu_s", "cycle_cpu_s"]
    head = ["size", "tasks total", *[k.removesuffix("_cpu_s") for k in keys], "CPU us/task"]
    rows = [head]
    for r in results:
        s = r["stages"]
        tasks = r["connectors"] * r["tasks_per_connector"]
        rows.append([r["size"], f"{tasks:,}", *[f"{s[k]:.3f}" for k in keys], f"{s['cycle_cpu_s'] / tasks * 1e6:.1f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _requests(per_cycle: dict[str, float]) -> str:
    status = per_cycle.get("GET /connectors", 0)
    probes = per_cycle.get("GET /", 0)
    health = per_cycle.get("GET /health", 0)
    other = sum(n for p, n in per_cycle.items() if p not in ("GET /connectors", "GET /", "GET /health"))
    return f"{status:g} status + {probes:g} GET / + {health:g} GET /health + {other:g} other"


def _stages(s: dict[str, float]) -> str:
    return f"{s['cycle_cpu_s']:.3f} ({s['poll_cpu_s']:.3f}+{s['render_cpu_s']:.3f}+{s['gzip_cpu_s']:.3f})"


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_avg_at_start": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=None, help="comma-separated NxT or NxTxC (default 1000x4,5000x4,10000x8)")
    p.add_argument("--clusters", type=int, default=3, help="clusters a size is spread over (default 3)")
    p.add_argument("--runs", type=int, default=None, help="runs per size; figures are medians (default 3)")
    p.add_argument("--latency", type=float, default=0.02, help="simulated seconds per request (default 0.02)")
    p.add_argument("--poll-interval", type=float, default=None, help="exporter poll interval (default 5 s)")
    p.add_argument("--cycles", type=int, default=None, help="poll cycles measured for CPU (default 3)")
    p.add_argument(
        "--offsets", choices=["off", "on"], default="off", help="the exporter reads connector offsets (default off)"
    )
    p.add_argument("--scrapers", type=int, default=8)
    p.add_argument("--scraper", choices=["auto", "wrk", "python"], default="auto", help="wrk if installed")
    p.add_argument("--scrape-seconds", type=float, default=None, help="default 30")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    p.add_argument("--stages-only", action="store_true", help="only the in-process cycle (cost growth studies)")
    p.add_argument("--profile", action="store_true", help="write a cProfile of one in-process cycle per size")
    p.add_argument("--quick", action="store_true", default=quick, help="small sizes, one short run (BENCH_QUICK=1)")
    args = p.parse_args(argv)
    sizes_text = args.sizes or ("100x2,1000x4" if args.quick else "1000x4,5000x4,10000x8")
    args.runs = args.runs or (1 if args.quick else 3)
    args.poll_interval = args.poll_interval or (1.0 if args.quick else 5.0)
    args.cycles = args.cycles or (2 if args.quick else 3)
    args.scrape_seconds = args.scrape_seconds or (3.0 if args.quick else 30.0)
    sizes = [Size.parse(s, args.clusters) for s in sizes_text.split(",")]

    results = []
    started = time.monotonic()
    for size in sizes:
        process_runs, stage_runs = [], []
        for run in range(args.runs):
            with simfarm(size, args.latency) as farm:  # one simulator per run: the exporter, then in-process
                if not args.stages_only:
                    with tempfile.TemporaryDirectory(prefix="kce-bench-") as tmp:
                        process_runs.append(measure_process(size, farm, args, Path(tmp)))
                stages, profiled = asyncio.run(measure_stages(farm, 3, args.profile and run == 0))
                stage_runs.extend(stages)
                if profiled:
                    args.out.with_name(f"profile-{size.connectors}x{size.tasks}.txt").write_text(profiled)
            print(
                f"  {size.label} run {run + 1}/{args.runs} done ({time.monotonic() - started:.0f} s)", file=sys.stderr
            )
        results.append(
            {
                "size": size.label,
                "connectors": size.connectors,
                "tasks_per_connector": size.tasks,
                "clusters": size.clusters,
                "process": median_of(process_runs) if process_runs else None,
                "stages": median_of(stage_runs),
                "runs": {"process": process_runs, "stages": stage_runs},
            }
        )
    report = {
        "machine": machine(),
        "settings": {
            "latency_s": args.latency,
            "poll_interval_s": args.poll_interval,
            "offsets": args.offsets,
            "cycles": args.cycles,
            "scrapers": args.scrapers,
            "scrape_seconds": args.scrape_seconds,
            "runs": args.runs,
            "workers_per_cluster": 2,
        },
        "results": results,
        "elapsed_s": time.monotonic() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(stages_table(results) if args.stages_only else table(results))
    print(f"\n{args.out} written in {report['elapsed_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
