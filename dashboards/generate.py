#!/usr/bin/env python3
"""Generates the Grafana dashboards in this folder.

The JSON files are the shipped artefact (Grafana provisions them as they are); this script is their source,
so that every panel gets the same datasource, filters, units and descriptions without copy-paste drift.
Metric family names and the known states come from the exporter's family catalogue (``exporter.families``),
so run it with the project's environment (the package installed, as ``make venv`` sets it up):

    .venv/bin/python dashboards/generate.py          # rewrite the JSON files
    .venv/bin/python dashboards/generate.py --check  # exit 1 if a JSON file differs from what this script makes
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from exporter.families import (
    AUTOHEAL_BREAKER_OPEN,
    AUTOHEAL_LAST_RESTART,
    AUTOHEAL_MODE,
    AUTOHEAL_NEXT_ATTEMPT,
    AUTOHEAL_PERSISTENT_FAILURE,
    AUTOHEAL_PERSISTENT_FAILURES,
    AUTOHEAL_RESTARTS,
    AUTOHEAL_SUPPRESSED,
    BUILD_INFO,
    CLOUD_API_ERRORS,
    CLOUD_API_UP,
    CLOUD_LATE,
    CLOUD_NEWEST_BUCKET,
    CLOUD_THROUGHPUT,
    CONNECTOR_HEALTH,
    CONNECTOR_INFO,
    CONNECTOR_OFFSETS_LAST_CHANGE,
    CONNECTOR_STATE,
    CONNECTOR_TASKS,
    CONNECTOR_TASKS_MAX,
    CONNECTOR_TASKS_ON_LOST_WORKERS,
    FAILED_SINCE,
    FAILURE_INFO,
    LAST_POLL,
    LAST_SUCCESS,
    POLL_DURATION,
    POLL_ERRORS,
    POLL_INTERVAL,
    POLLS,
    SINK_COMMITTED_OFFSETS,
    SINK_LAG_RECORDS,
    STATE_TRANSITIONS,
    TASK_STATE,
    UP,
    WORKER_INFO,
    WORKER_REACHABLE,
    WORKER_TASKS,
    WORKER_UP,
)
from exporter.model import CLOUD_CONNECTOR_STATES, CLOUD_TASK_STATES, CONNECT_CONNECTOR_STATES, CONNECT_TASK_STATES

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}
JI = 'job=~"$job", instance=~"$instance"'
JIC = JI + ', connect_cluster=~"$connect_cluster"'
KEY = "job, instance, connect_cluster, connector"  # identifies one connector across exporters

Panel = dict[str, Any]

# State codes and colours for the one-row-per-thing state timelines. Each known state of either source kind
# (exporter.families) gets a code, 0 means "a state this dashboard does not know" (the exporter passes unknown
# states through). Codes are part of the dashboards users have saved: never renumber one. A state added to the
# catalogue without an entry here fails the generation (KeyError).
STATE_STYLE: dict[str, tuple[int, str]] = {
    "RUNNING": (1, "green"),
    "PAUSED": (2, "blue"),
    "STOPPED": (3, "purple"),
    "UNASSIGNED": (4, "yellow"),
    "RESTARTING": (5, "orange"),
    "PROVISIONING": (6, "yellow"),
    "DEGRADED": (7, "orange"),
    "FAILED": (8, "red"),
    "NONE": (9, "text"),
    "DELETED": (10, "text"),
    "SYSTEM_ERROR": (11, "red"),
    "USER_ACTIONABLE_ERROR": (12, "dark-red"),
}


def styled(*known: tuple[str, ...]) -> list[tuple[str, int, str]]:
    """(state, code, colour) of every state in ``known``, in code order."""
    states = {s for group in known for s in group}
    return sorted(((s, *STATE_STYLE[s]) for s in states), key=lambda style: style[1])


CONNECTOR_STATES = styled(CONNECT_CONNECTOR_STATES, CLOUD_CONNECTOR_STATES)
TASK_STATES = styled(CONNECT_TASK_STATES, CLOUD_TASK_STATES)
STATE_COLORS = {name: color for name, _, color in CONNECTOR_STATES + TASK_STATES}
FAILED_TASK_STATES = "FAILED|SYSTEM_ERROR|USER_ACTIONABLE_ERROR"


# --------------------------------------------------------------------------------------------------- helpers
def state_code_expr(metric: str, selector: str, states: list[tuple[str, int, str]], drop: str) -> str:
    """One value per series group: the code of the state whose 0/1 series is 1 (0 when none of the known ones)."""
    parts = [f'{metric}{{{selector}, state="{name}"}} * {code}' for name, code, _ in states]
    return f"max without ({drop}) (\n  " + "\n  or ".join(parts) + "\n)"


# Queries that work with metrics.state_series all and current (which serves neither 0-valued state series nor
# kafka_connect_connector_tasks), and with task_metrics true or false (no task series).
def task_count(selector: str) -> str:
    """Tasks per connector: the exporter's count where served, else counted from the task series."""
    return (
        f"({CONNECTOR_TASKS.sample_name}{{{selector}}}"
        f" or count without (task, worker_id, state) ({TASK_STATE.sample_name}{{{selector}}} == 1))"
    )


def tasks_max(selector: str) -> str:
    """tasks.max per connector: the series where served, else the task count (``current`` mode serves it only
    where it differs from the task count)."""
    return f"({CONNECTOR_TASKS_MAX.sample_name}{{{selector}}} or {task_count(selector)})"


def no_tasks(selector: str) -> str:
    """0 for each connector with no task in any state (absent otherwise)."""
    return (
        f"(0 * max without (state) ({CONNECTOR_STATE.sample_name}{{{selector}}} == 1)"
        f" unless on ({KEY}) ({TASK_STATE.sample_name}{{{selector}}} == 1)"
        f" unless on ({KEY}) ({CONNECTOR_TASKS.sample_name}{{{selector}}} > 0))"
    )


def running_or_not(selector: str) -> str:
    """Per task, 1 while RUNNING and 0 in any other state (from whichever state series exist)."""
    return (
        f'max by (task) ({TASK_STATE.sample_name}{{{selector}, state="RUNNING"}} == 1)'
        f" or max by (task) (0 * {TASK_STATE.sample_name}{{{selector}}})"
    )


def state_mappings(states: list[tuple[str, int, str]]) -> list[dict[str, Any]]:
    options: dict[str, Any] = {"0": {"text": "other state", "color": "purple", "index": 0}}
    for i, (name, code, color) in enumerate(states, start=1):
        options[str(code)] = {"text": name, "color": color, "index": i}
    return [{"type": "value", "options": options}]


