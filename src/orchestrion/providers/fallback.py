"""The fallback wrapper: a route is an ordered chain of deployments; the first that answers wins.

A deployment whose retries are exhausted, that failed non-retryably, or whose circuit is open is
passed over for the next one. When all fail, `RouteFailedError` carries every deployment's failure.
A `BudgetExceededError` is not a deployment's failure and stops the route at once: falling back to
another vendor would overspend just the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from orchestrion.exceptions import CircuitOpenError, ProviderError, RouteFailedError
from orchestrion.providers.base import ChatRequest, ChatResponse, Provider
from orchestrion.providers.context import bind_call

logger = logging.getLogger(__name__)

FallbackHook = Callable[[str, str, ProviderError], None]
"""Called with the route, the deployment passed over and its error (metrics)."""


class FallbackProvider(Provider):
    """Tries `deployments` in order under the route's name.

    Args:
        route: The route's name (bound in the call context, so records carry it).
        deployments: The deployment chains, primary first.
        on_fallback: Called each time a deployment is passed over.
    """

    def __init__(
        self, route: str, deployments: Sequence[Provider], *, on_fallback: FallbackHook | None = None
    ) -> None:
        if not deployments:
            raise ValueError(f"route {route!r} has no deployments")
        self.route = route
        self.deployments = tuple(deployments)
        self.name = "route"
        self.model = route
        # Judged by the primary: a fallback without tool support answers in text, which ends a
        # tool-calling loop cleanly rather than failing it.
        self.supports_tools = self.deployments[0].supports_tools
        self._on_fallback = on_fallback

    @property
    def deployment(self) -> str:
        """The route's name."""
        return f"route:{self.route}"

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Run `request` on the first deployment that succeeds.

        Raises:
            RouteFailedError: When every deployment failed; it lists each failure.
            BudgetExceededError: When the task's budget does not allow the call.
        """
        failures: list[tuple[str, ProviderError]] = []
        for position, provider in enumerate(self.deployments):
            try:
                with bind_call(route=self.route, position=position):
                    return await provider.complete(request)
            except ProviderError as exc:
                failures.append((provider.deployment, exc))
                if position + 1 < len(self.deployments):
                    if not isinstance(exc, CircuitOpenError):
                        logger.warning(
                            "route %s: %s failed (%s), falling back to %s",
                            self.route,
                            provider.deployment,
                            exc.kind,
                            self.deployments[position + 1].deployment,
                        )
                    if self._on_fallback is not None:
                        self._on_fallback(self.route, provider.deployment, exc)
        raise RouteFailedError(self.route, failures)

    async def aclose(self) -> None:
        """Deployments are shared between routes; the router closes them once."""
