"""Alert rules and Grafana dashboards, checked with the real tools and against the documented metrics.

Runs `promtool check rules` and `promtool test rules` (Debian's `prometheus` package) and fails with their
output. A missing promtool is a failure, not a skip: these checks are the only thing that keeps dashboards and
alerts from drifting away from the exporter. Grafana's dashboard-linter cannot be installed here (the Go module
proxy refuses it), so test_dashboard_conventions checks every rule of it the dashboards follow, named after the
linter's rules, and test_dashboard_queries_parse is its PromQL parse check (with promtool).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.artifacts import (
    ALERTS,
    DASHBOARDS,
    PROMQL_BRACES,
    PROMQL_GROUPING,
    PROMQL_IDENT,
    PROMQL_KEYWORDS,
    PROMQL_RANGE,
    PROMQL_STRING,
    ROOT,
    RULE_FILES,
    dashboard_exprs,
    load_dashboard,
    load_rules,
    metric_names,
    panels,
    variable_queries,
)

RULE_TESTS = sorted((ALERTS / "tests").glob("*.yml"))
METRICS_DOC = ROOT / "docs" / "metrics.md"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
TOOLS_BIN = (
    Path(os.environ.get("KAFKA_CONNECT_EXPORTER_CACHE") or Path.home() / ".cache" / "kafka-connect-exporter") / "bin"
)

# Series Prometheus itself attaches to every scrape; dashboards and alerts may use them for the exporter's job.
PROMETHEUS_SERIES = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}
SEVERITIES = {"critical", "warning", "info"}
# Labels that identify what an alert is about: when an alert carries one, its summary and description name it.
IDENTIFYING_LABELS = ("connect_cluster", "connector", "task", "worker", "worker_id", "api")


def tool(name: str) -> str:
    found = shutil.which(name) or (str(TOOLS_BIN / name) if (TOOLS_BIN / name).is_file() else None)
    if found is None:
        pytest.fail(
            f"{name} not found on PATH or in {TOOLS_BIN}: install it with `make tools` "
            "(promtool: apt-get install prometheus)"
        )
    return found


def run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def assert_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"{' '.join(proc.args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def test_metric_name_extraction() -> None:
    expr = (
        'sum by (job, state) (rate(a_total{job=~"$job", x="or(b)"}[$__rate_interval])) '
        "/ on (job) group_left (instance) max without (worker_id) (b_seconds) > bool 3 * c or vector(1e3)"
    )
    assert metric_names(expr) == {"a_total", "b_seconds", "c"}


def documented_families() -> str:
    if not METRICS_DOC.is_file():
        pytest.fail(
            f"{METRICS_DOC.relative_to(ROOT)} is missing: every metric the dashboards and alerts use must be documented"
        )
    return METRICS_DOC.read_text(encoding="utf-8")


def is_documented(name: str, doc: str) -> bool:
    candidates = {name, name.removesuffix("_total")}
    return any(re.search(rf"(?<![\w]){re.escape(c)}(?![\w])", doc) for c in candidates)


# ----------------------------------------------------------------------------------------------- alerts
def test_promtool_check_rules() -> None:
    assert RULE_FILES, "no alerts/*.rules.yml"
    assert_ok(run(tool("promtool"), "check", "rules", *map(str, RULE_FILES)))


def test_promtool_test_rules() -> None:
    assert RULE_TESTS, "no alerts/tests/*.yml"
    assert_ok(run(tool("promtool"), "test", "rules", *map(str, RULE_TESTS)))


def load_rule_tests() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in RULE_TESTS:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        files = {(path.parent / f).resolve() for f in doc["rule_files"]}
        assert files <= {f.resolve() for f in RULE_FILES}, f"{path.name} tests rule files outside alerts/: {files}"
        for t in doc["tests"]:
            cases.extend(t.get("alert_rule_test", []))
    return cases


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    cases = load_rule_tests()
    missing = []
    for rule in load_rules():
        mine = [c for c in cases if c["alertname"] == rule["alert"]]
        if not any(c.get("exp_alerts") for c in mine):
            missing.append(f"{rule['alert']}: no case where it fires")
        if not any(not c.get("exp_alerts") for c in mine):
            missing.append(f"{rule['alert']}: no case where it must not fire")
    known = {r["alert"] for r in load_rules()}
    missing += [f"test for unknown alert {c['alertname']}" for c in cases if c["alertname"] not in known]
    assert not missing, "\n".join(missing)


def runbook_anchors() -> set[str]:
    anchors = set()
    for line in RUNBOOKS.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))  # GitHub's heading slugs
    return anchors


def test_alerts_follow_conventions() -> None:
    anchors = runbook_anchors()
    problems = []
    names = [r["alert"] for r in load_rules()]
    problems += [f"duplicate alert {n}" for n in {n for n in names if names.count(n) > 1}]
    for rule in load_rules():
        name, labels, ann = rule["alert"], rule.get("labels", {}), rule.get("annotations", {})
        if not rule.get("for"):
            problems.append(f"{name}: no `for`")
        if labels.get("severity") not in SEVERITIES:
            problems.append(f"{name}: severity {labels.get('severity')!r} not in {sorted(SEVERITIES)}")
        for key in ("summary", "description", "runbook_url"):
            if not str(ann.get(key, "")).strip():
                problems.append(f"{name}: no {key} annotation")
        url = str(ann.get("runbook_url", ""))
        page, _, anchor = url.partition("#")
        if not page.endswith("docs/runbooks.md") or anchor != name.lower() or anchor not in anchors:
            problems.append(f"{name}: runbook_url {url!r} is not docs/runbooks.md#{name.lower()} with such a section")
        if re.search(r"(?<![\w])sum\s*\(", rule["expr"]):
            problems.append(f"{name}: bare sum() drops the labels that say what is broken")
        if "kafka_connect_task_state" in rule["expr"] and "without (worker_id)" not in rule["expr"]:
            problems.append(f"{name}: task alerts must aggregate `max without (worker_id)` (rebalances move tasks)")
    assert not problems, "\n".join(problems)


def test_alert_texts_name_what_is_broken() -> None:
    """Whatever identifying label a firing test case shows, the summary and description must name it."""
    rules = {r["alert"]: r for r in load_rules()}
    problems = set()
    for case in load_rule_tests():
        rule = rules.get(case["alertname"])
        for alert in case.get("exp_alerts") or []:
            for label in IDENTIFYING_LABELS:
                if label not in alert["exp_labels"] or rule is None:
                    continue
                for key in ("summary", "description"):
                    if f"$labels.{label}" not in rule["annotations"][key]:
                        problems.add(f"{rule['alert']}: {key} does not name {label}")
    assert not problems, "\n".join(sorted(problems))


# ----------------------------------------------------------------------------------------------- dashboards
def test_dashboards_are_generated() -> None:
    assert len(DASHBOARDS) == 4, [p.name for p in DASHBOARDS]
    assert_ok(run(sys.executable, str(ROOT / "dashboards" / "generate.py"), "--check"))


# Grafana unit ids (its value formats) the dashboards may use; panel-units-rule rejects an unknown id.
GRAFANA_UNITS = {
    "none", "string", "short", "percent", "percentunit", "bool", "bool_yes_no", "bool_on_off",
    "ns", "µs", "ms", "s", "m", "h", "d", "dtdurationms", "dtdurations", "dthms", "dtdhms",
    "dateTimeAsIso", "dateTimeAsLocal", "dateTimeFromNow",
    "bytes", "decbytes", "bits", "decbits", "Bps", "binBps", "bps", "binbps",
    "cps", "ops", "reqps", "rps", "wps", "iops", "cpm", "opm", "rpm", "wpm",
}  # fmt: skip
# Panel types the linter's panel rules look at (rows, text and state timelines are left alone by it).
LINTED_PANELS = {"stat", "singlestat", "graph", "table", "timeseries", "gauge"}
VARIABLE_FUNCTIONS = {"label_names", "label_values", "metrics", "query_result"}


def variable_query(v: dict[str, Any]) -> str:
    return str(v["query"]["query"] if isinstance(v["query"], dict) else v["query"])


def blank(pattern: re.Pattern[str], text: str) -> str:
    """``text`` with every match of ``pattern`` replaced by as many spaces (positions stay where they were)."""
    return pattern.sub(lambda m: " " * len(m.group()), text)


def selectors(expr: str) -> Iterator[tuple[str, str]]:
    """(metric name, its ``{...}`` or "") for every vector selector of a PromQL expression."""
    text = blank(PROMQL_STRING, expr)
    text = blank(PROMQL_BRACES, text)
    text = blank(PROMQL_RANGE, text)
    text = blank(PROMQL_GROUPING, text)
    for m in PROMQL_IDENT.finditer(text):
        if m.group(1).lower() in PROMQL_KEYWORDS:
            continue
        braces = re.match(r'\s*(\{(?:"(?:[^"\\]|\\.)*"|[^}"])*\})', expr[m.end() :])
        yield m.group(1), braces.group(1) if braces else ""


def test_selector_extraction() -> None:
    expr = 'sum by (job) (rate(a_total{job=~"$job", x="b{c}"}[$__rate_interval])) / on (job) b or vector(1)'
    assert list(selectors(expr)) == [("a_total", '{job=~"$job", x="b{c}"}'), ("b", "")]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_conventions(path: Path) -> None:
    """Every dashboard-linter rule we rely on (its rule name first in each message), plus provisioning needs."""
    d = load_dashboard(path)
    problems = []
    if "__inputs" in d or "__requires" in d:
        problems.append("has __inputs/__requires (export-for-sharing form); provisioning needs the plain form")
    if d.get("schemaVersion", 0) < 39:
        problems.append(f"schemaVersion {d.get('schemaVersion')} < 39")
    if not d.get("uid"):
        problems.append("needs a uid")
    if d.get("editable") is not False:
        problems.append("uneditable-dashboard-rule: editable is not false")
    variables = {v["name"]: v for v in d["templating"]["list"]}
    sources = [v for v in variables.values() if v["type"] == "datasource"]
    if [(v["name"], v.get("label"), v.get("query")) for v in sources] != [("datasource", "Data source", "prometheus")]:
        problems.append("template-datasource-rule: one Prometheus variable named datasource, labelled 'Data source'")
    for name in ("job", "instance"):
        rule = f"template-{name}-rule"
        v = variables.get(name)
        if v is None:
            problems.append(f"{rule}: no ${name} variable")
            continue
        if v["type"] != "query" or v.get("label") != name.title():
            problems.append(f"{rule}: ${name} must be a query labelled {name.title()!r}")
        if not (v.get("multi") and v.get("includeAll") and v.get("allValue") == ".+"):
            problems.append(f"{rule}: ${name} must be multi-select with allValue .+")
    for v in variables.values():
        if v["type"] == "query":
            if v.get("refresh") != 2:
                problems.append(f"template-on-time-change-reload-rule: ${v['name']} does not refresh on time change")
            if v.get("datasource", {}).get("uid") != "${datasource}":
                rule = f"template-{v['name']}-rule" if v["name"] in ("job", "instance") else "variables"
                problems.append(f"{rule}: ${v['name']} does not use ${{datasource}}")
            m = re.fullmatch(r"\s*([a-z_]+)\((.+)\)\s*", variable_query(v))
            if m is None or m.group(1) not in VARIABLE_FUNCTIONS:
                problems.append(f"template-label-promql-rule: ${v['name']}: {variable_query(v)!r}")
    for p in panels(d):
        if p["type"] == "row":
            continue
        title = p.get("title", "?")
        if not p.get("title") or not p.get("description"):
            problems.append(f"panel-title-description-rule: panel {title!r} needs a title and a description")
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if unit not in GRAFANA_UNITS:
            problems.append(f"panel-units-rule: panel {title!r}: unit {unit!r} is not a Grafana unit id")
        for o in p.get("fieldConfig", {}).get("overrides", []):
            for prop in o.get("properties", []):
                if prop.get("id") == "unit" and prop.get("value") not in GRAFANA_UNITS:
                    problems.append(f"panel-units-rule: panel {title!r}: override unit {prop.get('value')!r}")
        if p["type"] in LINTED_PANELS and not p.get("targets"):
            problems.append(f"panel-no-targets-rule: panel {title!r} has no targets")
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"panel-datasource-rule: panel {title!r}: datasource is not ${{datasource}}")
        for t in p.get("targets", []):
            if t.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"panel-datasource-rule: panel {title!r}: target {t.get('refId')} datasource")
    for where, expr in dashboard_exprs(d):
        for name, braces in selectors(expr):
            if 'job=~"$job"' not in braces:
                problems.append(f'target-job-rule: {where}: {name}{braces} has no job=~"$job"')
            if 'instance=~"$instance"' not in braces:
                problems.append(f'target-instance-rule: {where}: {name}{braces} has no instance=~"$instance"')
        for m in re.finditer(r"\b(rate|irate|increase)\s*\([^\[]*\[([^\]]*)\]", expr):
            if m.group(2) != "$__rate_interval":
                problems.append(f"target-rate-interval-rule: {where}: {m.group(1)} over [{m.group(2)}]")
        for m in re.finditer(r"\[\s*\$__rate_interval\s*\]", expr):  # only as a function's range argument
            if not re.search(r"\b\w+\s*\(\s*[a-zA-Z_:][\w:]*\s*(\{[^}]*\})?\s*$", expr[: m.start()]):
                problems.append(f"target-rate-interval-rule: {where}: [$__rate_interval] outside a function call")
        for m in re.finditer(r"([a-zA-Z_:][\w:]*_total)\s*(\{[^}]*\})?\s*(\[)?", expr):
            before = expr[: m.start()].rstrip()
            if not (m.group(3) and re.search(r"\b(rate|irate|increase)\s*\($", before)):
                problems.append(f"target-counter-agg-rule: {where}: {m.group(1)} outside rate()/increase()")
    assert not problems, "\n".join(problems)


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """Every panel query and variable selector is valid PromQL once Grafana's variables are filled in (checked
    by promtool): the linter's target-promql-rule and template-label-promql-rule."""
    rules: list[dict[str, str]] = []
    where: list[str] = []
    for path in DASHBOARDS:
        d = load_dashboard(path)
        exprs = list(dashboard_exprs(d))
        for w, query in variable_queries(d):  # template-label-promql-rule: the selector in label_values(...)
            m = re.fullmatch(r"\s*label_values\((.+),\s*\w+\s*\)\s*", query)
            assert m, f"{w}: {query}"
            exprs.append((w, m.group(1)))
        for w, expr in exprs:
            filled = expr.replace("$__rate_interval", "1m")
            filled = re.sub(r"\$\{?(\w+)\}?", r"\1", filled)
            rules.append({"record": f"dashboard_query_{len(rules)}", "expr": filled})
            where.append(w)
    assert rules
    file = tmp_path / "dashboard-queries.yml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8")
    proc = run(tool("promtool"), "check", "rules", str(file))
    index = "\n".join(f"rule {i + 1}: {w}" for i, w in enumerate(where))
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}\nrule numbers:\n{index}"