def up_mappings(up: str = "UP", down: str = "DOWN") -> list[dict[str, Any]]:
    return [
        {
            "type": "value",
            "options": {
                "0": {"text": down, "color": "red", "index": 0},
                "1": {"text": up, "color": "green", "index": 1},
            },
        }
    ]


def target(expr: str, legend: str = "", ref: str = "A", *, table: bool = False) -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": DS, "expr": expr, "refId": ref, "legendFormat": legend or "__auto"}
    if table:
        t.update({"format": "table", "instant": True, "range": False})
    else:
        t.update({"range": True, "instant": False})
    return t


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def base(kind: str, title: str, description: str, unit: str, targets: list[dict[str, Any]], *, w: int, h: int) -> Panel:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"h": h, "w": w, "x": 0, "y": 0},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": targets,
    }


def stat(
    title: str,
    description: str,
    unit: str,
    targets: list[dict[str, Any]],
    *,
    w: int = 4,
    h: int = 4,
    steps: tuple[tuple[float | None, str], ...] = ((None, "green"),),
    mappings: list[dict[str, Any]] | None = None,
    text_mode: str = "auto",
    decimals: int | None = None,
) -> Panel:
    p = base("stat", title, description, unit, targets, w=w, h=h)
    d = p["fieldConfig"]["defaults"]
    d["color"] = {"mode": "thresholds"}
    d["thresholds"] = thresholds(*steps)
    d["mappings"] = mappings or []
    if decimals is not None:
        d["decimals"] = decimals
    p["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": text_mode,
        "wideLayout": True,
        "showPercentChange": False,
    }
    return p


def timeseries(
    title: str,
    description: str,
    unit: str,
    targets: list[dict[str, Any]],
    *,
    w: int = 12,
    h: int = 8,
    stack: bool = False,
    bars: bool = False,
    minimum: float | None = 0,
    overrides: list[dict[str, Any]] | None = None,
) -> Panel:
    p = base("timeseries", title, description, unit, targets, w=w, h=h)
    d = p["fieldConfig"]["defaults"]
    d["color"] = {"mode": "palette-classic"}
    d["custom"] = {
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 60 if bars else (25 if stack else 10),
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "axisSoftMin": minimum,
    }
    if minimum is None:
        del d["custom"]["axisSoftMin"]
    p["fieldConfig"]["overrides"] = overrides or []
    p["options"] = {
        "legend": {"displayMode": "table", "placement": "right", "showLegend": True, "calcs": ["lastNotNull", "max"]},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return p


def state_timeline(
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    mappings: list[dict[str, Any]],
    *,
    w: int = 24,
    h: int = 8,
) -> Panel:
    p = base("state-timeline", title, description, "none", targets, w=w, h=h)
    d = p["fieldConfig"]["defaults"]
    d["color"] = {"mode": "thresholds"}
    d["thresholds"] = thresholds((None, "purple"))
    d["mappings"] = mappings
    d["custom"] = {"fillOpacity": 80, "lineWidth": 0}
    p["options"] = {
        "mergeValues": True,
        "showValue": "auto",
        "alignValue": "left",
        "rowHeight": 0.9,
        "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom"},
        "tooltip": {"mode": "single", "sort": "none"},
    }
    return p


def table(
    title: str,
    description: str,
    unit: str,
    targets: list[dict[str, Any]],
    *,
    w: int = 24,
    h: int = 8,
    hide: tuple[str, ...] = ("Time", "__name__", "job"),
    rename: dict[str, str] | None = None,
    merge: bool = False,
    overrides: list[dict[str, Any]] | None = None,
    sort_by: str | None = None,
) -> Panel:
    p = base("table", title, description, unit, targets, w=w, h=h)
    p["fieldConfig"]["defaults"]["custom"] = {"align": "auto", "filterable": True, "cellOptions": {"type": "auto"}}
    p["fieldConfig"]["overrides"] = overrides or []
    p["options"] = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"]}}
    if sort_by:
        p["options"]["sortBy"] = [{"displayName": sort_by, "desc": False}]
    transformations: list[dict[str, Any]] = []
    if merge:
        transformations.append({"id": "merge", "options": {}})
    transformations.append(
        {
            "id": "organize",
            "options": {
                "excludeByName": dict.fromkeys(hide, True),
                "renameByName": rename or {},
                "indexByName": {},
            },
        }
    )
    p["transformations"] = transformations
    return p


def row(title: str) -> Panel:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0},
        "panels": [],
    }


def color_by_name(names: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}],
        }
        for name, color in names.items()
    ]


def layout(panels: list[Panel]) -> list[Panel]:
    """Left-to-right, top-to-bottom placement on Grafana's 24-column grid; ids in order."""
    x = y = row_h = 0
    for i, p in enumerate(panels, start=1):
        g = p["gridPos"]
        if p["type"] == "row" or x + g["w"] > 24:
            y += row_h
            x = row_h = 0
        g["x"], g["y"] = x, y
        p["id"] = i
        if p["type"] == "row":
            y += 1
            continue
        x += g["w"]
        row_h = max(row_h, g["h"])
    return panels


def datasource_var() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def query_var(
    name: str, label: str, query: str, *, multi: bool = True, all_value: str | None = ".+", description: str = ""
) -> dict[str, Any]:
    v: dict[str, Any] = {
        "name": name,
        "label": label,
        "description": description,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "current": {},
        "hide": 0,
        "includeAll": multi,
        "multi": multi,
        "options": [],
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
    }
    if multi:
        v["allValue"] = all_value
    return v


def job_instance_vars(metric: str) -> list[dict[str, Any]]:
    return [
        query_var("job", "Job", f"label_values({metric}, job)", description="Prometheus job scraping the exporter"),
        query_var(
            "instance",
            "Instance",
            f'label_values({metric}{{job=~"$job"}}, instance)',
            description="Exporter instance (host:port)",
        ),
    ]


def dashboard(
    uid: str,
    title: str,
    description: str,
    variables: list[dict[str, Any]],
    panels: list[Panel],
    *,
    annotations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                *(annotations or []),
            ]
        },
        "description": description,
        "editable": False,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {
                "asDropdown": True,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "tags": ["kafka-connect"],
                "targetBlank": False,
                "title": "Kafka Connect",
                "type": "dashboards",
            }
        ],
        "panels": layout(panels),
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["kafka-connect", "kafka-connect-exporter"],
        "templating": {"list": [datasource_var(), *variables]},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


# --------------------------------------------------------------------------------------------------- fleet health
HEALTH_COLORS = {
    "failed": "red",
    "degraded": "orange",
    "unknown": "purple",
    "paused": "blue",
    "stopped": "text",
    "healthy": "green",
}


