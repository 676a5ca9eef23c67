"""``python -m bench.sinks`` (part of ``make bench``): refreshing every sink's offsets, from the brokers against
from the workers.

A real KRaft broker (the integration tests' harness and jars) holds ``--sinks`` consumer groups
(``connect-sink-NNNNN``) with committed offsets on ``--topics`` one-partition topics; the simulator, in a process
of its own, serves the same sinks with the same offsets (``GET /connectors/{c}/offsets``). In this process, after
one status poll, the offsets reader refreshes every sink, ``--runs`` times per path:

- ``brokers``: ``clusters[].kafka`` at its defaults: every sink's group (``kafka.concurrency`` 32 at a time), the
  topics' metadata, log start and end offsets, and the lag;
- ``rest``: no brokers, every sink's ``GET /connectors/{c}/offsets`` at the highest rate the configuration allows
  (``offsets_max_rate`` 1000, ``offsets_concurrency`` 16), so one run reads them all. At the default rate (5/s)
  the rotation needs ``sinks / 4.5`` seconds instead (18.5 minutes at 5,000).

Per run: wall time, CPU time of this process (all threads, librdkafka's included; the simulator and the broker
run elsewhere), offsets requests the workers answered, admin API calls to the brokers. Medians go to the table
and ``bench/sinks.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.run import ROOT, Size, machine, simfarm
from bench.simfarm import sink_layout
from exporter.config import ClusterConfig, build_config
from exporter.connect.client import build_http_client
from exporter.connect.poller import ConnectPoller
from exporter.offsets.reader import OffsetsReader
from tests.integration.kafka import fetch
from tests.integration.kafka.harness import KafkaBroker

RECORDS_PER_TOPIC = 1000


def prepare_broker(bootstrap: str, sinks: int, topics: int) -> None:
    """The topics with records, and each sink's group with its committed offset (as Connect would commit it)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = sorted({sink_layout(i, topics)[1] for i in range(sinks)})
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in names]).values():
        future.result(60)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})
    for topic in names:
        for i in range(RECORDS_PER_TOPIC):
            producer.produce(topic, value=b"r%d" % i)
        producer.poll(0)
    producer.flush(60)
    pending = []
    for i in range(sinks):
        name, topic, offset = sink_layout(i, topics)
        request = ConsumerGroupTopicPartitions(f"connect-{name}", [TopicPartition(topic, 0, offset)])
        pending.extend(admin.alter_consumer_group_offsets([request], request_timeout=60).values())
        if len(pending) >= 200:
            for future in pending:
                future.result(120)
            pending.clear()
    for future in pending:
        future.result(120)


def cluster_config(urls: list[str], bootstrap: str | None) -> ClusterConfig:
    cluster: dict[str, Any] = {"name": "bench", "urls": urls}
    if bootstrap is None:
        cluster.update(offsets_max_rate=1000, offsets_concurrency=16, offsets_interval="60s")
    else:
        cluster["kafka"] = {"bootstrap_servers": bootstrap}
    return build_config({"web": {"listen_address": "127.0.0.1:0"}, "clusters": [cluster]}).clusters[0]


def offsets_requests(control: str) -> int:
    counts = httpx.get(control + "/requests", timeout=30).json()
    return sum(n for per in counts.values() for key, n in per.items() if key.endswith("/offsets"))


