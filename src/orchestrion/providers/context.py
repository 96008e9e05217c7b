"""Who a provider call is for: the task, step, route and budget, carried in a context variable.

The router's wrappers each wrap a `Provider` (`complete(request)`), so per-call facts that are not
part of the request travel beside it: the engine binds the task, step and budget around a step, the
fallback wrapper binds the route position and the retry wrapper the attempt. Accounting and budget
read them. Context variables follow asyncio tasks, so concurrent steps never see each other's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrion.providers.budget import TaskBudget


@dataclass(kw_only=True)
class UsageMeter:
    """Running totals of the calls made under one binding (a step attempt, say)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    fallbacks: int = 0

    def add(self, *, input_tokens: int, output_tokens: int, cost_usd: float, fallback: bool) -> None:
        """Count one call."""
        self.calls += 1
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cost_usd += cost_usd
        self.fallbacks += int(fallback)


@dataclass(frozen=True, kw_only=True)
class CallContext:
    """The facts about a call that are not in its request.

    Attributes:
        task_id: The task the call serves (None outside tasks).
        step_id: The step the call serves.
        route: The route being served.
        position: The deployment's index in the route (0 = primary; more = a fallback).
        attempt: The attempt on this deployment, from 1.
        budget: The task's budget, shared by its concurrent steps.
        meter: Where the step's totals accumulate.
    """

    task_id: str | None = None
    step_id: str | None = None
    route: str | None = None
    position: int = 0
    attempt: int = 1
    budget: TaskBudget | None = None
    meter: UsageMeter | None = None


_current: ContextVar[CallContext] = ContextVar("orchestrion_call_context", default=CallContext())  # noqa: B039


def current_call() -> CallContext:
    """The context of the call being made."""
    return _current.get()


@contextmanager
def bind_call(**changes: Any) -> Iterator[CallContext]:
    """Bind `changes` over the current context for the duration of the block."""
    context = replace(_current.get(), **changes)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
