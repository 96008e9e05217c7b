"""The budget wrapper: each call reserves its worst case against the task's budget, then settles."""

from __future__ import annotations

import asyncio

import pytest

from orchestrion.exceptions import BudgetExceededError, ProviderError
from orchestrion.providers.base import ChatRequest, ChatResponse, Message, Provider, Usage
from orchestrion.providers.budget import BudgetProvider, TaskBudget
from orchestrion.providers.context import bind_call, current_call
from orchestrion.providers.options import Price
from orchestrion.providers.tokens import estimate_input_tokens

REQUEST = ChatRequest(messages=(Message(role="user", content="summarise this file for me"),), max_tokens=100)
INPUT_ESTIMATE = estimate_input_tokens(REQUEST)
WORST_CASE = INPUT_ESTIMATE + REQUEST.max_tokens

# One dollar per input token and two per output token keep cost arithmetic exact.
PRICE = Price(input_per_mtok=1_000_000, output_per_mtok=2_000_000)
WORST_COST = PRICE.cost(INPUT_ESTIMATE, REQUEST.max_tokens)


class UsageProvider(Provider):
    """Answers with fixed usage and cost, optionally holding the call until a gate opens.

    It notes the bound budget's reservation as seen during each call.
    """

    def __init__(
        self,
        *,
        input_tokens: int = 7,
        output_tokens: int = 5,
        cost_usd: float = 0.0,
        error: BaseException | None = None,
        gated: bool = False,
    ) -> None:
        self.name = "usage"
        self.model = "m"
        self._usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
        self._cost = cost_usd
        self._error = error
        self.calls = 0
        self.reserved_during_call: list[tuple[int, float]] = []
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        budget = current_call().budget
        if budget is not None:
            self.reserved_during_call.append((budget.reserved_tokens, budget.reserved_cost_usd))
        self.entered.set()
        await self.gate.wait()
        if self._error is not None:
            raise self._error
        return ChatResponse(
            content="ok", provider=self.name, model=self.model, usage=self._usage, cost_usd=self._cost
        )


