"""Typed-enough clients over httpx: every method returns the API's JSON."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx


class OrchestrionAPIError(Exception):
    """An error response from the server."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        error = response.json()["error"]
        raise OrchestrionAPIError(response.status_code, error["code"], error["message"], error.get("details"))
    except (ValueError, KeyError, TypeError):
        raise OrchestrionAPIError(response.status_code, "http_error", response.text[:200]) from None


def task_body(
    *,
    title: str,
    task_type: str,
    target: str | None = None,
    files: Sequence[dict[str, str]] = (),
    paths: Sequence[str] = (),
    priority: int = 5,
    agents: Sequence[str] | None = None,
    auto_execute: bool = True,
    deadline_seconds: float | None = None,
    budget: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of a task submission."""
    body: dict[str, Any] = {
        "title": title,
        "task_type": task_type,
        "target": target,
        "priority": priority,
        "inputs": {"files": list(files), "paths": list(paths)},
        "auto_execute": auto_execute,
    }
    if agents:
        body["agents"] = list(agents)
    if deadline_seconds is not None:
        body["deadline_seconds"] = deadline_seconds
    if budget:
        body["budget"] = budget
    return body


def _parse_sse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield json.loads("\n".join(data))
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].strip())


class OrchestrionClient:
    """Blocking client."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> OrchestrionClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close connections."""
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        _raise_for(response)
        return response.json()

    def health(self) -> dict[str, Any]:
        return dict(self._call("GET", "/health"))

    def create_task(self, **fields: Any) -> dict[str, Any]:
        """Submit a task (keyword arguments of `task_body`)."""
        return dict(self._call("POST", "/api/v1/tasks", json=task_body(**fields)))

    def get_task(self, task_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/v1/tasks/{task_id}"))

    def list_tasks(self, **params: Any) -> dict[str, Any]:
        return dict(
            self._call("GET", "/api/v1/tasks", params={k: v for k, v in params.items() if v is not None})
        )

    def cancel_task(self, task_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/api/v1/tasks/{task_id}/cancel"))

    def retry_task(self, task_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/api/v1/tasks/{task_id}/retry"))

    def execute_task(self, task_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/api/v1/tasks/{task_id}/execute"))

    def progress(self, task_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/v1/tasks/{task_id}/progress"))

    def result(self, task_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/v1/tasks/{task_id}/result"))

    def events(self, task_id: str, *, after: int = 0) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/v1/tasks/{task_id}/events", params={"after": after}))

    def stream_events(self, task_id: str, *, after: int = 0) -> Iterator[dict[str, Any]]:
        """Follow a task's events over SSE until its final event."""
        headers = {"Accept": "text/event-stream"}
        with self._http.stream(
            "GET",
            f"/api/v1/tasks/{task_id}/events",
            params={"after": after},
            headers=headers,
            timeout=httpx.Timeout(30.0, read=None),
        ) as response:
            if not response.is_success:
                response.read()
                _raise_for(response)
            yield from _parse_sse(response.iter_lines())

    def providers(self) -> dict[str, Any]:
        """Routes and deployments: circuit state, latency, error rate, tokens and cost to date."""
        return dict(self._call("GET", "/api/v1/providers"))

    def usage(self, task_id: str) -> dict[str, Any]:
        """Every LLM call of a task, with totals per step and overall."""
        return dict(self._call("GET", f"/api/v1/tasks/{task_id}/usage"))

    def agents(self) -> list[dict[str, Any]]:
        """Every agent with its metrics (runs, success rate, response time, load, status, alerts)."""
        return list(self._call("GET", "/api/v1/agents"))

    def system(self) -> dict[str, Any]:
        """Health with its reasons, agents, tasks by status, recent performance, the latest host sample."""
        return dict(self._call("GET", "/api/v1/system"))

    def alerts(self, *, state: str | None = None, limit: int = 50) -> dict[str, Any]:
        """Alerts raised by the alert rules, newest first (`state`: firing or resolved)."""
        params: dict[str, Any] = {"limit": limit}
        if state is not None:
            params["state"] = state
        return dict(self._call("GET", "/api/v1/alerts", params=params))

    def models(self) -> dict[str, Any]:
        """The outcome model serving predictions and the registry of trained candidates."""
        return dict(self._call("GET", "/api/v1/intelligence/models"))

    def retrain(self) -> dict[str, Any]:
        """Train a candidate outcome model now (admins); its record says whether it was promoted."""
        return dict(self._call("POST", "/api/v1/intelligence/retrain"))

    def task_types(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/v1/task-types"))


class AsyncOrchestrionClient:
    """Asynchronous client."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncOrchestrionClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close connections."""
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._http.request(method, path, **kwargs)
        _raise_for(response)
        return response.json()

    async def create_task(self, **fields: Any) -> dict[str, Any]:
        return dict(await self._call("POST", "/api/v1/tasks", json=task_body(**fields)))

    async def get_task(self, task_id: str) -> dict[str, Any]:
        return dict(await self._call("GET", f"/api/v1/tasks/{task_id}"))

    async def result(self, task_id: str) -> dict[str, Any]:
        return dict(await self._call("GET", f"/api/v1/tasks/{task_id}/result"))

    async def events(self, task_id: str, *, after: int = 0) -> dict[str, Any]:
        return dict(await self._call("GET", f"/api/v1/tasks/{task_id}/events", params={"after": after}))

    async def stream_events(self, task_id: str, *, after: int = 0) -> AsyncIterator[dict[str, Any]]:
        """Follow a task's events over SSE until its final event."""
        headers = {"Accept": "text/event-stream"}
        async with self._http.stream(
            "GET",
            f"/api/v1/tasks/{task_id}/events",
            params={"after": after},
            headers=headers,
            timeout=httpx.Timeout(30.0, read=None),
        ) as response:
            if not response.is_success:
                await response.aread()
                _raise_for(response)
            data: list[str] = []
            async for line in response.aiter_lines():
                if line == "":
                    if data:
                        yield json.loads("\n".join(data))
                        data = []
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
