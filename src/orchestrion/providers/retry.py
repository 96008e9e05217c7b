"""The retry wrapper: retryable errors are tried again on the same deployment, with backoff.

Attempt n (from 2) waits uniform(0, min(max_delay, base_delay * 2**(n-2))) ("full jitter"), or the
vendor's Retry-After when that is longer. A Retry-After beyond `max_retry_after` is not waited out:
the error goes up at once so the route falls back to its next deployment instead of idling.
Non-retryable errors (bad request, auth, unknown model, schema, open circuit) are raised at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from orchestrion.exceptions import CircuitOpenError, ProviderError
from orchestrion.providers.base import ChatRequest, ChatResponse, Provider
from orchestrion.providers.context import bind_call
from orchestrion.providers.options import RetryConfig
from orchestrion.providers.wrapper import WrapperProvider

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
RetryHook = Callable[[str], None]
"""Called with the deployment name each time an attempt is retried (metrics)."""


def backoff_delay(attempt: int, config: RetryConfig, *, rng: random.Random | None = None) -> float:
    """The full-jitter delay before `attempt` (2 = the first retry)."""
    ceiling = min(config.max_delay, config.base_delay * 2 ** max(0, attempt - 2))
    return (rng or random).uniform(0.0, ceiling)


class RetryProvider(WrapperProvider):
    """Retries retryable `ProviderError`s up to `config.max_attempts` attempts in all.

    Args:
        inner: The provider to call.
        config: The policy.
        sleep: Waits between attempts (tests pass a recorder).
        rng: The jitter's source of randomness.
        on_retry: Called before each retry.
    """

    def __init__(
        self,
        inner: Provider,
        config: RetryConfig,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        super().__init__(inner)
        self._config = config
        self._sleep = sleep
        self._rng = rng
        self._on_retry = on_retry

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Call until success, a non-retryable error, or the last attempt."""
        attempt = 1
        last: ProviderError | None = None
        while True:
            try:
                with bind_call(attempt=attempt):
                    return await self.inner.complete(request)
            except CircuitOpenError as exc:
                if last is not None:
                    # The circuit opened during our retries: report the failure that opened it.
                    raise last from exc
                raise
            except ProviderError as exc:
                last = exc
                if not exc.retryable or attempt >= self._config.max_attempts:
                    raise
                if exc.retry_after is not None and exc.retry_after > self._config.max_retry_after:
                    logger.info(
                        "%s asked to wait %.1fs (over %.1fs): not retrying here",
                        self.deployment,
                        exc.retry_after,
                        self._config.max_retry_after,
                    )
                    raise
                attempt += 1
                delay = max(backoff_delay(attempt, self._config, rng=self._rng), exc.retry_after or 0.0)
                logger.info(
                    "retrying %s in %.3fs (attempt %d): %s",
                    self.deployment,
                    delay,
                    attempt,
                    exc.kind,
                )
                await self._sleep(delay)
                if self._on_retry is not None:
                    self._on_retry(self.deployment)
