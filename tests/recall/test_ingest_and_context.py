"""Finished tasks become memory (once, however often ingested); agents cite memories about their task."""

from __future__ import annotations

from typing import Any

from orchestrion.agents.runner import AgentRequest, AgentRunner
from orchestrion.agents.spec import AgentSpec
from orchestrion.domain.tasks import TaskStatus
from orchestrion.engines.coordinator import Caller, TaskRequest
from orchestrion.engines.recall import MemoryService
from orchestrion.providers.router import ProviderRouter
from orchestrion.testing import ScriptedProvider
from orchestrion.testing.responders import grounded_analyst
from tests.engines.conftest import harness_factory
from tests.recall.conftest import Users, add_corpus

__all__ = ["harness_factory"]

SHELL_CODE = "import subprocess\n\n\ndef run(command):\n    return subprocess.call(command, shell=True)\n"


async def test_ingest_task_remembers_the_report_and_findings_once(
    harness_factory: Any, database_url: str
) -> None:
    harness = await harness_factory(database_url=database_url)
    runtime = harness.runtime
    memory = runtime.memory
    assert isinstance(memory, MemoryService)
    user, _ = await runtime.create_user(name="carol", role="operator")
    task = await runtime.coordinator.submit(
        Caller(user_id=user.id, role="operator"),
        TaskRequest(
            title="Audit the runner module",
            task_type="code_analysis",
            files=[{"name": "runner.py", "content": SHELL_CODE}],
        ),
    )
    assert (await harness.wait(task.id)).status is TaskStatus.SUCCEEDED

    first = await memory.ingest_task(task.id)
    before, _ = await memory.list_items(owner_id=user.id)
    second = await memory.ingest_task(task.id)
    after, _ = await memory.list_items(owner_id=user.id)

    assert first == second == len(after) == len(before) >= 2  # the report and at least one finding
    assert {i.id for i in before}.isdisjoint({i.id for i in after})  # replaced, not duplicated
    report = next(i for i in after if i.source == "task")
    assert report.title == "Report: Audit the runner module" and report.task_id == task.id
    assert {"code_analysis", "report", "succeeded"} <= set(report.tags)
    findings = [i for i in after if i.source == "finding"]
    assert findings and all(i.task_id == task.id and "code_analysis" in i.tags for i in findings)
    assert all({"critical", "high", "medium", "low", "info"} & set(i.tags) for i in findings)

    hits = await memory.search(owner_id=user.id, query="subprocess shell", k=5)
    assert hits and hits[0].task_id == task.id
    assert await memory.search(owner_id=harness.admin.user_id, query="subprocess shell", k=5) == []
    memory_query = await runtime.coordinator.submit(
        Caller(user_id=user.id, role="operator"),
        TaskRequest(title="What do we know about shell injection?", task_type="memory_query"),
    )
    await harness.wait(memory_query.id)
    assert await memory.ingest_task(memory_query.id) == 0  # memory answers are not remembered again


async def test_a_specialist_cites_the_owners_memories_about_its_task(
    memory: MemoryService, users: Users
) -> None:
    ids = await add_corpus(memory, users.alice)
    bobs = await memory.add(
        owner_id=users.bob, title="Bob's TLS notes", text="mail.example.org TLS certificate pinning notes"
    )
    model = ScriptedProvider(default=grounded_analyst)
    runner = AgentRunner(tools={}, router=ProviderRouter({"default": [model]}), memory=memory, memory_k=2)
    spec = AgentSpec(id="tls_reviewer", name="TLS reviewer", description="test", task_types=("review",))
    request = AgentRequest(
        task_id="t-1",
        step_id="review",
        title="Review the TLS certificate",
        task_type="review",
        target="mail.example.org",
        owner_id=users.alice,
    )

    run = await runner.run(spec, request)

    remembered = [e for e in run.evidence if e.tool == "memory"]
    assert [e.id for e in remembered][:1] == ["review:memory:1"]
    assert remembered[0].data["item_id"] == ids["tls"] and remembered[0].location == f"memory:{ids['tls']}"
    assert bobs.id not in {e.data["item_id"] for e in remembered}
    assert run.findings[0].evidence_ids == ("review:memory:1",) and run.findings[0].grounded
    prompt = model.requests[0].messages[-1].content
    assert "[E1] Memory 'TLS certificate of mail.example.org' (document" in prompt

    anonymous = await runner.run(spec, AgentRequest(**{**request.__dict__, "owner_id": ""}))
    assert not [e for e in anonymous.evidence if e.tool == "memory"]
    nothing = AgentRunner(tools={}, router=ProviderRouter({"default": [model]}), memory=memory, memory_k=0)
    assert not (await nothing.run(spec, request)).evidence
