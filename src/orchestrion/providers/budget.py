"""The budget wrapper: a task's calls never take it past its `max_tokens` or `max_cost_usd`.

Before each call the wrapper reserves the call's worst case (the input estimate from `tokens.py`
plus `max_tokens`, priced at the deployment's rate) against the task's `TaskBudget`; a call that
would not fit raises `BudgetExceededError` and is not made. When the call returns, the reservation
is replaced by what the vendor reported. Reservations make concurrent steps of one task safe: two
calls cannot both squeeze into the last few tokens. An unpriced deployment reserves and spends cost
0, so only the token limit binds it (the router warns about unpriced deployments at start).
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrion.exceptions import BudgetExceededError
from orchestrion.providers.base import ChatRequest, ChatResponse, Provider
from orchestrion.providers.context import current_call
from orchestrion.providers.options import Price
from orchestrion.providers.tokens import estimate_input_tokens
from orchestrion.providers.wrapper import WrapperProvider


@dataclass(kw_only=True)
class TaskBudget:
    """One task's limits and what its calls have used and reserved so far.

    Attributes:
        max_tokens: Input plus output tokens allowed (None: unlimited).
        max_cost_usd: USD allowed (None: unlimited).
        spent_tokens: Tokens of finished calls (including earlier runs of a resumed task).
        spent_cost_usd: USD of finished calls.
    """

    max_tokens: int | None = None
    max_cost_usd: float | None = None
    spent_tokens: int = 0
    spent_cost_usd: float = 0.0
    reserved_tokens: int = 0
    reserved_cost_usd: float = 0.0

    @property
    def limited(self) -> bool:
        """True when any limit is set."""
        return self.max_tokens is not None or self.max_cost_usd is not None

    def reserve(self, tokens: int, cost_usd: float) -> None:
        """Set aside a call's worst case.

        Raises:
            BudgetExceededError: When it does not fit.
        """
        if self.max_tokens is not None:
            used = self.spent_tokens + self.reserved_tokens
            if used + tokens > self.max_tokens:
                raise BudgetExceededError(
                    limit="max_tokens", allowed=self.max_tokens, spent=used, needed=tokens
                )
        if self.max_cost_usd is not None:
            used_cost = self.spent_cost_usd + self.reserved_cost_usd
            if used_cost + cost_usd > self.max_cost_usd:
                raise BudgetExceededError(
                    limit="max_cost_usd",
                    allowed=self.max_cost_usd,
                    spent=round(used_cost, 6),
                    needed=round(cost_usd, 6),
                )
        self.reserved_tokens += tokens
        self.reserved_cost_usd += cost_usd

    def settle(self, *, reserved_tokens: int, reserved_cost_usd: float, tokens: int, cost_usd: float) -> None:
        """Replace a reservation by the call's actual usage."""
        self.reserved_tokens -= reserved_tokens
        self.reserved_cost_usd -= reserved_cost_usd
        self.spent_tokens += tokens
        self.spent_cost_usd += cost_usd


class BudgetProvider(WrapperProvider):
    """Checks each call against the budget bound in the call context (no budget: no check)."""

    def __init__(self, inner: Provider, *, price: Price | None) -> None:
        super().__init__(inner)
        self._price = price

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Reserve, call, settle."""
        budget = current_call().budget
        if budget is None or not budget.limited:
            return await self.inner.complete(request)
        input_tokens = estimate_input_tokens(request)
        tokens = input_tokens + request.max_tokens
        cost = self._price.cost(input_tokens, request.max_tokens) if self._price else 0.0
        budget.reserve(tokens, cost)
        used_tokens, used_cost = 0, 0.0
        try:
            response = await self.inner.complete(request)
            used_tokens = response.usage.input_tokens + response.usage.output_tokens
            used_cost = response.cost_usd
            return response
        finally:
            budget.settle(
                reserved_tokens=tokens, reserved_cost_usd=cost, tokens=used_tokens, cost_usd=used_cost
            )
