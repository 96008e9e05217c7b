"""The circuit breaker: open after failures, refuse while open, one half-open probe after the cooldown."""

from __future__ import annotations

import asyncio

import pytest

from orchestrion.exceptions import CircuitOpenError, OutputSchemaError, ProviderError
from orchestrion.providers.base import ChatRequest, ChatResponse, Message, Provider
from orchestrion.providers.breaker import BreakerProvider, CircuitBreaker, CircuitState, Permit
from orchestrion.providers.options import BreakerConfig
from orchestrion.testing import ScriptedProvider

REQUEST = ChatRequest(messages=(Message(role="user", content="summarise this"),))


class FakeClock:
    """Monotonic seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class GatedProvider(Provider):
    """Answers (or raises) only when the test opens the gate, so a call can be held in flight."""

    def __init__(self, outcome: str | BaseException = "ok") -> None:
        self.name = "gated"
        self.model = "m"
        self.outcome = outcome
        self.calls = 0
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        self.entered.set()
        await self.gate.wait()
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return ChatResponse(content=self.outcome, provider=self.name, model=self.model)


def _failure(kind: str | None = None, *, status_code: int | None = 503) -> ProviderError:
    return ProviderError("failed", provider="scripted", retryable=True, status_code=status_code, kind=kind)


def _config(**overrides: float) -> BreakerConfig:
    values: dict[str, float] = {
        "consecutive_failures": 3,
        "failure_rate": 0.5,
        "window": 10,
        "min_calls": 100,
        "cooldown_seconds": 30.0,
    }
    values.update(overrides)
    return BreakerConfig(**values)  # type: ignore[arg-type]


def _open_breaker(clock: FakeClock, **overrides: float) -> CircuitBreaker:
    breaker = CircuitBreaker("acme:m1", _config(consecutive_failures=1, **overrides), clock=clock)
    permit = breaker.acquire()
    assert permit
    breaker.record_failure(permit)
    assert breaker.state is CircuitState.OPEN
    return breaker


def test_circuit_opens_after_consecutive_counted_failures() -> None:
    breaker = CircuitBreaker("acme:m1", _config(consecutive_failures=3), clock=FakeClock())

    breaker.record_failure(Permit.CALL)
    breaker.record_failure(Permit.CALL)
    assert breaker.state is CircuitState.CLOSED
    breaker.record_failure(Permit.CALL)

    assert breaker.status().state is CircuitState.OPEN
    assert not breaker.acquire()


def test_success_resets_the_consecutive_failure_count() -> None:
    breaker = CircuitBreaker("acme:m1", _config(consecutive_failures=3), clock=FakeClock())

    for _ in range(4):
        breaker.record_failure(Permit.CALL)
        breaker.record_failure(Permit.CALL)
        breaker.record_success(Permit.CALL)

    assert breaker.state is CircuitState.CLOSED
    assert breaker.status().consecutive_failures == 0


def test_circuit_opens_on_failure_rate_once_min_calls_are_in_the_window() -> None:
    breaker = CircuitBreaker(
        "acme:m1",
        _config(consecutive_failures=100, failure_rate=0.5, window=4, min_calls=4),
        clock=FakeClock(),
    )

    breaker.record_failure(Permit.CALL)
    breaker.record_success(Permit.CALL)
    breaker.record_failure(Permit.CALL)
    # Two of three failed, over the rate, but fewer than min_calls are in the window.
    assert breaker.state is CircuitState.CLOSED
    breaker.record_success(Permit.CALL)
    breaker.record_failure(Permit.CALL)

    assert breaker.status().state is CircuitState.OPEN


def test_failure_rate_below_the_threshold_keeps_the_circuit_closed() -> None:
    breaker = CircuitBreaker(
        "acme:m1",
        _config(consecutive_failures=100, failure_rate=0.5, window=10, min_calls=4),
        clock=FakeClock(),
    )

    for _ in range(10):
        breaker.record_success(Permit.CALL)
        breaker.record_success(Permit.CALL)
        breaker.record_failure(Permit.CALL)

    assert breaker.state is CircuitState.CLOSED
    assert breaker.status().window_calls == 10


def test_only_the_last_window_calls_count_towards_the_rate() -> None:
    breaker = CircuitBreaker(
        "acme:m1",
        _config(consecutive_failures=100, failure_rate=0.5, window=4, min_calls=4),
        clock=FakeClock(),
    )
    for _ in range(3):
        breaker.record_failure(Permit.CALL)
    for _ in range(4):
        breaker.record_success(Permit.CALL)

    breaker.record_failure(Permit.CALL)

    # Half of all eight calls failed, but the window holds three successes and one failure: 25 %.
    assert breaker.state is CircuitState.CLOSED
    assert breaker.status().window_failures == 1


async def test_open_circuit_refuses_calls_without_calling_the_inner_provider() -> None:
    clock = FakeClock()
    inner = ScriptedProvider([_failure(), "never reached"], name="acme", model="m1")
    breaker = CircuitBreaker("acme:m1", _config(consecutive_failures=1, cooldown_seconds=30.0), clock=clock)
    provider = BreakerProvider(inner, breaker)
    with pytest.raises(ProviderError):
        await provider.complete(REQUEST)
    clock.now += 10.0

    with pytest.raises(CircuitOpenError) as caught:
        await provider.complete(REQUEST)

    assert len(inner.requests) == 1
    assert caught.value.kind == "circuit_open"
    assert caught.value.retryable is False
    assert caught.value.retry_after == pytest.approx(20.0)
    assert "acme:m1" in caught.value.message


def test_open_circuit_reads_as_half_open_once_the_cooldown_has_passed() -> None:
    clock = FakeClock()
    breaker = _open_breaker(clock, cooldown_seconds=30.0)

    clock.now += 29.9
    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_in() == pytest.approx(0.1)
    clock.now += 0.1

    assert breaker.status().state is CircuitState.HALF_OPEN


async def test_half_open_lets_exactly_one_probe_through_while_others_are_refused() -> None:
    clock = FakeClock()
    inner = GatedProvider()
    provider = BreakerProvider(inner, _open_breaker(clock, cooldown_seconds=30.0))
    clock.now += 30.0

    probe = asyncio.create_task(provider.complete(REQUEST))
    await inner.entered.wait()
    refused = await asyncio.gather(*(provider.complete(REQUEST) for _ in range(3)), return_exceptions=True)
    inner.gate.set()
    response = await probe

    assert response.content == "ok"
    assert inner.calls == 1
    assert all(isinstance(result, CircuitOpenError) for result in refused)


async def test_successful_probe_closes_the_circuit_and_clears_the_window() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        "acme:m1",
        _config(consecutive_failures=3, failure_rate=0.5, window=10, min_calls=4),
        clock=clock,
    )
    for _ in range(3):
        breaker.record_failure(Permit.CALL)
    clock.now += 30.0
    provider = BreakerProvider(ScriptedProvider(["probe ok", "next"]), breaker)

    await provider.complete(REQUEST)

    status = breaker.status()
    assert status.state is CircuitState.CLOSED
    assert status.consecutive_failures == 0
    assert status.window_failures == 0
    assert status.retry_in_seconds is None
    assert (await provider.complete(REQUEST)).content == "next"


async def test_failed_probe_reopens_the_circuit_for_another_cooldown() -> None:
    clock = FakeClock()
    breaker = _open_breaker(clock, cooldown_seconds=30.0)
    inner = ScriptedProvider([_failure(), "never reached"])
    provider = BreakerProvider(inner, breaker)
    clock.now += 30.0

    with pytest.raises(ProviderError):
        await provider.complete(REQUEST)

    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_in() == pytest.approx(30.0)
    assert breaker.status().opened_count == 2
    with pytest.raises(CircuitOpenError):
        await provider.complete(REQUEST)
    assert len(inner.requests) == 1


@pytest.mark.parametrize(
    "error",
    [
        ProviderError("bad request", provider="scripted", status_code=400),
        ProviderError("unprocessable", provider="scripted", status_code=422),
        OutputSchemaError("not JSON", provider="scripted"),
    ],
    ids=["bad_request_400", "bad_request_422", "schema"],
)
async def test_caller_errors_do_not_count_as_failures(error: ProviderError) -> None:
    breaker = CircuitBreaker("acme:m1", _config(consecutive_failures=1, min_calls=1), clock=FakeClock())
    provider = BreakerProvider(ScriptedProvider([error] * 5), breaker)

    for _ in range(5):
        with pytest.raises(ProviderError):
            await provider.complete(REQUEST)

    status = breaker.status()
    assert status.state is CircuitState.CLOSED
    assert (status.consecutive_failures, status.window_calls) == (0, 0)


@pytest.mark.parametrize(
    "error",
    [
        _failure(status_code=429),
        _failure(status_code=408),
        _failure(status_code=None),
        _failure(status_code=503),
        _failure(kind="bad_response", status_code=200),
        ProviderError("bad key", provider="scripted", status_code=401),
        ProviderError("no such model", provider="scripted", status_code=404),
        ProviderError("unexpected", provider="scripted"),
    ],
    ids=[
        "rate_limited",
        "timeout",
        "transport",
        "server_error",
        "bad_response",
        "auth",
        "not_found",
        "error",
    ],
)
async def test_deployment_health_errors_count_as_failures(error: ProviderError) -> None:
    breaker = CircuitBreaker("acme:m1", _config(consecutive_failures=1), clock=FakeClock())
    provider = BreakerProvider(ScriptedProvider([error]), breaker)

    with pytest.raises(ProviderError):
        await provider.complete(REQUEST)

    assert breaker.state is CircuitState.OPEN


async def test_cancelled_call_does_not_count() -> None:
    breaker = CircuitBreaker("acme:m1", _config(consecutive_failures=1, min_calls=1), clock=FakeClock())
    inner = GatedProvider()
    provider = BreakerProvider(inner, breaker)

    call = asyncio.create_task(provider.complete(REQUEST))
    await inner.entered.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    status = breaker.status()
    assert status.state is CircuitState.CLOSED
    assert (status.consecutive_failures, status.window_calls) == (0, 0)


async def test_exception_that_is_not_a_provider_error_does_not_count() -> None:
    breaker = CircuitBreaker("acme:m1", _config(consecutive_failures=1, min_calls=1), clock=FakeClock())
    provider = BreakerProvider(ScriptedProvider([RuntimeError("a bug")]), breaker)

    with pytest.raises(RuntimeError):
        await provider.complete(REQUEST)

    assert breaker.state is CircuitState.CLOSED


async def test_probe_ending_in_a_caller_error_frees_the_probe_slot() -> None:
    clock = FakeClock()
    breaker = _open_breaker(clock)
    bad_request = ProviderError("bad request", provider="scripted", status_code=400)
    provider = BreakerProvider(ScriptedProvider([bad_request, "second probe ok"]), breaker)
    clock.now += 30.0

    with pytest.raises(ProviderError) as caught:
        await provider.complete(REQUEST)

    assert caught.value.kind == "bad_request"
    assert breaker.state is CircuitState.HALF_OPEN
    assert (await provider.complete(REQUEST)).content == "second probe ok"
    assert breaker.status().state is CircuitState.CLOSED


async def test_cancelled_probe_frees_the_probe_slot() -> None:
    clock = FakeClock()
    breaker = _open_breaker(clock)
    inner = GatedProvider()
    provider = BreakerProvider(inner, breaker)
    clock.now += 30.0

    probe = asyncio.create_task(provider.complete(REQUEST))
    await inner.entered.wait()
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe

    assert breaker.state is CircuitState.HALF_OPEN
    permit = breaker.acquire()
    assert permit


def test_on_change_hook_sees_every_transition() -> None:
    clock = FakeClock()
    changes: list[tuple[str, CircuitState]] = []
    breaker = CircuitBreaker(
        "acme:m1",
        _config(consecutive_failures=2, cooldown_seconds=30.0),
        clock=clock,
        on_change=lambda deployment, state: changes.append((deployment, state)),
    )

    breaker.record_failure(Permit.CALL)
    breaker.record_failure(Permit.CALL)
    clock.now += 30.0
    permit = breaker.acquire()
    assert permit
    breaker.record_failure(permit)
    clock.now += 30.0
    permit = breaker.acquire()
    assert permit
    breaker.record_success(permit)
    breaker.record_success(Permit.CALL)

    assert changes == [
        ("acme:m1", CircuitState.OPEN),
        ("acme:m1", CircuitState.HALF_OPEN),
        ("acme:m1", CircuitState.OPEN),
        ("acme:m1", CircuitState.HALF_OPEN),
        ("acme:m1", CircuitState.CLOSED),
    ]


def test_status_is_a_snapshot_of_counts_and_time_to_probe() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        "acme:m1", _config(consecutive_failures=3, window=10, cooldown_seconds=30.0), clock=clock
    )
    breaker.record_success(Permit.CALL)
    breaker.record_failure(Permit.CALL)
    breaker.record_failure(Permit.CALL)

    closed = breaker.status()
    breaker.record_failure(Permit.CALL)
    clock.now += 12.0
    opened = breaker.status()

    assert closed.state is CircuitState.CLOSED
    assert (closed.consecutive_failures, closed.window_calls, closed.window_failures) == (2, 3, 2)
    assert (closed.opened_count, closed.retry_in_seconds) == (0, None)
    assert opened.state is CircuitState.OPEN
    assert (opened.window_calls, opened.window_failures, opened.opened_count) == (4, 3, 1)
    assert opened.retry_in_seconds == pytest.approx(18.0)


def test_state_gauge_values_follow_closed_half_open_open() -> None:
    assert [state.gauge for state in CircuitState] == [0, 1, 2]
    assert [state.value for state in CircuitState] == ["closed", "half_open", "open"]


def test_a_call_admitted_before_the_circuit_opened_does_not_decide_the_probe() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("acme:m1", _config(consecutive_failures=1, cooldown_seconds=30.0), clock=clock)
    early = breaker.acquire()
    opener = breaker.acquire()
    assert early is Permit.CALL and opener is Permit.CALL
    breaker.record_failure(opener)
    clock.now += 30.0
    probe = breaker.acquire()
    assert probe is Permit.PROBE
    breaker.record_failure(early)  # the slow early call ends while the probe is in flight
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.acquire() is None  # still one probe at a time
    breaker.record_success(probe)
    assert breaker.state is CircuitState.CLOSED