def fleet_health_panels() -> list[Panel]:
    """Failure intelligence: the fleet by health, what failed and why, and how often states change."""
    health = CONNECTOR_HEALTH.sample_name
    return [
        row("Fleet health"),
        *(
            stat(
                name.capitalize(),
                f"Connectors whose health is {name} (kafka_connect_connector_health; the rules are in "
                "docs/metrics.md).",
                "none",
                [target(f'count({health}{{{JIC}, health="{name}"}}) or vector(0)', name)],
                w=4,
                steps=((None, "green"), (1, color)) if name != "healthy" else ((None, "green"),),
            )
            for name, color in HEALTH_COLORS.items()
        ),
        table(
            "Failed connectors and tasks, and why",
            "Every failed connector and task (empty task: the connector itself) with the class of its trace's first "
            "line (exception) and of its last 'Caused by:' (root cause), and since when it has been failing.",
            "dateTimeFromNow",
            [
                target(
                    f"max by (connect_cluster, connector, task) ({FAILED_SINCE.sample_name}{{{JIC}}}) * 1000"
                    f"\n  * on (connect_cluster, connector, task) group_left (exception, root_cause)\n"
                    f"  max by (connect_cluster, connector, task, exception, root_cause) ({FAILURE_INFO.sample_name}"
                    f"{{{JIC}}})",
                    table=True,
                )
            ],
            w=16,
            h=8,
            rename={"connect_cluster": "cluster", "root_cause": "root cause", "Value": "failed since"},
            sort_by="failed since",
        ),
        timeseries(
            "State changes",
            "Changes of connector and task states seen between polls, by the new state, per rate interval. "
            "Repeated failures of one connector fire KafkaConnectConnectorFlapping.",
            "none",
            [
                target(
                    f"sum by (connect_cluster, to_state) (increase({STATE_TRANSITIONS.sample_name}"
                    f"{{{JIC}}}[$__rate_interval]))",
                    "{{connect_cluster}} → {{to_state}}",
                )
            ],
            w=8,
            bars=True,
            stack=True,
        ),
    ]


def connector_failure_panels(sel: str) -> list[Panel]:
    """Failure intelligence for one connector: health, why it failed, since when, last restart."""
    return [
        row("Health and failures"),
        stat(
            "Health",
            "One answer for the connector: healthy, degraded, failed, paused, stopped or unknown (rules in "
            "docs/metrics.md).",
            "none",
            [target(f"{CONNECTOR_HEALTH.sample_name}{{{sel}}} == 1", "{{health}}")],
            w=4,
            text_mode="name",
            steps=((None, "blue"),),
        ),
        table(
            "Why it failed",
            "Each failed part (empty task: the connector itself): the class of its trace's first line (exception), "
            "of its last 'Caused by:' (root cause), and since when it has been failing.",
            "dateTimeFromNow",
            [
                target(
                    f"max by (task) ({FAILED_SINCE.sample_name}{{{sel}}}) * 1000\n"
                    "  * on (task) group_left (exception, root_cause)\n"
                    f"  max by (task, exception, root_cause) ({FAILURE_INFO.sample_name}{{{sel}}})",
                    table=True,
                )
            ],
            w=14,
            h=4,
            rename={"root_cause": "root cause", "Value": "failed since"},
            sort_by="task",
        ),
        stat(
            "Last auto-heal restart",
            "When auto-heal last restarted the connector or one of its tasks (accepted restarts only).",
            "dateTimeFromNow",
            [target(f"max({AUTOHEAL_LAST_RESTART.sample_name}{{{sel}}}) * 1000", "last restart")],
            w=6,
            steps=((None, "blue"),),
        ),
    ]


def transition_annotations(sel: str) -> list[dict[str, Any]]:
    """Marks on every time series panel where the connector's or a task's state changed."""
    return [
        {
            "datasource": DS,
            "enable": True,
            "hide": False,
            "iconColor": "orange",
            "name": "State changes",
            "expr": f"sum by (to_state) (increase({STATE_TRANSITIONS.sample_name}{{{sel}}}[$__rate_interval])) > 0",
            "step": "$__rate_interval",
            "titleFormat": "→ {{to_state}}",
            "textFormat": "state changes of the connector or its tasks",
            "useValueForTime": False,
        }
    ]


