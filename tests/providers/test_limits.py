"""The limits wrapper: concurrency and per-minute windows make calls wait, in arrival order, never fail."""

from __future__ import annotations

import asyncio

import pytest

from orchestrion.providers.base import ChatRequest, ChatResponse, Message, Provider
from orchestrion.providers.limits import LimitedProvider, RateLimiter
from orchestrion.providers.options import LimitsConfig
from orchestrion.providers.tokens import estimate_total_tokens
from orchestrion.testing import ScriptedProvider

# An empty message estimates at the per-message allowance alone.
_EMPTY_MESSAGE_TOKENS = estimate_total_tokens(
    ChatRequest(messages=(Message(role="user", content=""),), max_tokens=0)
)


def _request(tokens: int, label: str = "") -> ChatRequest:
    """A request whose estimated total (input estimate plus max_tokens) is exactly `tokens`.

    The label travels in `tool_choice`, which the token estimate does not read.
    """
    request = ChatRequest(
        messages=(Message(role="user", content=""),),
        max_tokens=tokens - _EMPTY_MESSAGE_TOKENS,
        tool_choice=label or "auto",
    )
    assert estimate_total_tokens(request) == tokens
    return request


class FakeTime:
    """A monotonic clock and a sleep that advances it instead of waiting; records every wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.waits.append(delay)
        self.now += delay
        await asyncio.sleep(0)


class RecordingProvider(Provider):
    """Notes when (on the fake clock) and in which order calls start, and the peak concurrency."""

    def __init__(self, time: FakeTime | None = None, *, yields: int = 5) -> None:
        self.name = "recording"
        self.model = "m"
        self._time = time
        self._yields = yields
        self.started: list[tuple[str, float]] = []
        self.in_flight = 0
        self.peak = 0

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.started.append((request.tool_choice, self._time.now if self._time else 0.0))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            for _ in range(self._yields):
                await asyncio.sleep(0)
        finally:
            self.in_flight -= 1
        return ChatResponse(content="ok", provider=self.name, model=self.model)


class GatedProvider(Provider):
    """Holds every call until the test opens the gate."""

    def __init__(self) -> None:
        self.name = "gated"
        self.model = "m"
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.entered.set()
        await self.gate.wait()
        return ChatResponse(content="ok", provider=self.name, model=self.model)


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_max_concurrent_is_enforced_and_no_call_fails() -> None:
    inner = RecordingProvider()
    provider = LimitedProvider(inner, RateLimiter(LimitsConfig(max_concurrent=3)))

    responses = await asyncio.gather(*(provider.complete(_request(10)) for _ in range(12)))

    assert [r.content for r in responses] == ["ok"] * 12
    assert inner.peak == 3
    assert len(inner.started) == 12


async def test_unlimited_config_lets_every_call_run_at_once() -> None:
    inner = RecordingProvider()
    provider = LimitedProvider(inner, RateLimiter(LimitsConfig()))

    await asyncio.gather(*(provider.complete(_request(10)) for _ in range(8)))

    assert inner.peak == 8


async def test_requests_per_minute_makes_later_calls_wait_for_the_window() -> None:
    time = FakeTime()
    inner = RecordingProvider(time)
    provider = LimitedProvider(
        inner, RateLimiter(LimitsConfig(requests_per_minute=2), clock=time.clock, sleep=time.sleep)
    )

    await provider.complete(_request(10, "a"))
    time.now = 10.0
    await provider.complete(_request(10, "b"))
    time.now = 20.0
    await provider.complete(_request(10, "c"))
    await provider.complete(_request(10, "d"))

    assert time.waits == [40.0, 10.0]
    assert inner.started == [("a", 0.0), ("b", 10.0), ("c", 60.0), ("d", 70.0)]


async def test_tokens_per_minute_makes_a_call_wait_until_enough_tokens_expire() -> None:
    time = FakeTime()
    inner = RecordingProvider(time)
    provider = LimitedProvider(
        inner, RateLimiter(LimitsConfig(tokens_per_minute=100), clock=time.clock, sleep=time.sleep)
    )

    await provider.complete(_request(40, "a"))
    time.now = 10.0
    await provider.complete(_request(40, "b"))
    time.now = 20.0
    # 40 + 40 + 20 fits exactly.
    await provider.complete(_request(20, "c"))
    time.now = 25.0
    # 70 more needs 70 freed: the first two entries (40 + 40) must expire, at 70.
    await provider.complete(_request(70, "d"))

    assert time.waits == [45.0]
    assert inner.started == [("a", 0.0), ("b", 10.0), ("c", 20.0), ("d", 70.0)]


async def test_call_larger_than_the_whole_tokens_per_minute_runs_alone_rather_than_never() -> None:
    time = FakeTime()
    inner = RecordingProvider(time)
    limiter = RateLimiter(LimitsConfig(tokens_per_minute=100), clock=time.clock, sleep=time.sleep)
    provider = LimitedProvider(inner, limiter)

    await provider.complete(_request(30, "small"))
    time.now = 5.0
    await provider.complete(_request(250, "huge"))
    await provider.complete(_request(10, "after"))

    assert time.waits == [55.0, 60.0]
    assert inner.started == [("small", 0.0), ("huge", 60.0), ("after", 120.0)]


async def test_call_larger_than_the_whole_tokens_per_minute_runs_at_once_in_an_empty_window() -> None:
    time = FakeTime()
    provider = LimitedProvider(
        RecordingProvider(time),
        RateLimiter(LimitsConfig(tokens_per_minute=100), clock=time.clock, sleep=time.sleep),
    )

    await provider.complete(_request(500))

    assert time.waits == []


async def test_both_windows_bind_and_the_longer_wait_wins() -> None:
    time = FakeTime()
    inner = RecordingProvider(time)
    provider = LimitedProvider(
        inner,
        RateLimiter(
            LimitsConfig(requests_per_minute=2, tokens_per_minute=100), clock=time.clock, sleep=time.sleep
        ),
    )

    await provider.complete(_request(90, "a"))
    time.now = 30.0
    # Room for a request, but not for the tokens until the first call's expire at 60.
    await provider.complete(_request(20, "b"))
    time.now = 61.0
    await provider.complete(_request(10, "c"))
    # Two requests in the window (at 60 and 61): the request window frees at 120.
    await provider.complete(_request(10, "d"))

    assert time.waits == [30.0, 59.0]
    assert inner.started == [("a", 0.0), ("b", 60.0), ("c", 61.0), ("d", 120.0)]


async def test_waiters_are_served_in_arrival_order() -> None:
    time = FakeTime()
    inner = RecordingProvider(time)
    provider = LimitedProvider(
        inner, RateLimiter(LimitsConfig(requests_per_minute=1), clock=time.clock, sleep=time.sleep)
    )

    calls = [asyncio.create_task(provider.complete(_request(10, label))) for label in "abcde"]
    await asyncio.gather(*calls)

    assert inner.started == [("a", 0.0), ("b", 60.0), ("c", 120.0), ("d", 180.0), ("e", 240.0)]


async def test_big_call_is_not_starved_by_small_calls_arriving_after_it() -> None:
    time = FakeTime()
    inner = RecordingProvider(time)
    provider = LimitedProvider(
        inner, RateLimiter(LimitsConfig(tokens_per_minute=100), clock=time.clock, sleep=time.sleep)
    )
    await provider.complete(_request(80, "first"))

    calls = [
        asyncio.create_task(provider.complete(_request(tokens, label)))
        for tokens, label in [(90, "big"), (10, "small1"), (10, "small2")]
    ]
    await asyncio.gather(*calls)

    # The small calls would have fitted beside `first` at once; they queue behind `big` instead.
    assert [label for label, _ in inner.started] == ["first", "big", "small1", "small2"]
    assert dict(inner.started)["big"] == 60.0


async def test_cancelled_concurrency_waiter_releases_its_place() -> None:
    inner = GatedProvider()
    limiter = RateLimiter(LimitsConfig(max_concurrent=1))
    provider = LimitedProvider(inner, limiter)

    holder = asyncio.create_task(provider.complete(_request(10)))
    await inner.entered.wait()
    waiter = asyncio.create_task(provider.complete(_request(10)))
    await _settle()
    assert limiter.status().waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    inner.gate.set()
    await holder

    assert (await provider.complete(_request(10))).content == "ok"
    status = limiter.status()
    assert (status.in_flight, status.waiting) == (0, 0)


async def test_cancelled_window_waiter_releases_its_slot_and_its_turn() -> None:
    time = FakeTime()
    blocked = asyncio.Event()
    waiting_forever = asyncio.Event()

    async def sleep_until_cancelled(delay: float) -> None:
        time.waits.append(delay)
        blocked.set()
        await waiting_forever.wait()

    inner = RecordingProvider(time)
    limiter = RateLimiter(
        LimitsConfig(max_concurrent=1, requests_per_minute=1), clock=time.clock, sleep=sleep_until_cancelled
    )
    provider = LimitedProvider(inner, limiter)
    await provider.complete(_request(10, "first"))

    waiter = asyncio.create_task(provider.complete(_request(10, "cancelled")))
    await blocked.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    time.now = 60.0

    await asyncio.wait_for(provider.complete(_request(10, "next")), 30)

    assert [label for label, _ in inner.started] == ["first", "next"]
    status = limiter.status()
    assert (status.in_flight, status.waiting, status.requests_last_minute) == (0, 0, 1)


async def test_status_reports_load_and_the_last_minute() -> None:
    time = FakeTime()
    inner = GatedProvider()
    limiter = RateLimiter(
        LimitsConfig(max_concurrent=2, requests_per_minute=100, tokens_per_minute=10_000),
        clock=time.clock,
        sleep=time.sleep,
    )
    provider = LimitedProvider(inner, limiter)

    calls = [asyncio.create_task(provider.complete(_request(tokens))) for tokens in (100, 200, 300)]
    await _settle()
    busy = limiter.status()
    inner.gate.set()
    await asyncio.gather(*calls)
    done = limiter.status()
    time.now = 60.0
    expired = limiter.status()

    assert (busy.in_flight, busy.waiting, busy.requests_last_minute, busy.tokens_last_minute) == (
        2,
        1,
        2,
        300,
    )
    assert (done.in_flight, done.waiting, done.requests_last_minute, done.tokens_last_minute) == (
        0,
        0,
        3,
        600,
    )
    assert (expired.requests_last_minute, expired.tokens_last_minute) == (0, 0)


async def test_limited_provider_admits_the_request_estimate_and_passes_the_response_through() -> None:
    time = FakeTime()
    limiter = RateLimiter(LimitsConfig(tokens_per_minute=10_000), clock=time.clock, sleep=time.sleep)
    provider = LimitedProvider(ScriptedProvider(["answer"], name="acme", model="m1"), limiter)
    request = ChatRequest(messages=(Message(role="user", content="x" * 300),), max_tokens=256)

    response = await provider.complete(request)

    assert response.content == "answer"
    assert limiter.status().tokens_last_minute == estimate_total_tokens(request) == 100 + 4 + 256
    assert provider.deployment == "acme:m1"
