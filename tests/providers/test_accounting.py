"""Accounting: each attempt is priced, metered, counted in metrics and written to the call ledger."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest

from orchestrion.domain.events import EventType
from orchestrion.domain.llm import LLMCall
from orchestrion.domain.tasks import Task, TaskStatus, utcnow
from orchestrion.exceptions import ProviderError
from orchestrion.monitoring.metrics import Metrics
from orchestrion.providers.accounting import AccountingProvider, CallLedger
from orchestrion.providers.base import ChatRequest, ChatResponse, Message, Provider, Usage
from orchestrion.providers.context import UsageMeter, bind_call
from orchestrion.providers.options import Price
from orchestrion.store import tasks as task_store
from orchestrion.store import users as user_store
from orchestrion.store.database import Database, WriteTx
from orchestrion.store.events import read_events
from orchestrion.store.llm_calls import read_deployment_usage, read_llm_calls, read_task_usage
from orchestrion.store.migrate import aupgrade_database
from orchestrion.testing import ScriptedProvider
from tests.conftest import PostgresServer, create_pg_database

T = TypeVar("T")

REQUEST = ChatRequest(messages=(Message(role="user", content="summarise this"),))
# One dollar per input token and two per output token keep cost arithmetic exact.
PRICE = Price(input_per_mtok=1_000_000, output_per_mtok=2_000_000)


class UsageProvider(Provider):
    """Answers with fixed token counts."""

    def __init__(self, *, input_tokens: int = 120, output_tokens: int = 30) -> None:
        self.name = "acme"
        self.model = "m1"
        self._usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        await asyncio.sleep(0)
        return ChatResponse(content="ok", provider=self.name, model=self.model, usage=self._usage)


class HangingProvider(Provider):
    """Never answers; lets the test cancel a call in flight."""

    def __init__(self) -> None:
        self.name = "acme"
        self.model = "m1"
        self.entered = asyncio.Event()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class RecordingLedger(CallLedger):
    """A metrics-only ledger that also keeps the records it receives."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(None, metrics)
        self.calls: list[LLMCall] = []

    def record(self, call: LLMCall) -> None:
        self.calls.append(call)
        super().record(call)


class GatedDatabase(Database):
    """A real database whose first write waits for the test to open a gate (or fails, once, if asked)."""

    def __init__(self, url: str, *, fail_first: bool = False) -> None:
        super().__init__(url)
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self._fail_first = fail_first
        self.writes = 0

    async def write(self, unit: Callable[[WriteTx], T]) -> T:
        self.writes += 1
        if self.writes == 1:
            self.entered.set()
            await self.gate.wait()
            if self._fail_first:
                raise ConnectionError("database went away")
        return await super().write(unit)


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def _accounting(
    inner: Provider, ledger: CallLedger, *, price: Price | None = PRICE, deployment: str = "acme-primary"
) -> AccountingProvider:
    return AccountingProvider(inner, deployment=deployment, price=price, ledger=ledger)


async def _insert_task(db: Database) -> str:
    user = await db.write(
        lambda tx: user_store.create_user(tx, name=f"u{uuid.uuid4().hex[:8]}", role="operator")
    )
    task = Task(
        id=str(uuid.uuid4()),
        owner_id=user.id,
        title="t",
        task_type="code_analysis",
        target=None,
        inputs={"files": [], "paths": []},
        priority=5,
        agents=("code_analyzer",),
        status=TaskStatus.RUNNING,
        created_at=utcnow(),
    )
    await db.write(lambda tx: task_store.insert_task(tx, task))
    return task.id


