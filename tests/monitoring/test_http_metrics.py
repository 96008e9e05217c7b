"""`/metrics` on a real server: HTTP metrics by route template, scrape-time task counts, queue wait,
process collectors, and no unauthenticated second endpoint."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from starlette.routing import BaseRoute

from orchestrion.api.app import create_app
from tests.api.test_tasks_api import task_body, wait_status
from tests.conftest import LiveServer


async def _scrape(client: httpx.AsyncClient) -> list[Sample]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return [s for family in text_string_to_metric_families(response.text) for s in family.samples]


def _value(samples: list[Sample], name: str, **labels: str) -> float | None:
    for sample in samples:
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return None


def _label_values(samples: list[Sample], name: str, label: str) -> set[str]:
    return {s.labels[label] for s in samples if s.name == name}


async def test_requests_are_counted_by_route_template_never_by_raw_path(live_server: LiveServer) -> None:
    unknown = [str(uuid.uuid4()) for _ in range(3)]
    async with live_server.client() as client:
        for task_id in unknown:
            assert (await client.get(f"/api/v1/tasks/{task_id}")).status_code == 404
        assert (await client.get("/api/v1/tasks")).status_code == 200
        assert (await client.get(f"/no/such/{unknown[0]}")).status_code == 404
        samples = await _scrape(client)

    requests = "orchestrion_http_requests_total"
    one_task = {"handler": "/api/v1/tasks/{task_id}", "method": "GET"}
    assert _value(samples, requests, **one_task, status="4xx") == 3
    assert _value(samples, requests, handler="/api/v1/tasks", method="GET", status="2xx") == 1
    assert _value(samples, requests, handler="none", method="GET", status="4xx") == 1
    assert _value(samples, "orchestrion_http_request_duration_seconds_count", **one_task) == 3
    handlers = _label_values(samples, requests, "handler")
    assert not any(task_id in handler for handler in handlers for task_id in unknown)


async def test_health_and_metrics_requests_are_not_counted(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        assert (await client.get("/health")).status_code == 200
        await _scrape(client)
        samples = await _scrape(client)

    assert _label_values(samples, "orchestrion_http_requests_total", "handler") == set()


async def test_unknown_methods_share_one_label_value(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        # Methods the HTTP parser accepts (it rejects made-up ones before the app sees them).
        for method in ("PROPFIND", "MKCOL", "PURGE"):
            response = await client.request(method, "/api/v1/tasks")
            assert response.status_code == 405
        samples = await _scrape(client)

    methods = _label_values(samples, "orchestrion_http_requests_total", "method")
    assert methods == {"other"}
    assert _value(samples, "orchestrion_http_requests_total", method="other", status="4xx") == 3


async def test_metrics_need_credentials_and_exist_once(live_server: LiveServer) -> None:
    async with live_server.client(key="") as anonymous:
        assert (await anonymous.get("/metrics")).status_code == 401
    async with live_server.client(key="orc_not_a_key") as wrong:
        assert (await wrong.get("/metrics")).status_code == 401
    # The instrumentator adds middleware only: an app has exactly one `/metrics`, the authenticated one.
    assert _route_paths(create_app(runtime=live_server.runtime).routes).count("/metrics") == 1


async def test_an_unexpected_error_counts_as_5xx(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(task_type: str) -> list[str]:
        raise RuntimeError("registry bug")

    monkeypatch.setattr(live_server.runtime.registry, "specialists_for", broken)
    async with live_server.client() as client:
        assert (await client.get("/api/v1/task-types")).status_code == 500
    # A new connection: uvicorn closes the one an application error went through.
    async with live_server.client() as client:
        samples = await _scrape(client)

    labels = {"handler": "/api/v1/task-types", "method": "GET", "status": "5xx"}
    assert _value(samples, "orchestrion_http_requests_total", **labels) == 1


async def test_scrapes_count_tasks_by_type_and_status_and_observe_queue_wait(
    live_server: LiveServer,
) -> None:
    async with live_server.client() as client:
        ran = (await client.post("/api/v1/tasks", json=task_body())).json()
        assert (await wait_status(client, ran["id"]))["status"] == "succeeded"
        await client.post("/api/v1/tasks", json=task_body(auto_execute=False))
        await client.post("/api/v1/tasks", json=task_body(auto_execute=False))
        samples = await _scrape(client)

        gauge = "orchestrion_tasks_by_status"
        assert _value(samples, gauge, task_type="code_analysis", status="pending") == 2
        assert _value(samples, gauge, task_type="code_analysis", status="succeeded") == 1
        assert _value(samples, gauge, task_type="code_analysis", status="failed") == 0
        assert _value(samples, "orchestrion_queue_wait_seconds_count", task_type="code_analysis") == 1

        # The gauge is the store's current state, not a count of transitions.
        pending = (await client.get("/api/v1/tasks", params={"status": "pending"})).json()["data"]
        await client.post(f"/api/v1/tasks/{pending[0]['id']}/cancel")
        samples = await _scrape(client)
        assert _value(samples, gauge, task_type="code_analysis", status="pending") == 1
        assert _value(samples, gauge, task_type="code_analysis", status="cancelled") == 1


async def test_process_and_python_collectors_are_on_the_runtime_registry(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        samples = await _scrape(client)

    rss = _value(samples, "process_resident_memory_bytes")
    assert rss is not None and rss > 0
    assert _value(samples, "process_open_fds") is not None
    assert _value(samples, "python_info") == 1
    assert _value(samples, "python_gc_objects_collected_total", generation="0") is not None


def _route_paths(routes: Sequence[BaseRoute]) -> list[str]:
    """Every route's full path; FastAPI keeps included routers as contexts with their own routes."""
    paths: list[str] = []
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):
            paths += [str(getattr(c, "path", "")) for c in contexts()]
        else:
            paths.append(str(getattr(route, "path", "")))
    return paths
