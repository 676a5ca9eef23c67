"""Configuration: a YAML file, environment overrides and quick-start flags, validated into frozen models.

Precedence, lowest first: built-in defaults, the YAML file (``--config.file``), ``KCE_*`` environment
variables, command-line flags. Every mistake is reported as ``<key path>: <what is wrong>`` and the
process exits with code 2 (see ``exporter.cli``). Secrets are resolved once at load time into
``SecretStr`` values, which never print.

Environment overrides address any key with ``KCE_`` and ``__`` between path parts, list items by index:
``KCE_WEB__LISTEN_ADDRESS=:9900``, ``KCE_CLUSTERS__0__URLS=http://a:8083,http://b:8083``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from exporter.healer.config import AutohealConfig

ENV_PREFIX = "KCE_"
DEFAULT_LISTEN_ADDRESS = ":9838"
QUICKSTART_CLUSTER = "default"


class ConfigError(Exception):
    """A configuration mistake; ``str()`` is one line per problem, with the key path first."""


# --- value types ---------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Go/Prometheus-style durations ("30s", "1m30s", "500ms") or plain numbers of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for m in _DURATION_PART.finditer(text):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
                pos = m.end()
            if pos != len(text) or pos == 0:
                raise ValueError(f"invalid duration {value!r}: use a number with a unit, e.g. 30s, 5m, 1h") from None
    else:
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _split_list(value: Any) -> Any:
    # Environment overrides arrive as one string; "a,b" means a list of two.
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def url_for_message(value: str) -> str:
    """A URL as error messages may show it: anything before an '@' in the authority could be a password."""
    return repr(re.sub(r"^([^/]*//)?[^/@]*@", r"\1***@", value))


def _check_http_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"{url_for_message(value)} is not an http:// or https:// URL")
    if re.match(r"^https?://[^/@]*@", value):
        raise ValueError("credentials in URLs are not allowed; use auth.basic")
    return value.rstrip("/")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# --- secrets ------------------------------------------------------------------------------------------


def resolve_secret(inline: SecretStr | None, env: str | None, file: Path | None, what: str) -> SecretStr | None:
    """Exactly one source may be given; env and file are read now so mistakes surface at start-up."""
    given = [s for s in (inline, env, file) if s is not None]
    if len(given) > 1:
        raise ValueError(f"give only one of {what}, {what}_env, {what}_file")
    if env is not None:
        if env not in os.environ:
            raise ValueError(f"{what}_env: environment variable {env} is not set")
        return SecretStr(os.environ[env])
    if file is not None:
        try:
            return SecretStr(file.read_text(encoding="utf-8").rstrip("\r\n"))
        except OSError as exc:
            raise ValueError(f"{what}_file: cannot read {file}: {exc.strerror}") from None
    return inline


class BasicAuth(_Model):
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _resolve(self) -> Self:
        secret = resolve_secret(self.password, self.password_env, self.password_file, "password")
        if secret is None:
            raise ValueError("one of password, password_env or password_file is required")
        object.__setattr__(self, "password", secret)
        return self

    @property
    def inline_secret(self) -> bool:
        return self.password_env is None and self.password_file is None


class BearerAuth(_Model):
    token: SecretStr | None = None
    token_env: str | None = None
    token_file: Path | None = None

    @model_validator(mode="after")
    def _resolve(self) -> Self:
        secret = resolve_secret(self.token, self.token_env, self.token_file, "token")
        if secret is None:
            raise ValueError("one of token, token_env or token_file is required")
        object.__setattr__(self, "token", secret)
        return self

    @property
    def inline_secret(self) -> bool:
        return self.token_env is None and self.token_file is None


class AuthConfig(_Model):
    basic: BasicAuth | None = None
    bearer: BearerAuth | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if self.basic is not None and self.bearer is not None:
            raise ValueError("configure either basic or bearer auth, not both")
        return self


class TLSConfig(_Model):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_password: SecretStr | None = None
    key_password_env: str | None = None
    key_password_file: Path | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _check(self) -> Self:
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: {path} does not exist or is not a file")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (client certificate for mTLS)")
        secret = resolve_secret(self.key_password, self.key_password_env, self.key_password_file, "key_password")
        object.__setattr__(self, "key_password", secret)
        return self

    def ssl_context(self) -> ssl.SSLContext:
        """Verification is on unless ``insecure_skip_verify`` says otherwise."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.cert_file is not None and self.key_file is not None:
            password = self.key_password.get_secret_value() if self.key_password else None
            ctx.load_cert_chain(str(self.cert_file), str(self.key_file), password=password)
        if self.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class ClusterConfig(_Model):
    name: str = Field(min_length=1, max_length=200)
    urls: Annotated[list[str], BeforeValidator(_split_list)] = Field(min_length=1)
    poll_interval: Duration = 30.0
    plugins_interval: Duration = 600.0
    request_timeout: Duration = 10.0
    # Whole-cycle deadline; defaults to the poll interval so cycles never pile up.
    cycle_timeout: Duration | None = None
    # Parallel per-connector requests when a pre-2.3 worker forces the 1 + 2N fallback.
    fallback_concurrency: int = Field(default=8, ge=1, le=64)
    auth: AuthConfig = AuthConfig()
    tls: TLSConfig = TLSConfig()
    headers: dict[str, str] = {}
    # Bodies larger than this are cut off and counted as bad_response, so a broken or hostile endpoint
    # cannot exhaust memory. 10,000 connectors with status and info are about 25 MB.
    max_response_size: ByteSize = Field(default=ByteSize(256 * 1024 * 1024), gt=0)
    # The Kafka cluster id the workers must report (GET /). Unset: the majority of the workers decides.
    # A worker that reports another id (a load balancer or DNS entry pointing at another cluster) is down.
    kafka_cluster_id: str | None = Field(default=None, min_length=1, max_length=200)
    autoheal: AutohealConfig = AutohealConfig()  # off unless enabled; see docs/autoheal.md

    @field_validator("urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        checked = [_check_http_url(u) for u in urls]
        if len(set(checked)) != len(checked):
            raise ValueError("the same worker URL is listed twice")
        return checked

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for key, value in headers.items():
            if not _HEADER_NAME.match(key):
                raise ValueError(f"{key!r} is not a valid HTTP header name")
            if "\n" in value or "\r" in value:
                raise ValueError(f"header {key!r} has a line break in its value")
            if key.lower() == "authorization":
                raise ValueError("set Authorization through auth.basic or auth.bearer, not headers")
        return headers

    @property
    def deadline(self) -> float:
        return self.cycle_timeout if self.cycle_timeout is not None else self.poll_interval


class WebConfig(_Model):
    listen_address: str = DEFAULT_LISTEN_ADDRESS
    telemetry_path: str = "/metrics"
    # exporter-toolkit web config (TLS, basic auth, headers); see exporter.web_security and docs/security.md.
    config_file: Path | None = None
    # Serve /healthz without basic auth, for probes that cannot send credentials.
    open_healthz: bool = False

    @field_validator("config_file")
    @classmethod
    def _config_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} does not exist or is not a file")
        return value

    @field_validator("listen_address")
    @classmethod
    def _addr(cls, value: str) -> str:
        split_host_port(value)
        return value

    @field_validator("telemetry_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or value in {"/", "/healthz", "/readyz"}:
            raise ValueError("must start with / and not be /, /healthz or /readyz")
        return value


class LogConfig(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


# Imported here, not at the top: exporter.cloud.config needs Duration and resolve_secret from above.
from exporter.cloud.config import CloudConfig  # noqa: E402


class Config(_Model):
    web: WebConfig = WebConfig()
    log: LogConfig = LogConfig()
    clusters: list[ClusterConfig] = []
    confluent_cloud: CloudConfig | None = None

    @model_validator(mode="after")
    def _distinct_cloud_names(self) -> Self:
        # Snapshots are keyed by cluster name: a managed cluster must not shadow a self-managed one.
        if self.confluent_cloud is not None:
            clash = sorted({c.name for c in self.clusters} & {c.label for c in self.confluent_cloud.clusters()})
            if clash:
                raise ValueError(f"confluent_cloud: cluster name(s) also used by clusters: {', '.join(clash)}")
        return self

    @field_validator("clusters")
    @classmethod
    def _unique(cls, clusters: list[ClusterConfig]) -> list[ClusterConfig]:
        names = [c.name for c in clusters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"cluster names must be unique; repeated: {', '.join(dupes)}")
        return clusters

    def inline_secret_paths(self) -> list[str]:
        """Keys whose secret is written in the file itself (works, but earns a warning)."""
        paths = []
        for i, c in enumerate(self.clusters):
            if c.auth.basic is not None and c.auth.basic.inline_secret:
                paths.append(f"clusters[{i}].auth.basic.password")
            if c.auth.bearer is not None and c.auth.bearer.inline_secret:
                paths.append(f"clusters[{i}].auth.bearer.token")
        if self.confluent_cloud is not None:
            paths.extend(self.confluent_cloud.inline_secret_paths())
        return paths


def split_host_port(address: str) -> tuple[str, int]:
    """``":9838"``, ``"0.0.0.0:9838"``, ``"[::1]:9838"`` → (host, port); an empty host means all interfaces."""
    m = re.match(r"^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]*)):(\d{1,5})$", address)
    if not m or not 0 <= int(m.group(3)) <= 65535:
        raise ValueError(f"{address!r} is not host:port (e.g. :9838 or 127.0.0.1:9838)")
    return (m.group(1) or m.group(2) or ""), int(m.group(3))


# --- loading ------------------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, which YAML would otherwise silently let the last one win."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, not {type(data).__name__}")
    return data


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Overlay ``KCE_A__B__0__C=value`` onto the raw config; values are read as YAML scalars."""
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if any(not p for p in parts):
            raise ConfigError(f"{name}: empty path part (use __ between keys)")
        try:
            value = yaml.safe_load(environ[name]) if environ[name] else ""
        except yaml.YAMLError:
            value = environ[name]
        # Keep strings as written: "0123" must not become 123 in a secret or a name.
        if isinstance(value, int | float | bool) and parts[-1] not in _NUMERIC_OR_BOOL_KEYS:
            value = environ[name]
        _set_path(data, parts, value, name)
    return data


_NUMERIC_OR_BOOL_KEYS = {
    "insecure_skip_verify",
    "fallback_concurrency",
    "poll_interval",
    "plugins_interval",
    "request_timeout",
    "cycle_timeout",
    "enabled",
    "open_healthz",
    "max_response_size",
}


def _set_path(node: Any, parts: list[str], value: Any, env_name: str) -> None:
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        if not head.isdigit():
            raise ConfigError(f"{env_name}: {head!r} must be a list index")
        index = int(head)
        while len(node) <= index:
            node.append({})
        if rest:
            if not isinstance(node[index], dict | list):
                node[index] = {}
            _set_path(node[index], rest, value, env_name)
        else:
            node[index] = value
        return
    if not isinstance(node, dict):
        raise ConfigError(f"{env_name}: cannot set a key inside a scalar value")
    if rest:
        child = node.get(head)
        if not isinstance(child, dict | list):
            child = [] if rest[0].isdigit() else {}
            node[head] = child
        _set_path(child, rest, value, env_name)
    else:
        node[head] = value


def format_validation_error(exc: ValidationError, known: type[BaseModel] | None = None) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        path = _loc_to_path(err["loc"])
        if err["type"] == "extra_forbidden":
            hint = _did_you_mean(err["loc"], known)
            lines.append(f"{path}: unknown key{hint}")
            continue
        msg = err["msg"]
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        lines.append(f"{path}: {msg}" if path else msg)
    return "\n".join(lines)


def _loc_to_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith(("function-", "union[")):
            out += f".{part}" if out else part
    return out


def _did_you_mean(loc: tuple[int | str, ...], root: type[BaseModel] | None) -> str:
    model: Any = root
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _model_of(field.annotation) if field else None
    if model is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def build_config(raw: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, Config)) from None


def load_config(
    path: Path | None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    quickstart_urls: list[str] | None = None,
    quickstart_interval: float | None = None,
    *,
    quickstart_autoheal: Mapping[str, Any] | None = None,
) -> Config:
    """File, then environment, then flags (``overrides`` as dotted keys, ``quickstart_urls`` as clusters)."""
    raw: dict[str, Any] = read_yaml(path) if path is not None else {}
    env = os.environ if environ is None else environ
    raw = apply_env(raw, env)
    for dotted, value in (overrides or {}).items():
        _set_path(raw, dotted.split("."), value, "--" + dotted.replace("_", "-"))
    if quickstart_urls:
        clusters = raw.setdefault("clusters", [])
        if not isinstance(clusters, list):
            raise ConfigError("clusters: must be a list")
        by_name: dict[str, dict[str, Any]] = {}
        for spec in quickstart_urls:
            name, url = parse_quickstart_url(spec)
            if any(isinstance(c, dict) and c.get("name") == name for c in clusters) and name not in by_name:
                raise ConfigError(f"--connect.url: cluster {name!r} is already defined in the config file")
            entry = by_name.get(name)
            if entry is None:
                entry = {"name": name, "urls": []}
                if quickstart_interval is not None:
                    entry["poll_interval"] = quickstart_interval
                if quickstart_autoheal:
                    entry["autoheal"] = dict(quickstart_autoheal)
                by_name[name] = entry
                clusters.append(entry)
            entry["urls"].append(url)
    try:
        return build_config(raw)
    except ConfigError as exc:
        raise ConfigError(_name_env_sources(str(exc), env)) from None


def _env_path(name: str) -> str:
    """``KCE_CLUSTERS__0__POLL_INTERVAL`` → ``clusters[0].poll_interval``, the form errors use."""
    out = ""
    for part in name[len(ENV_PREFIX) :].lower().split("__"):
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _name_env_sources(message: str, environ: Mapping[str, str]) -> str:
    """Say which environment variable set a rejected key: a stray KCE_* variable is otherwise hard to find."""
    paths = {_env_path(n): n for n in environ if n.startswith(ENV_PREFIX) and n != ENV_PREFIX}
    lines = []
    for line in message.splitlines():
        key = line.split(": ", 1)[0]
        source = paths.get(key) or next((n for p, n in paths.items() if key.startswith(p + ".")), None)
        lines.append(f"{line} (set by environment variable {source})" if source else line)
    return "\n".join(lines)


def parse_quickstart_url(spec: str) -> tuple[str, str]:
    """``http://w1:8083`` (cluster "default") or ``prod=http://w1:8083``."""
    m = re.match(r"^([A-Za-z0-9_.-]+)=(.+)$", spec)
    if m and "://" in m.group(2) and "://" not in m.group(1):
        return m.group(1), m.group(2)
    return QUICKSTART_CLUSTER, spec


def masked_dump(config: Config) -> str:
    """The effective configuration as YAML, every secret shown as ********."""
    data = config.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(_mask(data), sort_keys=False, allow_unicode=True)


_SECRET_KEYS = {"password", "token", "key_password", "api_secret", "secret"}


def _mask(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: ("********" if k in _SECRET_KEYS and v is not None else _mask(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_mask(v) for v in node]
    return node