# --------------------------------------------------------------------------------------------------- overview
def overview() -> dict[str, Any]:
    running = f'({CONNECTOR_STATE.sample_name}{{{JIC}, state="RUNNING"}} == 1)'
    short_of_tasks = (
        "(\n"
        f"  {task_count(JIC)}\n"
        f"    < on ({KEY}) {CONNECTOR_TASKS_MAX.sample_name}{{{JIC}}}\n"
        f"  or {no_tasks(JIC)}\n"
        ")\n"
        f"and on ({KEY}) {running}"
    )
    panels: list[Panel] = [
        *fleet_health_panels(),
        row("Clusters and workers"),
        stat(
            "Clusters up",
            "Connect clusters (and Confluent Cloud environments) whose connector statuses were read in the "
            "exporter's last poll, out of all configured. Red when any is unreachable.",
            "none",
            [
                target(f"sum({UP.sample_name}{{{JIC}}})", "up"),
                target(f"count({UP.sample_name}{{{JIC}}})", "configured", "B"),
            ],
            w=4,
            text_mode="value_and_name",
        ),
        stat(
            "Clusters down",
            f"Connect clusters whose statuses could not be read in the last poll ({UP.sample_name} == 0).",
            "none",
            [target(f"count({UP.sample_name}{{{JIC}}} == 0) or vector(0)", "down")],
            w=4,
            steps=((None, "green"), (1, "red")),
        ),
        stat(
            "Workers up",
            "Self-managed Connect workers that answered GET / in the last poll, out of all configured worker URLs.",
            "none",
            [
                target(f"sum({WORKER_UP.sample_name}{{{JIC}}})", "up"),
                target(f"count({WORKER_UP.sample_name}{{{JIC}}})", "configured", "B"),
            ],
            w=4,
            text_mode="value_and_name",
        ),
        stat(
            "Workers down",
            "Configured worker URLs that did not answer GET / in the last poll.",
            "none",
            [target(f"count({WORKER_UP.sample_name}{{{JIC}}} == 0) or vector(0)", "down")],
            w=4,
            steps=((None, "green"), (1, "orange")),
        ),
        stat(
            "Failed connectors",
            "Connectors in state FAILED now. A FAILED connector is not restarted by Connect itself.",
            "none",
            [target(f'sum({CONNECTOR_STATE.sample_name}{{{JIC}, state="FAILED"}}) or vector(0)', "FAILED")],
            w=4,
            steps=((None, "green"), (1, "red")),
        ),
        stat(
            "Failed tasks",
            "Tasks in a failed state now (FAILED; SYSTEM_ERROR or USER_ACTIONABLE_ERROR for Confluent Cloud "
            "managed connectors).",
            "none",
            [
                target(
                    "count(max without (worker_id) "
                    f'({TASK_STATE.sample_name}{{{JIC}, state=~"{FAILED_TASK_STATES}"}}) == 1)'
                    " or vector(0)",
                    "failed",
                )
            ],
            w=4,
            steps=((None, "green"), (1, "red")),
        ),
        state_timeline(
            "Cluster reachability",
            "Per Connect cluster: whether the exporter read its connector statuses (UP) or not (DOWN) at each "
            "point in time.",
            [target(f"{UP.sample_name}{{{JIC}}}", "{{connect_cluster}}")],
            up_mappings(),
            w=12,
            h=6,
        ),
        state_timeline(
            "Worker reachability",
            "Per configured worker URL: whether it answered GET / in the exporter's poll.",
            [target(f"{WORKER_UP.sample_name}{{{JIC}}}", "{{connect_cluster}} {{worker}}")],
            up_mappings(),
            w=12,
            h=6,
        ),
        table(
            "Workers",
            "Version, commit and Kafka cluster id that each reachable worker reported on GET /. Mixed versions "
            "in one cluster usually mean a rolling upgrade is in progress or stalled.",
            "none",
            [target(f"{WORKER_INFO.sample_name}{{{JIC}}}", table=True)],
            h=6,
            hide=("Time", "__name__", "job", "Value"),
            rename={"connect_cluster": "cluster", "kafka_cluster_id": "Kafka cluster id"},
        ),
        timeseries(
            "Work per worker",
            "Tasks the connector and task statuses assign to each worker they name (its advertised host:port). "
            "Uneven lines after a rebalance show imbalance; a lost worker keeps its tasks here until the rebalance "
            "delay (scheduled.rebalance.max.delay.ms, 5 minutes by default) moves them.",
            "none",
            [target(f"{WORKER_TASKS.sample_name}{{{JIC}}}", "{{connect_cluster}} {{worker_id}}")],
            w=12,
            h=6,
        ),
        state_timeline(
            "Lost workers",
            "Per worker named by the statuses: REACHABLE when it answered the exporter's GET /, LOST when it "
            "answered before and no longer does. Workers that never answered from here are not shown.",
            [target(f"{WORKER_REACHABLE.sample_name}{{{JIC}}}", "{{connect_cluster}} {{worker_id}}")],
            up_mappings("REACHABLE", "LOST"),
            w=8,
            h=6,
        ),
        stat(
            "Tasks on lost workers",
            "Tasks assigned to a lost or unhealthy worker: Connect may still report them RUNNING, but they copy "
            "no data until they move.",
            "none",
            [target(f"sum({CONNECTOR_TASKS_ON_LOST_WORKERS.sample_name}{{{JIC}}}) or vector(0)", "tasks")],
            w=4,
            h=6,
            steps=((None, "green"), (1, "red")),
        ),
        row("Connectors and tasks"),
        timeseries(
            "Connectors by state",
            "Number of connectors in each state over time, all selected clusters together.",
            "none",
            [target(f"sum by (state) ({CONNECTOR_STATE.sample_name}{{{JIC}}})", "{{state}}")],
            stack=True,
            overrides=color_by_name(STATE_COLORS),
        ),
        timeseries(
            "Tasks by state",
            "Number of tasks in each state over time, all selected clusters together.",
            "none",
            [target(f"sum by (state) ({TASK_STATE.sample_name}{{{JIC}}})", "{{state}}")],
            stack=True,
            overrides=color_by_name(STATE_COLORS),
        ),
        table(
            "Everything not RUNNING",
            "Connectors and tasks whose current state is anything but RUNNING (FAILED, PAUSED, STOPPED, "
            "UNASSIGNED, RESTARTING, and the Confluent Cloud states). PAUSED and STOPPED are operator intent; "
            "the rest need a look. Rows with an empty task column are the connectors themselves.",
            "none",
            [
                target(f'{CONNECTOR_STATE.sample_name}{{{JIC}, state!="RUNNING"}} == 1', table=True),
                target(f'{TASK_STATE.sample_name}{{{JIC}, state!="RUNNING"}} == 1', ref="B", table=True),
            ],
            h=9,
            merge=True,
            hide=("Time", "__name__", "job", "Value", "Value #A", "Value #B"),
            rename={"connect_cluster": "cluster"},
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "state"},
                    "properties": [
                        {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                        {
                            "id": "mappings",
                            "value": [
                                {
                                    "type": "value",
                                    "options": {
                                        name: {"color": color, "index": i}
                                        for i, (name, color) in enumerate(STATE_COLORS.items())
                                    },
                                }
                            ],
                        },
                    ],
                }
            ],
            sort_by="state",
        ),
        table(
            "RUNNING connectors short of tasks",
            "RUNNING connectors that have fewer tasks than their tasks.max, or none at all. Zero tasks is a silent "
            "failure (nothing is copied). Fewer than tasks.max can be legitimate: a connector may create fewer "
            "tasks than allowed (for example one per table or partition).",
            "none",
            [
                target(short_of_tasks, table=True),
                target(
                    f"{CONNECTOR_TASKS_MAX.sample_name}{{{JIC}}}\nand on ({KEY}) (\n{short_of_tasks}\n)",
                    ref="B",
                    table=True,
                ),
            ],
            h=7,
            merge=True,
            hide=("Time", "__name__", "job"),
            rename={"connect_cluster": "cluster", "Value #A": "tasks", "Value #B": "tasks.max"},
        ),
        *throughput_and_lag_panels(),
        row("Auto-heal"),
        timeseries(
            "Auto-heal restarts",
            "Restart requests the exporter's auto-heal sent, by kind (connector or task) and outcome (accepted, "
            "conflict during a rebalance, not_found, error, dry_run), per rate interval.",
            "none",
            [
                target(
                    f"sum by (connect_cluster, kind, outcome) (increase({AUTOHEAL_RESTARTS.sample_name}"
                    f"{{{JIC}}}[$__rate_interval]))",
                    "{{connect_cluster}} {{kind}} {{outcome}}",
                )
            ],
            bars=True,
            stack=True,
        ),
        timeseries(
            "Auto-heal restarts held back",
            "Restarts auto-heal decided not to make, by reason: grace period, backoff, restart budget, open "
            "circuit breaker, denied by policy, dry run, out of scope, attempt cap reached.",
            "none",
            [
                target(
                    f"sum by (connect_cluster, reason) (increase({AUTOHEAL_SUPPRESSED.sample_name}"
                    f"{{{JIC}}}[$__rate_interval]))",
                    "{{connect_cluster}} {{reason}}",
                )
            ],
            bars=True,
            stack=True,
        ),
        stat(
            "Auto-heal mode",
            "Auto-heal mode per cluster: off, dry-run (decisions are only logged and counted) or enforce.",
            "none",
            [target(f"{AUTOHEAL_MODE.sample_name}{{{JIC}}} == 1", "{{connect_cluster}}: {{mode}}")],
            w=8,
            text_mode="name",
            steps=((None, "blue"),),
        ),
        stat(
            "Targets in persistent failure",
            "Connectors and tasks auto-heal has given up on after reaching its attempt cap. They need a person.",
            "none",
            [target(f"sum({AUTOHEAL_PERSISTENT_FAILURES.sample_name}{{{JIC}}}) or vector(0)", "persistent")],
            w=8,
            steps=((None, "green"), (1, "red")),
        ),
        stat(
            "Circuit breakers open",
            "Clusters where auto-heal's circuit breaker is open: too many restarts at once, so it stopped restarting.",
            "none",
            [target(f"sum({AUTOHEAL_BREAKER_OPEN.sample_name}{{{JIC}}}) or vector(0)", "open")],
            w=8,
            steps=((None, "green"), (1, "orange")),
        ),
        table(
            "Next restart attempts",
            "FAILED connectors and tasks auto-heal will restart, with the earliest time grace period and backoff "
            "allow the next attempt (empty task: the connector itself). Targets in persistent failure, denied or "
            "out of scope are not listed.",
            "dateTimeFromNow",
            [target(f"{AUTOHEAL_NEXT_ATTEMPT.sample_name}{{{JIC}}} * 1000", table=True)],
            w=24,
            h=8,
            hide=("Time", "__name__", "job"),
            rename={"connect_cluster": "cluster", "Value": "next attempt"},
        ),
    ]
    variables = [
        *job_instance_vars(UP.sample_name),
        query_var(
            "connect_cluster",
            "Connect cluster",
            f"label_values({UP.sample_name}{{{JI}}}, connect_cluster)",
            description="Kafka Connect cluster (connect_cluster label)",
        ),
    ]
    return dashboard(
        "kafka-connect-overview",
        "Kafka Connect / Overview",
        "Kafka Connect clusters, workers, connectors and tasks as seen by kafka-connect-exporter.",
        variables,
        panels,
    )


