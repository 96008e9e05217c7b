"""GET /api/v1/tasks/{id}/prediction: what was predicted, what the prior said, and the errors."""

from __future__ import annotations

from tests.api.test_tasks_api import new_user, task_body, wait_status
from tests.conftest import LiveServer


async def test_a_finished_task_shows_its_prediction_against_the_outcome(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        created = (await client.post("/api/v1/tasks", json=task_body())).json()
        pending = (await client.get(f"/api/v1/tasks/{created['id']}/prediction")).json()
        done = await wait_status(client, created["id"])
        record = (await client.get(f"/api/v1/tasks/{created['id']}/prediction")).json()
        metrics = (await client.get("/metrics")).text
    assert pending["served"]["success_probability"] == created["prediction"]["success_probability"]
    assert (
        pending["features"]["type=code_analysis"] == 1.0 and pending["features"]["agent=code_analyzer"] == 1.0
    )
    assert record["model"] == "prior" and record["actual_status"] == done["status"]
    actual = 1.0 if done["status"] == "succeeded" else 0.0
    expected = round((record["served"]["success_probability"] - actual) ** 2, 6)
    assert record["error"]["success_squared_error"] == expected
    assert record["error"]["duration_error_seconds"] == round(
        abs(record["served"]["duration_p50_seconds"] - record["actual_duration_seconds"]), 3
    )
    assert record["prior_error"] == record["error"]  # the prior served it
    assert 'orchestrion_prediction_squared_error_count{model="prior"} 1.0' in metrics


async def test_another_users_task_prediction_is_not_found(live_server: LiveServer) -> None:
    key = await new_user(live_server, "mallory")
    async with live_server.client() as admin, live_server.client(key=key) as other:
        created = (await admin.post("/api/v1/tasks", json=task_body(auto_execute=False))).json()
        response = await other.get(f"/api/v1/tasks/{created['id']}/prediction")
        unresolved = (await admin.get(f"/api/v1/tasks/{created['id']}/prediction")).json()
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert unresolved["error"] is None and unresolved["actual_status"] is None
