"""What Grafana would send to Prometheus for our dashboards: every panel target with its variables filled in.

Template variables are resolved the way Grafana resolves them, by running their ``label_values(...)`` queries
against the Prometheus under test (over the time range looked at):

- multi-value variables with "All" and an ``allValue`` (``$job``, ``$instance``, ...) become that value (``.+``);
- multi-value variables with "All" and no ``allValue`` become the regex alternation of every value found,
  each escaped (Grafana's Prometheus interpolation of a multi-value);
- single-value variables (the connector dashboard's ``$connect_cluster`` and ``$connector``) are tried with
  every value found, one binding each, as a user would pick them one after the other.

Built-ins get the values Grafana computes for a "Last 5 minutes" view of a data source whose scrape interval is
Prometheus' (1 s): the step (``$__interval``) is the scrape interval, ``$__rate_interval`` = max(step + scrape,
4 x scrape) = 4s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.prometheus import SCRAPE_INTERVAL, PrometheusServer
from tests.support.artifacts import load_dashboard, panels

STEP = SCRAPE_INTERVAL
BUILTINS = {
    "__interval": f"{STEP:g}s",
    "__rate_interval": f"{max(STEP + SCRAPE_INTERVAL, 4 * SCRAPE_INTERVAL):g}s",
    "__range": "5m",
}
_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<selector>.+?)\s*,\s*(?P<label>\w+)\s*\)\s*$", re.DOTALL)
# Stat panels show 0 rather than "No data" with a trailing `or vector(0)`; the query before it must still
# return data somewhere, or the panel could never show anything but that 0.
_FALLBACK = re.compile(r"\s+or\s+vector\(0\)\s*$")


@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: str
    ref: str
    expr: str
    instant: bool

    @property
    def where(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref}"

    def core(self) -> str | None:
        """The query without its ``or vector(0)`` fallback (None when it has none)."""
        stripped = _FALLBACK.sub("", self.expr)
        return stripped if stripped != self.expr else None


@dataclass
class Dashboard:
    path: Path
    data: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.data["title"])

    @classmethod
    def load(cls, path: Path) -> Dashboard:
        return cls(path, load_dashboard(path))

    def targets(self) -> list[Target]:
        out = []
        for p in panels(self.data):
            for t in p.get("targets", []):
                if t.get("expr"):
                    instant = bool(t.get("instant")) and not t.get("range")
                    out.append(Target(self.title, p["title"], t.get("refId", "A"), t["expr"], instant))
        return out

    def query_variables(self) -> list[dict[str, Any]]:
        return [v for v in self.data["templating"]["list"] if v["type"] == "query"]


def substitute(text: str, binding: dict[str, str]) -> str:
    """Fill in ``$var``, ``${var}`` and ``[[var]]``; an unknown variable is an error, as it is a broken query."""

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in binding:
            return binding[name]
        if name in BUILTINS:
            return BUILTINS[name]
        raise KeyError(f"variable ${name} is neither a dashboard variable nor a supported built-in")

    return _VAR.sub(repl, text)


def regex_escape(value: str) -> str:
    """Grafana's escaping of a multi-value for a Prometheus regex matcher: regex metacharacters get a backslash,
    itself escaped for the PromQL string (so ``a.b`` becomes ``a\\\\.b`` in the query text)."""
    return re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", value)


def variable_query(v: dict[str, Any]) -> str:
    q = v["query"]
    return str(q["query"] if isinstance(q, dict) else q)


def label_values(prom: PrometheusServer, query: str, start: float, end: float) -> list[str]:
    """``label_values(selector, label)`` as Grafana runs it: the label's values among the matching series."""
    m = _LABEL_VALUES.match(query)
    if m is None:
        raise ValueError(f"not a label_values(selector, label) query: {query}")
    label = m.group("label")
    found = {s[label] for s in prom.series(m.group("selector"), start, end) if s.get(label)}
    return sorted(found)


@dataclass
class Resolution:
    """Bindings to try, and what each variable query returned (for the report and the variable check)."""

    bindings: list[dict[str, str]]
    values: dict[str, set[str]]


def resolve(
    prom: PrometheusServer, dashboard: Dashboard, start: float, end: float, only: dict[str, str] | None = None
) -> Resolution:
    """Every binding of the dashboard's variables a user could pick over ``[start, end]``.

    ``only`` restricts single-value variables to one value (e.g. ``{"connect_cluster": "real"}``).
    """
    variables = dashboard.query_variables()
    values: dict[str, set[str]] = {v["name"]: set() for v in variables}
    bindings: list[dict[str, str]] = []

    def walk(i: int, binding: dict[str, str]) -> None:
        if i == len(variables):
            bindings.append(dict(binding))
            return
        v = variables[i]
        name = v["name"]
        found = label_values(prom, substitute(variable_query(v), binding), start, end)
        values[name].update(found)
        if v.get("multi") and v.get("includeAll"):
            if v.get("allValue"):
                walk(i + 1, {**binding, name: v["allValue"]})
            elif found:
                joined = "|".join(regex_escape(x) for x in found)
                walk(i + 1, {**binding, name: f"({joined})" if len(found) > 1 else joined})
            return
        for value in found:
            if only and name in only and value != only[name]:
                continue
            walk(i + 1, {**binding, name: value})

    walk(0, {})
    return Resolution(bindings, values)
