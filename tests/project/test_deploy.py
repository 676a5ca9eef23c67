"""deploy/ examples: each one checked by the tool that will read it, or by the exporter's own config loader."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = ROOT / "alerts" / "kafka-connect.rules.yml"


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} missing: run `make tools`"
    return found


def alert_names() -> set[str]:
    rules = yaml.safe_load(RULES.read_text())
    return {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}


def k8s_docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text()) if d]


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    # KafkaConnectExporterDown selects the job by name; the example must use a name it matches.
    assert re.fullmatch("kafka-connect-exporter.*", job["job_name"])
    assert 'job=~"kafka-connect-exporter.*"' in RULES.read_text()
    config["rule_files"] = [str(RULES)]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [tool("promtool"), "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_config_passes_amtool_and_names_real_alerts() -> None:
    path = DEPLOY / "alertmanager" / "alertmanager.yml"
    result = subprocess.run([tool("amtool"), "check-config", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(path.read_text())
    severities = {m.split("=")[1].strip('"') for r in config["route"]["routes"] for m in r["matchers"]}
    rules = yaml.safe_load(RULES.read_text())
    used = {r["labels"]["severity"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert used <= severities, "every severity the rules use has a route"
    names = alert_names()
    for inhibit in config["inhibit_rules"]:
        for matcher in inhibit["source_matchers"] + inhibit["target_matchers"]:
            pattern = matcher.split("=", 1)[1].lstrip("~").strip('"')
            assert any(re.fullmatch(pattern, n) for n in names), f"{matcher} matches no alert"


def test_a_down_cluster_inhibits_every_alert_about_its_workers_connectors_and_tasks() -> None:
    """Through an outage the exporter serves the last known state, so those alerts keep firing; while the cluster
    alert pages, Alertmanager must hold back every one of them (the rule files decide which: any alert on a
    worker, connector or task of a connect_cluster), and nothing else."""
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    [rule] = [
        r for r in config["inhibit_rules"] if r["source_matchers"] == ['alertname="KafkaConnectClusterUnreachable"']
    ]
    assert rule["equal"] == ["connect_cluster"]
    [target] = rule["target_matchers"]
    pattern = target.split("=~", 1)[1].strip('"')
    rules = yaml.safe_load(RULES.read_text())
    per_cluster_parts = {
        r["alert"]
        for g in rules["groups"]
        if g["name"] in ("kafka-connect", "kafka-connect-failures", "kafka-connect-offsets")
        for r in g["rules"]
        if "alert" in r and r["alert"] != "KafkaConnectClusterUnreachable"
    }
    assert per_cluster_parts >= {
        "KafkaConnectConnectorFailed",
        "KafkaConnectTaskFailed",
        "KafkaConnectConnectorFlapping",
    }
    inhibited = {n for n in alert_names() if re.fullmatch(pattern, n)}
    assert inhibited == per_cluster_parts
    result = subprocess.run(
        [
            tool("amtool"),
            "config",
            "routes",
            "test",
            "--config.file",
            str(DEPLOY / "alertmanager" / "alertmanager.yml"),
            "alertname=KafkaConnectClusterUnreachable",
            "severity=critical",
            "connect_cluster=prod",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "platform-pager", result.stdout + result.stderr


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    ds = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert ds["datasources"][0]["type"] == "prometheus"
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "kafka-connect.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    assert provider["providers"][0]["options"]["path"]


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["spec"]["template"]["spec"]["containers"])


def _configmap(docs: list[dict[str, Any]], name: str) -> str:
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name]
    return str(cm["data"]["config.yml"])


@pytest.mark.parametrize("name", ["exporter-deployment.yaml", "connect-worker-sidecar.yaml", "exporter-sharded.yaml"])
def test_kubernetes_exporter_containers_are_probed_and_unprivileged(name: str) -> None:
    docs = k8s_docs(name)
    exporters = [
        c
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
        for c in _containers(d)
        if c["image"].startswith("kafka-connect-exporter")
    ]
    assert exporters
    for c in exporters:
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {"containerPort": 9838, "name": "metrics"} in c["ports"]
        sc = c.get("securityContext", {})
        assert sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem") is True
        assert "--config.file=/etc/kafka-connect-exporter/config.yml" in c["args"]


def test_deployment_config_is_valid_for_the_exporter(tmp_path: Path) -> None:
    docs = k8s_docs("exporter-deployment.yaml")
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "connect-password").write_text(secret["stringData"]["connect-password"])
    text = _configmap(docs, "kafka-connect-exporter").replace("/etc/kafka-connect-exporter/secrets", str(secrets))
    (tmp_path / "config.yml").write_text(text)
    config = load_config(tmp_path / "config.yml", environ={})
    assert config.clusters[0].autoheal.mode == "dry-run"
    assert len(config.clusters[0].urls) == 3


def test_sharded_replicas_split_the_clusters_once_each(tmp_path: Path) -> None:
    docs = k8s_docs("exporter-sharded.yaml")
    (tmp_path / "config.yml").write_text(_configmap(docs, "kafka-connect-exporter-sharded"))
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    replicas = sts["spec"]["replicas"]
    (exporter,) = _containers(sts)
    assert "--sharding.shard=$(SHARD)" in exporter["args"]
    everything = load_config(tmp_path / "config.yml", environ={}, overrides={"sharding.shards": 1})
    per_pod = [
        {c.name for c in load_config(tmp_path / "config.yml", environ={}, overrides={"sharding.shard": i}).clusters}
        for i in range(replicas)
    ]
    assert load_config(tmp_path / "config.yml", environ={}).sharding.shards == replicas
    assert sorted(n for names in per_pod for n in names) == sorted(c.name for c in everything.clusters)
    assert all(per_pod), per_pod


def test_sidecar_config_is_valid_and_scoped_to_its_worker(tmp_path: Path) -> None:
    docs = k8s_docs("connect-worker-sidecar.yaml")
    (tmp_path / "config.yml").write_text(_configmap(docs, "connect-autoheal-sidecar"))
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    (sidecar,) = [c for c in _containers(sts) if c["name"] == "autoheal"]
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    # what Kubernetes would expand $(POD_IP) to
    environ = {k: v.replace("$(POD_IP)", "10.1.2.3") for k, v in env.items() if v is not None}
    config = load_config(tmp_path / "config.yml", environ=environ)
    heal = config.clusters[0].autoheal
    assert (heal.mode, heal.scope, heal.worker_id) == ("enforce", "local-worker", "10.1.2.3:8083")
    worker_props = _configmap_props(docs)
    assert worker_props["rest.advertised.host.name"] == "${env:POD_IP}"
    assert worker_props["rest.advertised.port"] == "8083"


def _configmap_props(docs: list[dict[str, Any]]) -> dict[str, str]:
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "connect-worker"]
    lines = [ln for ln in cm["data"]["worker.properties"].splitlines() if ln.strip() and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines)
