"""TLS to Connect workers: CA bundle, client certificates (mTLS), encrypted keys, verification on by default.

The worker is the simulator's REST layer behind a real TLS listener on loopback, with certificates made here.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from exporter.config import build_config
from simulator.connect import rest
from simulator.connect.state import SimCluster
from tests.support.daemon_harness import running_daemon
from tests.support.pki import CA


@asynccontextmanager
async def tls_worker(cluster: SimCluster, ca: CA, tmp: Path, *, require_client_cert: bool) -> AsyncIterator[str]:
    server = ca.issue("worker", server=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca.pem))
    ctx.load_cert_chain(str(server.cert), str(server.key))
    ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE

    async def handler(request: web.Request) -> web.StreamResponse:
        res = rest.handle(cluster, request.method, request.raw_path.split("?", 1)[0], query=list(request.query.items()))
        return web.Response(
            status=res.status,
            body=res.body or None,
            content_type=None,
            headers={"Content-Type": res.content_type or "application/json"},
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = runner.addresses[0][1]
    cluster.set_worker_id(0, f"127.0.0.1:{port}")
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def config(url: str, tls: dict[str, Any]) -> Any:
    return build_config(
        {
            "web": {"listen_address": "127.0.0.1:0"},
            "clusters": [
                {"name": "c", "urls": [url], "poll_interval": 0.2, "cycle_timeout": 2, "request_timeout": 2, "tls": tls}
            ],
        }
    )


@pytest.fixture
def cluster() -> SimCluster:
    c = SimCluster(worker_count=1)
    c.add_connector("secure-sink", "sink", tasks_max=2)
    return c


async def test_mtls_with_ca_bundle_and_client_certificate(cluster: SimCluster, tmp_path: Path) -> None:
    ca = CA(tmp_path)
    client = ca.issue("exporter", server=False)
    async with tls_worker(cluster, ca, tmp_path, require_client_cert=True) as url:
        tls = {"ca_file": str(ca.pem), "cert_file": str(client.cert), "key_file": str(client.key)}
        async with running_daemon(config(url, tls)) as ex:
            s = await ex.wait_for(lambda s: s.value("kafka_connect_up", connect_cluster="c") == 1.0, what="up")
            assert s.current_state("kafka_connect_connector_state", connector="secure-sink") == "RUNNING"


async def test_encrypted_client_key_with_password_from_env(
    cluster: SimCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = CA(tmp_path)
    client = ca.issue("exporter", server=False)
    key = serialization.load_pem_private_key(client.key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"key-passphrase-42"),
        )
    )
    monkeypatch.setenv("KEY_PW", "key-passphrase-42")
    async with tls_worker(cluster, ca, tmp_path, require_client_cert=True) as url:
        tls = {
            "ca_file": str(ca.pem),
            "cert_file": str(client.cert),
            "key_file": str(encrypted),
            "key_password_env": "KEY_PW",
        }
        async with running_daemon(config(url, tls)) as ex:
            await ex.wait_for(lambda s: s.value("kafka_connect_up", connect_cluster="c") == 1.0, what="up")


async def test_verification_is_on_by_default(cluster: SimCluster, tmp_path: Path) -> None:
    ca = CA(tmp_path)
    async with tls_worker(cluster, ca, tmp_path, require_client_cert=False) as url:
        # The worker's CA is not in the system trust store: without ca_file the handshake must fail.
        async with running_daemon(config(url, {})) as ex:
            s = await ex.next_polls("c", 2)
            assert s.value("kafka_connect_up", connect_cluster="c") == 0.0
            assert (s.value("kafka_connect_exporter_poll_errors_total", connect_cluster="c", reason="connect") or 0) > 0
            errors = ex.daemon.store.view.clusters["c"].errors
            assert any("CERTIFICATE_VERIFY_FAILED" in e.message or "certificate" in e.message.lower() for e in errors)
        # insecure_skip_verify is an explicit opt-out
        async with running_daemon(config(url, {"insecure_skip_verify": True})) as ex:
            await ex.wait_for(lambda s: s.value("kafka_connect_up", connect_cluster="c") == 1.0, what="up")


async def test_missing_client_certificate_when_required_fails(cluster: SimCluster, tmp_path: Path) -> None:
    ca = CA(tmp_path)
    async with (
        tls_worker(cluster, ca, tmp_path, require_client_cert=True) as url,
        running_daemon(config(url, {"ca_file": str(ca.pem)})) as ex,
    ):
        s = await ex.next_polls("c", 2)
        assert s.value("kafka_connect_up", connect_cluster="c") == 0.0
        assert s.value("kafka_connect_worker_up", connect_cluster="c", worker=url) == 0.0
