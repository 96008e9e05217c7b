"""Live notices for WebSocket clients: `provider.circuit` on `providers`, `engine.status` on `engines`.

The engine-status tests live here too, next to the circuit ones, because both are notices published
from synchronous code through the runtime's `NoticeRelay`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrion.bus.base import NoticeSubscription
from orchestrion.bus.local import LocalEventBus
from orchestrion.domain.events import Notice
from orchestrion.domain.tasks import TERMINAL_STATUSES, TaskStatus
from orchestrion.engines.coordinator import Caller, TaskRequest
from orchestrion.engines.status import EngineState, NoticeRelay
from orchestrion.exceptions import ProviderError
from orchestrion.providers.base import ChatRequest, ChatResponse, Message
from orchestrion.providers.breaker import (
    BreakerProvider,
    CircuitBreaker,
    CircuitChange,
    CircuitState,
    Permit,
)
from orchestrion.providers.options import BreakerConfig
from orchestrion.runtime import Runtime
from orchestrion.store import tasks as task_store
from orchestrion.store.migrate import aupgrade_database
from orchestrion.testing import Fault, ScriptedProvider, VendorTestServer
from orchestrion.testing.responders import grounded_analyst
from tests.api.test_tasks_api import CODE
from tests.conftest import make_settings

REQUEST = ChatRequest(messages=(Message(role="user", content="summarise this"),))
PRIMARY_KEY = "ORCHESTRION_TEST_NOTICE_PRIMARY_KEY"
SECONDARY_KEY = "ORCHESTRION_TEST_NOTICE_SECONDARY_KEY"


class FakeClock:
    """Monotonic seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _failure() -> ProviderError:
    return ProviderError("failed", provider="scripted", retryable=True, status_code=503)


async def _next(subscription: NoticeSubscription) -> Notice:
    # A safety net against a hang, not a timing assertion: the notice is already on its way.
    async with asyncio.timeout(10):
        notice = await subscription.get()
    assert notice is not None
    return notice


def _change(notice: Notice) -> tuple[str, str, str, str]:
    data = notice.data
    return data["deployment"], data["from"], data["to"], data["reason"]


# -- the breaker's listeners and the relay --------------------------------------------------------


async def test_circuit_transitions_are_published_in_order_with_their_reasons() -> None:
    bus = LocalEventBus()
    relay = NoticeRelay(bus)
    subscription = bus.subscribe_channel("providers")
    clock = FakeClock()
    config = BreakerConfig(consecutive_failures=2, cooldown_seconds=30.0, min_calls=100)
    breaker = CircuitBreaker("acme:m1", config, clock=clock)
    breaker.add_listener(lambda change: relay.send(change.notice()))
    provider = BreakerProvider(ScriptedProvider([_failure(), _failure(), _failure(), "ok"]), breaker)

    for _ in range(2):
        with pytest.raises(ProviderError):
            await provider.complete(REQUEST)
    clock.now += 30.0
    with pytest.raises(ProviderError):
        await provider.complete(REQUEST)  # the half-open probe fails
    clock.now += 30.0
    await provider.complete(REQUEST)  # this probe succeeds
    await relay.aclose()

    notices = [await _next(subscription) for _ in range(5)]
    assert {(n.channel, n.type) for n in notices} == {("providers", "provider.circuit")}
    assert [_change(n) for n in notices] == [
        ("acme:m1", "closed", "open", "consecutive_failures"),
        ("acme:m1", "open", "half_open", "cooldown_elapsed"),
        ("acme:m1", "half_open", "open", "probe_failed"),
        ("acme:m1", "open", "half_open", "cooldown_elapsed"),
        ("acme:m1", "half_open", "closed", "probe_succeeded"),
    ]
    assert all(n.created_at.tzinfo is not None for n in notices)


def test_a_failure_rate_opening_says_so() -> None:
    changes: list[CircuitChange] = []
    config = BreakerConfig(consecutive_failures=100, failure_rate=0.5, window=4, min_calls=4)
    breaker = CircuitBreaker("acme:m1", config, clock=FakeClock())
    breaker.add_listener(changes.append)

    for succeeded in (True, False, True, False):
        (breaker.record_success if succeeded else breaker.record_failure)(Permit.CALL)

    assert [(c.previous.value, c.state.value, c.reason) for c in changes] == [
        ("closed", "open", "failure_rate")
    ]


async def test_a_failing_listener_does_not_fail_the_call_it_observes() -> None:
    seen: list[str] = []

    def broken(change: CircuitChange) -> None:
        raise RuntimeError("listener bug")

    breaker = CircuitBreaker("acme:m1", BreakerConfig(consecutive_failures=1), clock=FakeClock())
    breaker.add_listener(broken)
    breaker.add_listener(lambda change: seen.append(change.state.value))
    provider = BreakerProvider(ScriptedProvider([_failure()]), breaker)

    with pytest.raises(ProviderError, match="failed"):
        await provider.complete(REQUEST)

    assert seen == ["open"]


async def test_the_relay_publishes_from_a_thread_without_a_loop_once_it_knows_one() -> None:
    bus = LocalEventBus()
    relay = NoticeRelay(bus)
    subscription = bus.subscribe_channel("providers")
    closed = CircuitState.CLOSED
    first = CircuitChange(deployment="a", previous=closed, state=closed, reason="x")
    relay.send(first.notice())  # from the loop: the relay learns it

    second = CircuitChange(deployment="b", previous=closed, state=closed, reason="y")
    thread = threading.Thread(target=relay.send, args=(second.notice(),))
    thread.start()
    await asyncio.to_thread(thread.join)

    received = [await _next(subscription), await _next(subscription)]
    await relay.aclose()
    assert [n.data["deployment"] for n in received] == ["a", "b"]


