"""What every settings section is built from: the strict base model, durations, secrets, URL checks,
comma lists, and reading a YAML settings file with one-line-per-problem errors.

A leaf: it imports nothing of this package, so every feature's ``config`` module (``connect``, ``cloud``,
``healer``), the top-level ``exporter.config`` that composes them, and ``exporter.web_security`` (the
``--web.config.file``) can all build on it without importing each other.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import ssl
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    model_validator,
)


class ConfigError(Exception):
    """A configuration mistake; ``str()`` is one line per problem, with the key path first."""


class StrictModel(BaseModel):
    """Unknown keys are mistakes, settings never change once loaded, and stray spaces around strings go."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# --- durations ----------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any, *, zero: bool = False) -> float:
    """Go/Prometheus-style durations ("30s", "1m30s", "500ms") or plain numbers of seconds (``zero``: 0 too)."""
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
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero):
        raise ValueError(f"duration must be {'zero or ' if zero else ''}positive, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A duration as it is written in a config file: ``30s``, ``2m``, ``1h30m``, ``500ms`` (``parse_duration``
    reads it back to the same value)."""
    millis = round(seconds * 1000)
    if millis <= 0 or abs(millis / 1000 - seconds) > 1e-9 * max(1.0, seconds):
        return f"{seconds:g}s"  # finer than a millisecond: the plain number of seconds, with its unit
    if millis < 1000:
        return f"{millis}ms"
    out = ""
    whole, rest = divmod(millis, 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, whole = divmod(whole, size)
        if count:
            out += f"{count}{unit}"
    if whole or rest:
        out += f"{whole}.{rest:03d}".rstrip("0").rstrip(".") + "s"
    return out


def _parse_zero_or_duration(value: Any) -> float:
    return parse_duration(value, zero=True)


# Validated from "30s", "1m30s" or a number of seconds; written back (check-config, JSON dumps) as "30s".
Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(format_duration, when_used="json")]
# A duration where 0 (e.g. "0s") means "not at all".
ZeroOrDuration = Annotated[
    float, BeforeValidator(_parse_zero_or_duration), PlainSerializer(format_duration, when_used="json")
]


# --- regular expressions ------------------------------------------------------------------------------


def compile_regex(value: Any) -> re.Pattern[str]:
    """A Python regular expression, compiled now so a mistake is reported at load time with its reason."""
    if isinstance(value, re.Pattern):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a regular expression (a string)")
    try:
        return re.compile(value)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise ValueError(f"{value!r} is not a valid regular expression: {exc.msg}{where}") from None


def _pattern_text(pattern: re.Pattern[str]) -> str:
    return pattern.pattern


Regex = Annotated[re.Pattern[str], BeforeValidator(compile_regex), PlainSerializer(_pattern_text, when_used="json")]


# --- lists --------------------------------------------------------------------------------------------


def split_list(value: Any) -> Any:
    """Environment overrides arrive as one string; ``"a,b"`` means a list of two. Lists pass unchanged."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CommaList = Annotated[list[str], BeforeValidator(split_list)]


# --- URLs ---------------------------------------------------------------------------------------------


def url_for_message(value: str) -> str:
    """A URL as error messages may show it: anything before an '@' in the authority could be a password."""
    return repr(re.sub(r"^([^/]*//)?[^/@]*@", r"\1***@", value))


def check_http_url(value: str, *, credentials_from: str) -> str:
    """An http(s) URL without credentials (``credentials_from`` says where they go instead), no trailing /."""
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"{url_for_message(value)} is not an http:// or https:// URL")
    if re.match(r"^https?://[^/@]*@", value):
        raise ValueError(f"credentials in URLs are not allowed; use {credentials_from}")
    return value.rstrip("/")


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


# --- reading a settings file --------------------------------------------------------------------------


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


def format_validation_error(exc: ValidationError, known: type[BaseModel] | None = None) -> str:
    """One ``<key path>: <what is wrong>`` line per problem; unknown keys get a "did you mean" from ``known``."""
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


class TLSConfig(StrictModel):
    """Client TLS of a connection we open (Connect workers, Kafka brokers): CA, client certificate, key password."""

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


class UsernamePassword(StrictModel):
    """A username and a password given inline, by environment variable or by file (resolved at load time)."""

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
