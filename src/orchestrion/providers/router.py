"""The seam agents call LLMs through: `router.complete(route, request)`.

A route is a named, ordered fallback chain of deployments. This is deliberately minimal: it tries
each deployment once, in order, moving on when one raises `ProviderError`. Retries with backoff,
cooldowns, circuit breakers and limits wrap providers in their own modules later.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from orchestrion.exceptions import ConfigurationError, ProviderError
from orchestrion.providers.base import ChatRequest, ChatResponse, Provider

logger = logging.getLogger(__name__)


class ProviderRouter:
    """Routes chat requests to ordered chains of providers.

    Args:
        routes: Route name -> the deployments to try, in order.

    Raises:
        ConfigurationError: When a route has no providers.
    """

    def __init__(self, routes: Mapping[str, Sequence[Provider]]) -> None:
        for name, providers in routes.items():
            if not providers:
                raise ConfigurationError(f"route {name!r} has no providers")
        self._routes: dict[str, tuple[Provider, ...]] = {
            name: tuple(providers) for name, providers in routes.items()
        }

    def routes(self) -> dict[str, list[str]]:
        """Route name -> deployment names (``provider:model``), in fallback order."""
        return {name: [p.deployment for p in providers] for name, providers in self._routes.items()}

    def has_route(self, name: str) -> bool:
        """True when `name` is a configured route."""
        return name in self._routes

    async def complete(self, route: str, request: ChatRequest) -> ChatResponse:
        """Run `request` on the first deployment of `route` that succeeds.

        Args:
            route: A configured route name.
            request: The chat request.

        Returns:
            The first successful response.

        Raises:
            ConfigurationError: When `route` is unknown; the message names the valid routes.
            ProviderError: When every deployment failed; the message lists each failure. It is
                retryable only if at least one failure was.
        """
        providers = self._routes.get(route)
        if providers is None:
            valid = ", ".join(sorted(self._routes)) or "(none configured)"
            raise ConfigurationError(
                f"unknown LLM route {route!r}; valid routes: {valid}",
                details={"route": route, "choices": sorted(self._routes)},
            )
        failures: list[tuple[Provider, ProviderError]] = []
        for provider in providers:
            try:
                return await provider.complete(request)
            except ProviderError as exc:
                failures.append((provider, exc))
                logger.warning(
                    "deployment failed, trying the next one",
                    extra={"route": route, "deployment": provider.deployment, "retryable": exc.retryable},
                )
        summary = "; ".join(f"{p.deployment}: {exc.message}" for p, exc in failures)
        last_provider, last_error = failures[-1]
        raise ProviderError(
            f"all {len(failures)} deployments of route {route!r} failed: {summary}",
            provider=last_provider.name,
            retryable=any(exc.retryable for _, exc in failures),
            status_code=last_error.status_code,
            retry_after=last_error.retry_after,
        ) from last_error

    async def aclose(self) -> None:
        """Close every distinct provider once, even when it serves several routes."""
        seen: set[int] = set()
        for providers in self._routes.values():
            for provider in providers:
                if id(provider) in seen:
                    continue
                seen.add(id(provider))
                await provider.aclose()
