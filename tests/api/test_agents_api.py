"""/api/v1/agents with metrics, on a real uvicorn server (127.0.0.1) with a scripted LLM."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.api.test_tasks_api import task_body, wait_status
from tests.conftest import LiveServer

METRIC_FIELDS = {
    "runs",
    "succeeded",
    "errors",
    "recent_runs",
    "success_rate",
    "error_rate",
    "response_avg_seconds",
    "response_p95_seconds",
    "load",
    "last_activity_at",
    "status",
    "alerts",
}


async def test_agents_show_metrics_after_a_task_ran(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        created = (await client.post("/api/v1/tasks", json=task_body())).json()
        task = await wait_status(client, created["id"])
        assert task["status"] == "succeeded", task
        listed = await client.get("/api/v1/agents")
        one = await client.get("/api/v1/agents/code_analyzer")
    assert listed.status_code == 200 and one.status_code == 200
    agents = {a["id"]: a for a in listed.json()}
    assert all(set(a["metrics"]) == METRIC_FIELDS for a in agents.values())
    analyzer = agents["code_analyzer"]["metrics"]
    assert (analyzer["runs"], analyzer["succeeded"], analyzer["errors"], analyzer["recent_runs"]) == (
        1,
        1,
        0,
        1,
    )
    assert analyzer["success_rate"] == 1.0 and analyzer["error_rate"] == 0.0
    assert analyzer["response_avg_seconds"] >= 0 and analyzer["response_p95_seconds"] >= 0
    assert analyzer["load"] == 0 and analyzer["status"] == "idle" and analyzer["alerts"] == []
    assert datetime.fromisoformat(analyzer["last_activity_at"]).utcoffset() is not None
    assert agents["reporter"]["metrics"]["runs"] == 1
    idle = [a["metrics"] for a in agents.values() if a["id"] not in ("code_analyzer", "reporter")]
    assert idle and all(m["runs"] == 0 and m["success_rate"] is None for m in idle)
    assert one.json() == agents["code_analyzer"]


async def test_an_unknown_agent_is_404_with_the_valid_ids(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        response = await client.get("/api/v1/agents/wizard")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found" and "code_analyzer" in error["details"]["choices"]


async def test_agents_are_not_offline_without_any_llm(
    server_factory: Callable[..., LiveServer],
) -> None:
    server = server_factory(routes={})
    async with server.client() as client:
        agents: list[dict[str, Any]] = (await client.get("/api/v1/agents")).json()
    assert agents and {a["metrics"]["status"] for a in agents} == {"idle"}


async def test_agent_gauges_are_exported_once_the_view_is_computed(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        await client.get("/api/v1/agents")
        exposition = (await client.get("/metrics")).text
    assert 'orchestrion_agent_load{agent="code_analyzer"} 0.0' in exposition
    assert 'orchestrion_agent_alerts{agent="code_analyzer"} 0.0' in exposition