def throughput_and_lag_panels() -> list[Panel]:
    """The offsets row: is data moving? Committed records/s and lag per sink, time since offsets last changed,
    and Confluent Cloud's own throughput beside them."""
    trails = (
        " From the committed offsets the exporter reads (GET /connectors/{c}/offsets): sinks commit every "
        "offset.flush.interval.ms (60s by default), so this trails real time and is step-shaped at short ranges."
    )
    return [
        row("Throughput and lag"),
        timeseries(
            "Committed records/s per sink",
            "Records per second each sink connector committed, summed over its topics." + trails,
            "cps",
            [
                target(
                    f"sum by (connect_cluster, connector) (rate({SINK_COMMITTED_OFFSETS.sample_name}"
                    f"{{{JIC}}}[$__rate_interval]))",
                    "{{connect_cluster}} {{connector}}",
                )
            ],
            w=6,
        ),
        timeseries(
            "Lag per sink",
            "Records waiting for each sink connector: end offset minus committed offset, summed over its topics "
            "(needs clusters[].kafka). Lag that grows while committed records/s is zero is a stalled sink "
            "(KafkaConnectSinkStalled).",
            "short",
            [
                target(
                    f"sum by (connect_cluster, connector) ({SINK_LAG_RECORDS.sample_name}{{{JIC}}})",
                    "{{connect_cluster}} {{connector}}",
                )
            ],
            w=6,
        ),
        timeseries(
            "Time since offsets last changed",
            "How long ago the exporter last saw any of the connector's offsets change (sinks and sources; a "
            "connector appears once a change has been seen). Read on the offsets cadence, not at scrape time.",
            "s",
            [
                target(
                    f"time() - max by (connect_cluster, connector) ({CONNECTOR_OFFSETS_LAST_CHANGE.name}{{{JIC}}})",
                    "{{connect_cluster}} {{connector}}",
                )
            ],
            w=6,
        ),
        timeseries(
            "Confluent Cloud records in",
            "Managed sink connectors: records per second received from Kafka (Confluent's received_records), "
            "beside the self-managed sinks' committed records.",
            "cps",
            [
                target(
                    f"sum by (connect_cluster, connector) (rate({CLOUD_THROUGHPUT['received_records'].sample_name}"
                    f"{{{JIC}}}[$__rate_interval]))",
                    "{{connect_cluster}} {{connector}}",
                )
            ],
            w=6,
        ),
    ]