async def one_run(path: str, urls: list[str], control: str, bootstrap: str, sinks: int) -> dict[str, Any]:
    cluster = cluster_config(urls, bootstrap if path == "brokers" else None)
    async with build_http_client(cluster) as client:
        reader = OffsetsReader(cluster, client)
        reader.observe(await ConnectPoller(cluster, client).poll())  # what the store's subscription hands it
        workers_before = offsets_requests(control)
        brokers_before = reader.brokers.requests if reader.brokers is not None else 0
        cpu, wall = time.process_time(), time.perf_counter()
        got = await reader.run()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        workers = offsets_requests(control) - workers_before
        brokers = (reader.brokers.requests if reader.brokers is not None else 0) - brokers_before
    assert got is not None
    read = [o for o in got.connectors.values() if o.type == "sink"]
    if len(read) != sinks:
        raise RuntimeError(f"{path}: {len(read)} of {sinks} sinks read in one run")
    if path == "brokers" and sum(1 for o in read if o.lag) != sinks:
        raise RuntimeError("brokers: a sink without lag")
    return {
        "path": path,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_ms_per_sink": cpu * 1000 / sinks,
        "worker_requests": workers,
        "broker_requests": brokers,
    }


def medians(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("wall_s", "cpu_s", "cpu_ms_per_sink", "worker_requests", "broker_requests")
    return {"path": rows[0]["path"], **{k: statistics.median(r[k] for r in rows) for k in keys}}


def table(sinks: int, brokers: dict[str, Any], rest: dict[str, Any]) -> str:
    out = [
        f"Refreshing {sinks:,} sinks' offsets once (medians):",
        "",
        "| path | time to refresh all s | requests to the workers | requests to the brokers "
        "| CPU s | CPU ms per sink |",
        "|---|---|---|---|---|---|",
    ]
    for r in (brokers, rest):
        out.append(
            f"| {r['path']} | {r['wall_s']:.2f} | {r['worker_requests']:,.0f} | {r['broker_requests']:,.0f} "
            f"| {r['cpu_s']:.2f} | {r['cpu_ms_per_sink']:.3f} |"
        )
    out.append("")
    out.append(
        f"CPU per sink, brokers / workers: {brokers['cpu_ms_per_sink'] / rest['cpu_ms_per_sink']:.2f}; "
        f"time: {brokers['wall_s'] / rest['wall_s']:.2f} (the workers' path at 1000 requests/s; at the default "
        f"5/s it needs {sinks / 4.5:,.0f} s)"
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sinks", description=__doc__.splitlines()[0])
    p.add_argument("--sinks", type=int, default=5000)
    p.add_argument("--topics", type=int, default=50)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--kafka", default=fetch.pinned_versions()[-1], help="Kafka version of the broker")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "sinks.json")
    args = p.parse_args(argv)
    started = time.monotonic()
    fetch.fetch(args.kafka, quiet=True)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kce-sinks-") as tmp:
        broker = KafkaBroker(args.kafka, fetch.libs_dir(args.kafka), Path(tmp))
        try:
            broker.start()
            t0 = time.monotonic()
            prepare_broker(broker.bootstrap, args.sinks, args.topics)
            print(f"  {args.sinks} groups committed in {time.monotonic() - t0:.0f} s", file=sys.stderr)
            size = Size(args.sinks, 1, 1)
            with simfarm(size, 0.0, ["--sinks", "--topics", str(args.topics), "--workers", "1"]) as farm:
                urls = next(iter(farm["clusters"].values()))
                for i in range(args.runs):
                    for path in ("brokers", "rest"):
                        row = asyncio.run(one_run(path, urls, farm["control"], broker.bootstrap, args.sinks))
                        row["run"] = i
                        runs.append(row)
                        print(
                            f"  run {i} {path}: {row['wall_s']:.2f} s, CPU {row['cpu_s']:.2f} s, "
                            f"{row['worker_requests']} worker / {row['broker_requests']} broker requests",
                            file=sys.stderr,
                        )
        finally:
            broker.stop()
    by_path = {path: medians([r for r in runs if r["path"] == path]) for path in ("brokers", "rest")}
    report = {
        "machine": machine(),
        "settings": {"sinks": args.sinks, "topics": args.topics, "runs": args.runs, "kafka": args.kafka},
        "medians": by_path,
        "runs": runs,
        "elapsed_s": time.monotonic() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(args.sinks, by_path["brokers"], by_path["rest"]))
    print(f"\n{args.out} written in {report['elapsed_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
