"""The alert rules and dashboards the project ships, loaded, and the metric names a PromQL expression selects."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "alerts"
RULE_FILES = sorted(ALERTS.glob("*.rules.yml"))
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))


# ----------------------------------------------------------------------------------------------- loading
def load_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            rules.extend(r for r in group["rules"] if "alert" in r)
    return rules


def load_dashboard(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])  # panels of collapsed rows


def dashboard_exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target."""
    for p in panels(dashboard):
        for t in p.get("targets", []):
            if t.get("expr"):
                yield f"{dashboard['title']} / {p['title']} / {t.get('refId')}", t["expr"]


def variable_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for v in dashboard["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            yield f"{dashboard['title']} / ${v['name']}", q


# ----------------------------------------------------------------------------------------------- PromQL
PROMQL_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
PROMQL_BRACES = re.compile(r"\{[^}]*\}")
PROMQL_RANGE = re.compile(r"\[[^\]]*\]")
PROMQL_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
PROMQL_IDENT = re.compile(r"(?<![\w.$:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")
PROMQL_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
PROMQL_KEYWORDS |= {"offset", "inf", "nan", "atan2"}


def metric_names(expr: str) -> set[str]:
    """Metric names selected by a PromQL expression (not functions, keywords, labels or durations)."""
    text = PROMQL_STRING.sub('""', expr)
    text = PROMQL_BRACES.sub("", text)
    text = PROMQL_RANGE.sub("", text)
    text = PROMQL_GROUPING.sub("", text)
    return {m for m in PROMQL_IDENT.findall(text) if m.lower() not in PROMQL_KEYWORDS}