# ----------------------------------------------------------------------------------------------- metric names
def used_metric_names() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for rule in load_rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"alert {rule['alert']}")
    for path in DASHBOARDS:
        d = load_dashboard(path)
        for where, expr in dashboard_exprs(d):
            for name in metric_names(expr):
                used.setdefault(name, set()).add(where)
        for where, query in variable_queries(d):
            m = re.match(r"\s*label_values\(\s*([a-zA-Z_:][\w:]*)", query)
            assert m, f"{where}: not a label_values(metric..., label) query: {query}"
            used.setdefault(m.group(1), set()).add(where)
    return used


def test_used_metrics_are_documented() -> None:
    doc = documented_families()
    used = used_metric_names()
    assert "kafka_connect_up" in used and "kafka_connect_task_state" in used  # the extraction found something
    missing = sorted(n for n in used if n not in PROMETHEUS_SERIES and not is_documented(n, doc))
    detail = "\n".join(f"  {n}: used by {', '.join(sorted(used[n])[:3])}" for n in missing)
    assert not missing, f"metric families used but not documented in docs/metrics.md:\n{detail}"


def test_only_exporter_and_prometheus_series() -> None:
    strange = sorted(
        n for n in used_metric_names() if not n.startswith("kafka_connect_") and n not in PROMETHEUS_SERIES
    )
    assert not strange, strange