# --------------------------------------------------------------------------------------------------- connector
def connector() -> dict[str, Any]:
    # Single-value variables: exact matches, so regex metacharacters in connector names are harmless.
    sel = JI + ', connect_cluster="$connect_cluster", connector="$connector"'
    panels: list[Panel] = [
        row("$connector"),
        stat(
            "State",
            "The connector's current state as reported by the Connect REST API (or the Confluent Cloud Connect API).",
            "none",
            [target(state_code_expr(CONNECTOR_STATE.sample_name, sel, CONNECTOR_STATES, "state"), "state")],
            w=4,
            mappings=state_mappings(CONNECTOR_STATES),
            steps=((None, "purple"),),
        ),
        stat(
            "Tasks",
            "Tasks the connector has now, against its configured tasks.max.",
            "none",
            [
                target(f"sum({task_count(sel)}) or vector(0)", "tasks"),
                target(f"sum({tasks_max(sel)})", "tasks.max", "B"),
            ],
            w=4,
            text_mode="value_and_name",
            steps=((None, "blue"),),
        ),
        stat(
            "Failed tasks",
            "Tasks of this connector in a failed state now.",
            "none",
            [
                target(
                    f'count(max without (worker_id) ({TASK_STATE.sample_name}{{{sel}, state=~"{FAILED_TASK_STATES}"}})'
                    " == 1) or vector(0)",
                    "failed",
                )
            ],
            w=4,
            steps=((None, "green"), (1, "red")),
        ),
        table(
            "Connector",
            "Class, type, the worker running the connector instance and, for Confluent Cloud, the lcc- id.",
            "none",
            [target(f"{CONNECTOR_INFO.sample_name}{{{sel}}}", table=True)],
            w=12,
            h=4,
            hide=("Time", "__name__", "job", "instance", "Value"),
            rename={"connect_cluster": "cluster"},
        ),
        state_timeline(
            "Connector state over time",
            "The connector's state at each point in time. 'other state' is one this dashboard does not know.",
            [target(state_code_expr(CONNECTOR_STATE.sample_name, sel, CONNECTOR_STATES, "state"), "{{connector}}")],
            state_mappings(CONNECTOR_STATES),
            h=4,
        ),
        state_timeline(
            "Task states over time",
            "Each task's state at each point in time (one row per task). Rebalances that move a task to another "
            "worker do not break the row.",
            [
                target(
                    state_code_expr(TASK_STATE.sample_name, sel, TASK_STATES, "worker_id, state"),
                    "task {{task}}",
                )
            ],
            state_mappings(TASK_STATES),
        ),
        table(
            "Tasks and their workers",
            "Each task's current state and the worker (worker_id, host:port) running it.",
            "none",
            [target(f"{TASK_STATE.sample_name}{{{sel}}} == 1", table=True)],
            w=12,
            hide=("Time", "__name__", "job", "instance", "Value", "connector"),
            rename={"connect_cluster": "cluster"},
            sort_by="task",
        ),
        state_timeline(
            "Task placement over time",
            "Which worker ran each task at each point in time; a change is a rebalance or a restart elsewhere.",
            [
                target(
                    f"count by (task, worker_id) ({TASK_STATE.sample_name}{{{sel}}} == 1)",
                    "task {{task}} @ {{worker_id}}",
                )
            ],
            [{"type": "value", "options": {"1": {"text": "assigned", "color": "blue", "index": 0}}}],
            w=12,
        ),
        *connector_failure_panels(sel),
        row("Restarts"),
        timeseries(
            "Auto-heal restarts",
            "Restart requests auto-heal sent for this connector, by kind and outcome, per rate interval.",
            "none",
            [
                target(
                    f"sum by (kind, outcome) (increase({AUTOHEAL_RESTARTS.sample_name}{{{sel}}}[$__rate_interval]))",
                    "{{kind}} {{outcome}}",
                )
            ],
            w=8,
            bars=True,
            stack=True,
        ),
        timeseries(
            "Task state changes",
            "How often each task's RUNNING series changed value per rate interval: restarts by anyone (auto-heal, "
            "an operator, a rebalance), not only by auto-heal.",
            "none",
            [
                target(
                    f"sum by (task) (changes(({running_or_not(sel)})[$__rate_interval:]))",
                    "task {{task}}",
                )
            ],
            w=8,
            bars=True,
        ),
        table(
            "Auto-heal status",
            "Next scheduled restart per target (empty task: the connector itself). A target in persistent failure "
            "has reached the attempt cap and is left to a person.",
            "dateTimeFromNow",
            [
                target(f"{AUTOHEAL_NEXT_ATTEMPT.sample_name}{{{sel}}} * 1000", table=True),
                target(f"{AUTOHEAL_PERSISTENT_FAILURE.sample_name}{{{sel}}}", ref="B", table=True),
            ],
            w=8,
            merge=True,
            hide=("Time", "__name__", "job", "instance", "connector", "connect_cluster"),
            rename={"Value #A": "next attempt", "Value #B": "persistent failure"},
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "persistent failure"},
                    "properties": [{"id": "unit", "value": "bool_yes_no"}],
                }
            ],
        ),
        row("Confluent Cloud throughput (managed connectors only)"),
        *cloud_throughput_panels(sel, "{{connector}}", w=6),
    ]
    variables = [
        *job_instance_vars(CONNECTOR_STATE.sample_name),
        query_var(
            "connect_cluster",
            "Connect cluster",
            f"label_values({CONNECTOR_STATE.sample_name}{{{JI}}}, connect_cluster)",
            multi=False,
        ),
        query_var(
            "connector",
            "Connector",
            f'label_values({CONNECTOR_STATE.sample_name}{{{JI}, connect_cluster="$connect_cluster"}}, connector)',
            multi=False,
        ),
    ]
    return dashboard(
        "kafka-connect-connector",
        "Kafka Connect / Connector",
        "One Kafka Connect connector: state, tasks and their workers, health and failures, restarts, and Confluent "
        "Cloud throughput. State changes are marked on the time series.",
        variables,
        panels,
        annotations=transition_annotations(sel),
    )


def cloud_throughput_panels(sel: str, legend: str, *, w: int) -> list[Panel]:
    note = (
        " Confluent Cloud publishes per-minute values about 3 minutes late; the exporter adds each minute to the "
        "counter when it arrives, so the curve trails real time and is step-shaped at short ranges."
    )

    def rate(metric: str) -> str:
        return f"sum by (connect_cluster, connector) (rate({metric}{{{sel}}}[$__rate_interval]))"

    return [
        timeseries(
            "Records in",
            "Records per second sink connectors received from Kafka (Confluent's received_records; zero for "
            "source connectors)." + note,
            "cps",
            [target(rate(CLOUD_THROUGHPUT["received_records"].sample_name), legend)],
            w=w,
        ),
        timeseries(
            "Records out",
            "Records per second source connectors wrote to Kafka after transformations (Confluent's sent_records; "
            "zero for sink connectors)." + note,
            "cps",
            [target(rate(CLOUD_THROUGHPUT["sent_records"].sample_name), legend)],
            w=w,
        ),
        timeseries(
            "Bytes in",
            "Bytes per second sink connectors received from Kafka (received_bytes)." + note,
            "Bps",
            [target(rate(CLOUD_THROUGHPUT["received_bytes"].sample_name), legend)],
            w=w,
        ),
        timeseries(
            "Bytes out",
            "Bytes per second source connectors wrote to Kafka (sent_bytes)." + note,
            "Bps",
            [target(rate(CLOUD_THROUGHPUT["sent_bytes"].sample_name), legend)],
            w=w,
        ),
        timeseries(
            "Dead-letter records",
            "Records per second written to the dead-letter queue topic (sink connectors with errors.tolerance=all). "
            "Anything above zero is data that did not reach its destination." + note,
            "cps",
            [target(rate(CLOUD_THROUGHPUT["dead_letter_queue_records"].sample_name), legend)],
            w=24 if w == 6 else w,
            h=6,
        ),
    ]