def test_the_relay_drops_a_notice_when_it_knows_no_loop() -> None:
    relay = NoticeRelay(LocalEventBus())
    closed = CircuitState.CLOSED
    change = CircuitChange(deployment="a", previous=closed, state=closed, reason="x")

    relay.send(change.notice())  # neither raises nor blocks


# -- end to end: a runtime whose primary deployment fails at a real (test) vendor -----------------


@pytest.fixture
def vendor() -> Iterator[VendorTestServer]:
    with VendorTestServer() as server:
        yield server


def _routes_file(tmp_path: Path, vendor: VendorTestServer) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(
        f"""
deployments:
  primary:
    provider: openai
    model: gpt-4.1-mini
    base_url: {vendor.base_url}
    api_key_env: {PRIMARY_KEY}
    retry: {{max_attempts: 1}}
    breaker: {{consecutive_failures: 2, cooldown_seconds: 600}}
  secondary:
    provider: anthropic
    model: claude-haiku-4-5
    base_url: {vendor.anthropic_base_url}
    api_key_env: {SECONDARY_KEY}
routes:
  default: [primary, secondary]
"""
    )
    return path


async def _runtime(home: Path, **overrides: Any) -> tuple[Runtime, Caller]:
    routes = overrides.pop("routes", None)
    settings = make_settings(home, **overrides)
    await aupgrade_database(settings.resolved_database_url)
    runtime = Runtime.create(settings, routes=routes)
    await runtime.bootstrap_admin()
    user, _ = await runtime.create_user(name="notices", role="operator")
    return runtime, Caller(user_id=user.id, role=user.role)


async def _wait_finished(runtime: Runtime, task_id: str) -> TaskStatus:
    async with asyncio.timeout(30):
        while True:
            task = await runtime.db.read(lambda conn: task_store.get_task(conn, task_id))
            assert task is not None
            if task.status in TERMINAL_STATUSES:
                return task.status
            await asyncio.sleep(0.02)


@pytest.fixture
async def failing_primary(
    tmp_path: Path, vendor: VendorTestServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Runtime, Caller]]:
    monkeypatch.setenv(PRIMARY_KEY, "test-primary-key")
    monkeypatch.setenv(SECONDARY_KEY, "test-secondary-key")
    vendor.set_failure_rate(1.0, [Fault.status(500)], api="openai")
    runtime, caller = await _runtime(tmp_path / "home", llm_routes_file=_routes_file(tmp_path, vendor))
    await runtime.start()
    try:
        yield runtime, caller
    finally:
        await runtime.stop()


async def test_a_circuit_opening_during_a_task_reaches_providers_subscribers(
    failing_primary: tuple[Runtime, Caller],
) -> None:
    runtime, caller = failing_primary
    subscription = runtime.bus.subscribe_channel("providers")

    task = await runtime.coordinator.submit(
        caller, TaskRequest(title="audit", task_type="code_analysis", files=[CODE])
    )
    assert await _wait_finished(runtime, task.id) is TaskStatus.SUCCEEDED

    notice = await _next(subscription)
    assert (notice.channel, notice.type) == ("providers", "provider.circuit")
    assert _change(notice) == ("primary", "closed", "open", "consecutive_failures")
    # The cooldown is long: nothing else changed.
    runtime.bus.unsubscribe_channel(subscription)
    assert await subscription.get() is None


# -- engine.status --------------------------------------------------------------------------------


class HeldProvider(ScriptedProvider):
    """The grounded analyst, answering only once the test releases it."""

    def __init__(self) -> None:
        super().__init__(default=grounded_analyst)
        self.release = asyncio.Event()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        await self.release.wait()
        return await super().complete(request)


async def test_engine_status_goes_processing_overloaded_and_back_to_idle(tmp_path: Path) -> None:
    model = HeldProvider()
    runtime, caller = await _runtime(tmp_path, workers=1, routes={"default": [model]})
    subscription = runtime.bus.subscribe_channel("engines")
    await runtime.start()
    try:
        request = TaskRequest(title="audit", task_type="code_analysis", files=[CODE])
        first = await runtime.coordinator.submit(caller, request)
        second = await runtime.coordinator.submit(caller, request)

        # One worker, held by the first task, and the second waiting: overloaded.
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["state"] != EngineState.OVERLOADED:
            notice = await _next(subscription)
            assert (notice.channel, notice.type) == ("engines", "engine.status")
            seen.append(notice.data)
        assert seen[0]["previous"] == "idle" and seen[0]["state"] == "processing"
        assert seen[-1] | {"previous": None} == {
            "engine": "team",
            "state": "overloaded",
            "previous": None,
            "running": 1,
            "queued": 1,
            "concurrency": 1,
            "error": None,
        }

        model.release.set()
        for task in (first, second):
            assert await _wait_finished(runtime, task.id) is TaskStatus.SUCCEEDED
        while seen[-1]["state"] != EngineState.IDLE:
            seen.append((await _next(subscription)).data)
        assert (seen[-1]["running"], seen[-1]["queued"]) == (0, 0)
        assert max(s["running"] for s in seen) == 1
        assert {(s.engine, s.state, s.running, s.queued) for s in runtime.engine_status.snapshot()} == {
            (name, "idle", 0, 0) for name in ("team", "parallel", "creative", "recall")
        }
    finally:
        await runtime.stop()