def test_worst_case_is_the_input_estimate_plus_max_tokens() -> None:
    # The estimate rounds characters over three up and adds four tokens per message.
    assert INPUT_ESTIMATE == -(-len("summarise this file for me") // 3) + 4
    assert WORST_CASE == INPUT_ESTIMATE + 100


async def test_call_whose_worst_case_exceeds_max_tokens_is_refused_without_calling() -> None:
    inner = UsageProvider()
    budget = TaskBudget(max_tokens=WORST_CASE - 1)

    with bind_call(budget=budget), pytest.raises(BudgetExceededError) as caught:
        await BudgetProvider(inner, price=None).complete(REQUEST)

    assert inner.calls == 0
    error = caught.value
    assert (error.limit, error.allowed, error.spent, error.needed) == (
        "max_tokens",
        WORST_CASE - 1,
        0,
        WORST_CASE,
    )
    assert (budget.reserved_tokens, budget.spent_tokens) == (0, 0)


async def test_call_whose_worst_case_fits_exactly_is_made() -> None:
    inner = UsageProvider()
    budget = TaskBudget(max_tokens=WORST_CASE)

    with bind_call(budget=budget):
        response = await BudgetProvider(inner, price=None).complete(REQUEST)

    assert response.content == "ok"
    assert inner.calls == 1


async def test_tokens_spent_by_earlier_runs_count_against_the_limit() -> None:
    inner = UsageProvider()
    budget = TaskBudget(max_tokens=WORST_CASE + 10, spent_tokens=11)

    with bind_call(budget=budget), pytest.raises(BudgetExceededError) as caught:
        await BudgetProvider(inner, price=None).complete(REQUEST)

    assert caught.value.spent == 11
    assert inner.calls == 0


async def test_reservation_is_held_during_the_call_and_replaced_by_actual_usage() -> None:
    inner = UsageProvider(input_tokens=7, output_tokens=5)
    budget = TaskBudget(max_tokens=10_000)

    with bind_call(budget=budget):
        await BudgetProvider(inner, price=None).complete(REQUEST)

    assert inner.reserved_during_call == [(WORST_CASE, 0.0)]
    assert (budget.reserved_tokens, budget.spent_tokens) == (0, 12)


async def test_concurrent_calls_cannot_both_squeeze_into_the_last_tokens() -> None:
    inner = UsageProvider(input_tokens=3, output_tokens=2, gated=True)
    provider = BudgetProvider(inner, price=None)
    budget = TaskBudget(max_tokens=WORST_CASE + WORST_CASE // 2)

    with bind_call(budget=budget):
        first = asyncio.create_task(provider.complete(REQUEST))
        await inner.entered.wait()
        with pytest.raises(BudgetExceededError) as caught:
            await provider.complete(REQUEST)
        inner.gate.set()
        await first
        # With the reservation settled at 5 tokens, the next call fits again.
        await provider.complete(REQUEST)

    assert caught.value.spent == WORST_CASE
    assert inner.calls == 2
    assert (budget.reserved_tokens, budget.spent_tokens) == (0, 10)


async def test_cost_limit_refuses_a_call_whose_priced_worst_case_does_not_fit() -> None:
    inner = UsageProvider()
    budget = TaskBudget(max_cost_usd=WORST_COST - 0.5)

    with bind_call(budget=budget), pytest.raises(BudgetExceededError) as caught:
        await BudgetProvider(inner, price=PRICE).complete(REQUEST)

    assert inner.calls == 0
    assert caught.value.limit == "max_cost_usd"
    assert caught.value.needed == pytest.approx(WORST_COST)
    assert WORST_COST == INPUT_ESTIMATE + 2 * REQUEST.max_tokens


async def test_cost_reservation_is_replaced_by_the_cost_the_response_carries() -> None:
    inner = UsageProvider(cost_usd=0.25)
    budget = TaskBudget(max_cost_usd=WORST_COST)

    with bind_call(budget=budget):
        await BudgetProvider(inner, price=PRICE).complete(REQUEST)

    [(reserved_tokens, reserved_cost)] = inner.reserved_during_call
    assert reserved_tokens == WORST_CASE
    assert reserved_cost == pytest.approx(WORST_COST)
    assert budget.reserved_cost_usd == pytest.approx(0.0)
    assert budget.spent_cost_usd == pytest.approx(0.25)


async def test_unpriced_deployment_is_bound_only_by_the_token_limit() -> None:
    inner = UsageProvider()
    budget = TaskBudget(max_cost_usd=0.0)

    with bind_call(budget=budget):
        await BudgetProvider(inner, price=None).complete(REQUEST)

    assert inner.calls == 1
    assert budget.spent_cost_usd == 0.0


async def test_no_budget_bound_means_no_check() -> None:
    inner = UsageProvider()
    huge = ChatRequest(messages=REQUEST.messages, max_tokens=10_000_000)

    assert current_call().budget is None
    response = await BudgetProvider(inner, price=PRICE).complete(huge)

    assert response.content == "ok"
    assert inner.calls == 1


async def test_budget_without_limits_is_not_checked() -> None:
    inner = UsageProvider()
    huge = ChatRequest(messages=REQUEST.messages, max_tokens=10_000_000)
    budget = TaskBudget()

    with bind_call(budget=budget):
        await BudgetProvider(inner, price=PRICE).complete(huge)

    assert inner.calls == 1
    assert inner.reserved_during_call == [(0, 0.0)]


async def test_failed_call_releases_its_reservation() -> None:
    failure = ProviderError("overloaded", provider="usage", retryable=True, status_code=503)
    inner = UsageProvider(error=failure)
    budget = TaskBudget(max_tokens=WORST_CASE, max_cost_usd=WORST_COST)
    provider = BudgetProvider(inner, price=PRICE)

    with bind_call(budget=budget):
        for _ in range(3):
            with pytest.raises(ProviderError):
                await provider.complete(REQUEST)

    assert inner.calls == 3
    assert (budget.reserved_tokens, budget.spent_tokens) == (0, 0)
    assert budget.reserved_cost_usd == pytest.approx(0.0)
    assert budget.spent_cost_usd == 0.0


async def test_cancelled_call_releases_its_reservation() -> None:
    inner = UsageProvider(gated=True)
    budget = TaskBudget(max_tokens=WORST_CASE)

    with bind_call(budget=budget):
        call = asyncio.create_task(BudgetProvider(inner, price=None).complete(REQUEST))
    await inner.entered.wait()
    assert budget.reserved_tokens == WORST_CASE
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    assert (budget.reserved_tokens, budget.spent_tokens) == (0, 0)


def test_task_budget_reserve_and_settle_keep_running_totals() -> None:
    budget = TaskBudget(max_tokens=100, max_cost_usd=1.0)

    budget.reserve(60, 0.5)
    budget.reserve(40, 0.5)
    with pytest.raises(BudgetExceededError) as caught:
        budget.reserve(1, 0.0)
    budget.settle(reserved_tokens=60, reserved_cost_usd=0.5, tokens=10, cost_usd=0.1)

    assert caught.value.limit == "max_tokens"
    assert (budget.reserved_tokens, budget.spent_tokens) == (40, 10)
    assert budget.reserved_cost_usd == pytest.approx(0.5)
    assert budget.spent_cost_usd == pytest.approx(0.1)
    assert budget.limited
    assert not TaskBudget().limited
