"""HTTP access to Connect workers: one keep-alive httpx.AsyncClient per cluster, and connector paths.

Requests go through the shared transport (``exporter.transport``): bounded reads and typed failures.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from exporter.connect.config import ConnectClusterConfig
from exporter.transport import USER_AGENT

# Per cluster: the fallback's parallel requests (fallback_concurrency <= 64 queue for these), GET / on every
# worker, and the healer's restarts.
MAX_CONNECTIONS = 16


def build_http_client(cluster: ConnectClusterConfig) -> httpx.AsyncClient:
    """The cluster's one client, carrying its auth, TLS and headers; the poller and the healer share it.
    Timeouts apply to every request."""
    auth: httpx.Auth | None = None
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **cluster.headers}
    if cluster.auth.basic is not None:
        password = cluster.auth.basic.password
        assert password is not None
        auth = httpx.BasicAuth(cluster.auth.basic.username, password.get_secret_value())
    elif cluster.auth.bearer is not None:
        token = cluster.auth.bearer.token
        assert token is not None
        headers["Authorization"] = f"Bearer {token.get_secret_value()}"
    return httpx.AsyncClient(
        auth=auth,
        headers=headers,
        verify=cluster.tls.ssl_context(),
        timeout=httpx.Timeout(cluster.request_timeout),
        limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
        follow_redirects=False,
        trust_env=False,  # proxies from the environment would send Connect traffic somewhere unexpected
    )


def connector_path(name: str, *rest: str) -> str:
    """``/connectors/<name>/...`` with the name percent-encoded: names may hold '/', '?', spaces, quotes."""
    return "/".join(["/connectors", quote(name, safe=""), *rest])
