"""Routes over full deployment chains: retries, then fallback; open circuits skipped; budgets stop routes."""

from __future__ import annotations

import asyncio
import random

import pytest

from orchestrion.domain.llm import LLMCall
from orchestrion.exceptions import (
    BudgetExceededError,
    CircuitOpenError,
    ConfigurationError,
    ProviderError,
    RouteFailedError,
)
from orchestrion.monitoring.metrics import Metrics
from orchestrion.providers.accounting import CallLedger
from orchestrion.providers.base import ChatRequest, ChatResponse, Message, Provider, Usage
from orchestrion.providers.breaker import CircuitState
from orchestrion.providers.budget import TaskBudget
from orchestrion.providers.context import UsageMeter, bind_call, current_call
from orchestrion.providers.deployment import Deployment, build_deployment
from orchestrion.providers.fallback import FallbackProvider
from orchestrion.providers.options import (
    BreakerConfig,
    DeploymentConfig,
    LimitsConfig,
    Price,
    RetryConfig,
    Timeouts,
)
from orchestrion.providers.router import ProviderRouter
from orchestrion.testing import ScriptedProvider

REQUEST = ChatRequest(messages=(Message(role="user", content="summarise this"),), max_tokens=100)
PRICE = Price(input_per_mtok=1_000_000, output_per_mtok=2_000_000)


class FakeTime:
    """A clock for the breakers and limiters, and a sleep that advances it and records the wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay
        await asyncio.sleep(0)


class RecordingLedger(CallLedger):
    """A metrics-only ledger that also keeps the records it receives."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(None, metrics)
        self.calls: list[LLMCall] = []

    def record(self, call: LLMCall) -> None:
        self.calls.append(call)
        super().record(call)


class ClosingProvider(ScriptedProvider):
    """Counts its `aclose` calls."""

    def __init__(self, *, name: str = "scripted") -> None:
        super().__init__(name=name)
        self.close_count = 0

    async def aclose(self) -> None:
        self.close_count += 1


