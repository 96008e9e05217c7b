"""Repository behaviour on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from orchestrion.domain.findings import Evidence, Finding, Severity
from orchestrion.domain.tasks import (
    AgentRun,
    Plan,
    Prediction,
    QualityScore,
    Result,
    Step,
    StepStatus,
    Task,
    TaskStatus,
    ToolCall,
    utcnow,
)
from orchestrion.exceptions import ValidationError
from orchestrion.security import digest_api_key, new_api_key
from orchestrion.store import runs as run_store
from orchestrion.store import tasks as task_store
from orchestrion.store import users as user_store
from orchestrion.store.database import Database, WriteTx
from orchestrion.store.events import append_event, append_events, read_events


async def _user(db: Database, name: str = "alice", role: str = "operator") -> user_store.User:
    return await db.write(lambda tx: user_store.create_user(tx, name=name, role=role))


def _task(owner: str, *, status: TaskStatus = TaskStatus.QUEUED, task_type: str = "code_analysis") -> Task:
    plan = Plan(
        steps=(Step(id="a", agent_id="code_analyzer"), Step(id="r", agent_id="reporter", depends_on=("a",))),
        reasons=("test",),
    )
    return Task(
        id=str(uuid.uuid4()),
        owner_id=owner,
        title="t",
        task_type=task_type,
        target=None,
        inputs={"files": [{"name": "x.py", "content": "x = 1\n"}], "paths": []},
        priority=5,
        agents=("code_analyzer",),
        status=status,
        plan=plan,
        prediction=Prediction(
            success_probability=0.8,
            duration_p50_seconds=1,
            duration_p90_seconds=2,
            cost_usd=0,
            confidence=0,
            sample_size=0,
        ),
        created_at=utcnow(),
    )


async def test_api_key_lookup_finds_owner_by_prefix_and_digest(database: Database) -> None:
    user = await _user(database)
    key = new_api_key()
    await database.write(
        lambda tx: user_store.add_api_key(tx, user_id=user.id, prefix=key.prefix, key_hash=key.digest)
    )
    candidates = await database.read(lambda conn: user_store.find_key_candidates(conn, key.prefix))
    assert [(d, u.name) for d, u in candidates] == [(digest_api_key(key.key), "alice")]
    assert await database.read(lambda conn: user_store.find_key_candidates(conn, "orc_nothing")) == []
    assert not await database.read(user_store.admin_exists)


async def test_task_round_trips_with_plan_prediction_and_inputs(database: Database) -> None:
    user = await _user(database)
    task = _task(user.id)
    await database.write(lambda tx: task_store.insert_task(tx, task))
    loaded = await database.read(lambda conn: task_store.get_task(conn, task.id, with_inputs=True))
    other = await database.read(lambda conn: task_store.get_task(conn, task.id, owner_id=str(uuid.uuid4())))
    assert other is None
    assert loaded is not None
    assert loaded.plan is not None and [s.id for s in loaded.plan.steps] == ["a", "r"]
    assert loaded.plan.steps[1].depends_on == ("a",)
    assert loaded.prediction == task.prediction
    assert loaded.inputs["files"][0]["name"] == "x.py"
    assert loaded.created_at.tzinfo is not None
    assert abs((loaded.created_at - task.created_at).total_seconds()) < 0.001


async def test_event_sequence_is_gapless_under_concurrent_writers(database: Database) -> None:
    user = await _user(database)
    task = _task(user.id)
    await database.write(lambda tx: task_store.insert_task(tx, task))

    async def emit(n: int) -> None:
        await database.write(lambda tx: append_event(tx, task.id, "task.progress", {"n": n}))

    await asyncio.gather(*(emit(i) for i in range(40)))
    await database.write(lambda tx: append_events(tx, task.id, [("a", {"n": 40}), ("b", {"n": 41})]))
    events = await database.read(lambda conn: read_events(conn, task.id))
    tail = await database.read(lambda conn: read_events(conn, task.id, after=35))
    assert [e.seq for e in events] == list(range(1, 43))
    assert sorted(e.data["n"] for e in events) == list(range(42))
    assert [e.seq for e in tail] == [36, 37, 38, 39, 40, 41, 42]


async def test_events_are_published_only_after_commit(database: Database) -> None:
    user = await _user(database)
    task = _task(user.id)
    published: list[int] = []

    async def sink(events: object) -> None:
        published.extend(e.seq for e in events)  # type: ignore[attr-defined]

    database.add_event_sink(sink)

    def create(tx: WriteTx) -> None:
        task_store.insert_task(tx, task)
        append_event(tx, task.id, "task.created")

    def fail(tx: WriteTx) -> None:
        append_event(tx, task.id, "task.queued")
        raise RuntimeError("abort")

    await database.write(create)
    with pytest.raises(RuntimeError):
        await database.write(fail)
    assert [e.seq for e in await database.read(lambda conn: read_events(conn, task.id))] == [1]
    assert published == [1]


async def test_list_tasks_paginates_newest_first_and_filters(database: Database) -> None:
    alice, bob = await _user(database, "alice"), await _user(database, "bob")
    ids = []
    for i in range(7):
        task = _task(alice.id, status=TaskStatus.SUCCEEDED if i % 2 else TaskStatus.QUEUED)
        ids.append(task.id)
        await database.write(lambda tx, t=task: task_store.insert_task(tx, t))  # type: ignore[misc]
    await database.write(lambda tx: task_store.insert_task(tx, _task(bob.id)))
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = await database.read(
            lambda conn, c=cursor: task_store.list_tasks(conn, owner_id=alice.id, limit=3, cursor=c)  # type: ignore[misc]
        )
        seen.extend(t.id for t in page)
        if cursor is None:
            break
    done, _ = await database.read(
        lambda conn: task_store.list_tasks(conn, owner_id=alice.id, status="succeeded")
    )
    everyone, _ = await database.read(lambda conn: task_store.list_tasks(conn, owner_id=None))
    assert seen == list(reversed(ids))
    assert len(done) == 3
    assert len(everyone) == 8
    with pytest.raises(ValidationError):
        task_store.decode_cursor("not-a-cursor!")


async def test_lease_is_claimed_once_and_reclaimed_after_expiry(database: Database) -> None:
    user = await _user(database)
    task = _task(user.id)
    await database.write(lambda tx: task_store.insert_task(tx, task))
    now = time.time()

    def claim(worker: str, at: float) -> Any:
        return lambda tx: task_store.claim_task(tx, task.id, worker_id=worker, lease_seconds=10, now=at)

    def renew(worker: str, at: float) -> Any:
        return lambda tx: task_store.renew_lease(tx, task.id, worker_id=worker, lease_seconds=10, now=at)

    assert await database.write(claim("w1", now))
    assert not await database.write(claim("w2", now + 1))
    assert await database.write(renew("w1", now + 2)) == (True, False)
    assert await database.write(renew("w2", now + 2)) == (False, False)
    assert await database.read(lambda conn: task_store.find_resumable(conn, now=now + 5)) == []
    resumable = await database.read(lambda conn: task_store.find_resumable(conn, now=now + 13))
    assert [(r.task_id, r.priority, r.engine) for r in resumable] == [(task.id, task.priority, "team")]
    assert await database.write(claim("w2", now + 13))
    loaded = await database.read(lambda conn: task_store.get_task(conn, task.id))
    assert loaded is not None and loaded.attempt == 2 and loaded.status is TaskStatus.RUNNING


async def test_checkpoint_round_trips_and_replaces_earlier_attempt(database: Database) -> None:
    user = await _user(database)
    task = _task(user.id)
    await database.write(lambda tx: task_store.insert_task(tx, task))
    failed = AgentRun(
        task_id=task.id, step_id="a", agent_id="code_analyzer", status=StepStatus.FAILED, error="boom"
    )
    evidence = Evidence(
        id="a:bandit_scan:1", tool="bandit_scan", summary="B602", data={"line": 3}, location="x.py:3"
    )
    run = AgentRun(
        task_id=task.id,
        step_id="a",
        agent_id="code_analyzer",
        status=StepStatus.SUCCEEDED,
        tool_calls=(
            ToolCall(
                tool="bandit_scan",
                arguments={},
                result_digest="d" * 64,
                duration_seconds=0.1,
                evidence_ids=(evidence.id,),
            ),
        ),
        evidence=(evidence,),
        findings=(
            Finding(
                title="shell",
                severity=Severity.HIGH,
                evidence_ids=(evidence.id,),
                agent_id="code_analyzer",
                grounded=True,
            ),
        ),
        tokens_in=10,
        tokens_out=5,
        attempts=2,
    )
    for checkpoint in (failed, run):
        await database.write(lambda tx, c=checkpoint: run_store.save_run(tx, c))  # type: ignore[misc]
    result = Result(
        task_id=task.id,
        summary="s",
        findings=run.findings,
        remediation=("fix",),
        quality=QualityScore(coverage=1, grounding=1, agreement=1, completion=1),
        stats={"n": 1},
        created_at=utcnow(),
    )
    await database.write(lambda tx: run_store.save_result(tx, result))
    runs = await database.read(lambda conn: run_store.read_runs(conn, task.id))
    loaded = await database.read(lambda conn: run_store.read_result(conn, task.id))
    assert runs == [run]
    assert loaded is not None and loaded.findings == run.findings and loaded.quality.overall == 1.0


async def test_unfinished_steps_reset_but_succeeded_kept(database: Database) -> None:
    user = await _user(database)
    task = _task(user.id)

    def setup(tx: WriteTx) -> None:
        task_store.insert_task(tx, task)
        task_store.set_step_fields(tx, task.id, "a", status=StepStatus.SUCCEEDED)
        task_store.set_step_fields(tx, task.id, "r", status=StepStatus.FAILED, error="x")

    await database.write(setup)
    await database.write(lambda tx: task_store.reset_unfinished_steps(tx, task.id))
    loaded = await database.read(lambda conn: task_store.get_task(conn, task.id))
    assert loaded is not None and loaded.plan is not None
    assert [s.status for s in loaded.plan.steps] == [StepStatus.SUCCEEDED, StepStatus.PENDING]


async def test_a_failing_unit_in_a_group_commit_does_not_lose_the_others(database: Database) -> None:
    user = await _user(database)
    task = _task(user.id)
    await database.write(lambda tx: task_store.insert_task(tx, task))

    def boom(tx: WriteTx) -> None:
        append_event(tx, task.id, "doomed")
        raise ValueError("boom")

    # Queued together, these are committed as one group on SQLite; the failure must stay its own.
    outcomes = await asyncio.gather(
        *(database.write(lambda tx, n=n: append_event(tx, task.id, "kept", {"n": n})) for n in range(5)),  # type: ignore[misc]
        database.write(boom),
        *(database.write(lambda tx, n=n: append_event(tx, task.id, "kept", {"n": n})) for n in range(5, 10)),  # type: ignore[misc]
        return_exceptions=True,
    )
    assert isinstance(outcomes[5], ValueError)
    events = await database.read(lambda conn: read_events(conn, task.id))
    assert [e.type for e in events] == ["kept"] * 10
    assert [e.seq for e in events] == list(range(1, 11))
    assert sorted(e.data["n"] for e in events) == list(range(10))


async def test_final_transition_is_fenced_by_lease_owner_and_applies_once(database: Database) -> None:
    user = await _user(database)
    task = _task(user.id)
    await database.write(lambda tx: task_store.insert_task(tx, task))
    await database.write(
        lambda tx: task_store.claim_task(tx, task.id, worker_id="w1", lease_seconds=10, now=time.time())
    )

    def finish(owner: str) -> Any:
        return lambda tx: task_store.transition_task(
            tx,
            task.id,
            from_status=TaskStatus.RUNNING,
            expect_owner=owner,
            status=TaskStatus.SUCCEEDED,
            lease_owner=None,
        )

    assert not await database.write(finish("w2"))  # a worker that lost the lease cannot finish it
    assert await database.write(finish("w1"))
    assert not await database.write(finish("w1"))  # and it is finished once
    loaded = await database.read(lambda conn: task_store.get_task(conn, task.id))
    assert loaded is not None and loaded.status is TaskStatus.SUCCEEDED
