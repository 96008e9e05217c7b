"""Batch tasks through the real HTTP API: limits, partial failure and retry, and a crash mid-batch."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrion.testing import OpenAITestServer, ScriptedProvider
from tests.api.test_tasks_api import wait_status
from tests.conftest import LiveServer
from tests.engines.test_parallel import Sentiment
from tests.test_crash import start_server

TERMINAL = ("succeeded", "failed", "partial", "cancelled")


def classify(items: list[str], **options: Any) -> dict[str, Any]:
    return {
        "title": "tickets",
        "task_type": "parallel_processing",
        "inputs": {"items": items},
        "options": {"operation": "classify", "instruction": "Sentiment?"} | options,
    }


async def test_a_batch_over_the_limit_is_refused_naming_the_limit(
    server_factory: Callable[..., LiveServer],
) -> None:
    server = server_factory(parallel_max_items=3)
    async with server.client() as client:
        response = await client.post("/api/v1/tasks", json=classify(["a", "b", "c", "d"]))
        accepted = await client.post("/api/v1/tasks", json=classify(["a", "b", "c"], concurrency=2))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == "inputs.items" and error["details"]["limit"] == 3
    assert "limit of 3 items" in error["message"]
    assert accepted.status_code == 201, accepted.text
    assert [s["id"] for s in accepted.json()["plan"]["steps"]] == [
        "item-00000",
        "item-00001",
        "item-00002",
        "reduce",
    ]


@pytest.mark.parametrize(
    ("body", "field", "choices"),
    [
        (
            {
                "task_type": "concurrent_analysis",
                "inputs": {"items": ["example.com"]},
                "options": {"operation": "x"},
            },
            "options.operation",
            [
                "domain_analysis",
                "intelligence_gathering",
                "network_analysis",
                "performance_analysis",
                "security_scan",
                "vulnerability_assessment",
            ],
        ),
        ({"task_type": "parallel_processing", "inputs": {"items": ["a"]}}, "options.instruction", None),
        (
            {
                "task_type": "concurrent_analysis",
                "inputs": {"items": ["ok.example", "gopher://x"]},
                "options": {"operation": "security_scan"},
            },
            "inputs.items[1]",
            None,
        ),
    ],
)
async def test_bad_batches_are_422_naming_the_field(
    live_server: LiveServer, body: dict[str, Any], field: str, choices: list[str] | None
) -> None:
    async with live_server.client() as client:
        response = await client.post("/api/v1/tasks", json={"title": "bad"} | body)
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert details["field"] == field
    if choices is not None:
        assert details["choices"] == choices


async def test_partial_batch_lists_failed_items_and_retry_reruns_only_them(
    server_factory: Callable[..., LiveServer],
) -> None:
    items = [f"{'good' if i % 3 else 'bad'} ticket {i}" for i in range(9)]
    sentiment = Sentiment(failing=[items[4]])
    server = server_factory(routes={"default": [ScriptedProvider(default=sentiment)]}, step_max_retries=0)
    async with server.client() as client:
        created = await client.post("/api/v1/tasks", json=classify(items, concurrency=4))
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        task = await wait_status(client, task_id)
        assert task["status"] == "partial" and "item-00004" in task["error"]
        result = (await client.get(f"/api/v1/tasks/{task_id}/result")).json()
        assert result["stats"]["failed_items"] == [
            {"index": 4, "item": items[4], "error": result["stats"]["failed_items"][0]["error"]}
        ]
        assert "scripted outage" in result["stats"]["failed_items"][0]["error"]
        assert result["summary"].startswith("8 of 9 items succeeded; 1 failed")

        sentiment.failing.clear()
        retried = await client.post(f"/api/v1/tasks/{task_id}/retry")
        assert retried.status_code == 200, retried.text
        task = await wait_status(client, task_id)
        assert task["status"] == "succeeded", task["error"]
        result = (await client.get(f"/api/v1/tasks/{task_id}/result")).json()
        events = (await client.get(f"/api/v1/tasks/{task_id}/events")).json()["data"]
    assert sentiment.calls == {item: 2 if item == items[4] else 1 for item in items}
    assert result["stats"]["items_succeeded"] == 9 and result["stats"]["failed_items"] == []
    assert sum(result["stats"]["label_counts"].values()) == 9
    starts = Counter(e["data"]["step_id"] for e in events if e["type"] == "step.started")
    assert starts["item-00004"] == 2 and starts["reduce"] == 2
    assert all(n == 1 for step, n in starts.items() if step not in ("item-00004", "reduce"))


async def test_each_file_and_path_is_its_own_item(
    server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"
    (workspace / "pkg").mkdir(parents=True)
    (workspace / "pkg" / "one.py").write_text("def one() -> int:\n    return 1\n")
    (workspace / "pkg" / "two.py").write_text("def two() -> int:\n    return 2\n")
    server = server_factory(workspace_roots=[str(workspace)])
    risky = "import subprocess\nsubprocess.call(input(), shell=True)\n"
    body = {
        "title": "modules",
        "task_type": "batch_operation",
        "inputs": {
            "files": [{"name": "risky.py", "content": risky}, {"name": "clean.py", "content": "X = 1\n"}],
            "paths": ["pkg"],
        },
        # Items scanned at once: bandit scans in several threads must not disturb each other.
        "options": {"operation": "code_analysis"},
    }
    async with server.client() as client:
        created = await client.post("/api/v1/tasks", json=body)
        assert created.status_code == 201, created.text
        task = await wait_status(client, created.json()["id"])
        result = (await client.get(f"/api/v1/tasks/{task['id']}/result")).json()
        events = (await client.get(f"/api/v1/tasks/{task['id']}/events")).json()["data"]
    assert task["status"] == "succeeded", task["error"]
    assert [s["id"] for s in task["plan"]["steps"]] == ["item-00000", "item-00001", "item-00002", "reduce"]
    assert result["stats"]["items_total"] == 3 and result["stats"]["items_succeeded"] == 3
    shell = [f for f in result["findings"] if "shell" in f["title"].lower()]
    assert shell and all("Seen in 1 of 3 item(s): risky.py." in f["description"] for f in shell)
    tools = Counter(e["data"]["step_id"] for e in events if e["type"] == "tool.called")
    assert tools == {"item-00000": 3, "item-00001": 3, "item-00002": 3}


# -- a crash mid-batch ---------------------------------------------------------------------------


@pytest.fixture
def slow_llm() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency_seconds=0.6) as server:
        yield server


def _item(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"]).split("Item:\n", 1)[1].split("\n\nReply with JSON", 1)[0]


@pytest.mark.slow
def test_a_batch_resumes_after_sigkill_keeping_checkpointed_items(
    tmp_path: Path, slow_llm: OpenAITestServer
) -> None:
    server, client = start_server(tmp_path, slow_llm.base_url)
    items = [f"row {i}" for i in range(6)]
    try:
        body = classify(items, operation="transform", concurrency=1)
        created = client.post("/api/v1/tasks", json=body)
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        deadline = time.monotonic() + 30
        before: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            before = client.get(f"/api/v1/tasks/{task_id}/events").json()["data"]
            if sum(e["type"] == "step.completed" for e in before) >= 2:
                break
            time.sleep(0.02)
        server.kill()
        done_before = {e["data"]["step_id"] for e in before if e["type"] == "step.completed"}
        assert len(done_before) >= 2 and "reduce" not in done_before

        server.start()
        deadline = time.monotonic() + 60
        status = ""
        while time.monotonic() < deadline:
            status = client.get(f"/api/v1/tasks/{task_id}").json()["status"]
            if status in TERMINAL:
                break
            time.sleep(0.1)
        assert status == "succeeded", (tmp_path / "server.log").read_text()[-3000:]
        events = client.get(f"/api/v1/tasks/{task_id}/events").json()["data"]
        result = client.get(f"/api/v1/tasks/{task_id}/result").json()
    finally:
        client.close()
        server.stop()
    assert events[: len(before)] == before
    completed = Counter(e["data"]["step_id"] for e in events if e["type"] == "step.completed")
    assert completed == {**{f"item-{i:05d}": 1 for i in range(6)}, "reduce": 1}
    calls = Counter(_item(r) for r in slow_llm.requests)
    for step_id in done_before:
        assert calls[items[int(step_id.removeprefix("item-"))]] == 1  # checkpointed: not called again
    assert set(calls) == set(items)
    assert [o["index"] for o in result["stats"]["outputs"]] == list(range(6))
