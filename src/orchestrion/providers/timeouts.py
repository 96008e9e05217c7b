"""The total-time wrapper: a call that runs past its deployment's `timeouts.total` fails, retryably.

Connect and read timeouts belong to the adapters (httpx enforces them per socket operation); only
the wall-clock limit of the whole call needs a wrapper, because a server that trickles bytes never
trips a read timeout.
"""

from __future__ import annotations

import asyncio

from orchestrion.exceptions import ProviderError
from orchestrion.providers.base import ChatRequest, ChatResponse, Provider
from orchestrion.providers.wrapper import WrapperProvider


class TimeoutProvider(WrapperProvider):
    """Fails a call that takes longer than `total` seconds with a retryable `timeout` error."""

    def __init__(self, inner: Provider, *, total: float) -> None:
        super().__init__(inner)
        self._total = total

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Run the inner call under the total time limit."""
        limit = asyncio.timeout(self._total)
        try:
            async with limit:
                return await self.inner.complete(request)
        except TimeoutError as exc:
            if not limit.expired():
                raise
            raise ProviderError(
                f"{self.deployment}: no complete answer within {self._total:g}s",
                provider=self.name,
                retryable=True,
                kind="timeout",
            ) from exc
