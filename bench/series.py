"""``python -m bench.series`` (part of ``make bench``): what the exporter costs a real Prometheus, per encoding.

The simulator serves N connectors x T tasks; the exporter polls it; a real Prometheus (the tests/e2e harness,
Debian's /usr/bin/prometheus) scrapes it. For each setting (``metrics.state_series: all`` / ``current``,
``task_metrics: true`` / ``false``, offsets off; or offsets on, every connector read each run), after a few
scrapes: the head series from Prometheus' own
``/api/v1/status/tsdb``, Prometheus' resident memory (VmRSS and VmHWM from /proc), the exposition the exporter
serves (OpenMetrics, plain and gzip) and the scrape duration and samples Prometheus reports
(``scrape_duration_seconds``, ``scrape_samples_scraped``). Every process is fresh per setting (one simulator for
all) and stopped by its PID. Prints a Markdown table and writes a JSON file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.run import OM_GZIP, ROOT, Size, exporter, machine, simfarm
from tests.e2e.prometheus import PrometheusServer, wait_for

OFF = {"offsets_enabled": False}
# Offsets read from the workers at a rate that reads every connector each run (every minute), so that every connector's
# offsets series are there; the simulator moves every connector's offsets at each read (--moving-offsets), so
# each has its change timestamp, as in a live estate. No brokers here: no lag series (which current mode serves
# only where not 0).
ON = {"offsets_enabled": True, "offsets_interval": "60s", "offsets_max_rate": 1000, "offsets_concurrency": 16}
SETTINGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {  # name -> (top-level settings, cluster settings)
    "all": ({"metrics": {"state_series": "all"}}, OFF),
    "current": ({"metrics": {"state_series": "current"}}, OFF),
    "all, task_metrics: false": ({"metrics": {"state_series": "all"}}, {**OFF, "task_metrics": False}),
    "current, task_metrics: false": ({"metrics": {"state_series": "current"}}, {**OFF, "task_metrics": False}),
    "current, offsets on": ({"metrics": {"state_series": "current"}}, ON),
    "all, offsets on": ({"metrics": {"state_series": "all"}}, ON),
}
PAUSED = 'count(kafka_connect_connector_state{state="PAUSED"} == 1) or vector(0)'
# Settings measured only when asked for (--setting): make bench runs these at 1,000 x 8 and 10,000 x 8.
OFFSETS_SETTINGS = ("current, offsets on",)


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key}")


def scalar(prom: PrometheusServer, expr: str) -> float:
    found = prom.query(expr)
    return float(found[0].values[0][1]) if found else float("nan")


def measure(name: str, size: Size, farm: dict[str, Any], args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    settings, cluster_settings = SETTINGS[name]
    with exporter(farm, args.poll_interval, workdir, settings, cluster_settings) as (_, base):
        plain = httpx.get(base + "/metrics", headers={**OM_GZIP, "Accept-Encoding": "identity"}, timeout=60)
        gzipped = httpx.get(base + "/metrics", headers=OM_GZIP, timeout=60)
        target = base.removeprefix("http://")
        timeout = args.scrape_interval * 0.9
        with PrometheusServer(
            workdir / "prometheus", [target], scrape_interval=args.scrape_interval, scrape_timeout=timeout
        ) as prom:
            if cluster_settings.get("offsets_enabled"):
                # Every connector's offsets seen to change (the second run of the reader), then the scrapes. A
                # paused sink's offsets do not move in the simulator: those may stay without a change.
                wait_for(
                    lambda: (
                        scalar(prom, "count(kafka_connect_connector_offsets_last_change_timestamp_seconds)")
                        >= size.connectors - scalar(prom, PAUSED)
                    ),
                    900,
                    "every running connector's offsets change timestamp",
                    interval=1.0,
                )
                seen = scalar(prom, "sum(count_over_time(up[1h]))")
            else:
                seen = 0.0
            wait_for(
                lambda: (
                    scalar(prom, "sum(count_over_time(up[1h]))") >= seen + args.scrapes
                    and scalar(prom, "min_over_time(up[1h])") == 1.0
                ),
                args.scrapes * args.scrape_interval * 4 + 60,
                f"{args.scrapes} successful scrapes",
                interval=1.0,
            )
            head = prom.tsdb_status()["headStats"]
            assert prom.proc is not None
            row = {
                "setting": name,
                "head_series": int(head["numSeries"]),
                "series_per_task": int(head["numSeries"]) / (size.connectors * size.tasks),
                "prometheus_rss_mb": rss_mb(prom.proc.pid),
                "prometheus_peak_rss_mb": rss_mb(prom.proc.pid, "VmHWM"),
                "exposition_bytes": len(plain.content),
                "exposition_gzip_bytes": gzipped.num_bytes_downloaded,  # as sent; .content is decoded
                "scrape_samples": scalar(prom, "max_over_time(scrape_samples_scraped[1h])"),
                "scrape_duration_s_avg": scalar(prom, "avg_over_time(scrape_duration_seconds[1h])"),
                "scrape_duration_s_max": scalar(prom, "max_over_time(scrape_duration_seconds[1h])"),
                "scrapes": scalar(prom, "sum(count_over_time(up[1h]))"),
            }
    print(f"  {name}: {row['head_series']} head series ({row['series_per_task']:.2f} per task)", file=sys.stderr)
    return row


def table(size: Size, rows: list[dict[str, Any]]) -> str:
    out = [
        f"Prometheus scraping {size.connectors:,} connectors x {size.tasks} tasks "
        f"({size.connectors * size.tasks:,} tasks):",
        "",
        "| setting | head series | series per task | Prometheus RSS MB (peak) | exposition MB | gzip MB "
        "| scrape duration s (avg / max) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| `{r['setting']}` | {r['head_series']:,} | {r['series_per_task']:.2f} "
            f"| {r['prometheus_rss_mb']:.0f} ({r['prometheus_peak_rss_mb']:.0f}) "
            f"| {r['exposition_bytes'] / 1e6:.1f} | {r['exposition_gzip_bytes'] / 1e6:.2f} "
            f"| {r['scrape_duration_s_avg']:.2f} / {r['scrape_duration_s_max']:.2f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.series", description=__doc__.splitlines()[0])
    p.add_argument("--size", default="10000x8", help="NxT connectors x tasks, one cluster (default 10000x8)")
    p.add_argument(
        "--setting",
        action="append",
        choices=list(SETTINGS),
        help=f"repeatable (default: every setting but {', '.join(OFFSETS_SETTINGS)} and 'all, offsets on')",
    )
    p.add_argument("--scrapes", type=int, default=4, help="successful scrapes before measuring (default 4)")
    p.add_argument("--scrape-interval", type=float, default=15.0, help="seconds (default 15)")
    p.add_argument("--poll-interval", type=float, default=30.0, help="exporter poll interval (default 30 s)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "series.json")
    args = p.parse_args(argv)
    size = Size.parse(args.size, 1)
    started = time.monotonic()
    rows = []
    with simfarm(size, 0.0, ["--moving-offsets"]) as farm:
        for name in args.setting or [n for n in SETTINGS if "offsets on" not in n]:
            with tempfile.TemporaryDirectory(prefix="kce-series-") as tmp:
                rows.append(measure(name, size, farm, args, Path(tmp)))
    report = {
        "machine": machine(),
        "settings": {"size": size.label, "scrape_interval_s": args.scrape_interval, "scrapes": args.scrapes},
        "results": rows,
        "elapsed_s": time.monotonic() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(size, rows))
    print(f"\n{args.out} written in {report['elapsed_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
