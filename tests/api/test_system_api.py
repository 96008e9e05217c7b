"""GET /api/v1/system and /api/v1/alerts on a real uvicorn server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.api.test_tasks_api import new_user, task_body, wait_status
from tests.conftest import LiveServer

BACKLOG_RULES = """
rules:
  - name: backlog_warning
    metric: orchestrion_queue_backlog
    comparison: ">"
    threshold: 0
    for: 600
    severity: warning
  - name: backlog_critical
    metric: orchestrion_queue_backlog
    comparison: ">"
    threshold: 1
    for: 600
    severity: critical
  - name: backlog_note
    metric: orchestrion_queue_backlog
    comparison: ">"
    threshold: 0
    severity: info
"""


async def poll_system(
    client: httpx.AsyncClient, accept: Callable[[dict[str, Any]], bool], *, timeout: float = 15.0
) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            response = await client.get("/api/v1/system")
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if accept(body):
                return body
            await asyncio.sleep(0.05)


def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yml"
    path.write_text(BACKLOG_RULES)
    return path


async def test_system_reports_agents_tasks_performance_and_the_latest_sample(
    server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = server_factory(alert_rules_file=rules_file(tmp_path), system_sample_seconds=0.1)
    async with server.client() as client:
        created = (await client.post("/api/v1/tasks", json=task_body())).json()
        assert (await wait_status(client, created["id"]))["status"] == "succeeded"
        agents = (await client.get("/api/v1/agents")).json()
        body = await poll_system(client, lambda b: (b["sample"] or {}).get("queue_backlog") == 0)

    assert body["health"] == {"status": "healthy", "reasons": []}
    assert body["agents"]["total"] == len(agents)
    assert body["agents"]["active"] == sum(1 for a in agents if a["metrics"]["status"] != "offline")
    assert body["agents"]["processing"] == 0
    assert sum(body["agents"]["by_status"].values()) == len(agents)
    assert body["tasks"]["total"] == 1 and body["tasks"]["by_status"]["succeeded"] == 1
    assert set(body["tasks"]["by_status"]) >= {"pending", "queued", "running", "failed", "cancelled"}
    performance = body["performance"]
    assert performance["recent_runs"] == 2  # the analyser and the reporter
    assert performance["success_rate"] == 1.0 and performance["avg_response_seconds"] >= 0
    assert performance["task_window_seconds"] == 900
    assert body["alerts"] == {"firing": 0, "by_severity": {"info": 0, "warning": 0, "critical": 0}}
    sample = body["sample"]
    assert 0 <= sample["host"]["cpu_percent"] <= 100 and sample["host"]["process_open_fds"] > 0
    assert sample["open_circuits"] == 0 and sample["queue_depth"] == 0


async def test_health_follows_the_rule_conditions_holding_now(
    server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = server_factory(
        alert_rules_file=rules_file(tmp_path), system_sample_seconds=0.1, embedded_worker=False
    )
    async with server.client() as client:
        healthy = await poll_system(client, lambda b: b["sample"] is not None)
        assert healthy["health"] == {"status": "healthy", "reasons": []}

        assert (await client.post("/api/v1/tasks", json=task_body())).status_code == 201
        degraded = await poll_system(client, lambda b: b["health"]["status"] != "healthy")
        assert degraded["health"] == {
            "status": "degraded",
            "reasons": ["backlog_warning: orchestrion_queue_backlog is 1 (> 0)"],
        }

        assert (await client.post("/api/v1/tasks", json=task_body())).status_code == 201
        stressed = await poll_system(client, lambda b: b["health"]["status"] == "stressed")
        assert stressed["health"]["reasons"] == [
            "backlog_critical: orchestrion_queue_backlog is 2 (> 1)",
            "backlog_warning: orchestrion_queue_backlog is 2 (> 0)",
        ]
        # Health reads the conditions now; the alerts themselves wait for their `for` (600 s)...
        assert stressed["alerts"]["by_severity"]["critical"] == 0
        # ...except the info rule, which fires at once and never changes the health.
        assert stressed["alerts"]["by_severity"]["info"] == 1
        assert stressed["tasks"]["by_status"]["queued"] == 2
        assert stressed["performance"]["recent_runs"] == 0
        assert stressed["performance"]["success_rate"] is None


async def test_any_user_reads_system_and_alerts_but_not_anonymously(live_server: LiveServer) -> None:
    viewer = await new_user(live_server, "watcher", role="viewer")
    async with live_server.client(key=viewer) as client:
        assert (await client.get("/api/v1/system")).status_code == 200
        alerts = await client.get("/api/v1/alerts", params={"state": "firing", "limit": 5})
        assert alerts.status_code == 200 and alerts.json()["data"] == []
        bad = await client.get("/api/v1/alerts", params={"state": "on_fire"})
        assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "state"
        assert (await client.get("/api/v1/alerts", params={"limit": 0})).status_code == 422
    async with live_server.client(key="") as anonymous:
        for path in ("/api/v1/system", "/api/v1/alerts"):
            assert (await anonymous.get(path)).status_code == 401
