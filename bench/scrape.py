"""``python -m bench.scrape URL``: N concurrent scrapers for D seconds, like Prometheus asks (OpenMetrics, gzip).

Each scraper loops back to back; latency is from sending the request to the last byte of the (still
compressed) body. Prints one JSON object: count, errors, latency percentiles in ms, body sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Sequence

import httpx

PROMETHEUS_ACCEPT = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(url: str, scrapers: int, seconds: float, interval: float) -> dict[str, object]:
    latencies: list[float] = []
    sizes: list[int] = []
    errors = 0
    headers = {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
    limits = httpx.Limits(max_connections=scrapers, max_keepalive_connections=scrapers)
    async with httpx.AsyncClient(timeout=10.0, limits=limits, trust_env=False) as client:
        end = time.monotonic() + seconds

        async def loop() -> None:
            nonlocal errors
            while time.monotonic() < end:
                start = time.perf_counter()
                try:
                    async with client.stream("GET", url, headers=headers) as response:
                        size = 0
                        async for chunk in response.aiter_raw():
                            size += len(chunk)
                    if response.status_code != 200:
                        errors += 1
                        continue
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - start)
                sizes.append(size)
                if interval:
                    await asyncio.sleep(interval)

        await asyncio.gather(*(loop() for _ in range(scrapers)))
    ms = [x * 1000 for x in latencies]
    return {
        "count": len(ms),
        "errors": errors,
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms, default=float("nan")),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
        "gzip_bytes": int(statistics.median(sizes)) if sizes else 0,
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.scrape", description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--scrapers", type=int, default=8)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--interval", type=float, default=0.0, help="pause between one scraper's scrapes")
    args = p.parse_args()
    print(json.dumps(asyncio.run(run(args.url, args.scrapers, args.seconds, args.interval))))


if __name__ == "__main__":
    main()
