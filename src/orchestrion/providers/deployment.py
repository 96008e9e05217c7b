"""A deployment's wrapper chain, assembled in one place.

Outermost first, each a Provider wrapping the next::

    RetryProvider        retryable errors again, with backoff, honouring Retry-After
    BreakerProvider      refuses calls while the circuit is open; counts outcomes per attempt
    BudgetProvider       reserves the call's worst case against the task's budget
    LimitedProvider      waits for a concurrency slot and per-minute room
    AccountingProvider   prices, meters and records the attempt
    TimeoutProvider      the whole attempt's time limit
    adapter              openai_compat | anthropic | gemini | llama_cpp | a test fake

The breaker sits inside the retry loop so that a circuit opening mid-retries stops them, and the
limits sit inside the budget so that a call the budget refuses never waits for a slot.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from orchestrion.monitoring.metrics import Metrics
from orchestrion.providers.accounting import AccountingProvider, CallLedger
from orchestrion.providers.base import Provider
from orchestrion.providers.breaker import BreakerProvider, CircuitBreaker, CircuitState
from orchestrion.providers.budget import BudgetProvider
from orchestrion.providers.limits import LimitedProvider, RateLimiter
from orchestrion.providers.options import DeploymentConfig, Price
from orchestrion.providers.retry import RetryProvider
from orchestrion.providers.timeouts import TimeoutProvider


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """A configured deployment: its adapter, its wrapper chain and the state the API shows.

    Attributes:
        config: What was configured.
        adapter: The vendor adapter at the bottom of the chain.
        chain: The outermost wrapper: what routes call.
        breaker: Its circuit breaker.
        limiter: Its rate limiter.
        price: Its price (None: unknown, accounted as 0).
    """

    config: DeploymentConfig
    adapter: Provider
    chain: Provider
    breaker: CircuitBreaker
    limiter: RateLimiter
    price: Price | None

    @property
    def name(self) -> str:
        """The configured name."""
        return self.config.name


def build_deployment(
    adapter: Provider,
    config: DeploymentConfig,
    *,
    price: Price | None,
    ledger: CallLedger,
    metrics: Metrics,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> Deployment:
    """Wrap `adapter` in the chain `config` describes."""
    name = config.name

    def on_change(deployment: str, state: CircuitState) -> None:
        metrics.llm_circuit_state.labels(deployment).set(state.gauge)

    def on_retry(deployment: str) -> None:
        metrics.llm_retries_total.labels(deployment).inc()

    def on_reject(deployment: str) -> None:
        metrics.llm_circuit_rejections_total.labels(deployment).inc()

    breaker = CircuitBreaker(name, config.breaker, clock=clock, on_change=on_change)
    metrics.llm_circuit_state.labels(name).set(CircuitState.CLOSED.gauge)
    limiter = RateLimiter(config.limits, clock=clock, sleep=sleep)
    chain: Provider = adapter
    if config.timeouts.total is not None:
        chain = TimeoutProvider(chain, total=config.timeouts.total)
    chain = AccountingProvider(chain, deployment=name, price=price, ledger=ledger)
    chain = LimitedProvider(chain, limiter)
    chain = BudgetProvider(chain, price=price)
    chain = BreakerProvider(chain, breaker, on_reject=on_reject)
    chain = RetryProvider(chain, config.retry, sleep=sleep, rng=rng, on_retry=on_retry)
    return Deployment(
        config=config, adapter=adapter, chain=chain, breaker=breaker, limiter=limiter, price=price
    )
