"""The limits wrapper: per-deployment concurrency and requests/tokens per minute. Calls wait, never fail.

Concurrency is a semaphore. The per-minute limits are sliding windows of the last 60 seconds: a
call starts once the window has room for one more request and for its estimated tokens (input
estimate plus `max_tokens`). Waiters are served in arrival order, so a big call is not starved by a
stream of small ones. The waiting time is not part of a call's `timeouts.total` (the timeout wrapper
sits inside this one).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from orchestrion.providers.base import ChatRequest, ChatResponse, Provider
from orchestrion.providers.options import LimitsConfig
from orchestrion.providers.tokens import estimate_total_tokens
from orchestrion.providers.wrapper import WrapperProvider

_WINDOW_SECONDS = 60.0

Clock = Callable[[], float]


@dataclass(frozen=True, kw_only=True)
class LimiterStatus:
    """A limiter's load for the API."""

    in_flight: int
    waiting: int
    requests_last_minute: int
    tokens_last_minute: int


class RateLimiter:
    """Admission control for one deployment.

    Args:
        config: The limits (None fields are unlimited).
        clock: Monotonic seconds (tests inject a fake).
        sleep: Waits for room (tests inject a fake that advances the clock).
    """

    def __init__(
        self,
        config: LimitsConfig,
        *,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._slots = asyncio.Semaphore(config.max_concurrent) if config.max_concurrent else None
        self._turn = asyncio.Lock()
        self._requests: deque[float] = deque()
        self._tokens: deque[tuple[float, int]] = deque()
        self._token_sum = 0
        self._in_flight = 0
        self._waiting = 0
        self._windowed = bool(config.requests_per_minute or config.tokens_per_minute)

    @property
    def counts_tokens(self) -> bool:
        """True when calls must bring a token estimate (a tokens-per-minute limit is set)."""
        return bool(self._config.tokens_per_minute)

    def _expire(self, now: float) -> None:
        horizon = now - _WINDOW_SECONDS
        while self._requests and self._requests[0] <= horizon:
            self._requests.popleft()
        while self._tokens and self._tokens[0][0] <= horizon:
            self._token_sum -= self._tokens.popleft()[1]

    def _wait_needed(self, tokens: int, now: float) -> float:
        """Seconds until a call of `tokens` fits both windows (0 when it fits now)."""
        self._expire(now)
        wait = 0.0
        rpm = self._config.requests_per_minute
        if rpm and len(self._requests) >= rpm:
            wait = max(wait, self._requests[len(self._requests) - rpm] + _WINDOW_SECONDS - now)
        tpm = self._config.tokens_per_minute
        if tpm and self._tokens and self._token_sum + tokens > tpm:
            # Free the oldest entries until the call fits; a call bigger than the whole limit runs
            # alone in an empty window rather than never.
            freed, needed = 0, self._token_sum + tokens - tpm
            for at, count in self._tokens:
                freed += count
                if freed >= needed:
                    wait = max(wait, at + _WINDOW_SECONDS - now)
                    break
            else:
                wait = max(wait, self._tokens[-1][0] + _WINDOW_SECONDS - now)
        return max(0.0, wait)

    async def _admit(self, tokens: int) -> None:
        async with self._turn:
            while True:
                now = self._clock()
                wait = self._wait_needed(tokens, now)
                if wait <= 0:
                    break
                await self._sleep(wait)
            if self._config.requests_per_minute:
                self._requests.append(now)
            if self._config.tokens_per_minute:
                self._tokens.append((now, tokens))
                self._token_sum += tokens

    @contextlib.asynccontextmanager
    async def slot(self, tokens: int) -> AsyncIterator[None]:
        """Hold a concurrency slot and a place in the per-minute windows for one call."""
        self._waiting += 1
        try:
            if self._slots is not None:
                await self._slots.acquire()
            try:
                if self._windowed:
                    await self._admit(tokens)
            except BaseException:
                if self._slots is not None:
                    self._slots.release()
                raise
        finally:
            self._waiting -= 1
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._slots is not None:
                self._slots.release()

    def status(self) -> LimiterStatus:
        """A snapshot for the API."""
        self._expire(self._clock())
        return LimiterStatus(
            in_flight=self._in_flight,
            waiting=self._waiting,
            requests_last_minute=len(self._requests),
            tokens_last_minute=self._token_sum,
        )


class LimitedProvider(WrapperProvider):
    """Admits each call through its deployment's `RateLimiter`."""

    def __init__(self, inner: Provider, limiter: RateLimiter) -> None:
        super().__init__(inner)
        self.limiter = limiter

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Wait for a concurrency slot and per-minute room, then call."""
        tokens = estimate_total_tokens(request) if self.limiter.counts_tokens else 0
        async with self.limiter.slot(tokens):
            return await self.inner.complete(request)
