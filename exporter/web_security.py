"""``--web.config.file``: TLS, client certificates, basic auth, response headers and a rate limit for the
exporter's own endpoints, in the file format of Prometheus' exporter-toolkit (field-notes.md §C).

The file is validated like the main config (``<key path>: <what is wrong>``, unknown keys rejected) and
re-read when it, or a certificate, key or CA file it names, changes: new certificates, users and headers
apply to the next connection without a restart. A file that became invalid is reported and the last good
settings stay in force. Switching TLS on or off needs a restart (the listener is bound once).

Differences from the Go toolkit, all towards refusing rather than accepting:

* Python's TLS stack verifies every client certificate it asks for, so ``RequireAnyClientCert`` works like
  ``RequireAndVerifyClientCert`` (and needs ``client_ca_file``), and ``RequestClientCert`` like
  ``NoClientCert`` (an unverified certificate proves nothing either way).
* ``curve_preferences`` cannot be honoured and is refused; ``http2`` is accepted and ignored (HTTP/1.1).
* ``client_allowed_sans`` is checked per request (403) rather than during the handshake.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import ssl
import tempfile
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import bcrypt
import structlog
from aiohttp import web
from pydantic import BeforeValidator, Field, SecretStr, ValidationError, model_validator

from exporter import logs
from exporter.settings import ConfigError, StrictModel, format_validation_error, parse_duration, read_yaml

log = structlog.get_logger("exporter.web")

RELOAD_INTERVAL = 1.0  # seconds between checks of the files for changes (a few stat() calls)
AUTH_CACHE_SIZE = 1024  # remembered (user, hash, password) verdicts; bcrypt costs ~80 ms per check
BCRYPT_THREADS = 2  # bcrypt runs off the event loop, in its own small pool so a flood cannot starve renders

ClientAuthType = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]
TLSVersionName = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_VERIFY_MODES = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# Go's crypto/tls names of the TLS 1.2 suites it considers secure → OpenSSL names. TLS 1.3 suites are not
# configurable in Go either; they are accepted and have no effect.
_CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
}
_TLS13_CIPHERS = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
# The headers exporter-toolkit lets a web config set, and the values it accepts where it checks them.
_HEADERS = {
    "content-security-policy": ("Content-Security-Policy", None),
    "x-frame-options": ("X-Frame-Options", {"deny", "sameorigin"}),
    "x-content-type-options": ("X-Content-Type-Options", {"nosniff"}),
    "x-xss-protection": ("X-XSS-Protection", None),
    "strict-transport-security": ("Strict-Transport-Security", None),
}
_BCRYPT_HASH = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")
# Checked against when the user is unknown, so a wrong user name costs as long as a wrong password.
_DUMMY_HASH = b"$2b$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"


def _rate_interval(value: Any) -> float:
    if value in (0, "0", "0s"):
        return 0.0
    return parse_duration(value)


class TLSServerConfig(StrictModel):
    cert_file: Path | None = None
    key_file: Path | None = None
    cert: str | None = None  # inline PEM
    key: SecretStr | None = None  # inline PEM
    client_ca_file: Path | None = None
    client_ca: str | None = None  # inline PEM
    client_auth_type: ClientAuthType = "NoClientCert"
    client_allowed_sans: list[str] = []
    min_version: TLSVersionName = "TLS12"
    max_version: TLSVersionName = "TLS13"
    cipher_suites: list[str] = []
    prefer_server_cipher_suites: bool = True
    curve_preferences: list[str] = []

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.cert_file is not None and self.cert is not None:
            raise ValueError("give cert_file or cert, not both")
        if self.key_file is not None and self.key is not None:
            raise ValueError("give key_file or key, not both")
        if self.client_ca_file is not None and self.client_ca is not None:
            raise ValueError("give client_ca_file or client_ca, not both")
        if (self.cert_file is None and self.cert is None) or (self.key_file is None and self.key is None):
            raise ValueError("a certificate (cert_file or cert) and its key (key_file or key) are required")
        has_ca = self.client_ca_file is not None or self.client_ca is not None
        if has_ca and self.client_auth_type in ("NoClientCert", "RequestClientCert"):
            raise ValueError(f"client_ca_file is set but client_auth_type is {self.client_auth_type}")
        if not has_ca and _VERIFY_MODES[self.client_auth_type] != ssl.CERT_NONE:
            raise ValueError(f"client_auth_type {self.client_auth_type} needs client_ca_file (or client_ca)")
        if self.client_allowed_sans and self.client_auth_type not in (
            "RequireAnyClientCert",
            "RequireAndVerifyClientCert",
        ):
            raise ValueError("client_allowed_sans needs client_auth_type RequireAndVerifyClientCert")
        if _TLS_VERSIONS[self.min_version] > _TLS_VERSIONS[self.max_version]:
            raise ValueError(f"min_version {self.min_version} is above max_version {self.max_version}")
        unknown = [c for c in self.cipher_suites if c not in _CIPHERS and c not in _TLS13_CIPHERS]
        if unknown:
            raise ValueError(f"cipher_suites: unknown or insecure suite(s) {', '.join(unknown)}")
        if self.curve_preferences:
            raise ValueError("curve_preferences is not supported by this exporter; OpenSSL's defaults apply")
        return self


class HTTPServerConfig(StrictModel):
    http2: bool = True  # accepted for compatibility; the exporter speaks HTTP/1.1
    headers: dict[str, str] = {}

    @model_validator(mode="after")
    def _headers(self) -> Self:
        out: dict[str, str] = {}
        for name, value in self.headers.items():
            known = _HEADERS.get(name.lower())
            if known is None:
                raise ValueError(f"headers: {name!r} cannot be configured; allowed: {', '.join(_allowed_headers())}")
            canonical, allowed = known
            if "\n" in value or "\r" in value:
                raise ValueError(f"headers: {canonical} has a line break in its value")
            if value and allowed is not None and value.lower() not in allowed:
                raise ValueError(f"headers: {canonical} must be one of {', '.join(sorted(allowed))}")
            if value:  # blank means unset, as in the toolkit
                out[canonical] = value
        object.__setattr__(self, "headers", out)
        return self


def _allowed_headers() -> list[str]:
    return [v[0] for v in _HEADERS.values()]


class RateLimitConfig(StrictModel):
    interval: Annotated[float, BeforeValidator(_rate_interval)] = 0.0
    burst: int = Field(default=0, ge=0)


class WebFileConfig(StrictModel):
    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig = HTTPServerConfig()
    basic_auth_users: dict[str, SecretStr] = {}
    rate_limit: RateLimitConfig = RateLimitConfig()

    @model_validator(mode="after")
    def _users(self) -> Self:
        for user, hashed in self.basic_auth_users.items():
            if not user:
                raise ValueError("basic_auth_users: a user name is empty")
            if not _BCRYPT_HASH.match(hashed.get_secret_value()):
                # The value is never echoed: it may be a plain password written by mistake.
                raise ValueError(f"basic_auth_users.{user}: not a bcrypt hash ($2a$, $2b$ or $2y$, cost, 53 chars)")
        return self


# --- loading --------------------------------------------------------------------------------------------------


def _resolve(base: Path, path: Path | None) -> Path | None:
    # Relative paths are relative to the web config file, as in exporter-toolkit.
    if path is None:
        return None
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def parse_web_config(path: Path) -> WebFileConfig:
    """Read and validate the file; ``ConfigError`` names the file and the key path of each problem."""
    raw = read_yaml(path)
    try:
        cfg = WebFileConfig.model_validate(raw)
    except ValidationError as exc:
        lines = format_validation_error(exc, WebFileConfig).splitlines()
        raise ConfigError("\n".join(f"{path}: {line}" for line in lines)) from None
    tls = cfg.tls_server_config
    if tls is not None:
        base = path.parent
        fixed = {
            name: _resolve(base, getattr(tls, name))
            for name in ("cert_file", "key_file", "client_ca_file")
            if getattr(tls, name) is not None
        }
        tls = tls.model_copy(update=fixed)
        cfg = cfg.model_copy(update={"tls_server_config": tls})
    return cfg


def check_web_config(path: Path) -> WebFileConfig:
    """Everything the exporter checks at start-up, certificates included (for ``check-config`` and ``run``)."""
    cfg = parse_web_config(path)
    if cfg.tls_server_config is not None:
        build_ssl_context(cfg.tls_server_config, path)
    return cfg


def _material_files(cfg: WebFileConfig) -> list[Path]:
    tls = cfg.tls_server_config
    if tls is None:
        return []
    return [p for p in (tls.cert_file, tls.key_file, tls.client_ca_file) if p is not None]


def build_ssl_context(tls: TLSServerConfig, where: Path) -> ssl.SSLContext:
    """A server context for ``tls``; unreadable files or a key that does not match become ``ConfigError``."""
    for name in ("cert_file", "key_file", "client_ca_file"):
        file = getattr(tls, name)
        if file is not None and not file.is_file():
            raise ConfigError(f"{where}: tls_server_config.{name}: {file} does not exist or is not a file")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _apply_settings(ctx, tls)
    try:
        if tls.cert is not None or tls.key is not None:
            _load_inline_chain(ctx, tls)
        else:
            ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{where}: tls_server_config: cannot load certificate and key: {_ssl_reason(exc)}") from None
    try:
        if tls.client_ca_file is not None:
            ctx.load_verify_locations(cafile=str(tls.client_ca_file))
        elif tls.client_ca is not None:
            ctx.load_verify_locations(cadata=tls.client_ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{where}: tls_server_config: cannot load client CA: {_ssl_reason(exc)}") from None
    return ctx


def _apply_settings(ctx: ssl.SSLContext, tls: TLSServerConfig) -> None:
    ctx.minimum_version = _TLS_VERSIONS[tls.min_version]
    ctx.maximum_version = _TLS_VERSIONS[tls.max_version]
    ctx.verify_mode = _VERIFY_MODES[tls.client_auth_type]
    suites = [_CIPHERS[c] for c in tls.cipher_suites if c in _CIPHERS]
    if suites:
        try:
            ctx.set_ciphers(":".join(dict.fromkeys(suites)))
        except ssl.SSLError:
            raise ConfigError("tls_server_config.cipher_suites: none of the suites is available") from None
    if tls.prefer_server_cipher_suites:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE


def _load_inline_chain(ctx: ssl.SSLContext, tls: TLSServerConfig) -> None:
    # The ssl module loads certificates only from files: write inline PEM to a private directory, load,
    # delete at once.
    with tempfile.TemporaryDirectory(prefix="kce-tls-") as tmp:
        cert = Path(tmp) / "cert.pem"
        key = Path(tmp) / "key.pem"
        if tls.cert is not None:
            cert.write_text(tls.cert, encoding="utf-8")
        if tls.key is not None:
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(tls.key.get_secret_value())
        ctx.load_cert_chain(
            str(cert if tls.cert is not None else tls.cert_file),
            str(key if tls.key is not None else tls.key_file),
        )


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc.strerror or type(exc).__name__)
    if isinstance(exc, OSError):
        return f"{exc.filename or ''} {exc.strerror or ''}".strip() or type(exc).__name__
    return type(exc).__name__


# --- runtime --------------------------------------------------------------------------------------------------


class TokenBucket:
    """``burst`` requests at once, then one per ``interval`` seconds (exporter-toolkit's rate_limit)."""

    def __init__(self, interval: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.capacity = float(max(1, burst))
        self.tokens = self.capacity
        self.clock = clock
        self.stamp = clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) / self.interval)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True, slots=True)
