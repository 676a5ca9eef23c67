"""A small synchronous client for the Kafka Connect worker REST API, for integration tests.

It returns parsed JSON for the happy path and raises ``ConnectRestError`` (status + body) otherwise, so
tests can assert on the real worker's error responses. ``request`` gives the raw ``httpx.Response``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.support.waiting import eventually

T = TypeVar("T")

FILE_SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"
FILE_SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"


class ConnectRestError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.body = response.text
        self.content_type = response.headers.get("content-type", "")
        super().__init__(f"{response.request.method} {response.request.url} -> {self.status_code}: {self.body[:500]}")


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.25,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something other than None/False (a busy or rebalancing worker's errors
    count as "not yet"); ``tests.support.waiting.eventually`` with the REST errors to ride out."""
    return eventually(probe, what=what, timeout=timeout, interval=interval, ignore=(httpx.HTTPError, ConnectRestError))


class ConnectRest:
    """REST client bound to one worker. Mutating calls retry the worker's transient 409 rebalance conflicts."""

    def __init__(self, base_url: str, *, auth: tuple[str, str] | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, auth=auth, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ConnectRest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw -------------------------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._client.request(method, path, **kwargs)

    def _json(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        resp = self.request(method, path, **kwargs)
        if resp.status_code not in ok:
            raise ConnectRestError(resp)
        return resp.json() if resp.content else None

    def _mutate(self, method: str, path: str, *, ok: tuple[int, ...], retry_for: float = 60.0, **kwargs: Any) -> Any:
        """Send a mutating request; 409s caused by a rebalance are transient, so retry them for a bound."""
        deadline = time.monotonic() + retry_for
        while True:
            resp = self.request(method, path, **kwargs)
            if resp.status_code in ok:
                return resp.json() if resp.content else None
            transient = resp.status_code == 409 and "already exists" not in resp.text
            if not transient or time.monotonic() >= deadline:
                raise ConnectRestError(resp)
            time.sleep(0.5)

    # -- reads -----------------------------------------------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        return dict(self._json("GET", "/"))

    def plugins(self, connectors_only: bool = True) -> list[dict[str, Any]]:
        return list(self._json("GET", "/connector-plugins", params={"connectorsOnly": str(connectors_only).lower()}))

    def connectors(self) -> list[str]:
        return list(self._json("GET", "/connectors"))

    def connectors_expanded(self, *expand: str) -> dict[str, Any]:
        """``GET /connectors?expand=status&expand=info`` (repeated params, as the worker requires)."""
        params = [("expand", e) for e in (expand or ("status", "info"))]
        return dict(self._json("GET", "/connectors", params=params))

    def info(self, name: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/connectors/{name}"))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/connectors/{name}/status"))

    def task_status(self, name: str, task: int) -> dict[str, Any]:
        return dict(self._json("GET", f"/connectors/{name}/tasks/{task}/status"))

    # -- writes ----------------------------------------------------------------------------------------
    def create_connector(
        self, name: str, config: Mapping[str, str], *, initial_state: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "config": dict(config)}
        if initial_state is not None:
            body["initial_state"] = initial_state
        return dict(self._mutate("POST", "/connectors", ok=(201,), json=body))

    def put_config(self, name: str, config: Mapping[str, str]) -> dict[str, Any]:
        return dict(self._mutate("PUT", f"/connectors/{name}/config", ok=(200, 201), json=dict(config)))

    def pause(self, name: str) -> None:
        self._mutate("PUT", f"/connectors/{name}/pause", ok=(202,))

    def resume(self, name: str) -> None:
        self._mutate("PUT", f"/connectors/{name}/resume", ok=(202,))

    def stop(self, name: str) -> None:
        self._mutate("PUT", f"/connectors/{name}/stop", ok=(204,))

    def delete(self, name: str) -> None:
        self._mutate("DELETE", f"/connectors/{name}", ok=(204,))

    def restart(self, name: str, *, include_tasks: bool = False, only_failed: bool = False) -> dict[str, Any] | None:
        """Returns the restart plan (202) when a parameter is set, None for the plain 204 restart."""
        params = {"includeTasks": str(include_tasks).lower(), "onlyFailed": str(only_failed).lower()}
        result = self._mutate("POST", f"/connectors/{name}/restart", ok=(202, 204), params=params)
        return dict(result) if result is not None else None

    def restart_task(self, name: str, task: int) -> None:
        self._mutate("POST", f"/connectors/{name}/tasks/{task}/restart", ok=(204,))

    # -- waiting ---------------------------------------------------------------------------------------
    def wait_for_state(
        self,
        name: str,
        state: str,
        *,
        task_state: str | None = None,
        tasks: int | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """Poll the status until the connector is in ``state`` and (optionally) all ``tasks`` are ``task_state``."""

        def probe() -> dict[str, Any] | None:
            resp = self.request("GET", f"/connectors/{name}/status")
            if resp.status_code != 200:
                return None
            st: dict[str, Any] = resp.json()
            if st["connector"]["state"] != state:
                return None
            if tasks is not None and len(st["tasks"]) != tasks:
                return None
            if task_state is not None and any(t["state"] != task_state for t in st["tasks"]):
                return None
            return st

        desc = f"{name} {state}"
        if task_state:
            desc += f" with {tasks if tasks is not None else 'all'} tasks {task_state}"
        return wait_until(probe, timeout=timeout, what=desc)


def file_source(rest: ConnectRest, name: str, path: Path, topic: str, text: str = "one\ntwo\n", **config: str) -> None:
    """A one-task FileStreamSource reading ``text``, written to ``path`` first, into ``topic``."""
    path.write_text(text, encoding="utf-8")
    rest.create_connector(
        name, {"connector.class": FILE_SOURCE, "file": str(path), "topic": topic, "tasks.max": "1", **config}
    )


def file_sink(rest: ConnectRest, name: str, path: Path, topic: str, tasks: int = 1, **config: str) -> None:
    """A FileStreamSink writing ``topic`` to ``path`` (a missing directory makes its tasks fail in start())."""
    rest.create_connector(
        name, {"connector.class": FILE_SINK, "file": str(path), "topics": topic, "tasks.max": str(tasks), **config}
    )