async def _poll(predicate: Callable[[], Awaitable[bool]], *, timeout: float) -> bool:
    """Poll an async predicate until it holds or `timeout` passes; whether it held."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def _wait_for(predicate: Callable[[], Awaitable[bool]], *, timeout: float = 10.0) -> None:
    """Wait until an async predicate holds; a liveness check, never a speed check."""
    if not await _poll(predicate, timeout=timeout):
        raise AssertionError("condition not reached")


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    await aupgrade_database(database_url)
    return database_url


@pytest.fixture
async def ledger_db(migrated_url: str) -> AsyncIterator[Database]:
    db = Database(migrated_url)
    try:
        yield db
    finally:
        await db.dispose()


# -- records, responses and meters ---------------------------------------------------------------


async def test_successful_call_is_recorded_with_context_tokens_and_cost() -> None:
    ledger = RecordingLedger(Metrics())
    provider = _accounting(UsageProvider(input_tokens=120, output_tokens=30), ledger)

    with bind_call(task_id="task-1", step_id="analyse", route="default", position=1, attempt=2):
        await provider.complete(REQUEST)

    [call] = ledger.calls
    assert (call.task_id, call.step_id, call.route, call.position, call.attempt) == (
        "task-1",
        "analyse",
        "default",
        1,
        2,
    )
    assert (call.deployment, call.provider, call.model) == ("acme-primary", "acme", "m1")
    assert (call.input_tokens, call.output_tokens) == (120, 30)
    assert call.cost_usd == pytest.approx(180.0)
    assert (call.outcome, call.error_kind, call.status_code, call.error) == ("ok", None, None, None)
    assert call.latency_seconds >= 0.0
    assert call.created_at.tzinfo is not None


async def test_calls_outside_a_task_are_recorded_without_task_fields() -> None:
    ledger = RecordingLedger(Metrics())

    await _accounting(UsageProvider(), ledger).complete(REQUEST)

    [call] = ledger.calls
    assert (call.task_id, call.step_id, call.route, call.position, call.attempt) == (None, None, None, 0, 1)


async def test_response_is_stamped_with_cost_deployment_and_measured_latency() -> None:
    ledger = RecordingLedger(Metrics())

    response = await _accounting(UsageProvider(input_tokens=10, output_tokens=4), ledger).complete(REQUEST)

    assert response.cost_usd == pytest.approx(18.0)
    assert response.deployment == "acme-primary"
    assert response.latency_seconds == ledger.calls[0].latency_seconds
    assert response.provider == "acme"


async def test_unpriced_deployment_costs_nothing_but_counts_tokens() -> None:
    metrics = Metrics()
    ledger = RecordingLedger(metrics)

    response = await _accounting(
        UsageProvider(input_tokens=10, output_tokens=4), ledger, price=None
    ).complete(REQUEST)

    assert response.cost_usd == 0.0
    assert ledger.calls[0].cost_usd == 0.0
    assert (
        _sample(metrics, "orchestrion_llm_tokens_total", provider="acme", model="m1", direction="input") == 10
    )
    assert metrics.registry.get_sample_value(
        "orchestrion_llm_cost_usd_total", {"provider": "acme", "model": "m1"}
    ) in (None, 0.0)


async def test_step_meter_adds_each_successful_call_and_counts_fallbacks() -> None:
    ledger = RecordingLedger(Metrics())
    provider = _accounting(UsageProvider(input_tokens=10, output_tokens=4), ledger)
    meter = UsageMeter()

    with bind_call(meter=meter):
        await provider.complete(REQUEST)
        with bind_call(position=1):
            await provider.complete(REQUEST)

    assert (meter.calls, meter.input_tokens, meter.output_tokens, meter.fallbacks) == (2, 20, 8, 1)
    assert meter.cost_usd == pytest.approx(36.0)


async def test_failed_call_is_recorded_with_kind_and_status_and_not_metered() -> None:
    ledger = RecordingLedger(Metrics())
    error = ProviderError("slow down " + "x" * 500, provider="acme", retryable=True, status_code=429)
    provider = _accounting(ScriptedProvider([error], name="acme", model="m1"), ledger)
    meter = UsageMeter()

    with bind_call(meter=meter, attempt=3), pytest.raises(ProviderError) as caught:
        await provider.complete(REQUEST)

    assert caught.value is error
    [call] = ledger.calls
    assert (call.outcome, call.error_kind, call.status_code, call.attempt) == (
        "error",
        "rate_limited",
        429,
        3,
    )
    assert (call.input_tokens, call.output_tokens, call.cost_usd) == (0, 0, 0.0)
    assert call.error is not None
    assert call.error.startswith("slow down") and len(call.error) == 300
    assert meter.calls == 0


async def test_cancelled_call_is_recorded_as_cancelled() -> None:
    ledger = RecordingLedger(Metrics())
    inner = HangingProvider()
    call = asyncio.create_task(_accounting(inner, ledger).complete(REQUEST))
    await inner.entered.wait()

    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    [record] = ledger.calls
    assert (record.outcome, record.error_kind, record.status_code) == ("cancelled", None, None)


async def test_unexpected_exception_is_recorded_as_an_error_and_raised_unchanged() -> None:
    ledger = RecordingLedger(Metrics())
    bug = KeyError("choices")

    with pytest.raises(KeyError) as caught:
        await _accounting(ScriptedProvider([bug], name="acme", model="m1"), ledger).complete(REQUEST)

    assert caught.value is bug
    [call] = ledger.calls
    assert (call.outcome, call.error_kind, call.status_code) == ("error", "error", None)
    assert call.error == "KeyError: 'choices'"


async def test_metrics_count_calls_by_outcome_tokens_and_cost() -> None:
    metrics = Metrics()
    ledger = CallLedger(None, metrics)
    ok = _accounting(UsageProvider(input_tokens=10, output_tokens=4), ledger)
    failing = _accounting(
        ScriptedProvider(
            [
                ProviderError("overloaded", provider="acme", retryable=True, status_code=503),
                ProviderError("overloaded", provider="acme", retryable=True, status_code=503),
                ProviderError("slow down", provider="acme", retryable=True, status_code=429),
            ],
            name="acme",
            model="m1",
        ),
        ledger,
    )

    for _ in range(3):
        await ok.complete(REQUEST)
    for _ in range(3):
        with pytest.raises(ProviderError):
            await failing.complete(REQUEST)

    labels = {"provider": "acme", "model": "m1"}
    assert _sample(metrics, "orchestrion_llm_calls_total", **labels, outcome="ok") == 3
    assert _sample(metrics, "orchestrion_llm_calls_total", **labels, outcome="server_error") == 2
    assert _sample(metrics, "orchestrion_llm_calls_total", **labels, outcome="rate_limited") == 1
    assert _sample(metrics, "orchestrion_llm_tokens_total", **labels, direction="input") == 30
    assert _sample(metrics, "orchestrion_llm_tokens_total", **labels, direction="output") == 12
    assert _sample(metrics, "orchestrion_llm_cost_usd_total", **labels) == pytest.approx(54.0)
    assert _sample(metrics, "orchestrion_llm_call_duration_seconds_count", **labels) == 3


async def test_cancelled_calls_are_counted_under_their_own_outcome() -> None:
    metrics = Metrics()
    inner = HangingProvider()
    call = asyncio.create_task(_accounting(inner, CallLedger(None, metrics)).complete(REQUEST))
    await inner.entered.wait()

    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    assert (
        _sample(metrics, "orchestrion_llm_calls_total", provider="acme", model="m1", outcome="cancelled") == 1
    )
    assert _sample(metrics, "orchestrion_llm_call_duration_seconds_count", provider="acme", model="m1") == 0


# -- the ledger on a real database -----------------------------------------------------------------


async def test_ledger_writes_rows_and_llm_called_events_for_task_calls(ledger_db: Database) -> None:
    task_id = await _insert_task(ledger_db)
    ledger = CallLedger(ledger_db, Metrics(), flush_interval=3600)
    failing = _accounting(
        ScriptedProvider(
            [ProviderError("overloaded", provider="acme", retryable=True, status_code=503)],
            name="acme",
            model="m1",
        ),
        ledger,
    )
    ok = _accounting(UsageProvider(input_tokens=120, output_tokens=30), ledger, deployment="acme-fallback")

    with bind_call(task_id=task_id, step_id="analyse", route="default"):
        with pytest.raises(ProviderError):
            await failing.complete(REQUEST)
        with bind_call(position=1):
            await ok.complete(REQUEST)
    await ledger.flush()

    calls = await ledger_db.read(lambda conn: read_llm_calls(conn, task_id))
    events = await ledger_db.read(lambda conn: read_events(conn, task_id))
    usage = await ledger_db.read(lambda conn: read_task_usage(conn, task_id))
    await ledger.aclose()

    assert [(c.deployment, c.position, c.outcome, c.error_kind, c.status_code) for c in calls] == [
        ("acme-primary", 0, "error", "server_error", 503),
        ("acme-fallback", 1, "ok", None, None),
    ]
    assert (calls[1].input_tokens, calls[1].output_tokens) == (120, 30)
    assert calls[1].cost_usd == pytest.approx(180.0)
    assert all((c.task_id, c.step_id, c.route) == (task_id, "analyse", "default") for c in calls)
    assert [e.type for e in events] == [EventType.LLM_CALLED, EventType.LLM_CALLED]
    assert [e.seq for e in events] == [1, 2]
    payload = events[1].data
    assert payload["deployment"] == "acme-fallback"
    assert (payload["step_id"], payload["route"], payload["position"], payload["fallback"]) == (
        "analyse",
        "default",
        1,
        True,
    )
    assert (payload["outcome"], payload["tokens_in"], payload["tokens_out"]) == ("ok", 120, 30)
    assert payload["cost_usd"] == pytest.approx(180.0)
    assert (events[0].data["outcome"], events[0].data["error_kind"], events[0].data["fallback"]) == (
        "error",
        "server_error",
        False,
    )
    assert usage[0] == 150
    assert usage[1] == pytest.approx(180.0)


async def test_deployment_usage_sums_every_call_with_or_without_a_task(ledger_db: Database) -> None:
    task_id = await _insert_task(ledger_db)
    ledger = CallLedger(ledger_db, Metrics(), flush_interval=3600)
    ok = _accounting(UsageProvider(input_tokens=10, output_tokens=5), ledger)
    failing = _accounting(
        ScriptedProvider([ProviderError("bad", provider="acme", status_code=400)], name="acme", model="m1"),
        ledger,
    )

    await ok.complete(REQUEST)
    with bind_call(task_id=task_id):
        await ok.complete(REQUEST)
        with pytest.raises(ProviderError):
            await failing.complete(REQUEST)
    await ledger.aclose()

    usage = await ledger_db.read(read_deployment_usage)
    events = await ledger_db.read(lambda conn: read_events(conn, task_id))
    task_calls = await ledger_db.read(lambda conn: read_llm_calls(conn, task_id))

    primary = usage["acme-primary"]
    assert (primary.calls, primary.errors, primary.input_tokens, primary.output_tokens) == (3, 1, 20, 10)
    assert primary.cost_usd == pytest.approx(40.0)
    assert primary.error_rate == pytest.approx(1 / 3)
    assert primary.last_call_at is not None
    assert len(task_calls) == 2
    # Only calls made for a task become events (on that task).
    assert len(events) == 2


async def test_flush_writes_everything_recorded_so_far(ledger_db: Database) -> None:
    task_id = await _insert_task(ledger_db)
    ledger = CallLedger(ledger_db, Metrics(), flush_interval=3600)
    provider = _accounting(UsageProvider(), ledger)

    with bind_call(task_id=task_id):
        for _ in range(5):
            await provider.complete(REQUEST)
        await ledger.flush()
        first = await ledger_db.read(lambda conn: read_llm_calls(conn, task_id))
        await asyncio.gather(*(provider.complete(REQUEST) for _ in range(7)))
        await ledger.flush()
    second = await ledger_db.read(lambda conn: read_llm_calls(conn, task_id))
    events = await ledger_db.read(lambda conn: read_events(conn, task_id))
    await ledger.flush()
    await ledger.aclose()

    assert len(first) == 5
    assert len(second) == 12
    assert [e.seq for e in events] == list(range(1, 13))


async def test_aclose_writes_records_not_flushed_yet(migrated_url: str) -> None:
    db = Database(migrated_url)
    task_id = await _insert_task(db)
    ledger = CallLedger(db, Metrics(), flush_interval=3600)
    with bind_call(task_id=task_id):
        await _accounting(UsageProvider(), ledger).complete(REQUEST)
        await _accounting(UsageProvider(), ledger).complete(REQUEST)

    await ledger.aclose()
    await db.dispose()

    reader = Database(migrated_url)
    try:
        calls = await reader.read(lambda conn: read_llm_calls(conn, task_id))
    finally:
        await reader.dispose()
    assert len(calls) == 2


async def test_background_flusher_writes_records_without_an_explicit_flush(ledger_db: Database) -> None:
    task_id = await _insert_task(ledger_db)
    ledger = CallLedger(ledger_db, Metrics(), flush_interval=0.01)

    with bind_call(task_id=task_id):
        await _accounting(UsageProvider(), ledger).complete(REQUEST)

    async def written() -> bool:
        return len(await ledger_db.read(lambda conn: read_llm_calls(conn, task_id))) == 1

    try:
        await _wait_for(written)
    finally:
        await ledger.aclose()


async def test_failed_write_keeps_the_batch_for_the_next_flush(migrated_url: str) -> None:
    db = GatedDatabase(migrated_url, fail_first=True)
    db.gate.set()
    ledger = CallLedger(db, Metrics(), flush_interval=3600)
    try:
        await _accounting(UsageProvider(), ledger).complete(REQUEST)
        with pytest.raises(ConnectionError):
            await ledger.flush()
        await ledger.flush()
        usage = await db.read(read_deployment_usage)
        await ledger.aclose()
    finally:
        await db.dispose()

    assert usage["acme-primary"].calls == 1


async def test_record_made_while_the_background_flush_writes_is_written_in_the_background(
    migrated_url: str,
) -> None:
    db = GatedDatabase(migrated_url)
    ledger = CallLedger(db, Metrics(), flush_interval=0.01)
    provider = _accounting(UsageProvider(), ledger)

    async def both_written() -> bool:
        usage = await db.read(read_deployment_usage)
        return "acme-primary" in usage and usage["acme-primary"].calls == 2

    try:
        await provider.complete(REQUEST)
        await db.entered.wait()
        await provider.complete(REQUEST)
        db.gate.set()
        await _wait_for(both_written, timeout=3.0)
    finally:
        db.gate.set()
        await ledger.aclose()
        await db.dispose()


@pytest.mark.postgres
async def test_aclose_during_a_background_write_loses_no_records_on_postgresql(
    postgres_server: PostgresServer,
) -> None:
    import asyncpg

    url = await create_pg_database(postgres_server)
    await aupgrade_database(url)
    db = Database(url)
    task_id = await _insert_task(db)
    ledger = CallLedger(db, Metrics(), flush_interval=0.01)
    blocker = await asyncpg.connect(
        host=postgres_server.host, port=postgres_server.port, user="postgres", database=url.rsplit("/", 1)[1]
    )
    try:
        # Another transaction holds the ledger table, so the background flush blocks inside its INSERT.
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute("LOCK TABLE llm_calls IN ACCESS EXCLUSIVE MODE")
        with bind_call(task_id=task_id):
            await _accounting(UsageProvider(), ledger).complete(REQUEST)

        async def flush_blocked() -> bool:
            waiting = await blocker.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            return bool(waiting)

        await _wait_for(flush_blocked)
        closing = asyncio.create_task(ledger.aclose())

        async def flush_given_up() -> bool:
            return closing.done() or not await flush_blocked()

        # Let aclose act on the blocked flush before the lock goes; a ledger that waits for its
        # write instead never gives up, and then this only costs the bounded poll.
        await _poll(flush_given_up, timeout=2.0)
        await lock.rollback()
        await closing
        calls = await db.read(lambda conn: read_llm_calls(conn, task_id))
    finally:
        await blocker.close()
        await db.dispose()

    assert len(calls) == 1
