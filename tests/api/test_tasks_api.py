"""The HTTP API on a real uvicorn server (127.0.0.1), real httpx clients, real SQLite."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from orchestrion.store.tasks import get_task
from tests.conftest import LiveServer

CODE = {
    "name": "app.py",
    "content": "import subprocess\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n",
}


def task_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"title": "audit app", "task_type": "code_analysis", "inputs": {"files": [CODE]}}
    body.update(overrides)
    return body


async def wait_status(client: httpx.AsyncClient, task_id: str, *, timeout: float = 30.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            task = (await client.get(f"/api/v1/tasks/{task_id}")).json()
            if task["status"] in ("succeeded", "failed", "partial", "cancelled"):
                return dict(task)
            await asyncio.sleep(0.05)


async def new_user(server: LiveServer, name: str, role: str = "operator") -> str:
    async with server.client() as admin:
        response = await admin.post("/api/v1/users", json={"name": name, "role": role})
    assert response.status_code == 201, response.text
    return str(response.json()["api_key"])


async def test_health_needs_no_auth_and_reports_components(live_server: LiveServer) -> None:
    async with live_server.client(key="") as anonymous:
        response = await anonymous.get("/health")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok" and body["database"]["ok"] is True
    assert body["queue"]["workers"] == 2
    assert body["providers"]["routes"] == {"default": ["scripted:scripted"]}


async def test_every_api_route_requires_credentials(live_server: LiveServer) -> None:
    async with live_server.client(key="") as anonymous:
        for method, path in [
            ("GET", "/api/v1/tasks"),
            ("POST", "/api/v1/tasks"),
            ("GET", "/api/v1/agents"),
            ("GET", "/api/v1/task-types"),
            ("GET", "/api/v1/tasks/x/result"),
        ]:
            response = await anonymous.request(method, path, json={})
            assert response.status_code == 401, path
            assert response.json()["error"]["code"] == "unauthorized"
    async with live_server.client(key="orc_wrongwrongwrongwrongwrong") as wrong:
        assert (await wrong.get("/api/v1/tasks")).status_code == 401
    async with live_server.client(key="not-a-jwt") as garbage:
        assert (await garbage.get("/api/v1/tasks")).status_code == 401


async def test_code_analysis_task_runs_end_to_end(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        response = await client.post("/api/v1/tasks", json=task_body())
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["status"] == "queued"
        assert created["agents"] == ["code_analyzer"]
        assert [s["id"] for s in created["plan"]["steps"]] == ["code_analyzer", "reporter"]
        assert 0 < created["prediction"]["success_probability"] <= 1
        task = await wait_status(client, created["id"])
        assert task["status"] == "succeeded", task
        result = (await client.get(f"/api/v1/tasks/{created['id']}/result")).json()
        progress = (await client.get(f"/api/v1/tasks/{created['id']}/progress")).json()
        events = (await client.get(f"/api/v1/tasks/{created['id']}/events")).json()
    assert progress["percent"] == 100.0 and {s["status"] for s in progress["steps"]} == {"succeeded"}
    titles = [f["title"] for f in result["findings"]]
    assert any("shell" in t.lower() for t in titles), titles
    cited = {i for f in result["findings"] for i in f["evidence_ids"]}
    assert cited and cited <= {e["id"] for e in result["evidence"]}
    assert set(result["quality"]) == {"coverage", "grounding", "agreement", "completion", "overall"}
    types = [e["type"] for e in events["data"]]
    assert types[0] == "task.created" and types[-1] == "task.completed"
    assert [e["seq"] for e in events["data"]] == list(range(1, len(types) + 1))
    # One progress event per round that finished steps: the specialist, then the reporter.
    progress_events = [e["data"] for e in events["data"] if e["type"] == "task.progress"]
    assert [(p["steps_done"], p["steps_total"], p["percent"]) for p in progress_events] == [
        (1, 2, 50.0),
        (2, 2, 100.0),
    ]


async def test_unknown_task_type_and_agent_are_422_with_choices(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        bad_type = await client.post("/api/v1/tasks", json=task_body(task_type="astrology"))
        bad_agent = await client.post("/api/v1/tasks", json=task_body(agents=["wizard"]))
        wrong_agent = await client.post("/api/v1/tasks", json=task_body(agents=["data_analyst"]))
        missing = await client.post("/api/v1/tasks", json={"task_type": "code_analysis"})
        bad_priority = await client.post("/api/v1/tasks", json=task_body(priority=11))
        no_inputs = await client.post("/api/v1/tasks", json=task_body(inputs={}))
    assert bad_type.status_code == 422
    error = bad_type.json()["error"]
    assert error["details"]["field"] == "task_type"
    assert "code_analysis" in error["details"]["choices"]
    assert bad_agent.status_code == 422 and "code_analyzer" in bad_agent.json()["error"]["details"]["choices"]
    assert wrong_agent.status_code == 422 and wrong_agent.json()["error"]["details"]["choices"] == [
        "code_analyzer"
    ]
    assert missing.status_code == 422 and missing.json()["error"]["details"]["field"] == "title"
    assert bad_priority.status_code == 422 and bad_priority.json()["error"]["details"]["field"] == "priority"
    assert no_inputs.status_code == 422 and no_inputs.json()["error"]["details"]["field"] == "inputs"


async def test_paths_outside_workspace_roots_are_refused(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        response = await client.post("/api/v1/tasks", json=task_body(inputs={"paths": ["/etc/passwd"]}))
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == "inputs.paths[0]"


async def test_users_see_only_their_own_tasks(live_server: LiveServer) -> None:
    alice, bob = await new_user(live_server, "alice"), await new_user(live_server, "bob")
    async with live_server.client(alice) as a, live_server.client(bob) as b, live_server.client() as admin:
        created = (await a.post("/api/v1/tasks", json=task_body(auto_execute=False))).json()
        task_id = created["id"]
        for method, suffix in [
            ("GET", ""),
            ("GET", "/progress"),
            ("GET", "/events"),
            ("POST", "/cancel"),
            ("POST", "/execute"),
            ("POST", "/retry"),
            ("GET", "/result"),
        ]:
            response = await b.request(method, f"/api/v1/tasks/{task_id}{suffix}")
            assert response.status_code == 404, (suffix, response.text)
        assert (await b.get("/api/v1/tasks")).json()["data"] == []
        assert [t["id"] for t in (await a.get("/api/v1/tasks")).json()["data"]] == [task_id]
        assert [t["id"] for t in (await admin.get("/api/v1/tasks")).json()["data"]] == [task_id]


async def test_viewer_cannot_submit(live_server: LiveServer) -> None:
    viewer = await new_user(live_server, "vera", role="viewer")
    async with live_server.client(viewer) as client:
        response = await client.post("/api/v1/tasks", json=task_body())
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


async def test_illegal_transitions_are_409_with_current_status(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        pending = (await client.post("/api/v1/tasks", json=task_body(auto_execute=False))).json()
        retry_pending = await client.post(f"/api/v1/tasks/{pending['id']}/retry")
        assert retry_pending.status_code == 409
        assert retry_pending.json()["error"]["details"]["status"] == "pending"
        assert (await client.post(f"/api/v1/tasks/{pending['id']}/execute")).status_code == 200
        done = await wait_status(client, pending["id"])
        assert done["status"] == "succeeded"
        for action in ("execute", "retry", "cancel"):
            response = await client.post(f"/api/v1/tasks/{pending['id']}/{action}")
            assert response.status_code == 409, action
            assert response.json()["error"]["details"]["status"] == "succeeded"
        queued = (await client.post("/api/v1/tasks", json=task_body(auto_execute=False))).json()
        cancelled = (await client.post(f"/api/v1/tasks/{queued['id']}/cancel")).json()
        assert cancelled["status"] == "cancelled"
        retried = await client.post(f"/api/v1/tasks/{queued['id']}/retry")
        assert retried.status_code == 200 and retried.json()["status"] in ("queued", "running", "succeeded")
        assert (await wait_status(client, queued["id"]))["status"] == "succeeded"


async def test_body_over_limit_is_413(server_factory: Any) -> None:
    server = server_factory(max_body_bytes=4096)
    async with server.client() as client:
        big = task_body(inputs={"files": [{"name": "a.py", "content": "x = 1\n" * 2000}]})
        response = await client.post("/api/v1/tasks", json=big)
        payload = json.dumps(big).encode()

        async def chunks() -> Any:
            for i in range(0, len(payload), 1000):
                yield payload[i : i + 1000]

        chunked = await client.post(
            "/api/v1/tasks", content=chunks(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    assert chunked.status_code == 413


async def test_jwt_from_password_and_from_api_key(live_server: LiveServer) -> None:
    async with live_server.client() as admin:
        created = await admin.post(
            "/api/v1/users", json={"name": "pat", "role": "operator", "password": "s3cret-pw!"}
        )
        assert created.status_code == 201
        by_key = await admin.post("/api/v1/auth/token")
    async with live_server.client(key="") as anonymous:
        wrong = await anonymous.post("/api/v1/auth/token", json={"username": "pat", "password": "nope"})
        right = await anonymous.post("/api/v1/auth/token", json={"username": "pat", "password": "s3cret-pw!"})
    assert wrong.status_code == 401
    assert right.status_code == 200 and by_key.status_code == 200
    async with live_server.client(right.json()["access_token"]) as pat:
        assert (await pat.get("/api/v1/tasks")).status_code == 200
    async with live_server.client(by_key.json()["access_token"]) as admin_jwt:
        assert (await admin_jwt.get("/api/v1/agents")).status_code == 200


async def test_list_filters_validate_and_paginate(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        ids = [
            (await client.post("/api/v1/tasks", json=task_body(auto_execute=False))).json()["id"]
            for _ in range(5)
        ]
        first = (await client.get("/api/v1/tasks", params={"limit": 2})).json()
        second = (
            await client.get("/api/v1/tasks", params={"limit": 2, "cursor": first["next_cursor"]})
        ).json()
        bad_status = await client.get("/api/v1/tasks", params={"status": "sleeping"})
        bad_cursor = await client.get("/api/v1/tasks", params={"cursor": "???"})
        pending = (await client.get("/api/v1/tasks", params={"status": "pending"})).json()
    assert [t["id"] for t in first["data"] + second["data"]] == list(reversed(ids))[:4]
    assert bad_status.status_code == 422 and "pending" in bad_status.json()["error"]["details"]["choices"]
    assert bad_cursor.status_code == 422 and bad_cursor.json()["error"]["details"]["field"] == "cursor"
    assert len(pending["data"]) == 5


async def test_sse_resumes_from_last_event_id_without_gap_or_duplicate(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        created = (await client.post("/api/v1/tasks", json=task_body())).json()
        await wait_status(client, created["id"])
        all_events = (await client.get(f"/api/v1/tasks/{created['id']}/events")).json()["data"]
        seqs = []
        async with client.stream(
            "GET",
            f"/api/v1/tasks/{created['id']}/events",
            headers={"Accept": "text/event-stream", "Last-Event-ID": "3"},
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("id: "):
                    seqs.append(int(line[4:]))
    assert seqs == [e["seq"] for e in all_events][3:]


async def test_sse_follows_a_live_task_to_its_end(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        created = (await client.post("/api/v1/tasks", json=task_body())).json()
        types = []
        async with client.stream(
            "GET", f"/api/v1/tasks/{created['id']}/events", headers={"Accept": "text/event-stream"}
        ) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    types.append(json.loads(line[6:])["type"])
        stored = (await client.get(f"/api/v1/tasks/{created['id']}/events")).json()["data"]
    assert types == [e["type"] for e in stored]
    assert types[-1] == "task.completed"


async def test_catalog_lists_agents_and_task_types(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        agents = (await client.get("/api/v1/agents")).json()
        types = (await client.get("/api/v1/task-types")).json()
        one = await client.get("/api/v1/agents/code_analyzer")
        missing = await client.get("/api/v1/agents/nobody")
    assert {a["id"] for a in agents} >= {"code_analyzer", "data_analyst", "reporter"}
    assert {t["id"] for t in types} >= {"code_analysis", "data_analysis"}
    assert one.json()["tools"] == ["python_metrics", "bandit_scan", "secret_scan"]
    assert missing.status_code == 404


async def test_metrics_need_credentials_and_openapi_is_served(live_server: LiveServer) -> None:
    async with live_server.client(key="") as anonymous:
        refused = await anonymous.get("/metrics")
        docs = await anonymous.get("/docs")
        spec = await anonymous.get("/openapi.json")
    async with live_server.client() as client:
        metrics = await client.get("/metrics")
    assert refused.status_code == 401
    assert metrics.status_code == 200 and "orchestrion_tasks_submitted_total" in metrics.text
    assert docs.status_code == 200 and spec.json()["info"]["title"] == "Orchestrion"


async def test_workspace_paths_are_read_under_configured_roots(server_factory: Any, tmp_path: Any) -> None:
    root = tmp_path / "workspace"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "db.py").write_text("import pickle\n\ndef load(b):\n    return pickle.loads(b)\n")
    (root / "data.csv").write_text("a,b\n1,2\n2,4\n3,\n")
    server = server_factory(workspace_roots=[root])
    async with server.client() as client:
        code = await client.post(
            "/api/v1/tasks",
            json={"title": "pkg", "task_type": "code_analysis", "inputs": {"paths": [str(root / "pkg")]}},
        )
        escape = await client.post(
            "/api/v1/tasks",
            json={"title": "x", "task_type": "code_analysis", "inputs": {"paths": [str(root / ".." / "..")]}},
        )
        assert code.status_code == 201, code.text
        assert escape.status_code == 422
        assert (await wait_status(client, code.json()["id"]))["status"] == "succeeded"
        result = (await client.get(f"/api/v1/tasks/{code.json()['id']}/result")).json()
    assert any("pickle" in f["title"].lower() for f in result["findings"])
    assert any((e["location"] or "").startswith("pkg/db.py") for e in result["evidence"])


async def test_active_scanning_flag_and_binary_uploads_are_kept(live_server: LiveServer) -> None:
    import base64

    blob = b"\x7fELF\x02\x01\x01" + bytes(range(200))
    body = task_body(allow_active_scanning=True, auto_execute=False)
    body["inputs"]["files"].append(
        {"name": "sample.bin", "content": base64.b64encode(blob).decode(), "encoding": "base64"}
    )
    async with live_server.client() as client:
        created = await client.post("/api/v1/tasks", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["allow_active_scanning"] is True
        listed = (await client.get("/api/v1/tasks")).json()["data"]
        assert [t["allow_active_scanning"] for t in listed if t["id"] == created.json()["id"]] == [True]
        default = (await client.post("/api/v1/tasks", json=task_body(auto_execute=False))).json()
        assert default["allow_active_scanning"] is False
        bad = await client.post(
            "/api/v1/tasks",
            json=task_body(inputs={"files": [{"name": "x", "content": "A", "encoding": "rot13"}]}),
        )
    assert bad.status_code == 422 and "encoding" in json.dumps(bad.json())
    task_id = created.json()["id"]
    stored = await live_server.runtime.db.read(lambda conn: get_task(conn, task_id, with_inputs=True))
    assert stored is not None
    files = await live_server.runtime.coordinator._load_files(stored)
    assert [f.data for f in files if f.name == "sample.bin"] == [blob]
