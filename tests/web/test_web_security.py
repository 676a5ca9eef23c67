"""--web.config.file end to end: real TLS handshakes over loopback with certificates made here, bcrypt basic
auth, headers, rate limit, and reloading the file (new certificates, users and CAs) without a restart."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import exporter.web_security as web_security
from exporter.cli import main
from exporter.config import build_config
from exporter.daemon import Daemon
from exporter.settings import ConfigError
from exporter.web_security import WebSecurity, check_web_config
from simulator.connect.server import SimThread
from tests.support.pki import CA, bcrypt_hash, client_context
from tests.support.scrape import parse_exposition
from tests.support.waiting import eventually_async

PASSWORD = "s3cret-Passw0rd"


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@asynccontextmanager
async def secured(sim: SimThread, web_config: Path, *, open_healthz: bool = False) -> AsyncIterator[tuple[Daemon, str]]:
    config = build_config(
        {
            "web": {"listen_address": "127.0.0.1:0", "config_file": str(web_config), "open_healthz": open_healthz},
            "clusters": [{"name": "c", "urls": sim.urls, "poll_interval": 0.2}],
        }
    )
    daemon = Daemon(config)
    await daemon.start()
    host, port = daemon.bound[0]
    scheme = "https" if daemon.web_security is not None and daemon.web_security.tls else "http"
    try:
        yield daemon, f"{scheme}://{host}:{port}"
    finally:
        await daemon.stop()


async def get(
    url: str, *, verify: ssl.SSLContext | bool = True, auth: tuple[str, str] | None = None, **kw: Any
) -> httpx.Response:
    async with httpx.AsyncClient(verify=verify, timeout=5.0, auth=auth) as client:
        return await client.get(url, **kw)


async def passes(check: Callable[[], Any], *, what: str, timeout: float = 8.0) -> None:
    """Until an async check stops failing its assertions (reloads happen on a 1 s timer)."""

    async def held() -> bool:
        await check()
        return True

    await eventually_async(
        held, what=what, timeout=timeout, interval=0.2, ignore=(AssertionError, httpx.TransportError)
    )


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    ca = CA(tmp_path, "ca")
    other = CA(tmp_path, "other-ca")
    return {
        "ca": ca,
        "other": other,
        "server": ca.issue("server", server=True),
        "client": ca.issue("client", server=False, sans=["scraper.example", "prometheus-0"]),
        "rogue": other.issue("rogue", server=False, sans=["scraper.example"]),
        "nosan": ca.issue("nosan", server=False, sans=["someone-else.example"]),
    }


# --- validation -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"tls_server_config": {"cert_file": "x", "key_file": "y", "bogus": 1}},
            "tls_server_config.bogus: unknown key",
        ),
        ({"basic_auth_user": {}}, "basic_auth_user: unknown key (did you mean 'basic_auth_users'?)"),
        ({"basic_auth_users": {"alice": "plain-text-password"}}, "basic_auth_users.alice: not a bcrypt hash"),
        ({"http_server_config": {"headers": {"X-Powered-By": "me"}}}, "'X-Powered-By' cannot be configured"),
        ({"http_server_config": {"headers": {"X-Frame-Options": "allow"}}}, "X-Frame-Options must be one of"),
        ({"tls_server_config": {"cert_file": "c"}}, "a certificate (cert_file or cert) and its key"),
        (
            {
                "tls_server_config": {
                    "cert_file": "c",
                    "key_file": "k",
                    "client_auth_type": "RequireAndVerifyClientCert",
                }
            },
            "needs client_ca_file",
        ),
        (
            {"tls_server_config": {"cert_file": "c", "key_file": "k", "client_auth_type": "Sometimes"}},
            "tls_server_config.client_auth_type: Input should be 'NoClientCert'",
        ),
        (
            {"tls_server_config": {"cert_file": "c", "key_file": "k", "min_version": "TLS13", "max_version": "TLS12"}},
            "min_version TLS13 is above max_version TLS12",
        ),
        (
            {"tls_server_config": {"cert_file": "c", "key_file": "k", "curve_preferences": ["X25519"]}},
            "curve_preferences is not supported",
        ),
        (
            {"tls_server_config": {"cert_file": "c", "key_file": "k", "cipher_suites": ["TLS_RSA_WITH_RC4_128_SHA"]}},
            "unknown or insecure suite(s) TLS_RSA_WITH_RC4_128_SHA",
        ),
        ({"rate_limit": {"interval": "soon"}}, "rate_limit.interval: invalid duration"),
    ],
)
def test_invalid_web_configs_name_the_key(tmp_path: Path, data: dict[str, Any], expected: str) -> None:
    path = write(tmp_path / "web.yml", data)
    with pytest.raises(ConfigError) as err:
        check_web_config(path)
    assert expected in str(err.value)
    assert str(err.value).startswith(str(path))
    assert "plain-text-password" not in str(err.value)


def test_relative_paths_and_key_mismatch(tmp_path: Path, pki: dict[str, Any]) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    server, client = pki["server"], pki["client"]
    (sub / "s.crt").write_bytes(server.cert.read_bytes())
    (sub / "s.key").write_bytes(server.key.read_bytes())
    good = write(sub / "web.yml", {"tls_server_config": {"cert_file": "s.crt", "key_file": "s.key"}})
    cfg = check_web_config(good)  # relative to the web config's directory, not the working directory
    assert cfg.tls_server_config is not None and cfg.tls_server_config.cert_file == sub / "s.crt"
    bad = write(
        tmp_path / "bad.yml", {"tls_server_config": {"cert_file": str(server.cert), "key_file": str(client.key)}}
    )
    with pytest.raises(ConfigError, match="cannot load certificate and key"):
        check_web_config(bad)
    missing = write(tmp_path / "missing.yml", {"tls_server_config": {"cert_file": "nope.crt", "key_file": "nope.key"}})
    with pytest.raises(ConfigError, match=r"nope\.crt does not exist"):
        check_web_config(missing)


def test_cli_refuses_a_bad_web_config_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "web.yml", {"basic_auth_users": {"bob": "hunter2-not-a-hash"}})
    code = main(["check-config", "--connect.url", "http://127.0.0.1:1", "--web.config.file", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "basic_auth_users.bob: not a bcrypt hash" in err and "hunter2" not in err
    code = main(["--connect.url", "http://127.0.0.1:1", "--web.config.file", str(tmp_path / "absent.yml")])
    assert code == 2 and "web.config_file" in capsys.readouterr().err


# --- TLS and basic auth over real sockets ---------------------------------------------------------------------


async def test_basic_auth_over_tls_wrong_password_is_401(sim: SimThread, tmp_path: Path, pki: dict[str, Any]) -> None:
    sim.cluster.add_connector("a", "source")
    server, ca = pki["server"], pki["ca"]
    path = write(
        tmp_path / "web.yml",
        {
            "tls_server_config": {"cert_file": str(server.cert), "key_file": str(server.key)},
            "basic_auth_users": {"prometheus": bcrypt_hash(PASSWORD), "other": bcrypt_hash("other-password")},
            "http_server_config": {
                "headers": {
                    "X-Frame-Options": "deny",
                    "X-Content-Type-Options": "nosniff",
                    "Content-Security-Policy": "",
                }
            },
        },
    )
    verify = client_context(ca)
    async with secured(sim, path) as (_, base):
        assert base.startswith("https://")
        ok = await get(base + "/metrics", verify=verify, auth=("prometheus", PASSWORD))
        assert ok.status_code == 200
        assert parse_exposition(ok.text).families
        assert ok.headers["X-Frame-Options"] == "deny" and ok.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" not in ok.headers  # blank means unset
        for auth in [("prometheus", "wrong"), ("nobody", PASSWORD), ("other", PASSWORD), ("prometheus", "")]:
            r = await get(base + "/metrics", verify=verify, auth=auth)
            assert r.status_code == 401, auth
            assert r.headers["WWW-Authenticate"].startswith("Basic")
            assert "kafka_connect" not in r.text
        for header in ["", "Bearer abc", "Basic !!!notbase64", "Basic " + "bm9jb2xvbg=="]:  # "nocolon"
            r = await get(base + "/", verify=verify, headers={"Authorization": header} if header else {})
            assert r.status_code == 401, header
            assert r.headers["X-Frame-Options"] == "deny"  # headers go on refusals too
        assert (await get(base + "/healthz", verify=verify)).status_code == 401  # not open unless asked
        # Plain HTTP to the TLS port is not served.
        with pytest.raises(httpx.TransportError):
            await get(base.replace("https://", "http://") + "/metrics", auth=("prometheus", PASSWORD))
        # A client that does not trust the exporter's CA refuses it.
        with pytest.raises(httpx.ConnectError):
            await get(base + "/metrics", verify=client_context(pki["other"]), auth=("prometheus", PASSWORD))


async def test_successful_checks_are_cached_so_scrapes_do_not_pay_bcrypt(
    sim: SimThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bytes] = []
    real = web_security._checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        return real(password, hashed)

    monkeypatch.setattr(web_security, "_checkpw", counting)
    path = write(tmp_path / "web.yml", {"basic_auth_users": {"prometheus": bcrypt_hash(PASSWORD)}})
    async with secured(sim, path) as (_, base):
        async with httpx.AsyncClient(auth=("prometheus", PASSWORD), timeout=5) as client:
            results = await asyncio.gather(*(client.get(base + "/metrics") for _ in range(16)))
            assert {r.status_code for r in results} == {200}
            assert len(calls) == 1  # 16 concurrent first scrapes share one bcrypt check
            for _ in range(10):
                assert (await client.get(base + "/metrics")).status_code == 200
            assert len(calls) == 1
        # A wrong password is checked once too, and stays wrong.
        for _ in range(3):
            assert (await get(base + "/metrics", auth=("prometheus", "nope"))).status_code == 401
        assert len(calls) == 2


async def test_open_healthz_option(sim: SimThread, tmp_path: Path) -> None:
    path = write(tmp_path / "web.yml", {"basic_auth_users": {"prometheus": bcrypt_hash(PASSWORD)}})
    async with secured(sim, path, open_healthz=True) as (_, base):
        assert (await get(base + "/healthz")).status_code == 200
        for p in ("/metrics", "/readyz", "/"):
            assert (await get(base + p)).status_code == 401, p
        assert (await get(base + "/metrics", auth=("prometheus", PASSWORD))).status_code == 200


async def test_client_certificate_required_refuses_the_handshake(
    sim: SimThread, tmp_path: Path, pki: dict[str, Any]
) -> None:
    ca = pki["ca"]
    path = write(
        tmp_path / "web.yml",
        {
            "tls_server_config": {
                "cert_file": str(pki["server"].cert),
                "key_file": str(pki["server"].key),
                "client_auth_type": "RequireAndVerifyClientCert",
                "client_ca_file": str(ca.pem),
            }
        },
    )
    async with secured(sim, path) as (_, base):
        ok = await get(base + "/metrics", verify=client_context(ca, pki["client"]))
        assert ok.status_code == 200
        for client in (None, pki["rogue"]):  # no certificate; a certificate from a CA the exporter does not trust
            with pytest.raises(httpx.TransportError):
                await get(base + "/metrics", verify=client_context(ca, client))
        # The server really refused: a raw TLS connection without a certificate gets no HTTP answer. With
        # TLS 1.3 the client's handshake ends first and the refusal shows on the first read; with TLS 1.2
        # the handshake itself fails.
        host, port = base.removeprefix("https://").split(":")
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            outcome = await asyncio.to_thread(_raw_tls_get, host, int(port), client_context(ca, max_version=version))
            assert outcome.startswith(("closed", "ssl error")), outcome


def _raw_tls_get(host: str, port: int, ctx: ssl.SSLContext) -> str:
    try:
        with (
            socket.create_connection((host, port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as tls,
        ):
            tls.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            data = tls.recv(100)
    except (ssl.SSLError, ConnectionResetError) as exc:
        return f"ssl error: {exc}"
    return "closed" if data == b"" else f"served: {data!r}"


async def test_verify_if_given_allowed_sans_min_version_and_rate_limit(
    sim: SimThread, tmp_path: Path, pki: dict[str, Any]
) -> None:
    ca = pki["ca"]
    tls = {"cert_file": str(pki["server"].cert), "key_file": str(pki["server"].key), "client_ca_file": str(ca.pem)}
    path = write(tmp_path / "web.yml", {"tls_server_config": {**tls, "client_auth_type": "VerifyClientCertIfGiven"}})
    async with secured(sim, path) as (_, base):
        assert (await get(base + "/metrics", verify=client_context(ca))).status_code == 200
        with pytest.raises(httpx.TransportError):
            await get(base + "/metrics", verify=client_context(ca, pki["rogue"]))

    path = write(
        tmp_path / "sans.yml",
        {
            "tls_server_config": {
                **tls,
                "client_auth_type": "RequireAndVerifyClientCert",
                "client_allowed_sans": ["scraper.example"],
                "min_version": "TLS13",
            },
            "rate_limit": {"interval": "1m", "burst": 3},
        },
    )
    async with secured(sim, path, open_healthz=True) as (_, base):
        assert (await get(base + "/metrics", verify=client_context(ca, pki["client"]))).status_code == 200
        assert (await get(base + "/metrics", verify=client_context(ca, pki["nosan"]))).status_code == 403
        with pytest.raises(httpx.TransportError):  # TLS 1.2 only client against min_version TLS13
            await get(base + "/metrics", verify=client_context(ca, pki["client"], max_version=ssl.TLSVersion.TLSv1_2))
        statuses = [(await get(base + "/", verify=client_context(ca, pki["client"]))).status_code for _ in range(4)]
        assert statuses[-1] == 429 and statuses.count(429) >= 1
        # Probes are neither rate limited nor asked for SANs when /healthz is open.
        for _ in range(5):
            assert (await get(base + "/healthz", verify=client_context(ca, pki["nosan"]))).status_code == 200


async def test_reload_rotates_certificates_users_and_client_cas_without_restart(
    sim: SimThread, tmp_path: Path, pki: dict[str, Any]
) -> None:
    ca, other = pki["ca"], pki["other"]
    cert, key = tmp_path / "live.crt", tmp_path / "live.key"
    cert.write_bytes(pki["server"].cert.read_bytes())
    key.write_bytes(pki["server"].key.read_bytes())
    client_ca = tmp_path / "clients.pem"
    client_ca.write_bytes(ca.pem.read_bytes())
    data: dict[str, Any] = {
        "tls_server_config": {
            "cert_file": "live.crt",
            "key_file": "live.key",
            "client_auth_type": "RequireAndVerifyClientCert",
            "client_ca_file": "clients.pem",
        },
        "basic_auth_users": {"prometheus": bcrypt_hash(PASSWORD)},
    }
    path = write(tmp_path / "web.yml", data)
    good_client = client_context(ca, pki["client"])
    async with secured(sim, path) as (daemon, base):
        assert (await get(base + "/metrics", verify=good_client, auth=("prometheus", PASSWORD))).status_code == 200

        # 1. New server certificate from another CA, files replaced in place (as cert-manager does).
        rotated = other.issue("server2", server=True)
        cert.write_bytes(rotated.cert.read_bytes())
        key.write_bytes(rotated.key.read_bytes())
        both = client_context(other, pki["client"])

        async def new_cert_served() -> None:
            r = await get(base + "/metrics", verify=both, auth=("prometheus", PASSWORD))
            assert r.status_code == 200

        await passes(new_cert_served, what="rotated server certificate")
        with pytest.raises(httpx.ConnectError):  # the old CA no longer matches what is served
            await get(base + "/metrics", verify=good_client, auth=("prometheus", PASSWORD))

        # 2. New password and a new client CA: old credentials and certificates stop working.
        data["basic_auth_users"] = {"prometheus": bcrypt_hash("n3w-password")}
        client_ca.write_bytes(other.pem.read_bytes())
        write(path, data)
        rogue_now_valid = client_context(other, pki["rogue"])

        async def new_settings() -> None:
            r = await get(base + "/metrics", verify=rogue_now_valid, auth=("prometheus", "n3w-password"))
            assert r.status_code == 200

        await passes(new_settings, what="new users and client CA")
        assert (await get(base + "/metrics", verify=rogue_now_valid, auth=("prometheus", PASSWORD))).status_code == 401
        with pytest.raises(httpx.TransportError):  # a client certificate of the removed CA
            await get(base + "/metrics", verify=both, auth=("prometheus", "n3w-password"))

        # 3. A broken file keeps the last good settings and is reported.
        security = daemon.web_security
        assert security is not None
        failures = security.reload_failures
        path.write_text("tls_server_config: [unclosed", encoding="utf-8")
        await eventually_async(
            lambda: security.reload_failures != failures, what="the broken file reported", timeout=8, interval=0.1
        )
        assert security.reload_failures == failures + 1
        r = await get(base + "/metrics", verify=rogue_now_valid, auth=("prometheus", "n3w-password"))
        assert r.status_code == 200


def test_web_security_reload_refuses_to_switch_tls_off(tmp_path: Path, pki: dict[str, Any]) -> None:
    tls = {"cert_file": str(pki["server"].cert), "key_file": str(pki["server"].key)}
    path = write(tmp_path / "web.yml", {"tls_server_config": tls})
    security = WebSecurity(path)
    assert security.tls
    write(path, {"basic_auth_users": {"u": bcrypt_hash("p", rounds=4)}})
    assert security.reload_if_changed() is False
    assert security.reload_failures == 1 and security.config.tls_server_config is not None
    assert security.reload_if_changed() is False and security.reload_failures == 1  # reported once