# --------------------------------------------------------------------------------------------------- exporter
def exporter() -> dict[str, Any]:
    ji = JI
    panels: list[Panel] = [
        row("Scrapes"),
        stat(
            "Exporter version",
            "kafka-connect-exporter version and Python version of each selected instance.",
            "none",
            [target(f"{BUILD_INFO.sample_name}{{{ji}}}", "{{version}} (Python {{python_version}})")],
            w=6,
            text_mode="name",
            steps=((None, "blue"),),
        ),
        stat(
            "Scrape target up",
            "Whether Prometheus could scrape the exporter (Prometheus' own up series for the exporter job).",
            "none",
            [target(f"min(up{{{ji}}})", "up")],
            w=6,
            mappings=up_mappings(),
            steps=((None, "red"), (1, "green")),
        ),
        stat(
            "Scrape duration",
            "How long Prometheus' last scrape of the exporter took (scrape_duration_seconds). The exporter renders "
            "cached snapshots, so this should stay far below the scrape timeout whatever the Connect clusters do.",
            "s",
            [target(f"max(scrape_duration_seconds{{{ji}}})", "duration")],
            w=6,
            steps=((None, "green"), (1, "orange"), (5, "red")),
        ),
        stat(
            "Samples per scrape",
            "Samples in the last scrape of the exporter (scrape_samples_scraped), all selected instances together.",
            "short",
            [target(f"sum(scrape_samples_scraped{{{ji}}})", "samples")],
            w=6,
            steps=((None, "blue"),),
        ),
        timeseries(
            "Scrape duration",
            "Time Prometheus spent scraping each exporter instance.",
            "s",
            [target(f"scrape_duration_seconds{{{ji}}}", "{{instance}}")],
        ),
        timeseries(
            "Samples per scrape",
            "Samples each scrape of the exporter returned; it grows with connectors x states and tasks x states.",
            "short",
            [target(f"scrape_samples_scraped{{{ji}}}", "{{instance}}")],
        ),
        row("Polls of the Connect clusters"),
        timeseries(
            "Poll duration",
            "How long the exporter's last poll cycle of each cluster took, against the configured poll interval. "
            "A cycle close to the interval means polls are falling behind.",
            "s",
            [
                target(f"{POLL_DURATION.sample_name}{{{JIC}}}", "{{connect_cluster}}"),
                target(f"{POLL_INTERVAL.sample_name}{{{JIC}}}", "{{connect_cluster}} interval", "B"),
            ],
            overrides=[
                {
                    "matcher": {"id": "byFrameRefID", "options": "B"},
                    "properties": [
                        {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                        {"id": "custom.fillOpacity", "value": 0},
                    ],
                }
            ],
        ),
        timeseries(
            "Time since last successful poll",
            "Seconds since the exporter last read each cluster's statuses successfully (from "
            f"{LAST_SUCCESS.sample_name}), and since its last poll attempt. Growing "
            "lines mean the data shown elsewhere is getting old.",
            "s",
            [
                target(
                    f"time() - {LAST_SUCCESS.sample_name}{{{JIC}}}",
                    "{{connect_cluster}} success",
                ),
                target(
                    f"time() - {LAST_POLL.sample_name}{{{JIC}}}",
                    "{{connect_cluster}} attempt",
                    "B",
                ),
            ],
        ),
        timeseries(
            "Polls by result",
            "Poll cycles per minute by cluster and result (success or failure).",
            "opm",
            [
                target(
                    f"sum by (connect_cluster, result) (60 * rate({POLLS.sample_name}{{{JIC}}}[$__rate_interval]))",
                    "{{connect_cluster}} {{result}}",
                )
            ],
            stack=True,
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": ".* failure"},
                    "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}}],
                }
            ],
        ),
        timeseries(
            "Poll errors by reason",
            "Failed requests per minute by cluster and reason: timeout, connect (refused, DNS, TLS), http_status "
            "(the worker answered an error status) and bad_response (body not as documented). A request that failed "
            "over to another worker still counts here.",
            "opm",
            [
                target(
                    f"sum by (connect_cluster, reason) (60 * rate({POLL_ERRORS.sample_name}"
                    f"{{{JIC}}}[$__rate_interval]))",
                    "{{connect_cluster}} {{reason}}",
                )
            ],
            bars=True,
            stack=True,
        ),
        stat(
            "Poll success ratio",
            "Share of poll cycles that succeeded over the rate interval, all selected clusters together.",
            "percentunit",
            [
                target(
                    f"sum(rate({POLLS.sample_name}"
                    f'{{{JIC}, result="success"}}[$__rate_interval]))'
                    f" / sum(rate({POLLS.sample_name}{{{JIC}}}[$__rate_interval]))",
                    "success",
                )
            ],
            w=12,
            steps=((None, "red"), (0.75, "orange"), (0.99, "green")),
            decimals=1,
        ),
        stat(
            "Oldest successful poll",
            "Age of the oldest 'last successful poll' among the selected clusters.",
            "s",
            [target(f"max(time() - {LAST_SUCCESS.sample_name}{{{JIC}}})", "age")],
            w=12,
            steps=((None, "green"), (180, "orange"), (600, "red")),
        ),
    ]
    variables = [
        *job_instance_vars(BUILD_INFO.sample_name),
        query_var(
            "connect_cluster",
            "Connect cluster",
            f"label_values({POLL_INTERVAL.sample_name}{{{JI}}}, connect_cluster)",
        ),
    ]
    return dashboard(
        "kafka-connect-exporter",
        "Kafka Connect / Exporter",
        "Health of kafka-connect-exporter itself: scrapes, poll cycles, errors and data age.",
        variables,
        panels,
    )


# --------------------------------------------------------------------------------------------------- cloud
def managed_stalled(sel: str) -> str:
    """RUNNING managed sinks with lag that received nothing over the rate interval (KafkaConnectManagedSinkStalled
    asks the same over 15 minutes)."""
    return (
        f"(sum by ({KEY}) ({SINK_LAG_RECORDS.sample_name}{{{sel}}}) > 0)"
        f" and on ({KEY}) (sum by ({KEY}) (increase({CLOUD_THROUGHPUT['received_records'].sample_name}"
        f"{{{sel}}}[$__rate_interval])) == 0)"
        f' and on ({KEY}) ({CONNECTOR_STATE.sample_name}{{{sel}, state="RUNNING"}} == 1)'
    )


def cloud_lag_and_heal_panels(sel: str) -> list[Panel]:
    """Managed sinks' lag and stalls, and what auto-heal did to managed connectors."""
    return [
        row("Sink lag, stalls and auto-heal"),
        stat(
            "Managed sinks not receiving",
            "RUNNING managed sinks with lag whose received_records did not grow over the rate interval. Over 15 "
            "counted minutes that is a stalled sink: its health is degraded and KafkaConnectManagedSinkStalled "
            "fires 5 minutes later.",
            "none",
            [target(f"count({managed_stalled(sel)}) or vector(0)", "stalled")],
            w=6,
            steps=((None, "green"), (1, "orange")),
        ),
        timeseries(
            "Lag per managed sink",
            "Records waiting for each managed sink connector: Confluent Cloud's consumer_lag_offsets of its consumer "
            "group connect-<lcc id>, summed over its topics (confluent_cloud.sink_lag). Lag that grows while "
            "records in is zero is a stalled sink.",
            "short",
            [
                target(
                    f"sum by (connect_cluster, connector) ({SINK_LAG_RECORDS.sample_name}{{{sel}}})",
                    "{{connect_cluster}} {{connector}}",
                )
            ],
            w=18,
        ),
        stat(
            "Auto-heal persistent failures",
            "Managed connectors and tasks auto-heal gave up on (attempt cap reached): they need a human, then "
            "POST /-/autoheal/retry. Absent when confluent_cloud.autoheal is off.",
            "none",
            [target(f"sum({AUTOHEAL_PERSISTENT_FAILURES.sample_name}{{{JIC}}}) or vector(0)", "persistent")],
            w=6,
            steps=((None, "green"), (1, "red")),
        ),
        timeseries(
            "Auto-heal restarts",
            "Restarts auto-heal sent to managed connectors (one POST …/restart restarts the connector and all its "
            "tasks), by connector and outcome: accepted, error, not_found, unsupported (the account lacks the "
            "restart endpoint: auto-heal stopped on the cluster), dry_run.",
            "short",
            [
                target(
                    f"sum by (connect_cluster, connector, outcome) (increase({AUTOHEAL_RESTARTS.sample_name}{{{sel}, "
                    f'kind="connector"}}[$__rate_interval]))',
                    "{{connect_cluster}} {{connector}} {{outcome}}",
                )
            ],
            w=18,
            bars=True,
            stack=True,
        ),
    ]


