"""Copy alerts/ and dashboards/ into the Helm chart, which can only read files inside its own directory.

alerts/kafka-connect.rules.yml and dashboards/*.json stay the one source of truth; the chart's files/ holds
byte-for-byte copies that its PrometheusRule and dashboard ConfigMaps embed. tests/project/test_helm.py fails
when a copy differs, is missing or is stale.

    python deploy/helm/sync_chart_files.py           # write the copies
    python deploy/helm/sync_chart_files.py --check   # exit 1 and list what differs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHART_FILES = ROOT / "deploy" / "helm" / "kafka-connect-exporter" / "files"


def wanted() -> dict[Path, bytes]:
    """Every file the chart's files/ must hold, with its content."""
    files = {CHART_FILES / "kafka-connect.rules.yml": (ROOT / "alerts" / "kafka-connect.rules.yml").read_bytes()}
    for source in sorted((ROOT / "dashboards").glob("*.json")):
        files[CHART_FILES / "dashboards" / source.name] = source.read_bytes()
    return files


def differences() -> list[str]:
    """What is out of date, as paths relative to the repository; empty when the chart is in sync."""
    want = wanted()
    present = {p for p in CHART_FILES.rglob("*") if p.is_file()} if CHART_FILES.exists() else set()
    out = [
        str(path.relative_to(ROOT)) for path, data in want.items() if not path.is_file() or path.read_bytes() != data
    ]
    out += [f"{path.relative_to(ROOT)} (stale: no source)" for path in sorted(present - set(want))]
    return out


def sync() -> None:
    want = wanted()
    for path in {p for p in CHART_FILES.rglob("*") if p.is_file()} - set(want):
        path.unlink()
    for path, data in want.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report differences; exit 1 if any")
    args = parser.parse_args()
    if args.check:
        diff = differences()
        for line in diff:
            print(f"out of sync: {line}", file=sys.stderr)
        return 1 if diff else 0
    sync()
    return 0


if __name__ == "__main__":
    sys.exit(main())