class _Active:
    """One generation of settings, swapped as a whole on reload."""

    config: WebFileConfig
    users: tuple[tuple[bytes, bytes], ...]  # (user, bcrypt hash)
    headers: tuple[tuple[str, str], ...]
    limiter: TokenBucket | None
    ssl: ssl.SSLContext | None
    allowed_sans: frozenset[str]
    stamp: tuple[tuple[str, int, int, int], ...]


def _stamp(paths: list[Path]) -> tuple[tuple[str, int, int, int], ...]:
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((str(p), st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append((str(p), -1, -1, -1))
    return tuple(out)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebSecurity:
    """Loads the web config, serves its TLS context and enforces it on every request of the aiohttp app."""

    def __init__(self, path: Path, *, open_paths: frozenset[str] = frozenset()) -> None:
        self.path = path
        self.open_paths = open_paths
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._pending: dict[bytes, asyncio.Future[bool]] = {}
        self._cache_key = secrets.token_bytes(32)  # verdicts are keyed by an HMAC, never by the password
        self._pool: ThreadPoolExecutor | None = None
        self.reloads = 0
        self.reload_failures = 0
        self._active = self._load()  # ConfigError on a bad file: the exporter refuses to start
        self.ssl_context: ssl.SSLContext | None = None
        if self._active.ssl is not None:
            self.ssl_context = self._listener_context()

    # -- loading ---------------------------------------------------------------------------------------------

    def _load(self) -> _Active:
        stamp_before = _stamp([self.path])
        cfg = parse_web_config(self.path)
        tls = cfg.tls_server_config
        ctx = build_ssl_context(tls, self.path) if tls is not None else None
        if tls is not None and tls.key is not None:
            logs.register_secret(tls.key.get_secret_value())
        limiter = None
        if cfg.rate_limit.interval > 0:
            limiter = TokenBucket(cfg.rate_limit.interval, cfg.rate_limit.burst)
        return _Active(
            config=cfg,
            users=tuple((u.encode(), h.get_secret_value().encode()) for u, h in cfg.basic_auth_users.items()),
            headers=tuple(cfg.http_server_config.headers.items()),
            limiter=limiter,
            ssl=ctx,
            allowed_sans=frozenset(tls.client_allowed_sans) if tls is not None else frozenset(),
            stamp=stamp_before + _stamp(_material_files(cfg)),
        )

    def _listener_context(self) -> ssl.SSLContext:
        """The context the listening socket keeps for its lifetime.

        Its SNI callback (which OpenSSL calls for every handshake, with or without SNI) swaps in the newest
        context, so reloaded certificates and client CAs apply to the next connection. Settings that are
        copied into a connection before that callback (client verification, versions) are also set on the
        listener itself at each reload.
        """
        listener = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls = self._active.config.tls_server_config
        assert tls is not None
        _apply_settings(listener, tls)

        def swap(conn: ssl.SSLObject | ssl.SSLSocket, _name: str | None, _ctx: ssl.SSLContext) -> None:
            current = self._active.ssl
            if current is not None:
                conn.context = current

        listener.sni_callback = swap
        return listener

    @property
    def config(self) -> WebFileConfig:
        return self._active.config

    @property
    def tls(self) -> bool:
        return self.ssl_context is not None

    def reload_if_changed(self) -> bool:
        """Re-read the files when any of them changed; True when new settings are now in force."""
        watched = [Path(entry[0]) for entry in self._active.stamp]
        if _stamp(watched) == self._active.stamp:
            return False
        try:
            fresh = self._load()
        except ConfigError as exc:
            self.reload_failures += 1
            # Remember the failed stamp so a broken file is reported once, not every second.
            self._active = _replace_stamp(self._active, _stamp(watched))
            log.error("web_config_reload_failed", file=str(self.path), error=str(exc), keeping="previous settings")
            return False
        if (fresh.ssl is None) != (self.ssl_context is None):
            self.reload_failures += 1
            self._active = _replace_stamp(self._active, fresh.stamp)
            log.error(
                "web_config_reload_failed",
                file=str(self.path),
                error="switching TLS on or off needs a restart",
                keeping="previous settings",
            )
            return False
        if self.ssl_context is not None:
            tls = fresh.config.tls_server_config
            assert tls is not None
            _apply_settings(self.ssl_context, tls)
        self._active = fresh
        self._cache.clear()
        self.reloads += 1
        log.info("web_config_reloaded", file=str(self.path), tls=self.tls, users=len(fresh.users))
        return True

    async def watch(self, interval: float = RELOAD_INTERVAL) -> None:
        """Check the files every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.reload_if_changed()
            except Exception:  # never let the watcher die: the last good settings keep serving
                log.exception("web_config_watch_error", file=str(self.path))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # -- enforcement -----------------------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        app.middlewares.insert(0, self._middleware)
        app.on_response_prepare.append(self._add_headers)

    async def _add_headers(self, _request: web.Request, response: web.StreamResponse) -> None:
        for name, value in self._active.headers:
            response.headers[name] = value

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        active = self._active
        if request.path in self.open_paths:
            return await handler(request)
        if active.limiter is not None and not active.limiter.allow():
            return web.Response(status=429, text="Too Many Requests\n")
        if active.allowed_sans and not _san_allowed(request, active.allowed_sans):
            return web.Response(status=403, text="Forbidden\n", headers={"Connection": "close"})
        if active.users and not await self._authorized(request.headers.get("Authorization", ""), active):
            return web.Response(
                status=401,
                text="Unauthorized\n",
                headers={"WWW-Authenticate": 'Basic realm="kafka-connect-exporter", charset="UTF-8"'},
            )
        return await handler(request)

    async def _authorized(self, header: str, active: _Active) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value.strip():
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        if not sep:
            return False
        # Constant time over every configured user, so the time taken does not tell which names exist.
        hashed = _DUMMY_HASH
        known = False
        for name, candidate in active.users:
            if hmac.compare_digest(name, user):
                hashed, known = candidate, True
        key = hmac.new(self._cache_key, b"\0".join((user, hashed, password)), hashlib.sha256).digest()
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached and known
        pending = self._pending.get(key)
        if pending is None:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(BCRYPT_THREADS, thread_name_prefix="bcrypt")
            loop = asyncio.get_running_loop()
            pending = asyncio.ensure_future(loop.run_in_executor(self._pool, _checkpw, password, hashed))
            self._pending[key] = pending
            pending.add_done_callback(lambda _f: self._pending.pop(key, None))
        ok = await asyncio.shield(pending)
        self._cache[key] = ok
        if len(self._cache) > AUTH_CACHE_SIZE:
            self._cache.popitem(last=False)
        return ok and known


def _replace_stamp(active: _Active, stamp: tuple[tuple[str, int, int, int], ...]) -> _Active:
    return _Active(active.config, active.users, active.headers, active.limiter, active.ssl, active.allowed_sans, stamp)


def _checkpw(password: bytes, hashed: bytes) -> bool:
    with contextlib.suppress(ValueError):
        return bool(bcrypt.checkpw(password, hashed))
    return False


def _san_allowed(request: web.Request, allowed: frozenset[str]) -> bool:
    transport = request.transport
    peer = transport.get_extra_info("peercert") if transport is not None else None
    if not peer:
        return False
    sans = {value for _kind, value in peer.get("subjectAltName", ())}
    return bool(sans & allowed)
