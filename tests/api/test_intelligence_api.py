"""/api/v1/intelligence and the intelligence fields of tasks, on a real uvicorn server (127.0.0.1)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx

from orchestrion.intelligence.service import Intelligence
from orchestrion.monitoring.metrics import Metrics
from orchestrion.store import users as user_store
from orchestrion.store.database import Database
from orchestrion.store.migrate import aupgrade_database
from tests.api.test_tasks_api import new_user, task_body, wait_status
from tests.conftest import LiveServer, make_settings, serve
from tests.intelligence.conftest import Lab, builtin_registry

BIG_FILE = {"name": "big.py", "content": "x = 1\n" * 33_334}  # 200 kB


async def read_models(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/v1/intelligence/models")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def seed_history(home: Path, count: int) -> None:
    """Finished code analyses whose outcome hinges on input size, written before the server starts."""
    url = make_settings(home).resolved_database_url
    await aupgrade_database(url)
    db = Database(url)
    try:
        registry = builtin_registry()
        user = await db.write(lambda tx: user_store.create_user(tx, name="historian", role="operator"))

        def build(**_: Any) -> Intelligence:
            return Intelligence(
                db=db, registry=registry, metrics=Metrics(), rng=random.Random(1), retrain_every=0
            )

        lab = Lab(
            db=db, registry=registry, metrics=Metrics(), intelligence=build(), owner_id=user.id, build=build
        )
        await lab.size_history(count)
        await lab.intelligence.stop()
    finally:
        await db.dispose()


async def test_models_shows_the_prior_serving_and_counts_outcomes(live_server: LiveServer) -> None:
    viewer = await new_user(live_server, "vera", role="viewer")
    async with live_server.client(viewer) as client:
        models = await read_models(client)
    assert models == {
        "serving": "prior",
        "serving_version": None,
        "training": False,
        "outcomes_since_training": 0,
        "retrain_every": 20,
        "training_rows": 0,
        "min_train_samples": 50,
        "models": [],
    }
    async with live_server.client() as admin:
        created = (await admin.post("/api/v1/tasks", json=task_body())).json()
        assert (await wait_status(admin, created["id"]))["status"] == "succeeded"
        # The outcome is learned from just after the final status is written.
        async with asyncio.timeout(20):
            while True:
                models = await read_models(admin)
                if models["training_rows"] >= 1 and models["outcomes_since_training"] >= 1:
                    break
                await asyncio.sleep(0.05)
    assert models["training_rows"] == 1 and models["outcomes_since_training"] == 1
    assert models["serving"] == "prior"


async def test_retrain_is_for_admins_and_needs_enough_history(live_server: LiveServer) -> None:
    operator = await new_user(live_server, "olga")
    async with live_server.client(operator) as client:
        forbidden = await client.post("/api/v1/intelligence/retrain")
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
    async with live_server.client() as admin:
        response = await admin.post("/api/v1/intelligence/retrain")
        models = await read_models(admin)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "insufficient_data"
    assert error["details"]["needed"] == 50 and error["details"]["have"] == 0
    assert "50" in error["message"]
    assert models["models"] == []
    async with live_server.client(key="") as anonymous:
        assert (await anonymous.post("/api/v1/intelligence/retrain")).status_code == 401
        assert (await anonymous.get("/api/v1/intelligence/models")).status_code == 401


async def test_a_new_task_carries_its_prediction_explanation_and_selection(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        response = await client.post(
            "/api/v1/tasks", json=task_body(auto_execute=False, required_capabilities=["secret_detection"])
        )
        assert response.status_code == 201, response.text
        created = response.json()
        fetched = (await client.get(f"/api/v1/tasks/{created['id']}")).json()
    prediction = created["prediction"]
    assert prediction["model"] == "prior" and prediction["model_version"] is None
    assert prediction["success_probability"] == 0.8 and prediction["duration_p50_seconds"] == 30.0
    assert prediction["risk_factors"] == [] and prediction["suggestions"] == []
    selection = created["plan"]["selection"]
    assert selection["strategy"] == "only_candidates"
    assert selection["team"] == ["code_analyzer"]
    assert selection["required_capabilities"] == ["secret_detection"]
    assert selection["reasons"] == ["every agent able to work on code_analysis is on the team"]
    [candidate] = selection["candidates"]
    assert candidate["agent_id"] == "code_analyzer" and candidate["chosen"] is True
    assert candidate["runs"] == 0 and candidate["load"] == 0
    engine_reason = "engine team: primary engine for code_analysis"
    assert created["plan"]["reasons"] == [*selection["reasons"], engine_reason]
    assert created["engine"] == "team"
    assert fetched["plan"]["selection"] == selection
    assert fetched["prediction"] == prediction


async def test_an_unknown_required_capability_is_422_with_the_choices(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        response = await client.post("/api/v1/tasks", json=task_body(required_capabilities=["telepathy"]))
        listed = (await client.get("/api/v1/tasks")).json()
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["details"]["field"] == "required_capabilities"
    assert error["details"]["choices"] == [
        "code_quality",
        "secret_detection",
        "security_lint",
        "static_analysis",
    ]
    assert "telepathy" in error["message"]
    assert listed["data"] == []


async def test_retrain_promotes_a_model_that_serves_and_survives_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    await seed_history(home, 160)
    with serve(home, min_train_samples=40) as server:
        async with server.client() as admin:
            before = await read_models(admin)
            assert before["training_rows"] == 160 and before["serving"] == "prior"
            response = await admin.post("/api/v1/intelligence/retrain")
            assert response.status_code == 200, response.text
            record = response.json()
            assert record["promoted"] is True and record["decision"].startswith("promoted")
            assert record["sample_count"] == 120 and record["holdout_count"] == 40
            assert record["metrics"]["candidate"]["brier"] < record["metrics"]["prior"]["brier"]
            models = await read_models(admin)
            assert models["serving"] == "learned" and models["serving_version"] == record["version"]
            assert [(m["version"], m["promoted"]) for m in models["models"]] == [(record["version"], True)]
            assert "artefact" not in models["models"][0]

            big = await admin.post(
                "/api/v1/tasks", json=task_body(auto_execute=False, inputs={"files": [BIG_FILE]})
            )
            assert big.status_code == 201, big.text
            prediction = big.json()["prediction"]
        admin_key = server.admin_key
    assert prediction["model"] == "learned" and prediction["model_version"] == record["version"]
    assert prediction["success_probability"] < 0.5
    features = [f["feature"] for f in prediction["risk_factors"]]
    assert "input_bytes_log" in features
    assert all(f["impact"] < 0 and f["message"] for f in prediction["risk_factors"])
    assert any("larger than usual" in s for s in prediction["suggestions"])

    with serve(home, min_train_samples=40, admin_api_key=admin_key) as restarted:
        async with restarted.client() as admin:
            models = await read_models(admin)
            again = (
                await admin.post(
                    "/api/v1/tasks", json=task_body(auto_execute=False, inputs={"files": [BIG_FILE]})
                )
            ).json()
    assert models["serving"] == "learned" and models["serving_version"] == record["version"]
    assert again["prediction"]["model"] == "learned"
    assert again["prediction"]["model_version"] == record["version"]
