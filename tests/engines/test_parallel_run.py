"""The Parallel engine end to end in a real runtime: partial failure, retry of only the failed items,
bounded concurrency, and checkpointed items kept on resume."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from orchestrion.domain.findings import Evidence
from orchestrion.domain.tasks import AgentRun, StepStatus, TaskStatus
from orchestrion.engines.coordinator import TaskRequest
from orchestrion.engines.steps import item_step_id
from orchestrion.providers.base import ChatRequest, ChatResponse
from orchestrion.store import runs as run_store
from orchestrion.store import tasks as task_store
from orchestrion.store.database import WriteTx
from orchestrion.testing import ScriptedProvider
from tests.engines.conftest import Harness
from tests.engines.test_parallel import Sentiment
from tests.fixtures.net import LocalHTTPServer, http_server

__all__ = ["http_server"]


class InflightProvider(ScriptedProvider):
    """A ScriptedProvider that counts the calls in flight at once (a count, not a timing)."""

    def __init__(self, script: Callable[[ChatRequest], dict[str, Any]], *, delay: float) -> None:
        super().__init__(default=script, delay=delay)
        self.in_flight = 0
        self.max_in_flight = 0

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await super().complete(request)
        finally:
            self.in_flight -= 1


def batch(items: Sequence[str], **options: Any) -> TaskRequest:
    options = {"instruction": "Sentiment?", "operation": "classify"} | options
    return TaskRequest(title="batch", task_type="parallel_processing", items=list(items), options=options)


async def step_events(h: Harness, task_id: str, kind: str) -> Counter[str]:
    return Counter(e.data["step_id"] for e in await h.events(task_id) if e.type == kind)


async def test_failed_items_make_the_task_partial_and_a_retry_reruns_only_them(
    harness_factory: Callable[..., Any],
) -> None:
    items = [f"{'good' if i % 2 else 'bad'} row {i}" for i in range(10)]
    sentiment = Sentiment(failing=[items[3], items[7]])
    h = await harness_factory(routes={"default": [ScriptedProvider(default=sentiment)]}, step_max_retries=1)
    task = await h.runtime.coordinator.submit(h.admin, batch(items, concurrency=3))
    done = await h.wait(task.id)

    assert done.status is TaskStatus.PARTIAL
    assert "item-00003" in (done.error or "") and "item-00007" in (done.error or "")
    result = await h.runtime.db.read(lambda conn: run_store.read_result(conn, task.id))
    assert result is not None
    failed = result.stats["failed_items"]
    assert [(f["index"], f["item"]) for f in failed] == [(3, items[3]), (7, items[7])]
    assert all("scripted outage" in f["error"] for f in failed)
    assert result.stats["items_succeeded"] == 8 and len(result.stats["outputs"]) == 8
    # One call per item, and one retry of each failing item.
    assert sentiment.calls == {item: 2 if item in sentiment.failing else 1 for item in items}

    sentiment.failing.clear()
    await h.runtime.coordinator.retry(h.admin, task.id)
    retried = await h.wait(task.id)
    assert retried.status is TaskStatus.SUCCEEDED, retried.error
    assert sentiment.calls == {item: 3 if item in (items[3], items[7]) else 1 for item in items}
    completed = await step_events(h, task.id, "step.completed")
    assert completed["reduce"] == 2
    assert all(completed[item_step_id(i)] == 1 for i in range(10))
    result = await h.runtime.db.read(lambda conn: run_store.read_result(conn, task.id))
    assert result is not None
    assert result.stats["items_failed"] == 0 and result.stats["failed_items"] == []
    assert [o["index"] for o in result.stats["outputs"]] == list(range(10))
    assert result.stats["label_counts"] == {"positive": 5, "negative": 5}


async def test_map_concurrency_is_bounded_by_the_task_and_the_engine(
    harness_factory: Callable[..., Any],
) -> None:
    provider = InflightProvider(Sentiment(), delay=0.02)
    h = await harness_factory(routes={"default": [provider]}, parallel_concurrency=4)
    asked = await h.runtime.coordinator.submit(h.admin, batch([f"row {i}" for i in range(12)], concurrency=3))
    assert (await h.wait(asked.id)).status is TaskStatus.SUCCEEDED
    assert provider.max_in_flight == 3

    provider.max_in_flight = 0
    default = await h.runtime.coordinator.submit(h.admin, batch([f"line {i}" for i in range(12)]))
    assert (await h.wait(default.id)).status is TaskStatus.SUCCEEDED
    assert provider.max_in_flight == 4


async def test_an_unreachable_target_fails_its_item_only(
    harness_factory: Callable[..., Any], http_server: LocalHTTPServer
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = int(sock.getsockname()[1])
    live, dead = http_server.url("/"), f"http://127.0.0.1:{closed}/"
    h = await harness_factory(tool_allow_targets=["127.0.0.1/32"], step_max_retries=0)
    request = TaskRequest(
        title="hosts",
        task_type="concurrent_analysis",
        items=[live, dead],
        options={"operation": "security_scan"},
    )
    task = await h.runtime.coordinator.submit(h.admin, request)
    done = await h.wait(task.id)
    assert done.status is TaskStatus.PARTIAL
    result = await h.runtime.db.read(lambda conn: run_store.read_result(conn, task.id))
    assert result is not None
    assert [f["index"] for f in result.stats["failed_items"]] == [1]
    assert "cannot connect" in result.stats["failed_items"][0]["error"]
    assert result.findings and all(
        e.startswith("item-00000:") for f in result.findings for e in f.evidence_ids
    )

    await h.runtime.coordinator.retry(h.admin, task.id)
    again = await h.wait(task.id)
    assert again.status is TaskStatus.PARTIAL  # the port is still closed
    tools = Counter(e.data["step_id"] for e in await h.events(task.id) if e.type == "tool.called")
    assert tools == {"item-00000": 4, "item-00001": 8}  # the live target was not scanned again


async def test_resume_keeps_checkpointed_items(harness_factory: Callable[..., Any]) -> None:
    sentiment = Sentiment()
    h = await harness_factory(routes={"default": [ScriptedProvider(default=sentiment)]})
    items = ["good a", "bad b", "good c"]
    task = await h.runtime.coordinator.submit(h.admin, replace(batch(items), auto_execute=False))
    earlier = AgentRun(
        task_id=task.id,
        step_id=item_step_id(1),
        agent_id="batch_mapper",
        status=StepStatus.SUCCEEDED,
        summary="checkpointed earlier",
        evidence=(
            Evidence(
                id=f"{item_step_id(1)}:llm:1",
                tool="llm",
                summary="[mixed] checkpointed earlier",
                data={"output": "checkpointed earlier", "label": "mixed"},
            ),
        ),
    )

    def checkpoint(tx: WriteTx) -> None:
        run_store.save_run(tx, earlier)
        task_store.set_step_fields(tx, task.id, item_step_id(1), status=StepStatus.SUCCEEDED, attempts=1)

    await h.runtime.db.write(checkpoint)
    await h.runtime.coordinator.execute(h.admin, task.id)
    done = await h.wait(task.id)
    assert done.status is TaskStatus.SUCCEEDED, done.error
    assert sentiment.calls == {"good a": 1, "good c": 1}
    started = await step_events(h, task.id, "step.started")
    assert item_step_id(1) not in started
    result = await h.runtime.db.read(lambda conn: run_store.read_result(conn, task.id))
    assert result is not None
    assert [(o["index"], o["label"]) for o in result.stats["outputs"]] == [
        (0, "positive"),
        (1, "mixed"),
        (2, "positive"),
    ]