def cloud() -> dict[str, Any]:
    sel = JIC + ', connector=~"$connector"'
    panels: list[Panel] = [
        row("Confluent Cloud APIs"),
        stat(
            "API status",
            "Whether the exporter's last call to each Confluent Cloud API (metrics: Metrics API v2; connect: "
            "Connect API v1) succeeded.",
            "none",
            [target(f"{CLOUD_API_UP.sample_name}{{{JI}}}", "{{api}}")],
            w=6,
            text_mode="value_and_name",
            mappings=up_mappings(),
            steps=((None, "red"), (1, "green")),
        ),
        stat(
            "Data freshness",
            "Age of the newest per-minute bucket the exporter has read from the Metrics API, per cluster. "
            "About 3 to 5 minutes is normal: Confluent publishes each minute roughly 3 minutes late.",
            "s",
            [
                target(
                    f"time() - max by (connect_cluster) ({CLOUD_NEWEST_BUCKET.sample_name}{{{JIC}}})",
                    "{{connect_cluster}}",
                )
            ],
            w=6,
            text_mode="value_and_name",
            steps=((None, "green"), (420, "orange"), (900, "red")),
        ),
        stat(
            "Connectors writing dead letters",
            "Managed connectors that wrote records to their dead-letter queue over the rate interval.",
            "none",
            [
                target(
                    "count(sum by (connect_cluster, connector) "
                    f"(rate({CLOUD_THROUGHPUT['dead_letter_queue_records'].sample_name}"
                    f"{{{sel}}}[$__rate_interval])) > 0) or vector(0)",
                    "connectors",
                )
            ],
            w=6,
            steps=((None, "green"), (1, "orange")),
        ),
        stat(
            "Managed connectors not RUNNING",
            "Managed connectors of the selected clusters in any state but RUNNING (PROVISIONING, DEGRADED, FAILED, "
            "PAUSED, ...).",
            "none",
            [
                target(
                    f'count({CONNECTOR_STATE.sample_name}{{{sel}, state!="RUNNING"}} == 1) or vector(0)',
                    "not running",
                )
            ],
            w=6,
            steps=((None, "green"), (1, "orange")),
        ),
        timeseries(
            "API errors by reason",
            "Failed Confluent Cloud API calls per minute by API and reason (unauthorized and forbidden: check the "
            "API key; rate_limited: 429s; server_error, timeout, connect, bad_response).",
            "opm",
            [
                target(
                    f"sum by (api, reason) (60 * rate({CLOUD_API_ERRORS.sample_name}{{{JI}}}[$__rate_interval]))",
                    "{{api}} {{reason}}",
                )
            ],
            bars=True,
            stack=True,
        ),
        timeseries(
            "Data age",
            "Seconds between now and the newest Metrics API bucket read, per cluster. A line that keeps growing "
            "means no new data is arriving.",
            "s",
            [
                target(
                    f"time() - {CLOUD_NEWEST_BUCKET.sample_name}{{{JIC}}}",
                    "{{connect_cluster}}",
                )
            ],
        ),
        row("Throughput"),
        *cloud_throughput_panels(sel, "{{connect_cluster}} {{connector}}", w=12),
        timeseries(
            "Late data",
            "What the Metrics API added to minutes after the exporter first counted them, per second, by metric "
            "(re-read over confluent_cloud.revision_window and added to the counters above). It is what counting "
            "each minute only once would have lost; if it keeps growing, raise revision_window.",
            "short",
            [
                target(
                    f"sum by (connect_cluster, metric) (rate({CLOUD_LATE.sample_name}{{{JIC}}}[$__rate_interval]))",
                    "{{connect_cluster}} {{metric}}",
                )
            ],
            w=12,
        ),
        *cloud_lag_and_heal_panels(sel),
        table(
            "Managed connectors",
            "Current state of each selected managed connector.",
            "none",
            [target(f"{CONNECTOR_STATE.sample_name}{{{sel}}} == 1", table=True)],
            w=12,
            hide=("Time", "__name__", "job", "instance", "Value"),
            rename={"connect_cluster": "cluster"},
            sort_by="state",
        ),
    ]
    variables = [
        *job_instance_vars(CLOUD_API_UP.sample_name),
        # No allValue: "All" must mean the Confluent Cloud clusters listed, not every Connect cluster (.+).
        query_var(
            "connect_cluster",
            "Connect cluster",
            f"label_values({CLOUD_NEWEST_BUCKET.sample_name}{{{JI}}}, connect_cluster)",
            all_value=None,
        ),
        query_var(
            "connector",
            "Connector",
            f"label_values({CLOUD_THROUGHPUT['sent_records'].sample_name}"
            f'{{{JI}, connect_cluster=~"$connect_cluster"}}, connector)',
            all_value=".+",
        ),
    ]
    return dashboard(
        "confluent-cloud-connectors",
        "Kafka Connect / Confluent Cloud connectors",
        "Confluent Cloud managed connectors: records and bytes in and out, dead-letter records, late data, sink lag "
        "and stalls, auto-heal restarts, data freshness and the health of the Confluent Cloud APIs the exporter "
        "reads.",
        variables,
        panels,
    )


DASHBOARDS = {
    "kafka-connect-overview.json": overview,
    "kafka-connect-connector.json": connector,
    "kafka-connect-exporter.json": exporter,
    "confluent-cloud-connectors.json": cloud,
}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if a dashboard file is not what this script makes")
    args = parser.parse_args()
    stale = []
    for name, build in DASHBOARDS.items():
        path = HERE / name
        text = render(build)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run python dashboards/generate.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
