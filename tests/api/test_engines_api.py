"""GET /api/v1/engines and the engine fields of POST /api/v1/tasks, on a real uvicorn server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrion.providers.base import ChatRequest, ChatResponse
from orchestrion.testing import ScriptedProvider
from tests.api.test_tasks_api import new_user, wait_status
from tests.conftest import LiveServer


class Held(ScriptedProvider):
    def __init__(self) -> None:
        super().__init__(default={"output": "done", "label": "ok"})
        self.release = asyncio.Event()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        await asyncio.to_thread(self._wait)
        return await super().complete(request)

    def _wait(self) -> None:
        # The server runs on its own loop in another thread: wait on a thread-safe flag.
        import time

        while not self.release.is_set():
            time.sleep(0.01)


def batch(title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": title,
        "task_type": "parallel_processing",
        "inputs": {"items": ["first", "second"]},
        "options": {"instruction": "Label the item"},
        **extra,
    }


QUIET_RULES = """
rules:
  - name: huge_backlog
    metric: orchestrion_queue_backlog
    comparison: ">"
    threshold: 100000
    severity: critical
"""


async def test_engines_show_state_load_rules_and_health(
    server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    held = Held()
    rules = tmp_path / "rules.yml"
    rules.write_text(QUIET_RULES)  # the health then depends on the engines alone, not on this machine
    server = server_factory(
        routes={"default": [held]},
        workers=2,
        engine_max_concurrency="parallel=1,team=1",
        alert_rules_file=rules,
    )
    user_key = await new_user(server, "other")
    async with server.client() as admin, server.client(user_key) as other:
        idle = (await admin.get("/api/v1/engines")).json()
        assert [e["name"] for e in idle["engines"]] == ["team", "parallel", "creative", "recall"]
        assert {e["state"] for e in idle["engines"]} == {"idle"}
        assert idle["health"] == {"status": "healthy", "reasons": []}
        parallel = next(e for e in idle["engines"] if e["name"] == "parallel")
        assert parallel["max_concurrency"] == 1 and parallel["step_concurrency"] == 16
        assert parallel["primary_for"] == ["batch_operation", "concurrent_analysis", "parallel_processing"]
        assert {"task_type": "brainstorming", "primary": "creative", "fallbacks": ["team"]} in idle["rules"]

        ids = []
        for title in ("one", "two", "three"):
            response = await admin.post("/api/v1/tasks", json=batch(title))
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        assert [(await admin.get(f"/api/v1/tasks/{i}")).json()["engine"] for i in ids] == [
            "parallel",
            "team",
            "parallel",
        ]
        async with asyncio.timeout(10):
            while True:
                busy = (await admin.get("/api/v1/engines")).json()
                by_name = {e["name"]: e for e in busy["engines"]}
                if by_name["parallel"]["state"] == "overloaded" and by_name["team"]["running"] == 1:
                    break
                await asyncio.sleep(0.02)
        assert by_name["parallel"]["current_tasks"] == [ids[0]] and by_name["parallel"]["queued"] == 1
        assert by_name["team"]["current_tasks"] == [ids[1]]
        assert busy["queue"]["waiting"] == 1 and busy["queue"]["aging_seconds"] == 30.0
        assert busy["health"]["status"] == "degraded"
        assert busy["health"]["reasons"] == ["engine parallel is overloaded: 1 running (limit 1), 1 waiting"]
        # Another user sees the load, not whose tasks they are.
        seen = {e["name"]: e for e in (await other.get("/api/v1/engines")).json()["engines"]}
        assert seen["parallel"]["running"] == 1 and seen["parallel"]["current_tasks"] == []

        held.release.set()
        for task_id in ids:
            assert (await wait_status(admin, task_id))["status"] == "succeeded"


async def test_bad_engine_fields_are_422_naming_the_field(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        unknown = await client.post("/api/v1/tasks", json=batch("x", engine="warp"))
        assert unknown.status_code == 422
        assert unknown.json()["error"]["details"]["field"] == "engine"
        assert unknown.json()["error"]["details"]["choices"] == ["team", "parallel", "creative", "recall"]
        wrong = await client.post("/api/v1/tasks", json=batch("x", engine="recall"))
        assert wrong.status_code == 422 and wrong.json()["error"]["details"]["choices"] == [
            "parallel",
            "team",
        ]
        option = await client.post("/api/v1/tasks", json=batch("x", options={"colour": "red"}))
        assert option.status_code == 422 and "colour" in option.text
        items = await client.post(
            "/api/v1/tasks",
            json={"title": "x", "task_type": "brainstorming", "inputs": {"items": ["a"]}},
        )
        assert items.status_code == 422 and items.json()["error"]["details"]["field"] == "inputs.items"
