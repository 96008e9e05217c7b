"""The retry wrapper: retryable errors again on the same deployment, full-jitter backoff, Retry-After."""

from __future__ import annotations

import random

import pytest

from orchestrion.exceptions import CircuitOpenError, OutputSchemaError, ProviderError
from orchestrion.providers.base import ChatRequest, Message
from orchestrion.providers.context import current_call
from orchestrion.providers.options import RetryConfig
from orchestrion.providers.retry import RetryProvider, backoff_delay
from orchestrion.testing import ScriptedProvider

REQUEST = ChatRequest(messages=(Message(role="user", content="summarise this"),))


class SleepRecorder:
    """Records the delays asked for instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class TopOfRange(random.Random):
    """A jitter source that always picks the ceiling, so delays are predictable."""

    def uniform(self, a: float, b: float) -> float:
        return b


def _overloaded(retry_after: float | None = None) -> ProviderError:
    return ProviderError(
        "overloaded", provider="scripted", retryable=True, status_code=503, retry_after=retry_after
    )


def _rate_limited(retry_after: float) -> ProviderError:
    return ProviderError(
        "slow down", provider="scripted", retryable=True, status_code=429, retry_after=retry_after
    )


async def test_retryable_error_is_retried_until_success() -> None:
    inner = ScriptedProvider([_overloaded(), _overloaded(), "finally"])
    sleep = SleepRecorder()
    provider = RetryProvider(inner, RetryConfig(max_attempts=3), sleep=sleep, rng=random.Random(1))

    response = await provider.complete(REQUEST)

    assert response.content == "finally"
    assert len(inner.requests) == 3
    assert len(sleep.delays) == 2


async def test_last_error_is_raised_once_max_attempts_are_used() -> None:
    errors = [_overloaded(), _overloaded(), _overloaded()]
    inner = ScriptedProvider([*errors, "never reached"])
    sleep = SleepRecorder()
    provider = RetryProvider(inner, RetryConfig(max_attempts=3), sleep=sleep, rng=random.Random(1))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(REQUEST)

    assert caught.value is errors[-1]
    assert len(inner.requests) == 3
    assert len(sleep.delays) == 2
    assert inner.remaining == 1


async def test_single_attempt_policy_does_not_retry() -> None:
    inner = ScriptedProvider([_overloaded(), "never reached"])
    sleep = SleepRecorder()
    provider = RetryProvider(inner, RetryConfig(max_attempts=1), sleep=sleep)

    with pytest.raises(ProviderError):
        await provider.complete(REQUEST)

    assert len(inner.requests) == 1
    assert sleep.delays == []


@pytest.mark.parametrize(
    "error",
    [
        ProviderError("bad request", provider="scripted", status_code=400),
        ProviderError("bad key", provider="scripted", status_code=401),
        ProviderError("no such model", provider="scripted", status_code=404),
        OutputSchemaError("not JSON", provider="scripted"),
        CircuitOpenError("circuit open", provider="scripted", retry_after=5.0),
    ],
    ids=["bad_request", "auth", "not_found", "schema", "circuit_open"],
)
async def test_non_retryable_error_is_raised_at_once(error: ProviderError) -> None:
    inner = ScriptedProvider([error, "never reached"])
    sleep = SleepRecorder()
    hooked: list[str] = []
    provider = RetryProvider(inner, RetryConfig(max_attempts=5), sleep=sleep, on_retry=hooked.append)

    with pytest.raises(ProviderError) as caught:
        await provider.complete(REQUEST)

    assert caught.value is error
    assert len(inner.requests) == 1
    assert sleep.delays == []
    assert hooked == []


async def test_exception_that_is_not_a_provider_error_is_not_retried() -> None:
    inner = ScriptedProvider([RuntimeError("a bug"), "never reached"])
    sleep = SleepRecorder()
    provider = RetryProvider(inner, RetryConfig(max_attempts=5), sleep=sleep)

    with pytest.raises(RuntimeError, match="a bug"):
        await provider.complete(REQUEST)

    assert len(inner.requests) == 1
    assert sleep.delays == []


async def test_backoff_delays_are_full_jitter_draws_from_the_injected_rng() -> None:
    config = RetryConfig(max_attempts=5, base_delay=1.0, max_delay=20.0)
    inner = ScriptedProvider([_overloaded(), _overloaded(), _overloaded(), _overloaded(), "ok"])
    sleep = SleepRecorder()
    provider = RetryProvider(inner, config, sleep=sleep, rng=random.Random(42))

    await provider.complete(REQUEST)

    replay = random.Random(42)
    assert sleep.delays == [backoff_delay(n, config, rng=replay) for n in (2, 3, 4, 5)]
    for attempt, delay in zip((2, 3, 4, 5), sleep.delays, strict=True):
        assert 0.0 <= delay <= 1.0 * 2 ** (attempt - 2)


def test_backoff_ceiling_doubles_from_base_delay_and_is_capped_at_max_delay() -> None:
    config = RetryConfig(base_delay=0.5, max_delay=3.0)
    top = TopOfRange()

    ceilings = [backoff_delay(attempt, config, rng=top) for attempt in (2, 3, 4, 5, 6, 30)]

    assert ceilings == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_backoff_delay_stays_within_the_ceiling_and_is_reproducible_for_a_seed() -> None:
    config = RetryConfig(base_delay=0.5, max_delay=20.0)

    first = [backoff_delay(attempt, config, rng=random.Random(7)) for attempt in range(2, 12)]
    again = [backoff_delay(attempt, config, rng=random.Random(7)) for attempt in range(2, 12)]
    draws = [backoff_delay(3, config, rng=random.Random(seed)) for seed in range(200)]

    assert first == again
    for attempt, delay in zip(range(2, 12), first, strict=True):
        assert 0.0 <= delay <= min(20.0, 0.5 * 2 ** (attempt - 2))
    assert all(0.0 <= delay <= 1.0 for delay in draws)
    assert len(set(draws)) > 100


async def test_retry_after_longer_than_backoff_is_honoured() -> None:
    inner = ScriptedProvider([_rate_limited(retry_after=7.5), "ok"])
    sleep = SleepRecorder()
    provider = RetryProvider(
        inner, RetryConfig(base_delay=0.5, max_retry_after=30.0), sleep=sleep, rng=random.Random(3)
    )

    await provider.complete(REQUEST)

    assert sleep.delays == [7.5]


async def test_backoff_longer_than_retry_after_is_used() -> None:
    inner = ScriptedProvider([_rate_limited(retry_after=1.0), "ok"])
    sleep = SleepRecorder()
    provider = RetryProvider(inner, RetryConfig(base_delay=4.0), sleep=sleep, rng=TopOfRange())

    await provider.complete(REQUEST)

    assert sleep.delays == [4.0]


async def test_retry_after_equal_to_max_retry_after_is_waited_out() -> None:
    inner = ScriptedProvider([_rate_limited(retry_after=30.0), "ok"])
    sleep = SleepRecorder()
    provider = RetryProvider(inner, RetryConfig(max_retry_after=30.0), sleep=sleep, rng=random.Random(0))

    response = await provider.complete(REQUEST)

    assert response.content == "ok"
    assert sleep.delays == [30.0]


async def test_retry_after_above_max_retry_after_raises_at_once_without_waiting() -> None:
    error = _rate_limited(retry_after=120.0)
    inner = ScriptedProvider([error, "never reached"])
    sleep = SleepRecorder()
    hooked: list[str] = []
    provider = RetryProvider(
        inner, RetryConfig(max_attempts=5, max_retry_after=30.0), sleep=sleep, on_retry=hooked.append
    )

    with pytest.raises(ProviderError) as caught:
        await provider.complete(REQUEST)

    assert caught.value is error
    assert len(inner.requests) == 1
    assert sleep.delays == []
    assert hooked == []


async def test_attempt_number_is_bound_in_the_call_context() -> None:
    seen: list[int] = []

    def fail_after_noting_attempt(request: ChatRequest) -> str:
        seen.append(current_call().attempt)
        raise _overloaded()

    def answer_after_noting_attempt(request: ChatRequest) -> str:
        seen.append(current_call().attempt)
        return "ok"

    inner = ScriptedProvider(
        [fail_after_noting_attempt, fail_after_noting_attempt, answer_after_noting_attempt]
    )
    provider = RetryProvider(inner, RetryConfig(max_attempts=3), sleep=SleepRecorder())

    await provider.complete(REQUEST)

    assert seen == [1, 2, 3]
    assert current_call().attempt == 1


async def test_on_retry_hook_gets_the_deployment_after_each_backoff_as_the_retry_starts() -> None:
    inner = ScriptedProvider([_overloaded(), _overloaded(), "ok"], name="acme", model="m1")
    sleep = SleepRecorder()
    hooked: list[tuple[str, int]] = []
    provider = RetryProvider(
        inner,
        RetryConfig(max_attempts=3),
        sleep=sleep,
        on_retry=lambda deployment: hooked.append((deployment, len(sleep.delays))),
    )

    await provider.complete(REQUEST)

    assert hooked == [("acme:m1", 1), ("acme:m1", 2)]


async def test_success_on_first_attempt_neither_sleeps_nor_calls_the_hook() -> None:
    inner = ScriptedProvider(["ok"])
    sleep = SleepRecorder()
    hooked: list[str] = []
    provider = RetryProvider(inner, RetryConfig(), sleep=sleep, on_retry=hooked.append)

    response = await provider.complete(REQUEST)

    assert response.content == "ok"
    assert sleep.delays == []
    assert hooked == []


def test_wrapper_forwards_name_model_and_deployment() -> None:
    provider = RetryProvider(ScriptedProvider(name="acme", model="m1"), RetryConfig())

    assert (provider.name, provider.model, provider.deployment) == ("acme", "m1", "acme:m1")
