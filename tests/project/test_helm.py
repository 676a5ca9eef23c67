"""The Helm chart (deploy/helm/kafka-connect-exporter): lint, render and validate, all offline.

`helm lint --strict` and `helm template` run for the default values and for every file in deploy/helm/examples/.
Every rendered manifest is validated against the Kubernetes schemas that `kubernetes-validate` ships (strict: an
unknown field fails), the ServiceMonitor and PrometheusRule against the Prometheus Operator CRD schemas vendored
in tests/project/data/prometheus-operator/, with sockets closed to prove no schema is fetched. The rendered
configuration must load in the exporter's own config loader and the container's flags in its own parser.

Helm comes from `make tools` ($KAFKA_CONNECT_EXPORTER_CACHE/bin/helm); `make test` builds a missing one in the
background and these tests wait for it. Outside CI a missing helm skips with the reason; under CI=true it fails.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from exporter.cli import build_parser
from exporter.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "kafka-connect-exporter"
EXAMPLES = sorted((ROOT / "deploy" / "helm" / "examples").glob("*.yaml"))
CRD_DIR = Path(__file__).parent / "data" / "prometheus-operator"
BAD_VALUES = Path(__file__).parent / "data" / "helm" / "bad-values.yaml"
TOOLS_BIN = (
    Path(os.environ.get("KAFKA_CONNECT_EXPORTER_CACHE") or Path.home() / ".cache" / "kafka-connect-exporter") / "bin"
)
RELEASE, NAMESPACE = "kce", "monitoring"
# The oldest Kubernetes every mode of the chart supports (local-worker mode reads the pod-index label, 1.28+):
# charts are rendered for it, and manifests validated against its schemas and the newest ones.
KUBE_VERSION = "1.28.0"
SCHEMA_VERSIONS = sorted({"1.28.0", kubernetes_validate.latest_version()})
# Every values set the chart is rendered with: the defaults (None) and each example.
VALUE_SETS: list[Path | None] = [None, *EXAMPLES]
ALL_ON = ["--set", "serviceMonitor.enabled=true,prometheusRule.enabled=true,dashboards.enabled=true"]


def _ids(values: Path | None) -> str:
    return "defaults" if values is None else values.stem


# ------------------------------------------------------------------------------------------------- helm
@cache
def helm() -> str:
    cached = TOOLS_BIN / "helm"
    build = ""
    if not cached.is_file() and (TOOLS_BIN / "helm-build.pid").is_file():
        # make test builds a missing Helm in the background: wait for it as the script does, and say how it ended.
        proc = subprocess.run(
            ["bash", str(ROOT / "scripts" / "install-tools.sh"), "--wait-helm"],
            env={**os.environ, "KAFKA_CONNECT_EXPORTER_CACHE": str(TOOLS_BIN.parent)},
            capture_output=True,
            text=True,
            timeout=3000,  # the script gives up on a build after 45 minutes
            check=False,
        )
        build = proc.stderr.strip()
    found = str(cached) if cached.is_file() else shutil.which("helm")
    if found is None:
        reason = f"helm not found in {TOOLS_BIN} or on PATH: `make tools` builds it" + (
            f"; the background build:\n{build}" if build else ""
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    # No HOME-dependent state: helm reads no repositories or plugins for a local chart, but keep it out of ~.
    env = {**os.environ, "HELM_CACHE_HOME": "/nonexistent", "HELM_CONFIG_HOME": "/nonexistent"}
    return subprocess.run([helm(), *args], capture_output=True, text=True, timeout=300, check=False, env=env)


@cache
def render(values: Path | None, *extra: str) -> tuple[dict[str, Any], ...]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
    if values is not None:
        args += ["--values", str(values)]
    proc = run_helm(*args, *extra)
    assert proc.returncode == 0, f"helm {' '.join(args)} failed:\n{proc.stderr}"
    return tuple(d for d in yaml.safe_load_all(proc.stdout) if d)


def of_kind(docs: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def workload(docs: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    (one,) = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    return one


def exporter_container(docs: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    (container,) = workload(docs)["spec"]["template"]["spec"]["containers"]
    return dict(container)


def example(name: str) -> Path:
    path = ROOT / "deploy" / "helm" / "examples" / f"{name}.yaml"
    assert path.is_file(), path
    return path


# -------------------------------------------------------------------------------------------- validation
@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Schema validation must need no network: any connection attempt fails the test."""

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("schema validation tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield


def _closed(schema: Any) -> Any:
    """The CRD schema with unknown fields refused, as `kubectl apply --validate=strict` does (the API server
    would silently prune them: a misspelt field would be lost, not reported). Go's regexp takes a flag group
    after `^`, Python's only at the very start: `^(?i)x` becomes `(?i)^x`."""
    if isinstance(schema, dict):
        out = {k: _closed(v) for k, v in schema.items()}
        if isinstance(out.get("pattern"), str) and out["pattern"].startswith("^(?i)"):
            out["pattern"] = "(?i)^" + out["pattern"][len("^(?i)") :]
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


@cache
def crd_validator(kind: str) -> jsonschema.protocols.Validator:
    for path in CRD_DIR.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        if crd["spec"]["names"]["kind"] == kind:
            (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
            schema = _closed(version["schema"]["openAPIV3Schema"])
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
            cls.check_schema(schema)
            return cls(schema)
    raise AssertionError(f"no vendored CRD for {kind} in {CRD_DIR}")


def validate(doc: dict[str, Any]) -> None:
    """Raises on an invalid manifest; Prometheus Operator kinds against the vendored CRDs."""
    if doc["apiVersion"].startswith("monitoring.coreos.com/"):
        crd_validator(doc["kind"]).validate(doc)
    else:
        for version in SCHEMA_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def describe(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


# ----------------------------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("values", VALUE_SETS, ids=_ids)
def test_chart_lints(values: Path | None) -> None:
    args = ["lint", "--strict", str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
    if values is not None:
        args += ["--values", str(values)]
    proc = run_helm(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("values", VALUE_SETS, ids=_ids)
@pytest.mark.usefixtures("no_network")
def test_every_rendered_manifest_is_valid(values: Path | None) -> None:
    for extra in ((), tuple(ALL_ON)):
        docs = render(values, *extra)
        assert docs
        for doc in docs:
            try:
                validate(doc)
            except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
                pytest.fail(f"{describe(doc)} ({_ids(values)} {' '.join(extra)}): {exc}")
        # What the schemas cannot say: a probe has exactly one handler (values merge over the defaults).
        for container in workload(docs)["spec"]["template"]["spec"]["containers"]:
            for probe in ("livenessProbe", "readinessProbe"):
                handlers = {"httpGet", "tcpSocket", "exec", "grpc"} & container[probe].keys()
                assert len(handlers) == 1, f"{_ids(values)}: {probe} has handlers {sorted(handlers)}"


@pytest.mark.usefixtures("no_network")
def test_validators_reject_what_a_cluster_would() -> None:
    # The checks above mean something only if these schemas refuse broken manifests.
    docs = render(None, *ALL_ON)
    (monitor,) = of_kind(docs, "ServiceMonitor")
    bad = copy.deepcopy(monitor)
    bad["spec"]["endpoints"][0]["scrapeTimout"] = "10s"
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    (rule,) = of_kind(docs, "PrometheusRule")
    bad = copy.deepcopy(rule)
    bad["spec"]["groups"][0]["rules"][0]["for"] = 5
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    bad = copy.deepcopy(workload(docs))
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = [9838]
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(bad)


def test_chart_copies_of_alerts_and_dashboards_are_in_sync() -> None:
    # alerts/ and dashboards/ are the source; the chart embeds byte-for-byte copies (it cannot read outside).
    proc = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "helm" / "sync_chart_files.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"{proc.stderr}run `python deploy/helm/sync_chart_files.py`"


def test_prometheus_rule_is_alerts_rules_file() -> None:
    (rule,) = of_kind(render(None, *ALL_ON), "PrometheusRule")
    source = yaml.safe_load((ROOT / "alerts" / "kafka-connect.rules.yml").read_text(encoding="utf-8"))
    assert rule["spec"] == source
    # The annotations' templates reach Prometheus untouched, not rendered by Helm.
    assert "{{ $labels.connector }}" in json.dumps(rule["spec"])


def test_dashboards_are_configmaps_for_the_grafana_sidecar() -> None:
    maps = [d for d in of_kind(render(None, *ALL_ON), "ConfigMap") if "grafana_dashboard" in d["metadata"]["labels"]]
    sources = sorted((ROOT / "dashboards").glob("*.json"))
    assert len(maps) == len(sources) > 0
    by_key = {key: (cm, text) for cm in maps for key, text in cm["data"].items()}
    for source in sources:
        cm, text = by_key[source.name]
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(text) == json.loads(source.read_text(encoding="utf-8"))
    assert not of_kind(render(None), "PrometheusRule") and not of_kind(render(None), "ServiceMonitor")


def test_service_monitor_job_is_the_one_the_down_alert_selects() -> None:
    docs = render(example("kube-prometheus-stack"))
    (monitor,) = of_kind(docs, "ServiceMonitor")
    (service,) = of_kind(docs, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    rules = (ROOT / "alerts" / "kafka-connect.rules.yml").read_text(encoding="utf-8")
    (pattern,) = re.findall(r'up\{job=~"([^"]+)"\}', rules)
    assert re.fullmatch(pattern, job), f"job {job!r} is not matched by KafkaConnectExporterDown's {pattern!r}"
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"] == "metrics"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def _pyproject_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"])


def test_default_pod_runs_the_dockerfile_image_unprivileged_and_probed() -> None:
    docs = render(None)
    deployment = workload(docs)
    assert deployment["kind"] == "Deployment"
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    pod = deployment["spec"]["template"]["spec"]
    container = exporter_container(docs)
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    # The image the Dockerfile builds: its user, its entrypoint (the chart passes only arguments), its version.
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert chart["appVersion"] == _pyproject_version()
    assert container["image"] == f"kafka-connect-exporter:{chart['appVersion']}"
    assert "command" not in container
    assert 'ENTRYPOINT ["kafka-connect-exporter"]' in dockerfile
    (uid,) = re.findall(r"^USER (\d+):\d+$", dockerfile, flags=re.MULTILINE)
    assert pod["securityContext"]["runAsUser"] == int(uid) and pod["securityContext"]["runAsNonRoot"] is True
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics", "scheme": "HTTP"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics", "scheme": "HTTP"}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert {"name": "metrics", "containerPort": 9838, "protocol": "TCP"} in container["ports"]
    assert pod["automountServiceAccountToken"] is False
    # The only writable path is the /tmp emptyDir.
    assert {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")} == {"/tmp"}
    assert "checksum/config" in deployment["spec"]["template"]["metadata"]["annotations"]


def _materialise_files(node: Any, root: Path) -> None:
    """Create every *_file the configuration names, under root (the paths are the pod's)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("_file") and isinstance(value, str):
                path = root / value.lstrip("/")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("not-a-real-secret\n")
            else:
                _materialise_files(value, root)
    elif isinstance(node, list):
        for item in node:
            _materialise_files(item, root)


def _pod_environ(container: dict[str, Any], pod_index: str) -> dict[str, str]:
    """The environment Kubernetes gives the container: $(VAR) expanded, fieldRefs and secrets filled in."""
    environ: dict[str, str] = {}
    for var in container.get("env", []):
        if "value" in var:
            environ[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: environ[m.group(1)], var["value"])
        elif "apps.kubernetes.io/pod-index" in var["valueFrom"]["fieldRef"]["fieldPath"]:
            environ[var["name"]] = pod_index
    return environ


@pytest.mark.parametrize("values", VALUE_SETS, ids=_ids)
def test_rendered_configuration_and_flags_are_valid_for_the_exporter(
    values: Path | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(values)
    container = exporter_container(docs)
    if container.get("envFrom"):
        # What the examples' envFrom Secrets hold; secrets are read from the process environment.
        monkeypatch.setenv("CONFLUENT_CLOUD_API_KEY", "KEY")
        monkeypatch.setenv("CONFLUENT_CLOUD_API_SECRET", "SECRET")
    args = build_parser().parse_args(container["args"])
    assert str(args.config_file) == "/etc/kafka-connect-exporter/config.yml"
    maps = [d for d in of_kind(docs, "ConfigMap") if "config.yml" in d.get("data", {})]
    if not maps:  # the configuration lives in a ConfigMap of the user's: only the flags can be checked
        assert yaml.safe_load(values.read_text(encoding="utf-8"))["existingConfigMap"] if values else False
        return
    (cm,) = maps
    text = cm["data"]["config.yml"]
    _materialise_files(yaml.safe_load(text), tmp_path)
    for path in sorted({m["mountPath"] for m in container["volumeMounts"]} - {"/tmp"}, key=len, reverse=True):
        text = text.replace(path, str(tmp_path / path.lstrip("/")))
    (tmp_path / "config.yml").write_text(text)
    config = load_config(tmp_path / "config.yml", environ=_pod_environ(container, "2"))
    assert config.clusters or config.confluent_cloud is not None


def test_existing_configmap_and_secrets_are_mounted() -> None:
    docs = render(example("existing-configmap"))
    assert not [d for d in of_kind(docs, "ConfigMap") if "config.yml" in d.get("data", {})]
    pod = workload(docs)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "kce-config"
    assert volumes["secrets"]["secret"]["secretName"] == "kce-connect-tls"
    mounts = {m["name"]: m for m in exporter_container(docs)["volumeMounts"]}
    assert mounts["config"]["subPath"] == "exporter.yml"
    assert mounts["secrets"] == {
        "name": "secrets",
        "mountPath": "/etc/kafka-connect-exporter/secrets",
        "readOnly": True,
    }


def test_web_config_secret_turns_on_tls_for_probes_and_scrapes() -> None:
    docs = render(example("confluent-cloud-tls"))
    container = exporter_container(docs)
    assert "--web.config.file=/etc/kafka-connect-exporter/web/web-config.yml" in container["args"]
    assert "--web.open-healthz" in container["args"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    # A directory mount, not subPath: the exporter re-reads the file when the Secret changes.
    assert mounts["web-config"] == {
        "name": "web-config",
        "mountPath": "/etc/kafka-connect-exporter/web",
        "readOnly": True,
    }
    assert container["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert container["envFrom"] == [{"secretRef": {"name": "ccloud-api"}}]
    (monitor,) = of_kind(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["scheme"] == "https"


@pytest.mark.parametrize(
    ("name", "host"),
    [
        ("strimzi-local-worker", "my-connect-connect-2.my-connect-connect.kafka.svc:8083"),
        ("statefulset-local-worker", "connect-2.connect.kafka.svc:8083"),
    ],
)
def test_local_worker_pod_heals_only_its_own_worker(name: str, host: str, tmp_path: Path) -> None:
    docs = render(example(name), "--namespace", "kafka")
    sts = workload(docs)
    assert sts["kind"] == "StatefulSet" and sts["spec"]["replicas"] == 3
    assert not of_kind(docs, "ServiceMonitor"), "per-worker exporters are not scraped: alerts would multiply"
    container = exporter_container(docs)
    (cm,) = [d for d in of_kind(docs, "ConfigMap") if "config.yml" in d.get("data", {})]
    (tmp_path / "config.yml").write_text(cm["data"]["config.yml"])
    config = load_config(tmp_path / "config.yml", environ=_pod_environ(container, "2"))
    (cluster,) = config.clusters
    assert cluster.urls == [f"http://{host}"]
    heal = cluster.autoheal
    assert (heal.mode, heal.scope, heal.worker_id) == ("enforce", "local-worker", host)


BAD = [
    ({"replicaCount": 2}, "replicaCount"),
    ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    ({"serviceMonitor": {"enabled": "yes"}}, "enabled"),
    ({"servicemonitor": {"enabled": True}}, "servicemonitor"),
    ({"localWorker": {"workerScheme": "ftp"}}, "workerScheme"),
    ({"telemetryPath": "metrics"}, "telemetryPath"),
    ({"config": None}, "config"),
]


@pytest.mark.parametrize(("values", "key"), BAD, ids=[k for _, k in BAD])
def test_bad_values_fail_at_template_time(values: dict[str, Any], key: str, tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    proc = run_helm("template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, "--values", str(path))
    assert proc.returncode != 0, f"{values} was accepted"
    assert "schema" in proc.stderr and key in proc.stderr, proc.stderr


def test_bad_values_file_fails_at_template_time() -> None:
    proc = run_helm("template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, "--values", str(BAD_VALUES))
    assert proc.returncode != 0
    assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr
    for where in ("/replicaCount", "/image/pullPolicy", "/serviceMonitor/enabled", "'intervall' not allowed"):
        assert where in proc.stderr, f"{where} not reported:\n{proc.stderr}"


def _documented_paths(text: str) -> set[str]:
    """Dotted paths of the keys in a values file that have a comment right above them or on their line."""
    documented: set[str] = set()
    stack: list[tuple[int, str]] = []
    previous = ""
    for line in text.splitlines():
        match = re.match(r"^( *)([A-Za-z][\w.-]*):", line)
        if match:
            indent = len(match.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match.group(2)))
            if previous.lstrip().startswith("#") or " # " in line:
                documented.add(".".join(name for _, name in stack))
        if line.strip():
            previous = line
    return documented


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for name, sub in schema.get("properties", {}).items():
        yield prefix + name
        if sub.get("additionalProperties") is False:  # the chart's own keys, not a Kubernetes object
            yield from _schema_paths(sub, f"{prefix}{name}.")


def test_values_are_documented_key_by_key_and_all_in_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    documented = _documented_paths((CHART / "values.yaml").read_text(encoding="utf-8"))
    paths = set(_schema_paths(schema)) - {"global"}
    undocumented = sorted(p for p in paths if p not in documented)
    assert not undocumented, f"values.yaml keys without a comment: {undocumented}"
    # Every chart key has a default in values.yaml, and the defaults pass the schema.
    for path in paths:
        node = values
        for part in path.split("."):
            assert part in node, f"{path} is in values.schema.json but not in values.yaml"
            node = node[part]
    jsonschema.Draft7Validator(schema).validate(values)


def test_readme_install_command_renders_a_valid_release(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (command,) = re.findall(r"```sh\n(helm install .*?)```", readme, flags=re.DOTALL)
    argv = shlex.split(command.replace("\\\n", " "))
    assert argv[:4] == ["helm", "install", "kafka-connect-exporter", "deploy/helm/kafka-connect-exporter"]
    proc = run_helm("template", *argv[2:3], str(ROOT / argv[3]), "--kube-version", KUBE_VERSION, *argv[4:])
    assert proc.returncode == 0, proc.stderr
    docs = tuple(d for d in yaml.safe_load_all(proc.stdout) if d)
    assert {"ServiceMonitor", "PrometheusRule", "Deployment"} <= {d["kind"] for d in docs}
    (cm,) = [d for d in of_kind(docs, "ConfigMap") if "config.yml" in d.get("data", {})]
    (tmp_path / "config.yml").write_text(cm["data"]["config.yml"])
    (cluster,) = load_config(tmp_path / "config.yml", environ={}).clusters
    assert cluster.name == "prod"


def test_sharded_pods_split_the_clusters_once_each(tmp_path: Path) -> None:
    docs = render(example("sharded"))
    sts = workload(docs)
    assert sts["kind"] == "StatefulSet" and sts["spec"]["replicas"] == 3
    assert of_kind(docs, "ServiceMonitor"), "every shard must be scraped"
    container = exporter_container(docs)
    (cm,) = [d for d in of_kind(docs, "ConfigMap") if "config.yml" in d.get("data", {})]
    (tmp_path / "config.yml").write_text(cm["data"]["config.yml"])
    everything = {c.name for c in load_config(tmp_path / "config.yml", environ={}).clusters}
    per_pod = [
        {c.name for c in load_config(tmp_path / "config.yml", environ=_pod_environ(container, str(i))).clusters}
        for i in range(3)
    ]
    assert sorted(n for names in per_pod for n in names) == sorted(everything) and all(per_pod), per_pod


def test_sharding_and_local_worker_exclude_each_other(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump({"sharding": {"shards": 2}, "localWorker": {"enabled": True}}))
    proc = run_helm("template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, "--values", str(path))
    assert proc.returncode != 0 and "exclude each other" in proc.stderr, proc.stderr
