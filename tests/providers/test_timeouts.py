"""The total-time wrapper: a call past `total` fails retryably; outer cancellations still propagate."""

from __future__ import annotations

import asyncio

import pytest

from orchestrion.exceptions import ProviderError
from orchestrion.providers.base import ChatRequest, ChatResponse, Message, Provider
from orchestrion.providers.timeouts import TimeoutProvider
from orchestrion.testing import ScriptedProvider

REQUEST = ChatRequest(messages=(Message(role="user", content="summarise this"),))


class HangingProvider(Provider):
    """Never answers; notes when it was entered and whether it saw its cancellation."""

    def __init__(self) -> None:
        self.name = "hanging"
        self.model = "m"
        self.entered = asyncio.Event()
        self.cancelled = False

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        raise AssertionError("unreachable")


async def test_slow_call_fails_with_a_retryable_timeout_error() -> None:
    inner = ScriptedProvider(["too late"], delay=5.0, name="acme", model="m1")
    provider = TimeoutProvider(inner, total=0.05)

    with pytest.raises(ProviderError) as caught:
        await provider.complete(REQUEST)

    error = caught.value
    assert error.kind == "timeout"
    assert error.retryable is True
    assert error.provider == "acme"
    assert error.status_code is None
    assert "acme:m1" in error.message
    assert "0.05s" in error.message
    assert isinstance(error.__cause__, TimeoutError)


async def test_inner_call_is_cancelled_when_its_time_is_up() -> None:
    inner = HangingProvider()

    with pytest.raises(ProviderError):
        await TimeoutProvider(inner, total=0.05).complete(REQUEST)

    assert inner.cancelled


async def test_call_within_the_limit_returns_the_inner_response() -> None:
    inner = ScriptedProvider(["in time"])

    response = await TimeoutProvider(inner, total=30.0).complete(REQUEST)

    assert response.content == "in time"


async def test_inner_provider_errors_pass_through_unchanged() -> None:
    error = ProviderError("bad request", provider="scripted", status_code=400)

    with pytest.raises(ProviderError) as caught:
        await TimeoutProvider(ScriptedProvider([error]), total=30.0).complete(REQUEST)

    assert caught.value is error


async def test_outer_cancellation_propagates_as_cancelled_error() -> None:
    inner = HangingProvider()
    call = asyncio.create_task(TimeoutProvider(inner, total=60.0).complete(REQUEST))
    await inner.entered.wait()

    call.cancel()

    with pytest.raises(asyncio.CancelledError):
        await call
    assert inner.cancelled


async def test_outer_timeout_is_not_mistaken_for_the_call_timing_out() -> None:
    inner = HangingProvider()
    provider = TimeoutProvider(inner, total=60.0)

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await provider.complete(REQUEST)

    assert inner.cancelled
