"""The base of the router's wrapper modules: a Provider that decorates another one.

Each cross-cutting behaviour (`retry.py`, `breaker.py`, `budget.py`, `limits.py`, `accounting.py`,
`timeouts.py`) wraps a Provider and overrides `complete`. Streaming through the router is served by
`Provider.stream`'s default (the whole answer, then done); deployments that must stream on the wire
set `stream: true`, and their adapter assembles the stream inside `complete`.
"""

from __future__ import annotations

from orchestrion.providers.base import Provider


class WrapperProvider(Provider):
    """Forwards the name, model, deployment and `aclose` of the provider it wraps."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.supports_tools = inner.supports_tools

    @property
    def deployment(self) -> str:
        """The wrapped deployment's name."""
        return self.inner.deployment

    async def aclose(self) -> None:
        """Close the wrapped provider."""
        await self.inner.aclose()