class Fixture:
    """Metrics, a recording ledger and fake time shared by the deployments of one test."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self.ledger = RecordingLedger(self.metrics)
        self.time = FakeTime()

    def deploy(
        self,
        adapter: Provider,
        name: str,
        *,
        max_attempts: int = 3,
        consecutive_failures: int = 5,
        cooldown_seconds: float = 30.0,
        total: float | None = None,
        limits: LimitsConfig | None = None,
        price: Price | None = None,
    ) -> Deployment:
        config = DeploymentConfig(
            name=name,
            provider=adapter.name,
            model=adapter.model,
            timeouts=Timeouts(total=total),
            retry=RetryConfig(max_attempts=max_attempts, base_delay=0.5),
            breaker=BreakerConfig(
                consecutive_failures=consecutive_failures, cooldown_seconds=cooldown_seconds
            ),
            limits=limits or LimitsConfig(),
        )
        return build_deployment(
            adapter,
            config,
            price=price,
            ledger=self.ledger,
            metrics=self.metrics,
            clock=self.time.clock,
            sleep=self.time.sleep,
            rng=random.Random(0),
        )

    def router(self, routes: dict[str, list[Deployment]]) -> ProviderRouter:
        return ProviderRouter(routes, ledger=self.ledger, metrics=self.metrics)

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


def _overloaded(provider: str = "scripted") -> ProviderError:
    return ProviderError("overloaded", provider=provider, retryable=True, status_code=503)


@pytest.fixture
def f() -> Fixture:
    return Fixture()


async def test_primary_failing_retryably_is_retried_then_the_route_falls_back(f: Fixture) -> None:
    primary = ScriptedProvider([_overloaded()] * 3, name="acme", model="big")
    secondary = ScriptedProvider(["from secondary"], name="other", model="small")
    router = f.router(
        {"default": [f.deploy(primary, "primary", max_attempts=3), f.deploy(secondary, "secondary")]}
    )

    response = await router.complete("default", REQUEST)

    assert response.content == "from secondary"
    assert response.deployment == "secondary"
    assert len(primary.requests) == 3
    assert len(secondary.requests) == 1
    assert len(f.time.sleeps) == 2
    assert [(c.deployment, c.route, c.position, c.attempt, c.outcome) for c in f.ledger.calls] == [
        ("primary", "default", 0, 1, "error"),
        ("primary", "default", 0, 2, "error"),
        ("primary", "default", 0, 3, "error"),
        ("secondary", "default", 1, 1, "ok"),
    ]
    assert f.sample("orchestrion_llm_retries_total", deployment="primary") == 2
    assert f.sample("orchestrion_llm_retries_total", deployment="secondary") == 0
    assert f.sample("orchestrion_llm_fallbacks_total", route="default", deployment="primary") == 1
    assert f.sample("orchestrion_llm_circuit_rejections_total", deployment="primary") == 0


async def test_primary_success_after_a_retry_needs_no_fallback(f: Fixture) -> None:
    primary = ScriptedProvider([_overloaded(), "second try"])
    secondary = ScriptedProvider(["never reached"], name="other")
    router = f.router({"default": [f.deploy(primary, "primary"), f.deploy(secondary, "secondary")]})

    response = await router.complete("default", REQUEST)

    assert (response.content, response.deployment) == ("second try", "primary")
    assert secondary.requests == []
    assert f.sample("orchestrion_llm_fallbacks_total", route="default", deployment="primary") == 0


async def test_non_retryable_primary_failure_falls_back_without_retrying(f: Fixture) -> None:
    bad_key = ProviderError("bad key", provider="acme", status_code=401)
    primary = ScriptedProvider([bad_key, "never reached"], name="acme")
    router = f.router(
        {"default": [f.deploy(primary, "primary"), f.deploy(ScriptedProvider(["ok"]), "secondary")]}
    )

    response = await router.complete("default", REQUEST)

    assert response.deployment == "secondary"
    assert len(primary.requests) == 1
    assert f.time.sleeps == []


async def test_primary_with_an_open_circuit_is_skipped_without_being_called(f: Fixture) -> None:
    primary = ScriptedProvider([_overloaded(), "never reached"], name="acme")
    secondary = ScriptedProvider(default="from secondary", name="other")
    primary_deployment = f.deploy(primary, "primary", max_attempts=1, consecutive_failures=1)
    router = f.router({"default": [primary_deployment, f.deploy(secondary, "secondary")]})
    await router.complete("default", REQUEST)
    assert primary_deployment.breaker.state is CircuitState.OPEN

    response = await router.complete("default", REQUEST)

    assert response.content == "from secondary"
    assert len(primary.requests) == 1
    assert [c.deployment for c in f.ledger.calls] == ["primary", "secondary", "secondary"]
    assert f.sample("orchestrion_llm_fallbacks_total", route="default", deployment="primary") == 2
    assert f.sample("orchestrion_llm_circuit_rejections_total", deployment="primary") == 1
    assert f.sample("orchestrion_llm_circuit_state", deployment="primary") == CircuitState.OPEN.gauge


async def test_half_open_probe_after_the_cooldown_brings_the_primary_back(f: Fixture) -> None:
    primary = ScriptedProvider([_overloaded(), "primary again"], name="acme")
    secondary = ScriptedProvider(default="from secondary", name="other")
    primary_deployment = f.deploy(
        primary, "primary", max_attempts=1, consecutive_failures=1, cooldown_seconds=30
    )
    router = f.router({"default": [primary_deployment, f.deploy(secondary, "secondary")]})
    await router.complete("default", REQUEST)
    f.time.now += 30.0

    response = await router.complete("default", REQUEST)

    assert response.content == "primary again"
    assert primary_deployment.breaker.state is CircuitState.CLOSED
    assert f.sample("orchestrion_llm_circuit_state", deployment="primary") == CircuitState.CLOSED.gauge


async def test_circuit_opening_mid_retries_stops_retrying_that_deployment(f: Fixture) -> None:
    primary = ScriptedProvider([_overloaded()] * 10, name="acme")
    primary_deployment = f.deploy(primary, "primary", max_attempts=5, consecutive_failures=2)
    router = f.router({"default": [primary_deployment, f.deploy(ScriptedProvider(["ok"]), "secondary")]})

    response = await router.complete("default", REQUEST)

    assert response.deployment == "secondary"
    assert len(primary.requests) == 2
    assert primary_deployment.breaker.state is CircuitState.OPEN


async def test_route_failed_error_lists_every_deployment_failure(f: Fixture) -> None:
    first_error = ProviderError("bad key", provider="acme", status_code=401)
    second_error = _overloaded("other")
    router = f.router(
        {
            "default": [
                f.deploy(ScriptedProvider([first_error], name="acme"), "primary"),
                f.deploy(ScriptedProvider([second_error], name="other"), "secondary", max_attempts=1),
            ]
        }
    )

    with pytest.raises(RouteFailedError) as caught:
        await router.complete("default", REQUEST)

    error = caught.value
    assert error.route == "default"
    assert error.failures == [("primary", first_error), ("secondary", second_error)]
    assert error.retryable is True
    assert [d["deployment"] for d in error.details["failures"]] == ["primary", "secondary"]
    assert f.sample("orchestrion_llm_route_failures_total", route="default") == 1
    # Only passing over the primary is a fallback; the last deployment has nowhere to go.
    assert f.sample("orchestrion_llm_fallbacks_total", route="default", deployment="primary") == 1
    assert f.sample("orchestrion_llm_fallbacks_total", route="default", deployment="secondary") == 0


async def test_route_failed_error_includes_deployments_skipped_for_an_open_circuit(f: Fixture) -> None:
    primary_deployment = f.deploy(
        ScriptedProvider([_overloaded()], name="acme"), "primary", max_attempts=1, consecutive_failures=1
    )
    secondary = ScriptedProvider(["ok", _overloaded("other")], name="other")
    router = f.router({"default": [primary_deployment, f.deploy(secondary, "secondary", max_attempts=1)]})
    await router.complete("default", REQUEST)

    with pytest.raises(RouteFailedError) as caught:
        await router.complete("default", REQUEST)

    assert [(name, type(exc)) for name, exc in caught.value.failures] == [
        ("primary", CircuitOpenError),
        ("secondary", ProviderError),
    ]


async def test_budget_exceeded_stops_the_route_without_falling_back(f: Fixture) -> None:
    primary = ScriptedProvider(["never reached"], name="acme")
    secondary = ScriptedProvider(["never reached"], name="other")
    primary_deployment = f.deploy(primary, "primary", limits=LimitsConfig(requests_per_minute=10))
    router = f.router({"default": [primary_deployment, f.deploy(secondary, "secondary")]})

    with bind_call(budget=TaskBudget(max_tokens=50)), pytest.raises(BudgetExceededError) as caught:
        await router.complete("default", REQUEST)

    assert caught.value.limit == "max_tokens"
    assert primary.requests == secondary.requests == []
    assert f.ledger.calls == []
    # The budget sits outside the limits: a refused call never takes a rate-limit slot.
    assert primary_deployment.limiter.status().requests_last_minute == 0
    assert f.sample("orchestrion_llm_budget_exceeded_total", limit="max_tokens") == 1
    assert f.sample("orchestrion_llm_fallbacks_total", route="default", deployment="primary") == 0
    assert f.sample("orchestrion_llm_route_failures_total", route="default") == 0


async def test_budget_settles_on_the_priced_usage_the_chain_reports(f: Fixture) -> None:
    adapter = ScriptedProvider(["two words"], name="acme")
    router = f.router({"default": [f.deploy(adapter, "primary", price=PRICE)]})
    budget = TaskBudget(max_tokens=10_000, max_cost_usd=10_000.0)
    meter = UsageMeter()

    with bind_call(budget=budget, meter=meter):
        response = await router.complete("default", REQUEST)

    # The scripted adapter reports words: two in the prompt, two in the reply.
    assert response.usage == Usage(input_tokens=2, output_tokens=2)
    assert response.cost_usd == pytest.approx(6.0)
    assert (budget.spent_tokens, budget.reserved_tokens) == (4, 0)
    assert budget.spent_cost_usd == pytest.approx(6.0)
    assert budget.reserved_cost_usd == pytest.approx(0.0)
    assert (meter.calls, meter.fallbacks) == (1, 0)


async def test_timed_out_attempt_is_retried_and_recorded_as_a_timeout(f: Fixture) -> None:
    class HangsOnceProvider(Provider):
        def __init__(self) -> None:
            self.name, self.model, self.calls = "acme", "m1", 0

        async def complete(self, request: ChatRequest) -> ChatResponse:
            self.calls += 1
            if self.calls == 1:
                await asyncio.Event().wait()
            return ChatResponse(content="in time", provider=self.name, model=self.model)

    router = f.router({"default": [f.deploy(HangsOnceProvider(), "primary", total=0.05)]})

    response = await router.complete("default", REQUEST)

    assert response.content == "in time"
    assert [(c.attempt, c.outcome, c.error_kind) for c in f.ledger.calls] == [
        (1, "error", "timeout"),
        (2, "ok", None),
    ]


async def test_attempts_inside_a_task_carry_its_ids_and_meter_the_fallback(f: Fixture) -> None:
    router = f.router(
        {
            "default": [
                f.deploy(ScriptedProvider([_overloaded()], name="acme"), "primary", max_attempts=1),
                f.deploy(ScriptedProvider(["ok"], name="other"), "secondary"),
            ]
        }
    )
    meter = UsageMeter()

    with bind_call(task_id="task-1", step_id="analyse", meter=meter):
        await router.complete("default", REQUEST)

    assert [(c.task_id, c.step_id, c.position) for c in f.ledger.calls] == [
        ("task-1", "analyse", 0),
        ("task-1", "analyse", 1),
    ]
    assert (meter.calls, meter.fallbacks) == (1, 1)
    assert current_call().route is None


def test_routes_and_deployments_are_listed_in_route_order(f: Fixture) -> None:
    a = f.deploy(ScriptedProvider(name="a"), "dep-a")
    b = f.deploy(ScriptedProvider(name="b"), "dep-b")
    c = f.deploy(ScriptedProvider(name="c"), "dep-c")

    router = f.router({"default": [b, a], "fast": [c, b]})

    assert router.routes() == {"default": ["dep-b", "dep-a"], "fast": ["dep-c", "dep-b"]}
    assert [d.name for d in router.deployments()] == ["dep-b", "dep-a", "dep-c"]
    assert router.deployments()[0] is b


async def test_unknown_route_raises_configuration_error_naming_the_valid_routes(f: Fixture) -> None:
    router = f.router(
        {"fast": [f.deploy(ScriptedProvider(), "one")], "default": [f.deploy(ScriptedProvider(), "two")]}
    )

    with pytest.raises(ConfigurationError) as caught:
        await router.complete("slow", REQUEST)

    assert "'slow'" in caught.value.message
    assert "default, fast" in caught.value.message
    assert caught.value.details == {"route": "slow", "choices": ["default", "fast"]}


async def test_aclose_closes_an_adapter_shared_by_two_routes_once(f: Fixture) -> None:
    shared_adapter = ClosingProvider(name="shared")
    other_adapter = ClosingProvider(name="other")
    shared = f.deploy(shared_adapter, "shared")
    router = f.router({"default": [shared, f.deploy(other_adapter, "other")], "fast": [shared]})

    await router.aclose()

    assert (shared_adapter.close_count, other_adapter.close_count) == (1, 1)


async def test_circuit_state_gauge_starts_closed_for_every_deployment(f: Fixture) -> None:
    f.router({"default": [f.deploy(ScriptedProvider(), "one"), f.deploy(ScriptedProvider(), "two")]})

    assert f.sample("orchestrion_llm_circuit_state", deployment="one") == 0
    assert f.metrics.registry.get_sample_value("orchestrion_llm_circuit_state", {"deployment": "one"}) == 0.0
    assert f.metrics.registry.get_sample_value("orchestrion_llm_circuit_state", {"deployment": "two"}) == 0.0


async def test_open_circuit_on_the_last_deployment_counts_as_a_circuit_rejection(f: Fixture) -> None:
    only = f.deploy(
        ScriptedProvider([_overloaded()], name="acme"), "only", max_attempts=1, consecutive_failures=1
    )
    router = f.router({"default": [only]})
    with pytest.raises(RouteFailedError):
        await router.complete("default", REQUEST)

    with pytest.raises(RouteFailedError) as caught:
        await router.complete("default", REQUEST)

    assert isinstance(caught.value.failures[0][1], CircuitOpenError)
    assert f.sample("orchestrion_llm_circuit_rejections_total", deployment="only") == 1


# -- FallbackProvider on its own -------------------------------------------------------------------


def test_route_without_deployments_is_rejected() -> None:
    with pytest.raises(ValueError, match="'empty'"):
        FallbackProvider("empty", [])


async def test_fallback_binds_route_and_position_for_each_deployment() -> None:
    seen: list[tuple[str | None, int]] = []

    def note(request: ChatRequest) -> str:
        seen.append((current_call().route, current_call().position))
        raise _overloaded()

    def answer(request: ChatRequest) -> str:
        seen.append((current_call().route, current_call().position))
        return "ok"

    route = FallbackProvider(
        "default",
        [ScriptedProvider([note], name="a"), ScriptedProvider([note], name="b"), ScriptedProvider([answer])],
    )

    await route.complete(REQUEST)

    assert seen == [("default", 0), ("default", 1), ("default", 2)]
    assert route.deployment == "route:default"


async def test_fallback_hook_is_called_for_each_deployment_passed_over_but_not_the_last() -> None:
    hooked: list[tuple[str, str, str]] = []
    errors = [_overloaded("a"), CircuitOpenError("open", provider="b"), _overloaded("c")]
    route = FallbackProvider(
        "default",
        [ScriptedProvider([error], name=name) for error, name in zip(errors, "abc", strict=True)],
        on_fallback=lambda r, deployment, exc: hooked.append((r, deployment, exc.kind)),
    )

    with pytest.raises(RouteFailedError) as caught:
        await route.complete(REQUEST)

    assert hooked == [("default", "a:scripted", "server_error"), ("default", "b:scripted", "circuit_open")]
    assert [exc for _, exc in caught.value.failures] == errors


async def test_fallback_aclose_leaves_shared_deployments_open() -> None:
    adapter = ClosingProvider()

    await FallbackProvider("default", [adapter]).aclose()

    assert adapter.close_count == 0
