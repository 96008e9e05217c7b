"""The seam agents call LLMs through: `router.complete(route, request)`.

A route is a named, ordered chain of deployments (`fallback.py`); each deployment is an adapter
inside its wrapper chain (`deployment.py`). The router owns the deployments, the call ledger and
the per-route fallback chains, and answers the API's questions about them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from orchestrion.exceptions import BudgetExceededError, ConfigurationError, ProviderError, RouteFailedError
from orchestrion.monitoring.metrics import Metrics
from orchestrion.providers.accounting import CallLedger
from orchestrion.providers.base import ChatRequest, ChatResponse, Provider
from orchestrion.providers.deployment import Deployment, build_deployment
from orchestrion.providers.fallback import FallbackProvider
from orchestrion.providers.options import DeploymentConfig, RetryConfig

logger = logging.getLogger(__name__)


class ProviderRouter:
    """Routes chat requests to ordered chains of deployments.

    Args:
        routes: Route name -> its deployments, primary first. A bare `Provider` (tests, benchmarks)
            is wrapped with default options except retries: it is tried once, so scripted failures
            stay predictable; pass a `Deployment` for the full policy.
        ledger: Where calls are recorded (default: metrics only, no database).
        metrics: The runtime's metrics (default: a private registry).

    Raises:
        ConfigurationError: When a route has no deployments.
    """

    def __init__(
        self,
        routes: Mapping[str, Sequence[Provider | Deployment]],
        *,
        ledger: CallLedger | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.ledger = ledger or CallLedger(None, self.metrics)
        self._deployments: dict[str, Deployment] = {}
        self._routes: dict[str, FallbackProvider] = {}
        wrapped: dict[int, Deployment] = {}
        for route, members in routes.items():
            if not members:
                raise ConfigurationError(f"route {route!r} has no deployments", details={"route": route})
            chain: list[Provider] = []
            for member in members:
                deployment = member if isinstance(member, Deployment) else wrapped.get(id(member))
                if deployment is None:
                    assert isinstance(member, Provider)
                    deployment = self._wrap(member)
                    wrapped[id(member)] = deployment
                known = self._deployments.setdefault(deployment.name, deployment)
                if known is not deployment:
                    raise ConfigurationError(
                        f"two different deployments are named {deployment.name!r}",
                        details={"deployment": deployment.name},
                    )
                chain.append(deployment.chain)
            self._routes[route] = FallbackProvider(route, chain, on_fallback=self._fell_back)

    def _wrap(self, provider: Provider) -> Deployment:
        name = provider.deployment
        while name in self._deployments:
            name += "'"
        config = DeploymentConfig(
            name=name, provider=provider.name, model=provider.model, retry=RetryConfig(max_attempts=1)
        )
        return build_deployment(provider, config, price=None, ledger=self.ledger, metrics=self.metrics)

    def _fell_back(self, route: str, deployment: str, error: ProviderError) -> None:
        self.metrics.llm_fallbacks_total.labels(route, deployment).inc()

    def routes(self) -> dict[str, list[str]]:
        """Route name -> deployment names, in fallback order."""
        return {name: [p.deployment for p in route.deployments] for name, route in self._routes.items()}

    def deployments(self) -> list[Deployment]:
        """Every deployment, in the order routes first name them."""
        return list(self._deployments.values())

    def supports_tools(self, route: str) -> bool:
        """Whether the route's primary deployment can be offered tools."""
        chain = self._routes.get(route)
        return chain is not None and chain.supports_tools

    def has_route(self, name: str) -> bool:
        """True when `name` is a configured route."""
        return name in self._routes

    async def complete(self, route: str, request: ChatRequest) -> ChatResponse:
        """Run `request` on the first deployment of `route` that succeeds.

        Raises:
            ConfigurationError: When `route` is unknown; the message names the valid routes.
            RouteFailedError: When every deployment failed; it lists each failure, and is retryable
                only if at least one failure was.
            BudgetExceededError: When the call would exceed the task's budget (bound by the engine).
        """
        chain = self._routes.get(route)
        if chain is None:
            valid = ", ".join(sorted(self._routes)) or "(none configured)"
            raise ConfigurationError(
                f"unknown LLM route {route!r}; valid routes: {valid}",
                details={"route": route, "choices": sorted(self._routes)},
            )
        try:
            response = await chain.complete(request)
        except RouteFailedError:
            self.metrics.llm_route_failures_total.labels(route).inc()
            raise
        except BudgetExceededError as exc:
            self.metrics.llm_budget_exceeded_total.labels(exc.limit).inc()
            raise
        return response

    async def flush(self) -> None:
        """Write the call records made so far to the ledger."""
        await self.ledger.flush()

    async def aclose(self) -> None:
        """Flush the ledger and close every deployment's adapter once."""
        try:
            await self.ledger.aclose()
        finally:
            for deployment in self._deployments.values():
                await deployment.adapter.aclose()
